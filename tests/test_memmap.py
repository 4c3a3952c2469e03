"""Tables over files mapped into memory (Embedding.from_memmap, Table.wrap): zero copy, the same
bits as a table in memory, memory that grows with the rows touched rather than the table, flush
and reopen, read-only maps, sizes that disagree with the file, safetensors files."""
import gc
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pyembed
from pyembed import optim
from child import PKG_PARENT

E = pyembed.Embedding

# The child trains a 1 GiB table (4 Mi rows of 64 float32) with lazy Adam whose moments are two
# more 1 GiB maps: 3 GiB mapped, created sparse (truncate) so that only the touched pages reach
# the disk (~40 MB here). It allows itself a peak RSS of a quarter of the table file.
RSS_CHILD = textwrap.dedent("""
    import os, resource, sys
    import numpy as np
    import pyembed

    def hwm():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))

    path, V, D, steps, batch = sys.argv[1], int(sys.argv[2]), 64, 100, 32
    emb = pyembed.Embedding.from_memmap(path, V, D, mode="w+")
    opt = pyembed.optim.Adam(emb, lr=0.05, lazy=True)
    opt.state[emb] = {"step": 0, **emb.state_memmaps("exp_avg", "exp_avg_sq")}
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, V, batch) for _ in range(steps)]
    targets = [rng.standard_normal((batch, D)).astype(np.float32) for _ in range(steps)]
    base = hwm()
    for ids, tgt in zip(batches, targets):
        out = emb(ids)
        emb.backward(ids, out - tgt)
        opt.step()
        opt.zero_grad()
    emb.flush()
    peak = hwm()
    # the same steps on an in-memory table of just the rows touched give the same bits
    uniq = np.unique(np.concatenate(batches))
    ref = pyembed.Embedding(len(uniq), D, init="zeros")
    ropt = pyembed.optim.Adam(ref, lr=0.05, lazy=True)
    for ids, tgt in zip(batches, targets):
        c = np.searchsorted(uniq, ids)
        ref.backward(c, ref(c) - tgt)
        ropt.step()
        ropt.zero_grad()
    same = (np.array_equal(emb.weight[uniq], ref.weight) and
            np.array_equal(opt.state[emb]["exp_avg_sq"][uniq], ropt.state[ref]["exp_avg_sq"]))
    print(base, peak, len(uniq), int(same), os.stat(path).st_blocks * 512)
""")


def test_training_a_table_4x_larger_than_its_peak_rss(tmp_path):
    V, D = 1 << 22, 64
    table_bytes = V * D * 4
    path = str(tmp_path / "big.f32")
    env = dict(os.environ)
    if "ASAN_OPTIONS" in env:
        # under ASan (CI's sanitizer run) freed blocks wait in a 256 MiB quarantine, which this
        # child's per-step temporaries fill: its peak sat at 256 +- 0.3 MiB, failing by chance.
        # A small quarantine measures the memory pyembed keeps (86 MiB before training there).
        env["ASAN_OPTIONS"] += ":quarantine_size_mb=16"
    r = subprocess.run([sys.executable, "-c", RSS_CHILD, path, str(V)], cwd=PKG_PARENT,
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    base, peak, touched, same, on_disk = map(int, r.stdout.split())
    print(f"peak RSS {peak / 2**20:.1f} MiB (before training {base / 2**20:.1f} MiB), "
          f"{touched} rows touched, {on_disk / 2**20:.1f} MiB of the file on disk")
    assert os.path.getsize(path) == table_bytes
    assert same == 1, "the mapped table's rows differ from the in-memory reference"
    assert peak * 4 <= table_bytes, f"peak RSS {peak / 2**20:.0f} MiB for a 1 GiB table file"
    # growth by the rows touched: their weight, grad and two moments, a few pages each
    assert peak - base <= touched * 4 * 4 * 4096 + (16 << 20), (peak - base, touched)
    assert on_disk < table_bytes // 8  # the file stayed sparse: only touched pages were written


def train(emb, opt, steps=12, seed=0, padding=None):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        ids = rng.integers(0, emb.num_embeddings, (3, 5))
        if padding is not None:
            ids[0, 0] = padding
        out = emb(ids)
        emb.backward(ids, out - rng.standard_normal(out.shape).astype(emb.dtype))
        opt.step()
        opt.zero_grad()


OPTIMIZERS = [
    ("adam lazy", lambda p: optim.Adam(p, lr=0.1, lazy=True), ("exp_avg", "exp_avg_sq")),
    ("adam dense amsgrad", lambda p: optim.Adam(p, lr=0.1, amsgrad=True, weight_decay=0.1),
     ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")),
    ("adamw lazy", lambda p: optim.AdamW(p, lr=0.1, lazy=True), ("exp_avg", "exp_avg_sq")),
    ("sgd momentum", lambda p: optim.SGD(p, lr=0.1, momentum=0.9), ("momentum_buffer",)),
    ("sparse adam", lambda p: optim.SparseAdam(p, lr=0.1), ("exp_avg", "exp_avg_sq")),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, make, keys", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_same_bits_as_a_table_in_memory(tmp_path, dtype, name, make, keys):
    init = np.random.default_rng(1).standard_normal((40, 6)).astype(dtype)
    ref = E.from_pretrained(init, freeze=False, padding_idx=2)
    path = tmp_path / "t.bin"
    init.tofile(path)
    emb = E.from_memmap(path, embedding_dim=6, dtype=dtype, padding_idx=2)
    assert emb.shape == (40, 6) and emb.dtype == dtype and emb.padding_idx == 2
    ropt, opt = make(ref), make(emb)
    st = emb.state_memmaps(*keys)
    opt.state[emb] = dict(st) if name == "sgd momentum" else {"step": 0, **st}
    train(ref, ropt, padding=2)
    train(emb, opt, padding=2)
    assert np.array_equal(emb.weight, ref.weight)
    for k in keys:
        assert opt.state[emb][k] is st[k]  # the optimizer kept the mapped arrays
        assert np.array_equal(st[k], ropt.state[ref][k]), k
    emb.flush()
    assert np.array_equal(np.fromfile(path, dtype).reshape(40, 6), ref.weight)
    for k in keys:
        assert np.array_equal(np.fromfile(f"{path}.{k}", dtype).reshape(40, 6), st[k])


def test_zero_copy_both_ways_and_kept_alive(tmp_path):
    path = tmp_path / "t.f32"
    emb = E.from_memmap(path, 8, 4, mode="w+")
    other = np.memmap(path, np.float32, "r+", shape=(8, 4))
    other[3] = 7.0  # a write through another map of the file is seen by the next lookup
    assert np.array_equal(emb([3]), np.full((1, 4), 7.0, np.float32))
    emb.weight[5] = 2.0  # and a write through the table reaches the file
    assert np.array_equal(other[5], np.full(4, 2.0, np.float32))
    t = emb.table
    del emb, other
    gc.collect()
    assert np.array_equal(t.lookup([3, 5])[:, 0], [7.0, 2.0])  # the table holds its map
    a = np.zeros((3, 2))
    refs = sys.getrefcount(a)
    w = pyembed.Table.wrap(a)
    assert sys.getrefcount(a) == refs + 1
    assert np.shares_memory(w.weight, a) and w.weight.__array_interface__["data"][0] == \
        a.__array_interface__["data"][0]
    del w
    assert sys.getrefcount(a) == refs


def test_flush_reopen_and_to_memmap_round_trip(tmp_path):
    path = tmp_path / "t.f32"
    emb = E.from_memmap(path, 30, 5, mode="w+")
    emb.weight = np.random.default_rng(0).standard_normal((30, 5))
    opt = optim.Adam(emb, lr=0.1, lazy=True)
    opt.state[emb] = {"step": 0, **emb.state_memmaps("exp_avg", "exp_avg_sq")}
    train(emb, opt, steps=4)
    emb.flush()
    again = E.from_memmap(path, embedding_dim=5, mode="r")
    assert np.array_equal(again.weight, emb.weight)
    # a second run resumes from the moments beside the table
    emb2 = E.from_memmap(path, num_embeddings=30)
    st = emb2.state_memmaps("exp_avg", "exp_avg_sq")
    assert np.array_equal(st["exp_avg"], opt.state[emb]["exp_avg"])
    copy = emb.to_memmap(tmp_path / "copy.f32")
    assert np.array_equal(np.fromfile(tmp_path / "copy.f32", np.float32).reshape(30, 5),
                          emb.weight)
    assert copy.shape == (30, 5) and copy.weight.flags.writeable
    mem = E(6, 3, seed=0, padding_idx=1)
    mem.freeze_rows([4])
    m2 = mem.to_memmap(tmp_path / "m.f32")
    assert np.array_equal(m2.weight, mem.weight) and m2.padding_idx == 1
    assert list(m2.frozen_rows) == [4]
    mem.flush()  # nothing to do in memory
    back = pickle.loads(pickle.dumps(copy))  # an in-memory copy
    assert np.array_equal(back.weight, copy.weight)
    back.weight[0] = 1.0
    assert not np.array_equal(back.weight[0], copy.weight[0])


def test_mode_r_refuses_training_and_leaves_the_file(tmp_path):
    path = tmp_path / "t.f32"
    data = np.arange(24, dtype=np.float32).reshape(6, 4)
    data.tofile(path)
    emb = E.from_memmap(path, embedding_dim=4, mode="r")
    assert np.array_equal(emb([5, 0]), data[[5, 0]])
    assert not emb.weight.flags.writeable
    g = np.ones((1, 4), np.float32)
    for call in (lambda: emb.backward([1], g), lambda: optim.SGD(emb, lr=0.1),
                 lambda: emb.attend_backward(np.ones((1, 4)), np.ones((1, 6))),
                 lambda: emb.table.add_dense_grad(np.ones((6, 4))),
                 lambda: emb.table.mark_all_touched(), lambda: emb.table.renorm([1], 1.0),
                 lambda: setattr(emb, "weight", data), lambda: emb.state_memmaps("m")):
        with pytest.raises(ValueError, match="mode=.r"):
            call()
    assert emb.grad is None
    assert np.array_equal(np.fromfile(path, np.float32).reshape(6, 4), data)
    assert not os.path.exists(f"{path}.m")
    emb.flush()  # a read-only map has nothing to write


def test_sizes_that_disagree_with_the_file(tmp_path):
    path = tmp_path / "t.f32"
    np.zeros((10, 4), np.float32).tofile(path)
    for args, needle in ((dict(num_embeddings=11, embedding_dim=4), "160 bytes but a 11 x 4"),
                         (dict(embedding_dim=3), "12 bytes each"),
                         (dict(num_embeddings=3), "12 bytes each"),
                         (dict(embedding_dim=3, dtype=np.float64), "24 bytes each"),
                         (dict(), "embedding_dim")):
        with pytest.raises(ValueError, match=needle):
            E.from_memmap(path, **args)
    assert E.from_memmap(path, num_embeddings=20).shape == (20, 2)
    assert E.from_memmap(path, embedding_dim=2, dtype=np.float64).shape == (10, 2)


def test_safetensors_tensor_mapped_in_place(tmp_path):
    path = str(tmp_path / "m.safetensors")
    rng = np.random.default_rng(0)
    w = rng.standard_normal((12, 8)).astype(np.float32)
    bias = np.arange(5, dtype=np.int64)
    pyembed.save_safetensors(path, {"model.embed_tokens.weight": w, "bias": bias})
    with pytest.raises(ValueError, match="2 tensors"):
        E.from_memmap(path)
    with pytest.raises(ValueError, match="I64"):
        E.from_memmap(path, name="bias")
    with pytest.raises(ValueError, match="embedding_dim=4"):
        E.from_memmap(path, embedding_dim=4, name="model.embed_tokens.weight")
    emb = E.from_memmap(path, 12, 8, name="model.embed_tokens.weight")
    assert np.array_equal(emb.weight, w)
    ref = E.from_pretrained(w, freeze=False)
    train(emb, optim.SGD(emb, lr=0.1))
    train(ref, optim.SGD(ref, lr=0.1))
    emb.flush()
    # the file was changed in place and is still a valid safetensors file
    assert np.array_equal(pyembed.load_safetensors(path, "model.embed_tokens.weight"),
                          ref.weight)
    assert np.array_equal(pyembed.load_safetensors(path, "bias"), bias)
    st = emb.state_memmaps("momentum_buffer")["momentum_buffer"]
    assert st.shape == (12, 8) and os.path.getsize(path + ".momentum_buffer") == 12 * 8 * 4


def test_table_wrap_read_only_array():
    a = np.ones((4, 3), np.float32)
    a.flags.writeable = False
    t = pyembed.Table.wrap(a)
    assert np.array_equal(t.lookup([1]), np.ones((1, 3)))
    with pytest.raises(ValueError, match="backward needs a writeable table"):
        t.backward([1], np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match="lookup with max_norm"):
        t.lookup([1], max_norm=0.5)
    with pytest.raises(ValueError, match="an optimizer step"):
        pyembed._core.sgd_step(np.ones((4, 3), np.float32), np.ones((4, 3), np.float32),
                               lr=0.1, table=t)
    assert (a == 1).all()


def test_embedding_bag_over_a_map(tmp_path):
    path = tmp_path / "b.f32"
    w = np.random.default_rng(0).standard_normal((9, 3)).astype(np.float32)
    w.tofile(path)
    bag = pyembed.EmbeddingBag.from_memmap(path, embedding_dim=3)
    bag.mode = "sum"
    ref = pyembed.EmbeddingBag.from_pretrained(w, freeze=False, mode="sum")
    out = bag([1, 2, 4, 4], [0, 2])
    assert np.array_equal(out, ref([1, 2, 4, 4], [0, 2]))
    bag.backward(np.ones_like(out))
    copy = bag.to_memmap(tmp_path / "c.f32")
    assert isinstance(copy, pyembed.EmbeddingBag) and copy.mode == "sum"
    assert np.array_equal(copy([3], [0]), ref([3], [0]))


@pytest.mark.parametrize("make", [
    lambda e: optim.Adam(e, lr=1e-2, lazy=True, in_backward=True),
    lambda e: optim.RowWiseAdagrad(e, lr=0.1, in_backward=True),
], ids=["adam", "rowwise_adagrad"])
def test_optimizer_in_backward_over_a_map(tmp_path, make):
    # the in-backward kernel writes the mapped rows directly: the same bits as the same optimizer
    # over a table in memory, and the file holds them after flush
    path = tmp_path / "t.bin"
    e = pyembed.Embedding.from_memmap(path, 500, 12, mode="w+")
    e.weight[:] = np.random.default_rng(0).standard_normal((500, 12), dtype=np.float32)
    ref = pyembed.Embedding.from_pretrained(np.array(e.weight), freeze=False)
    opts = [make(e), make(ref)]
    rng = np.random.default_rng(1)
    for _ in range(4):
        ids = rng.integers(0, 500, 40)
        g = rng.standard_normal((40, 12), dtype=np.float32)
        for emb, opt in zip((e, ref), opts):
            emb.backward(ids, g)
            opt.step()
            opt.zero_grad()
    assert e.grad is None
    assert np.array_equal(e.weight, ref.weight)
    e.flush()
    assert np.array_equal(np.fromfile(path, np.float32).reshape(500, 12), ref.weight)
