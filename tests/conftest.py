"""Shared test settings: one hypothesis profile for the whole suite and thread-count hygiene."""
import os

import pytest
from hypothesis import HealthCheck, settings

import pyembed

# derandomize: CI runs the same examples every time (a failure reproduces); modest example counts
# keep the core suite well under a minute on 2 cores. HYPOTHESIS_PROFILE=thorough for more.
settings.register_profile(
    "pyembed",
    deadline=None,
    max_examples=60,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", parent=settings.get_profile("pyembed"), max_examples=1000,
                          derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "pyembed"))


@pytest.fixture(autouse=True)
def _restore_num_threads():
    """Tests may call pyembed.set_num_threads; put the process-wide value back afterwards."""
    n = pyembed.get_num_threads()
    yield
    pyembed.set_num_threads(n)


@pytest.fixture(params=["cached", "streamed"])
def stores(request):
    """Run a test twice: with the default streaming threshold (a sixteenth of the last-level cache,
    so small test arrays take the cached paths) and with every output streamed, so the
    non-temporal-store paths of every kernel are exercised on any machine."""
    old = pyembed._core.stream_threshold()[1]
    if request.param == "streamed":
        pyembed._core.stream_threshold(1)
    yield request.param
    pyembed._core.stream_threshold(old)


@pytest.fixture
def threads():
    """``set_num_threads`` for a test; ``_restore_num_threads`` puts the old count back."""
    return pyembed.set_num_threads
