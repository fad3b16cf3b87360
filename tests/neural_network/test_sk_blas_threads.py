"""The L-BFGS solver runs BLAS on one thread while it fits: scipy's L-BFGS-B calls BLAS between
fastmlp's gradient passes, and OpenBLAS's threads, spinning after each call, would take the
cores from fastmlp's own. The caller's limits come back afterwards."""
import numpy as np
import pytest
import scipy.optimize
from sklearn.datasets import load_digits

from fastmlp.neural_network import MLPClassifier

threadpoolctl = pytest.importorskip("threadpoolctl")


def blas_threads():
    return [info["num_threads"] for info in threadpoolctl.threadpool_info()
            if info["user_api"] == "blas"]


def test_lbfgs_fits_with_blas_on_one_thread_and_restores_the_limit(monkeypatch):
    if not blas_threads():
        pytest.skip("no BLAS library that threadpoolctl can see")
    X, y = load_digits(return_X_y=True)
    seen = []
    real_minimize = scipy.optimize.minimize

    def recording_minimize(*args, **kwargs):
        seen.append(blas_threads())
        return real_minimize(*args, **kwargs)

    monkeypatch.setattr(scipy.optimize, "minimize", recording_minimize)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        model = MLPClassifier(solver="lbfgs", max_iter=5, random_state=0).fit(X / 16.0, y)
        after = blas_threads()
    assert seen, "the L-BFGS solver did not go through scipy.optimize.minimize"
    assert seen[0] and all(n == 1 for n in seen[0])
    assert all(n == 2 for n in after)
    assert np.isfinite(model.loss_)


def test_stochastic_solvers_leave_blas_alone(monkeypatch):
    if not blas_threads():
        pytest.skip("no BLAS library that threadpoolctl can see")
    X, y = load_digits(return_X_y=True)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        MLPClassifier(solver="adam", max_iter=2, random_state=0).fit(X / 16.0, y)
        assert all(n == 2 for n in blas_threads())
