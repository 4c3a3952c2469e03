"""The distributed tests run in every rank of ``mpiexec -n P python -m pytest tests/distributed``
(CI: P = 2, 3, 4) and, with P = 1, in the normal single-process run. Without mpi4py those that
need MPI are skipped with the reason. Each test does all its collectives before it asserts
(``agree``), so a failing rank cannot leave the others waiting; CI still runs them under a
timeout."""
import pathlib

import pytest

HERE = pathlib.Path(__file__).resolve().parent
try:
    import mpi4py  # the package only: MPI itself starts at the first test (the comm fixture)
    HAVE_MPI = True
except ImportError:
    HAVE_MPI = False


def pytest_collection_modifyitems(config, items):
    if HAVE_MPI:
        return
    skip = pytest.mark.skip(reason="mpi4py is not installed (pip install 'pyembed[mpi]')")
    for item in items:
        # the routing tests are pure NumPy: they run without MPI
        if HERE in pathlib.Path(str(item.fspath)).resolve().parents and \
                "comm" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


@pytest.fixture
def comm():
    from mpi4py import MPI
    return MPI.COMM_WORLD


@pytest.fixture
def agree(comm):
    """``agree(ok)`` -> whether ``ok`` holds on every rank (a collective: call it on all)."""
    return lambda ok: all(comm.allgather(bool(ok)))
