"""NumPy reference of the core kernels, written from the formulas in DESIGN.md (the test oracle).

Every function works on copies and returns new arrays, so a test can compare the C result with
the reference bit for bit.
"""
import numpy as np

INT_DTYPES = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)


def gather(W, ids):
    """Forward: ``W[ids]``, shape ``ids.shape + (dim,)``."""
    return np.take(W, np.asarray(ids).astype(np.int64), axis=0)


def _pad_row(padding_idx, num_rows):
    if padding_idx is None:
        return None
    return padding_idx % num_rows if padding_idx < 0 else padding_idx


def backward(grad, ids, grad_output, padding_idx=None, scale_grad_by_freq=False):
    """``np.add.at(grad, ids, grad_output)`` in the table's dtype, each row summed in the order its
    ids appear; the padding row gets nothing; with scale_grad_by_freq every contribution is first
    multiplied by ``(1 / count)`` rounded to the table's dtype (torch's formula, in which the
    product is formed before the sum). Returns the new grad (a copy)."""
    grad = np.array(grad, copy=True)
    rows, dim = grad.shape
    ids = np.asarray(ids).astype(np.int64).reshape(-1)
    d = np.asarray(grad_output).astype(grad.dtype).reshape(ids.size, dim)
    if scale_grad_by_freq and ids.size:
        _, inv, counts = np.unique(ids, return_inverse=True, return_counts=True)
        sc = (1.0 / counts[inv.reshape(-1)]).astype(grad.dtype)
        d = d * sc[:, None]
    pad = _pad_row(padding_idx, rows)
    keep = ids != pad if pad is not None else np.ones(ids.size, bool)
    np.add.at(grad, ids[keep], d[keep])
    return grad


def touched_after(touched, ids, padding_idx=None, num_rows=None):
    """Sorted unique rows with gradient after a backward of ``ids`` (padding row excluded)."""
    ids = np.asarray(ids).astype(np.int64).reshape(-1)
    pad = _pad_row(padding_idx, num_rows) if padding_idx is not None else None
    if pad is not None:
        ids = ids[ids != pad]
    return np.union1d(np.asarray(touched, np.int64), ids).astype(np.int64)


def zero_grad(grad, touched):
    """Clear the touched rows (a copy)."""
    grad = np.array(grad, copy=True)
    grad[np.asarray(touched, np.int64)] = 0
    return grad


def row_norms(R, norm_type):
    """p-norms of the rows of R in float64, summed left to right (np.cumsum is sequential, as
    the C loop), so that p = 1, 2 and inf agree with the kernel bit for bit."""
    R = np.asarray(R, np.float64)
    if R.shape[1] == 0:
        return np.zeros(R.shape[0])
    A = np.abs(R)
    if np.isinf(norm_type):
        return A.max(axis=1)
    if norm_type == 2.0:
        return np.sqrt(np.cumsum(R * R, axis=1)[:, -1])
    if norm_type == 1.0:
        return np.cumsum(A, axis=1)[:, -1]
    return np.cumsum(A ** norm_type, axis=1)[:, -1] ** (1.0 / norm_type)


def renorm(W, ids, max_norm, norm_type=2.0):
    """torch.embedding_renorm_: each distinct looked-up row whose norm exceeds max_norm is scaled
    by ``max_norm / (norm + 1e-7)`` (computed in float64, rounded to W's dtype). A copy."""
    W = np.array(W, copy=True)
    rows = np.unique(np.asarray(ids).astype(np.int64).reshape(-1))
    if rows.size == 0:
        return W
    norm = row_norms(W[rows], norm_type)
    big = norm > max_norm
    scale = (max_norm / (norm[big] + 1e-7)).astype(W.dtype)
    W[rows[big]] = W[rows[big]] * scale[:, None]
    return W


def bits(a):
    """The raw bits of a float array, for bitwise comparisons (-0.0 != 0.0, NaN == same NaN)."""
    a = np.ascontiguousarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def same_bits(a, b):
    """Whether two arrays are the same bits: shape, dtype and every byte (-0.0 != 0.0)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def numeric_grad(f, arr, eps=1e-6):
    """Central differences of the scalar ``f()`` with respect to every element of ``arr``,
    which is perturbed in place and put back."""
    num = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        up = f()
        arr[idx] = old - eps
        down = f()
        arr[idx] = old
        num[idx] = (up - down) / (2 * eps)
    return num


def snapshot(t):
    """Copies of what a failed call must leave alone: weight, grad (or None), touched rows."""
    g = t.grad
    return t.weight.copy(), None if g is None else g.copy(), t.touched.copy()


def assert_unchanged(t, snap, zero_grad_may_appear=False):
    """``t`` is bit for bit as ``snapshot`` saw it; ``zero_grad_may_appear``: a grad that was
    None may since have been allocated, all zeros."""
    w, g, touched = snap
    np.testing.assert_array_equal(bits(t.weight), bits(w))
    if g is None:
        assert t.grad is None or (zero_grad_may_appear and not t.grad.any())
    else:
        np.testing.assert_array_equal(bits(t.grad), bits(g))
    np.testing.assert_array_equal(t.touched, touched)
