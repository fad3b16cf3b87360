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


def rounding_cases(rng):
    """float64 values whose float32 rounding is easy to get wrong: ties, subnormals, signed
    zeros, the edges of float32's range, and random values of every magnitude."""
    f32_max = float(np.finfo(np.float32).max)
    tiny = float(np.finfo(np.float32).smallest_subnormal)
    edges = [0.0, -0.0, tiny, -tiny, tiny / 2, tiny * 0.75, 1.5 * tiny, 1e-40, -3e-39,
             f32_max, -f32_max, 1 + 2.0 ** -24, 1 + 3 * 2.0 ** -24, 1 - 2.0 ** -25]
    random = rng.standard_normal(3000) * 10.0 ** rng.uniform(-44, 38, 3000)
    return np.concatenate([edges, random])


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (1, 1 << 19), (3, 300001)])
def test_threaded_copy_rounds_as_numpy(shape, threads):
    # fm_float32_from_float64 cuts the values into chunks of 2^18 among the threads: shapes on
    # and off the chunks' edges, one thread and several.
    from fastmlp import _core
    rng = np.random.default_rng(shape[1])
    values = rounding_cases(rng)
    X = rng.choice(values, size=shape)
    _core.set_num_threads(threads)
    try:
        X32 = np.full(shape, np.nan, np.float32)
        assert _core.float32_from_float64(X, X32)
    finally:
        _core.set_num_threads(0)
    assert np.array_equal(X32.view(np.uint32), X.astype(np.float32).view(np.uint32))


@pytest.mark.parametrize("where", [0, (1 << 18) + 5, -1])
def test_threaded_copy_reports_an_overflow_anywhere(where):
    from fastmlp import _core
    X = np.ones((3, 300001))
    X.reshape(-1)[where] = -1e39
    assert not _core.float32_from_float64(X, np.empty(X.shape, np.float32))
    with pytest.raises(ValueError, match=OVERFLOW):
        mlp._as_float32_rows(X)


def test_threaded_copy_checks_the_shapes():
    from fastmlp import _core
    with pytest.raises(ValueError, match="shape"):
        _core.float32_from_float64(np.ones((2, 3)), np.empty((3, 2), np.float32))
    assert _core.float32_from_float64(np.ones((0, 3)), np.empty((0, 3), np.float32))


def test_a_strided_float64_x_takes_numpys_cast():
    X = np.asfortranarray(np.random.default_rng(3).standard_normal((50, 40)))
    X32 = mlp._as_float32_rows(X)
    assert X32.flags.c_contiguous
    np.testing.assert_array_equal(X32, X.astype(np.float32))
