"""Float targets with sample weights (scikit-learn's four losses), the gradient mode and the
weights' sum of squares: the C step against the float64 reference (fastmlp/reference.py), the
reference against scikit-learn and central finite differences, every instruction set and thread
count giving the same bits, and bad input raising ValueError."""
import numpy as np
import pytest

from fastmlp import _core
from fastmlp import reference as ref

LOSSES = list(_core.TARGET_LOSSES)
AVAILABLE = _core.build_info()["isa_available"]
EPS32 = float(np.finfo(np.float32).eps)

pytestmark = pytest.mark.usefixtures("restore_isa_and_threads")


def random_targets(rng, loss, M, N):
    """Targets each loss meets: real values, one-hot rows, 0/1 labels, counts."""
    if loss == "squared_error":
        return rng.standard_normal((M, N)).astype(np.float32)
    if loss == "log_loss":
        Y = np.zeros((M, N), np.float32)
        Y[np.arange(M), rng.integers(0, N, M)] = 1
        return Y
    if loss == "binary_log_loss":
        return (rng.random((M, N)) < 0.5).astype(np.float32)
    return rng.poisson(2.0, (M, N)).astype(np.float32)


def make_net(rng, sizes, max_batch, activation="tanh", momentum=False, scale=1.0):
    net = _core.Network(sizes, max_batch, momentum=momentum, activation=activation)
    params = []
    for l in range(len(sizes) - 1):
        bound = scale * np.sqrt(6.0 / (sizes[l] + sizes[l + 1]))
        params.append(rng.uniform(-bound, bound, (sizes[l], sizes[l + 1])).astype(np.float32))
        params.append(rng.uniform(-0.1, 0.1, sizes[l + 1]).astype(np.float32))
    net.set_weights(params)
    return net, params


def f64(arrays):
    return [np.asarray(a, np.float64) for a in arrays]


def reference(params, X, Y, loss, sw=None, weight_sum=None, activation="tanh"):
    """S and [gW1, gb1, ...] of the float64 reference on the float32 network's values."""
    p = f64(params)
    S, dWs, dbs = ref.target_loss_and_grads(p[0::2], p[1::2], np.float64(X), np.float64(Y),
                                            loss, None if sw is None else np.float64(sw),
                                            weight_sum, activation)
    return S, [g for pair in zip(dWs, dbs) for g in pair]


def assert_grads_close(got, want, rtol=2e-4):
    """A float32 chain of K terms against float64: compare each array relative to its own
    largest entry (the sums here have terms of both signs)."""
    for g, w in zip(got, want):
        scale = max(float(np.max(np.abs(w))), 1e-30)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * scale)


# ---- the reference against scikit-learn --------------------------------------------------

@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("weighted", [False, True])
def test_reference_losses_are_sklearns(loss, weighted):
    from sklearn.neural_network._base import LOSS_FUNCTIONS, ACTIVATIONS
    rng = np.random.default_rng(1)
    M, N = 13, 4 if loss != "binary_log_loss" else 3
    out = rng.standard_normal((M, N))
    Y = np.float64(random_targets(rng, loss, M, N))
    sw = rng.uniform(0, 3, M) if weighted else None
    P = out.copy()
    ACTIVATIONS[{"squared_error": "identity", "log_loss": "softmax",
                 "binary_log_loss": "logistic", "poisson": "exp"}[loss]](P)
    np.testing.assert_allclose(ref.OUTPUT_ACTIVATIONS[loss](out), P, rtol=1e-13)
    want = LOSS_FUNCTIONS[loss](Y, P, sw)
    weight_sum = M if sw is None else sw.sum()
    assert ref.target_loss(out, Y, loss, sw) / weight_sum == pytest.approx(want, rel=1e-12)


def sklearn_backprop(params, X, Y, loss, sw, activation):
    """scikit-learn's own _backprop (alpha 0) on these weights: (loss * sw_sum, grads)."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    if loss in ("squared_error", "poisson"):
        est = MLPRegressor(activation=activation, alpha=0.0, loss=loss)
    else:   # log_loss; scikit-learn takes binary_log_loss for a logistic output
        est = MLPClassifier(activation=activation, alpha=0.0)
    est.coefs_ = f64(params[0::2])
    est.intercepts_ = f64(params[1::2])
    est.n_layers_ = len(est.coefs_) + 1
    est.out_activation_ = {"squared_error": "identity", "poisson": "exp",
                           "log_loss": "softmax", "binary_log_loss": "logistic"}[loss]
    L = len(est.coefs_)
    X = np.float64(X)
    value, cg, ig = est._backprop(X, np.float64(Y), None if sw is None else np.float64(sw),
                                  [X] + [None] * L, [None] * L,
                                  [np.empty_like(c) for c in est.coefs_],
                                  [np.empty_like(b) for b in est.intercepts_])
    weight_sum = X.shape[0] if sw is None else float(np.float64(sw).sum())
    return value * weight_sum, [g for pair in zip(cg, ig) for g in pair]


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_is_sklearns_backprop(loss, weighted):
    """The C gradient mode against scikit-learn's _backprop on the same weights."""
    rng = np.random.default_rng(2)
    sizes = (9, 13, 7, 3)
    M = 33
    net, params = make_net(rng, sizes, M, activation="relu")
    X = rng.standard_normal((M, sizes[0])).astype(np.float32)
    Y = random_targets(rng, loss, M, sizes[-1])
    sw = rng.uniform(0, 2, M).astype(np.float32) if weighted else None
    S_sk, g_sk = sklearn_backprop(params, X, Y, loss, sw, "relu")
    S_ref, g_ref = reference(params, X, Y, loss, sw, activation="relu")
    assert S_ref == pytest.approx(S_sk, rel=1e-12)
    assert_grads_close(g_ref, g_sk, rtol=1e-12)
    S, grads = net.gradient(X, Y, loss, sample_weight=sw)
    assert S == pytest.approx(S_sk, rel=1e-5)
    assert_grads_close(grads, g_sk)


# ---- the reference and the C gradient against finite differences -------------------------

def flat_params(params):
    return np.concatenate([np.ravel(p) for p in params])


def unflat(theta, like):
    out, i = [], 0
    for p in like:
        out.append(theta[i:i + p.size].reshape(p.shape))
        i += p.size
    return out


@pytest.mark.parametrize("loss", LOSSES)
def test_reference_gradient_by_finite_differences(loss):
    """The gradient of S / weight_sum (times n_out for squared_error: scikit-learn's delta
    leaves out the mean over the outputs), float64, tanh (no kinks)."""
    rng = np.random.default_rng(3)
    sizes, M = (5, 6, 3), 7
    _, params = make_net(rng, sizes, M)
    params = f64(params)
    X = rng.standard_normal((M, sizes[0]))
    Y = np.float64(random_targets(rng, loss, M, sizes[-1]))
    sw = rng.uniform(0.1, 2, M)
    weight_sum = sw.sum()
    factor = sizes[-1] if loss == "squared_error" else 1

    def objective(theta):
        p = unflat(theta, params)
        out = ref.forward(p[0::2], p[1::2], X, "tanh")[-1]
        return ref.target_loss(out, Y, loss, sw) / weight_sum * factor

    _, grads = reference(params, X, Y, loss, sw, weight_sum, "tanh")
    theta = flat_params(params)
    h = 1e-6
    numeric = np.array([(objective(theta + h * e) - objective(theta - h * e)) / (2 * h)
                        for e in np.eye(theta.size)])
    np.testing.assert_allclose(flat_params(grads), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("loss", LOSSES)
def test_c_gradient_by_finite_differences(loss):
    """The C gradient against central differences of the C loss along random directions
    (float32 weights: a step of 1e-2, a tolerance of 1%)."""
    rng = np.random.default_rng(4)
    sizes, M = (11, 17, 5), 19
    net, params = make_net(rng, sizes, M)
    X = rng.standard_normal((M, sizes[0])).astype(np.float32)
    Y = random_targets(rng, loss, M, sizes[-1])
    sw = rng.uniform(0.1, 2, M).astype(np.float32)
    factor = sizes[-1] if loss == "squared_error" else 1
    S0, grads = net.gradient(X, Y, loss, sample_weight=sw)
    weight_sum = float(sw.astype(np.float64).sum())
    norm = np.sqrt(sum(float(np.sum(np.float64(g) ** 2)) for g in grads))
    for _ in range(3):
        V = [rng.standard_normal(p.shape) for p in params]
        length = np.sqrt(sum(float(np.sum(v ** 2)) for v in V))
        V = [(v / length).astype(np.float32) for v in V]   # a unit direction
        t = 1e-2
        values = []
        for sign in (1, -1):
            net.set_weights([p + sign * t * v for p, v in zip(params, V)])
            values.append(net.gradient(X, Y, loss, sample_weight=sw)[0] / weight_sum * factor)
        numeric = (values[0] - values[1]) / (2 * t)
        analytic = sum(float(np.sum(np.float64(g) * v)) for g, v in zip(grads, V))
        assert analytic == pytest.approx(numeric, rel=1e-2, abs=1e-3 * norm)
    net.set_weights(params)
    assert net.gradient(X, Y, loss, sample_weight=sw)[0] == S0


# ---- the C kernels against the reference -------------------------------------------------

@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("M", [1, 7, 13])
def test_output_gradient_with_weights(loss, M):
    """One layer on X = I: its weight gradient is the output delta itself (each sum is one
    nonzero term), S its loss; the logits z = W + b are exact float32 values."""
    rng = np.random.default_rng(5)
    N = 1 if loss == "binary_log_loss" and M == 1 else 7
    net, params = make_net(rng, (M, N), M, scale=4.0)
    X = np.eye(M, dtype=np.float32)
    Y = random_targets(rng, loss, M, N)
    sw = rng.uniform(0, 3, M).astype(np.float32)
    sw[0] = 0.0 if M > 1 else sw[0]   # a row of weight 0: no gradient
    for weight_sum in (0.0, 2.5):
        S, (gW, gb) = net.gradient(X, Y, loss, sample_weight=sw, weight_sum=weight_sum)
        z = np.float64(params[0] + params[1])
        ws = float(np.float64(sw).sum()) if weight_sum == 0 else weight_sum
        want = ref.target_output_grad(z, np.float64(Y), loss, np.float64(sw), ws)
        np.testing.assert_allclose(gW, want, rtol=2 * EPS32, atol=1e-30)
        assert S == pytest.approx(ref.target_loss(z, np.float64(Y), loss, np.float64(sw)),
                                  rel=1e-12)
    S1, (gW1, _) = net.gradient(X, Y, loss)   # no weights: all 1, weight_sum M
    want = ref.target_output_grad(np.float64(params[0] + params[1]), np.float64(Y), loss)
    np.testing.assert_allclose(gW1, want, rtol=2 * EPS32, atol=1e-30)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("sizes,M", [((1, 1), 1), ((7, 13, 1), 1), ((33, 7, 13, 5), 13),
                                     ((13, 33, 7), 33), ((784, 512, 256, 10), 200)])
def test_gradient_against_reference(loss, sizes, M):
    rng = np.random.default_rng(6)
    net, params = make_net(rng, sizes, max(M, 3), activation="relu")
    X = rng.standard_normal((M, sizes[0])).astype(np.float32)
    Y = random_targets(rng, loss, M, sizes[-1])
    sw = rng.uniform(0, 2, M).astype(np.float32)
    for w in (None, sw):
        S, grads = net.gradient(X, Y, loss, sample_weight=w)
        S_ref, g_ref = reference(params, X, Y, loss, w, activation="relu")
        assert S == pytest.approx(S_ref, rel=1e-4, abs=1e-6)
        assert_grads_close(grads, g_ref)
        assert [g.shape for g in grads] == [p.shape for p in params]
        assert all(g.dtype == np.float32 for g in grads)
    assert_grads_close(net.get_weights(), params, rtol=0)   # the weights did not move


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_step_against_reference(loss, momentum):
    """A full step: S before the update, the weights after, against the reference's
    gradient and update rule (alpha on the weights only)."""
    rng = np.random.default_rng(7)
    sizes, M = (13, 33, 7, 5), 29
    net, params = make_net(rng, sizes, M, momentum=momentum > 0, activation="relu")
    X = rng.standard_normal((M, sizes[0])).astype(np.float32)
    Y = random_targets(rng, loss, M, sizes[-1])
    sw = rng.uniform(0, 2, M).astype(np.float32)
    lr, alpha = 0.05, 1e-3
    S = net.train_step_targets(X, Y, lr, loss, sample_weight=sw, alpha=alpha,
                               momentum=momentum)
    S_ref, g_ref = reference(params, X, Y, loss, sw, activation="relu")
    assert S == pytest.approx(S_ref, rel=1e-4)
    want = []
    for i, (p, g) in enumerate(zip(f64(params), g_ref)):
        v = np.zeros_like(p) if momentum else None
        new, _ = ref.parameter_update(p, g, lr, v, alpha if i % 2 == 0 else 0.0, momentum)
        want.append(new)
    for got, w, p in zip(net.get_weights(), want, f64(params)):
        # the step itself (new - old) to float32 accuracy
        moved = np.max(np.abs(w - p))
        np.testing.assert_allclose(got, w, rtol=0, atol=1e-4 * moved + 4 * EPS32 * np.max(np.abs(p)))


@pytest.mark.parametrize("loss", LOSSES)
def test_rows_are_a_gathered_copy(loss):
    """train_step_targets(rows=...) gives the same bits as on X[rows], Y[rows], sw[rows],
    with the weight sum of the batch's rows."""
    rng = np.random.default_rng(8)
    sizes, n, M = (29, 40, 11), 50, 21
    X = rng.standard_normal((n, sizes[0])).astype(np.float32)
    Y = random_targets(rng, loss, n, sizes[-1])
    sw = rng.uniform(0, 2, n).astype(np.float32)
    rows = rng.permutation(n)[:M].astype(np.int64)
    results = []
    for gathered in (False, True):
        net, _ = make_net(np.random.default_rng(9), sizes, M, momentum=True)
        for _ in range(2):
            if gathered:
                S = net.train_step_targets(X[rows], Y[rows], 0.1, loss, sample_weight=sw[rows],
                                           momentum=0.5)
            else:
                S = net.train_step_targets(X, Y, 0.1, loss, sample_weight=sw, rows=rows,
                                           momentum=0.5)
        results.append((S, net.get_weights()))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(a, b)


def run_everything(loss, sizes, M, isa_threads, use_isa):
    """Per (isa, threads): the gradient mode's outputs and two steps' S and weights."""
    rng = np.random.default_rng(10)
    n = M + 17
    X = rng.standard_normal((n, sizes[0])).astype(np.float32)
    X[:, :sizes[0] // 3] = 0   # blank columns: layer 0 skips them
    Y = random_targets(rng, loss, n, sizes[-1])
    sw = rng.uniform(0, 2, n).astype(np.float32)
    rows = rng.permutation(n)[:M].astype(np.int64)
    out = []
    for isa, threads in isa_threads:
        use_isa(isa, threads)
        net, _ = make_net(np.random.default_rng(11), sizes, M, activation="relu")
        S, grads = net.gradient(X[:M], Y[:M], loss, sample_weight=sw[:M])
        steps = [net.train_step_targets(X, Y, 0.01, loss, sample_weight=sw, rows=rows),
                 net.train_step_targets(X[:M], Y[:M], 0.01, loss, alpha=1e-4)]
        out.append((S, grads, steps, net.get_weights(), net.weights_sum_squares()))
    return out


@pytest.mark.parametrize("loss", LOSSES)
def test_same_bits_on_every_isa_and_thread_count(loss, use_isa):
    """A network big enough for the step to take 2 and 3 threads (20 MFLOP a thread)."""
    combos = [(isa, t) for isa in AVAILABLE for t in (1, 2, 3)]
    results = run_everything(loss, (300, 257, 129, 10), 200, combos, use_isa)
    S0, g0, steps0, w0, ss0 = results[0]
    for (isa, t), (S, g, steps, w, ss) in zip(combos[1:], results[1:]):
        assert S == S0 and steps == steps0 and ss == ss0, (isa, t)
        for a, b in zip(g + w, g0 + w0):
            np.testing.assert_array_equal(a, b, err_msg=f"{isa}, {t} threads")


def test_weights_sum_squares():
    rng = np.random.default_rng(12)
    net, params = make_net(rng, (33, 70, 13, 3), 4)
    want = sum(float(np.sum(np.float64(W) ** 2)) for W in params[0::2])
    assert net.weights_sum_squares() == pytest.approx(want, rel=1e-13)
    assert _core.Network((3, 2), 1).weights_sum_squares() == 0.0


def test_non_finite_loss_leaves_the_weights():
    """exp overflows for a huge logit: S is infinite and the step changes nothing."""
    rng = np.random.default_rng(13)
    net, params = make_net(rng, (3, 2), 2)
    X = np.full((2, 3), 1e3, np.float32)
    net.set_weights([np.full((3, 2), 1e3, np.float32), np.zeros(2, np.float32)])
    before = net.get_weights()
    S = net.train_step_targets(X, np.ones((2, 2), np.float32), 0.1, "poisson")
    assert not np.isfinite(S)
    for a, b in zip(net.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    S, grads = net.gradient(X, np.ones((2, 2), np.float32), "poisson")
    assert not np.isfinite(S)


def test_labels_path_is_unchanged_by_targets_with_one_hot():
    """log_loss on one-hot targets is cross_entropy on the labels: the same output delta
    (without weights, weight_sum M), so the same weights after a step, up to rounding."""
    rng = np.random.default_rng(14)
    sizes, M = (20, 30, 6), 16
    labels = rng.integers(0, sizes[-1], M).astype(np.int32)
    Y = np.eye(sizes[-1], dtype=np.float32)[labels]
    X = rng.standard_normal((M, sizes[0])).astype(np.float32)
    a, _ = make_net(np.random.default_rng(15), sizes, M)
    b, _ = make_net(np.random.default_rng(15), sizes, M)
    loss_a = a.train_step(X, labels, 0.1, "cross_entropy")
    S_b = b.train_step_targets(X, Y, 0.1, "log_loss")
    assert S_b / M == pytest.approx(loss_a, rel=1e-6)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)


# ---- bad input ---------------------------------------------------------------------------

def bad_calls():
    f32 = np.float32
    X, Y, sw = np.ones((4, 5), f32), np.ones((4, 3), f32), np.ones(4, f32)
    nan_Y, inf_Y, neg_Y = Y.copy(), Y.copy(), Y.copy()
    nan_Y[1, 2], inf_Y[3, 0], neg_Y[0, 1] = np.nan, np.inf, -1
    neg_w, nan_w, zero_w = sw.copy(), sw.copy(), np.zeros(4, f32)
    neg_w[2], nan_w[0] = -1, np.nan
    step, grad = "train_step_targets", "gradient"
    return [
        (step, (X, Y[:3], 0.1, "squared_error"), {}),
        (step, (X, np.ones((4, 2), f32), 0.1, "squared_error"), {}),
        (step, (X, Y, 0.1, "squared_error"), {"sample_weight": sw[:3]}),
        (step, (X, Y, 0.1, "squared_error"), {"sample_weight": neg_w}),
        (step, (X, Y, 0.1, "squared_error"), {"sample_weight": nan_w}),
        (step, (X, Y, 0.1, "squared_error"), {"sample_weight": zero_w}),
        (step, (X, nan_Y, 0.1, "squared_error"), {}),
        (step, (X, inf_Y, 0.1, "log_loss"), {}),
        (step, (X, neg_Y, 0.1, "poisson"), {}),
        (step, (X, Y, 0.1, "mse"), {}),
        (step, (X, Y, 0.1, "hinge"), {}),
        (step, (X, Y, 0.1, "squared_error"), {"weight_sum": -1.0}),
        (step, (X, Y, 0.1, "squared_error"), {"weight_sum": np.nan}),
        (step, (X, Y, 0.1, "squared_error"), {"weight_sum": 1e-320}),
        (step, (X, Y, 0.1, "squared_error"), {"rows": np.array([0, 4], np.int64)}),
        (step, (X, Y, 0.1, "squared_error"), {"rows": np.array([-1], np.int64)}),
        (step, (X, Y, 0.1, "squared_error"), {"rows": np.zeros(9, np.int64)}),
        (step, (X, Y, 0.1, "squared_error"), {"rows": np.zeros(0, np.int64)}),
        (step, (X, Y.astype(np.float64), 0.1, "squared_error"), {}),
        (step, (X, np.asfortranarray(np.ones((4, 3), f32)), 0.1, "squared_error"), {}),
        (step, (X, Y, -0.1, "squared_error"), {}),
        (step, (np.ones((4, 6), f32), Y, 0.1, "squared_error"), {}),
        (step, (np.ones((9, 5), f32), np.ones((9, 3), f32), 0.1, "squared_error"), {}),
        (step, (X, Y, 0.1, "squared_error"), {"momentum": 0.9}),
        (grad, (np.ones((9, 5), f32), np.ones((9, 3), f32), "log_loss"), {}),
        (grad, (np.ones((0, 5), f32), np.ones((0, 3), f32), "log_loss"), {}),
        (grad, (X, Y, "cross_entropy"), {}),
        (grad, (X, nan_Y, "squared_error"), {}),
        (grad, (X, Y, "squared_error"), {"sample_weight": neg_w}),
        (grad, (X, Y, "squared_error"), {"sample_weight": zero_w}),
        (grad, (X, Y[:2], "squared_error"), {}),
        ("train_step", (X, np.zeros(4, np.int32), 0.1, "squared_error"), {}),
        ("train_step_rows", (X, np.zeros(4, np.int32), np.zeros(2, np.int64), 0.1, "poisson"), {}),
    ]


@pytest.mark.parametrize("call", range(len(bad_calls())))
def test_bad_input_raises_value_error(call):
    name, args, kwargs = bad_calls()[call]
    net = _core.Network((5, 4, 3), 8)
    before = net.get_weights()
    with pytest.raises(ValueError):
        getattr(net, name)(*args, **kwargs)
    for a, b in zip(net.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_loss_grad_rejects_target_losses():
    out = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError):
        _core.loss_grad(out, np.zeros(2, np.int32), out.copy(), "poisson")


def test_read_only_inputs():
    rng = np.random.default_rng(16)
    net, _ = make_net(rng, (5, 3), 4)
    X = rng.standard_normal((4, 5)).astype(np.float32)
    Y = rng.random((4, 3)).astype(np.float32)
    sw = np.ones(4, np.float32)
    rows = np.arange(4, dtype=np.int64)
    for a in (X, Y, sw, rows):
        a.setflags(write=False)
    net.gradient(X, Y, "binary_log_loss", sample_weight=sw)
    net.train_step_targets(X, Y, 0.1, "binary_log_loss", sample_weight=sw, rows=rows)
