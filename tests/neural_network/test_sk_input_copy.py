"""The float32 copy the estimators train on: a value beyond float32's range is scikit-learn's
kind of error (a ValueError naming the input), and a large X's copy in a mapping of its own
trains to the same bits as NumPy's array."""
import mmap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from fastmlp.neural_network import MLPClassifier, MLPRegressor
from fastmlp.neural_network import _multilayer_perceptron as mlp

OVERFLOW = r"Input X contains infinity or a value too large for dtype\('float32'\)"


def small_problem(n=40):
    rng = np.random.RandomState(0)
    X = rng.uniform(0, 1, (n, 5))
    return X, (X[:, 0] > 0.5).astype(int)


@pytest.mark.parametrize("make", [np.asarray, sp.csr_matrix])
def test_fit_rejects_float32_overflow(make):
    X, y = small_problem()
    X[3, 2] = 1e39
    with pytest.raises(ValueError, match=OVERFLOW):
        MLPClassifier((4,), max_iter=2).fit(make(X), y)


def test_predict_rejects_float32_overflow():
    X, y = small_problem()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier((4,), max_iter=2, random_state=0).fit(X, y)
    X[0, 0] = -1e39
    with pytest.raises(ValueError, match=OVERFLOW):
        model.predict(X)


def test_own_mapping_trains_the_same_bits(monkeypatch):
    rng = np.random.RandomState(1)
    X = rng.uniform(-1, 1, (600, 30))
    y = X @ rng.normal(size=30)
    assert 4 * X.size >= 64 * 1024             # the mapping's threshold is set below it
    fits = []
    for threshold in (64 * 1024, 1 << 62):     # own mapping, then NumPy's array
        monkeypatch.setattr(mlp, "_OWN_MAPPING_BYTES", threshold)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
            fits.append(model.fit(X, y))
    monkeypatch.setattr(mlp, "_OWN_MAPPING_BYTES", 64 * 1024)
    X32 = mlp._as_float32_rows(X)
    owner = X32
    while isinstance(owner, np.ndarray):
        owner = owner.base
    assert isinstance(getattr(owner, "obj", owner), mmap.mmap) and X32.flags.c_contiguous
    np.testing.assert_array_equal(X32, X.astype(np.float32))
    for a, b in zip(fits[0].coefs_ + fits[0].intercepts_, fits[1].coefs_ + fits[1].intercepts_):
        np.testing.assert_array_equal(a, b)
    assert fits[0].loss_curve_ == fits[1].loss_curve_
