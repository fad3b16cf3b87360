"""The thread count handed to the C kernels: every path to OpenMP goes through
:func:`fastmlp._limits.usable_threads` (one bound, one clamp)."""
import os
import sys

from . import _core
from ._limits import usable_cpus, usable_threads

__all__ = ["call_threads", "dask_task_threads", "peak_gflops", "set_num_threads"]


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


def peak_gflops(n_threads=None, seconds=0.2, precision="fp32"):
    """Measure the CPU's FP32 FMA throughput (or its bf16 products') with the kernels'
    instruction set.

    The yardstick of the "% of peak" figures: independent FMA chains in the vectors of the
    instruction set in use, on every thread.

    Parameters
    ----------
    n_threads : int, optional
        Threads to run (default: the kernels' thread count), bounded and clamped as by
        :func:`set_num_threads`.
    seconds : float
        About how long to measure.
    precision : {"fp32", "bf16"}
        "bf16": chains of bf16 products instead (VDPBF16PS where the CPU has it, else its
        emulation; ``build_info()["bf16"]`` says which), each counting four flops a lane.

    Returns
    -------
    float
        GFLOP/s (an FMA counts two).
    """
    if n_threads is not None:
        n_threads = usable_threads(n_threads)
    return _core.peak_gflops(n_threads, seconds, precision)


def call_threads(n):
    """The ``n_threads=`` argument of one binding call for a model's ``n_threads``: 0 (the
    process's count) for None, else ``n`` bounded and clamped as by :func:`set_num_threads`.

    In a task on a Dask worker, None is at most the usable CPUs shared among the threads of
    the Dask workers of the process (:func:`dask_task_threads`): each of them may run a task
    at the same time.

    The count goes with the call, so concurrent calls with different counts never change the
    process-wide count (``set_num_threads``) under each other. A forked child runs every call
    on one thread whatever the count (src_c/frame/threads.c: libgomp is not fork-safe).
    """
    if n is None:
        share = dask_task_threads()
        if share is None or share >= _core.get_num_threads():
            return 0
        return share
    return usable_threads(n)


def dask_task_threads():
    """In a task on a ``dask.distributed`` worker: ``usable_cpus()`` divided among the threads
    of every Dask worker in this process (at least 1). None anywhere else, and without
    ``distributed`` imported."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        worker = distributed.get_worker()
    except (AttributeError, ValueError):
        return None
    threads = worker.state.nthreads
    try:   # workers that are threads of one process (LocalCluster(processes=False)) share it
        threads = max(threads, sum(w.state.nthreads for w in list(type(worker)._instances)
                                   if getattr(w.status, "name", "") in ("running", "paused")))
    except (AttributeError, TypeError):
        pass
    return max(1, usable_cpus() // max(1, threads))
