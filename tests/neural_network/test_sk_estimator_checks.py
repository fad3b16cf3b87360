"""scikit-learn's estimator checks for both classes with their default parameters, on the
network of conftest.py (the compiled core, or the NumPy stand-in until the core has the
calls)."""
import warnings

import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import check_sample_weight_equivalence_on_dense_data
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastmlp.neural_network import MLPClassifier, MLPRegressor


@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("estimator", [MLPClassifier(solver="lbfgs"),
                                       MLPRegressor(solver="sgd", tol=1e-2, random_state=42)],
                         ids=["classifier-lbfgs", "regressor-sgd"])
def test_sample_weight_equivalence(estimator):
    """The sample-weight check with the parameters scikit-learn's own test suite gives its
    MLPs (sklearn/utils/_test_common/instance_generator.py)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check_sample_weight_equivalence_on_dense_data(type(estimator).__name__, estimator)
