"""The kernels' thread count for the duration of a block."""
from . import _core

__all__ = ["threads"]


class threads:
    """Sets the kernels' thread count for the duration of a block."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        if self.n is not None:
            self.saved = _core.get_num_threads()
            _core.set_num_threads(self.n)

    def __exit__(self, *exc):
        if self.n is not None:
            _core.set_num_threads(self.saved)
