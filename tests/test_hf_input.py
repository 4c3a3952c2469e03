"""Hugging Face input stages (issue 14, item 2): InputEmbedding.from_pretrained on tiny random
BERT and GPT-2 checkpoints built and saved here with transformers (nothing downloaded), against
BertEmbeddings in eval mode and GPT-2's wte + wpe; the fused LayerNorm's forward and backward
against torch autograd in float64 and float32. Skipped without transformers (CI installs it)."""
import copy
import inspect
import json

import numpy as np
import pytest

import pyembed

torch = pytest.importorskip("torch", reason="the comparisons need torch (pip install torch)")
transformers = pytest.importorskip(
    "transformers", reason="the tiny checkpoints are built with transformers (pip install "
                           "transformers)")
F = torch.nn.functional

V, D, MAXPOS = 97, 32, 40


def save(model, path):
    """save_pretrained in the safetensors format (the default since transformers 4.35; the
    option is gone in 5.x)."""
    kw = {}
    if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
        kw["safe_serialization"] = True
    model.save_pretrained(str(path), **kw)
    return path


def randomise(module):
    """LayerNorm starts as ones and zeros: random values prove gamma and beta are read."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()


@pytest.fixture(scope="module", params=["BertModel", "BertForMaskedLM"])
def bert(request, tmp_path_factory):
    """(folder, BertEmbeddings): the bare model saves names without the 'bert.' prefix, a
    head model with it."""
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=V, hidden_size=D, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=16,
                                  max_position_embeddings=MAXPOS, type_vocab_size=2)
    model = getattr(transformers, request.param)(cfg).eval()
    base = model if request.param == "BertModel" else model.bert
    randomise(base.embeddings)
    return save(model, tmp_path_factory.mktemp("bert")), base.embeddings


@pytest.fixture(scope="module", params=["GPT2Model", "GPT2LMHeadModel"])
def gpt2(request, tmp_path_factory):
    torch.manual_seed(1)
    cfg = transformers.GPT2Config(vocab_size=V, n_embd=D, n_layer=1, n_head=2,
                                  n_positions=MAXPOS, bos_token_id=0, eos_token_id=0)
    model = getattr(transformers, request.param)(cfg).eval()
    return save(model, tmp_path_factory.mktemp("gpt2")), model


def test_bert_single_sentences_and_pairs(bert):
    folder, emb = bert
    inp = pyembed.InputEmbedding.from_pretrained(folder)
    assert (inp.norm, inp.num_segments, inp.max_len, inp.scale) == ("layernorm", 2, MAXPOS, 1.0)
    assert inp.eps == emb.LayerNorm.eps == 1e-12
    rng = np.random.default_rng(0)
    ids = rng.integers(0, V, (3, 11))
    pairs = np.zeros((3, 11), np.int64)
    pairs[:, 6:] = 1  # [CLS] question [SEP] | answer [SEP]
    with torch.no_grad():
        single = emb(input_ids=torch.from_numpy(ids)).numpy()
        paired = emb(input_ids=torch.from_numpy(ids), token_type_ids=torch.from_numpy(pairs))
        later = emb(input_ids=torch.from_numpy(ids), cache_length=5)
    np.testing.assert_allclose(inp(ids), single, rtol=0, atol=1e-6)
    np.testing.assert_allclose(inp(ids, segment_ids=pairs), paired.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(inp(ids, start=5), later.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(inp(ids[0]), single[0], rtol=0, atol=1e-6)


def test_gpt2_is_wte_plus_wpe_exactly_and_attend_is_the_tied_head(gpt2):
    folder, model = gpt2
    inp = pyembed.InputEmbedding.from_pretrained(folder)
    core = getattr(model, "transformer", model)
    assert (inp.norm, inp.num_segments, inp.max_len) == (None, None, MAXPOS)
    ids = np.random.default_rng(1).integers(0, V, (2, 9))
    with torch.no_grad():
        want = (core.wte(torch.from_numpy(ids)) + core.wpe(torch.arange(9))).numpy()
    np.testing.assert_array_equal(inp(ids), want)
    if hasattr(model, "lm_head"):
        h = np.random.default_rng(2).standard_normal((2, 9, D)).astype(np.float32)
        with torch.no_grad():
            logits = model.lm_head(torch.from_numpy(h)).numpy()
        np.testing.assert_allclose(inp.attend(h), logits, rtol=1e-5, atol=1e-5)


def test_from_pretrained_in_float64(bert):
    folder, emb = bert
    inp = pyembed.InputEmbedding.from_pretrained(folder, dtype=np.float64)
    ids = np.array([[1, 2, 3, 4]])
    assert inp.dtype == np.float64 and inp.gamma.dtype == np.float64
    with torch.no_grad():
        want = emb(input_ids=torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(inp(ids), want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_from_pretrained_half_tables(bert, dt, tmp_path):
    """dtype="float16"/"bfloat16" rounds the tables (gamma and beta stay float32); dtype=None keeps
    a half checkpoint's type. Equal to BertEmbeddings holding the same rounded tables."""
    pytest.importorskip("ml_dtypes", reason="bfloat16 tables need ml_dtypes")
    folder, emb = bert
    inp = pyembed.InputEmbedding.from_pretrained(folder, dtype=dt)
    assert inp.dtype == inp.position.dtype == inp.segment.dtype == pyembed.Embedding(
        1, 1, dtype=dt).dtype
    assert inp.gamma.dtype == np.float32
    f32 = pyembed.InputEmbedding.from_pretrained(folder)
    np.testing.assert_array_equal(inp.gamma, f32.gamma)
    ids, seg = np.array([[1, 2, 3, 4], [5, 6, 7, 8]]), np.array([[0, 0, 1, 1], [0, 1, 1, 1]])
    tdt = {"float16": torch.float16, "bfloat16": torch.bfloat16}[dt]
    half = copy.deepcopy(emb)
    with torch.no_grad():
        for m in (half.word_embeddings, half.position_embeddings, half.token_type_embeddings):
            m.weight.copy_(m.weight.to(tdt).float())  # the rounded tables, computed in float32
        want = half(input_ids=torch.from_numpy(ids), token_type_ids=torch.from_numpy(seg))
    np.testing.assert_allclose(inp(ids, segment_ids=seg), want.numpy(), rtol=0, atol=1e-5)
    model = transformers.BertModel(transformers.BertConfig(**json_config(folder))).eval()
    model.embeddings.load_state_dict(half.state_dict())
    kept = pyembed.InputEmbedding.from_pretrained(save(model.to(tdt), tmp_path), dtype=None)
    assert kept.dtype == inp.dtype and kept.gamma.dtype == np.float32
    assert all((a == b).all() for a, b in zip(
        (kept.token.weight, kept.position.weight, kept.segment.weight),
        (inp.token.weight, inp.position.weight, inp.segment.weight)))


def json_config(folder):
    with open(folder / "config.json") as f:
        cfg = json.load(f)
    return {k: v for k, v in cfg.items() if k in ("vocab_size", "hidden_size",
            "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "max_position_embeddings", "type_vocab_size")}


def torch_stage(inp, ids, seg, start, dtype):
    """The same stage written with torch ops: lookups, adds, F.layer_norm, autograd."""
    leaves = {n: torch.tensor(np.asarray(a), dtype=dtype, requires_grad=True) for n, a in (
        ("token", inp.token.weight), ("position", inp.position.weight),
        ("segment", inp.segment.weight), ("gamma", inp.gamma), ("beta", inp.beta))}
    t = torch.from_numpy(ids)
    pos = torch.arange(start, start + ids.shape[-1])
    x = (F.embedding(t, leaves["token"]) * inp.scale
         + F.embedding(torch.from_numpy(seg), leaves["segment"])) + F.embedding(pos,
                                                                              leaves["position"])
    y = F.layer_norm(x, (inp.d_model,), leaves["gamma"], leaves["beta"], inp.eps)
    return y, leaves


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 3e-6)])
@pytest.mark.parametrize("scale", [None, 3.0])
def test_fused_layernorm_forward_and_backward_against_torch_autograd(dtype, tol, scale):
    inp = pyembed.InputEmbedding(50, 24, max_len=16, positional="learned", scale=scale,
                                 num_segments=3, norm="layernorm", eps=1e-5, dtype=dtype, seed=3,
                                 pos_std=1.0)
    rng = np.random.default_rng(3)
    inp.gamma[...] = rng.standard_normal(24)
    inp.beta[...] = rng.standard_normal(24)
    ids = rng.integers(0, 50, (4, 7))
    ids[0, :3] = 5  # a repeated row: its gradient is a sum
    seg = rng.integers(0, 3, (4, 7))
    dout = rng.standard_normal((4, 7, 24)).astype(dtype)
    y, leaves = torch_stage(inp, ids, seg, 2, torch.float64 if dtype == np.float64 else
                            torch.float32)
    y.backward(torch.from_numpy(dout))
    out = inp(ids, 2, segment_ids=seg)
    inp.backward(ids, dout, 2, segment_ids=seg)
    close = dict(rtol=tol, atol=tol)
    np.testing.assert_allclose(out, y.detach().numpy(), **close)
    for got, name in ((inp.token.grad, "token"), (inp.position.grad, "position"),
                      (inp.segment.grad, "segment"), (inp.gamma_grad, "gamma"),
                      (inp.beta_grad, "beta")):
        want = leaves[name].grad.numpy()
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1, np.abs(want).max()),
                                   err_msg=name)


def test_gradcheck_of_the_torch_twin_agrees_with_finite_differences():
    """The torch stage the comparison trusts passes torch's own float64 gradcheck, so agreeing
    with it (above) is agreeing with the derivative."""
    inp = pyembed.InputEmbedding(9, 5, max_len=6, positional="learned", scale=None,
                                 num_segments=2, norm="layernorm", dtype=np.float64, seed=4)
    ids, seg = np.array([[1, 2, 2]]), np.array([[0, 1, 1]])
    _, leaves = torch_stage(inp, ids, seg, 0, torch.float64)

    def f(token, segment, gamma):
        x = (F.embedding(torch.from_numpy(ids), token)
             + F.embedding(torch.from_numpy(seg), segment)) + leaves["position"][:3]
        return F.layer_norm(x, (5,), gamma, leaves["beta"], inp.eps)

    assert torch.autograd.gradcheck(f, (leaves["token"], leaves["segment"], leaves["gamma"]))
