"""What the compiled core must guarantee whatever a caller does (issue 25, items 1, 3, 11).

They check the lead's changes to the C core and the binding (per-call thread counts, bounds
checked in C, FM_ERR_NOT_FINITE as FloatingPointError). Each runs in a child, so that a
regression that crashes the interpreter fails one test instead of the run.
"""
import pytest

from limited import run_limited

NET = ("import numpy as np, threading, time\n"
       "from fastmlp import _core\n"
       "net = _core.Network([8, 16, 3], 64, momentum=True)\n"
       "rng = np.random.default_rng(0)\n"
       "X = rng.random((64, 8), dtype=np.float32)\n"
       "labels = (np.arange(64) % 3).astype(np.int32)\n"
       "rows = np.arange(64, dtype=np.int64)\n")


@pytest.mark.parametrize("target, value", [("labels", 2 ** 30), ("rows", 2 ** 40)])
def test_a_buffer_flipped_by_another_thread_never_crashes(target, value):
    """Item 3: a second thread writes an out-of-range label or row while steps run. The C side
    bounds-checks what it indexes with (or the binding copies what it checked): each step
    either trains or raises ValueError, and the process survives."""
    code = NET + f"""
stop = False
def flip():
    while not stop:
        {target}[0] = {value}
        {target}[0] = 0
t = threading.Thread(target=flip)
t.start()
end = time.time() + 2
errors = 0
try:
    while time.time() < end:
        try:
            net.train_step_rows(X, labels, rows, 0.01)
            net.train_step(X, labels, 0.01)
        except ValueError:
            errors += 1
finally:
    stop = True
    t.join()
"""
    run_limited(code, timeout=30).expect(None)


def test_set_velocity_rejects_nan():
    code = NET + ("v = net.get_velocity()\nv[0][0, 0] = np.nan\n"
                  "net.set_velocity(v)\n")
    run_limited(code).expect(ValueError)


def test_dense_update_with_momentum_needs_velocity_buffers():
    code = ("import numpy as np\nfrom fastmlp import _core\n"
            "W = np.ones((4, 3), np.float32); b = np.zeros(3, np.float32)\n"
            "A = np.ones((2, 4), np.float32); dZ = np.ones((2, 3), np.float32)\n"
            "_core.dense_update(W, b, A, dZ, 0.1, momentum=0.9)\n")
    run_limited(code).expect(ValueError, match="momentum")


@pytest.mark.parametrize("name", ["lr", "alpha"])
def test_dense_update_rejects_hyperparameters_beyond_float32(name):
    args = "lr=1e39" if name == "lr" else "lr=0.1, alpha=1e39"
    code = ("import numpy as np\nfrom fastmlp import _core\n"
            "W = np.ones((4, 3), np.float32); b = np.zeros(3, np.float32)\n"
            "A = np.ones((2, 4), np.float32); dZ = np.ones((2, 3), np.float32)\n"
            "try:\n"
            f"    _core.dense_update(W, b, A, dZ, {args})\n"
            "finally:\n"
            "    assert np.isfinite(W).all() and np.isfinite(b).all(), 'W written non-finite'\n")
    run_limited(code).expect(ValueError)


@pytest.mark.parametrize("kw", ["lr=1e39", "lr=0.1, alpha=1e39", "lr=0.1, momentum=1e39"])
def test_train_step_rejects_hyperparameters_beyond_float32(kw):
    lr, *rest = kw.split(", ")
    call = f"net.train_step(X, labels, {lr.split('=')[1]}{''.join(', ' + r for r in rest)})"
    run_limited(NET + call + "\n").expect(ValueError)


@pytest.mark.parametrize("method", ["train_step", "train_step_rows"])
def test_a_step_that_makes_a_weight_non_finite_raises_floating_point_error(method):
    """Item 1: the fused store checks the updated weights; such a step raises
    FloatingPointError (which fit turns into its "diverged" error).

    The weights are random (a new Network's are zero, whose gradients are too small to
    overflow) and the loss stays finite in float32 (a loss beyond it stops the step before
    any update): the update itself, 3e38 times a gradient above 1, overflows."""
    weights = ("net.set_weights([rng.standard_normal(w.shape).astype(np.float32)\n"
               "                 for w in net.get_weights()])\n")
    call = ("net.train_step(X * 1e3, labels, 3e38)" if method == "train_step"
            else "net.train_step_rows(X * 1e3, labels, rows, 3e38)")
    run_limited(NET + weights + call + "\n").expect(FloatingPointError)


def test_concurrent_predicts_leave_the_process_thread_count_alone():
    """Item 11: models with n_threads 1, 3 and 5 predict at once; the thread count is passed
    per call, so the process-wide count is what it was (2) afterwards."""
    code = ("import numpy as np, threading, fastmlp\n"
            "rng = np.random.default_rng(0)\n"
            "X = rng.random((2000, 32), dtype=np.float32); y = np.arange(2000) % 4\n"
            "models = [fastmlp.MLP(hidden_layer_sizes=(64,), epochs=1, n_threads=n,\n"
            "                      random_state=0).fit(X[:200], y[:200]) for n in (1, 3, 5)]\n"
            "fastmlp.set_num_threads(2)\n"
            "def work(m):\n"
            "    for _ in range(200):\n"
            "        m.predict(X)\n"
            "threads = [threading.Thread(target=work, args=(m,)) for m in models]\n"
            "[t.start() for t in threads]; [t.join() for t in threads]\n"
            "assert fastmlp.get_num_threads() == 2, fastmlp.get_num_threads()\n")
    run_limited(code, timeout=60).expect(None)
