"""pyembed's safetensors reader refuses what the safetensors package refuses, on the same bytes,
always with a ValueError naming the file (issue 11)."""
import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pyembed
from pyembed.safetensors import safetensors_names

st_numpy = pytest.importorskip("safetensors.numpy")


def _file(header, data=b"", raw=False):
    hb = header if raw else json.dumps(header).encode()
    return struct.pack("<Q", len(hb)) + hb + data


def _t(b, e, shape=(1,), dtype="F32"):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": [b, e]}


Z4, Z12 = b"\0" * 4, b"\0" * 12
DUP_INNER = (b'{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}')
DUP_TOP = (b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
           b'"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}')
CASES = {
    "ok": _file({"a": _t(0, 4)}, Z4),
    "empty": _file({}),
    "zero-size tensors": _file({"a": _t(0, 0, (0,)), "c": _t(0, 0, (0,)), "b": _t(0, 4)}, Z4),
    "metadata": _file({"__metadata__": {"x": "1"}, "a": _t(0, 4)}, Z4),
    "null metadata": _file({"__metadata__": None, "a": _t(0, 4)}, Z4),
    "padded header": _file(json.dumps({"a": _t(0, 4)}).encode() + b"   ", Z4, raw=True),
    "gap": _file({"a": _t(0, 4), "b": _t(8, 12)}, Z12),
    "overlap": _file({"a": _t(0, 4), "b": _t(0, 4)}, Z4),
    "trailing bytes": _file({"a": _t(0, 4)}, Z4 * 2),
    "empty with trailing bytes": _file({}, Z4),
    "not from 0": _file({"a": _t(4, 8)}, Z4 * 2),
    "past the end": _file({"a": _t(0, 8, (2,))}, Z4),
    "inner repeated key": _file(DUP_INNER, Z4, raw=True),
    "non-string metadata": _file({"__metadata__": {"x": 1}, "a": _t(0, 4)}, Z4),
    "list metadata": _file({"__metadata__": ["x"], "a": _t(0, 4)}, Z4),
    "NaN metadata": _file(b'{"__metadata__":{"x":NaN}}', raw=True),
    "deep nesting": _file(b'{"__metadata__":' + b"[" * 100000 + b"]" * 100000 + b"}", raw=True),
    "deep nesting in a tensor": _file(b'{"a":' + b"{\"x\":" * 50000 + b"1" + b"}" * 50001, raw=True),
    "three offsets": _file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 4]}}, Z4),
    "negative shape": _file({"a": _t(0, 4, (-1,))}, Z4),
    "float shape": _file({"a": _t(0, 4, (1.0,))}, Z4),
    "huge shape": _file({"a": _t(0, 4, (2**64,))}, Z4),
    "bool offsets": _file({"a": _t(False, True, (1,), "BOOL")}, b"\0"),
    "size mismatch": _file({"a": _t(0, 4, (2,))}, Z4),
    "lowercase dtype": _file({"a": _t(0, 4, (1,), "f32")}, Z4),
    "header too large": struct.pack("<Q", 100_000_001) + b"{}",
    "header past the end": struct.pack("<Q", 2**64 - 1) + b"{}",
    "not an object": _file(b"[]", raw=True),
    "not utf-8": _file(b'{"\xff":1}', raw=True),
    "short": b"\0" * 5,
}


def _package_accepts(data):
    try:
        st_numpy.load(data)
    except Exception:  # SafetensorError, or the package's own limits
        return False
    return True


def _ours(tmp_path, data):
    p = tmp_path / "m.safetensors"
    p.write_bytes(data)
    try:
        names = safetensors_names(p)
        for n in names:
            pyembed.load_safetensors(p, n, dtype=None)
    except ValueError as e:
        assert "m.safetensors" in str(e)
        return False
    return True


@pytest.mark.parametrize("name", list(CASES))
def test_same_verdict_as_the_safetensors_package(tmp_path, name):
    data = CASES[name]
    assert _ours(tmp_path, data) == _package_accepts(data)


def test_top_level_repeated_key_is_refused_though_the_package_keeps_the_last(tmp_path):
    # stricter than the package: which of the two entries is meant is a guess
    assert _package_accepts(_file(DUP_TOP, Z4, raw=True))
    assert not _ours(tmp_path, _file(DUP_TOP, Z4, raw=True))


def _valid():
    rng = np.random.default_rng(0)
    p = {"a": rng.standard_normal((3, 2)).astype(np.float32), "b": np.arange(5, dtype=np.int16)}
    from safetensors.numpy import save
    return save(p, metadata={"k": "v"})


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_files_never_accepted_when_the_package_refuses(tmp_path_factory, data):
    buf = bytearray(_valid())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(buf) - 1))
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "digit"]))
        if op == "flip":
            buf[i] = data.draw(st.integers(0, 255))
        elif op == "insert":
            buf[i:i] = data.draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and len(buf) > 9:
            del buf[i]
        else:
            buf[i] = ord(data.draw(st.sampled_from("0123456789")))
    ours = _ours(tmp_path_factory.mktemp("m"), bytes(buf))
    if ours:
        assert _package_accepts(bytes(buf))
