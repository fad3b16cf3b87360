"""The thread count handed to the C kernels: every path to OpenMP goes through
:func:`fastmlp._limits.usable_threads` (one bound, one clamp)."""
from . import _core
from ._limits import usable_threads

__all__ = ["peak_gflops", "set_num_threads", "threads"]


def set_num_threads(n):
    """Set the number of threads of every kernel, at most; ``n <= 0`` restores the default
    (``OMP_NUM_THREADS`` or the number of cores).

    Raises ``ValueError`` above ``fastmlp._limits.MAX_THREADS``, and clamps a count above
    ``THREADS_PER_CPU`` threads per usable CPU with a ``UserWarning``.
    """
    if isinstance(n, int) and not isinstance(n, bool) and n <= 0:
        _core.set_num_threads(0)
    else:
        _core.set_num_threads(usable_threads(n))


def peak_gflops(n_threads=None, seconds=0.2):
    """Measured FMA throughput in GFLOP/s of ``n_threads`` threads (default: the kernels'
    thread count) running for about ``seconds``; the thread count is bounded and clamped as
    by :func:`set_num_threads`."""
    if n_threads is not None:
        n_threads = usable_threads(n_threads)
    return _core.peak_gflops(n_threads, seconds)


class threads:
    """Sets the kernels' thread count for the duration of a block (``None``: leaves it)."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        if self.n is not None:
            n = usable_threads(self.n)
            self.saved = _core.get_num_threads()
            _core.set_num_threads(n)

    def __exit__(self, *exc):
        if self.n is not None and hasattr(self, "saved"):
            _core.set_num_threads(self.saved)
