"""The activations' kernels (src_c/ops/activation.h) against float64 NumPy, on every instruction
set: the forward function fused into the forward product's store, its derivative fused into
the input gradient's, and the same bits on every path and thread count."""
import hashlib

import numpy as np
import pytest

from fastmlp import _core
from fastmlp import reference as ref

EPS32 = float(np.finfo(np.float32).eps)
TANH_MAX_ULP = 2.0   # the bound src_c/ops/activation.h states for v_tanh
AVAILABLE = _core.build_info()["isa_available"]

pytestmark = pytest.mark.usefixtures("restore_isa_and_threads")


def _tanh_through_the_kernel(x):
    """tanh(x) computed by the forward product's store: a 1-wide layer of weight 1, bias 0."""
    X = np.ascontiguousarray(x, np.float32).reshape(-1, 1)
    out = np.empty_like(X)
    _core.dense_forward(X, np.ones((1, 1), np.float32), np.zeros(1, np.float32), out, "tanh")
    return out[:, 0]


def _tanh_inputs():
    magnitudes = np.concatenate([np.linspace(0, 12, 400_001), np.geomspace(1e-38, 12, 100_001),
                                 [0.625, np.nextafter(np.float32(0.625), 0), 9.0, 20.0, 1e30]])
    return np.concatenate([magnitudes, -magnitudes]).astype(np.float32)


@pytest.mark.parametrize("isa", _core.ISAS)
def test_tanh_is_within_its_stated_ulp_of_float64(isa, use_isa):
    use_isa(isa)
    x = _tanh_inputs()
    got = _tanh_through_the_kernel(x).astype(np.float64)
    want = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(want.astype(np.float32))).astype(np.float64)
    assert np.max(np.abs(got - want) / ulp) <= TANH_MAX_ULP
    assert np.all(np.abs(got) <= 1.0)
    assert np.array_equal(np.sign(got[x != 0]), np.sign(x[x != 0]))   # odd, no sign slips


def test_tanh_of_nan_and_infinity():
    got = _tanh_through_the_kernel(np.array([np.nan, np.inf, -np.inf], np.float32))
    assert np.isnan(got[0])
    assert got[1] == 1.0 and got[2] == -1.0


def test_tanh_gives_the_same_bits_on_every_isa():
    x = _tanh_inputs()
    results = []
    for isa in AVAILABLE:
        _core.set_isa(isa)
        results.append(_tanh_through_the_kernel(x).view(np.uint32))
    for r in results[1:]:
        assert np.array_equal(r, results[0])


# Shapes off every tile (MR 4/6/12/24, NR 16/32/64), one row, and the MNIST layers.
SHAPES = [(1, 784, 512), (1, 13, 10), (7, 17, 33), (13, 65, 1), (37, 301, 70), (200, 784, 512),
          (200, 256, 10)]


@pytest.mark.parametrize("isa", _core.ISAS)
@pytest.mark.parametrize("M,K,N", SHAPES)
def test_tanh_layer_forward_and_input_gradient_against_float64(isa, M, K, N, use_isa):
    use_isa(isa)
    rng = np.random.default_rng(M * 1000 + K + N)
    X = rng.standard_normal((M, K)).astype(np.float32)
    W = (rng.standard_normal((K, N)) / np.sqrt(K)).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    x64, w64 = X.astype(np.float64), W.astype(np.float64)

    out = np.empty((M, N), np.float32)
    _core.dense_forward(X, W, b, out, "tanh")
    z = x64 @ w64 + b
    # tanh's slope is at most 1: the sum's error passes through, plus tanh's own few ulp.
    bound = 2.0 * (K + 1) * EPS32 * (np.abs(x64) @ np.abs(w64) + np.abs(b)) + 4 * EPS32
    assert np.all(np.abs(out - np.tanh(z)) <= bound)
    assert np.all(np.abs(out - ref.dense_forward(x64, w64, b.astype(np.float64),
                                                 activation="tanh")) <= bound)

    # The input gradient through a tanh layer whose output is A: (dZ @ W.T) * (1 - A^2).
    A = np.tanh(rng.standard_normal((M, K))).astype(np.float32)
    dZ = rng.standard_normal((M, N)).astype(np.float32)
    dX = np.empty((M, K), np.float32)
    _core.dense_backward_input(dZ, np.ascontiguousarray(W), A, dX, "tanh")
    g = dZ.astype(np.float64) @ w64.T
    slope = 1.0 - A.astype(np.float64) ** 2
    gbound = (2.0 * N * EPS32 * (np.abs(dZ.astype(np.float64)) @ np.abs(w64.T)) * slope
              + 3 * EPS32 * np.abs(g * slope) + 1e-30)
    assert np.all(np.abs(dX - g * slope) <= gbound)


def _random_weights(rng, sizes):
    """[W1, b1, ...] for a network of these widths, scaled so its tanh units do not saturate."""
    weights = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        weights += [(rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32),
                    (0.1 * rng.standard_normal(n_out)).astype(np.float32)]
    return weights


def test_tanh_network_step_matches_the_float64_reference():
    rng = np.random.default_rng(9)
    sizes = (30, 20, 10, 3)
    X = rng.standard_normal((25, 30)).astype(np.float32)
    labels = rng.integers(0, 3, 25).astype(np.int32)
    weights = _random_weights(rng, sizes)
    net = _core.Network(sizes, 25, activation="tanh")
    net.set_weights(weights)
    loss = net.train_step(X, labels, 0.1, "mse")
    W64 = [w.astype(np.float64) for w in weights[0::2]]
    b64 = [b.astype(np.float64) for b in weights[1::2]]
    want_loss, dWs, dbs = ref.loss_and_grads(W64, b64, X.astype(np.float64), labels, "mse",
                                             activation="tanh")
    assert abs(loss - want_loss) <= 1e-5 * abs(want_loss)
    got = net.get_weights()
    for l, (dW, db) in enumerate(zip(dWs, dbs)):
        assert np.allclose(got[2 * l], W64[l] - 0.1 * dW, rtol=0, atol=1e-5)
        assert np.allclose(got[2 * l + 1], b64[l] - 0.1 * db, rtol=0, atol=1e-5)


def test_unknown_activation_is_refused_by_the_binding():
    with pytest.raises(ValueError, match="activation must be one of"):
        _core.Network((4, 3, 2), 8, activation="swish")
    out = np.empty((2, 3), np.float32)
    with pytest.raises(ValueError, match="activation must be one of"):
        _core.dense_forward(np.ones((2, 4), np.float32), np.ones((4, 3), np.float32),
                            np.zeros(3, np.float32), out, "swish")


# ---------------------------------------------------------------------------------------------
# The other activations, each against its float64 function and derivative (fastmlp.reference)
# ---------------------------------------------------------------------------------------------

# name: (its own error in float32 ulp of the result (0: exact) where the result is normal, and
# in steps of 2^-149 where it is subnormal; its largest slope). The bounds
# src_c/ops/activation.h states.
OTHERS = {
    "identity": (0.0, 0.0, 1.0),
    "logistic": (2.0, 2.0, 0.25),
    "leaky_relu": (0.0, 0.0, 1.0),
    "gelu": (2.0, 2.0, 1.13),
}
# GELU's slope, Phi(z) + z phi(z), within this many eps of float64 absolutely (its zero near
# z = -0.75 rules out a bound in ulp): the bound src_c/ops/activation.h states for v_gelu_slope.
GELU_SLOPE_EPS = 1.0
SUBNORMAL_STEP = 2.0 ** -149
TINY32 = float(np.finfo(np.float32).tiny)


def _through_the_kernel(x, name):
    """f(x) computed by the forward product's epilogue: a 1-wide layer of weight 1, bias 0."""
    X = np.ascontiguousarray(x, np.float32).reshape(-1, 1)
    out = np.empty_like(X)
    _core.dense_forward(X, np.ones((1, 1), np.float32), np.zeros(1, np.float32), out, name)
    return out[:, 0]


def _inputs():
    magnitudes = np.concatenate([np.linspace(0, 120, 400_001), np.geomspace(1e-45, 120, 100_001),
                                 [1e30, 3e38, np.finfo(np.float32).tiny]])
    return np.concatenate([magnitudes, -magnitudes]).astype(np.float32)


def _ulp_error(got, want):
    """|got - want| in ulp of float32 at want (subnormal ulp below float32's normal range)."""
    ulp = np.spacing(np.abs(want.astype(np.float32))).astype(np.float64)
    return np.abs(got.astype(np.float64) - want) / ulp


@pytest.mark.parametrize("isa", _core.ISAS)
@pytest.mark.parametrize("name", OTHERS)
def test_activation_is_within_its_stated_ulp_of_float64(isa, name, use_isa):
    use_isa(isa)
    max_ulp, max_steps, _ = OTHERS[name]
    x = _inputs()
    got = _through_the_kernel(x, name)
    want = ref.ACTIVATIONS[name](x.astype(np.float64))
    assert np.all(np.isfinite(got))
    normal = np.abs(want) >= TINY32
    # (leaky ReLU's slope is 0.01 rounded to float32: within 1 ulp of float64's 0.01 z)
    assert np.max(_ulp_error(got[normal], want[normal])) <= max(max_ulp, 1.0)
    assert np.max(np.abs(got[~normal] - want[~normal])) <= max(max_steps, 1.0) * SUBNORMAL_STEP
    if max_ulp == 0.0:   # one rounding at most: the reference computed in float32, exactly
        assert np.array_equal(got, ref.ACTIVATIONS[name](x))   # (-0 is +0 after the product)


def _gelu_slope_through_the_kernel(z):
    """GELU's slope at z computed by the input gradient's epilogue: a 1-wide layer of weight 1
    and an upstream gradient of 1, so that the gradient is the slope itself."""
    Z = np.ascontiguousarray(z, np.float32).reshape(-1, 1)
    dX = np.empty_like(Z)
    _core.dense_backward_input(np.ones_like(Z), np.ones((1, 1), np.float32), Z, dX, "gelu")
    return dX[:, 0]


@pytest.mark.parametrize("isa", _core.ISAS)
def test_gelu_slope_is_within_its_stated_eps_of_float64(isa, use_isa):
    use_isa(isa)
    z = _inputs()
    got = _gelu_slope_through_the_kernel(z).astype(np.float64)
    want = ref.gelu_derivative(z.astype(np.float64))
    assert np.max(np.abs(got - want)) <= GELU_SLOPE_EPS * EPS32
    limits = _gelu_slope_through_the_kernel(np.array([np.nan, np.inf, -np.inf], np.float32))
    assert np.isnan(limits[0]) and limits[1] == 1.0 and limits[2] == 0.0


LIMITS = {"identity": (np.inf, -np.inf), "logistic": (1.0, 0.0),
          "leaky_relu": (np.inf, -np.inf), "gelu": (np.inf, 0.0)}


@pytest.mark.parametrize("name", OTHERS)
def test_activation_of_nan_is_nan_and_of_infinity_its_limit(name):
    got = _through_the_kernel(np.array([np.nan, np.inf, -np.inf], np.float32), name)
    assert np.isnan(got[0])
    np.testing.assert_array_equal(got[1:], LIMITS[name])


@pytest.mark.parametrize("name", OTHERS)
def test_activation_gives_the_same_bits_on_every_isa(name):
    x = _inputs()
    results = []
    for isa in AVAILABLE:
        _core.set_isa(isa)
        results.append(_through_the_kernel(x, name).view(np.uint32))
    for r in results[1:]:
        assert np.array_equal(r, results[0])


@pytest.mark.parametrize("isa", _core.ISAS)
@pytest.mark.parametrize("M,K,N", SHAPES)
@pytest.mark.parametrize("name", OTHERS)
def test_layer_forward_and_input_gradient_against_float64(isa, M, K, N, name, use_isa):
    use_isa(isa)
    own_ulp, _, slope_max = OTHERS[name]
    f, derivative = ref.ACTIVATIONS[name], ref.DERIVATIVES[name]
    rng = np.random.default_rng(M * 1000 + K + N)
    X = rng.standard_normal((M, K)).astype(np.float32)
    W = (rng.standard_normal((K, N)) / np.sqrt(K)).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    x64, w64 = X.astype(np.float64), W.astype(np.float64)

    out = np.empty((M, N), np.float32)
    _core.dense_forward(X, W, b, out, name)
    want = f(x64 @ w64 + b)
    # The sum's error passes through f's slope; f adds its own few ulp.
    bound = (slope_max * 2.0 * (K + 1) * EPS32 * (np.abs(x64) @ np.abs(w64) + np.abs(b))
             + (own_ulp + 1) * EPS32 * np.abs(want) + 1e-37)
    assert np.all(np.abs(out - want) <= bound)
    assert np.all(np.abs(out - ref.dense_forward(x64, w64, b.astype(np.float64),
                                                 activation=name)) <= bound)

    # The input gradient through a layer whose output is A: (dZ @ W.T) * f'(from A), or from
    # its pre-activation Z for an activation that keeps it.
    Z = 2 * rng.standard_normal((M, K)).astype(np.float32)
    A = Z if name in ref.FROM_PREACTIVATION else f(Z).astype(np.float32)
    dZ = rng.standard_normal((M, N)).astype(np.float32)
    dX = np.empty((M, K), np.float32)
    _core.dense_backward_input(dZ, np.ascontiguousarray(W), A, dX, name)
    g = dZ.astype(np.float64) @ w64.T
    slope = derivative(A.astype(np.float64))
    # GELU's slope is a sum (Phi(z) + z phi(z)), within GELU_SLOPE_EPS of float64 absolutely.
    own = GELU_SLOPE_EPS * EPS32 * np.abs(g) if name in ref.FROM_PREACTIVATION else 0.0
    gbound = (2.0 * N * EPS32 * (np.abs(dZ.astype(np.float64)) @ np.abs(w64.T)) * np.abs(slope)
              + 3 * EPS32 * np.abs(g * slope) + own + 1e-30)
    assert np.all(np.abs(dX - g * slope) <= gbound)


@pytest.mark.parametrize("name", ["tanh", *OTHERS])
def test_network_trains_to_the_same_bits_on_every_isa_and_thread_count(name):
    rng = np.random.default_rng(5)
    sizes = (50, 40, 17, 4)
    X = rng.standard_normal((64, 50)).astype(np.float32)
    labels = rng.integers(0, 4, 64).astype(np.int32)
    weights = _random_weights(rng, sizes)
    digests = set()
    for isa in AVAILABLE:
        for threads in (1, 2, 3):
            _core.set_isa(isa)
            net = _core.Network(sizes, 64, momentum=True, activation=name)
            net.set_weights(weights)
            losses = [net.train_step(X, labels, 0.05, "cross_entropy", alpha=1e-4, momentum=0.9,
                                     nesterov=True, n_threads=threads) for _ in range(5)]
            h = hashlib.sha256(np.array(losses).tobytes())
            for a in net.get_weights() + [net.forward(X, n_threads=threads),
                                          net.forward(X[:1], n_threads=threads)]:
                h.update(a.tobytes())
            digests.add(h.hexdigest())
    assert len(digests) == 1


@pytest.mark.parametrize("name", OTHERS)
def test_network_step_matches_the_float64_reference(name):
    rng = np.random.default_rng(9)
    sizes = (30, 20, 10, 3)
    X = rng.standard_normal((25, 30)).astype(np.float32)
    labels = rng.integers(0, 3, 25).astype(np.int32)
    weights = _random_weights(rng, sizes)
    net = _core.Network(sizes, 25, activation=name)
    net.set_weights(weights)
    loss = net.train_step(X, labels, 0.1, "mse")
    W64 = [w.astype(np.float64) for w in weights[0::2]]
    b64 = [b.astype(np.float64) for b in weights[1::2]]
    want_loss, dWs, dbs = ref.loss_and_grads(W64, b64, X.astype(np.float64), labels, "mse",
                                             activation=name)
    assert abs(loss - want_loss) <= 1e-5 * abs(want_loss)
    got = net.get_weights()
    for l, (dW, db) in enumerate(zip(dWs, dbs)):
        assert np.allclose(got[2 * l], W64[l] - 0.1 * dW, rtol=0, atol=1e-5)
        assert np.allclose(got[2 * l + 1], b64[l] - 0.1 * db, rtol=0, atol=1e-5)
    # Another activation on the same weights steps elsewhere: the network does apply this one.
    other = "tanh" if name != "tanh" else "relu"
    _, dWo, _ = ref.loss_and_grads(W64, b64, X.astype(np.float64), labels, "mse",
                                   activation=other)
    assert not np.allclose(got[0], W64[0] - 0.1 * dWo[0], rtol=0, atol=1e-5)
