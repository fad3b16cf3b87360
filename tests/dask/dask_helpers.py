"""What the Dask tests send to the workers: the data, the thread probe, the memory probe.

conftest.py registers this module with cloudpickle by value, so workers need not import it."""
import os

import dask.array as da
import numpy as np

N_FEATURES = 20
N_CLASSES = 3
#: Seconds a cluster has to start its workers or to close.
CLUSTER_TIMEOUT = 60


def labelled_blocks(n_blocks, rows_per_block, seed):
    """(X, y): a dask array of ``n_blocks`` blocks of shape (rows_per_block, N_FEATURES),
    float32, and its labels in 0..N_CLASSES-1 (the argmax of a fixed linear map plus noise),
    built block by block where they are computed."""
    rng = da.random.RandomState(seed)
    X = rng.standard_normal((n_blocks * rows_per_block, N_FEATURES),
                            chunks=(rows_per_block, N_FEATURES)).astype(np.float32)
    W = np.random.default_rng(seed).standard_normal((N_FEATURES, N_CLASSES))
    noise = rng.standard_normal((n_blocks * rows_per_block, N_CLASSES),
                                chunks=(rows_per_block, N_CLASSES))
    y = (X @ W + 0.3 * noise).argmax(axis=1)
    return X, y


def thread_probe(estimator, X, y):
    """A scorer whose "score" is the thread count a call of ``estimator``'s kernels runs on
    here, at most: what fastmlp.MLP's ``n_threads`` resolves to, or the process's count for
    the drop-in classes (which have no ``n_threads``)."""
    import fastmlp
    if not hasattr(estimator, "n_threads"):
        return float(fastmlp.get_num_threads())
    return float(effective_threads(estimator.n_threads))


def effective_threads(n_threads=None):
    """The most threads a kernel call with this ``n_threads`` runs on, here and now."""
    import fastmlp
    from fastmlp._threading import call_threads
    return call_threads(n_threads) or fastmlp.get_num_threads()


def openmp_threads(estimator, X, y):
    """A scorer whose "score" is OpenMP's own default thread count in this process (what
    threadpoolctl reads from the OpenMP runtime fastmlp is linked with)."""
    from threadpoolctl import threadpool_info
    counts = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "openmp"]
    return float(max(counts))


def pid_probe(estimator, X, y):
    """A scorer whose "score" is the id of the process that fitted ``estimator``."""
    return float(os.getpid())


def worker_threads():
    """(In a task) What the worker running it gives fastmlp: its thread count, its usable
    CPUs, OMP_NUM_THREADS, fastmlp's process-wide thread count, and what
    fastmlp.MLP(n_threads=None) runs on."""
    import fastmlp
    from distributed import get_worker
    from fastmlp._limits import usable_cpus
    return {"nthreads": get_worker().state.nthreads, "cpus": usable_cpus(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "fastmlp": fastmlp.get_num_threads(), "MLP": effective_threads()}


def warm_up(model):
    """Predicts a few rows with ``model`` in this process: the imports and first allocations
    of a prediction happen here, not in what is measured after."""
    import dask_ml.wrappers  # noqa: F401
    X = np.zeros((10, model.n_features_in_))
    model.predict(X)
    if hasattr(model, "predict_proba"):
        model.predict_proba(X)


def reset_peak_rss():
    """Resets this process's peak resident set size (Linux: /proc/self/clear_refs, 5) and
    returns its resident set size now, in bytes."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_bytes("VmRSS")


def peak_rss():
    """This process's peak resident set size since the last reset, in bytes."""
    return _status_bytes("VmHWM")


def _status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")
