"""pyembed.Tokenizer and Vocab.from_tokenizer against Hugging Face's tokenizers and transformers,
in the same process, on a WordPiece and a byte-level BPE tokenizer trained here (issue 14, item 3).
"""
import copy
import doctest
import pickle
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import pyembed
from child import PKG_PARENT

pytest.importorskip("tokenizers", reason="pyembed.Tokenizer needs tokenizers (pyembed[hf])")
import hf_tokenizers  # noqa: E402  (after the skip: it trains with tokenizers)

KINDS = {"wordpiece": (hf_tokenizers.wordpiece, "[PAD]"),
         "bpe": (hf_tokenizers.bpe, "<|endoftext|>")}
TEXTS = ["The cat sat on the mat.", "A dog!", "Where is the old station, the one by the bridge?",
         "", "ünïcödé café", "zebra xylophone quokka"]  # unknown words: [UNK] / raw bytes
PAIRS = ["It is next to the bridge.", "Yes", "No.", "the lazy dog", "?", "the"]


def transformers_tokenizer(raw, pad_token, side="right"):
    transformers = pytest.importorskip("transformers")
    return transformers.PreTrainedTokenizerFast(tokenizer_object=raw, pad_token=pad_token,
                                                padding_side=side)


def ours_and_raw(kind, **kw):
    make, pad = KINDS[kind]
    raw = make()
    return pyembed.Tokenizer(raw, pad_token=pad, **kw), raw, pad


def assert_same(ours, theirs, keys=("input_ids", "token_type_ids", "attention_mask")):
    for key in keys:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
        assert ours[key].dtype == np.int64


def test_docstring_example_runs():
    result = doctest.testmod(pyembed.tokenizer)
    assert result.attempted >= 10 and result.failed == 0


# -- the same ids as tokenizers and as transformers ------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pairs", [False, True], ids=["single", "pairs"])
def test_ids_equal_tokenizers_row_by_row(kind, pairs):
    tok, raw, _ = ours_and_raw(kind)
    enc = tok(TEXTS, PAIRS if pairs else None)
    for i, text in enumerate(TEXTS):
        ref = raw.encode(text, PAIRS[i] if pairs else None)
        n = len(ref.ids)
        assert enc.ids[i, :n].tolist() == ref.ids
        assert enc.segment_ids[i, :n].tolist() == ref.type_ids
        assert enc.attention_mask[i].tolist() == [1] * n + [0] * (enc.ids.shape[1] - n)
        assert enc.positions[i].tolist() == list(range(n)) + [0] * (enc.ids.shape[1] - n)
        assert (enc.ids[i, n:] == tok.pad_token_id).all()
    assert enc.ids.shape == (len(TEXTS), max(len(raw.encode(t)) for t in TEXTS)) or pairs
    if pairs and kind == "wordpiece":
        assert enc.segment_ids.max() == 1  # BERT's second sentence


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pairs", [False, True], ids=["single", "pairs"])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("args", [
    dict(padding=True),
    dict(padding="max_length", max_length=40),
    dict(padding=True, truncation=True, max_length=7),
    dict(padding="max_length", truncation="longest_first", max_length=9),
    dict(padding=True, truncation="only_first", max_length=16),
    dict(padding=True, add_special_tokens=False),
], ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()))
def test_arrays_equal_transformers(kind, pairs, side, args):
    tok, raw, pad = ours_and_raw(kind, padding_side=side)
    ref_tok = transformers_tokenizer(raw, pad, side)
    second = PAIRS if pairs else None
    if args.get("truncation") == "only_first" and not pairs:
        args = dict(args, truncation=True)
    if args.get("truncation") == "only_first":
        texts = [t + " and more words to cut" for t in TEXTS]  # the first text must be cuttable
    else:
        texts = TEXTS
    ref = ref_tok(texts, second, return_tensors="np", return_token_type_ids=True,
                  return_attention_mask=True, **args)
    assert_same(tok(texts, second, **args), ref)


@pytest.mark.parametrize("kind", KINDS)
def test_encode_and_decode_equal_transformers(kind):
    tok, raw, pad = ours_and_raw(kind)
    ref_tok = transformers_tokenizer(raw, pad)
    for i, text in enumerate(TEXTS):
        ids = tok.encode(text)
        assert ids.dtype == np.int64 and ids.ndim == 1
        assert ids.tolist() == ref_tok.encode(text) == raw.encode(text).ids
        assert tok.encode(text, PAIRS[i]).tolist() == ref_tok.encode(text, PAIRS[i])
        for skip in (False, True):
            assert tok.decode(ids, skip_special_tokens=skip) == ref_tok.decode(
                ids.tolist(), skip_special_tokens=skip)
    enc = tok(TEXTS)
    assert tok.decode(enc.ids, skip_special_tokens=True) == ref_tok.batch_decode(
        enc.ids.tolist(), skip_special_tokens=True)
    assert tok.decode([]) == "" and tok.decode(np.zeros((0, 3), np.int32)) == []


def test_one_text_is_a_batch_of_one():
    tok, raw, _ = ours_and_raw("wordpiece")
    enc = tok("the cat", "the dog")
    assert enc.ids.shape == (1, len(raw.encode("the cat", "the dog").ids))
    assert sorted(enc) == ["attention_mask", "input_ids", "position_ids", "token_type_ids"]
    assert enc.segment_ids is enc["token_type_ids"] and enc.positions is enc["position_ids"]
    with pytest.raises(AttributeError, match="document_ids"):
        enc.document_ids


def test_padding_false_needs_equal_lengths():
    tok, raw, _ = ours_and_raw("wordpiece")
    enc = tok(["the cat", "the cat"], padding=False)
    assert enc.attention_mask.all()
    with pytest.raises(ValueError, match="padding"):
        tok(["the cat", "a longer text than that"], padding=False)


def test_max_length_without_truncation_refuses_a_long_text():
    tok, _, _ = ours_and_raw("wordpiece")
    with pytest.raises(ValueError, match=r"text 2 has \d+ tokens, more than max_length=5"):
        tok(TEXTS, padding="max_length", max_length=5)
    assert tok(TEXTS, padding="max_length", max_length=5, truncation=True).ids.shape == (6, 5)


def test_no_pad_token_refuses_only_when_padding_is_needed():
    raw = hf_tokenizers.bpe()
    tok = pyembed.Tokenizer(raw)
    assert tok.pad_token is None and tok.unk_token is None
    assert tok(["same", "same"]).ids.shape[0] == 2  # nothing to pad
    with pytest.raises(ValueError, match="pad_token"):
        tok(["a", "a longer one"])
    with pytest.raises(ValueError, match="pad_token"):
        tok.pack(["a", "b"], max_length=8)


def test_the_callers_tokenizer_is_not_reconfigured():
    raw = hf_tokenizers.wordpiece()
    raw.enable_truncation(3)
    tok = pyembed.Tokenizer(raw, pad_token="[PAD]")
    tok(TEXTS, truncation=True, max_length=5)
    assert raw.truncation["max_length"] == 3 and raw.padding is None
    # and the wrapped copy does not inherit the caller's truncation either (transformers neither)
    assert tok.encode(TEXTS[2]).tolist() == hf_tokenizers.wordpiece().encode(TEXTS[2]).ids


def test_pickles_and_copies():
    """A DataLoader's spawned workers get the tokenizer pickled."""
    tok, _, _ = ours_and_raw("bpe", padding_side="left")
    want = tok(TEXTS, PAIRS)
    for other in (pickle.loads(pickle.dumps(tok)), copy.deepcopy(tok)):
        assert (other.pad_token, other.padding_side) == (tok.pad_token, "left")
        assert_same(other(TEXTS, PAIRS), want, keys=list(want))


def test_threads_with_different_truncation():
    tok, raw, _ = ours_and_raw("wordpiece")
    want = {n: tok(TEXTS * 20, truncation=True, max_length=n).ids for n in (4, 9)}
    errors = []

    def work(n):
        for _ in range(20):
            got = tok(TEXTS * 20, truncation=True, max_length=n).ids
            if not np.array_equal(got, want[n]):
                errors.append(n)

    threads = [threading.Thread(target=work, args=(n,)) for n in (4, 9, 4, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# -- packing -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pairs", [False, True], ids=["single", "pairs"])
def test_pack_places_whole_texts_next_fit(kind, pairs):
    tok, raw, _ = ours_and_raw(kind)
    texts = TEXTS * 3
    second = PAIRS * 3 if pairs else None
    L = 32
    enc = tok.pack(texts, second, max_length=L)
    refs = [raw.encode(t, second[i] if pairs else None) for i, t in enumerate(texts)]
    # next fit by hand: rows keep the input order, a text never splits
    row, used, where = 0, 0, []
    for r in refs:
        if used + len(r.ids) > L:
            row, used = row + 1, 0
        where.append((row, used))
        used += len(r.ids)
    assert enc.ids.shape == (row + 1, L)
    assert set(enc) == {"input_ids", "token_type_ids", "position_ids", "attention_mask",
                        "document_ids"}
    covered = np.zeros(enc.ids.shape, bool)
    for i, (r, (row, start)) in enumerate(zip(refs, where)):
        span = slice(start, start + len(r.ids))
        assert enc.ids[row, span].tolist() == r.ids
        assert enc.segment_ids[row, span].tolist() == r.type_ids
        assert enc.positions[row, span].tolist() == list(range(len(r.ids)))
        assert (enc.document_ids[row, span] == i).all()
        covered[row, span] = True
    assert (enc.attention_mask == covered).all()
    assert (enc.document_ids[~covered] == -1).all()
    assert (enc.ids[~covered] == tok.pad_token_id).all()
    assert (enc.positions[~covered] == 0).all()
    # the mask a model uses: block-diagonal per text
    m = enc.document_mask()
    d = enc.document_ids
    assert m.shape == (row + 1, L, L) and m.dtype == bool
    assert np.array_equal(m, (d[:, :, None] == d[:, None, :]) & covered[:, :, None])
    assert not m[0, 0, where[1][1]] or where[1][0] != 0  # text 0 never sees text 1


def test_pack_truncates_a_long_text_or_refuses_it():
    tok, raw, _ = ours_and_raw("wordpiece")
    long = TEXTS[2]
    n = len(raw.encode(long).ids)
    with pytest.raises(ValueError, match=f"text 1 has {n} tokens, more than max_length=6"):
        tok.pack(["a", long], max_length=6)
    enc = tok.pack(["a", long], max_length=6, truncation=True)
    assert enc.ids.shape == (2, 6) and enc.document_ids[1].tolist() == [1] * 6
    cut = raw.encode(long)  # [CLS] + 4 tokens + [SEP], as transformers truncates
    assert enc.ids[1].tolist() == cut.ids[:5] + cut.ids[-1:]


def test_pack_exactly_full_rows_need_no_pad_token():
    tok = pyembed.Tokenizer(hf_tokenizers.bpe())
    n = len(tok.encode("same"))
    enc = tok.pack(["same"] * 4, max_length=2 * n)
    assert enc.ids.shape == (2, 2 * n) and enc.attention_mask.all()
    assert enc.document_ids.tolist()[1] == [2] * n + [3] * n
    # one token short of two texts: one text a row (a text never spills into the next row)
    tok, _, _ = ours_and_raw("wordpiece")
    n = len(tok.encode("same"))
    enc = tok.pack(["same"] * 3, max_length=2 * n - 1)
    assert enc.document_ids.tolist() == [[i] * n + [-1] * (n - 1) for i in range(3)]
    empty = tok.pack([], max_length=4)
    assert empty.ids.shape == (0, 4) and tok([]).ids.shape == (0, 0)


# -- files and other wrappers --------------------------------------------------------------------

def test_from_file_and_from_a_model_folder(tmp_path):
    raw = hf_tokenizers.wordpiece()
    raw.save(str(tmp_path / "tokenizer.json"))
    tok = pyembed.Tokenizer.from_file(tmp_path / "tokenizer.json")
    assert tok.pad_token is None and tok.vocab_size == raw.get_vocab_size() == len(tok)
    assert tok.encode("the cat").tolist() == raw.encode("the cat").ids
    # a folder as transformers saves it: tokenizer_config.json says which token pads, and where
    ref = transformers_tokenizer(raw, "[PAD]", "left")
    ref.save_pretrained(tmp_path / "model")
    tok = pyembed.Tokenizer.from_file(tmp_path / "model")
    assert (tok.pad_token, tok.padding_side) == ("[PAD]", "left")
    assert_same(tok(TEXTS, PAIRS), ref(TEXTS, PAIRS, padding=True, return_tensors="np",
                                       return_token_type_ids=True))
    assert pyembed.Tokenizer.from_file(tmp_path / "model", pad_token="[MASK]").pad_token_id == \
        raw.token_to_id("[MASK]")


def test_wraps_a_transformers_tokenizer():
    raw = hf_tokenizers.bpe()
    ref = transformers_tokenizer(raw, "<|endoftext|>", "left")
    tok = pyembed.Tokenizer(ref)
    assert (tok.pad_token, tok.padding_side) == ("<|endoftext|>", "left")
    assert_same(tok(TEXTS), ref(TEXTS, padding=True, return_tensors="np",
                                return_token_type_ids=True))


def test_token_lookups():
    tok, raw, _ = ours_and_raw("wordpiece")
    assert tok.token_to_id("[CLS]") == raw.token_to_id("[CLS]")
    assert tok.token_to_id("not a token") is None
    assert tok.id_to_token(tok.token_to_id("[SEP]")) == "[SEP]"
    assert tok.get_vocab() == raw.get_vocab()
    assert "WordPiece" in repr(tok) and tok.unk_token == "[UNK]"


def test_import_pyembed_does_not_import_tokenizers():
    code = "import sys, pyembed; print('tokenizers' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=PKG_PARENT)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_a_clear_error_without_tokenizers(monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # import tokenizers -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'pyembed\[hf\]'"):
        pyembed.Tokenizer(object())


# -- Vocab.from_tokenizer ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("wrap", ["pyembed", "tokenizers", "transformers"])
def test_vocab_from_tokenizer_lines_up_with_the_ids(kind, wrap):
    tok, raw, pad = ours_and_raw(kind)
    source = {"pyembed": tok, "tokenizers": raw,
              "transformers": None if wrap != "transformers" else transformers_tokenizer(raw, pad)}
    vocab = pyembed.Vocab.from_tokenizer(source[wrap])
    assert len(vocab) == raw.get_vocab_size()
    assert vocab.index_to_key == [raw.id_to_token(i) for i in range(len(vocab))]
    assert vocab.unk_token == raw.model.unk_token  # "[UNK]", or None for byte-level BPE
    ids = tok.encode(TEXTS[0], add_special_tokens=False)
    assert vocab.encode(vocab.decode(ids)).tolist() == ids.tolist()
    # a table in the tokenizer's id order: its rows are the vocabulary's
    emb = pyembed.Embedding.from_pretrained(np.arange(len(vocab) * 2.0).reshape(-1, 2),
                                            vocab=vocab)
    assert np.array_equal(emb(vocab.encode(["[PAD]" if kind == "wordpiece" else
                                            "<|endoftext|>"])), emb.weight[[tok.pad_token_id]])


def test_vocab_for_a_table_with_more_rows_than_tokens():
    """T5's case (32128 rows, 32100 tokens): the extra rows are named and addressable."""
    tok, raw, _ = ours_and_raw("wordpiece")
    n = tok.vocab_size
    rows = (n + 63) // 64 * 64 + 64
    vocab = pyembed.Vocab.from_tokenizer(tok, num_embeddings=rows)
    assert len(vocab) == rows and vocab.index_to_key[:n] == pyembed.Vocab.from_tokenizer(
        tok).index_to_key
    assert vocab.index_to_key[n:] == [f"<row {i}>" for i in range(n, rows)]
    assert vocab.encode([f"<row {rows - 1}>"]).tolist() == [rows - 1]
    assert vocab.decode(rows - 1) == f"<row {rows - 1}>"
    table = np.zeros((rows, 4), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emb = pyembed.Embedding.from_pretrained(table, vocab=vocab)  # named: nothing to say
    assert emb(rows - 1).shape == (4,)
    with pytest.warns(UserWarning, match=f"names {n} of the {rows} rows.*num_embeddings={rows}"):
        pyembed.Embedding.from_pretrained(table, vocab=pyembed.Vocab.from_tokenizer(tok))
    with pytest.raises(ValueError, match=f"ids up to {rows - 1} but embeddings has {n} rows"):
        pyembed.Embedding.from_pretrained(table[:n], vocab=vocab)
    with pytest.raises(ValueError, match=f"num_embeddings={n - 1} is less than"):
        pyembed.Vocab.from_tokenizer(tok, num_embeddings=n - 1)


def test_vocab_fills_holes_and_avoids_taken_names():
    class Sparse:  # ids 0, 2, 3 used; one token is already called "<row 1>"
        def get_vocab(self):
            return {"a": 0, "<row 1>": 3, "b": 2}

    vocab = pyembed.Vocab.from_tokenizer(Sparse(), num_embeddings=5)
    assert vocab.index_to_key == ["a", "<<row 1>>", "b", "<row 1>", "<row 4>"]
    assert vocab.unk_token is None


def test_a_bad_tokenizer_config_is_named(tmp_path):
    hf_tokenizers.wordpiece().save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="tokenizer_config.json: not valid JSON"):
        pyembed.Tokenizer.from_file(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object, got list"):
        pyembed.Tokenizer.from_file(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text('{"pad_token": {"content": "[MASK]"}}')
    assert pyembed.Tokenizer.from_file(tmp_path).pad_token == "[MASK]"
