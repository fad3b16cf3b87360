"""Memory, floating-point environment, threads and fork.

- RSS and Python-tracked memory stay flat over 300 fit/predict cycles (in a fresh interpreter).
- Importing fastmlp, training and predicting leave the floating-point environment alone:
  subnormal numbers survive (no flush-to-zero / denormals-are-zero, as ``-ffast-math`` would
  set), also inside the kernels' OpenMP threads, and the rounding mode stays round-to-nearest.
- ``predict`` from 8 threads at once equals serial calls; ``fit`` while another thread fits or
  predicts raises a clear ``RuntimeError`` and leaves the model whole.
- After ``fork`` a child can train and predict (libgomp alone would hang there).
"""
import multiprocessing
import sys
import threading
import time

import numpy as np
import pytest

from fastmlp import MLP
from reliability_util import run_python


# ---------------------------------------------------------------------------------------------
# Leaks
# ---------------------------------------------------------------------------------------------

LEAK_SCRIPT = r"""
import gc, tracemalloc, warnings
import numpy as np
from fastmlp import MLP, _core

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

rng = np.random.default_rng(0)
X = rng.normal(size=(128, 32)).astype(np.float32)
y = rng.integers(0, 4, 128)
Xbig = rng.normal(size=(160, 64)).astype(np.float32)

def cycle(i):
    m = MLP(hidden_layer_sizes=(32, 16), learning_rate=0.01, batch_size=64, epochs=1,
            momentum=0.9 if i % 2 else 0.0, shuffle=True, random_state=i)
    m.fit(X, y)
    m.partial_fit(X, y)
    m.predict(X); m.predict_proba(X[:7]); m.decision_function(X[:1])
    try:
        m.predict(X[:, :5])                       # an error path
    except ValueError:
        pass
    try:
        _core.gemm(Xbig, Xbig, np.empty((160, 160), np.float32))
    except ValueError:
        pass
    if i % 10 == 0:                                 # now and then a threaded GEMM
        _core.set_num_threads(2)
        C = np.empty((160, 160), np.float32)
        _core.gemm(Xbig, np.ascontiguousarray(Xbig.T), C)
        _core.set_num_threads(1)

_core.set_num_threads(1)    # OpenMP threads waiting for a busy core would only cost time
for i in range(30):                               # warm up: caches, allocator pools
    cycle(i)
gc.collect()
tracemalloc.start()
rss0, (traced0, _) = rss(), tracemalloc.get_traced_memory()
for i in range(300):
    cycle(i)
gc.collect()
rss1, (traced1, _) = rss(), tracemalloc.get_traced_memory()
print("rss growth", rss1 - rss0, "traced growth", traced1 - traced0)
assert traced1 - traced0 < 32 * 1024, (traced0, traced1)   # ~100 bytes a cycle
assert rss1 - rss0 < 4 * 2**20, (rss0, rss1)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_memory_is_flat_over_300_fit_predict_cycles():
    run_python(LEAK_SCRIPT, timeout=300)


# ---------------------------------------------------------------------------------------------
# Floating-point environment
# ---------------------------------------------------------------------------------------------

FP_SCRIPT = r"""
import ctypes, ctypes.util
import numpy as np

libm = ctypes.CDLL(ctypes.util.find_library("m"))
FE_TONEAREST = libm.fegetround()

def check(where):
    tiny = np.array([1e-38], np.float32)
    assert (tiny * np.float32(1e-3))[0] != 0, f"{where}: subnormal results flushed to zero (FTZ)"
    sub = np.array([1e-40], np.float32)
    assert (sub * np.float32(1.0))[0] != 0, f"{where}: subnormal inputs read as zero (DAZ)"
    assert np.float64(5e-324) / 2 == 0 and np.float64(5e-324) != 0, where
    assert libm.fegetround() == FE_TONEAREST, f"{where}: rounding mode changed"

check("before import")
import fastmlp
from fastmlp import MLP, _core
check("after import")

rng = np.random.default_rng(0)
X = rng.normal(size=(400, 64)).astype(np.float32)
y = rng.integers(0, 3, 400)
m = MLP(hidden_layer_sizes=(64,), learning_rate=0.01, batch_size=100, epochs=2,
        random_state=0, n_threads=2).fit(X, y)
check("after fit")
m.predict(X)
check("after predict")

# The kernels themselves keep subnormals, on one thread and in the OpenMP threads.
A = np.full((64, 64), 1e-20, np.float32)
for threads in (1, 2):
    _core.set_num_threads(threads)
    C = np.zeros((64, 64), np.float32)
    _core.gemm(A, A, C)
    assert np.all(C > 0), f"gemm with {threads} threads flushed subnormal results to zero"
    assert np.allclose(C, 64e-40, rtol=1e-3), C[0, 0]
    out = np.zeros((64, 64), np.float32)
    _core.dense_forward(A, A, np.zeros(64, np.float32), out, True)
    assert np.all(out > 0), f"dense_forward with {threads} threads flushed subnormals"
check("after the kernels")
print("ok")
"""


def test_floating_point_environment_is_untouched_and_subnormals_survive():
    assert run_python(FP_SCRIPT).stdout.strip().endswith("ok")


def test_no_fast_math_in_the_build_flags():
    import fastmlp._core as core
    with open(core.__file__, "rb") as f:
        binary = f.read()
    # crtfastmath.o (linked in by -ffast-math / -Ofast) sets FTZ/DAZ at load time.
    assert b"set_fast_math" not in binary


# ---------------------------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_and_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 64)).astype(np.float32)
    y = rng.integers(0, 5, 3000)
    model = MLP(hidden_layer_sizes=(96, 48), learning_rate=0.01, batch_size=100, epochs=1,
                random_state=0).fit(X, y)
    return model, X, y


def test_predict_from_8_threads_equals_serial(model_and_data):
    model, X, _ = model_and_data
    slices = [slice(i * 300, i * 300 + 700) for i in range(8)]
    serial = [model.decision_function(X[s]) for s in slices] + [model.decision_function(X)]
    results = {}
    barrier = threading.Barrier(8)

    def work(i):
        barrier.wait()
        out = []
        for _ in range(5):
            out.append(model.decision_function(X[slices[i]]))
            out.append(model.decision_function(X))
        results[i] = out

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 8
    for i, out in results.items():
        for k, got in enumerate(out):
            expected = serial[i] if k % 2 == 0 else serial[-1]
            assert np.array_equal(got, expected), (i, k)


def test_predict_releases_the_gil():
    """While one thread predicts a large batch, another keeps running Python code."""
    rng = np.random.default_rng(0)
    model = MLP(hidden_layer_sizes=(512, 256), batch_size=100, epochs=1, random_state=0,
                n_threads=1).fit(rng.random((200, 784), dtype=np.float32), np.arange(200) % 10)
    X = rng.random((40000, 784), dtype=np.float32)
    start = time.perf_counter()
    model.decision_function(X)
    alone = time.perf_counter() - start
    done = threading.Event()
    worker = threading.Thread(target=lambda: (model.decision_function(X), done.set()))
    ticks, last, gap = 0, time.perf_counter(), 0.0
    worker.start()
    while not done.is_set():
        now = time.perf_counter()
        gap = max(gap, now - last)
        last = now
        ticks += 1
    worker.join()
    # Holding the GIL through the C call would stall this loop for the whole call.
    assert gap < max(0.5 * alone, 0.05), (gap, alone)
    assert ticks > 1000


def test_fit_while_another_thread_fits_or_predicts_raises_clearly(model_and_data):
    _, X, y = model_and_data
    model = MLP(hidden_layer_sizes=(16,), learning_rate=0.01, batch_size=100, epochs=3,
                random_state=0)
    model.fit(X, y)
    inside, release = threading.Event(), threading.Event()

    class Pause:
        def __call__(self, epoch, logs):
            return False

        def on_batch_end(self, epoch, step, loss):
            if epoch == 1 and step == 3:
                inside.set()
                release.wait(60)

    errors = []

    def train():
        try:
            model.fit(X, y)
        except Exception as exc:   # pragma: no cover - reported below
            errors.append(exc)

    model.callbacks = [Pause()]
    worker = threading.Thread(target=train)
    worker.start()
    try:
        assert inside.wait(60)
        with pytest.raises(RuntimeError, match="being fitted in another thread"):
            model.predict(X)
        with pytest.raises(RuntimeError, match="being fitted in another thread"):
            model.fit(X, y)
        with pytest.raises(RuntimeError, match="being fitted in another thread"):
            model.partial_fit(X, y)
    finally:
        release.set()
        worker.join(60)
    assert not errors and not worker.is_alive()
    assert len(model.loss_curve_) == 3              # the first fit ran to its end, whole
    model.callbacks = None
    assert np.isfinite(model.decision_function(X)).all()
    model.fit(X[:200], y[:200])                      # usable again once fit returned


def test_predict_and_fit_hammered_from_threads_never_corrupt(model_and_data):
    _, X, y = model_and_data
    model = MLP(hidden_layer_sizes=(32,), learning_rate=0.01, batch_size=50, epochs=2,
                random_state=0).fit(X[:500], y[:500])
    stop = threading.Event()
    outcomes = {"ok": 0, "busy": 0}
    failures = []

    def predictor():
        while not stop.is_set():
            try:
                p = model.predict(X[:300])
                assert p.shape == (300,) and np.isin(p, model.classes_).all()
                outcomes["ok"] += 1
            except RuntimeError as exc:
                assert "being fitted" in str(exc)
                outcomes["busy"] += 1
            except Exception as exc:  # pragma: no cover - reported below
                failures.append(exc)
                return

    def fitter():
        for _ in range(5):
            try:
                model.partial_fit(X[:500], y[:500])
            except RuntimeError as exc:
                assert "being fitted" in str(exc)
            except Exception as exc:  # pragma: no cover
                failures.append(exc)

    threads = [threading.Thread(target=predictor) for _ in range(3)]
    threads += [threading.Thread(target=fitter) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads[3:]:
        t.join(120)
    stop.set()
    for t in threads[:3]:
        t.join(60)
    assert not failures, failures
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert outcomes["ok"] + outcomes["busy"] > 0


# ---------------------------------------------------------------------------------------------
# fork
# ---------------------------------------------------------------------------------------------

def _child_train_and_predict(queue, X, y, n_threads):
    from fastmlp import MLP as ChildMLP
    m = ChildMLP(hidden_layer_sizes=(64,), learning_rate=0.01, batch_size=100, epochs=2,
                 random_state=0, n_threads=n_threads).fit(X, y)
    queue.put(m.decision_function(X))


@pytest.mark.skipif(not hasattr(multiprocessing, "get_context") or sys.platform == "win32",
                    reason="needs the fork start method")
@pytest.mark.parametrize("n_threads", [None, 2])
def test_child_after_fork_trains_and_predicts(n_threads):
    try:
        ctx = multiprocessing.get_context("fork")
    except ValueError:
        pytest.skip("no fork start method")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, 128)).astype(np.float32)
    y = rng.integers(0, 4, 800)
    # The parent uses OpenMP parallel regions first: that is what breaks libgomp in a child.
    parent = MLP(hidden_layer_sizes=(64,), learning_rate=0.01, batch_size=100, epochs=2,
                 random_state=0, n_threads=2).fit(X, y)
    expected = parent.decision_function(X)
    queue = ctx.Queue()
    child = ctx.Process(target=_child_train_and_predict, args=(queue, X, y, n_threads))
    child.start()
    try:
        got = queue.get(timeout=60)
    except Exception:
        got = None
    child.join(30)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail("the forked child hung in the kernels (libgomp after fork)")
    assert child.exitcode == 0 and got is not None
    assert np.array_equal(got, expected)   # same seed: same model, whatever the thread count
