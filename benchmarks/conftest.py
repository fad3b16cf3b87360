"""Benchmark fixtures: MNIST-shaped data, and the machine's FP32 peak for % of peak figures."""
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from contenders import BATCH, mnist_digits, mnist_like  # noqa: E402


@pytest.fixture(scope="session")
def data():
    return mnist_like()


@pytest.fixture(scope="session")
def digits():
    """The real MNIST training digits and labels from FASTMLP_DATA (skips without them)."""
    import os
    if not os.environ.get("FASTMLP_DATA"):
        pytest.skip("FASTMLP_DATA not set")
    X, y, _ = mnist_digits()
    return X, y


@pytest.fixture(scope="session")
def batch(data):
    X, y = data
    return X[:BATCH].copy(), y[:BATCH].copy()


@pytest.fixture(scope="session")
def peak_gflops():
    """Measured FP32 FMA peak of this machine with the kernels' thread count, or None: the
    highest of five short probes, since a probe that ran while the shared machine was busy
    reads low and would inflate every % of peak."""
    from fastmlp import _core
    probe = getattr(_core, "peak_gflops", None)
    return max(probe(seconds=0.2) for _ in range(5)) if probe else None


@pytest.fixture(autouse=True)
def settle():
    """A pause before each benchmark: the thread pools of the previous contender keep spinning
    for a while after its last call (OpenBLAS's, behind the NumPy reference, for 0.1-0.2 s) and
    would slow down whatever is measured next (20 fastmlp steps right after one NumPy step:
    2.7x as long)."""
    time.sleep(0.3)
