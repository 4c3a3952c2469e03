"""Packed rows through the input stage: InputEmbedding(...)(ids, positions=) (Hugging Face's
position_ids) for learned and sinusoidal positions, with and without segments and LayerNorm, on
float32/float64/float16/bfloat16 tables: against the float64 NumPy reference
(reference_positional.py), against start= when positions = start + arange, the same bits for any
thread count, BertEmbeddings(position_ids=) and Tokenizer.pack() end to end. (An optimizer
applied in the backward with positions=: test_layernorm_input.py.)"""
import numpy as np
import pytest

import pyembed
import reference_positional as ref
from pyembed import _core
from reference import same_bits

try:
    import ml_dtypes
except ImportError:  # bfloat16 tables need ml_dtypes (extra "half")
    ml_dtypes = None
DTYPES = ["float32", "float64", "float16", pytest.param("bfloat16", marks=pytest.mark.skipif(
    ml_dtypes is None, reason="bfloat16 tables need ml_dtypes"))]
# (positional, num_segments, norm): every way the stage adds a position row
CONFIGS = [(p, s, n) for p in ("learned", "sinusoidal")
           for s, n in ((None, None), (2, None), (None, "layernorm"), (2, "layernorm"))]
MAX_LEN = 9


def stage(dtype, positional, num_segments, norm, V=23, D=13, seed=0):
    return ref.random_stage(dtype, positional, num_segments, norm, "sqrt", V, D, seed, MAX_LEN)


def packed_positions(rng, nb, seq):
    return ref.packed_positions(rng, nb, seq, MAX_LEN)


def position_table(inp):
    if inp.positional == "learned":
        return inp.position.weight
    return inp.position.encoding(MAX_LEN)


def grads(inp):
    """Every gradient of the stage, in parameters() order."""
    return [p[1].copy() if isinstance(p, tuple) else p.grad.copy() for p in inp.parameters()]


@pytest.mark.parametrize("shared", [False, True], ids=["per-token", "shared"])
@pytest.mark.parametrize("positional, num_segments, norm", CONFIGS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_positions_match_the_float64_reference(dtype, positional, num_segments, norm, shared):
    inp = stage(dtype, positional, num_segments, norm)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, inp.vocab_size, (3, 11))
    pos = packed_positions(rng, 1 if shared else 3, 11)
    pos = pos[0] if shared else pos
    seg = rng.integers(0, num_segments, ids.shape) if num_segments else None
    W, P = inp.token.weight, position_table(inp)
    S = None if seg is None else inp.segment.weight
    tol = 1e-12 if dtype == "float64" else 1e-5
    out = inp(ids, segment_ids=seg, positions=pos)
    want = ref.embed_layernorm(W, ids, inp.scale, P, S, seg, inp.gamma, inp.beta, inp.eps,
                               position_ids=pos)
    np.testing.assert_allclose(out, want, rtol=0, atol=tol)
    if norm is None and seg is None:  # the fused sum has NumPy's bits
        ct = out.dtype.type
        assert same_bits(out, W.astype(ct)[ids] * ct(inp.scale) + P.astype(ct)[pos])
    dout = rng.standard_normal(out.shape).astype(out.dtype)
    inp.backward(ids, dout, segment_ids=seg, positions=pos)
    dW, dP, dS, dg, db = ref.embed_layernorm_backward(W, ids, inp.scale, P, S, seg, inp.gamma,
                                                      dout, inp.eps, position_ids=pos)
    np.testing.assert_allclose(inp.token.grad, dW, rtol=0, atol=tol * 10)
    if positional == "learned":
        np.testing.assert_allclose(inp.position.grad, dP, rtol=0, atol=tol * 10)
    if seg is not None:
        np.testing.assert_allclose(inp.segment.grad, dS, rtol=0, atol=tol * 10)
    if norm:
        np.testing.assert_allclose(inp.gamma_grad, dg, rtol=0, atol=tol * 10)
        np.testing.assert_allclose(inp.beta_grad, db, rtol=0, atol=tol * 10)


@pytest.mark.parametrize("positional, num_segments, norm", CONFIGS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_positions_start_plus_arange_is_start(dtype, positional, num_segments, norm):
    """The same bits as start=, forward and every gradient, per-token and shared, 1-D ids too."""
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 23, (4, 6))
    seg = rng.integers(0, num_segments, ids.shape) if num_segments else None
    dout = rng.standard_normal(ids.shape + (13,))
    a, b, c = (stage(dtype, positional, num_segments, norm) for _ in range(3))
    ar = 3 + np.arange(6)
    for x, kw in ((a, dict(start=3)), (b, dict(positions=ar)),
                  (c, dict(positions=np.broadcast_to(ar, ids.shape).astype(np.int32)))):
        x.last = x(ids, segment_ids=seg, **kw)
        x.backward(ids, dout, segment_ids=seg, **kw)
        x.backward(ids, dout, segment_ids=seg, **kw)  # gradients accumulate
    for other in (b, c):
        assert same_bits(a.last, other.last)
        assert all(same_bits(g, h) for g, h in zip(grads(a), grads(other)))
    s1 = None if seg is None else seg[1]
    assert same_bits(a(ids[1], 3, segment_ids=s1), b(ids[1], positions=ar, segment_ids=s1))


@pytest.mark.parametrize("positional, num_segments, norm",
                         [("learned", 2, "layernorm"), ("learned", None, None),
                          ("sinusoidal", 2, None)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_bits_for_every_thread_count(dtype, positional, num_segments, norm, threads):
    """64 x 16 packed ids x 96 columns: the kernels run on 2 and 3 threads; the position rows'
    gradients are summed in order of appearance (Embedding.backward's promise), so no bit moves.
    float64 is the sharp case for the LayerNorm sums."""
    inp = stage(dtype, positional, num_segments, norm, V=500, D=96)
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 500, (64, 16))
    pos = packed_positions(rng, 64, 16)
    seg = rng.integers(0, num_segments, ids.shape) if num_segments else None
    dout = rng.standard_normal(ids.shape + (96,)).astype(dtype)
    results = []
    for nt in (1, 2, 3):
        threads(nt)
        inp.zero_grad()
        out = inp(ids, segment_ids=seg, positions=pos)
        inp.backward(ids, dout, segment_ids=seg, positions=pos)
        results.append([out] + grads(inp))
    for other in results[1:]:
        assert all(same_bits(a, b) for a, b in zip(results[0], other))


@pytest.mark.parametrize("shared", [False, True], ids=["per-token", "shared"])
def test_fused_sum_has_numpys_bits_cached_and_streamed(shared, stores):
    """Streamed outputs (position-major with shared positions, row order with packed ones) have
    the bits of the cached path: NumPy's W[ids] * scale + P[positions]."""
    inp = stage("float32", "learned", None, None, V=50, D=32)
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 50, (8, 9))
    pos = packed_positions(rng, 8, 9)
    pos = pos[0] if shared else pos
    W, P = inp.token.weight, inp.position.weight
    assert same_bits(inp(ids, positions=pos), W[ids] * np.float32(inp.scale) + P[pos])


def test_core_position_ids_are_a_checked_private_copy():
    """The glue checks each position as it copies it, against the rows of the table it indexes,
    and refuses position ids without a table or of another shape (nothing is written)."""
    t = pyembed.Table(10, 4)
    P = np.ones((5, 4), np.float32)
    out = np.zeros((2, 3, 4), np.float32)
    ids = np.zeros((2, 3), np.int64)
    with pytest.raises(IndexError, match=r"position_ids\[1, 2\]"):
        _core.embed_positions(t, ids, P, 1.0, out, position_ids=[[0, 1, 2], [3, 4, 5]])
    with pytest.raises(ValueError, match="without positions"):
        _core.embed_positions(t, ids, None, 1.0, position_ids=[0, 1, 2])
    with pytest.raises(ValueError, match=r"position_ids has shape \(2,\)"):
        _core.embed_layernorm(t, ids, P, None, None, None, None, 1.0, 1e-5,
                              position_ids=[0, 1])
    with pytest.raises(IndexError, match="-1"):
        _core.embed_layernorm_backward(t, ids, P, None, None, np.ones(4, np.float32), out,
                                       np.zeros(4, np.float32), np.zeros(4, np.float32), 1.0,
                                       1e-5, position_ids=[0, -1, 2])
    assert not out.any()


def test_positions_may_outrun_max_len_in_a_long_packed_row():
    """A packed row longer than max_len is fine when every position is below max_len (start=
    would need start + seq <= max_len for a learned table)."""
    inp = stage("float32", "learned", None, None)
    ids = np.arange(2 * MAX_LEN) % 23
    pos = np.concatenate([np.arange(MAX_LEN), np.arange(MAX_LEN)])
    assert same_bits(inp(ids, positions=pos)[MAX_LEN:], inp(ids[MAX_LEN:]))
    with pytest.raises(ValueError, match="max_len"):
        inp(ids)


# ---- Hugging Face: BertEmbeddings(position_ids=) and Tokenizer.pack() ---------------------------

def test_bert_embeddings_with_position_ids(tmp_path):
    torch = pytest.importorskip("torch", reason="the comparison needs torch")
    transformers = pytest.importorskip("transformers", reason="the tiny BERT is built with "
                                                              "transformers")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=16,
                                  max_position_embeddings=40, type_vocab_size=2)
    model = transformers.BertModel(cfg).eval()
    with torch.no_grad():
        for p in model.embeddings.parameters():
            p.normal_()
    model.save_pretrained(str(tmp_path))
    emb = model.embeddings
    inp = pyembed.InputEmbedding.from_pretrained(tmp_path)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 97, (3, 50))  # packed rows longer than max_position_embeddings
    pos = np.minimum(packed_positions(rng, 3, 50) * 4, 39)
    seg = rng.integers(0, 2, ids.shape)
    t = {k: torch.from_numpy(v) for k, v in dict(input_ids=ids, token_type_ids=seg,
                                                 position_ids=pos).items()}
    want = emb(**t)
    np.testing.assert_allclose(inp(ids, segment_ids=seg, positions=pos), want.detach().numpy(),
                               rtol=0, atol=1e-5)
    # the position table's gradient against torch autograd
    dout = rng.standard_normal(want.shape).astype(np.float32)
    (want * torch.from_numpy(dout)).sum().backward()
    inp.backward(ids, dout, segment_ids=seg, positions=pos)
    np.testing.assert_allclose(inp.position.grad, emb.position_embeddings.weight.grad.numpy(),
                               rtol=0, atol=2e-5)
    np.testing.assert_allclose(inp.token.grad, emb.word_embeddings.weight.grad.numpy(), rtol=0,
                               atol=2e-5)


def test_tokenizer_pack_goes_through_the_stage():
    pytest.importorskip("tokenizers", reason="pyembed.Tokenizer needs tokenizers (pyembed[hf])")
    import hf_tokenizers

    tok = pyembed.Tokenizer(hf_tokenizers.wordpiece(), pad_token="[PAD]")
    texts = ["The cat sat on the mat.", "Where is the station?", "A dog ate my homework!",
             "It is next to the old bridge."]
    enc = tok.pack(texts, max_length=24)
    assert enc.ids.shape[0] < len(texts)  # several texts share a row
    inp = pyembed.InputEmbedding(tok.vocab_size, 16, max_len=24, positional="learned",
                                 num_segments=2, norm="layernorm", seed=0)
    x = inp(enc.ids, segment_ids=enc.segment_ids, positions=enc.positions)
    # each text's rows are those of the text alone in its own row, starting at position 0
    for d, text in enumerate(texts):
        alone = tok([text])
        n = alone.ids.shape[1]
        row, col = np.argwhere(enc.document_ids == d)[0]
        assert same_bits(x[row, col:col + n], inp(alone.ids, segment_ids=alone.segment_ids)[0])
    inp.backward(enc.ids, np.ones_like(x), segment_ids=enc.segment_ids, positions=enc.positions)
    assert inp.position.grad[enc.positions.max() + 1:].sum() == 0
