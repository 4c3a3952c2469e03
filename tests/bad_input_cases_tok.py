"""Bad-input cases of pyembed.Tokenizer and Vocab.from_tokenizer (see bad_input_cases.py); the
Tokenizer's are skipped when Hugging Face's tokenizers package is missing (CI installs it)."""
import functools

import numpy as np
import pytest

import pyembed
from bad_input_cases import case

try:
    import tokenizers  # noqa: F401  (only: is it there)
    HAVE_TOKENIZERS = True
except ImportError:
    HAVE_TOKENIZERS = False


@functools.cache
def tok():
    import hf_tokenizers

    return pyembed.Tokenizer(hf_tokenizers.wordpiece(), pad_token="[PAD]")


def raw():
    import hf_tokenizers

    return hf_tokenizers.wordpiece()


class NegativeIds:
    def get_vocab(self):
        return {"a": 0, "b": -2}


def needs_tokenizers(params):
    skip = pytest.mark.skipif(not HAVE_TOKENIZERS, reason="tokenizers is not installed")
    return [pytest.param(*p.values, id=p.id, marks=(*p.marks, skip)) for p in params]


def tokenizer_cases():
    T, V = pyembed.Tokenizer, pyembed.Vocab
    long = "the quick brown fox jumps over the lazy dog"
    return needs_tokenizers([
        case("Tokenizer(object)", lambda w: T(object()), TypeError, "tokenizer", "object"),
        case("Tokenizer(padding_side)", lambda w: T(raw(), padding_side="middle"), ValueError,
             "padding_side", "'middle'"),
        case("Tokenizer(pad_token unknown)", lambda w: T(raw(), pad_token="<nope>"), ValueError,
             "pad_token", "'<nope>'"),
        case("Tokenizer(pad_token int)", lambda w: T(raw(), pad_token=0), TypeError, "pad_token",
             "int"),
        case("Tokenizer.from_file missing", lambda w: T.from_file(w.missing), FileNotFoundError,
             "x.txt"),
        case("Tokenizer.from_file folder without tokenizer.json", lambda w: T.from_file(w.sub),
             FileNotFoundError, "a_folder", "tokenizer.json"),
        case("Tokenizer.from_file bad utf-8", lambda w: T.from_file(w.bad_utf8), ValueError,
             "bad_utf8.txt"),
        case("Tokenizer.from_file not json", lambda w: T.from_file(w.vec_txt), ValueError,
             "vec_txt.txt", "tokenizer.json"),
        case("Tokenizer.from_file path int", lambda w: T.from_file(3), TypeError, "path"),
        case("Tokenizer() text int", lambda w: tok()(3), TypeError, "text", "int"),
        case("Tokenizer() text bytes", lambda w: tok()(b"abc"), TypeError, "text", "bytes"),
        case("Tokenizer() text[1] None", lambda w: tok()(["a", None]), TypeError, "text[1]",
             "NoneType"),
        case("Tokenizer() text_pair count", lambda w: tok()(["a", "b"], ["c"]), ValueError,
             "text_pair", "1", "2"),
        case("Tokenizer() text_pair str for a list", lambda w: tok()(["a"], "c"), TypeError,
             "text_pair", "str"),
        case("Tokenizer() text_pair[0] int", lambda w: tok()(["a"], [5]), TypeError,
             "text_pair[0]", "int"),
        case("Tokenizer() padding 'yes'", lambda w: tok()("a", padding="yes"), ValueError,
             "padding", "'yes'"),
        case("Tokenizer() padding 1", lambda w: tok()("a", padding=1), ValueError, "padding", "1"),
        case("Tokenizer() padding max_length without max_length",
             lambda w: tok()("a", padding="max_length"), ValueError, "max_length"),
        case("Tokenizer() padding False, lengths differ",
             lambda w: tok()(["a", long], padding=False), ValueError, "padding"),
        case("Tokenizer() truncation 'cut'", lambda w: tok()("a", truncation="cut"), ValueError,
             "truncation", "'cut'"),
        case("Tokenizer() truncation without max_length", lambda w: tok()("a", truncation=True),
             ValueError, "truncation", "max_length"),
        case("Tokenizer() max_length 0", lambda w: tok()("a", max_length=0), ValueError,
             "max_length", "0"),
        case("Tokenizer() max_length 1.5", lambda w: tok()("a", max_length=1.5), TypeError,
             "max_length", "1.5"),
        case("Tokenizer() max_length too short", lambda w: tok()(["a", long], max_length=4),
             ValueError, "text 1", "max_length=4", "truncation"),
        case("Tokenizer() only_second on a single text",
             lambda w: tok()(long, truncation="only_second", max_length=4), ValueError,
             "tokenizers"),
        case("Tokenizer() add_special_tokens 'no'",
             lambda w: tok()("a", add_special_tokens="no"), TypeError, "add_special_tokens", "str"),
        case("Tokenizer.pack max_length None", lambda w: tok().pack(["a"], max_length=None),
             TypeError, "max_length", "None"),
        case("Tokenizer.pack max_length -1", lambda w: tok().pack(["a"], max_length=-1),
             ValueError, "max_length", "-1"),
        case("Tokenizer.pack text too long", lambda w: tok().pack(["a", long], max_length=4),
             ValueError, "text 1", "max_length=4"),
        case("Tokenizer.pack text[0] int", lambda w: tok().pack([1], max_length=4), TypeError,
             "text[0]", "int"),
        case("Tokenizer.pack padding", lambda w: tok().pack(["a"], max_length=4, padding=True),
             TypeError, "padding"),
        case("Tokenizer.encode list", lambda w: tok().encode(["a"]), TypeError, "text", "list"),
        case("Tokenizer.encode truncation", lambda w: tok().encode("a", max_length=2), TypeError,
             "max_length"),
        case("Tokenizer.decode past the vocabulary", lambda w: tok().decode([1, 120]), IndexError,
             "120", "ids[1]"),
        case("Tokenizer.decode -1", lambda w: tok().decode([[1], [-1]]), IndexError, "-1",
             "ids[1, 0]"),
        case("Tokenizer.decode 2**70", lambda w: tok().decode([2 ** 70]), IndexError,
             str(2 ** 70)),
        case("Tokenizer.decode float", lambda w: tok().decode(np.array([1.0])), TypeError,
             "float64"),
        case("Tokenizer.decode 3-D", lambda w: tok().decode(np.zeros((1, 1, 1), int)), ValueError,
             "ids", "(1, 1, 1)"),
        case("Tokenizer.decode scalar", lambda w: tok().decode(3), ValueError, "ids", "()"),
        case("Tokenizer.decode skip_special_tokens", lambda w: tok().decode(
            [1], skip_special_tokens=None), TypeError, "skip_special_tokens", "NoneType"),
        case("Tokenizer.token_to_id int", lambda w: tok().token_to_id(3), TypeError, "token",
             "int"),
        case("Tokenizer.id_to_token -1", lambda w: tok().id_to_token(-1), IndexError, "-1"),
        case("Tokenizer.id_to_token 120", lambda w: tok().id_to_token(120), IndexError, "120"),
        case("Tokenizer.id_to_token 2**70", lambda w: tok().id_to_token(2 ** 70), IndexError,
             str(2 ** 70)),
        case("Tokenizer.id_to_token 1.5", lambda w: tok().id_to_token(1.5), TypeError, "id",
             "1.5"),
        case("Vocab.from_tokenizer num_embeddings too few",
             lambda w: V.from_tokenizer(tok(), num_embeddings=119), ValueError, "num_embeddings",
             "119", "120"),
        case("Vocab.from_tokenizer num_embeddings 1.5",
             lambda w: V.from_tokenizer(tok(), num_embeddings=1.5), TypeError, "num_embeddings",
             "float"),
    ]) + [
        case("Vocab.from_tokenizer object", lambda w: V.from_tokenizer(object()), TypeError,
             "tokenizer", "object"),
        case("Vocab.from_tokenizer negative id", lambda w: V.from_tokenizer(NegativeIds()),
             ValueError, "'b'", "-2"),
        case("Embedding.from_pretrained vocab past the table", lambda w: pyembed.Embedding
             .from_pretrained(np.zeros((2, 3)), vocab=V(["a", "b", "c"], specials=())), ValueError,
             "vocabulary", "2", "embeddings"),
    ]
