"""The issue's first row: MNIST with scikit-learn's defaults (``MLPClassifier(max_iter=10,
random_state=0)``: 100 hidden relu units, Adam, batches of 200) on float64 pixels in [0, 1],
beside scikit-learn's own class: the same loss curve to float32 rounding, and a test accuracy
within 0.5 points."""
import warnings

import numpy as np
import pytest
from sklearn import neural_network as sk
from sklearn.exceptions import ConvergenceWarning

from fastmlp.datasets import load_mnist
from fastmlp.neural_network import MLPClassifier


@pytest.fixture(scope="module")
def mnist_and_sklearns_model(mnist_files):
    (x_train, y_train), (x_test, y_test) = load_mnist(mnist_files, download=False)
    X = x_train.reshape(len(x_train), -1) / 255.0
    Xt = x_test.reshape(len(x_test), -1) / 255.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = sk.MLPClassifier(max_iter=10, random_state=0).fit(X, y_train)
    return X, y_train, Xt, y_test, theirs


@pytest.mark.slow
def test_mnist_defaults_match_sklearn(mnist_and_sklearns_model):
    X, y_train, Xt, y_test, theirs = mnist_and_sklearns_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(max_iter=10, random_state=0).fit(X, y_train)
    # 3000 steps: float32 rounding grows along the way, the curves stay within 1%
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-2)
    assert abs(ours.score(Xt, y_test) - theirs.score(Xt, y_test)) <= 0.005
    assert ours.score(Xt, y_test) >= 0.97


@pytest.mark.slow
def test_mnist_defaults_in_bf16_within_half_a_point_of_sklearn(mnist_and_sklearns_model):
    """precision="bf16" (bf16 products, float32 weights and Adam): scikit-learn's accuracy
    within 0.5 points."""
    X, y_train, Xt, y_test, theirs = mnist_and_sklearns_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(max_iter=10, random_state=0, precision="bf16").fit(X, y_train)
    assert abs(ours.score(Xt, y_test) - theirs.score(Xt, y_test)) <= 0.005
