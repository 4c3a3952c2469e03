"""Word-vector files shared by the io, vocabulary-file and safetensors tests: bitwise
comparison, words with non-ASCII letters, and two small tables (one pyembed, one gensim)."""
import numpy as np
import pytest

from pyembed import Vectors


def bits(a):
    a = np.asarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def assert_same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(bits(a), bits(b))


def write_file(tmp_path, data, name="bad.txt"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def words(n):
    base = ["the", "héllo", "Ünïcödé", "日本語", "a-b", "x_1", "ß"]
    return [base[i] if i < len(base) else f"w{i}" for i in range(n)]


@pytest.fixture
def kv():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((40, 7)).astype(np.float32)
    v[0, :4] = [0.0, -0.0, 1e-45, 3.4028235e38]  # zero signs, the smallest subnormal, the largest
    v[1, :3] = [1.17549435e-38, -1e-8, 123456789.0]
    return Vectors(words(40), v)


@pytest.fixture(scope="module")
def gensim_kv():
    gensim = pytest.importorskip("gensim")
    rng = np.random.default_rng(5)
    n, d = 300, 16
    kv = gensim.models.KeyedVectors(d)
    kv.add_vectors(words(n), (rng.standard_normal((n, d)) * 0.3).astype(np.float32))
    return kv
