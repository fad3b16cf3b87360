"""The thread count handed to the C kernels: every path to OpenMP goes through
:func:`fastmlp._limits.usable_threads` (one bound, one clamp)."""
import os

from . import _core
from ._limits import usable_threads

__all__ = ["call_threads", "peak_gflops", "set_num_threads"]


def set_num_threads(n):
    """Set the number of threads of every kernel, at most; ``n <= 0`` restores the default
    (``OMP_NUM_THREADS`` or the number of cores).

    A model's ``n_threads`` overrides it for that model's calls.

    Parameters
    ----------
    n : int
        The most threads a kernel call uses; a count above ``THREADS_PER_CPU`` threads per
        usable CPU is clamped to that, with a ``UserWarning``.

    Raises
    ------
    ValueError
        If ``n`` is not an integer or is above ``fastmlp._limits.MAX_THREADS``.

    Examples
    --------
    >>> import fastmlp
    >>> fastmlp.set_num_threads(1)
    >>> fastmlp.get_num_threads()
    1
    >>> fastmlp.set_num_threads(0)   # back to the default
    """
    if isinstance(n, int) and not isinstance(n, bool) and n <= 0:
        _core.set_num_threads(0)
    else:
        _core.set_num_threads(usable_threads(n))


def peak_gflops(n_threads=None, seconds=0.2):
    """Measure the CPU's FP32 FMA throughput with the kernels' instruction set.

    The yardstick of the "% of peak" figures: independent FMA chains in the vectors of the
    instruction set in use, on every thread.

    Parameters
    ----------
    n_threads : int, optional
        Threads to run (default: the kernels' thread count), bounded and clamped as by
        :func:`set_num_threads`.
    seconds : float
        About how long to measure.

    Returns
    -------
    float
        GFLOP/s (an FMA counts two).
    """
    if n_threads is not None:
        n_threads = usable_threads(n_threads)
    return _core.peak_gflops(n_threads, seconds)


def call_threads(n):
    """The ``n_threads=`` argument of one binding call for a model's ``n_threads``: 0 (the
    process's count) for None, else ``n`` bounded and clamped as by :func:`set_num_threads`.

    The count goes with the call, so concurrent calls with different counts never change the
    process-wide count (``set_num_threads``) under each other. A forked child runs every call
    on one thread whatever the count (src_c/frame/threads.c: libgomp is not fork-safe).
    """
    if n is None:
        return 0
    return usable_threads(n)
