"""Where the tests find MNIST, and the one reason they give when it is not there.

The tests read MNIST where ``fastmlp.datasets.load_mnist()`` does: ``$FASTMLP_DATA``, else the
cache directory (``~/.cache/fastmlp``). When that directory does not hold the four IDX files,
every test that needs them is skipped with :data:`SKIP_REASON`; none downloads them.
"""
import os

import pytest

from fastmlp.datasets import MNIST_FILES, mnist_dir


def _holds_mnist(directory):
    return all(os.path.isfile(os.path.join(directory, name))
               or os.path.isfile(os.path.join(directory, name + ".gz")) for name in MNIST_FILES)


DATA = mnist_dir() if _holds_mnist(mnist_dir()) else None
SKIP_REASON = (f"MNIST not found in {mnist_dir()}: set FASTMLP_DATA to the directory of the "
               f"four IDX files")
needs_mnist = pytest.mark.skipif(DATA is None, reason=SKIP_REASON)
