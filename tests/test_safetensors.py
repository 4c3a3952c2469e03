"""safetensors checkpoints: round trips, copy-on-write maps, torch's bf16, malformed files."""
import numpy as np
import pytest

import pyembed
from vector_files import assert_same_bits


# -- safetensors --------------------------------------------------------------------------------------

def test_safetensors_round_trip_and_pick(tmp_path):
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((10, 4)).astype(np.float32)
    p = tmp_path / "m.safetensors"
    pyembed.save_safetensors(p, {"model.embed_tokens.weight": emb, "lm_head.weight": emb.T.copy(),
                                 "ids": np.arange(3, dtype=np.int64)}, metadata={"format": "np"})
    assert_same_bits(pyembed.load_safetensors(p), emb)
    assert_same_bits(pyembed.load_safetensors(p, "lm_head.weight"), emb.T)
    np.testing.assert_array_equal(pyembed.load_safetensors(p, "ids", dtype=None), [0, 1, 2])
    with pytest.raises(KeyError, match="nope"):
        pyembed.load_safetensors(p, "nope")
    q = tmp_path / "bert.safetensors"
    pyembed.save_safetensors(q, {"bert.embeddings.word_embeddings.weight": emb,
                                 "bert.embeddings.position_embeddings.weight": emb[:2]})
    assert_same_bits(pyembed.load_safetensors(q), emb)
    r = tmp_path / "two.safetensors"
    pyembed.save_safetensors(r, {"a": emb, "b": emb})
    with pytest.raises(ValueError, match="pass name="):
        pyembed.load_safetensors(r)


def test_safetensors_arrays_are_copy_on_write(tmp_path):
    p = tmp_path / "w.safetensors"
    pyembed.save_safetensors(p, {"w": np.arange(6, dtype=np.float32).reshape(2, 3)})
    before = p.read_bytes()
    a = pyembed.load_safetensors(p)
    a[0, 0] = 99  # writeable, but the file does not change
    del a
    assert p.read_bytes() == before


def test_safetensors_written_by_the_package(tmp_path):
    st_np = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(4)
    tensors = {"model.embed_tokens.weight": rng.standard_normal((6, 3)).astype(np.float32),
               "f16": rng.standard_normal((2, 5)).astype(np.float16),
               "f64": rng.standard_normal((3, 2))}
    p = str(tmp_path / "pkg.safetensors")
    st_np.save_file(tensors, p)
    assert_same_bits(pyembed.load_safetensors(p), tensors["model.embed_tokens.weight"])
    np.testing.assert_array_equal(pyembed.load_safetensors(p, "f16"), tensors["f16"].astype(np.float32))
    assert_same_bits(pyembed.load_safetensors(p, "f64", dtype=np.float64), tensors["f64"])
    # and the package reads ours
    q = str(tmp_path / "ours.safetensors")
    pyembed.save_safetensors(q, tensors)
    back = st_np.load_file(q)
    for k, v in tensors.items():
        np.testing.assert_array_equal(back[k], v)


def test_safetensors_bf16_from_torch(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    t = torch.randn(5, 4).to(torch.bfloat16)
    p = str(tmp_path / "bf.safetensors")
    st_torch.save_file({"embeddings.word_embeddings.weight": t}, p)
    assert_same_bits(pyembed.load_safetensors(p), t.float().numpy())


@pytest.mark.parametrize("mangle,match", [
    (lambda b: b[:5], "no header length"),
    (lambda b: (10**9).to_bytes(8, "little") + b[8:], "does not fit"),
    (lambda b: b[:8] + b"{bad json" + b[17:], "not valid JSON"),
    (lambda b: b[:-4], "run past the end"),
])
def test_safetensors_malformed(tmp_path, mangle, match):
    p = tmp_path / "m.safetensors"
    pyembed.save_safetensors(p, {"w": np.ones((4, 2), np.float32)})
    p.write_bytes(mangle(p.read_bytes()))
    with pytest.raises(ValueError, match=match):
        pyembed.load_safetensors(p)


def test_safetensors_size_mismatch(tmp_path):
    import json

    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}}).encode()
    header += b" " * (-len(header) % 8)
    p = tmp_path / "m.safetensors"
    p.write_bytes(len(header).to_bytes(8, "little") + header + bytes(16))
    with pytest.raises(ValueError, match="hold 12 bytes but F32 \\[2, 2\\] needs 16"):
        pyembed.load_safetensors(p)
