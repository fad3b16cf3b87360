"""Shared test settings (Hypothesis runs derandomized on CI so a red run can be replayed) and
fixtures."""
import os

import pytest
from hypothesis import settings

from mnist_data import DATA, SKIP_REASON

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60)
settings.register_profile("dev", deadline=None, max_examples=40)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# Subprocesses started by tests (`python -m fastmlp ...`, `python -c ...`) must import the
# installed package, not the uncompiled checkout in the working directory.
os.environ["PYTHONSAFEPATH"] = "1"


@pytest.fixture
def restore_isa_and_threads():
    """Puts back the instruction set and thread count a test changes (_core.set_isa,
    set_num_threads): they are process-wide."""
    from fastmlp import _core
    before = _core.build_info()
    yield
    _core.set_isa(before["isa"])
    _core.set_num_threads(0)
    _core.set_bf16_emulated(os.environ.get("FASTMLP_BF16") == "emulate")


@pytest.fixture
def use_isa(restore_isa_and_threads):
    """use_isa(isa, threads=None): runs the rest of the test on that instruction set (and
    thread count, if given), or skips it where the CPU lacks the set; both are put back after
    the test."""
    from fastmlp import _core
    available = _core.build_info()["isa_available"]

    def use(isa, threads=None):
        if isa not in available:
            pytest.skip(f"this CPU lacks {isa}")
        _core.set_isa(isa)
        if threads is not None:
            _core.set_num_threads(threads)
    return use


@pytest.fixture(scope="session")
def mnist_files():
    """The directory holding the four MNIST files; skips the test when there is none (see
    mnist_data.py)."""
    if DATA is None:
        pytest.skip(SKIP_REASON)
    return DATA
