"""The estimators' learned weights, bit for bit, on small problems: the digests of ``coefs_``
and ``intercepts_`` were taken before the training loop's bookkeeping was trimmed (input
conversion, batching, the L2 term's sum of squares), and every later change to that
bookkeeping must learn the same bits. The compiled core gives the same bits on every
instruction set and thread count, so the digests hold on any machine; the NumPy stand-ins'
arithmetic is NumPy's BLAS, whose bits are not pinned.

A change that means to change the arithmetic (a kernel's order of sums, a new rounding)
changes these digests: print the new ones with ``digests()`` and say why in the commit.

L-BFGS is pinned by what fastmlp gives SciPy, not by the weights it ends at: SciPy's L-BFGS-B
does its own arithmetic in the machine's BLAS, whose kernels (AVX2, AVX-512) sum in orders of
their own, so the iterates after the first differ in their last bits from one CPU to another.
"""
import hashlib
import warnings
from unittest import mock

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from fastmlp.neural_network import MLPClassifier, MLPRegressor
from network_choice import USE_CORE

pytestmark = pytest.mark.skipif(not USE_CORE, reason="the digests are the compiled core's bits")


def data():
    rng = np.random.RandomState(0)
    X = rng.uniform(0, 1, (157, 12))
    y_class = (X[:, 0] + X[:, 1] > 1).astype(int) + (X[:, 2] > 0.5)
    y_reg = X @ rng.normal(size=12)
    return X, y_class, y_reg, rng.uniform(0, 2, 157)


def partial_fits(model, X, y, times):
    for _ in range(times):
        model.partial_fit(X, y, classes=[0, 1, 2])
    return model


# name: (fit on (X, y_class, y_reg, sample_weight), digest of coefs_ + intercepts_)
CASES = {
    "adam, shuffled batches": (
        lambda X, yc, yr, sw: MLPClassifier((16,), max_iter=30, batch_size=20,
                                            random_state=0).fit(X, yc),
        "a4128c771aebec7a"),
    "adam, float32 input": (
        lambda X, yc, yr, sw: MLPClassifier((16,), max_iter=30, batch_size=20,
                                            random_state=0).fit(X.astype(np.float32), yc),
        "9af913d95f637b72"),
    "sgd, Nesterov, adaptive rate, no shuffle, stops on tol": (
        lambda X, yc, yr, sw: MLPClassifier(
            (16, 8), solver="sgd", learning_rate="adaptive", shuffle=False, max_iter=30,
            batch_size=32, random_state=0, tol=1e-2, n_iter_no_change=2).fit(X, yc),
        "2d9ca9b589c7b1f1"),
    "sgd, momentum, invscaling, tanh, sample_weight": (
        lambda X, yc, yr, sw: MLPRegressor(
            hidden_layer_sizes=(16,), solver="sgd", learning_rate="invscaling", momentum=0.5,
            max_iter=25, random_state=1, activation="tanh").fit(X, yr, sample_weight=sw),
        "084a785c4a374771"),
    "adam, sparse input": (
        lambda X, yc, yr, sw: MLPRegressor(hidden_layer_sizes=(16,), max_iter=20,
                                           batch_size=50, random_state=2).fit(
            sp.csr_matrix(np.where(X > 0.5, X, 0)), yr),
        "f84c3ff4e9953a7f"),
    "early stopping": (
        lambda X, yc, yr, sw: MLPClassifier((16,), early_stopping=True, max_iter=40,
                                            random_state=3, n_iter_no_change=3).fit(X, yc),
        "39a9534e3be88452"),
    "stops on the training loss": (
        lambda X, yc, yr, sw: MLPClassifier((4,), max_iter=500, tol=1e-3, n_iter_no_change=3,
                                            random_state=4).fit(X, yc),
        "ce9008b65b8536dd"),
    "multilabel, logistic": (
        lambda X, yc, yr, sw: MLPClassifier((16,), activation="logistic", max_iter=20,
                                            random_state=5).fit(X, np.c_[yc > 0, yc > 1]),
        "b5cb98101953353c"),
    "partial_fit": (
        lambda X, yc, yr, sw: partial_fits(MLPClassifier((16,), random_state=6), X, yc, 3),
        "bda4ee7eeaf68a64"),
    "adam, alpha=1": (
        lambda X, yc, yr, sw: MLPRegressor(hidden_layer_sizes=(32,), alpha=1.0, max_iter=30,
                                           random_state=8, batch_size=16).fit(X, yr),
        "9403e536253f5fdd"),
}


def digest(model):
    h = hashlib.sha256()
    for a in model.coefs_ + model.intercepts_:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def fitted(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return CASES[name][0](*data())


def digests():
    """Today's digests, to paste into CASES after an intended change of the arithmetic."""
    return {name: digest(fitted(name)) for name in CASES}


@pytest.mark.parametrize("name", list(CASES))
def test_learned_weights_keep_their_bits(name):
    assert digest(fitted(name)) == CASES[name][1]


def lbfgs_evaluations():
    """The loss and gradient that the lbfgs solver hands SciPy at its initial weights and at
    half of them (SciPy's minimize replaced by those two calls), and the model it ends with."""
    seen = []

    def minimize(fun, x0, **kwargs):
        for scale in (1.0, 0.5):
            seen.append(fun(np.asarray(x0, dtype=np.float64) * scale))
        return scipy.optimize.OptimizeResult(x=np.asarray(x0) * 0.5, fun=seen[-1][0],
                                             jac=seen[-1][1], nit=1, nfev=2, status=0,
                                             success=True, message="")

    X, y_class, _, _ = data()
    with mock.patch.object(scipy.optimize, "minimize", minimize):
        model = MLPClassifier((16,), solver="lbfgs", max_iter=30, random_state=7).fit(X, y_class)
    return seen, model


def test_lbfgs_loss_and_gradient_keep_their_bits():
    seen, model = lbfgs_evaluations()
    h = hashlib.sha256()
    for loss, grad in seen:
        h.update(np.float64(loss).tobytes())
        h.update(np.ascontiguousarray(grad, dtype=np.float64).tobytes())
    assert h.hexdigest()[:16] == LBFGS_EVALUATIONS
    assert model.loss_ == seen[-1][0]


#: lbfgs_evaluations' digest (losses and gradients, float64)
LBFGS_EVALUATIONS = "4fdc82841638928a"
