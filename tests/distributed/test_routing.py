"""The routing plans (pure NumPy, no MPI) against a plain reference, with ids above 2^31:
a table with such ids has more than 2^31 rows (8 GiB at one float32 column), too big to
allocate in CI, so the arithmetic that places and orders them is tested here, and the MPI path
carries such ids through a table of width 0 (tests/distributed/test_sharded.py)."""
import numpy as np
import pytest

from pyembed.distributed.routing import (displacements, num_local_rows, occurrence_plan,
                                         unique_plan)

BIG = 2**40


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("offset", [0, 2**31 - 5, 2**33, BIG - 100])
def test_plans_against_reference(size, offset):
    rng = np.random.default_rng(size)
    flat = (offset + rng.integers(0, 60, 41)).astype(np.int64)
    send_ids, counts, where = unique_plan(flat, size)
    # every distinct id once, grouped by owner rank, ascending within an owner
    ref = [sorted({int(i) for i in flat if i % size == k}) for k in range(size)]
    assert send_ids.tolist() == sum(ref, [])
    assert counts.tolist() == [len(r) for r in ref]
    assert np.array_equal(send_ids[where], flat)
    pad = int(flat[3])
    order, ocounts = occurrence_plan(flat, size, pad)
    ref_order = [i for k in range(size) for i in range(flat.size)
                 if flat[i] % size == k and flat[i] != pad]
    assert order.tolist() == ref_order
    assert ocounts.tolist() == [sum(1 for i in flat if i % size == k and i != pad)
                                for k in range(size)]


def test_local_rows_cover_the_table():
    for n in (0, 1, 5, 12, 2**41 + 3):
        for size in (1, 2, 3, 4):
            counts = [num_local_rows(n, k, size) for k in range(size)]
            assert sum(counts) == n
            assert max(counts) - min(counts) <= 1
    assert displacements(np.array([3, 0, 2])).tolist() == [0, 3, 3]


def test_empty_batch():
    send_ids, counts, where = unique_plan(np.zeros(0, np.int64), 3)
    assert send_ids.size == 0 and counts.tolist() == [0, 0, 0] and where.size == 0
    order, counts = occurrence_plan(np.zeros(0, np.int64), 3)
    assert order.size == 0 and counts.tolist() == [0, 0, 0]
