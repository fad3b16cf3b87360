"""precision="bf16": bf16 products (src_c/ops/bf16.h) on every instruction set.

The products round A and B to bf16 and sum pairs of steps in VDPBF16PS's order with its
flushing; the CPU's own instruction (AVX512_BF16) and the emulation on every set must give the
same bits as reference.gemm_bf16, whatever the thread count. Weights, biases and the update stay
float32, so a bf16 network differs from a float32 one by the rounding of the products' inputs.
"""
import os
import warnings

import numpy as np
import pytest

import fastmlp
from fastmlp import _core, reference

pytestmark = pytest.mark.usefixtures("restore_isa_and_threads")

AVAILABLE = _core.build_info()["isa_available"]
NATIVE = _core.build_info()["bf16_native"]   # on the best set: whether the CPU has VDPBF16PS

# (isa, emulated): the emulation on every set, and the instruction where the CPU has it.
PATHS = [(isa, True) for isa in AVAILABLE] + ([("avx512", False)] if NATIVE else [])


def use_path(isa, emulated, threads):
    _core.set_isa(isa)
    _core.set_bf16_emulated(emulated)
    _core.set_num_threads(threads)


def bits(x):
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


# ---- the rounding ----

def test_bf16_round_ties_to_even_flushes_subnormals_keeps_nan_and_inf():
    f = np.float32
    cases = {
        1.0: 1.0,
        1.0 + 2 ** -8: 1.0,                        # a tie: to the even bf16 (1.0)
        1.0 + 3 * 2 ** -8: 1.0 + 2 ** -6,          # a tie: to the even bf16 (1 + 2^-6)
        1.0 + 2 ** -8 + 2 ** -20: 1.0 + 2 ** -7,   # past the tie: up
        -2.5: -2.5,
        1e-40: 0.0,                                # subnormal: zero
        float(np.finfo(np.float32).max): np.inf,   # past the largest bf16
        np.inf: np.inf,
    }
    for x, want in cases.items():
        assert reference.bf16_round(f(x)) == f(want), x
    assert bits(reference.bf16_round(f(-1e-40))) == 0x80000000        # a negative zero
    assert np.isnan(reference.bf16_round(f(np.nan)))
    assert bits(reference.bf16_round(f(1.0) + np.zeros(1, f)))[0] & 0xFFFF == 0


def random_operands(rng, M, N, K, scale=1.0):
    A = (rng.standard_normal((M, K)) * scale).astype(np.float32)
    B = (rng.standard_normal((K, N)) * scale).astype(np.float32)
    return A, B


def bf16_gemm(A, B, trans_a=False, trans_b=False):
    M, N = A.shape[0], B.shape[1]
    C = np.full((M, N), np.nan, dtype=np.float32)
    _core.gemm(np.ascontiguousarray(A.T) if trans_a else A,
               np.ascontiguousarray(B.T) if trans_b else B, C, trans_a=trans_a,
               trans_b=trans_b, precision="bf16")
    return C


# ---- products: the reference's bits on every path ----

SHAPES = [(1, 1, 1), (1, 10, 784), (7, 13, 33), (13, 70, 5), (37, 100, 301), (200, 10, 256),
          (5, 129, 2), (33, 17, 0)]


@pytest.mark.parametrize("isa,emulated", PATHS)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_products_give_the_reference_bits(isa, emulated, threads):
    use_path(isa, emulated, threads)
    rng = np.random.default_rng(7)
    for M, N, K in SHAPES:
        A, B = random_operands(rng, M, N, K)
        want = reference.gemm_bf16(A, B)
        for trans_a in (False, True):
            for trans_b in (False, True):
                got = bf16_gemm(A, B, trans_a, trans_b)
                assert np.array_equal(bits(got), bits(want)), (M, N, K, trans_a, trans_b)


def rounding_edges(rng, shape):
    """Random normal floats with rounding's edge cases among them, in whole vectors and past
    them: ties to even either way, a hair past a tie, subnormals and signed zeros (rounded to
    zeros), the smallest normals."""
    f = np.float32
    edges = np.array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 1 + 2 ** -8 + 2 ** -20,
                      3 * 2 ** -9, 1e-40, -1e-40, 0.0, -0.0, 2 ** -126, -(2 ** -126),
                      1.0039062, 255.5, -65504.0], dtype=f)
    x = rng.standard_normal(shape).astype(f)
    flat = x.reshape(-1)
    at = rng.choice(flat.size, size=flat.size // 3, replace=False)
    flat[at] = edges[rng.integers(0, edges.size, at.size)]
    return x


@pytest.mark.parametrize("isa,emulated", PATHS)
def test_packing_rounds_every_edge_as_the_reference(isa, emulated):
    """Each packer (rows of A, columns of A, B, B transposed) on whole vectors and tails; one
    row of A holds a float past the largest bf16 (an infinity, met by normal B alone)."""
    use_path(isa, emulated, 2)
    rng = np.random.default_rng(12)
    for M, N, K in [(5, 37, 70), (33, 64, 129), (3, 17, 32)]:
        A = rounding_edges(rng, (M, K))
        B = rounding_edges(rng, (K, N))
        A[M // 2, K // 3] = np.finfo(np.float32).max
        B[K // 3] = rng.uniform(0.5, 2.0, N).astype(np.float32)
        want = reference.gemm_bf16(A, B)
        assert np.isinf(want[M // 2]).any()
        for trans_a in (False, True):
            for trans_b in (False, True):
                got = bf16_gemm(A, B, trans_a, trans_b)
                assert np.array_equal(bits(got), bits(want)), (M, N, K, trans_a, trans_b)


@pytest.mark.parametrize("isa,emulated", PATHS)
def test_products_on_mnist_shapes(isa, emulated):
    use_path(isa, emulated, 2)
    rng = np.random.default_rng(3)
    for M, N, K in [(200, 512, 784), (200, 784, 512), (784, 512, 200)]:
        A, B = random_operands(rng, M, N, K)
        assert np.array_equal(bits(bf16_gemm(A, B)), bits(reference.gemm_bf16(A, B)))


# ---- the first layer's blank inputs (gemm.h: k_runs and m_runs) ----

def with_blank_columns(X):
    """X with stretches of columns zero in every row, as a batch of digits' blank border:
    a stretch ending at an odd column (its last pair half kept), a gap too short to leave out,
    and one at the end."""
    X = X.copy()
    K = X.shape[1]
    for start, end in [(0, 21), (50, 62), (80, 83), (K // 2 + 3, K // 2 + 3 + K // 10),
                       (K - 29, K)]:
        X[:, start:end] = 0
    X[::3, 30] = -0.0   # a negative zero is a blank too
    return X


def test_reference_runs_follow_the_blank_columns():
    X = np.ones((3, 40), dtype=np.float32)
    X[:, 5:9] = 0      # 4 columns: left out
    X[:, 20:23] = 0    # 3 columns: kept inside a run
    X[1, 21] = -0.0
    X[:, 35:] = 0
    assert reference.nonzero_runs(X) == [(0, 5), (9, 35)]
    assert reference.nonzero_runs(np.ones((2, 40), np.float32)) is None       # nothing to leave
    dense_but_one = np.ones((2, 40), np.float32)
    dense_but_one[:, 0] = 0                                                    # < 1/16 of 40
    assert reference.nonzero_runs(dense_but_one) is None
    many = np.zeros((1, 1000), np.float32)
    many[0, ::10] = 1                                                          # 100 runs
    runs = reference.nonzero_runs(many)
    assert len(runs) == reference.ZERO_RUNS_MAX and runs[-1] == (470, 991)


@pytest.mark.parametrize("isa,emulated", PATHS)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_products_over_the_nonzero_runs_give_the_reference_bits(isa, emulated, threads):
    use_path(isa, emulated, threads)
    rng = np.random.default_rng(11)
    for M, N, K in [(1, 10, 130), (7, 13, 97), (37, 100, 301), (200, 512, 784), (13, 70, 1500)]:
        A = with_blank_columns(rng.standard_normal((M, K)).astype(np.float32))
        B = rng.standard_normal((K, N)).astype(np.float32)
        runs = reference.nonzero_runs(A)
        assert runs is not None
        for trans_b in (False, True):
            C = np.full((M, N), np.nan, dtype=np.float32)
            _core.gemm(A, np.ascontiguousarray(B.T) if trans_b else B, C, trans_b=trans_b,
                       precision="bf16", nonzero_runs=True)
            want = reference.gemm_bf16(A, B, runs=runs)
            assert np.array_equal(bits(C), bits(want)), (M, N, K, trans_b)
            F = np.full((M, N), np.nan, dtype=np.float32)   # float: the same bits either way
            _core.gemm(A, np.ascontiguousarray(B.T) if trans_b else B, F, trans_b=trans_b,
                       nonzero_runs=True)
            G = np.empty_like(F)
            _core.gemm(A, np.ascontiguousarray(B.T) if trans_b else B, G, trans_b=trans_b)
            assert np.array_equal(bits(F), bits(G))


@pytest.mark.parametrize("isa,emulated", PATHS)
def test_a_left_out_pair_keeps_a_flushed_negative_zero(isa, emulated):
    """The one way leaving a zero pair out shows: a partial sum flushed to -0, which the zero
    pair's +0 products would have made +0."""
    use_path(isa, emulated, 1)
    K = 12
    A = np.zeros((2, K), dtype=np.float32)
    A[0, :2] = 1e-20                       # products of -1e-39: flushed to -0
    A[1, :2] = 1.0
    B = np.ones((K, 3), dtype=np.float32)
    B[:2] = -1e-19
    assert reference.nonzero_runs(A) == [(0, 2)]
    C = np.full((2, 3), np.nan, dtype=np.float32)
    _core.gemm(A, B, C, precision="bf16", nonzero_runs=True)
    kept = reference.gemm_bf16(A, B)
    left_out = reference.gemm_bf16(A, B, runs=[(0, 2)])
    assert np.all(bits(kept[0]) == 0) and np.all(bits(left_out[0]) == 0x80000000)
    assert np.array_equal(bits(C), bits(left_out))
    _core.gemm(A, B, C, precision="bf16")
    assert np.array_equal(bits(C), bits(kept))


def with_group_blanks(X, rng):
    """X with blanks that differ from one group of reference.PAIR_GROUP_ROWS rows to the next
    (a band of columns each group leaves blank, and columns blank in a third of the groups),
    blank columns for the whole batch (with_blank_columns), and, in rows alone in their group
    to have anything there, values whose bf16 is a zero (0x00008000) or not (0x00008001)."""
    X = with_blank_columns(X)
    M, K = X.shape
    G = reference.PAIR_GROUP_ROWS
    for g in range(0, (M + G - 1) // G):
        start = int(rng.integers(0, K - K // 4))
        X[g * G:(g + 1) * G, start:start + K // 4] = 0
        if g % 3 == 0:
            X[g * G:(g + 1) * G, 100:130] = 0
    tiny = np.array([0x00008000, 0x00008001], dtype=np.uint32).view(np.float32)
    for g, column in [(0, 101), (3, 103), (3, 104)]:
        if g * G < M and column < K:
            X[g * G:(g + 1) * G, column] = 0
            X[g * G, column] = tiny[column % 2]
    return X


@pytest.mark.parametrize("isa,emulated", PATHS)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_products_over_runs_and_groups_of_rows_give_the_reference_bits(isa, emulated, threads):
    """The first layer's products leave out, in each group of 6 rows, the pairs zero in all
    its rows: row counts that cut the last group, thread splits that cut groups, K blocks."""
    use_path(isa, emulated, threads)
    rng = np.random.default_rng(12)
    for M, N, K in [(1, 10, 150), (11, 70, 301), (12, 64, 200), (13, 33, 200), (37, 129, 301),
                    (200, 512, 784), (61, 16, 1500)]:
        A = with_group_blanks(rng.standard_normal((M, K)).astype(np.float32), rng)
        B = rng.standard_normal((K, N)).astype(np.float32)
        runs = reference.nonzero_runs(A)
        assert runs is not None
        C = np.full((M, N), np.nan, dtype=np.float32)
        _core.gemm(A, B, C, precision="bf16", nonzero_runs=True)
        assert np.array_equal(bits(C), bits(reference.gemm_bf16(A, B, runs=runs))), (M, N, K)


@pytest.mark.parametrize("isa,emulated", PATHS)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_groups_of_rows_keep_their_own_flushed_negative_zeros(isa, emulated, threads):
    """A pair zero (in bf16) in every row of a group but not of the batch: left out of that
    group's sums alone, which shows where a partial sum is a flushed -0. Groups of 6 rows; 60
    rows split between threads in chunks of 15 rows (2 threads) or 10 (3), which cut groups 2
    and 7 (2 threads), 3 and 8 (3): the groups of rows 13 and 19 keep pair 1 from a row the
    other chunk holds (+0); those of rows 0, 29, 43 and 49 leave it out (-0)."""
    use_path(isa, emulated, threads)
    assert reference.PAIR_GROUP_ROWS == 6
    M, K, N = 60, 600, 4
    A = np.zeros((M, K), dtype=np.float32)
    A[:, 10:20] = 1.0                     # with B's -1 there: -0 products on the zero rows
    minus_zero, plus_zero = [0, 29, 43, 49], [13, 19]
    for r in minus_zero + plus_zero:
        A[r] = 0
        A[r, :2] = 1e-20                  # products of -1e-39: flushed to -0
    A[[16, 22], 2:4] = 1.0                # pair 1, in the groups of rows 13 and 19 alone
    A[24, 2] = -0.0                       # zeros in bf16 (a -0, a subnormal): the group
    A[25, 3] = np.array(0x00008000, np.uint32).view(np.float32)   # of row 29 leaves it out
    B = np.full((K, N), -1.0, dtype=np.float32)
    B[:2] = -1e-19
    B[2:4] = 1.0                          # a zero pair here makes a -0 sum +0
    runs = reference.nonzero_runs(A)
    assert runs == [(0, 4), (10, 20)]
    want = reference.gemm_bf16(A, B, runs=runs)
    assert np.all(bits(want[minus_zero]) == 0x80000000) and np.all(bits(want[plus_zero]) == 0)
    C = np.full((M, N), np.nan, dtype=np.float32)
    _core.gemm(A, B, C, precision="bf16", nonzero_runs=True)
    assert np.array_equal(bits(C), bits(want))


def bf16_net_with_reference(sizes, max_batch, X, rng):
    """A bf16 Network of random weights, the weights, and the reference's bits of its
    prediction of X (every pair computed)."""
    net = _core.Network(sizes, max_batch, precision="bf16")
    weights = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        weights += [(rng.standard_normal((a, b)) * 0.2).astype(np.float32),
                    (rng.standard_normal(b) * 0.1).astype(np.float32)]
    net.set_weights(weights)
    hidden = np.maximum(reference.gemm_bf16(X, weights[0]) + weights[1], np.float32(0))
    return net, weights, reference.gemm_bf16(hidden, weights[2]) + weights[3]


@pytest.mark.parametrize("isa,emulated", PATHS)
@pytest.mark.parametrize("threads", [1, 2])
def test_a_bf16_sgd_step_on_blank_inputs_is_its_gradient_applied(isa, emulated, threads):
    """The step's first layer leaves out the pairs of blank columns forward (the reference's
    runs) and the weight rows of blank columns in the update (they keep their values): the
    weights after one plain SGD step are w - lr g, g the gradient mode's, which computes every
    row, and within bf16's rounding of float64's. A prediction computes every pair."""
    use_path(isa, emulated, threads)
    rng = np.random.default_rng(4)
    sizes, M, lr = (130, 45, 7), 37, 2.0 ** -4   # lr a power of two: w - lr g rounds once
    X = with_blank_columns(rng.random((M, sizes[0]), dtype=np.float32))
    Y = rng.standard_normal((M, sizes[-1])).astype(np.float32)
    net, weights, want = bf16_net_with_reference(sizes, M, X, rng)
    assert np.array_equal(bits(net.forward(X)), bits(want))
    _, grads = net.gradient(X, Y, "squared_error")
    _, dWs, dbs = reference.target_loss_and_grads(
        [np.float64(w) for w in weights[0::2]], [np.float64(b) for b in weights[1::2]],
        np.float64(X), np.float64(Y), "squared_error")
    for g, want in zip(grads, [a for pair in zip(dWs, dbs) for a in pair]):
        assert np.allclose(g, want, rtol=0, atol=0.02 * np.abs(want).max())
    net.train_step_targets(X, Y, lr, "squared_error")
    after = net.get_weights()
    for w, g, new in zip(weights, grads, after):
        assert np.array_equal(bits(new), bits(w - np.float32(lr) * g))
    blank = ~(X != 0).any(axis=0)
    assert np.array_equal(bits(after[0][blank]), bits(weights[0][blank]))


def test_a_bf16_prediction_on_blank_inputs_is_the_same_on_any_thread_count():
    """A pass of 1000 rows goes by blocks on one thread and layer by layer on two: either way
    every pair is computed, as the reference computes it."""
    rng = np.random.default_rng(6)
    sizes = (130, 45, 7)
    X = with_blank_columns(rng.random((1000, sizes[0]), dtype=np.float32))
    X[::7, 120] = 1e-20   # a column blank but in a few rows: kept
    net, weights, want = bf16_net_with_reference(sizes, 8, X, rng)
    for path in PATHS:
        for threads in (1, 2):
            use_path(*path, threads)
            assert np.array_equal(bits(net.forward(X)), bits(want)), (path, threads)


@pytest.mark.parametrize("isa,emulated", PATHS)
def test_tiny_sums_are_flushed_as_the_instruction_flushes_them(isa, emulated):
    """Products near and below the smallest normal float: each step's result flushed to a zero
    of its sign, the same bits on the instruction and the emulation."""
    use_path(isa, emulated, 1)
    rng = np.random.default_rng(11)
    A, B = random_operands(rng, 23, 37, 41, scale=2.0 ** -63)
    want = reference.gemm_bf16(A, B)
    got = bf16_gemm(A, B)
    assert np.array_equal(bits(got), bits(want))
    assert (want == 0).any() and (np.signbit(want) & (want == 0)).any()   # flushed, both signs


def test_nan_and_infinity_propagate():
    A = np.ones((3, 4), np.float32)
    B = np.ones((4, 5), np.float32)
    A[0, 1], A[1, 2] = np.nan, np.inf
    C = bf16_gemm(A, B)
    assert np.isnan(C[0]).all() and np.isinf(C[1]).all() and (C[2] == 4).all()


def test_against_float32_within_the_rounding_of_the_inputs():
    """|C_bf16 - A @ B| <= 2^-7 (|A| @ |B|) + float32's own error: each input's relative
    rounding error is at most 2^-9, so a product's at most about 2^-8."""
    rng = np.random.default_rng(5)
    A, B = random_operands(rng, 64, 96, 300)
    exact = A.astype(np.float64) @ B.astype(np.float64)
    bound = 2.0 ** -7 * (np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64))
    err = np.abs(bf16_gemm(A, B) - exact)
    assert (err <= bound).all()
    assert err.max() > 1e-4 * bound.max()   # bf16, not float32


def test_gemm_rejects_an_unknown_precision():
    A = np.ones((2, 2), np.float32)
    with pytest.raises(ValueError, match="precision"):
        _core.gemm(A, A, A.copy(), precision="fp16")


def test_build_info_names_the_bf16_path():
    info = _core.build_info()
    assert isinstance(info["bf16_native"], bool)
    assert ("VDPBF16PS" in info["bf16"]) == info["bf16_native"]
    _core.set_bf16_emulated(True)
    assert "emulated" in _core.build_info()["bf16"] and not _core.build_info()["bf16_native"]


# ---- training steps: the same bits on every path and thread count ----

def train_bf16(activation, adam, dropout, path, threads):
    use_path(*path, threads)
    rng = np.random.default_rng(1)
    sizes = (97, 70, 33, 10)
    X = with_blank_columns(rng.random((61, sizes[0]), dtype=np.float32))
    y = rng.integers(0, 10, 61).astype(np.int32)
    net = _core.Network(sizes, 61, activation=activation, adam=adam, dropout=dropout,
                        precision="bf16")
    weights = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        weights += [(rng.standard_normal((a, b)) * 0.1).astype(np.float32),
                    (rng.standard_normal(b) * 0.1).astype(np.float32)]
    net.set_weights(weights)
    losses = []
    for t in range(3):
        kw = {"adam": (0.9, 0.999, 1e-8, t + 1)} if adam else {}
        if dropout:
            kw.update(dropout_seed=5, dropout_step=t)
        losses.append(net.train_step(X, y, 0.01, **kw))
    return losses, net.get_weights(), net.forward(X)


@pytest.mark.parametrize("activation,adam,dropout", [("relu", False, None), ("tanh", True, None),
                                                     ("gelu", False, 0.25)])
def test_training_steps_give_the_same_bits_on_every_path(activation, adam, dropout):
    first = None
    for path in PATHS:
        for threads in (1, 2):
            losses, weights, out = train_bf16(activation, adam, dropout, path, threads)
            if first is None:
                first = (losses, weights, out)
                continue
            assert losses == first[0], (path, threads)
            assert all(np.array_equal(bits(a), bits(b)) for a, b in zip(weights, first[1]))
            assert np.array_equal(bits(out), bits(first[2]))


def test_a_bf16_forward_pass_is_the_reference_layer_by_layer():
    rng = np.random.default_rng(2)
    sizes = (50, 40, 7)
    net = _core.Network(sizes, 9, precision="bf16")
    weights = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        weights += [rng.standard_normal((a, b)).astype(np.float32),
                    rng.standard_normal(b).astype(np.float32)]
    net.set_weights(weights)
    for M in (1, 9, 300):   # one row, a few, and the pass by blocks of rows
        X = rng.standard_normal((M, sizes[0])).astype(np.float32)
        hidden = np.maximum(reference.gemm_bf16(X, weights[0]) + weights[1], np.float32(0))
        want = reference.gemm_bf16(hidden, weights[2]) + weights[3]
        assert np.array_equal(bits(net.forward(X)), bits(want))
        fp32 = net.forward(X, precision="fp32")
        assert not np.array_equal(bits(fp32), bits(want))
        assert np.allclose(fp32, want, rtol=0.05, atol=0.05 * np.abs(want).max())
    assert net.precision == "bf16"
    net.precision = "fp32"
    assert net.precision == "fp32"
    with pytest.raises(ValueError, match="precision"):
        net.precision = "bf8"


# ---- fastmlp.MLP ----

def digits_split():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return X[:1400], y[:1400], X[1400:], y[1400:]


def test_mlp_trains_and_predicts_in_bf16(tmp_path):
    Xtr, ytr, Xte, yte = digits_split()
    params = dict(hidden_layer_sizes=(64,), loss="cross_entropy", learning_rate=0.05,
                  momentum=0.9, batch_size=32, shuffle=True, epochs=10, random_state=0)
    fp32 = fastmlp.MLP(**params).fit(Xtr, ytr)
    bf16 = fastmlp.MLP(precision="bf16", **params).fit(Xtr, ytr)
    assert abs(bf16.score(Xte, yte) - fp32.score(Xte, yte)) <= 0.03
    assert not np.array_equal(bf16.coefs_[0], fp32.coefs_[0])
    # predictions follow the model's precision, or the call's
    p16, p32 = bf16.predict_proba(Xte), bf16.predict_proba(Xte, precision="fp32")
    assert not np.array_equal(p16, p32) and np.abs(p16 - p32).max() < 0.05
    assert np.array_equal(fp32.predict_proba(Xte, precision="bf16"),
                          fp32.set_params(precision="bf16").predict_proba(Xte))
    with pytest.raises(ValueError, match="precision"):
        bf16.predict(Xte, precision="half")
    # a file keeps it; a float32 model's file leaves it out (older versions read it)
    bf16.save(tmp_path / "m.npz")
    loaded = fastmlp.load(tmp_path / "m.npz")
    assert loaded.precision == "bf16" and np.array_equal(loaded.predict_proba(Xte), p16)
    import json
    fastmlp.MLP(epochs=1, hidden_layer_sizes=(4,)).fit(Xtr, ytr).save(tmp_path / "f.npz")
    with np.load(tmp_path / "f.npz") as archive:
        assert "precision" not in json.loads(archive["header"].tobytes())["params"]


def test_mlp_rejects_an_unknown_precision():
    Xtr, ytr, _, _ = digits_split()
    with pytest.raises(ValueError, match="precision"):
        fastmlp.MLP(precision="fp16", epochs=1).fit(Xtr, ytr)


def test_emulated_bf16_warns_once(monkeypatch):
    from fastmlp import _precision
    monkeypatch.setattr(_precision, "_warned", False)
    monkeypatch.setattr(_core, "build_info", lambda: {"bf16_native": False,
                                                      "bf16": "avx2 (emulated)"})
    Xtr, ytr, _, _ = digits_split()
    with pytest.warns(RuntimeWarning, match="emulation"):
        fastmlp.MLP(precision="bf16", epochs=1, hidden_layer_sizes=(8,)).fit(Xtr, ytr)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastmlp.MLP(precision="bf16", epochs=1, hidden_layer_sizes=(8,)).fit(Xtr, ytr)


# ---- accuracy on MNIST (slow) ----

def mnist_arrays():
    from fastmlp.datasets import load_mnist
    (x_train, y_train), (x_test, y_test) = load_mnist()
    return (x_train.reshape(-1, 784).astype(np.float32) / 255, y_train,
            x_test.reshape(-1, 784).astype(np.float32) / 255, y_test)


@pytest.mark.slow
def test_the_tutorial_in_bf16_is_within_three_tenths_of_a_point(mnist_files):
    """The tutorial's 30 epochs in bf16: within 0.3 points of float32's 92.37%."""
    Xtr, ytr, Xte, yte = mnist_arrays()
    model = fastmlp.MLP(random_state=0, precision="bf16").fit(Xtr, ytr)
    assert abs(model.score(Xte, yte) - 0.9237) <= 0.003


@pytest.mark.slow
def test_the_cross_entropy_recipe_in_bf16(mnist_files):
    Xtr, ytr, Xte, yte = mnist_arrays()
    model = fastmlp.MLP(hidden_layer_sizes=(512, 256), loss="cross_entropy", learning_rate=0.05,
                        momentum=0.9, batch_size=100, shuffle=True, epochs=20, random_state=0,
                        precision="bf16").fit(Xtr, ytr)
    assert model.score(Xte, yte) >= 0.982
