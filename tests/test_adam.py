"""Adam (ops/optimizer.h), fused into the weight update's epilogue, against the NumPy reference
(fastmlp/reference.py: adam_update) and scikit-learn's AdamOptimizer, in float64.

Each C step is compared with the reference applied to the C's own weights and moments before
that step, so the comparison does not drift over the steps. The tolerances follow the update's
conditioning: m' and v' move with the float32 gradient's error, and w' = w - lr_t m' /
(sqrt(v') + epsilon) amplifies it where v' is small.
"""
import numpy as np
import pytest

from fastmlp import _core
from fastmlp import reference as ref

EPS32 = float(np.finfo(np.float32).eps)
ISAS = list(_core.ISAS)

pytestmark = pytest.mark.usefixtures("restore_isa_and_threads")

# Widths that cut the 64-column panels and the kernels' tiles unevenly, one sample, the
# tutorial's network, a network without a hidden layer.
NETWORKS = [((5, 3), 4), ((7, 13, 3), 1), ((17, 33, 7, 2), 9), ((70, 130, 75, 3), 33),
            ((784, 512, 256, 10), 200), ((1100, 90, 3), 40), ((13, 1, 7), 5),
            ((784, 100, 10), 200), ((50, 99, 35, 4), 30), ((20, 70, 1), 50), ((9, 40, 2), 64),
            ((30, 40, 8), 25)]
# The float32 gradient's error, relative to the largest gradient of its matrix: sums of at most
# a few hundred float32 terms through at most three layers (test_kernels.py allows 2e-3 of the
# step for the same products).
GRAD_RTOL = 1e-4


def rand(rng, *shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, shape).astype(np.float32)


def adam_net(sizes, batch, seed, activation="relu"):
    rng = np.random.default_rng(seed)
    weights, biases = ref.init_params(list(sizes), rng)
    biases = [rand(rng, len(b), low=-0.1, high=0.1) for b in biases]
    net = _core.Network(sizes, batch, activation=activation, adam=True)
    net.set_weights([a for pair in zip(weights, biases) for a in pair])
    return net


def sklearn_adam_update(W, m, v, g, lr, t, beta_1, beta_2, epsilon):
    """scikit-learn's AdamOptimizer on one parameter at step t, from moments m, v."""
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer

    W = W.copy()
    opt = AdamOptimizer([W], learning_rate_init=lr, beta_1=beta_1, beta_2=beta_2,
                        epsilon=epsilon)
    opt.t, opt.ms, opt.vs = t - 1, [m], [v]
    opt.update_params([W], [g])
    return W, opt.ms[0], opt.vs[0]


def reference_adam_update(W, m, v, g, lr, t, beta_1, beta_2, epsilon):
    return ref.adam_update(W, m, v, g, lr, t, beta_1, beta_2, epsilon)


RULES = {"reference": reference_adam_update, "sklearn": sklearn_adam_update}


def check_close(got, want, tol, what):
    bad = np.abs(got.astype(np.float64) - want) > tol
    assert not bad.any(), (what, np.argwhere(bad)[:3], got[bad][:3], want[bad][:3], tol[bad][:3])


def check_step(before, after, grads, lr, t, betas, epsilon, alpha, rule):
    """One parameter's C step (after: W, m, v) against the rule applied to before (W, m, v,
    as float32) with the float64 gradient grads (L2 not yet added)."""
    beta_1, beta_2 = betas
    W, m, v = (a.astype(np.float64) for a in before)
    g = grads + alpha * W
    W_new, m_new, v_new = RULES[rule](W, m, v, g, lr, t, beta_1, beta_2, epsilon)
    e_g = GRAD_RTOL * np.abs(g).max() + 4 * EPS32 * np.abs(alpha * W) + 1e-30
    tol_m = (1 - beta_1) * e_g + 4 * EPS32 * (np.abs(m_new) + np.abs(m))
    tol_v = 2 * (1 - beta_2) * np.abs(g) * e_g + (1 - beta_2) * e_g ** 2 \
        + 4 * EPS32 * (v_new + v)
    s = np.sqrt(v_new) + epsilon
    # d(w')/d(m') = lr_t / s;  d(w')/d(v') = lr_t m' / (2 sqrt(v') s^2), bounded by the
    # change of sqrt over [v' - tol_v, v' + tol_v].
    lr_t = ref.adam_lr(lr, t, beta_1, beta_2)
    d_sqrt = np.sqrt(v_new + tol_v) - np.sqrt(v_new)
    slope_v = d_sqrt / (s * np.maximum(s - d_sqrt, epsilon))
    tol_w = 2 * lr_t * (tol_m / s + np.abs(m_new) * slope_v) \
        + 8 * EPS32 * (np.abs(W_new) + lr_t * np.abs(m_new) / s)
    check_close(after[1], m_new, tol_m, "m")
    check_close(after[2], v_new, tol_v, "v")
    check_close(after[0], W_new, tol_w, "W")


@pytest.mark.parametrize("rule", ["reference", "sklearn"])
@pytest.mark.parametrize("sizes,batch", NETWORKS)
def test_adam_steps_match_the_rule_in_float64(sizes, batch, rule):
    # tanh: smooth, so the float64 gradient is the float32 one's up to rounding (a ReLU unit
    # at its kink would take another branch in float32); ReLU's steps are the same code
    # (the bits test below).
    activation = "tanh"
    net = adam_net(sizes, batch, seed=batch + len(sizes), activation=activation)
    rng = np.random.default_rng(batch)
    L = len(sizes) - 1
    lr, betas, epsilon, alpha = 0.01, (0.9, 0.999), 1e-8, 1e-3
    for t in range(1, 5):
        X = rand(rng, batch, sizes[0], low=0, high=1)
        labels = rng.integers(0, sizes[-1], size=batch).astype(np.int32)
        loss = "cross_entropy" if t % 2 else "mse"
        params, state = net.get_weights(), net.get_optimizer_state()
        w64 = [params[2 * l].astype(np.float64) for l in range(L)]
        b64 = [params[2 * l + 1].astype(np.float64) for l in range(L)]
        _, dWs, dbs = ref.loss_and_grads(w64, b64, X.astype(np.float64), labels, loss,
                                         activation)
        net.train_step(X, labels, lr, loss, alpha=alpha, adam=(*betas, epsilon, t))
        new_params, new_state = net.get_weights(), net.get_optimizer_state()
        for i in range(2 * L):
            grads = dWs[i // 2] if i % 2 == 0 else dbs[i // 2]
            before = (params[i], state[i], state[2 * L + i])
            after = (new_params[i], new_state[i], new_state[2 * L + i])
            check_step(before, after, grads, lr, t, betas, epsilon, alpha if i % 2 == 0 else 0.0,
                       rule)


def test_reference_is_scikit_learns_adam_bit_for_bit():
    rng = np.random.default_rng(1)
    W, g = rng.standard_normal((7, 5)), rng.standard_normal((5, 7, 5))
    m, v = np.zeros_like(W), np.zeros_like(W)
    W_sk, m_sk, v_sk = W, m, v
    for t in range(1, 6):
        W, m, v = ref.adam_update(W, m, v, g[t - 1], 0.003, t, 0.8, 0.99, 1e-6)
        W_sk, m_sk, v_sk = sklearn_adam_update(W_sk, m_sk, v_sk, g[t - 1], 0.003, t, 0.8, 0.99,
                                               1e-6)
        for a, b in ((W, W_sk), (m, m_sk), (v, v_sk)):
            np.testing.assert_array_equal(a, b)


def test_hand_worked_first_adam_step():
    # t = 1 from zero moments: m = (1 - b1) g, v = (1 - b2) g^2, lr_t = lr sqrt(1 - b2) / (1 - b1),
    # so W moves by lr g / (|g| + epsilon / sqrt(1 - b2)): about lr against the gradient's sign.
    W, g = np.array([1.0, 1.0]), np.array([0.5, -2.0])
    W_new, m, v = ref.adam_update(W, np.zeros(2), np.zeros(2), g, 0.1, 1, 0.9, 0.999, 1e-8)
    np.testing.assert_allclose(m, [0.05, -0.2], rtol=1e-14)
    np.testing.assert_allclose(v, [0.00025, 0.004], rtol=1e-12)
    np.testing.assert_allclose(W_new, [0.9, 1.1], rtol=1e-6)
    # Under a constant gradient the bias correction keeps the step at lr (to epsilon).
    W, m, v = np.zeros(2), np.zeros(2), np.zeros(2)
    for t in range(1, 50):
        W_next, m, v = ref.adam_update(W, m, v, g, 0.1, t, 0.9, 0.999, 1e-8)
        np.testing.assert_allclose(W_next - W, -0.1 * np.sign(g), rtol=1e-6)
        W = W_next


def adam_run(sizes, batch, activation):
    """A few Adam steps with L2 on data with zero columns; the bytes of weights and moments."""
    net = adam_net(sizes, batch, seed=3, activation=activation)
    rng = np.random.default_rng(4)
    out = []
    for t in range(1, 4):
        X = rand(rng, batch, sizes[0], low=0, high=1)
        X[:, ::3] = 0                                      # columns skipped by the step
        labels = rng.integers(0, sizes[-1], size=batch).astype(np.int32)
        out.append(net.train_step(X, labels, 0.01, "cross_entropy", alpha=1e-4,
                                  adam=(0.9, 0.999, 1e-8, t)))
    return b"".join(a.tobytes() for a in net.get_weights() + net.get_optimizer_state()), out


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("sizes,batch", NETWORKS)
def test_adam_gives_the_same_bits_on_every_isa_and_thread_count(sizes, batch, activation,
                                                                use_isa):
    runs = {}
    for isa in ISAS:
        if isa not in _core.build_info()["isa_available"]:
            continue
        for threads in (1, 2, 3):
            use_isa(isa, threads)
            runs[(isa, threads)] = adam_run(sizes, batch, activation)
    assert len(runs) >= 3
    first = next(iter(runs.values()))
    for key, run in runs.items():
        assert run == first, key


def test_train_step_rows_with_adam_is_train_step_on_the_gathered_rows():
    sizes, batch = (70, 130, 75, 3), 33
    gathered, copied = adam_net(sizes, batch, 5), adam_net(sizes, batch, 5)
    rng = np.random.default_rng(6)
    X = rand(rng, 100, sizes[0], low=0, high=1)
    y = rng.integers(0, sizes[-1], size=100).astype(np.int32)
    for t in (1, 2):
        rows = rng.integers(0, 100, size=batch).astype(np.int64)
        a = gathered.train_step_rows(X, y, rows, 0.01, adam=(0.9, 0.999, 1e-8, t))
        b = copied.train_step(X[rows], y[rows], 0.01, adam=(0.9, 0.999, 1e-8, t))
        assert a == b
    for got, want in zip(gathered.get_weights() + gathered.get_optimizer_state(),
                         copied.get_weights() + copied.get_optimizer_state()):
        assert np.array_equal(got, want)


def test_optimizer_state_round_trips_and_is_checked():
    sizes = (40, 64, 128, 65)
    rng = np.random.default_rng(8)
    net = _core.Network(sizes, 3, adam=True)
    shapes = [s for a, b in zip(sizes[:-1], sizes[1:]) for s in ((a, b), (b,))]
    state = [rand(rng, *s) for s in shapes] + [rand(rng, *s, low=0) for s in shapes]
    net.set_optimizer_state(state)
    for got, want in zip(net.get_optimizer_state(), state):
        assert got.dtype == np.float32 and np.array_equal(got, want)
    before = net.get_optimizer_state()
    for bad in (state[:-1], state[:-1] + [-state[-1] - 1], state[:-1] + [state[-1][:-1]],
                [np.full(s.shape, np.nan, np.float32) for s in state]):
        with pytest.raises(ValueError):
            net.set_optimizer_state(bad)
    for got, want in zip(net.get_optimizer_state(), before):   # a bad list changes nothing
        assert np.array_equal(got, want)
    net.set_weights(net.get_weights())                           # new weights, new moments
    assert all(not a.any() for a in net.get_optimizer_state())
    # Momentum's state is its velocity; plain SGD keeps none.
    momentum = _core.Network(sizes, 3, momentum=True)
    velocity = [rand(rng, *s) for s in shapes]
    momentum.set_velocity(velocity)
    for got, want in zip(momentum.get_optimizer_state(), velocity):
        assert np.array_equal(got, want)
    assert _core.Network(sizes, 3).get_optimizer_state() == []


@pytest.mark.parametrize("adam", [(0.9, 0.999, 1e-8), (1.0, 0.999, 1e-8, 1),
                                  (0.9, -0.1, 1e-8, 1), (0.9, 0.999, 0.0, 1),
                                  (0.9, 0.999, 1e-50, 1), (0.9, 0.999, np.nan, 1),
                                  (0.9, 0.999, 1e-8, 0), (0.9, 0.999, 1e-8, 1.5),
                                  (0.9, 0.999, 1e-8, True), [0.9, 0.999, 1e-8, 1]])
def test_bad_adam_arguments_raise_value_error(adam):
    net = _core.Network((3, 4, 2), 2, adam=True)
    X, y = np.ones((2, 3), np.float32), np.zeros(2, np.int32)
    before = net.get_weights()
    with pytest.raises(ValueError):
        net.train_step(X, y, 0.1, adam=adam)
    for got, want in zip(net.get_weights(), before):
        assert np.array_equal(got, want)


def test_adam_and_sgd_networks_refuse_each_others_steps():
    X, y = np.ones((2, 3), np.float32), np.zeros(2, np.int32)
    with pytest.raises(ValueError, match="not both"):
        _core.Network((3, 4, 2), 2, momentum=True, adam=True)
    with pytest.raises(ValueError, match="adam=True"):
        _core.Network((3, 4, 2), 2).train_step(X, y, 0.1, adam=(0.9, 0.999, 1e-8, 1))
    with pytest.raises(ValueError, match="adam=True"):
        _core.Network((3, 4, 2), 2, adam=True).train_step(X, y, 0.1)
    with pytest.raises(ValueError, match="momentum"):
        _core.Network((3, 4, 2), 2, adam=True).train_step(X, y, 0.1, momentum=0.9,
                                                           adam=(0.9, 0.999, 1e-8, 1))


# ---- fastmlp.MLP(solver="adam"): the epoch loop, files, checkpoints, pickles ----

def data(n=200, n_features=6, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    return X, y


def adam_model(**params):
    from fastmlp import MLP

    return MLP(**{**dict(hidden_layer_sizes=(9, 5), batch_size=32, epochs=3, random_state=0,
                         solver="adam", learning_rate=0.01, activation="tanh",
                         loss="cross_entropy"), **params})


def test_mlp_adam_follows_the_reference_rule_step_by_step():
    # One epoch of 3 batches from the same initial weights: the C steps against adam_update in
    # float64 with t = 1, 2, 3 (the tolerance of check_step), through the estimator.
    X, y = data(n=96)
    model = adam_model(epochs=1, batch_size=32, alpha=1e-3, beta_1=0.8, beta_2=0.99,
                       epsilon=1e-6)
    model.fit(X, y)
    assert model.get_state()["adam_t"] == 3
    labels = np.searchsorted(model.classes_, y).astype(np.int32)
    net = _core.Network((6, 9, 5, 3), 32, activation="tanh", adam=True)
    fresh = adam_model()
    fresh._rng = np.random.default_rng(0)                # the fit's first draws: its weights
    net.set_weights(fresh._initial_weights((6, 9, 5, 3)))
    for t in range(1, 4):
        rows = slice(32 * (t - 1), 32 * t)
        params, state = net.get_weights(), net.get_optimizer_state()
        w64 = [params[2 * l].astype(np.float64) for l in range(3)]
        b64 = [params[2 * l + 1].astype(np.float64) for l in range(3)]
        _, dWs, dbs = ref.loss_and_grads(w64, b64, X[rows].astype(np.float64), labels[rows],
                                         "cross_entropy", "tanh")
        net.train_step(X[rows], labels[rows], 0.01, "cross_entropy", alpha=1e-3,
                       adam=(0.8, 0.99, 1e-6, t))
        new_params, new_state = net.get_weights(), net.get_optimizer_state()
        for i in range(6):
            check_step((params[i], state[i], state[6 + i]),
                       (new_params[i], new_state[i], new_state[6 + i]),
                       dWs[i // 2] if i % 2 == 0 else dbs[i // 2], 0.01, t, (0.8, 0.99), 1e-6,
                       1e-3 if i % 2 == 0 else 0.0, "reference")
    for a, b in zip(net.get_weights(), model.get_weights()):
        assert a.tobytes() == b.tobytes()


def test_mlp_adam_learns_and_the_tutorial_default_stays_sgd():
    from fastmlp import MLP

    assert MLP().solver == "sgd"
    X, y = data()
    model = adam_model(epochs=20).fit(X, y)
    assert model.loss_curve_[-1] < 0.5 * model.loss_curve_[0]
    assert model.score(X, y) > 0.9


@pytest.mark.parametrize("params", [dict(solver="rmsprop"), dict(momentum=0.9),
                                    dict(beta_1=1.0), dict(beta_2=-0.1), dict(epsilon=0.0),
                                    dict(epsilon=1e-50), dict(epsilon=float("nan"))])
def test_mlp_adam_parameters_are_checked(params):
    X, y = data()
    with pytest.raises(ValueError):
        adam_model(**params).fit(X, y)


def test_mlp_adam_model_file_and_pickle_keep_the_solver(tmp_path):
    import pickle

    import fastmlp

    X, y = data()
    model = adam_model(beta_1=0.8, beta_2=0.99, epsilon=1e-6).fit(X, y)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastmlp.load(path)
    for name in ("solver", "beta_1", "beta_2", "epsilon"):
        assert getattr(loaded, name) == getattr(model, name)
    np.testing.assert_array_equal(loaded.decision_function(X), model.decision_function(X))
    # A pickle keeps the moments and the step count: both copies continue alike.
    copy = pickle.loads(pickle.dumps(model))
    for m in (model, copy):
        m.set_params(warm_start=True, epochs=2)
        m.fit(X, y)
    for a, b in zip(model.get_weights() + model._network.get_optimizer_state(),
                    copy.get_weights() + copy._network.get_optimizer_state()):
        assert a.tobytes() == b.tobytes()
    assert model.get_state()["adam_t"] == copy.get_state()["adam_t"] == 7 * 5


def test_mlp_adam_checkpoint_resumes_bit_identical(tmp_path):
    from fastmlp import checkpoint

    X, y = data()
    straight = adam_model(epochs=4, shuffle=True).fit(X, y)
    checkpoint.fit(adam_model(epochs=2, shuffle=True), X, y, tmp_path)
    saved = checkpoint.load_checkpoint(tmp_path / checkpoint.CHECKPOINT_NAME)
    assert saved.solver == "adam" and saved.get_state()["adam_t"] == 2 * 7
    assert any(a.any() for a in saved._network.get_optimizer_state())
    resumed = checkpoint.fit(adam_model(epochs=4, shuffle=True), X, y, tmp_path, resume=True)
    for a, b in zip(straight.get_weights() + straight._network.get_optimizer_state(),
                    resumed.get_weights() + resumed._network.get_optimizer_state()):
        assert a.tobytes() == b.tobytes()
    with pytest.raises(ValueError):   # another solver's run does not resume this one
        checkpoint.fit(adam_model(epochs=4, shuffle=True, solver="sgd"), X, y, tmp_path,
                       resume=True)
