"""The bounds fastmlp puts on what it is given: thread counts, hyperparameters, and the sizes
that a file may declare. Each bound is written once, here, and read by the estimator, the
loaders and the CLI (see ``docs/reliability.md``).

- A thread count is an integer in ``[1, MAX_THREADS]`` (``ValueError`` outside). Above
  ``THREADS_PER_CPU`` times the CPUs this process may run on, it is clamped with a
  ``UserWarning`` before OpenMP sees it: an OS that refuses a thread makes libgomp end the
  process.
- A hyperparameter the C kernels read as float32 is finite in float32.
- ``MAX_LOAD_BYTES`` caps the memory :func:`fastmlp.load` and
  :func:`fastmlp.checkpoint.load_checkpoint` allocate for one file; the caller raises it with
  ``max_bytes=``.
"""
import math
import numbers
import os
import warnings

import numpy as np

__all__ = ["FLOAT32_MAX", "MAX_LOAD_BYTES", "MAX_THREADS", "THREADS_PER_CPU", "check_float32",
           "check_n_threads", "usable_cpus", "usable_threads"]

#: The largest finite float32: a hyperparameter beyond it becomes infinite in the kernels.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: The largest thread count accepted anywhere (the argument, a model file, the CLI).
MAX_THREADS = 4096
#: Thread counts above this many per usable CPU are clamped to it, with a warning.
THREADS_PER_CPU = 4
#: Default cap, in bytes, on what loading one model file or checkpoint allocates.
MAX_LOAD_BYTES = 4 << 30


def check_n_threads(n, name="n_threads"):
    """``n`` as an int in ``[1, MAX_THREADS]``; ``ValueError`` otherwise."""
    if (isinstance(n, bool) or not isinstance(n, numbers.Integral)
            or not 1 <= n <= MAX_THREADS):
        raise ValueError(f"{name} must be an integer in [1, {MAX_THREADS}], got {n!r}")
    return int(n)


def usable_cpus():
    """The number of CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def usable_threads(n, name="n_threads"):
    """The thread count to hand to OpenMP for a requested ``n``: checked by
    :func:`check_n_threads`, then clamped to ``THREADS_PER_CPU * usable_cpus()`` with a
    ``UserWarning``."""
    n = check_n_threads(n, name)
    cap = THREADS_PER_CPU * usable_cpus()
    if n > cap:
        warnings.warn(f"{name}={n} is more than {THREADS_PER_CPU} threads per usable CPU "
                      f"({usable_cpus()}); using {cap}", UserWarning, stacklevel=3)
        return cap
    return n


def check_float32(value, name):
    """``value`` as a float whose float32 rounding is finite; ``ValueError`` otherwise."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = float(value)
        if math.isfinite(value) and abs(value) <= FLOAT32_MAX:
            return value
    raise ValueError(f"{name} must be a finite number within float32's range "
                     f"(|{name}| <= {FLOAT32_MAX:.4g}), got {value!r}")
