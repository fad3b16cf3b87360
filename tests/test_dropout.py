"""Dropout (src_c/ops/dropout.h, fastmlp.MLP(dropout=...)): the masks against Random123's known
answers and the NumPy reference, bit for bit; a step against the float64 reference; the same
bits on every instruction set and thread count; the keep rate; the gradient by finite
differences with the mask fixed; predictions without dropout; dropout=0 as before; bad values;
files, pickles and checkpoints."""
import hashlib
import pickle

import numpy as np
import pytest

import fastmlp
from fastmlp import MLP, _core, checkpoint
from fastmlp import reference as ref
from test_activation_kernels import _random_weights

AVAILABLE = _core.build_info()["isa_available"]
ACTIVATIONS = sorted(_core.ACTIVATIONS)

pytestmark = pytest.mark.usefixtures("restore_isa_and_threads")

# Random123's tests/kat_vectors, the three "philox4x32 10" lines: counter, key, result.
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff,) * 4, (0xffffffff,) * 2, (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
]


@pytest.mark.parametrize("counter, key, want", PHILOX_KAT)
def test_philox_gives_random123s_known_answers(counter, key, want):
    assert _core.philox4x32(counter, key) == want
    assert tuple(ref.philox4x32(np.array(counter), key).tolist()) == want


@pytest.mark.parametrize("rows, columns, row0", [(1, 1, 0), (7, 13, 0), (33, 130, 5),
                                                 (200, 512, 0), (3, 4097, 1000)])
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.875])
def test_c_masks_equal_the_references_exactly(rows, columns, row0, rate):
    for seed, step, layer in ((0, 0, 0), (12345, 7, 1), (2 ** 64 - 1, 2 ** 33 + 5, 3)):
        got = _core.dropout_masks(rows, columns, rate, seed, step, layer, row0)
        want = ref.dropout_factors(rate, seed, step, layer, rows, columns, row0,
                                   dtype=np.float32)
        assert got.dtype == np.float32 and got.tobytes() == want.tobytes()
        assert set(np.unique(got).tolist()) <= {0.0, float(np.float32(1 / (1 - rate)))}


def test_masks_change_with_every_part_of_the_key():
    base = _core.dropout_masks(64, 64, 0.5, 1, 2, 0)
    for kw in ({"seed": 2, "step": 2, "layer": 0}, {"seed": 1, "step": 3, "layer": 0},
               {"seed": 1, "step": 2, "layer": 1}, {"seed": 1 + 2 ** 32, "step": 2, "layer": 0}):
        other = _core.dropout_masks(64, 64, 0.5, kw["seed"], kw["step"], kw["layer"])
        assert 0.4 < np.mean((other > 0) != (base > 0)) < 0.6
    shifted = _core.dropout_masks(63, 64, 0.5, 1, 2, 0, row0=1)
    assert shifted.tobytes() == base[1:].tobytes()   # a row's mask is its batch row's


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5, 0.9])
def test_the_keep_rate_is_one_minus_the_rate(rate):
    n = 1000 * 1000
    kept = np.count_nonzero(_core.dropout_masks(1000, 1000, rate, 99, 3, 0))
    sigma = np.sqrt(n * rate * (1 - rate))
    assert abs(kept - n * (1 - rate)) < 5 * sigma


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_a_step_with_dropout_matches_the_float64_reference(activation):
    rng = np.random.default_rng(9)
    sizes = (30, 20, 10, 3)
    rates, seed, step = (0.3, 0.5), 2 ** 40 + 17, 11
    X = rng.standard_normal((25, 30)).astype(np.float32)
    labels = rng.integers(0, 3, 25).astype(np.int32)
    weights = _random_weights(rng, sizes)
    net = _core.Network(sizes, 25, activation=activation, dropout=rates)
    assert net.dropout == rates
    net.set_weights(weights)
    loss = net.train_step(X, labels, 0.1, "mse", dropout_seed=seed, dropout_step=step)
    W64 = [w.astype(np.float64) for w in weights[0::2]]
    b64 = [b.astype(np.float64) for b in weights[1::2]]
    factors = ref.step_dropout(rates, seed, step, sizes, 25)
    want_loss, dWs, dbs = ref.loss_and_grads(W64, b64, X.astype(np.float64), labels, "mse",
                                             activation, dropout=factors)
    assert abs(loss - want_loss) <= 1e-5 * abs(want_loss)
    got = net.get_weights()
    for l, (dW, db) in enumerate(zip(dWs, dbs)):
        assert np.allclose(got[2 * l], W64[l] - 0.1 * dW, rtol=0, atol=1e-5)
        assert np.allclose(got[2 * l + 1], b64[l] - 0.1 * db, rtol=0, atol=1e-5)
    # Without the masks, or with another step's, the reference steps elsewhere.
    for other in (None, ref.step_dropout(rates, seed, step + 1, sizes, 25)):
        _, dWo, _ = ref.loss_and_grads(W64, b64, X.astype(np.float64), labels, "mse",
                                       activation, dropout=other)
        assert not np.allclose(got[0], W64[0] - 0.1 * dWo[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_the_gradient_mode_with_dropout_matches_the_reference(activation):
    rng = np.random.default_rng(4)
    sizes = (12, 9, 7, 3)
    rates, seed, step = (0.25, 0.4), 5, 3
    X = rng.standard_normal((16, 12)).astype(np.float32)
    Y = rng.standard_normal((16, 3)).astype(np.float32)
    weights = _random_weights(rng, sizes)
    net = _core.Network(sizes, 16, activation=activation, dropout=rates)
    net.set_weights(weights)
    S, grads = net.gradient(X, Y, "squared_error", dropout_seed=seed, dropout_step=step)
    W64 = [w.astype(np.float64) for w in weights[0::2]]
    b64 = [b.astype(np.float64) for b in weights[1::2]]
    factors = ref.step_dropout(rates, seed, step, sizes, 16)
    want, dWs, dbs = ref.target_loss_and_grads(W64, b64, X.astype(np.float64),
                                               Y.astype(np.float64), "squared_error",
                                               activation=activation, dropout=factors)
    assert abs(S - want) <= 1e-5 * abs(want)
    for l in range(3):
        assert np.allclose(grads[2 * l], dWs[l], rtol=0, atol=1e-5)
        assert np.allclose(grads[2 * l + 1], dbs[l], rtol=0, atol=1e-5)


@pytest.mark.parametrize("activation", ["tanh", "gelu", "logistic", "leaky_relu"])
def test_the_references_gradient_with_a_fixed_mask_by_finite_differences(activation):
    """Away from ReLU's kink: the smooth activations (leaky ReLU's inputs avoid 0)."""
    rng = np.random.default_rng(2)
    sizes = (6, 8, 5, 3)
    X = rng.standard_normal((10, 6))
    labels = rng.integers(0, 3, 10)
    W = [rng.standard_normal((a, b)) / np.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:])]
    b = [0.1 * rng.standard_normal(n) for n in sizes[1:]]
    factors = ref.step_dropout((0.3, 0.5), 77, 1, sizes, 10)
    assert all((f == 0).any() and (f > 1).any() for f in factors)
    _, dWs, dbs = ref.loss_and_grads(W, b, X, labels, "cross_entropy", activation, factors)
    h = 1e-6
    for l in range(3):
        for params, grads in ((W, dWs), (b, dbs)):
            flat = params[l].reshape(-1)
            for i in range(0, flat.size, max(1, flat.size // 7)):
                old = flat[i]
                flat[i] = old + h
                up = ref.loss_and_grads(W, b, X, labels, "cross_entropy", activation, factors)[0]
                flat[i] = old - h
                down = ref.loss_and_grads(W, b, X, labels, "cross_entropy", activation,
                                          factors)[0]
                flat[i] = old
                assert abs((up - down) / (2 * h) - grads[l].reshape(-1)[i]) < 1e-6


def _train_digest(sizes, activation, rates, isa, threads, rows=None):
    rng = np.random.default_rng(5)
    M = 197
    X = rng.standard_normal((M + 20, sizes[0])).astype(np.float32)
    labels = rng.integers(0, sizes[-1], M + 20).astype(np.int32)
    _core.set_isa(isa)
    net = _core.Network(sizes, M, momentum=True, activation=activation, dropout=rates)
    net.set_weights(_random_weights(rng, sizes))
    losses = []
    for step in range(3):
        losses.append(net.train_step(X[:M], labels[:M], 0.05, "cross_entropy", alpha=1e-4,
                                     momentum=0.9, nesterov=True, n_threads=threads,
                                     dropout_seed=123, dropout_step=step))
        order = np.arange(M + 20, dtype=np.int64)[::-1][:M].copy()
        losses.append(net.train_step_rows(X, labels, order, 0.05, "cross_entropy",
                                          n_threads=threads, dropout_seed=123,
                                          dropout_step=10 + step))
        losses.append(net.train_step(X[:1], labels[:1], 0.05, "cross_entropy",
                                     n_threads=threads, dropout_seed=123,
                                     dropout_step=20 + step))
    h = hashlib.sha256(np.array(losses).tobytes())
    for a in net.get_weights() + [net.forward(X, n_threads=threads)]:
        h.update(a.tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_dropout_steps_give_the_same_bits_on_every_isa_and_thread_count(activation):
    # Large enough that a step takes several threads (and the output layer splits its rows).
    sizes = (300, 256, 130, 10)
    digests = {_train_digest(sizes, activation, (0.2, 0.5), isa, threads)
               for isa in AVAILABLE for threads in (1, 2, 3)}
    assert len(digests) == 1


def test_predictions_ignore_dropout():
    rng = np.random.default_rng(1)
    sizes = (20, 16, 8, 4)
    weights = _random_weights(rng, sizes)
    X = rng.standard_normal((300, 20)).astype(np.float32)
    plain = _core.Network(sizes, 8)
    dropped = _core.Network(sizes, 8, dropout=0.5)
    for net in (plain, dropped):
        net.set_weights(weights)
    assert plain.forward(X).tobytes() == dropped.forward(X).tobytes()
    assert plain.forward(X[:1]).tobytes() == dropped.forward(X[:1]).tobytes()
    y = rng.integers(0, 4, 300)
    model = MLP(hidden_layer_sizes=(16, 8), epochs=2, dropout=0.5, random_state=0).fit(X, y)
    assert model.predict_proba(X).tobytes() == model.predict_proba(X).tobytes()
    want = ref.forward([w.astype(np.float64) for w in model.coefs_],
                       [b.astype(np.float64) for b in model.intercepts_], X.astype(np.float64))
    assert np.allclose(model.decision_function(X), want[-1], rtol=0, atol=1e-4)


def _data(n=300, features=24, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, features)).astype(np.float32)
    y = rng.integers(0, classes, n)
    return X, y


def _small(**kw):
    params = dict(hidden_layer_sizes=(33, 17), epochs=2, batch_size=64, random_state=3,
                  learning_rate=0.01)
    params.update(kw)
    return MLP(**params)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_dropout_zero_gives_the_bits_of_no_dropout(activation):
    X, y = _data()
    runs = [_small(activation=activation, shuffle=True, **kw).fit(X, y).get_weights()
            for kw in ({}, {"dropout": 0.0}, {"dropout": (0.0, 0.0)})]
    for other in runs[1:]:
        assert b"".join(a.tobytes() for a in other) == b"".join(a.tobytes() for a in runs[0])
    sizes = (24, 33, 17, 4)
    assert _core.Network(sizes, 8, dropout=0.0).dropout == (0.0, 0.0)
    dropped = _small(activation=activation, shuffle=True, dropout=0.3).fit(X, y).get_weights()
    assert not np.array_equal(dropped[0], runs[0][0])


def test_mlp_dropout_learns_and_is_reproducible():
    X, y = _data(600, classes=3, seed=4)
    y = (X[:, 0] + X[:, 1] > X[:, 2] + 0.5).astype(int) + (X[:, 3] > 0.7)
    a = _small(epochs=15, dropout=(0.2, 0.1), shuffle=True).fit(X, y)
    b = _small(epochs=15, dropout=(0.2, 0.1), shuffle=True).fit(X, y)
    assert all(u.tobytes() == v.tobytes() for u, v in zip(a.get_weights(), b.get_weights()))
    assert a.loss_curve_[-1] < a.loss_curve_[0]
    assert a.get_state()["dropout_step"] == 15 * 10
    c = _small(epochs=15, dropout=(0.2, 0.1), shuffle=True, random_state=4).fit(X, y)
    assert not np.array_equal(c.get_weights()[0], a.get_weights()[0])


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, float("nan"), "0.2", True, [0.1], [0.1, 0.2, 0.3],
                                 [0.1, 1.0], [0.1, None]])
def test_bad_dropout_values_raise_value_error(bad):
    X, y = _data()
    with pytest.raises(ValueError):
        _small(dropout=bad).fit(X, y)
    with pytest.raises(ValueError):
        _core.Network((24, 33, 17, 4), 8, dropout=bad)


def test_bad_dropout_keys_raise_value_error():
    net = _core.Network((4, 3, 2), 2, dropout=0.5)
    X, labels = np.zeros((2, 4), np.float32), np.zeros(2, np.int32)
    for kw in ({"dropout_seed": -1}, {"dropout_seed": 2 ** 64}, {"dropout_step": -1},
               {"dropout_seed": 1.5}, {"dropout_step": True}):
        with pytest.raises(ValueError):
            net.train_step(X, labels, 0.1, **kw)


def test_save_load_and_pickle_keep_the_rates(tmp_path):
    X, y = _data()
    model = _small(dropout=(0.25, 0.5)).fit(X, y)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastmlp.load(path)
    assert tuple(loaded.dropout) == (0.25, 0.5)
    assert loaded._network.dropout == (0.25, 0.5)
    np.testing.assert_array_equal(loaded.decision_function(X), model.decision_function(X))
    copy = pickle.loads(pickle.dumps(model))
    assert copy._network.dropout == (0.25, 0.5)
    for m in (model, copy):   # a pickle keeps the masks' seed and step: both continue alike
        m.set_params(warm_start=True, epochs=1)
        m.fit(X, y)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(model.get_weights(),
                                                            copy.get_weights()))
    # A file without dropout is as before; a file with a bad rate is refused.
    _small().fit(X, y).save(tmp_path / "plain.npz")
    assert fastmlp.load(tmp_path / "plain.npz").dropout == 0.0
    state = model.get_state()
    state["params"]["dropout"] = (0.25, 1.0)
    with pytest.raises(ValueError):
        MLP.from_state(state)
    state["params"]["dropout"] = (0.25, 0.5)
    state["dropout_seed"] = -3
    with pytest.raises(ValueError):
        MLP.from_state(state)


def test_state_round_trip_continues_bit_identical():
    X, y = _data()
    straight = _small(epochs=4, dropout=0.3, shuffle=True).fit(X, y)
    half = _small(epochs=2, dropout=0.3, shuffle=True).fit(X, y)
    resumed = MLP.from_state(half.get_state())
    resumed.set_params(warm_start=True, epochs=2)
    resumed.fit(X, y)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_checkpoint_resumes_bit_identical(tmp_path, activation):
    X, y = _data()
    kw = dict(activation=activation, dropout=(0.2, 0.4), shuffle=True)
    straight = _small(epochs=4, **kw).fit(X, y)
    checkpoint.fit(_small(epochs=2, **kw), X, y, tmp_path)
    saved = checkpoint.load_checkpoint(tmp_path / checkpoint.CHECKPOINT_NAME)
    assert saved.get_state()["dropout_step"] == 2 * 5
    resumed = checkpoint.fit(_small(epochs=4, **kw), X, y, tmp_path, resume=True)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        assert a.tobytes() == b.tobytes()
    with pytest.raises(ValueError):   # another rate's run does not resume this one
        checkpoint.fit(_small(epochs=4, activation=activation, dropout=0.1, shuffle=True), X,
                       y, tmp_path, resume=True)


def test_warm_start_with_another_rate_keeps_the_weights():
    X, y = _data()
    model = _small(epochs=1).fit(X, y)
    before = model.get_weights()
    model.set_params(warm_start=True, dropout=0.5)
    model.fit(X, y)
    assert model._network.dropout == (0.5, 0.5)
    assert model.get_state()["dropout_seed"] is not None
    assert not np.array_equal(model.get_weights()[0], before[0])
