"""Every C kernel against the NumPy reference (float64), on shapes that break any tiling.

Tolerances come from the arithmetic: a K-term float32 dot product accumulated by FMA has an
error of at most about K * eps32 * sum_k |a_k b_k|, so each element is compared with a bound
proportional to K times its own absolute dot product. Operations that are exact (ReLU masks,
copies) are compared for equality.
"""
import numpy as np
import pytest

from fastmlp import _core
from fastmlp import reference as ref

EPS32 = np.finfo(np.float32).eps
# Sizes around common tile widths (4, 6, 8, 12, 14, 16, 32, 64) and the MNIST shapes.
SMALL = [1, 2, 3, 7, 13, 17, 33]
TILE_EDGES = [5, 11, 15, 31, 63, 65]
SHAPES = ([(m, k, n) for m in (1, 3, 13) for k in (1, 7, 33) for n in (1, 2, 17, 33, 65)]
          + [(m, 17, n) for m in TILE_EDGES for n in TILE_EDGES]
          + [(200, 784, 512), (200, 512, 256), (200, 256, 10), (1, 784, 512), (7, 784, 10)])


def rand(rng, *shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, size=shape).astype(np.float32)


def dot_bound(A, B, K):
    """Element-wise error bound for op(A) @ op(B) computed in float32 with K-term sums."""
    return 2.0 * (K + 2) * EPS32 * (np.abs(A.astype(np.float64)) @ np.abs(B.astype(np.float64))) + 1e-30


def assert_within(actual, expected, bound):
    err = np.abs(actual.astype(np.float64) - expected)
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert np.all(err <= bound), (
        f"error {err[worst]:.3g} exceeds bound {bound[worst]:.3g} at {worst}")


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (False, True), (True, False)])
def test_gemm(m, k, n, trans_a, trans_b):
    rng = np.random.default_rng(m * 1000003 + k * 1009 + n)
    A = rand(rng, m, k)
    B = rand(rng, k, n)
    stored_a = np.ascontiguousarray(A.T) if trans_a else A
    stored_b = np.ascontiguousarray(B.T) if trans_b else B
    C = np.full((m, n), np.nan, np.float32)
    _core.gemm(stored_a, stored_b, C, trans_a=trans_a, trans_b=trans_b)
    assert_within(C, A.astype(np.float64) @ B.astype(np.float64), dot_bound(A, B, k))


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("relu", [False, True])
def test_dense_forward(m, k, n, relu):
    rng = np.random.default_rng(k * 7919 + n * 31 + m)
    X, W, b = rand(rng, m, k), rand(rng, k, n), rand(rng, n)
    out = np.full((m, n), np.nan, np.float32)
    _core.dense_forward(X, W, b, out, relu)
    expected = ref.dense_forward(X.astype(np.float64), W.astype(np.float64), b.astype(np.float64), relu)
    bound = dot_bound(X, W, k) + 2 * EPS32 * (np.abs(X.astype(np.float64)) @ np.abs(W) + np.abs(b))
    assert_within(out, expected, bound)
    if relu:
        assert np.all(out >= 0)


@pytest.mark.parametrize("m,k,n", SHAPES)
def test_dense_backward_input_masks_exactly(m, k, n):
    rng = np.random.default_rng(m + 3 * k + 5 * n)
    dZ, W = rand(rng, m, n), rand(rng, k, n)
    A_prev = np.maximum(rand(rng, m, k), 0)          # a ReLU output: exact zeros where masked
    dA = np.full((m, k), np.nan, np.float32)
    _core.dense_backward_input(dZ, W, A_prev, dA)
    expected = ref.relu_backward(dZ.astype(np.float64) @ W.T.astype(np.float64), A_prev)
    assert_within(dA, expected, dot_bound(dZ, W.T, n))
    assert np.all(dA[A_prev <= 0] == 0)


def test_dense_backward_input_without_mask():
    rng = np.random.default_rng(1)
    dZ, W = rand(rng, 9, 13), rand(rng, 21, 13)
    dA = np.empty((9, 21), np.float32)
    _core.dense_backward_input(dZ, W, None, dA)
    assert_within(dA, dZ.astype(np.float64) @ W.T, dot_bound(dZ, W.T, 13))


@pytest.mark.parametrize("m,k,n", SHAPES)
def test_dense_update_plain_sgd(m, k, n):
    rng = np.random.default_rng(11 * m + k + 101 * n)
    A, dZ, W, b = rand(rng, m, k), rand(rng, m, n), rand(rng, k, n), rand(rng, n)
    lr = 0.37
    W_expected = ref.sgd_update(W.astype(np.float64), A.T.astype(np.float64) @ dZ, lr)
    b_expected = ref.sgd_update(b.astype(np.float64), dZ.sum(axis=0, dtype=np.float64), lr)
    _core.dense_update(W, b, A, dZ, lr)
    assert_within(W, W_expected, lr * dot_bound(A.T, dZ, m) + 2 * EPS32 * np.abs(W_expected))
    b_bound = lr * (m + 2) * EPS32 * np.abs(dZ).sum(axis=0) + 2 * EPS32 * np.abs(b_expected)
    assert_within(b, b_expected, b_bound)


@pytest.mark.parametrize("nesterov", [False, True])
def test_dense_update_momentum_and_l2(nesterov):
    rng = np.random.default_rng(5)
    m, k, n = 13, 17, 33
    A, dZ, W, b = rand(rng, m, k), rand(rng, m, n), rand(rng, k, n), rand(rng, n)
    vW, vb = rand(rng, k, n), rand(rng, n)
    lr, mu, alpha = 0.1, 0.9, 0.01
    W64, b64, vW64, vb64 = (a.astype(np.float64) for a in (W, b, vW, vb))
    dW = A.T.astype(np.float64) @ dZ
    gb = dZ.sum(axis=0, dtype=np.float64)
    W64, vW64 = ref.parameter_update(W64, dW, lr, vW64, alpha=alpha, momentum=mu,
                                     nesterov=nesterov)
    b64, vb64 = ref.parameter_update(b64, gb, lr, vb64, momentum=mu, nesterov=nesterov)
    _core.dense_update(W, b, A, dZ, lr, alpha=alpha, momentum=mu, nesterov=nesterov, vW=vW, vb=vb)
    tol = 1e-5 * (1 + np.abs(W64))
    assert_within(vW, vW64, tol)
    assert_within(W, W64, tol)
    assert_within(b, b64, 1e-5 * (1 + np.abs(b64)))


@pytest.mark.parametrize("m,n", [(1, 1), (1, 10), (7, 3), (200, 10), (13, 17)])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_loss_grad(m, n, loss):
    rng = np.random.default_rng(m * 17 + n)
    out = rand(rng, m, n, low=-3, high=3)
    labels = rng.integers(0, n, size=m).astype(np.int32)
    dout = np.full((m, n), np.nan, np.float32)
    value = _core.loss_grad(out, labels, dout, loss)
    out64 = out.astype(np.float64)
    if loss == "mse":
        expected_value, expected_grad = ref.mse_loss(out64, labels), ref.mse_grad(out64, labels)
    else:
        expected_value = ref.cross_entropy_loss(out64, labels)
        expected_grad = ref.cross_entropy_grad(out64, labels)
    assert value == pytest.approx(expected_value, rel=1e-5, abs=1e-6)
    assert_within(dout, expected_grad, 8 * EPS32 * (np.abs(expected_grad) + 1.0 / m))


def test_cross_entropy_is_stable_for_huge_logits():
    out = np.array([[1e4, 0, -1e4], [-1e4, 1e4, 0]], np.float32)
    dout = np.empty_like(out)
    value = _core.loss_grad(out, np.array([0, 2], np.int32), dout, "cross_entropy")
    assert np.isfinite(value) and value == pytest.approx(1e4 / 2, rel=1e-6)
    assert np.all(np.isfinite(dout))


def net_and_reference(sizes, batch, seed, momentum=False):
    rng = np.random.default_rng(seed)
    weights, biases = ref.init_params(list(sizes), rng)
    biases = [rand(rng, len(b), low=-0.1, high=0.1) for b in biases]
    net = _core.Network(sizes, batch, momentum=momentum)
    net.set_weights([a for pair in zip(weights, biases) for a in pair])
    return net, weights, biases


# (70, 130, 75, 3): widths that cut the weights' 64-column panels (gemm.h) unevenly, and a
# K block of the input gradient that spans two panels; (170, 330, 75, 3) on 200 rows likewise,
# big enough for a team of threads (mlp_step.c's team_for); (1100, 90, 3): an input wider than
# the forward product's K block for weights in panels (gemm.c's KC_PANELS), so its partial sums
# are parked between K blocks. The training step runs its output layer by rows, each thread
# its own (mlp_step.c): (3000, 64) has no hidden layer and a team of threads; 2101 rows are
# more than the step's loss slots, so each slot sums several rows; 5 rows of (3000, 2000, 10)
# leave a thread of the team without rows.
NETWORKS = [((5, 3), 4), ((7, 13, 3), 1), ((17, 33, 7, 2), 9), ((70, 130, 75, 3), 33),
            ((170, 330, 75, 3), 200), ((784, 512, 256, 10), 200), ((1100, 90, 3), 40),
            ((3000, 64), 200), ((100, 60, 3), 2101), ((3000, 2000, 10), 5)]


@pytest.mark.parametrize("sizes,batch", NETWORKS)
def test_forward_matches_reference(sizes, batch):
    net, weights, biases = net_and_reference(sizes, batch, seed=len(sizes) + batch)
    X = rand(np.random.default_rng(3), batch, sizes[0], low=0, high=1)
    out = net.forward(X)
    expected = ref.forward([w.astype(np.float64) for w in weights],
                           [b.astype(np.float64) for b in biases], X.astype(np.float64))[-1]
    scale = np.abs(expected).max() + 1
    np.testing.assert_allclose(out, expected, rtol=0, atol=len(sizes) * max(sizes) * 4 * EPS32 * scale)


@pytest.mark.parametrize("rows", [1, 7, 200, 1001])
@pytest.mark.parametrize("n_out", [1, 3, 10, 17])
def test_forward_output_starts_on_a_cache_line(rows, n_out):
    # The kernels store whole 64-byte vectors; a buffer off the line boundary makes each a split
    # store (see _aligned_empty in _core.pyx).
    net = _core.Network((5, 9, n_out), 4)
    out = net.forward(np.ones((rows, 5), np.float32))
    assert out.shape == (rows, n_out) and out.dtype == np.float32 and out.flags.c_contiguous
    assert out.flags.writeable and out.ctypes.data % 64 == 0


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("sizes,batch", NETWORKS)
def test_train_step_matches_reference(sizes, batch, loss):
    net, weights, biases = net_and_reference(sizes, batch, seed=batch + 2 * len(sizes))
    rng = np.random.default_rng(4)
    X = rand(rng, batch, sizes[0], low=0, high=1)
    labels = rng.integers(0, sizes[-1], size=batch).astype(np.int32)
    lr = 0.05
    value = net.train_step(X, labels, lr, loss)
    new_w, new_b, expected_loss = ref.train_step([w.astype(np.float64) for w in weights],
                                                 [b.astype(np.float64) for b in biases],
                                                 X.astype(np.float64), labels, lr, loss)
    assert value == pytest.approx(expected_loss, rel=1e-4)
    got = net.get_weights()
    for l, (w, b) in enumerate(zip(new_w, new_b)):
        step_w = np.abs(w - weights[l]).max() + 1e-12
        # The update is lr * gradient; compare the change, not just the weights.
        np.testing.assert_allclose(got[2 * l] - weights[l], w - weights[l], rtol=0,
                                   atol=2e-3 * step_w + 8 * EPS32 * np.abs(w).max())
        np.testing.assert_allclose(got[2 * l + 1], b, rtol=0,
                                   atol=2e-3 * (np.abs(b - biases[l]).max() + 1e-12) + 8 * EPS32)


@pytest.mark.parametrize("sizes,batch", NETWORKS)
def test_train_step_rows_is_train_step_on_the_gathered_rows(sizes, batch):
    # A shuffled batch gathered by the step's threads (mlp_step.c) gives the bits of a copy
    # made first: rows in any order, repeated, from an array larger than the batch; a second,
    # shorter batch reuses the gather buffer.
    gathered, weights, biases = net_and_reference(sizes, batch, seed=batch + 5, momentum=True)
    copied, _, _ = net_and_reference(sizes, batch, seed=batch + 5, momentum=True)
    rng = np.random.default_rng(13)
    n = 3 * batch + 5
    X = rand(rng, n, sizes[0], low=0, high=1)
    y = rng.integers(0, sizes[-1], size=n).astype(np.int32)
    for step, m in enumerate((batch, max(1, batch - 3))):
        rows = rng.integers(0, n, size=m).astype(np.int64)
        rows[-1] = rows[0]
        kwargs = dict(loss="cross_entropy" if step else "mse", alpha=1e-4 * step,
                      momentum=0.9 * step)
        a = gathered.train_step_rows(X, y, rows, 0.05, **kwargs)
        b = copied.train_step(X[rows], y[rows], 0.05, **kwargs)
        assert a == b
    for got, want in zip(gathered.get_weights() + gathered.get_velocity(),
                         copied.get_weights() + copied.get_velocity()):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("sizes", [(5, 3), (70, 130, 75, 3), (40, 64, 128, 65)])
def test_weights_and_velocities_round_trip_exactly(sizes):
    # The network keeps them in column panels; users see (n_in, n_out) matrices.
    rng = np.random.default_rng(8)
    net = _core.Network(sizes, 3, momentum=True)
    arrays = [rand(rng, *shape) for n_in, n_out in zip(sizes[:-1], sizes[1:])
              for shape in ((n_in, n_out), (n_out,))]
    velocities = [rand(rng, *a.shape) for a in arrays]
    net.set_weights(arrays)
    net.set_velocity(velocities)
    for got, want in zip(net.get_weights() + net.get_velocity(), arrays + velocities):
        assert got.shape == want.shape and got.dtype == np.float32 and got.flags.c_contiguous
        assert np.array_equal(got, want)


@pytest.mark.parametrize("nesterov", [False, True])
def test_network_momentum_step_matches_reference(nesterov):
    sizes, batch = (70, 130, 75, 3), 33
    net, weights, biases = net_and_reference(sizes, batch, seed=11, momentum=True)
    rng = np.random.default_rng(12)
    velocities = [rand(rng, *a.shape, low=-0.01, high=0.01)
                  for pair in zip(weights, biases) for a in pair]
    net.set_velocity(velocities)
    X = rand(rng, batch, sizes[0], low=0, high=1)
    labels = rng.integers(0, sizes[-1], size=batch).astype(np.int32)
    lr, mu, alpha = 0.05, 0.9, 0.01
    net.train_step(X, labels, lr, "mse", alpha=alpha, momentum=mu, nesterov=nesterov)
    w64 = [w.astype(np.float64) for w in weights]
    _, dWs, dbs = ref.loss_and_grads(w64, [b.astype(np.float64) for b in biases],
                                     X.astype(np.float64), labels)
    got_w, got_v = net.get_weights(), net.get_velocity()
    for l in range(len(weights)):
        for i, (p, g) in enumerate(((w64[l], ref.l2_gradient(dWs[l], w64[l], alpha)),
                                    (biases[l].astype(np.float64), dbs[l]))):
            new, v = ref.parameter_update(p, g, lr, velocities[2 * l + i].astype(np.float64),
                                          momentum=mu, nesterov=nesterov)
            tol = 1e-4 * (np.abs(g).max() * lr + 1e-3)
            np.testing.assert_allclose(got_v[2 * l + i], v, rtol=0, atol=tol)
            np.testing.assert_allclose(got_w[2 * l + i], new, rtol=0, atol=tol + 4 * EPS32)


@pytest.mark.parametrize("shape", [(1, 1), (1, 784), (7, 33), (200, 784)])
def test_all_finite_finds_every_non_finite_value(shape):
    X = np.random.default_rng(9).uniform(-1, 1, shape).astype(np.float32)
    X.flat[0] = np.finfo(np.float32).max
    X.flat[-1] = -np.finfo(np.float32).tiny / 4          # subnormal
    assert _core.all_finite(X) and _core.all_finite(np.negative(X))
    for bad in (np.nan, np.inf, -np.inf, np.float32(np.nan) * -1):
        for pos in {0, X.size // 2, X.size - 1}:
            Y = X.copy()
            Y.flat[pos] = bad
            assert not _core.all_finite(Y), (bad, pos)
    X.setflags(write=False)                               # read-only input works
    assert _core.all_finite(X)
    assert _core.all_finite(np.empty((0, 5), np.float32))


def test_non_finite_loss_leaves_weights_untouched():
    net, weights, biases = net_and_reference((4, 5, 3), 2, seed=0)
    before = net.get_weights()
    X = np.full((2, 4), 1e30, np.float32)
    value = net.train_step(X, np.array([0, 1], np.int32), 0.1)
    assert not np.isfinite(np.float32(value))
    for a, b in zip(before, net.get_weights()):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("sizes", [(70, 130, 75, 3), (784, 512, 256, 10)])
@pytest.mark.parametrize("threads", [1, 2])
def test_forward_of_many_rows_block_by_block_gives_the_same_bits(sizes, threads):
    # Thousands of rows go block by block (mlp_step.c); a few rows layer by layer. 2017 rows:
    # blocks of 240 and a ragged tail of shrinking blocks.
    net, weights, biases = net_and_reference(sizes, 8, seed=11)
    X = rand(np.random.default_rng(12), 2017, sizes[0], low=0, high=1)
    before = _core.get_num_threads()
    _core.set_num_threads(threads)
    try:
        whole = net.forward(X)
        by_slices = np.concatenate([net.forward(X[i:i + 97]) for i in range(0, len(X), 97)])
    finally:
        _core.set_num_threads(before)
    assert np.array_equal(whole, by_slices)
    expected = ref.forward([w.astype(np.float64) for w in weights],
                           [b.astype(np.float64) for b in biases], X.astype(np.float64))[-1]
    scale = np.abs(expected).max() + 1
    np.testing.assert_allclose(whole, expected, rtol=0, atol=len(sizes) * max(sizes) * 4 * EPS32 * scale)


def test_forward_gives_the_same_bits_on_any_thread_count():
    # 8 threads on 9000 rows: block by block, a scratch slot per thread; on 5000 rows: layer by
    # layer in two chunks of scratch (mlp_step.c, fm_forward_scratch_rows).
    net, _, _ = net_and_reference((70, 130, 75, 3), 8, seed=13)
    X = rand(np.random.default_rng(14), 9000, 70, low=0, high=1)
    before = _core.get_num_threads()
    results = {}
    try:
        for threads in (1, 2, 3, 8):
            _core.set_num_threads(threads)
            results[threads] = (net.forward(X), net.forward(X[:5000]))
    finally:
        _core.set_num_threads(before)
    for threads, (many, fewer) in results.items():
        assert np.array_equal(many, results[1][0]), threads
        assert np.array_equal(fewer, results[1][0][:5000]), threads


@pytest.mark.parametrize("rows", [1, 3, 16, 17, 29])
def test_forward_of_few_rows_gives_the_same_bits_on_any_thread_count(rows):
    # Up to 16 rows the threads take fixed shares of each product, beyond it scheduled chunks
    # (mlp_step.c, FIXED_SHARE_ROWS): either way the bits of one thread, and of each row alone.
    net, weights, biases = net_and_reference((784, 512, 256, 10), 8, seed=16)
    X = rand(np.random.default_rng(17), rows, 784, low=0, high=1)
    before = _core.get_num_threads()
    results = {}
    try:
        for threads in (1, 2, 3):
            _core.set_num_threads(threads)
            results[threads] = net.forward(X)
        one_by_one = np.concatenate([net.forward(X[i:i + 1]) for i in range(rows)])
    finally:
        _core.set_num_threads(before)
    for threads, out in results.items():
        assert np.array_equal(out, results[1]), threads
    assert np.array_equal(one_by_one, results[1])
    expected = ref.forward([w.astype(np.float64) for w in weights],
                           [b.astype(np.float64) for b in biases], X.astype(np.float64))[-1]
    scale = np.abs(expected).max() + 1
    np.testing.assert_allclose(results[1], expected, rtol=0, atol=4 * 784 * 4 * EPS32 * scale)


def test_forward_from_several_threads_at_once_gives_the_same_bits():
    # One call at a time uses the network's own scratch; calls made meanwhile (the GIL is
    # released in C) make their own, so none sees another's activations.
    import threading
    net, _, _ = net_and_reference((70, 130, 75, 3), 64, seed=15)
    inputs = [rand(np.random.default_rng(20 + i), 1 + 9 * i, 70, low=0, high=1) for i in range(6)]
    expected = [net.forward(X) for X in inputs]
    errors = []

    def work(i):
        for _ in range(200):
            if not np.array_equal(net.forward(inputs[i]), expected[i]):
                errors.append(i)
                return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_predictions_do_not_depend_on_batching():
    net, _, _ = net_and_reference((33, 65, 17, 10), 8, seed=9)
    X = rand(np.random.default_rng(8), 37, 33)
    whole = net.forward(X)
    for i in range(len(X)):
        assert np.array_equal(net.forward(X[i:i + 1])[0], whole[i])


# ---- the wrappers refuse bad buffers before any C runs ----

def test_wrappers_check_shapes():
    f = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="rows"):
        _core.dense_forward(f, np.zeros((5, 2), np.float32), np.zeros(2, np.float32),
                            np.zeros((3, 2), np.float32), True)
    with pytest.raises(ValueError, match="out has shape"):
        _core.dense_forward(f, np.zeros((4, 2), np.float32), np.zeros(2, np.float32),
                            np.zeros((3, 3), np.float32), True)
    with pytest.raises(ValueError, match="inner dimensions"):
        _core.gemm(f, np.zeros((3, 2), np.float32), np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="outside"):
        _core.loss_grad(f, np.array([0, 1, 4], np.int32), np.zeros_like(f))
    with pytest.raises(ValueError):
        _core.dense_update(np.zeros((4, 2), np.float32), np.zeros(3, np.float32), f,
                           np.zeros((3, 2), np.float32), 0.1)


@pytest.mark.parametrize("bad", [np.zeros((3, 4), np.float64), np.zeros((4, 3), np.float32).T])
def test_wrappers_reject_wrong_dtype_or_layout(bad):
    with pytest.raises(ValueError):
        _core.dense_forward(bad, np.zeros((4, 2), np.float32), np.zeros(2, np.float32),
                            np.zeros((3, 2), np.float32), False)


def test_read_only_inputs_are_accepted():
    rng = np.random.default_rng(0)
    X, W, b = rand(rng, 3, 4), rand(rng, 4, 2), rand(rng, 2)
    for a in (X, W, b):
        a.flags.writeable = False
    out = np.empty((3, 2), np.float32)
    _core.dense_forward(X, W, b, out, False)
    np.testing.assert_allclose(out, X @ W + b, rtol=1e-6)


def test_network_size_products_are_overflow_checked_in_c():
    fits = _core.network_sizes_fit
    assert fits((784, 512, 256, 10), 200)
    # 4-byte floats: a buffer of n elements needs 4n bytes, which must fit in ptrdiff_t.
    limit = (2 ** 63 - 1) // 4
    assert fits((1, limit), 1)
    assert not fits((1, limit + 1), 1)
    assert not fits((2 ** 32, 2 ** 32, 2), 1)          # W1 overflows
    assert not fits((3, 2), 2 ** 62)                  # the batch buffers overflow
    assert not fits((3, 0), 1) and not fits((3,), 1) and not fits((2 ** 64, 2), 1)
    with pytest.raises(MemoryError, match="address"):
        _core.Network((2 ** 32, 2 ** 32, 2), 1)
