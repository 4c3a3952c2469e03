"""The distributed tests run in every rank of ``mpiexec -n P python -m pytest tests/distributed``
(CI: P = 2, 3, 4) and, with P = 1, in the normal single-process run. Without mpi4py they are
skipped with the reason. Each test does all its collectives before it asserts (``agree``), so a
failing rank cannot leave the others waiting; CI still runs them under a timeout."""
import importlib.util
import pathlib

import pytest

HERE = pathlib.Path(__file__).resolve().parent
HAVE_MPI = importlib.util.find_spec("mpi4py") is not None


def pytest_collection_modifyitems(config, items):
    if HAVE_MPI:
        return
    skip = pytest.mark.skip(reason="mpi4py is not installed (pip install 'pyembed[mpi]')")
    for item in items:
        if HERE in pathlib.Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture
def comm():
    from mpi4py import MPI
    return MPI.COMM_WORLD


@pytest.fixture
def agree(comm):
    """``agree(ok)`` -> whether ``ok`` holds on every rank (a collective: call it on all)."""
    return lambda ok: all(comm.allgather(bool(ok)))
