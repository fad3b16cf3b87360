"""Distributed search: GridSearchCV under joblib's dask backend fits every candidate on the
cluster's workers, each fit on one thread (a worker of one thread gets one core), and finds
what the same search finds in one process."""
from dask_available import skip_without_dask

skip_without_dask()

# The rest needs the [dask] extra.
import os
import warnings

import dask
import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import dask_helpers
from dask_helpers import labelled_blocks
from estimators import ESTIMATORS

GRIDS = {"MLP": {"hidden_layer_sizes": [(8,), (32,)], "learning_rate": [0.005, 0.05]},
         "MLPClassifier": {"hidden_layer_sizes": [(8,), (32,)],
                           "learning_rate_init": [0.001, 0.01]},
         "MLPRegressor": {"hidden_layer_sizes": [(8,), (32,)],
                          "learning_rate_init": [0.001, 0.01]}}
CV = 2


def test_workers_resolve_one_thread(client):
    """What fastmlp sees on each worker: one thread per task, within the cores it may use."""
    # As a task: on a thread of the worker's pool, where fits run.
    workers = list(client.scheduler_info()["workers"])
    assert len(workers) == 2
    infos = client.gather([client.submit(dask_helpers.worker_threads, workers=[w], pure=False)
                           for w in workers])
    for info in infos:
        assert info["nthreads"] == 1
        # distributed's nanny sets OMP_NUM_THREADS=1 in the workers it starts
        # (distributed.nanny.pre-spawn-environ), and fastmlp's default follows it.
        assert info["OMP_NUM_THREADS"] == "1"
        assert info["fastmlp"] == 1
        assert info["MLP"] == 1


def test_set_num_threads_on_the_workers_overrides_the_nanny(client):
    """client.run(fastmlp.set_num_threads, k) raises every worker's count; 0 restores it."""
    import fastmlp
    workers = list(client.scheduler_info()["workers"])

    def probe():
        return client.gather([client.submit(dask_helpers.worker_threads, workers=[w],
                                            pure=False) for w in workers])
    client.run(fastmlp.set_num_threads, 2)
    try:
        for info in probe():
            assert info["fastmlp"] == 2
            # fastmlp.MLP(n_threads=None) takes it, within the worker's share of the CPUs.
            assert info["MLP"] == min(2, max(1, info["cpus"] // info["nthreads"]))
    finally:
        client.run(fastmlp.set_num_threads, 0)
    assert [info["fastmlp"] for info in probe()] == [1, 1]


@pytest.mark.parametrize("name", ESTIMATORS)
def test_grid_search_on_the_cluster_equals_in_process(client, name):
    factory, classifier = ESTIMATORS[name]
    X, y = dask.compute(*labelled_blocks(2, 600, seed=4), scheduler="sync")
    if not classifier:
        y = y.astype(np.float64)
    metric = "accuracy" if classifier else "r2"
    scoring = {"score": metric, "threads": dask_helpers.thread_probe,
               "openmp": dask_helpers.openmp_threads, "pid": dask_helpers.pid_probe}

    def search(n_jobs):
        return GridSearchCV(clone(factory()), GRIDS[name], cv=CV, n_jobs=n_jobs,
                            scoring=scoring, refit="score")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # scikit-learn's ConvergenceWarning
        with joblib.parallel_backend("dask"):
            distributed_search = search(-1).fit(X, y)
        local_search = search(1).fit(X, y)

    # Every fit ran in a worker process, on one thread.
    worker_pids = set(client.run(os.getpid).values())
    n_candidates = len(distributed_search.cv_results_["params"])
    assert n_candidates == 4
    for k in range(CV):
        pids = distributed_search.cv_results_[f"split{k}_test_pid"]
        assert set(pids.astype(int)) <= worker_pids
        assert np.all(distributed_search.cv_results_[f"split{k}_test_threads"] == 1)
        assert np.all(distributed_search.cv_results_[f"split{k}_test_openmp"] == 1)
    assert os.getpid() not in worker_pids

    # The same candidates win with the same scores, bit for bit.
    assert distributed_search.best_params_ == local_search.best_params_
    assert distributed_search.cv_results_["params"] == local_search.cv_results_["params"]
    for key in [f"split{k}_test_score" for k in range(CV)] + ["mean_test_score",
                                                               "rank_test_score"]:
        assert np.array_equal(distributed_search.cv_results_[key],
                              local_search.cv_results_[key]), key
    assert distributed_search.best_score_ == local_search.best_score_
    for a, b in zip(distributed_search.best_estimator_.coefs_,
                    local_search.best_estimator_.coefs_):
        assert np.array_equal(a, b)
    # Not a tie: the grid's candidates score differently.
    assert len(set(local_search.cv_results_["mean_test_score"])) > 1
