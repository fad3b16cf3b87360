"""Checks of the NumPy reference (fastmlp/reference.py), the spec the C code is tested against."""

import numpy as np
import pytest

from fastmlp import _options
from fastmlp import reference as ref

LOSSES = ["mse", "cross_entropy"]
ACTIVATIONS = list(_options.ACTIVATIONS)


# --------------------------------------------------------------------------
# Gradients by central finite differences (float64, away from ReLU kinks)
# --------------------------------------------------------------------------

KINK_MARGIN = 1e-3
FD_STEP = 1e-6


def _hidden_preactivations(weights, biases, X):
    """Z of every hidden layer, the values whose sign the ReLU looks at."""
    activations = ref.forward(weights, biases, X)
    return [A @ W + b for A, W, b in zip(activations[:-2], weights[:-1], biases[:-1])]


def _problem_away_from_kinks(layer_sizes, batch, seed):
    """A float64 network and batch with no hidden pre-activation within KINK_MARGIN of 0."""
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        weights = [rng.normal(0, 1, (k, n)) for k, n in zip(layer_sizes[:-1], layer_sizes[1:])]
        biases = [rng.normal(0, 0.5, n) for n in layer_sizes[1:]]
        X = rng.normal(0, 1, (batch, layer_sizes[0]))
        labels = rng.integers(0, layer_sizes[-1], batch)
        Zs = _hidden_preactivations(weights, biases, X)
        if all(np.min(np.abs(Z)) > KINK_MARGIN for Z in Zs):
            return weights, biases, X, labels
    raise RuntimeError("could not draw a problem away from ReLU kinks")


def _numeric_grad(f, param):
    """Central differences of the scalar f() w.r.t. every entry of param (perturbed in place)."""
    grad = np.zeros_like(param)
    for idx in np.ndindex(param.shape):
        saved = param[idx]
        param[idx] = saved + FD_STEP
        f_plus = f()
        param[idx] = saved - FD_STEP
        f_minus = f()
        param[idx] = saved
        grad[idx] = (f_plus - f_minus) / (2 * FD_STEP)
    return grad


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("layer_sizes, batch", [
    ([5, 3], 4),              # a single (linear) layer
    ([5, 7, 4, 3], 3),        # two hidden layers
    ([4, 6, 5, 4, 3], 3),     # three hidden layers
    ([3, 2, 2], 1),           # batch of one
])
def test_gradients_match_finite_differences(layer_sizes, batch, loss, activation):
    # Drawn away from ReLU's kinks; tanh is smooth everywhere, the same draw serves it.
    weights, biases, X, labels = _problem_away_from_kinks(layer_sizes, batch, seed=sum(layer_sizes))
    value, dWs, dbs = ref.loss_and_grads(weights, biases, X, labels, loss, activation)

    def f():
        return ref.loss_and_grads(weights, biases, X, labels, loss, activation)[0]

    assert value == pytest.approx(f())
    for l in range(len(weights)):
        assert dWs[l].shape == weights[l].shape and dbs[l].shape == biases[l].shape
        np.testing.assert_allclose(dWs[l], _numeric_grad(f, weights[l]), rtol=1e-6, atol=1e-8,
                                   err_msg=f"dW of layer {l}")
        np.testing.assert_allclose(dbs[l], _numeric_grad(f, biases[l]), rtol=1e-6, atol=1e-8,
                                   err_msg=f"db of layer {l}")


@pytest.mark.parametrize("loss", LOSSES)
def test_loss_gradient_wrt_output_matches_finite_differences(loss):
    loss_fn, grad_fn = {"mse": (ref.mse_loss, ref.mse_grad),
                        "cross_entropy": (ref.cross_entropy_loss, ref.cross_entropy_grad)}[loss]
    rng = np.random.default_rng(7)
    out = rng.normal(0, 2, (4, 5))
    labels = np.array([0, 4, 2, 2])
    numeric = _numeric_grad(lambda: loss_fn(out, labels), out)
    np.testing.assert_allclose(grad_fn(out, labels), numeric, rtol=1e-6, atol=1e-9)


def test_finite_difference_check_detects_a_wrong_gradient():
    """Guard on the checker itself: a gradient off by a little must fail it."""
    weights, biases, X, labels = _problem_away_from_kinks([5, 7, 4, 3], 3, seed=1)
    _, dWs, _ = ref.loss_and_grads(weights, biases, X, labels)

    def f():
        return ref.loss_and_grads(weights, biases, X, labels)[0]

    with pytest.raises(AssertionError):
        np.testing.assert_allclose(dWs[0] * 1.001, _numeric_grad(f, weights[0]), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(set(ACTIVATIONS) | {"identity"}))
def test_activation_derivatives_match_finite_differences(name):
    """DERIVATIVES[name](A), from the output (or Z), against central differences of the function
    in Z."""
    rng = np.random.default_rng(3)
    Z = rng.normal(0, 2, (6, 7))
    Z[np.abs(Z) < KINK_MARGIN] = 2 * KINK_MARGIN      # away from ReLU's kink at 0
    f, derivative = ref.ACTIVATIONS[name], ref.DERIVATIVES[name]
    numeric = (f(Z + FD_STEP) - f(Z - FD_STEP)) / (2 * FD_STEP)
    source = Z if name in ref.FROM_PREACTIVATION else f(Z)
    np.testing.assert_allclose(derivative(source), numeric, rtol=1e-7, atol=1e-9)


def test_every_option_has_a_reference():
    """The options table's activations and update rules are all written out in the reference."""
    assert set(_options.ACTIVATIONS) <= set(ref.ACTIVATIONS) == set(ref.DERIVATIVES)
    assert set(_options.MOMENTUM_RULES) == set(ref.UPDATES)


def test_tanh_layer_and_network_forward():
    X = np.array([[1.0, -2.0]])
    W = np.array([[1.0, 2.0, -1.0], [1.0, 1.0, 0.0]])
    b = np.array([0.0, 0.0, 0.5])
    np.testing.assert_array_equal(ref.dense_forward(X, W, b, activation="tanh"),
                                  np.tanh([[-1.0, 0.0, -0.5]]))
    # Hidden layers apply tanh; the output layer stays linear.
    activations = ref.forward([W, np.eye(3)], [b, np.zeros(3)], X, activation="tanh")
    np.testing.assert_array_equal(activations[1], np.tanh([[-1.0, 0.0, -0.5]]))
    np.testing.assert_array_equal(activations[2], activations[1])


def test_unknown_activation_raises():
    weights, biases = ref.init_params([2, 3, 2], np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown activation"):
        ref.forward(weights, biases, np.ones((1, 2)), activation="sigmoid")
    with pytest.raises(ValueError, match="unknown activation"):
        ref.fit(np.ones((1, 2)), np.array([0]), [2, 3, 2], activation="sigmoid")


# --------------------------------------------------------------------------
# Update rules worked by hand
# --------------------------------------------------------------------------

def test_l2_gradient_adds_alpha_times_the_weights():
    # d/dW (alpha / 2 * W**2) = alpha * W: 0.5 + 0.01 * 2 = 0.52.
    np.testing.assert_allclose(ref.l2_gradient(np.array([0.5]), np.array([2.0]), 0.01), [0.52],
                               rtol=1e-15)


def test_hand_worked_momentum_and_nesterov_steps():
    # W = 1, v = 0.2, dW = 0.5, lr = 0.1, momentum = 0.9:
    #   v_new = 0.9 * 0.2 - 0.1 * 0.5 = 0.13
    #   momentum: W = 1 + 0.13 = 1.13
    #   Nesterov: W = 1 + 0.9 * 0.13 - 0.1 * 0.5 = 1.067
    W, v, dW = np.array([1.0]), np.array([0.2]), np.array([0.5])
    W_m, v_m = ref.momentum_update(W, v, dW, 0.1, 0.9)
    W_n, v_n = ref.nesterov_update(W, v, dW, 0.1, 0.9)
    np.testing.assert_allclose(v_m, [0.13], rtol=1e-14)
    np.testing.assert_allclose(v_n, [0.13], rtol=1e-14)
    np.testing.assert_allclose(W_m, [1.13], rtol=1e-14)
    np.testing.assert_allclose(W_n, [1.067], rtol=1e-14)
    np.testing.assert_array_equal(W, [1.0])             # the inputs are not modified
    np.testing.assert_array_equal(v, [0.2])


@pytest.mark.parametrize("rule", ["momentum", "nesterov"])
def test_momentum_under_a_constant_gradient_reaches_the_step_lr_over_one_minus_momentum(rule):
    # With dW fixed, v_t = -lr * dW * (1 - mu**t) / (1 - mu): the geometric series.
    lr, mu, dW = 0.1, 0.9, np.array([0.5, -2.0])
    W, v = np.zeros(2), np.zeros(2)
    for t in range(1, 201):
        W, v = ref.UPDATES[rule](W, v, dW, lr, mu)
        np.testing.assert_allclose(v, -lr * dW * (1 - mu ** t) / (1 - mu), rtol=1e-12)
    # Both rules then move W by the same step, -lr * dW / (1 - mu) (up to mu**200 ~ 7e-10).
    W_after, _ = ref.UPDATES[rule](W, v, dW, lr, mu)
    np.testing.assert_allclose(W_after - W, -lr * dW / (1 - mu), rtol=1e-8)


def test_parameter_update_picks_the_rule_and_applies_l2_first():
    rng = np.random.default_rng(4)
    W, v, dW = rng.normal(size=(3, 2)), rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    lr, mu, alpha = 0.05, 0.8, 0.01
    g = dW + alpha * W
    W_new, v_new = ref.parameter_update(W, dW, lr, v, alpha=alpha)
    np.testing.assert_array_equal(W_new, W - lr * g)
    assert v_new is v                                    # no momentum: the velocity stays
    for nesterov, rule in ((False, ref.momentum_update), (True, ref.nesterov_update)):
        got = ref.parameter_update(W, dW, lr, v, alpha=alpha, momentum=mu, nesterov=nesterov)
        want = rule(W, v, g, lr, mu)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


# --------------------------------------------------------------------------
# One SGD step worked by hand
# --------------------------------------------------------------------------

def test_hand_worked_sgd_step_mse():
    # 2-2-2 net: dense 2 ReLU -> dense 2 linear, batch of 2, lr = 0.1.
    W1 = np.array([[1.0, 0.0], [0.0, -1.0]])
    b1 = np.array([0.5, 0.0])
    W2 = np.array([[1.0, 2.0], [3.0, 4.0]])
    b2 = np.array([0.0, 1.0])
    X = np.array([[1.0, 2.0], [0.0, 1.0]])
    labels = np.array([0, 1])
    # Forward:
    #   Z1 = X @ W1 + b1 = [[1.5, -2], [0.5, -1]]   -> A1 = [[1.5, 0], [0.5, 0]]
    #   out = A1 @ W2 + b2 = [[1.5, 4], [0.5, 2]]
    #   out - Y = [[0.5, 4], [0.5, 1]]
    #   loss = (0.25 + 16 + 0.25 + 1) / 2 = 8.75
    # Backward (M = 2):
    #   dOut = 2 (out - Y) / 2 = [[0.5, 4], [0.5, 1]]
    #   dW2 = A1.T @ dOut = [[1.0, 6.5], [0, 0]],  db2 = [1.0, 5.0]
    #   dA1 = dOut @ W2.T = [[8.5, 17.5], [2.5, 5.5]] -> mask (A1 > 0) -> dZ1 = [[8.5, 0], [2.5, 0]]
    #   dW1 = X.T @ dZ1 = [[8.5, 0], [19.5, 0]],  db1 = [11, 0]
    # Update W -= 0.1 dW.
    new_w, new_b, loss = ref.train_step([W1, W2], [b1, b2], X, labels, lr=0.1)

    assert loss == pytest.approx(8.75, rel=1e-12)
    np.testing.assert_allclose(new_w[0], [[0.15, 0.0], [-1.95, -1.0]], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(new_b[0], [-0.6, 0.0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(new_w[1], [[0.9, 1.35], [3.0, 4.0]], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(new_b[1], [-0.1, 0.5], rtol=1e-12, atol=1e-12)
    # The inputs are not modified.
    np.testing.assert_array_equal(W1, [[1.0, 0.0], [0.0, -1.0]])
    np.testing.assert_array_equal(b2, [0.0, 1.0])


def test_hand_worked_cross_entropy_step():
    # Single linear layer 1 -> 2, one sample x = 1, label 0, W = [[0, ln 3]], b = 0, lr = 1.
    # logits = [0, ln 3] -> softmax = [1/4, 3/4]; loss = -log(1/4) = ln 4.
    # dLogits = [1/4 - 1, 3/4] = [-3/4, 3/4] = dW (x = 1) = db.
    W = np.array([[0.0, np.log(3.0)]])
    b = np.zeros(2)
    new_w, new_b, loss = ref.train_step([W], [b], np.array([[1.0]]), np.array([0]), lr=1.0,
                                        loss="cross_entropy")
    assert loss == pytest.approx(np.log(4.0), rel=1e-12)
    np.testing.assert_allclose(new_w[0], [[0.75, np.log(3.0) - 0.75]], rtol=1e-12)
    np.testing.assert_allclose(new_b[0], [0.75, -0.75], rtol=1e-12)


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------

def test_dense_forward_and_relu_exact():
    X = np.array([[1.0, -2.0]], dtype=np.float32)
    W = np.array([[1.0, 2.0, -1.0], [1.0, 1.0, 0.0]], dtype=np.float32)
    b = np.array([0.0, 0.0, 0.5], dtype=np.float32)
    np.testing.assert_array_equal(ref.dense_forward(X, W, b, relu=False), [[-1.0, 0.0, -0.5]])
    A = ref.dense_forward(X, W, b, relu=True)
    np.testing.assert_array_equal(A, [[0.0, 0.0, 0.0]])
    assert A.dtype == np.float32


def test_relu_backward_and_dense_backward():
    dA = np.array([[1.0, 2.0, 3.0]])
    A = np.array([[0.0, 5.0, 0.1]])
    np.testing.assert_array_equal(ref.relu_backward(dA, A), [[0.0, 2.0, 3.0]])

    rng = np.random.default_rng(0)
    dZ, A_prev, W = rng.normal(size=(4, 3)), rng.normal(size=(4, 5)), rng.normal(size=(5, 3))
    dA_prev, dW, db = ref.dense_backward(dZ, A_prev, W)
    np.testing.assert_allclose(dA_prev, dZ @ W.T)
    np.testing.assert_allclose(dW, A_prev.T @ dZ)
    np.testing.assert_allclose(db, dZ.sum(axis=0))


def test_float32_stays_float32():
    weights, biases = ref.init_params([6, 5, 4], np.random.default_rng(0))
    X = np.random.default_rng(1).normal(size=(3, 6)).astype(np.float32)
    labels = np.array([0, 3, 1])
    for loss in LOSSES:
        _, dWs, dbs = ref.loss_and_grads(weights, biases, X, labels, loss)
        assert all(g.dtype == np.float32 for g in dWs + dbs)
        new_w, new_b, _ = ref.train_step(weights, biases, X, labels, 0.01, loss)
        assert all(p.dtype == np.float32 for p in new_w + new_b)


def test_sgd_update_returns_new_array():
    W = np.ones((2, 2))
    W_new = ref.sgd_update(W, np.full((2, 2), 3.0), 0.5)
    np.testing.assert_array_equal(W_new, np.full((2, 2), -0.5))
    np.testing.assert_array_equal(W, np.ones((2, 2)))


def test_unknown_loss_raises():
    weights, biases = ref.init_params([2, 2], np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown loss"):
        ref.loss_and_grads(weights, biases, np.ones((1, 2)), np.array([0]), loss="hinge")
    with pytest.raises(ValueError, match="unknown loss"):
        ref.fit(np.ones((1, 2)), np.array([0]), [2, 2], loss="hinge")


# --------------------------------------------------------------------------
# Initialisation
# --------------------------------------------------------------------------

def test_glorot_uniform():
    fan_in, fan_out = 784, 512
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    W = ref.glorot_uniform(fan_in, fan_out, np.random.default_rng(42))
    assert W.shape == (fan_in, fan_out)
    assert W.dtype == np.float32
    assert np.all(np.abs(W) <= np.float32(limit))
    assert np.abs(W).max() > 0.99 * limit           # the bound is actually reached
    assert abs(W.mean()) < 0.01 * limit
    # Var of U(-l, l) is l^2 / 3 = 2 / (fan_in + fan_out); 401408 samples give ~0.2 % noise.
    assert W.astype(np.float64).var() == pytest.approx(2.0 / (fan_in + fan_out), rel=0.02)
    # Same seed, same weights: exactly rng.uniform(...).astype(float32).
    expected = np.random.default_rng(42).uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)
    np.testing.assert_array_equal(W, expected)
    np.testing.assert_array_equal(ref.glorot_uniform(fan_in, fan_out, np.random.default_rng(42)), W)
    assert not np.array_equal(ref.glorot_uniform(fan_in, fan_out, np.random.default_rng(43)), W)


def test_init_params_layer_order():
    sizes = [7, 5, 3, 2]
    weights, biases = ref.init_params(sizes, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    for l, (k, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        np.testing.assert_array_equal(weights[l], ref.glorot_uniform(k, n, rng))
        assert biases[l].shape == (n,) and biases[l].dtype == np.float32
        assert not biases[l].any()


# --------------------------------------------------------------------------
# Losses, one-hot, softmax
# --------------------------------------------------------------------------

def test_onehot():
    Y = ref.onehot(np.array([2, 0, 1, 2]), 3, np.float32)
    assert Y.dtype == np.float32
    np.testing.assert_array_equal(Y, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_mse_loss_value():
    out = np.array([[0.5, 0.5], [0.0, 3.0]])
    # ((0.5-1)^2 + 0.5^2 + 0^2 + (3-1)^2) / 2 = (0.25 + 0.25 + 4) / 2
    assert ref.mse_loss(out, np.array([0, 1])) == pytest.approx(2.25, rel=1e-15)


def test_softmax_rows_sum_to_one_and_stable():
    rng = np.random.default_rng(0)
    P = ref.softmax(rng.normal(0, 3, (6, 10)))
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(P >= 0)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        for dtype in (np.float32, np.float64):
            huge = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 0.0]], dtype=dtype)
            P = ref.softmax(huge)
            assert P.dtype == dtype
            np.testing.assert_allclose(P, [[1, 0, 0], [0.5, 0.5, 0]], atol=1e-7)
            assert ref.cross_entropy_loss(huge, np.array([1, 2])) == pytest.approx((1e4 + 1e4 + np.log(2)) / 2)
            assert np.all(np.isfinite(ref.cross_entropy_grad(huge, np.array([1, 2]))))


def test_cross_entropy_is_minus_log_probability():
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 2, (5, 4))
    labels = np.array([3, 0, 1, 1, 2])
    P = ref.softmax(logits)
    expected = -np.mean(np.log(P[np.arange(5), labels]))
    assert ref.cross_entropy_loss(logits, labels) == pytest.approx(expected, rel=1e-12)
    for i in range(5):
        assert ref.cross_entropy_loss(logits[i:i + 1], labels[i:i + 1]) == pytest.approx(
            -np.log(P[i, labels[i]]), rel=1e-12)


# --------------------------------------------------------------------------
# Cost model
# --------------------------------------------------------------------------

def test_flops_per_step_mnist():
    sizes, M = [784, 512, 256, 10], 200
    forward = 2 * M * (784 * 512 + 512 * 256 + 256 * 10)
    weight_grad = forward
    input_grad = 2 * M * (512 * 256 + 256 * 10)
    assert round(forward / 1e6, 1) == 214.0
    assert round(input_grad / 1e6, 1) == 53.5
    assert ref.flops_per_step(sizes, M) == forward + weight_grad + input_grad == 481_484_800
    assert round(ref.flops_per_step(sizes, M) / 1e6, 1) == 481.5


def test_flops_per_step_single_layer_has_no_input_gradient():
    assert ref.flops_per_step([5, 3], 4) == 2 * (2 * 4 * 5 * 3)


# --------------------------------------------------------------------------
# Training end to end
# --------------------------------------------------------------------------

def _blobs(n, seed):
    """Three well-separated Gaussian blobs in 2-D, float32, in shuffled order."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    labels = rng.integers(0, 3, n)
    X = centres[labels] + rng.normal(0, 0.5, (n, 2))
    return X.astype(np.float32), labels


@pytest.mark.parametrize("loss, lr", [("mse", 0.05), ("cross_entropy", 0.2)])
def test_fit_learns_separable_problem(loss, lr):
    X, labels = _blobs(250, seed=0)
    weights, biases, curve = ref.fit(X, labels, [2, 16, 3], lr=lr, batch_size=32,
                                     epochs=30, rng=0, loss=loss)
    assert len(curve) == 30
    assert np.all(np.diff(curve) < 0), curve
    assert curve[-1] < 0.25 * curve[0]
    assert all(W.dtype == np.float32 for W in weights)
    X_test, labels_test = _blobs(200, seed=1)
    assert np.mean(ref.predict(weights, biases, X_test) == labels_test) >= 0.98


def test_fit_batches_in_order_with_partial_last_batch():
    """fit == init_params + train_step over [0:4), [4:8), [8:10), the last batch of 2."""
    X, labels = _blobs(10, seed=2)
    sizes = [2, 5, 3]
    weights, biases, curve = ref.fit(X, labels, sizes, lr=0.1, batch_size=4, epochs=1,
                                     rng=np.random.default_rng(9))

    w, b = ref.init_params(sizes, np.random.default_rng(9))
    losses = []
    for start, stop in [(0, 4), (4, 8), (8, 10)]:
        w, b, batch_loss = ref.train_step(w, b, X[start:stop], labels[start:stop], 0.1)
        losses.append(batch_loss)
    for got, want in zip(weights + biases, w + b):
        np.testing.assert_array_equal(got, want)
    assert curve == [pytest.approx((4 * losses[0] + 4 * losses[1] + 2 * losses[2]) / 10)]


def test_predict_is_argmax_of_output():
    weights = [np.eye(3)]
    biases = [np.zeros(3)]
    X = np.array([[0.1, 0.9, 0.0], [5.0, -1.0, 4.9], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(ref.predict(weights, biases, X), [1, 0, 2])
