"""The network calls the estimators make (spec #23, parts B and C), against scikit-learn's own
arithmetic (``_backprop`` and its optimisers): the contract the compiled core and the NumPy
stand-in both meet. Float32 weights: gradients and updates to float32 rounding."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network as sk
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

# scikit-learn's loss name, estimator and output activation for each of the core's losses.
LOSSES = {
    "squared_error": (sk.MLPRegressor, "squared_error", "identity"),
    "poisson": (sk.MLPRegressor, "poisson", "exp"),
    "log_loss": (sk.MLPClassifier, "log_loss", "softmax"),
    "binary_log_loss": (sk.MLPClassifier, "log_loss", "logistic"),
}
SIZES = (5, 7, 6, 3)


def make_network(cls, activation, sizes=SIZES, max_batch=13, seed=0, **kwargs):
    try:
        net = cls(sizes, max_batch, activation=activation, **kwargs)
    except ValueError as exc:      # an activation this build of the core lacks
        if "activation" in str(exc):
            pytest.skip(str(exc))
        raise
    rng = np.random.RandomState(seed)
    net.set_weights([rng.uniform(-0.8, 0.8, s).astype(np.float32)
                     for a, b in zip(sizes[:-1], sizes[1:]) for s in ((a, b), (b,))])
    return net


def problem(loss, n=13, seed=1):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, SIZES[0])).astype(np.float32)
    if loss == "log_loss":
        Y = np.eye(SIZES[-1], dtype=np.float32)[rng.randint(0, SIZES[-1], n)]
    elif loss == "binary_log_loss":
        Y = (rng.uniform(size=(n, SIZES[-1])) < 0.5).astype(np.float32)
    elif loss == "poisson":
        Y = rng.poisson(2.0, size=(n, SIZES[-1])).astype(np.float32)
    else:
        Y = rng.normal(size=(n, SIZES[-1])).astype(np.float32)
    sw = rng.uniform(0.2, 2.0, n).astype(np.float32)
    return X, Y, sw


def sklearn_backprop(net, loss, activation, X, Y, sw, alpha=0.0):
    """scikit-learn's (loss, coef_grads, intercept_grads) at the network's weights, float64."""
    cls, name, out = LOSSES[loss]
    ref = cls(activation=activation, alpha=alpha)
    ref.loss = name
    ref.out_activation_ = out
    weights = [w.astype(np.float64) for w in net.get_weights()]
    ref.coefs_, ref.intercepts_ = weights[0::2], weights[1::2]
    ref.n_layers_ = len(SIZES)
    L = len(SIZES) - 1
    X = X.astype(np.float64)
    return ref._backprop(X, Y.astype(np.float64), None if sw is None else sw.astype(np.float64),
                         [X] + [None] * L, [None] * L, [None] * L, [None] * L)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("loss", LOSSES)
def test_gradient_is_sklearns(network_class, loss, activation, weighted):
    net = make_network(network_class, activation)
    X, Y, sw = problem(loss)
    sw = sw if weighted else None
    S, grads = net.gradient(X, Y, loss, sample_weight=sw)
    ref_loss, ref_cg, ref_ig = sklearn_backprop(net, loss, activation, X, Y, sw)
    weight_sum = len(X) if sw is None else float(sw.astype(np.float64).sum())
    assert S / weight_sum == pytest.approx(ref_loss, rel=1e-5)
    assert [g.dtype for g in grads] == [np.float32] * len(grads)
    for g, r in zip(grads, [a for pair in zip(ref_cg, ref_ig) for a in pair]):
        assert g.shape == r.shape
        assert_allclose(g, r, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(r).max()))


def test_gradient_weight_sum_scales_the_gradient(network_class):
    net = make_network(network_class, "tanh")
    X, Y, sw = problem("log_loss")
    S1, g1 = net.gradient(X, Y, "log_loss", sample_weight=sw, weight_sum=1.0)
    S2, g2 = net.gradient(X, Y, "log_loss", sample_weight=sw, weight_sum=4.0)
    assert S1 == pytest.approx(S2, rel=1e-6)
    for a, b in zip(g1, g2):
        assert_allclose(a, 4 * b, rtol=1e-5, atol=1e-7)


def test_weights_sum_squares(network_class):
    net = make_network(network_class, "relu")
    expected = sum(float(np.sum(w.astype(np.float64) ** 2)) for w in net.get_weights()[0::2])
    assert net.weights_sum_squares() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("rule", ["adam", "momentum", "nesterov", "sgd"])
@pytest.mark.parametrize("loss", ["log_loss", "squared_error"])
def test_three_steps_are_sklearns_optimizer(network_class, rule, loss):
    """train_step_targets with lr, alpha / weight_sum and the rule's state, three times, against
    scikit-learn's backprop and optimiser in float64."""
    alpha, lr = 0.3, 0.05
    kwargs = {"adam": rule == "adam", "momentum": rule in ("momentum", "nesterov")}
    net = make_network(network_class, "tanh", **kwargs)
    params = [w.astype(np.float64) for w in net.get_weights()]
    ref_params = params[0::2] + params[1::2]
    if rule == "adam":
        opt = AdamOptimizer(ref_params, lr, 0.9, 0.999, 1e-8)
    else:
        opt = SGDOptimizer(ref_params, lr, "constant", 0.9 if rule != "sgd" else 0.0,
                           rule == "nesterov", 0.5)
    X, Y, sw = problem(loss)
    weight_sum = float(sw.astype(np.float64).sum())
    for t in range(1, 4):
        step = {"adam": (0.9, 0.999, 1e-8, t)} if rule == "adam" else (
            {"momentum": 0.9, "nesterov": rule == "nesterov"} if rule != "sgd" else {})
        S = net.train_step_targets(X, Y, lr, loss, sample_weight=sw, weight_sum=weight_sum,
                                   alpha=alpha / weight_sum, **step)
        # scikit-learn's step at the same (float32-rounded) weights
        ref_loss, cg, ig = sklearn_backprop(_Weights(ref_params), loss, "tanh", X, Y, sw, alpha)
        assert (S + 0.5 * alpha * sum(np.sum(c ** 2) for c in ref_params[:3])) / weight_sum \
            == pytest.approx(ref_loss, rel=1e-5)
        opt.update_params(ref_params, cg + ig)
    got = net.get_weights()
    for g, r in zip(got[0::2] + got[1::2], ref_params):
        assert_allclose(g, r, rtol=1e-4, atol=1e-5)
    state = net.get_optimizer_state()
    assert len(state) == {"adam": 12, "momentum": 6, "nesterov": 6, "sgd": 0}[rule]


class _Weights:
    """The least of a network sklearn_backprop reads: get_weights, from float64 params."""

    def __init__(self, params):
        L = len(params) // 2
        self.params = params[:L], params[L:]

    def get_weights(self):
        return [a for pair in zip(*self.params) for a in pair]


def test_rows_gather_the_same_batch(network_class):
    X, Y, sw = problem("log_loss", n=13)
    rows = np.array([12, 0, 5, 5, 3], np.int64)
    a = make_network(network_class, "relu", adam=True)
    b = make_network(network_class, "relu", adam=True)
    Sa = a.train_step_targets(X, Y, 0.01, "log_loss", sample_weight=sw, rows=rows,
                              adam=(0.9, 0.999, 1e-8, 1))
    Sb = b.train_step_targets(np.ascontiguousarray(X[rows]), np.ascontiguousarray(Y[rows]),
                              0.01, "log_loss", sample_weight=np.ascontiguousarray(sw[rows]),
                              adam=(0.9, 0.999, 1e-8, 1))
    assert Sa == Sb
    for x, y in zip(a.get_weights() + a.get_optimizer_state(),
                    b.get_weights() + b.get_optimizer_state()):
        assert_array_equal(x, y)


def test_optimizer_state_round_trip(network_class):
    X, Y, sw = problem("squared_error")
    a = make_network(network_class, "tanh", adam=True)
    a.train_step_targets(X, Y, 0.01, "squared_error", adam=(0.9, 0.999, 1e-8, 1))
    b = make_network(network_class, "tanh", adam=True)
    b.set_weights(a.get_weights())
    b.set_optimizer_state(a.get_optimizer_state())
    for net in (a, b):
        net.train_step_targets(X, Y, 0.01, "squared_error", adam=(0.9, 0.999, 1e-8, 2))
    for x, y in zip(a.get_weights(), b.get_weights()):
        assert_array_equal(x, y)


def test_forward_is_the_linear_output(network_class):
    net = make_network(network_class, "relu")
    X, Y, sw = problem("squared_error")
    w = [a.astype(np.float64) for a in net.get_weights()]
    A = X.astype(np.float64)
    for l in range(3):
        A = A @ w[2 * l] + w[2 * l + 1]
        if l < 2:
            A = np.maximum(A, 0)
    assert_allclose(net.forward(X), A, rtol=1e-5, atol=1e-6)
