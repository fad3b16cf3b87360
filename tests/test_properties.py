"""Property-based tests (Hypothesis): every kernel of ``fastmlp._core`` against the float64 NumPy
reference over random shapes, scales and values, and the model loader over random and truncated
bytes (only ``ValueError`` may come out). The IDX parser's properties are in test_datasets.py.

Bounds come from the arithmetic: a K-term float32 dot product has an error of at most about
(K + 2) * eps32 * sum_k |a_k b_k| (the ``abs_*`` helpers compute that sum in float64); ReLU masks
and the composition of kernels are exact. Hypothesis runs derandomized on CI (conftest.py).
"""
import io
import os
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastmlp
from fastmlp import _core
from fastmlp import reference as ref

EPS32 = float(np.finfo(np.float32).eps)
TINY = 1e-37            # absolute slack for results that underflow into subnormals
dims = st.integers(1, 40)
scales = st.sampled_from([1e-3, 1.0, 1e3])
seeds = st.integers(0, 2 ** 32 - 1)


def array(seed, shape, scale=1.0, kind="uniform"):
    rng = np.random.default_rng(seed)
    if kind == "int":              # small integers: every product and sum is exact in float32
        return rng.integers(-4, 5, size=shape).astype(np.float32)
    if kind == "sparse":           # many exact zeros (ReLU outputs, masks)
        a = rng.uniform(-scale, scale, size=shape)
        a[rng.random(shape) < 0.5] = 0
        return a.astype(np.float32)
    return rng.uniform(-scale, scale, size=shape).astype(np.float32)


kinds = st.sampled_from(["uniform", "int", "sparse"])


def f64(a):
    return np.asarray(a, dtype=np.float64)


def assert_within(actual, expected, bound, what=""):
    err = np.abs(f64(actual) - expected)
    assert np.all(np.isfinite(actual)), what
    bad = err > bound
    if bad.any():
        i = np.unravel_index(np.argmax(err - bound), err.shape)
        raise AssertionError(f"{what}: error {err[i]:.3g} > bound {bound[i]:.3g} at {i}")


# ---------------------------------------------------------------------------------------------
# Single kernels
# ---------------------------------------------------------------------------------------------

@given(m=dims, k=st.integers(0, 40), n=dims, trans_a=st.booleans(), trans_b=st.booleans(),
       seed=seeds, scale=scales, kind=kinds)
def test_gemm_matches_float64(m, k, n, trans_a, trans_b, seed, scale, kind):
    A, B = array(seed, (m, k), scale, kind), array(seed + 1, (k, n), scale, kind)
    C = np.full((m, n), np.nan, np.float32)
    _core.gemm(np.ascontiguousarray(A.T) if trans_a else A,
               np.ascontiguousarray(B.T) if trans_b else B, C, trans_a=trans_a, trans_b=trans_b)
    expected = f64(A) @ f64(B)
    bound = (k + 2) * EPS32 * (np.abs(f64(A)) @ np.abs(f64(B))) + TINY
    assert_within(C, expected, bound, "gemm")
    if kind == "int":
        assert np.array_equal(C, expected.astype(np.float32))   # exact arithmetic


@given(m=st.integers(1, 70), k=dims, n=st.integers(1, 70), seed=seeds)
def test_gemm_is_bit_identical_on_one_and_two_threads(m, k, n, seed):
    A, B = array(seed, (m, k)), array(seed + 1, (k, n))
    results = []
    saved = _core.get_num_threads()
    try:
        for threads in (1, 2):
            _core.set_num_threads(threads)
            C = np.empty((m, n), np.float32)
            _core.gemm(A, B, C)
            results.append(C)
    finally:
        _core.set_num_threads(saved)
    assert np.array_equal(results[0], results[1])


@given(m=dims, k=dims, n=dims, relu=st.booleans(), seed=seeds, scale=scales, kind=kinds)
def test_dense_forward_matches_reference(m, k, n, relu, seed, scale, kind):
    X, W, b = array(seed, (m, k), scale, kind), array(seed + 1, (k, n), 1.0, kind), array(seed + 2, n, scale, kind)
    out = np.full((m, n), np.nan, np.float32)
    _core.dense_forward(X, W, b, out, relu)
    expected = ref.dense_forward(f64(X), f64(W), f64(b), relu)
    bound = (k + 3) * EPS32 * (np.abs(f64(X)) @ np.abs(f64(W)) + np.abs(f64(b))) + TINY
    assert_within(out, expected, bound, "dense_forward")
    if relu:
        assert np.all(out >= 0)


@given(m=dims, k=dims, n=dims, masked=st.booleans(), seed=seeds, scale=scales, kind=kinds)
def test_dense_backward_input_matches_reference(m, k, n, masked, seed, scale, kind):
    dZ, W = array(seed, (m, n), scale, kind), array(seed + 1, (k, n), 1.0, kind)
    A_prev = np.maximum(array(seed + 2, (m, k), 1.0, "sparse"), 0) if masked else None
    dA = np.full((m, k), np.nan, np.float32)
    _core.dense_backward_input(dZ, W, A_prev, dA)
    expected = f64(dZ) @ f64(W).T
    if masked:
        expected = ref.relu_backward(expected, A_prev)
        assert np.all(dA[A_prev <= 0] == 0)                 # the mask is exact
    bound = (n + 2) * EPS32 * (np.abs(f64(dZ)) @ np.abs(f64(W)).T) + TINY
    assert_within(dA, expected, bound, "dense_backward_input")


@given(m=dims, k=dims, n=dims, seed=seeds, lr=st.sampled_from([1e-3, 0.1, 1.0]),
       alpha=st.sampled_from([0.0, 1e-4, 0.1]), momentum=st.sampled_from([0.0, 0.5, 0.9]),
       nesterov=st.booleans(), scale=scales)
def test_dense_update_matches_reference(m, k, n, seed, lr, alpha, momentum, nesterov, scale):
    A, dZ = array(seed, (m, k), scale), array(seed + 1, (m, n), 1.0)
    W, b = array(seed + 2, (k, n)), array(seed + 3, n)
    use_velocity = momentum > 0
    vW, vb = (array(seed + 4, (k, n), 0.1), array(seed + 5, n, 0.1)) if use_velocity else (None, None)
    W64, b64 = f64(W), f64(b)
    gW = ref.l2_gradient(f64(A).T @ f64(dZ), W64, alpha)
    gb = f64(dZ).sum(axis=0)
    abs_gW = np.abs(f64(A)).T @ np.abs(f64(dZ)) + alpha * np.abs(W64)
    abs_gb = np.abs(f64(dZ)).sum(axis=0)
    if use_velocity:
        W_exp, vW64 = ref.parameter_update(W64, gW, lr, f64(vW), momentum=momentum,
                                           nesterov=nesterov)
        b_exp, vb64 = ref.parameter_update(b64, gb, lr, f64(vb), momentum=momentum,
                                           nesterov=nesterov)
        scale_W = np.abs(W64) + 2 * (np.abs(f64(vW)) + lr * abs_gW)
        scale_b = np.abs(b64) + 2 * (np.abs(f64(vb)) + lr * abs_gb)
    else:
        W_exp, b_exp = ref.sgd_update(W64, gW, lr), ref.sgd_update(b64, gb, lr)
        scale_W, scale_b = np.abs(W64) + lr * abs_gW, np.abs(b64) + lr * abs_gb
    _core.dense_update(W, b, A, dZ, lr, alpha=alpha, momentum=momentum, nesterov=nesterov,
                       vW=vW, vb=vb)
    assert_within(W, W_exp, (m + 6) * EPS32 * scale_W + TINY, "W")
    assert_within(b, b_exp, (m + 6) * EPS32 * scale_b + TINY, "b")
    if use_velocity:
        assert_within(vW, vW64, (m + 6) * EPS32 * (np.abs(f64(vW)) + lr * abs_gW) + TINY, "vW")


@given(m=dims, n=st.integers(1, 12), seed=seeds, scale=st.sampled_from([1e-2, 1.0, 30.0]),
       loss=st.sampled_from(["mse", "cross_entropy"]))
def test_loss_grad_matches_reference(m, n, seed, scale, loss):
    out = array(seed, (m, n), scale)
    labels = np.random.default_rng(seed).integers(0, n, m).astype(np.int32)
    dout = np.full((m, n), np.nan, np.float32)
    value = _core.loss_grad(out, labels, dout, loss)
    loss_fn, grad_fn = ref.LOSSES[loss] if hasattr(ref, "LOSSES") else ref._loss_functions(loss)
    expected_value = loss_fn(f64(out), labels)
    expected_grad = grad_fn(f64(out), labels)
    if loss == "mse":
        terms = (np.abs(f64(out)) + 1) ** 2
        value_bound = 4 * (m * n + 2) * EPS32 * terms.sum() / m
        grad_bound = 4 * EPS32 * (np.abs(f64(out)) + 1) / m
    else:
        value_bound = 8 * (n + 4) * EPS32 * (np.abs(f64(out)).max(axis=1) + np.log(n) + 1).mean()
        grad_bound = np.full((m, n), 8 * (n + 4) * EPS32 * (1 + np.abs(f64(out)).max()) / m)
    assert abs(value - expected_value) <= value_bound + TINY, (value, expected_value)
    assert_within(dout, expected_grad, grad_bound + TINY, "gradient")


# ---------------------------------------------------------------------------------------------
# The whole network
# ---------------------------------------------------------------------------------------------

layer_sizes = st.lists(st.integers(1, 24), min_size=2, max_size=4)


def network(sizes, seed, momentum=False, max_batch=64):
    net = _core.Network(sizes, max_batch, momentum=momentum)
    rng = np.random.default_rng(seed)
    weights = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        weights += [rng.uniform(-1, 1, (a, b)).astype(np.float32),
                    rng.uniform(-0.5, 0.5, b).astype(np.float32)]
    net.set_weights(weights)
    return net, weights


def abs_forward(weights, X):
    """Sum of |terms| of every output: the scale of the float32 error of the forward pass."""
    a = np.abs(f64(X))
    for l in range(0, len(weights), 2):
        a = a @ np.abs(f64(weights[l])) + np.abs(f64(weights[l + 1]))
    return a


@given(sizes=layer_sizes, m=st.integers(1, 50), seed=seeds)
def test_network_forward_matches_reference_and_composes_dense_forward(sizes, m, seed):
    net, weights = network(sizes, seed)
    X = array(seed + 7, (m, sizes[0]))
    out = net.forward(X)
    Ws, bs = [f64(w) for w in weights[0::2]], [f64(b) for b in weights[1::2]]
    expected = ref.forward(Ws, bs, f64(X))[-1]
    bound = len(Ws) * (max(sizes) + 3) * EPS32 * abs_forward(weights, X) + TINY
    assert_within(out, expected, bound, "forward")
    # Exactly the composition of the single-layer kernel, and independent of the batch.
    a = X
    for l in range(len(Ws)):
        nxt = np.empty((m, sizes[l + 1]), np.float32)
        _core.dense_forward(a, weights[2 * l], weights[2 * l + 1], nxt, l < len(Ws) - 1)
        a = nxt
    assert np.array_equal(out, a)
    assert np.array_equal(net.forward(X[m // 2:m // 2 + 1]), out[m // 2:m // 2 + 1])


@given(sizes=layer_sizes, m=st.integers(1, 64), seed=seeds,
       loss=st.sampled_from(["mse", "cross_entropy"]), lr=st.sampled_from([1e-3, 0.05]))
def test_network_train_step_matches_reference(sizes, m, seed, loss, lr):
    net, weights = network(sizes, seed)
    X = array(seed + 7, (m, sizes[0]))
    labels = np.random.default_rng(seed).integers(0, sizes[-1], m).astype(np.int32)
    Ws, bs = [f64(w) for w in weights[0::2]], [f64(b) for b in weights[1::2]]
    new_W, new_b, expected_loss = ref.train_step(Ws, bs, f64(X), labels, lr, loss)
    value = net.train_step(X, labels, lr, loss)
    scale = abs_forward(weights, X).max()
    depth = len(Ws) * (max(sizes) + m + 4)
    assert abs(value - expected_loss) <= 16 * depth * EPS32 * (1 + scale) ** 2 + TINY
    got = net.get_weights()
    for l, (W, b) in enumerate(zip(new_W, new_b)):
        tol_W = 16 * depth * EPS32 * (np.abs(W) + lr * (1 + scale) ** 2) + TINY
        tol_b = 16 * depth * EPS32 * (np.abs(b) + lr * (1 + scale) ** 2) + TINY
        assert_within(got[2 * l], W, tol_W, f"W{l + 1}")
        assert_within(got[2 * l + 1], b, tol_b, f"b{l + 1}")


@given(sizes=layer_sizes, m=st.integers(1, 32), seed=seeds)
def test_network_train_step_does_not_touch_weights_on_a_non_finite_loss(sizes, m, seed):
    net, weights = network(sizes, seed)
    X = array(seed, (m, sizes[0]), 1e30)        # outputs overflow float32
    labels = np.zeros(m, np.int32)
    value = net.train_step(X, labels, 0.1, "mse")
    assume(not np.isfinite(np.float32(value)))
    for a, b in zip(net.get_weights(), weights):
        assert np.array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# The model loader
# ---------------------------------------------------------------------------------------------

def _model_bytes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    y = np.array(["a", "b", "c", "d"])[np.arange(40) % 4]
    model = fastmlp.MLP(hidden_layer_sizes=(3,), batch_size=8, epochs=1, random_state=0).fit(X, y)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.npz")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


VALID = _model_bytes()


def load_bytes(data):
    fd, path = tempfile.mkstemp(suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return fastmlp.load(path)
    finally:
        os.unlink(path)


def test_the_valid_file_loads():
    assert load_bytes(VALID).predict(np.zeros((2, 5), np.float32)).shape == (2,)


LOADER_SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow])


@LOADER_SETTINGS
@given(st.binary(max_size=2000))
def test_loader_on_random_bytes_raises_only_value_error(data):
    with pytest.raises(ValueError):
        load_bytes(data)


@LOADER_SETTINGS
@given(st.integers(0, len(VALID) - 1))
def test_loader_on_truncated_files_raises_only_value_error(cut):
    with pytest.raises(ValueError):
        load_bytes(VALID[:cut])


@LOADER_SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1,
                max_size=8))
def test_loader_on_corrupted_files_raises_value_error_or_loads_a_valid_model(flips):
    data = bytearray(VALID)
    for position, value in flips:
        data[position] = value
    try:
        model = load_bytes(bytes(data))
    except ValueError:
        return
    # A change the format cannot see (inside the weights) still gives a whole, finite model.
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert model.predict(np.zeros((1, 5), np.float32)).shape == (1,)


def _rezip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, payload in members.items():
            z.writestr(name, payload)
    return buffer.getvalue()


def _members():
    with zipfile.ZipFile(io.BytesIO(VALID)) as z:
        return {name: z.read(name) for name in z.namelist()}


@LOADER_SETTINGS
@given(name=st.sampled_from(sorted(_members())), data=st.data())
def test_loader_on_rewritten_members_raises_value_error_or_loads(name, data):
    """A well-formed zip whose members are replaced by random or truncated .npy payloads: the
    zip checksums pass, so only the loader's own checks stand between the bytes and the model."""
    members = _members()
    original = members[name]
    how = data.draw(st.sampled_from(["random", "truncate", "npy"]))
    if how == "random":
        members[name] = data.draw(st.binary(max_size=600))
    elif how == "truncate":
        members[name] = original[:data.draw(st.integers(0, len(original) - 1))]
    else:
        shape = tuple(data.draw(st.lists(st.integers(0, 6), max_size=3)))
        dtype = data.draw(st.sampled_from(["<f4", "<f8", "<i4", "|u1", "<U3", ">f4"]))
        buffer = io.BytesIO()
        np.save(buffer, np.zeros(shape, dtype))
        members[name] = buffer.getvalue()
    try:
        model = load_bytes(_rezip(members))
    except ValueError:
        return
    assert all(np.isfinite(w).all() for w in model.get_weights())
