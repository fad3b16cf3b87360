"""fastmlp.neural_network beside scikit-learn's own classes on small problems: the same
parameters, draws, learning curves, attributes, warnings and errors.

Tolerances: fastmlp computes in float32 (weights stored in float32, whatever the input), so a
learning curve follows scikit-learn's float64 one to float32 rounding, growing slowly with the
steps taken: the curves below are compared to LOSS_RTOL over a few tens of epochs, and the
accuracies (R^2) to ACCURACY_TOL. Initial weights are scikit-learn's draws rounded to float32.
"""
import inspect
import os
import re
import subprocess
import sys
import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network as sk
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_digits, load_iris, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelBinarizer, MinMaxScaler, StandardScaler

from fastmlp.neural_network import MLPClassifier, MLPRegressor
from fastmlp.neural_network import _engine
from network_choice import skip_without_activation

LOSS_RTOL = 1e-4       # relative, per epoch, over <= 30 epochs of <= 10 steps
ACCURACY_TOL = 0.02    # absolute, accuracy or R^2

PAIRS = [(MLPClassifier, sk.MLPClassifier), (MLPRegressor, sk.MLPRegressor)]


def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def digits(n=300):
    X, y = load_digits(return_X_y=True)
    return X[:n] / 16.0, y[:n]


def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def fit_both(ours_cls, theirs_cls, X, y, **params):
    """The two estimators fitted on (X, y) with the same parameters (warnings kept)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours_cls(**params).fit(X, y)
        theirs = theirs_cls(**params).fit(X, y)
    return ours, theirs


def assert_same_curve(ours, theirs):
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_
    assert len(ours.loss_curve_) == len(theirs.loss_curve_)
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=LOSS_RTOL)
    assert ours.loss_ == ours.loss_curve_[-1]


# -- the constructor ---------------------------------------------------------------------------

# fastmlp's own parameters, each last and keyword-only, whose defaults compute as
# scikit-learn does.
EXTENSIONS = {"precision": "fp32"}


@pytest.mark.parametrize("ours, theirs", PAIRS)
def test_same_signature_and_constraints(ours, theirs):
    signature = inspect.signature(ours.__init__)
    params = list(signature.parameters.values())
    extra = params[len(params) - len(EXTENSIONS):]
    assert {p.name: p.default for p in extra} == EXTENSIONS
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extra)
    assert signature.replace(parameters=params[:len(params) - len(EXTENSIONS)]) == \
        inspect.signature(theirs.__init__)
    ours_params = ours().get_params()
    assert {k: ours_params.pop(k) for k in EXTENSIONS} == EXTENSIONS
    assert ours_params == theirs().get_params()
    constraints = {k: [_constraint(c) for c in v] for k, v in ours._parameter_constraints.items()
                   if k not in EXTENSIONS}
    assert constraints == {k: [_constraint(c) for c in v]
                           for k, v in theirs._parameter_constraints.items()}


def _constraint(c):
    """A comparable description of a _parameter_constraints entry."""
    if isinstance(c, str):
        return c
    return (type(c).__name__, getattr(c, "type", None), getattr(c, "left", None),
            getattr(c, "right", None), getattr(c, "closed", None),
            frozenset(getattr(c, "options", ())))


BAD_PARAMS = [dict(hidden_layer_sizes=0), dict(activation="softmax"), dict(solver="newton"),
              dict(alpha=-1.0), dict(batch_size=0), dict(learning_rate="fast"),
              dict(learning_rate_init=0.0), dict(power_t=-0.5), dict(max_iter=0),
              dict(shuffle="yes"), dict(random_state="seed"), dict(tol=-1.0),
              dict(momentum=1.5), dict(nesterovs_momentum=None), dict(early_stopping=1),
              dict(validation_fraction=1.0), dict(beta_1=1.0), dict(beta_2=-0.1),
              dict(epsilon=0.0), dict(n_iter_no_change=0), dict(max_fun=0)]
# scikit-learn has no precision: ours alone is checked (test_bad_precision)


@pytest.mark.parametrize("params", BAD_PARAMS, ids=lambda p: next(iter(p)))
@pytest.mark.parametrize("ours, theirs", PAIRS, ids=["classifier", "regressor"])
def test_bad_parameters_raise_as_sklearn(ours, theirs, params):
    X, y = iris()
    errors = []
    for cls in (ours, theirs):
        with pytest.raises(Exception) as info:
            cls(**params).fit(X, y)
        errors.append(info.value)
    assert type(errors[0]) is type(errors[1])
    assert _sorted_sets(str(errors[0])) == _sorted_sets(str(errors[1]))


def _sorted_sets(message):
    """The message with the items of each {...} sorted (a set's order varies by process)."""
    return re.sub(r"\{([^{}]*)\}",
                  lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", message)


def test_bad_regression_loss_and_hidden_layer_sizes():
    X, y = diabetes()
    for params in (dict(loss="absolute_error"), dict(hidden_layer_sizes=(5, -1))):
        errors = []
        for cls in (MLPRegressor, sk.MLPRegressor):
            with pytest.raises(ValueError) as info:
                cls(**params).fit(X, y)
            errors.append(str(info.value))
        assert errors[0] == errors[1]


# -- random draws --------------------------------------------------------------------------------

class Recording:
    """Wraps the network class: keeps the first weights each network is given."""

    def __init__(self, cls):
        self.cls = cls
        self.first_weights = []

    def __call__(self, *args, **kwargs):
        net = self.cls(*args, **kwargs)
        recorder = self

        class Proxy:
            def __getattr__(self, name):
                return getattr(net, name)

            def set_weights(self, weights):
                weights = [np.array(w) for w in weights]
                if not recorder.first_weights:
                    recorder.first_weights = weights
                return net.set_weights(weights)
        return Proxy()

    def __getattr__(self, name):    # the class's attributes (core_supported reads them)
        return getattr(self.cls, name)


def sklearn_initial_weights(theirs, X, Y):
    """scikit-learn's initial weights for (X, Y) from its own _initialize (private)."""
    theirs._random_state = np.random.RandomState(theirs.random_state)
    if hasattr(theirs, "classes_") or isinstance(theirs, sk.MLPClassifier):
        theirs._label_binarizer = LabelBinarizer().fit(Y)
        Y = theirs._label_binarizer.transform(Y)
    Y = Y.reshape(len(Y), -1)
    units = [X.shape[1], *theirs.hidden_layer_sizes, Y.shape[1]]
    theirs._initialize(Y, units, X.dtype)
    return [a for pair in zip(theirs.coefs_, theirs.intercepts_) for a in pair]


@pytest.mark.parametrize("activation", ["relu", "logistic"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_initial_weights_are_sklearns_draws(monkeypatch, network_class, activation, dtype):
    skip_without_activation(activation)
    X, y = iris()
    X = X.astype(dtype)
    recording = Recording(network_class)
    monkeypatch.setattr(_engine, "NETWORK_CLASS", recording)
    params = dict(hidden_layer_sizes=(7, 5), activation=activation, random_state=3, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(**params).fit(X, y)
    expected = sklearn_initial_weights(sk.MLPClassifier(**params), X, y)
    assert len(recording.first_weights) == len(expected)
    for ours, theirs in zip(recording.first_weights, expected):
        assert_array_equal(np.asarray(ours, np.float32), theirs.astype(np.float32))


# -- learning curves -------------------------------------------------------------------------

CLASSIFIER_SETTINGS = {
    "adam": dict(solver="adam", learning_rate_init=0.01),
    "sgd-nesterov": dict(solver="sgd", learning_rate_init=0.1),
    "sgd-momentum": dict(solver="sgd", learning_rate_init=0.1, nesterovs_momentum=False),
    "sgd-plain": dict(solver="sgd", learning_rate_init=0.2, momentum=0.0),
    "sgd-invscaling": dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5,
                           power_t=0.25),
    "sgd-adaptive": dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.1,
                         tol=0.5, n_iter_no_change=2),
    "tanh-batch32": dict(activation="tanh", batch_size=32, learning_rate_init=0.01),
    "logistic-no-shuffle": dict(activation="logistic", shuffle=False, alpha=0.01),
    "identity-two-layers": dict(activation="identity", hidden_layer_sizes=(12, 8)),
}


@pytest.mark.parametrize("name", CLASSIFIER_SETTINGS)
def test_classifier_learning_curve(name):
    X, y = iris()
    params = dict(hidden_layer_sizes=(20,), random_state=0, max_iter=25)
    params.update(CLASSIFIER_SETTINGS[name])
    skip_without_activation(params.get("activation", "relu"))
    ours, theirs = fit_both(MLPClassifier, sk.MLPClassifier, X, y, **params)
    assert_same_curve(ours, theirs)
    assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=LOSS_RTOL)
    assert ours._no_improvement_count == theirs._no_improvement_count
    assert ours._optimizer.learning_rate == pytest.approx(theirs._optimizer.learning_rate,
                                                          rel=1e-12)
    assert abs(ours.score(X, y) - theirs.score(X, y)) <= ACCURACY_TOL
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert_allclose(a, b, atol=1e-3 * max(1.0, np.abs(b).max()))


@pytest.mark.parametrize("n", [1, 2, 150, 1001])
def test_epoch_shuffle_is_sklearns(n):
    """The epochs' order of samples: scikit-learn's utils.shuffle, call after call, and the
    random state left where scikit-learn leaves it."""
    from sklearn.utils import check_random_state, shuffle
    from fastmlp.neural_network._multilayer_perceptron import _shuffled
    ours_rs, theirs_rs = check_random_state(3), check_random_state(3)
    ours = theirs = np.arange(n, dtype=int)
    for _ in range(4):
        ours = _shuffled(ours, ours_rs)
        theirs = shuffle(theirs, random_state=theirs_rs)
        assert ours.dtype == theirs.dtype
        assert_array_equal(ours, theirs)
    assert ours_rs.randint(1 << 30) == theirs_rs.randint(1 << 30)


def test_adaptive_rate_divides_by_five_and_stops_as_sklearn():
    X, y = iris()
    params = dict(hidden_layer_sizes=(10,), solver="sgd", learning_rate="adaptive", tol=10.0,
                  n_iter_no_change=1, random_state=0, max_iter=200, learning_rate_init=0.1)
    ours, theirs = fit_both(MLPClassifier, sk.MLPClassifier, X, y, **params)
    assert_same_curve(ours, theirs)
    assert ours._optimizer.learning_rate == theirs._optimizer.learning_rate
    assert ours._optimizer.learning_rate <= 1e-6 and ours.n_iter_ < 200


def test_binary_uses_one_logistic_output():
    X, y = iris()
    y = (y == 2).astype(int)
    ours, theirs = fit_both(MLPClassifier, sk.MLPClassifier, X, y, hidden_layer_sizes=(10,),
                            random_state=1, max_iter=20, learning_rate_init=0.01)
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    assert ours.n_outputs_ == 1 and ours.coefs_[-1].shape == (10, 1)
    assert_same_curve(ours, theirs)
    proba = ours.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert_allclose(proba, theirs.predict_proba(X), atol=1e-3)
    assert_allclose(np.exp(ours.predict_log_proba(X)), proba, rtol=1e-12)


def test_multilabel():
    X, Y = make_multilabel_classification(n_samples=120, n_features=8, n_classes=4,
                                          random_state=0)
    ours, theirs = fit_both(MLPClassifier, sk.MLPClassifier, X, Y, hidden_layer_sizes=(15,),
                            random_state=0, max_iter=20, learning_rate_init=0.01)
    assert ours.out_activation_ == "logistic" and ours.n_outputs_ == 4
    assert_same_curve(ours, theirs)
    assert ours.predict(X).shape == Y.shape
    assert np.mean(ours.predict(X) == theirs.predict(X)) >= 0.98


def test_multiclass_softmax_probabilities():
    X, y = digits()
    ours, theirs = fit_both(MLPClassifier, sk.MLPClassifier, X, y, hidden_layer_sizes=(30,),
                            random_state=0, max_iter=15)
    assert ours.out_activation_ == "softmax"
    assert_same_curve(ours, theirs)
    proba = ours.predict_proba(X)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert_allclose(proba, theirs.predict_proba(X), atol=2e-3)
    assert abs(ours.score(X, y) - theirs.score(X, y)) <= ACCURACY_TOL


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_regressor_learning_curve(loss, solver):
    X, y = diabetes()
    if loss == "poisson":
        y = np.exp(y / 2)
    Y = np.column_stack([y, 0.5 * y + 0.1])     # two outputs
    params = dict(loss=loss, solver=solver, hidden_layer_sizes=(16,), random_state=0,
                  max_iter=20, learning_rate_init=0.01 if solver == "sgd" else 0.003)
    ours, theirs = fit_both(MLPRegressor, sk.MLPRegressor, X, Y, **params)
    assert ours.out_activation_ == theirs.out_activation_
    assert_same_curve(ours, theirs)
    assert abs(ours.score(X, Y) - theirs.score(X, Y)) <= ACCURACY_TOL
    assert ours.predict(X).shape == Y.shape


def test_sample_weight_curve():
    X, y = iris()
    weights = np.random.RandomState(0).uniform(0.0, 3.0, len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        params = dict(hidden_layer_sizes=(10,), random_state=0, max_iter=20,
                      learning_rate_init=0.01, batch_size=40)
        ours = MLPClassifier(**params).fit(X, y, sample_weight=weights)
        theirs = sk.MLPClassifier(**params).fit(X, y, sample_weight=weights)
    assert_same_curve(ours, theirs)
    assert abs(ours.score(X, y, sample_weight=weights)
               - theirs.score(X, y, sample_weight=weights)) <= ACCURACY_TOL


@pytest.mark.parametrize("ours_cls, theirs_cls", PAIRS, ids=["classifier", "regressor"])
def test_early_stopping_split_and_scores(ours_cls, theirs_cls):
    X, y = iris() if ours_cls is MLPClassifier else diabetes()
    params = dict(hidden_layer_sizes=(10,), random_state=0, max_iter=60, early_stopping=True,
                  validation_fraction=0.2, learning_rate_init=0.01, n_iter_no_change=3)
    ours, theirs = fit_both(ours_cls, theirs_cls, X, y, **params)
    assert_same_curve(ours, theirs)
    assert ours.best_loss_ is None and theirs.best_loss_ is None
    assert_allclose(ours.validation_scores_, theirs.validation_scores_, atol=ACCURACY_TOL)
    assert ours.best_validation_score_ == max(ours.validation_scores_)
    # the best weights are restored: the model scores its best on the validation split
    assert abs(ours.best_validation_score_ - theirs.best_validation_score_) <= ACCURACY_TOL


def test_early_stopping_stratifies_like_sklearn():
    """A class of 2 samples in 50: a stratified split keeps one in the validation set, so both
    classes' scores match scikit-learn's epoch by epoch."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(50, 3))
    y = np.array([0] * 48 + [1] * 2)
    ours, theirs = fit_both(MLPClassifier, sk.MLPClassifier, X, y, hidden_layer_sizes=(5,),
                            early_stopping=True, validation_fraction=0.5, random_state=0,
                            max_iter=5)
    assert_array_equal(ours.validation_scores_, theirs.validation_scores_)


def test_lbfgs_classifier_and_regressor():
    X, y = digits(200)
    ours, theirs = fit_both(MLPClassifier, sk.MLPClassifier, X, y, solver="lbfgs",
                            hidden_layer_sizes=(20,), random_state=0, max_iter=60)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=0.2)
    assert abs(ours.score(X, y) - theirs.score(X, y)) <= ACCURACY_TOL
    assert not hasattr(ours, "loss_curve_") and not hasattr(theirs, "loss_curve_")
    assert [c.dtype for c in ours.coefs_] == [c.dtype for c in theirs.coefs_]
    X, y = diabetes()
    ours, theirs = fit_both(MLPRegressor, sk.MLPRegressor, X, y, solver="lbfgs",
                            hidden_layer_sizes=(10,), random_state=0, max_iter=200)
    assert abs(ours.score(X, y) - theirs.score(X, y)) <= ACCURACY_TOL


def test_lbfgs_gradient_matches_sklearn_backprop(network_class):
    """The loss and gradient L-BFGS is given, against scikit-learn's _backprop at the same
    weights (float32 weights, sample weights, L2)."""
    X, y = iris()
    w = np.random.RandomState(1).uniform(0.5, 2.0, len(y))
    est = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(6, 4), alpha=0.3, max_iter=1,
                        random_state=0, activation="tanh")
    captured = []
    import scipy.optimize
    original = scipy.optimize.minimize

    def spy(fun, x0, **kwargs):
        captured.append((x0.astype(np.float32).astype(np.float64), fun(x0.astype(np.float32)
                                                                       .astype(np.float64))))
        return original(fun, x0, **kwargs)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scipy.optimize, "minimize", spy)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y, sample_weight=w)
    x0, (loss, grad) = captured[0]
    ref = sk.MLPClassifier(solver="lbfgs", hidden_layer_sizes=(6, 4), alpha=0.3,
                           activation="tanh")
    ref._label_binarizer = est._label_binarizer
    ref.n_layers_, ref.out_activation_ = est.n_layers_, est.out_activation_
    ref._coef_indptr, ref._intercept_indptr = est._coef_indptr, est._intercept_indptr
    ref.coefs_ = [None] * 3
    ref.intercepts_ = [None] * 3
    Y = est._label_binarizer.transform(y).astype(float)
    units = [4, 6, 4, 3]
    ref_loss, ref_grad = ref._loss_grad_lbfgs(
        x0, X, Y, w, [X] + [None] * 3, [None] * 3,
        [np.empty((a, b)) for a, b in zip(units[:-1], units[1:])],
        [np.empty(b) for b in units[1:]])
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    assert_allclose(grad, ref_grad, atol=1e-5 * np.abs(ref_grad).max())


# -- attributes, dtypes, warnings ---------------------------------------------------------------

@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fitted_attributes_and_dtypes(solver, dtype):
    X, y = iris()
    X = X.astype(dtype)
    ours, theirs = fit_both(MLPClassifier, sk.MLPClassifier, X, y, solver=solver,
                            hidden_layer_sizes=(8, 6), random_state=0, max_iter=5)
    for name in ("n_layers_", "n_outputs_", "out_activation_", "n_iter_", "n_features_in_"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert_array_equal(ours.classes_, theirs.classes_)
    assert [c.dtype for c in ours.coefs_] == [c.dtype for c in theirs.coefs_]
    assert [c.dtype for c in ours.intercepts_] == [c.dtype for c in theirs.intercepts_]
    assert ours.predict_proba(X).dtype == theirs.predict_proba(X).dtype
    stochastic = ("loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_",
                  "t_", "_no_improvement_count")
    for name in stochastic:
        assert hasattr(ours, name) == hasattr(theirs, name), name
    assert type(ours.loss_) is type(theirs.loss_) or solver == "lbfgs"


def test_convergence_warnings_have_sklearns_text():
    X, y = iris()
    for solver in ("adam", "lbfgs"):
        texts = []
        for cls in (MLPClassifier, sk.MLPClassifier):
            with pytest.warns(ConvergenceWarning) as record:
                cls(solver=solver, hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
            texts.append([str(w.message) for w in record
                          if issubclass(w.category, ConvergenceWarning)])
        assert texts[0] == texts[1]


def test_batch_size_clipping_warning():
    X, y = iris()
    for cls in (MLPClassifier, sk.MLPClassifier):
        with pytest.warns(UserWarning, match="Got `batch_size` less than 1 or larger than "
                                             "sample size. It is going to be clipped"):
            cls(batch_size=1000, max_iter=2, hidden_layer_sizes=(3,)).fit(X, y)


def test_tol_stopping_as_sklearn():
    X, y = iris()
    params = dict(hidden_layer_sizes=(10,), random_state=0, tol=0.05, n_iter_no_change=2,
                  learning_rate_init=0.01, max_iter=200)
    ours, theirs = fit_both(MLPClassifier, sk.MLPClassifier, X, y, **params)
    assert_same_curve(ours, theirs)
    assert ours.n_iter_ < 200 and ours._no_improvement_count == theirs._no_improvement_count


# -- partial_fit, warm_start ---------------------------------------------------------------------

def test_partial_fit_with_classes_matches_sklearn():
    X, y = iris()
    ours = MLPClassifier(hidden_layer_sizes=(10,), random_state=0, learning_rate_init=0.01)
    theirs = sk.MLPClassifier(hidden_layer_sizes=(10,), random_state=0, learning_rate_init=0.01)
    classes = np.unique(y)
    order = np.random.RandomState(0).permutation(len(y))
    # growing chunks: the network is rebuilt for larger batches, its Adam state carried over
    for rows in (order[:20], order[20:70], order[70:150], order):
        ours.partial_fit(X[rows], y[rows], classes=classes)
        theirs.partial_fit(X[rows], y[rows], classes=classes)
        ours.predict(X[:3])
    assert_same_curve(ours, theirs)
    assert ours._optimizer.t == theirs._optimizer.t == 4
    assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-4)


def test_partial_fit_errors_as_sklearn():
    X, y = iris()
    messages = []
    for cls in (MLPClassifier, sk.MLPClassifier):
        est = cls(hidden_layer_sizes=(4,)).partial_fit(X[y < 2], y[y < 2], classes=[0, 1])
        with pytest.raises(ValueError) as unseen:
            est.partial_fit(X, y)
        with pytest.raises(AttributeError) as lbfgs:
            cls(solver="lbfgs").partial_fit(X, y)
        with pytest.raises(ValueError) as first:
            cls().partial_fit(X, y)
        with pytest.raises(ValueError) as early:
            cls(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
        messages.append([str(e.value) for e in (unseen, lbfgs, first, early)])
    assert messages[0] == messages[1]
    assert "`y` has classes not in `self.classes_`" in messages[0][0]


def test_regressor_partial_fit_and_lbfgs_partial_fit():
    X, y = diabetes()
    ours, theirs = MLPRegressor(random_state=0, hidden_layer_sizes=(5,)), \
        sk.MLPRegressor(random_state=0, hidden_layer_sizes=(5,))
    for _ in range(3):
        ours.partial_fit(X, y)
        theirs.partial_fit(X, y)
    assert_same_curve(ours, theirs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPRegressor(solver="lbfgs", max_iter=5, random_state=0).partial_fit(X, y)
        b = sk.MLPRegressor(solver="lbfgs", max_iter=5, random_state=0).partial_fit(X, y)
    assert a.n_iter_ == b.n_iter_


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_warm_start_matches_sklearn(solver):
    X, y = iris()
    params = dict(hidden_layer_sizes=(10,), random_state=0, max_iter=5, warm_start=True,
                  solver=solver, learning_rate_init=0.01)
    ests = []
    for cls in (MLPClassifier, sk.MLPClassifier):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = cls(**params).fit(X, y)
            est.fit(X, y)
        ests.append(est)
    assert_same_curve(*ests)
    assert len(ests[0].loss_curve_) == 10
    messages = []
    for est in ests:
        with pytest.raises(ValueError) as info:
            est.fit(X[y < 2], y[y < 2])
        messages.append(str(info.value))
    assert messages[0] == messages[1]


# -- inputs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("ours_cls, theirs_cls", PAIRS, ids=["classifier", "regressor"])
def test_non_finite_input_errors_as_sklearn(ours_cls, theirs_cls, bad):
    X, y = iris()
    y = y.astype(float)
    Xb = X.copy()
    Xb[3, 1] = bad
    yb = y.copy()
    yb[5] = bad
    cases = [(Xb, y)] + ([(X, yb)] if ours_cls is MLPRegressor else [])
    for Xc, yc in cases:
        messages = []
        for cls in (ours_cls, theirs_cls):
            with pytest.raises(ValueError) as info:
                cls(max_iter=2).fit(Xc, yc)
            messages.append(str(info.value))
        assert messages[0] == messages[1]
    fitted = [cls(max_iter=2, hidden_layer_sizes=(3,)) for cls in (ours_cls, theirs_cls)]
    messages = []
    for est in fitted:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        with pytest.raises(ValueError) as info:
            est.predict(Xb)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_float32_overflow_of_float64_input():
    X, y = iris()
    X[0, 0] = 1e300
    with pytest.raises(ValueError, match=r"contains infinity or a value too large for "
                                         r"dtype\('float32'\)"):
        MLPClassifier(max_iter=1).fit(X, y)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sparse_input_same_model_as_dense(solver):
    X, y = digits(120)
    params = dict(hidden_layer_sizes=(10,), random_state=0, max_iter=4, solver=solver,
                  batch_size=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense = MLPClassifier(**params).fit(X, y)
        for fmt in (sp.csr_matrix, sp.csc_matrix, sp.csr_array):
            sparse = MLPClassifier(**params).fit(fmt(X), y)
            for a, b in zip(dense.coefs_ + dense.intercepts_,
                            sparse.coefs_ + sparse.intercepts_):
                assert_allclose(a, b, rtol=1e-6, atol=1e-7)
            assert_allclose(sparse.predict_proba(fmt(X)), dense.predict_proba(X),
                            rtol=1e-6, atol=1e-7)


def test_feature_names_in():
    pd = pytest.importorskip("pandas")
    X, y = iris()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    ests = []
    for cls in (MLPClassifier, sk.MLPClassifier):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ests.append(cls(max_iter=2).fit(frame, y))
    assert list(ests[0].feature_names_in_) == ["a", "b", "c", "d"]
    renamed = frame.rename(columns={"a": "z"})
    messages = []
    for est in ests:
        with pytest.raises(ValueError) as info:
            est.predict(renamed)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


# -- the estimator contract: coefs_ edits, pickling, clone, meta-estimators ----------------------

def test_edited_coefs_change_predictions():
    """coefs_ and intercepts_ are the model: edits in place or new lists are predicted with."""
    X, y = iris()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
    est.predict(X)
    est.coefs_[-1][:] = 0
    est.intercepts_[-1][:] = [0, 0, 1]
    assert_array_equal(est.predict(X), np.full(len(X), 2))
    assert_allclose(est.predict_proba(X), _numpy_forward(est, X), rtol=1e-6)
    est.coefs_ = [c * 2 for c in est.coefs_]
    est.intercepts_ = [b - 1 for b in est.intercepts_]
    assert_allclose(est.predict_proba(X), _numpy_forward(est, X), rtol=1e-5)


def _numpy_forward(est, X):
    """scikit-learn's forward pass (float64, NumPy) with est's weights."""
    ref = sk.MLPClassifier(activation=est.activation)
    for name in ("coefs_", "intercepts_", "n_layers_", "out_activation_", "n_outputs_"):
        setattr(ref, name, getattr(est, name))
    return ref._forward_pass_fast(X)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_pickle_keeps_optimizer_state(tmp_path, solver, dump):
    X, y = iris()
    est = MLPClassifier(hidden_layer_sizes=(6,), solver=solver, random_state=0,
                        learning_rate_init=0.01)
    est.partial_fit(X, y, classes=[0, 1, 2])
    if dump == "pickle":
        copy = pickle.loads(pickle.dumps(est))
    else:
        joblib.dump(est, tmp_path / "model.joblib")
        copy = joblib.load(tmp_path / "model.joblib")
    assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
    est.partial_fit(X, y)
    copy.partial_fit(X, y)
    for a, b in zip(est.coefs_ + est.intercepts_, copy.coefs_ + copy.intercepts_):
        assert_array_equal(a, b)
    assert est.loss_curve_ == copy.loss_curve_
    # the state matters: a model that lost it takes another step
    fresh = pickle.loads(pickle.dumps(est))
    fresh._optimizer.state = None
    del fresh._optimizer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fresh.partial_fit(X, y)
    est.partial_fit(X, y)
    assert not np.array_equal(fresh.coefs_[0], est.coefs_[0])


def test_clone_pipeline_gridsearch():
    X, y = iris()
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=100, random_state=0,
                        learning_rate_init=0.01)
    assert clone(est).get_params() == est.get_params()
    pipe = make_pipeline(MinMaxScaler(), est)
    grid = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1]}, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X, y)
    assert grid.best_score_ > 0.6
    assert set(grid.predict(X)) <= {0, 1, 2}


def test_momentum_one_is_refused_clearly():
    X, y = iris()
    with pytest.raises(ValueError, match=r"momentum in \[0, 1\)"):
        MLPClassifier(solver="sgd", momentum=1.0, max_iter=1).fit(X, y)


def test_negative_sample_weight_is_refused_clearly():
    X, y = iris()
    w = np.ones(len(y))
    w[0] = -1
    with pytest.raises(ValueError, match="sample_weight must be >= 0"):
        MLPClassifier(max_iter=1).fit(X, y, sample_weight=w)


# -- optional dependencies -----------------------------------------------------------------------

def test_clear_import_error_without_sklearn():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import fastmlp\n"
            "try:\n"
            "    import fastmlp.neural_network\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "fastmlp.neural_network needs scikit-learn" in out.stdout


def test_clear_import_error_without_scipy_for_lbfgs(monkeypatch):
    X, y = iris()
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    with pytest.raises(ImportError, match="solver='lbfgs' needs SciPy"):
        MLPClassifier(solver="lbfgs").fit(X, y)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_bad_precision_is_scikit_learns_kind_of_error(cls):
    from sklearn.utils._param_validation import InvalidParameterError
    X, y = np.random.default_rng(0).random((20, 3)), np.arange(20) % 2
    with pytest.raises(InvalidParameterError, match="precision"):
        cls(precision="fp16").fit(X, y)
