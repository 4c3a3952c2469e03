"""fill_normal / fill_uniform with first_row and row_step: the rows of a shard of a seeded table
(rows r, r + P, ... as pyembed.distributed holds them) equal those rows of the whole table's
fill, bit for bit, for odd widths too (a normal pair then straddles two rows)."""
import numpy as np
import pytest

from pyembed import _core

FILLS = {"normal": (_core.fill_normal, (0.5, 2.0)), "uniform": (_core.fill_uniform, (-1.0, 3.0))}


@pytest.mark.parametrize("kind", list(FILLS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dim", [1, 3, 4, 7])
def test_strided_rows_equal_the_whole_fill(kind, dtype, dim, threads):
    fill, args = FILLS[kind]
    whole = np.zeros((41, dim), dtype)
    fill(whole, 77, *args)
    for nt in (1, 2):
        threads(nt)
        for size in (1, 2, 3, 5):
            for rank in range(size):
                part = np.zeros((len(range(rank, 41, size)), dim), dtype)
                fill(part, 77, *args, rank, size)
                assert part.tobytes() == whole[rank::size].tobytes(), (size, rank, nt)
    tail = np.zeros((5, dim), dtype)  # a contiguous block from an offset: row_step 1
    fill(tail, 77, *args, 30, 1)
    assert tail.tobytes() == whole[30:35].tobytes()


@pytest.mark.parametrize("kind", list(FILLS))
def test_strided_fill_errors(kind):
    fill, args = FILLS[kind]
    flat = np.zeros(6, np.float32)
    with pytest.raises(ValueError, match="2-D"):
        fill(flat, 1, *args, 1, 2)
    out = np.zeros((3, 4), np.float32)
    with pytest.raises(OverflowError, match="64-bit counter"):
        fill(out, 1, *args, 2**62, 2**62)
    with pytest.raises(OverflowError):
        fill(out, 1, *args, -1, 1)
    assert not out.any()
