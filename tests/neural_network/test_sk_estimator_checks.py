"""scikit-learn's estimator checks for both classes with their default parameters, on the
network of network_choice.py (the compiled core, or the NumPy stand-in until the core has the
calls)."""
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import shuffle
from sklearn.utils.estimator_checks import (check_sample_weight_equivalence_on_dense_data,
                                            parametrize_with_checks)

from fastmlp.neural_network import MLPClassifier, MLPRegressor
from network_choice import FLOAT32_ARITHMETIC

# A weight of k and k repeated rows give the same model to rounding; in float32 arithmetic
# that rounding (a relative 5e-7 measured) exceeds these checks' tolerance (assert_allclose's
# rtol=1e-7). test_sample_weight_equivalence_to_float32_rounding below runs the same check
# with a float32 tolerance, on every network.
FLOAT32_EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data":
        "float32 arithmetic: weighted and repeated rows agree to ~5e-7, the check asks 1e-7",
    "check_sample_weight_equivalence_on_sparse_data":
        "float32 arithmetic: weighted and repeated rows agree to ~5e-7, the check asks 1e-7",
}


def expected_failures(estimator):
    return FLOAT32_EXPECTED_FAILURES if FLOAT32_ARITHMETIC else {}


@parametrize_with_checks([MLPClassifier(), MLPRegressor()],
                         expected_failed_checks=expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# The parameters scikit-learn's own test suite gives its MLPs for this check
# (sklearn/utils/_test_common/instance_generator.py), besides the defaults.
SAMPLE_WEIGHT_ESTIMATORS = [MLPClassifier(), MLPRegressor(), MLPClassifier(solver="lbfgs"),
                            MLPRegressor(solver="sgd", tol=1e-2, random_state=42)]
SAMPLE_WEIGHT_IDS = ["classifier", "regressor", "classifier-lbfgs", "regressor-sgd"]


@pytest.mark.skipif(FLOAT32_ARITHMETIC, reason="float32 arithmetic: see the test below")
@pytest.mark.parametrize("estimator", SAMPLE_WEIGHT_ESTIMATORS[2:], ids=SAMPLE_WEIGHT_IDS[2:])
def test_sample_weight_equivalence(estimator):
    """scikit-learn's check, as its own test suite runs it for its MLPs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check_sample_weight_equivalence_on_dense_data(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", SAMPLE_WEIGHT_ESTIMATORS, ids=SAMPLE_WEIGHT_IDS)
def test_sample_weight_equivalence_to_float32_rounding(estimator):
    """scikit-learn's check_sample_weight_equivalence (integer weights, zeros included, against
    repeated and removed rows) with a tolerance for float32 arithmetic."""
    rng = np.random.RandomState(42)
    X = rng.rand(15, 30)
    y = rng.randint(0, 3, size=15)
    sw = rng.randint(0, 5, size=15)
    X_repeated, y_repeated = X.repeat(sw, axis=0), y.repeat(sw)
    X_weighted, y_weighted, sw = shuffle(X, y, sw, random_state=0)
    repeated = clone(estimator).set_params(random_state=0)
    weighted = clone(estimator).set_params(random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        repeated.fit(X_repeated, y_repeated)
        weighted.fit(X_weighted, y_weighted, sample_weight=sw)
    method = "predict_proba" if hasattr(estimator, "predict_proba") else "predict"
    a, b = getattr(repeated, method)(X), getattr(weighted, method)(X)
    assert_allclose(a, b, rtol=1e-4, atol=1e-6)
