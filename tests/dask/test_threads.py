"""fastmlp.MLP's default thread count on Dask workers that are threads of one process
(``LocalCluster(processes=False)``, no nanny to set OMP_NUM_THREADS): the process's CPUs are
shared among the workers' threads, so concurrent tasks do not oversubscribe them; outside a
Dask task nothing changes."""
from dask_available import skip_without_dask

skip_without_dask()

# The rest needs the [dask] extra.
import numpy as np
import pytest
from distributed import Client, LocalCluster

import fastmlp
from fastmlp._limits import usable_cpus
from fastmlp._threading import call_threads, dask_task_threads

import dask_helpers
from dask_helpers import CLUSTER_TIMEOUT


def test_outside_a_dask_task_the_default_is_the_process_count(client):
    assert dask_task_threads() is None
    assert call_threads(None) == 0          # 0: the process's count, as without Dask
    assert call_threads(3) == 3


def _fit_in_task():
    model = fastmlp.MLP(hidden_layer_sizes=(16,), epochs=2, batch_size=32, shuffle=True,
                        random_state=0, loss="cross_entropy", learning_rate=0.05)
    X = np.random.default_rng(0).standard_normal((500, 20)).astype(np.float32)
    model.fit(X, (X[:, 0] > 0).astype(int))
    return dask_helpers.effective_threads(), dask_task_threads(), model.coefs_


def test_threaded_workers_share_the_cpus():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, \
            Client(cluster, set_as_default=False, timeout=CLUSTER_TIMEOUT) as threaded:
        workers = list(threaded.scheduler_info()["workers"])
        results = threaded.gather([threaded.submit(_fit_in_task, workers=[w], pure=False)
                                   for w in workers])
    share = max(1, usable_cpus() // 2)        # 2 workers of 1 thread in this process
    _, _, local_coefs = _fit_in_task()        # here, on the process's count
    for effective, task_share, coefs in results:
        assert task_share == share
        assert effective == min(share, fastmlp.get_num_threads())
        assert effective * 2 <= max(2, usable_cpus())     # no oversubscription
        for a, b in zip(coefs, local_coefs):
            assert np.array_equal(a, b)
