"""Bad input gets a clear error, and nothing is computed from it; odd memory layouts and batching
change nothing.

- The estimator rejects NaN/inf, wrong shapes and dtypes, bad labels and bad parameters with a
  ValueError/TypeError/MemoryError whose message says what was wrong. A prediction's NaN or
  infinity is found by the forward pass itself, block by block, wherever it is.
- Every entry point of ``fastmlp._core`` re-checks the buffers it is handed; those direct calls
  run in a subprocess, so a crash fails the test instead of killing the run.
- Non-contiguous, Fortran-order, negative-stride, unaligned, read-only and memory-mapped inputs
  give exactly the predictions of a contiguous copy, and ``predict`` does not depend on batching.
"""
import textwrap

import numpy as np
import pytest

from fastmlp import MLP, _core
from reliability_util import run_python

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 6)).astype(np.float32)
Y = np.arange(60) % 3


@pytest.fixture(scope="module")
def fitted():
    return MLP(hidden_layer_sizes=(8,), learning_rate=0.01, batch_size=16, epochs=2,
               random_state=0).fit(X, Y)


def small(**params):
    kw = dict(hidden_layer_sizes=(4,), learning_rate=0.01, batch_size=16, epochs=1, random_state=0)
    kw.update(params)
    return MLP(**kw)


# ---------------------------------------------------------------------------------------------
# The estimator's checks
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])   # float32: no conversion
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e39])
@pytest.mark.parametrize("method", ["fit", "partial_fit", "predict", "predict_proba",
                                    "decision_function"])
def test_non_finite_X_is_rejected(fitted, value, method, dtype):
    bad = X.copy().astype(np.float64)
    bad[7, 2] = value                      # 1e39 overflows to inf in float32
    with np.errstate(over="ignore"):
        bad = bad.astype(dtype)
    with pytest.raises(ValueError, match="NaN or infinity"):
        if method in ("fit", "partial_fit"):
            getattr(small(), method)(bad, Y)
        else:
            getattr(fitted, method)(bad)


@pytest.fixture(scope="module")
def wide_net():
    """A network big enough for two threads on thousands of rows (a pass block by block)."""
    rng = np.random.default_rng(1)
    net = _core.Network([64, 32, 10], 16)
    net.set_weights([rng.normal(size=(64, 32)), rng.normal(size=32), rng.normal(size=(32, 10)),
                     rng.normal(size=10)])
    return net


@pytest.mark.usefixtures("restore_isa_and_threads")
@pytest.mark.parametrize("isa", _core.build_info()["isa_available"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("rows", [1, 7, 5013])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_forward_finds_a_non_finite_value_wherever_it_is(wide_net, isa, threads, rows, where,
                                                         value):
    # 5013 rows go block by block, each block checked as layer 0 packs it, or row by row
    # before it when it is not packed (AVX2, generic, and the last block on AVX-512: 1 row on
    # 2 threads, 23 on 1), on the thread that computes it; fewer rows are checked first.
    _core.set_isa(isa)
    _core.set_num_threads(threads)
    X = np.random.default_rng(2).uniform(size=(rows, 64)).astype(np.float32)
    i = {"first": 0, "middle": rows // 2, "last": rows - 1}[where]
    j = {"first": 0, "middle": 31, "last": 63}[where]
    clean = X.copy()
    X[i, j] = value
    with pytest.raises(_core.NonFiniteInput, match="NaN or infinity"):
        wide_net.forward(X, check_finite=True)
    checked = wide_net.forward(clean, check_finite=True)
    assert np.array_equal(checked, wide_net.forward(clean))
    wide_net.forward(X)   # unchecked: the caller vouches for X, nothing is raised


def test_a_non_finite_value_in_a_large_prediction_is_rejected():
    rng = np.random.default_rng(3)
    Xw = rng.uniform(size=(300, 64)).astype(np.float32)
    model = MLP(hidden_layer_sizes=(32,), batch_size=50, epochs=1, random_state=0)
    model.fit(Xw, np.arange(300) % 4)
    big = rng.uniform(size=(6000, 64)).astype(np.float32)
    expected = model.predict(big)
    bad = big.copy()
    bad[4321, 17] = np.nan
    for method in ("predict", "predict_proba", "decision_function"):
        with pytest.raises(ValueError, match="Input X contains NaN or infinity"):
            getattr(model, method)(bad)
    assert np.array_equal(model.predict(big), expected)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function", "score"])
def test_wrong_number_of_features(fitted, method):
    args = (X[:, :5],) + ((Y,) if method == "score" else ())
    with pytest.raises(ValueError, match=r"5 features.*expecting 6"):
        getattr(fitted, method)(*args)


def test_wrong_number_of_features_in_partial_fit(fitted):
    model = small().partial_fit(X, Y)
    with pytest.raises(ValueError, match=r"7 features.*expecting 6"):
        model.partial_fit(np.hstack([X, X[:, :1]]), Y)


@pytest.mark.parametrize("shape,words", [((0, 6), "0 sample"), ((5, 0), "0 feature"),
                                         ((6,), "2-D"), ((2, 3, 2, 5), "2-D"), ((), "2-D")])
def test_empty_and_wrongly_shaped_X(fitted, shape, words):
    bad = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match=words):
        small().fit(bad, np.arange(shape[0] if len(shape) else 1) % 2 if shape else [0])
    with pytest.raises(ValueError, match=words):
        fitted.predict(bad)


def test_images_are_flattened():
    images = RNG.random((40, 7, 5)).astype(np.float32)
    labels = np.arange(40) % 2
    a = small(epochs=2).fit(images, labels)
    b = small(epochs=2).fit(images.reshape(40, 35), labels)
    assert a.n_features_in_ == 35
    assert np.array_equal(a.decision_function(images), b.decision_function(images.reshape(40, 35)))


@pytest.mark.parametrize("bad,error,words", [
    (np.array([["a"] * 6] * 60), TypeError, "dtype"),
    (X.astype(np.complex64), ValueError, "Complex"),
    (np.array([[object()] * 6] * 60, dtype=object), (TypeError, ValueError), None),
    (np.zeros((60, 6), "datetime64[s]"), TypeError, "dtype"),
    (np.zeros((60, 6), "timedelta64[s]"), TypeError, "dtype"),
    (X.astype("V4"), TypeError, "dtype"),
])
def test_non_numeric_dtypes_are_rejected(fitted, bad, error, words):
    with pytest.raises(error, match=words):
        small().fit(bad, Y)
    with pytest.raises(error, match=words):
        fitted.predict(bad)


def test_object_array_of_numbers_is_accepted(fitted):
    assert np.array_equal(fitted.predict(X.astype(object)), fitted.predict(X))


@pytest.mark.parametrize("y,words", [
    (Y[:-1], "59 labels"),
    (np.zeros(60), "only 1 class"),
    (np.full(60, np.nan), "NaN or infinity"),
    (Y + 0.5, "continuous"),
    (Y.reshape(2, 30), "1d array"),
    (None, "requires y"),
    (Y.astype(np.complex128), "Complex"),
])
def test_bad_labels(y, words):
    with pytest.raises(ValueError, match=words):
        small().fit(X, y)


@pytest.mark.parametrize("param,value", [
    ("learning_rate", 0), ("learning_rate", -0.1), ("learning_rate", np.nan),
    ("learning_rate", np.inf), ("learning_rate", "fast"),
    ("batch_size", 0), ("batch_size", -5), ("batch_size", 2.5), ("batch_size", np.nan),
    ("batch_size", True),
    ("epochs", 0), ("epochs", -1), ("epochs", np.inf), ("epochs", 1.0),
    ("momentum", 1.0), ("momentum", np.nan), ("alpha", -1.0), ("alpha", np.inf),
    ("hidden_layer_sizes", (0,)), ("hidden_layer_sizes", (-4,)), ("hidden_layer_sizes", (3, 0)),
    ("hidden_layer_sizes", (2.5,)), ("hidden_layer_sizes", "ab"), ("hidden_layer_sizes", None),
    ("n_threads", 0), ("loss", "hinge"),
])
def test_bad_parameters_say_what_is_expected(param, value):
    with pytest.raises(ValueError, match=param.split("_")[0]) as info:
        small(**{param: value}).fit(X, Y)
    message = str(info.value)
    assert "must" in message or "one of" in message, message


@pytest.mark.parametrize("hidden", [(2 ** 40,), (2 ** 62,), (2 ** 64,), (2 ** 20, 2 ** 20),
                                    (8, 2 ** 63 - 1)])
def test_impossibly_large_hidden_layers_raise_memory_or_value_error(hidden):
    with pytest.raises((MemoryError, ValueError)) as info:
        small(hidden_layer_sizes=hidden).fit(X, Y)
    assert str(info.value)


@pytest.mark.parametrize("batch_size", [2 ** 63 - 1, 2 ** 80])
def test_impossibly_large_batch_size_raises(batch_size):
    with pytest.raises(ValueError):
        small(batch_size=batch_size).fit(X, Y)


def test_a_batch_size_beyond_the_data_sizes_the_buffers_by_the_data():
    """Buffers are sized by min(batch_size, n_samples): 2**40 trains as one batch of all."""
    huge = small(batch_size=2 ** 40).fit(X, Y)
    whole = small(batch_size=len(X)).fit(X, Y)
    assert huge._network.max_batch == len(X)
    for a, b in zip(huge.get_weights(), whole.get_weights()):
        assert np.array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Direct calls of the compiled entry points with wrong buffers (each in a subprocess)
# ---------------------------------------------------------------------------------------------

PRELUDE = """
import numpy as np
from fastmlp import _core
f32 = lambda *s: np.zeros(s, np.float32)
i32 = lambda *s: np.zeros(s, np.int32)
failures = []
def expect(name, call):
    print("case", name, flush=True)          # the last case printed is the one that crashed
    try:
        call()
    except (ValueError, TypeError, MemoryError, BufferError, OverflowError) as exc:
        return
    failures.append(name)
"""

CASES = {
    "gemm": """
expect("inner mismatch", lambda: _core.gemm(f32(3, 4), f32(5, 2), f32(3, 2)))
expect("C too small", lambda: _core.gemm(f32(3, 4), f32(4, 2), f32(2, 2)))
expect("C too wide", lambda: _core.gemm(f32(3, 4), f32(4, 2), f32(3, 3)))
expect("trans_a mismatch", lambda: _core.gemm(f32(3, 4), f32(4, 2), f32(3, 2), trans_a=True))
expect("trans_b mismatch", lambda: _core.gemm(f32(3, 4), f32(4, 2), f32(3, 2), trans_b=True))
expect("float64", lambda: _core.gemm(np.zeros((3, 4)), f32(4, 2), f32(3, 2)))
expect("int out", lambda: _core.gemm(f32(3, 4), f32(4, 2), np.zeros((3, 2), np.int32)))
expect("strided A", lambda: _core.gemm(f32(3, 8)[:, ::2], f32(4, 2), f32(3, 2)))
expect("fortran B", lambda: _core.gemm(f32(3, 4), np.asfortranarray(f32(4, 2)), f32(3, 2)))
expect("1-D A", lambda: _core.gemm(f32(12), f32(4, 2), f32(3, 2)))
expect("3-D A", lambda: _core.gemm(f32(3, 4, 1), f32(4, 2), f32(3, 2)))
ro = f32(3, 2); ro.flags.writeable = False
expect("read-only C", lambda: _core.gemm(f32(3, 4), f32(4, 2), ro))
expect("None", lambda: _core.gemm(None, f32(4, 2), f32(3, 2)))
expect("list", lambda: _core.gemm([[1.0]], f32(1, 1), f32(1, 1)))
""",
    "dense_forward": """
expect("W rows", lambda: _core.dense_forward(f32(3, 4), f32(5, 2), f32(2), f32(3, 2), True))
expect("b length", lambda: _core.dense_forward(f32(3, 4), f32(4, 2), f32(3), f32(3, 2), True))
expect("out shape", lambda: _core.dense_forward(f32(3, 4), f32(4, 2), f32(2), f32(2, 2), False))
expect("out transposed", lambda: _core.dense_forward(f32(3, 4), f32(4, 2), f32(2), f32(2, 3), False))
expect("no columns", lambda: _core.dense_forward(f32(3, 0), f32(0, 2), f32(2), f32(3, 2), False))
expect("b 2-D", lambda: _core.dense_forward(f32(3, 4), f32(4, 2), f32(1, 2), f32(3, 2), False))
expect("float64 W", lambda: _core.dense_forward(f32(3, 4), np.zeros((4, 2)), f32(2), f32(3, 2), False))
expect("strided b", lambda: _core.dense_forward(f32(3, 4), f32(4, 2), f32(4)[::2], f32(3, 2), False))
""",
    "dense_backward_input": """
expect("W cols", lambda: _core.dense_backward_input(f32(3, 2), f32(4, 3), None, f32(3, 4)))
expect("dA shape", lambda: _core.dense_backward_input(f32(3, 2), f32(4, 2), None, f32(3, 5)))
expect("mask shape", lambda: _core.dense_backward_input(f32(3, 2), f32(4, 2), f32(2, 4), f32(3, 4)))
expect("mask dtype", lambda: _core.dense_backward_input(f32(3, 2), f32(4, 2), np.zeros((3, 4)), f32(3, 4)))
expect("mask strided", lambda: _core.dense_backward_input(f32(3, 2), f32(4, 2), f32(3, 8)[:, ::2], f32(3, 4)))
expect("no columns", lambda: _core.dense_backward_input(f32(3, 0), f32(4, 0), None, f32(3, 4)))
""",
    "dense_update": """
expect("dZ rows", lambda: _core.dense_update(f32(4, 2), f32(2), f32(3, 4), f32(5, 2), 0.1))
expect("W shape", lambda: _core.dense_update(f32(4, 3), f32(2), f32(3, 4), f32(3, 2), 0.1))
expect("b length", lambda: _core.dense_update(f32(4, 2), f32(3), f32(3, 4), f32(3, 2), 0.1))
expect("one velocity", lambda: _core.dense_update(f32(4, 2), f32(2), f32(3, 4), f32(3, 2), 0.1, momentum=0.9, vW=f32(4, 2)))
expect("velocity shape", lambda: _core.dense_update(f32(4, 2), f32(2), f32(3, 4), f32(3, 2), 0.1, momentum=0.9, vW=f32(2, 4), vb=f32(2)))
expect("vb shape", lambda: _core.dense_update(f32(4, 2), f32(2), f32(3, 4), f32(3, 2), 0.1, momentum=0.9, vW=f32(4, 2), vb=f32(5)))
expect("nan lr", lambda: _core.dense_update(f32(4, 2), f32(2), f32(3, 4), f32(3, 2), float("nan")))
expect("negative lr", lambda: _core.dense_update(f32(4, 2), f32(2), f32(3, 4), f32(3, 2), -1.0))
expect("momentum 1", lambda: _core.dense_update(f32(4, 2), f32(2), f32(3, 4), f32(3, 2), 0.1, momentum=1.0))
expect("empty", lambda: _core.dense_update(f32(4, 2), f32(2), f32(0, 4), f32(0, 2), 0.1))
ro = f32(4, 2); ro.flags.writeable = False
expect("read-only W", lambda: _core.dense_update(ro, f32(2), f32(3, 4), f32(3, 2), 0.1))
""",
    "loss_grad": """
expect("labels length", lambda: _core.loss_grad(f32(3, 2), i32(4), f32(3, 2)))
expect("dout shape", lambda: _core.loss_grad(f32(3, 2), i32(3), f32(3, 3)))
expect("label too big", lambda: _core.loss_grad(f32(3, 2), np.array([0, 2, 1], np.int32), f32(3, 2)))
expect("negative label", lambda: _core.loss_grad(f32(3, 2), np.array([0, -1, 1], np.int32), f32(3, 2), "cross_entropy"))
expect("int64 labels", lambda: _core.loss_grad(f32(3, 2), np.zeros(3, np.int64), f32(3, 2)))
expect("unknown loss", lambda: _core.loss_grad(f32(3, 2), i32(3), f32(3, 2), "hinge"))
expect("empty", lambda: _core.loss_grad(f32(0, 2), i32(0), f32(0, 2)))
""",
    "Network": """
expect("one width", lambda: _core.Network((4,), 8))
expect("zero width", lambda: _core.Network((4, 0, 2), 8))
expect("negative width", lambda: _core.Network((4, -3, 2), 8))
expect("huge width", lambda: _core.Network((4, 2 ** 62, 2), 8))
expect("beyond ssize_t", lambda: _core.Network((4, 2 ** 64, 2), 8))
expect("huge batch", lambda: _core.Network((4, 3, 2), 2 ** 62))
expect("zero batch", lambda: _core.Network((4, 3, 2), 0))
net = _core.Network((4, 3, 2), 8, momentum=True)
expect("batch too big", lambda: net.train_step(f32(9, 4), i32(9), 0.1))
expect("empty batch", lambda: net.train_step(f32(0, 4), i32(0), 0.1))
expect("features", lambda: net.train_step(f32(8, 5), i32(8), 0.1))
expect("labels length", lambda: net.train_step(f32(8, 4), i32(7), 0.1))
expect("label range", lambda: net.train_step(f32(2, 4), np.array([0, 2], np.int32), 0.1))
expect("float64 X", lambda: net.train_step(np.zeros((8, 4)), i32(8), 0.1))
expect("strided X", lambda: net.train_step(f32(8, 8)[:, ::2], i32(8), 0.1))
expect("bad lr", lambda: net.train_step(f32(8, 4), i32(8), float("inf")))
expect("bad loss", lambda: net.train_step(f32(8, 4), i32(8), 0.1, "hinge"))
rows = np.array([3, 0, 3], np.int64)
expect("rows: too many", lambda: net.train_step_rows(f32(20, 4), i32(20), np.zeros(9, np.int64), 0.1))
expect("rows: none", lambda: net.train_step_rows(f32(20, 4), i32(20), np.zeros(0, np.int64), 0.1))
expect("rows: features", lambda: net.train_step_rows(f32(20, 5), i32(20), rows, 0.1))
expect("rows: labels length", lambda: net.train_step_rows(f32(20, 4), i32(19), rows, 0.1))
expect("rows: past the end", lambda: net.train_step_rows(f32(20, 4), i32(20), np.array([0, 20], np.int64), 0.1))
expect("rows: negative", lambda: net.train_step_rows(f32(20, 4), i32(20), np.array([0, -1], np.int64), 0.1))
expect("rows: int32", lambda: net.train_step_rows(f32(20, 4), i32(20), rows.astype(np.int32), 0.1))
expect("rows: strided", lambda: net.train_step_rows(f32(20, 4), i32(20), np.zeros(6, np.int64)[::2], 0.1))
expect("rows: label range", lambda: net.train_step_rows(f32(4, 4), np.array([0, 0, 0, 2], np.int32), rows, 0.1))
expect("rows: bad loss", lambda: net.train_step_rows(f32(20, 4), i32(20), rows, 0.1, "hinge"))
plain = _core.Network((4, 3, 2), 8)
expect("rows: momentum without velocity", lambda: plain.train_step_rows(f32(20, 4), i32(20), rows, 0.1, momentum=0.9))
expect("momentum without velocity", lambda: plain.train_step(f32(8, 4), i32(8), 0.1, momentum=0.9))
expect("forward features", lambda: net.forward(f32(3, 5)))
expect("forward 1-D", lambda: net.forward(f32(4)))
expect("set_weights count", lambda: net.set_weights([f32(4, 3), f32(3)]))
expect("set_weights shape", lambda: net.set_weights([f32(3, 4), f32(3), f32(3, 2), f32(2)]))
expect("set_weights nan", lambda: net.set_weights([np.full((4, 3), np.nan), f32(3), f32(3, 2), f32(2)]))
expect("set_weights strings", lambda: net.set_weights([np.full((4, 3), "a"), f32(3), f32(3, 2), f32(2)]))
expect("set_velocity shape", lambda: net.set_velocity([f32(3, 4), f32(3), f32(3, 2), f32(2)]))
expect("set_velocity on plain", lambda: plain.set_velocity([f32(4, 3), f32(3), f32(3, 2), f32(2)]))
assert np.isfinite(net.forward(np.ones((5, 4), np.float32))).all()
""",
}


@pytest.mark.parametrize("entry", sorted(CASES))
def test_direct_kernel_calls_with_wrong_buffers_raise(entry):
    script = PRELUDE + textwrap.dedent(CASES[entry]) + "\nprint('failures', failures)\n" \
        "raise SystemExit(1 if failures else 0)\n"
    result = run_python(script, timeout=120, check=False)
    last = [line for line in result.stdout.splitlines() if line.startswith("case")][-1:]
    assert result.returncode == 0, (f"{entry}: exit {result.returncode} after {last}\n"
                                    f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


# ---------------------------------------------------------------------------------------------
# Layouts and batching
# ---------------------------------------------------------------------------------------------

def layouts(base, tmp_path):
    """Views of ``base`` (n, d) float32 in every memory layout, paired with what they hold."""
    n, d = base.shape
    wide = np.zeros((n, 2 * d), np.float32)
    wide[:, ::2] = base
    yield "column-strided", wide[:, ::2], base
    yield "fortran", np.asfortranarray(base), base
    rows = np.zeros((2 * n, d), np.float32)
    rows[::2] = base
    yield "row-strided", rows[::2], base
    yield "negative stride", base[::-1], base[::-1]
    yield "negative column stride", base[:, ::-1], base[:, ::-1]
    raw = np.zeros(base.nbytes + 1, np.uint8)
    unaligned = np.frombuffer(raw.data, dtype=np.float32, count=base.size, offset=1).reshape(n, d)
    assert not unaligned.flags.aligned
    unaligned.flags.writeable = True
    unaligned[...] = base
    yield "unaligned", unaligned, base
    readonly = base.copy()
    readonly.flags.writeable = False
    yield "read-only", readonly, base
    path = tmp_path / "X.dat"
    base.tofile(path)
    yield "memmap", np.memmap(path, dtype=np.float32, mode="r", shape=(n, d)), base
    yield "float64", base.astype(np.float64), base
    yield "big-endian", base.astype(">f4"), base
    yield "list", base.tolist(), base


def test_every_layout_predicts_exactly_like_a_contiguous_copy(fitted, tmp_path):
    base = RNG.normal(size=(37, 6)).astype(np.float32)
    for name, view, content in layouts(base, tmp_path):
        expected = fitted.decision_function(np.ascontiguousarray(content))
        assert np.array_equal(fitted.decision_function(view), expected), name
        assert np.array_equal(fitted.predict(view), fitted.predict(np.ascontiguousarray(content))), name


def test_every_layout_trains_exactly_like_a_contiguous_copy(tmp_path):
    base = RNG.normal(size=(37, 6)).astype(np.float32)
    labels = np.arange(37) % 3
    for name, view, content in layouts(base, tmp_path):
        a = small(epochs=2).fit(view, labels)
        b = small(epochs=2).fit(np.ascontiguousarray(content), labels)
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            assert np.array_equal(wa, wb), name


def test_input_arrays_are_never_modified(fitted):
    Xc, yc = X.copy(), Y.copy()
    small().fit(X, Y)
    fitted.predict(X)
    assert np.array_equal(X, Xc) and np.array_equal(Y, yc)


@pytest.mark.parametrize("hidden", [(8,), (33, 17)])
def test_predictions_do_not_depend_on_batching(hidden):
    data = RNG.normal(size=(4200, 6)).astype(np.float32)    # more rows than one C chunk (4096)
    model = small(hidden_layer_sizes=hidden, epochs=1).fit(X, Y)
    full = model.decision_function(data)
    for i in list(range(0, 40)) + [4095, 4096, 4097, 4199]:
        assert np.array_equal(model.decision_function(data[i:i + 1])[0], full[i]), i
    for size in (2, 3, 7, 64, 1000, 4097):
        parts = [model.decision_function(data[s:s + size]) for s in range(0, len(data), size)]
        assert np.array_equal(np.concatenate(parts), full), size
    assert np.array_equal(model.predict(data[:1]), model.predict(data)[:1])


def test_a_network_larger_than_physical_memory_raises_before_allocating(monkeypatch):
    """Where the system overcommits memory, numpy.empty of a huge network would succeed and the
    process be killed later; the estimator checks against physical memory first."""
    from fastmlp import _safety
    monkeypatch.setattr(_safety, "physical_memory", lambda: 2 ** 30)
    with pytest.raises(MemoryError, match=r"GiB.*hidden_layer_sizes"):
        small(hidden_layer_sizes=(2 ** 27,)).fit(X, Y)     # 3 GiB of weights for 6 features
    small(hidden_layer_sizes=(64,)).fit(X, Y)               # a normal network still fits


def test_the_memory_check_counts_what_each_activation_and_rule_keeps(monkeypatch):
    """gelu keeps every hidden layer's pre-activation, and Adam two moments per weight: the
    check before allocating counts them, so a network that fits only without them is refused."""
    from fastmlp import _safety
    sizes, batch = (10, 1000, 1000, 3), 1000
    need = {}
    for activation in ("relu", "gelu"):
        for rule in (0, 1, 2):
            low, high = 0, 2 ** 40      # the least memory the check accepts, by bisection
            while high - low > 1:
                mid = (low + high) // 2
                monkeypatch.setattr(_safety, "physical_memory", lambda mid=mid: mid)
                try:
                    _safety.check_network_memory(sizes, batch, rule, activation)
                    high = mid
                except MemoryError:
                    low = mid
            need[activation, rule] = high
    hidden = batch * (1000 + 1000)
    assert need["gelu", 0] - need["relu", 0] == 4 * hidden
    weights = 10 * 1000 + 1000 * 1000 + 1000 * 3
    assert need["relu", 2] - need["relu", 0] == 2 * 8 * weights
    assert need["relu", 1] - need["relu", 0] == 8 * weights
