"""The thread count handed to the C kernels: every path to OpenMP goes through
:func:`fastmlp._limits.usable_threads` (one bound, one clamp)."""
import os

from . import _core
from ._limits import usable_threads

__all__ = ["call_threads", "peak_gflops", "set_num_threads"]


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


# libgomp hangs in a child forked after the parent ran a parallel region. src_c/frame/threads.c
# makes a forked child use one thread, but only for the process-wide count
# (fm_get_num_threads): a per-call count (fm_net.n_threads) bypasses it, so it is capped here.
_forked_child = False


def _mark_forked_child():
    global _forked_child
    _forked_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked_child)


def call_threads(n):
    """The ``n_threads=`` argument of one binding call for a model's ``n_threads``: 0 (the
    process's count) for None, else ``n`` bounded and clamped as by :func:`set_num_threads`.

    The count goes with the call, so concurrent calls with different counts never change the
    process-wide count (``set_num_threads``) under each other. In a forked child it is 1, as
    the process-wide count is there.
    """
    if n is None:
        return 0
    n = usable_threads(n)
    return 1 if _forked_child else n
