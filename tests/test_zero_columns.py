"""The first layer skips the columns of the input that are zero in every row (src_c/zero_runs.h),
and that changes no bit.

Skipping a term 0 * w of an FMA chain leaves its result as it is when w is finite, so a network
pass or training step on inputs with zero columns must give exactly what the same products give
over all of K: here, the chain of single-layer wrappers (`_core.dense_forward` and friends),
which never skip. The inputs cover what the scan must get right: zero runs at the start, the
end and in between, gaps shorter and longer than the ones it computes through (FM_MIN_GAP = 4),
more runs than it keeps (FM_MAX_RUNS = 48), -0.0, zeros in only some rows, a batch of one row,
an all-zero batch and, where FASTMLP_DATA has it, real MNIST digits. Inside a batch with zero
columns, each tile of rows also keeps to the columns it has a nonzero in (gemm.h, tile_steps):
rows inked in windows of their own test that.
"""

import numpy as np
import pytest

from fastmlp import _core
from fastmlp import reference as ref


pytestmark = pytest.mark.usefixtures("restore_isa_and_threads")


def zero_column_input(rng, rows, cols, pattern):
    """rows x cols in [0, 1) with whole columns zeroed by `pattern`."""
    X = rng.uniform(0, 1, size=(rows, cols)).astype(np.float32)
    zero = np.zeros(cols, bool)
    if pattern == "border":            # a blank frame: long runs at both ends
        zero[:cols // 5] = True
        zero[-cols // 7:] = True
    elif pattern == "gaps":            # gaps of every length from 1 to 9, between runs of 3
        c = 2
        for gap in range(1, 10):
            zero[c:c + gap] = True
            c += gap + 3
        zero[-1] = True
    elif pattern == "many":            # alternating runs of 2 and gaps of 5: over 48 runs
        for c in range(0, cols, 7):
            zero[c + 2:c + 7] = True
    elif pattern == "isolated":        # single nonzero columns far apart
        zero[:] = True
        zero[3::11] = False
    elif pattern == "all":
        zero[:] = True
    elif pattern == "late":            # none in the scan's first 512 columns (zero_runs.c)
        zero[600:650] = True
        zero[-5:] = True
    elif pattern == "early":           # none after column 60: a run open across 512
        zero[10:60] = True
    X[:, zero] = 0.0
    X[::2, zero] = -0.0                # -0.0 counts as zero too
    X[1::3, 5:9] = 0.0                 # zeros in some rows only: not a zero column
    return X


PATTERNS = ["border", "gaps", "many", "isolated", "all"]


def network(sizes, seed, momentum=False):
    rng = np.random.default_rng(seed)
    weights, biases = ref.init_params(list(sizes), rng)
    biases = [rng.uniform(-0.1, 0.1, len(b)).astype(np.float32) for b in biases]
    net = _core.Network(sizes, 200, momentum=momentum)
    net.set_weights([a for pair in zip(weights, biases) for a in pair])
    if momentum:   # a velocity from earlier steps, so that its rows all move
        net.set_velocity([rng.uniform(-1e-3, 1e-3, a.shape).astype(np.float32)
                          for a in net.get_velocity()])
    return net


def chained_forward(net, X):
    """The network's output from the single-layer wrapper, layer by layer, over all of K."""
    params = net.get_weights()
    a = X
    for l in range(0, len(params), 2):
        W, b = params[l], params[l + 1]
        out = np.empty((len(a), W.shape[1]), np.float32)
        _core.dense_forward(np.ascontiguousarray(a), W, b, out, l + 2 < len(params))
        a = out
    return a


def chained_step(net, X, labels, lr, **optimizer):
    """A training step from the single-layer wrappers; returns the new weights and biases
    (and velocities, for a network that has them)."""
    params = net.get_weights()
    velocity = net.get_velocity() if net.has_velocity else None
    L = len(params) // 2
    acts = [X]
    for l in range(L):
        out = np.empty((len(X), params[2 * l].shape[1]), np.float32)
        _core.dense_forward(acts[-1], params[2 * l], params[2 * l + 1], out, l < L - 1)
        acts.append(out)
    grad = np.empty_like(acts[-1])
    _core.loss_grad(acts[-1], labels, grad, "mse")
    for l in reversed(range(L)):
        below = None
        if l > 0:
            below = np.empty_like(acts[l])
            _core.dense_backward_input(grad, params[2 * l], acts[l], below)
        if velocity is None:
            _core.dense_update(params[2 * l], params[2 * l + 1], acts[l], grad, lr, **optimizer)
        else:
            _core.dense_update(params[2 * l], params[2 * l + 1], acts[l], grad, lr, **optimizer,
                               vW=velocity[2 * l], vb=velocity[2 * l + 1])
        grad = below
    return params + (velocity or [])


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("sizes,rows", [((784, 512, 256, 10), 200), ((784, 512, 256, 10), 1),
                                        ((70, 130, 75, 3), 33), ((400, 33, 5), 7)])
def test_forward_on_zero_columns_gives_the_bits_of_all_columns(pattern, sizes, rows):
    net = network(sizes, seed=rows)
    X = zero_column_input(np.random.default_rng(rows + 1), rows, sizes[0], pattern)
    assert np.array_equal(net.forward(X), chained_forward(net, X))


@pytest.mark.parametrize("pattern", ["late", "early"])
@pytest.mark.parametrize("rows", [1, 2, 200])
def test_forward_on_zero_columns_on_either_side_of_a_scan_chunk(pattern, rows):
    # The scan takes 512 columns at a time and steps over a chunk with no zero column at once.
    net = network((784, 512, 256, 10), seed=rows + 5)
    X = zero_column_input(np.random.default_rng(rows + 6), rows, 784, pattern)
    assert np.array_equal(net.forward(X), chained_forward(net, X))


@pytest.mark.parametrize("rows", [2, 3, 5, 8, 9, 12, 13, 31, 197])
@pytest.mark.parametrize("isa", _core.ISAS)
def test_a_column_inked_in_one_row_is_kept_whichever_the_row(rows, isa, use_isa):
    # The scan ORs rows four and eight at a time, and a tile's list the rows of its tile
    # (zero_runs.c): a column whose only nonzero lies in any one row, wherever that row falls
    # among the rows taken together, or in the rows left over, must still be computed.
    use_isa(isa)
    net = network((784, 512, 256, 10), seed=rows + 50)
    X = np.zeros((rows, 784), np.float32)
    for r in range(rows):
        X[r, 100 + 3 * r] = 0.25 + r / 1000   # its own column, and nothing else in it
    X[rows - 1, 700] = 1e-40                  # a subnormal in the last row: not zero
    labels = np.arange(rows, dtype=np.int32) % 10
    assert np.array_equal(net.forward(X), chained_forward(net, X))
    expected = chained_step(net, X, labels, 0.05)
    net.train_step(X, labels, 0.05)
    for got, want in zip(net.get_weights(), expected):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("pattern", ["border", "gaps", "many"])
@pytest.mark.parametrize("threads", [1, 2])
def test_forward_of_many_rows_block_by_block_on_zero_columns(pattern, threads):
    # 2017 rows go block by block (mlp_step.c), each block finding its own zero columns: the
    # first 700 rows have an extra zero column band the rest lack.
    _core.set_num_threads(threads)
    net = network((784, 512, 256, 10), seed=3)
    X = zero_column_input(np.random.default_rng(4), 2017, 784, pattern)
    X[:700, 300:340] = 0.0
    assert np.array_equal(net.forward(X), chained_forward(net, X))


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("threads", [1, 2])
def test_train_step_on_zero_columns_gives_the_bits_of_all_columns(pattern, threads):
    _core.set_num_threads(threads)
    net = network((784, 512, 256, 10), seed=5)
    rng = np.random.default_rng(6)
    X = zero_column_input(rng, 200, 784, pattern)
    labels = rng.integers(0, 10, size=200).astype(np.int32)
    expected = chained_step(net, X, labels, 0.05)
    net.train_step(X, labels, 0.05)
    for got, want in zip(net.get_weights(), expected):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("optimizer", [dict(alpha=1e-3), dict(momentum=0.9),
                                       dict(momentum=0.9, nesterov=True)])
def test_train_step_with_l2_or_momentum_moves_every_row(optimizer):
    # Plain SGD leaves the weights of zero columns as they are, and the step skips them; an L2
    # penalty or a velocity moves them, so there every row is computed.
    rng = np.random.default_rng(12)
    step_moves_the_blank_rows(optimizer, zero_column_input(rng, 200, 784, "border"), rng,
                              seed=11, blank=100)


def step_moves_the_blank_rows(optimizer, X, rng, seed, blank):
    """A step with `optimizer` on X gives the bits of the single-layer wrappers, and moves the
    first layer's first `blank` rows, whose inputs are zero throughout."""
    net = network((784, 512, 256, 10), seed=seed, momentum="momentum" in optimizer)
    labels = rng.integers(0, 10, size=len(X)).astype(np.int32)
    before = net.get_weights()[0]
    expected = chained_step(net, X, labels, 0.05, **optimizer)
    net.train_step(X, labels, 0.05, **optimizer)
    got = net.get_weights() + (net.get_velocity() if net.has_velocity else [])
    for g, want in zip(got, expected):
        assert np.array_equal(g, want)
    assert not np.array_equal(got[0][:blank], before[:blank])


@pytest.mark.parametrize("isa", _core.ISAS)
def test_every_path_skips_to_the_same_bits(isa, use_isa):
    use_isa(isa)
    net = network((70, 130, 75, 3), seed=7)
    X = zero_column_input(np.random.default_rng(8), 61, 70, "gaps")
    labels = np.random.default_rng(9).integers(0, 3, size=61).astype(np.int32)
    expected_out = chained_forward(net, X)
    expected = chained_step(net, X, labels, 0.05)
    assert np.array_equal(net.forward(X), expected_out)
    net.train_step(X, labels, 0.05)
    for got, want in zip(net.get_weights(), expected):
        assert np.array_equal(got, want)


def one_row_network(sizes, hidden_bias, seed):
    """A network whose hidden layers' ReLU outputs are mostly zero (hidden_bias -1), about half
    zero (0) or never zero (+1) on inputs in [0, 1)."""
    net = network(sizes, seed=seed)
    params = net.get_weights()
    for l in range(1, len(params) - 2, 2):
        params[l] = np.full_like(params[l], hidden_bias)
    net.set_weights(params)
    return net


@pytest.mark.parametrize("isa", _core.ISAS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("hidden_bias", [-1.0, 0.0, 1.0])
def test_one_row_skips_every_zero_input_to_the_same_bits(isa, threads, hidden_bias, use_isa):
    # A pass over one row runs each layer over the nonzero entries of its input alone, scattered
    # or not (mlp_step.c, forward_row_share): the ReLU's zeros as well as the blank pixels.
    use_isa(isa, threads)
    rng = np.random.default_rng(31)
    for sizes in [(784, 512, 256, 10), (70, 130, 75, 3), (33, 17, 2)]:
        net = one_row_network(sizes, hidden_bias, seed=len(sizes) + sizes[0])
        rows = [zero_column_input(rng, 1, sizes[0], pattern) for pattern in PATTERNS]
        dense = rng.uniform(0, 1, size=(1, sizes[0])).astype(np.float32)
        scattered = dense.copy()
        scattered[0, rng.random(sizes[0]) < 0.5] = 0.0
        scattered[0, 1::7] = -0.0
        scattered[0, 2::11] = 1e-40                 # subnormal: not zero, so not skipped
        for x in rows + [dense, scattered]:
            assert np.array_equal(net.forward(x), chained_forward(net, x))
            # and the row's bits within a batch, whose products see all of K
            batch = np.concatenate([x, dense, dense])
            assert np.array_equal(net.forward(batch)[:1], net.forward(x))


def inked_rows(rng, rows, cols):
    """rows x cols like a batch of digits: each row nonzero only in windows of its own (ink),
    inside a blank border, so that tiles of 12 rows, and of 12 columns, are nonzero in far fewer
    columns (rows) than the batch is. With rows that are blank throughout, a run of 12 blank
    rows (a blank tile), columns inked in one row only, -0.0 and subnormals (not zero)."""
    X = np.zeros((rows, cols), np.float32)
    inner = np.arange(cols // 8, cols - cols // 8)
    for r in range(rows):
        for _ in range(rng.integers(1, 4)):
            start = rng.integers(inner[0], inner[-1])
            width = rng.integers(1, 40)
            X[r, start:min(start + width, inner[-1] + 1)] = rng.uniform(0.01, 1, 1)[0]
        X[r, rng.random(cols) < 0.05] = -0.0
    X[5] = 0.0                                   # blank rows
    X[24:36] = 0.0                               # a blank tile of 12 (rows 24-35)
    if rows > 60:
        X[60:72] = -0.0
    X[7, inner[0]] = 1e-40                       # subnormal ink: must not be skipped
    X[9, inner[-1]] = 0.5                        # a column inked in one row only
    return X


@pytest.mark.parametrize("isa", _core.ISAS)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_tiles_keep_to_their_own_ink_to_the_same_bits(isa, threads, use_isa):
    # Each tile of 12 rows of the first layer's input computes only the columns it has a
    # nonzero in, and each tile of 12 pixels of its update only the samples (gemm.h,
    # tile_steps): the same bits as over all of K, on every path and thread count.
    use_isa(isa, threads)
    rng = np.random.default_rng(41)
    for sizes, rows in [((784, 512, 256, 10), 200), ((70, 130, 75, 3), 61),
                        ((300, 40, 5), 13)]:
        net = network(sizes, seed=rows)
        X = inked_rows(rng, rows, sizes[0])
        labels = rng.integers(0, sizes[-1], size=rows).astype(np.int32)
        assert np.array_equal(net.forward(X), chained_forward(net, X))
        for _ in range(2):   # a second step on the moved weights
            expected = chained_step(net, X, labels, 0.05)
            net.train_step(X, labels, 0.05)
            for got, want in zip(net.get_weights(), expected):
                assert np.array_equal(got, want)
    many = inked_rows(rng, 2017, 784)   # block by block (mlp_step.c)
    net = network((784, 512, 256, 10), seed=42)
    assert np.array_equal(net.forward(many), chained_forward(net, many))


@pytest.mark.parametrize("optimizer", [dict(alpha=1e-3), dict(momentum=0.9, nesterov=True)])
@pytest.mark.parametrize("threads", [1, 2])
def test_tiles_keep_to_their_own_ink_with_l2_or_momentum(optimizer, threads):
    # With an L2 penalty or a velocity every row of the update is computed, the blank pixels'
    # tiles included: their lists are empty, and their rows move by the penalty or velocity.
    _core.set_num_threads(threads)
    rng = np.random.default_rng(44)
    step_moves_the_blank_rows(optimizer, inked_rows(rng, 200, 784), rng, seed=43, blank=90)


@pytest.fixture
def mnist_train(mnist_files):
    from fastmlp.datasets import load_mnist
    return load_mnist(download=False)[0]


def test_mnist_digits_train_and_predict_to_the_bits_of_all_columns(mnist_train):
    X, y = mnist_train
    X = X[:400].reshape(400, -1).astype(np.float32) / 255.0
    labels = y[:400].astype(np.int32)
    assert (X == 0).all(axis=0).sum() > 100      # the blank border the scan is for
    net = network((784, 512, 256, 10), seed=10)
    for start in (0, 200):
        batch, batch_labels = X[start:start + 200], labels[start:start + 200]
        expected = chained_step(net, batch, batch_labels, 0.001)
        net.train_step(batch, batch_labels, 0.001)
        for got, want in zip(net.get_weights(), expected):
            assert np.array_equal(got, want)
    assert np.array_equal(net.forward(X), chained_forward(net, X))
    assert np.array_equal(net.forward(X[7:8]), chained_forward(net, X[7:8]))
