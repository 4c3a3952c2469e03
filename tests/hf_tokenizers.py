"""Two small tokenizers trained in the test run with Hugging Face's ``tokenizers`` (no download):
a BERT-style WordPiece (``[CLS] a [SEP] b [SEP]``, segment ids 0/1) and a GPT-2-style byte-level
BPE (no unknown token, no pad token). Callers skip when tokenizers is missing."""
import functools

CORPUS = [
    "The cat sat on the mat.", "A dog ate my homework!",
    "The quick brown fox jumps over the lazy dog.",
    "Where is the station?", "It is next to the old bridge.", "Embeddings map tokens to vectors.",
    "Positions restart for every packed text.", "Naïve café déjà vu — ünïcödé too.",
] * 4
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@functools.cache
def _wordpiece_json():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers import trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(
        vocab_size=120, special_tokens=SPECIALS, show_progress=False))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tok.decoder = decoders.WordPiece()
    return tok.to_str()


@functools.cache
def _bpe_json():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    return tok.to_str()


def wordpiece():
    """A fresh tokenizers.Tokenizer (WordPiece, BERT's template); the same one every call."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(_wordpiece_json())


def bpe():
    """A fresh tokenizers.Tokenizer (byte-level BPE, as GPT-2)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(_bpe_json())
