"""Faults during training lose nothing; the same random_state gives the same model, bit for bit.

Divergence (a non-finite loss) stops at that step and keeps the last finite weights; Ctrl-C
(a KeyboardInterrupt from a callback, or a real SIGINT while the C step runs) stops within one
step with complete weights and a consistent history; random_state accepts None, an int or a
Generator and never touches NumPy's global RNG; results do not depend on the thread count or
the instruction-set path.
"""
import signal
import threading
import time

import numpy as np
import pytest

from fastmlp import MLP, _core
from reliability_util import run_python


def blobs(n=600, d=20, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(k, d))
    y = rng.integers(0, k, n)
    X = (centers[y] + rng.normal(size=(n, d))).astype(np.float32)
    return X, y


class StepRecorder:
    """A per-step hook that keeps the weights after every finished step."""

    def __init__(self, model, every_step=True, raise_at=None):
        self.model = model
        self.weights = []
        self.steps = 0
        self.raise_at = raise_at
        self.every_step = every_step

    def __call__(self, epoch, logs):
        return False

    def on_batch_end(self, epoch, step, loss):
        self.steps += 1
        self.last = (epoch, step)
        w = self.model.get_weights()
        self.weights = [w] if not self.every_step else self.weights + [w]
        if self.raise_at is not None and self.steps == self.raise_at:
            raise KeyboardInterrupt


def assert_same_weights(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape and np.array_equal(x, y)


# ---------------------------------------------------------------------------------------------
# Divergence
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_divergence_stops_at_the_step_and_keeps_the_last_finite_weights(loss):
    X, y = blobs()
    model = MLP(hidden_layer_sizes=(16,), learning_rate=1e6, batch_size=50, epochs=3,
                random_state=0, loss=loss)
    recorder = StepRecorder(model)
    model.callbacks = [recorder]
    with pytest.raises(ValueError, match=r"(?s)diverged.*learning_rate"):
        model.fit(X, y)
    weights = model.get_weights()
    assert all(np.isfinite(w).all() for w in weights)
    if recorder.weights:           # the weights of the last step that finished
        assert_same_weights(weights, recorder.weights[-1])
    assert model.predict(X).shape == (len(X),)   # still a usable model


def test_divergence_in_partial_fit_keeps_the_model():
    X, y = blobs()
    model = MLP(hidden_layer_sizes=(16,), learning_rate=0.01, batch_size=50, random_state=0)
    model.partial_fit(X, y)
    before = model.get_weights()
    model.learning_rate = 1e6
    recorder = StepRecorder(model)
    model.callbacks = [recorder]
    with pytest.raises(ValueError, match="diverged"):
        model.partial_fit(X, y)
    expected = recorder.weights[-1] if recorder.weights else before
    assert_same_weights(model.get_weights(), expected)
    assert len(model.loss_curve_) == 1      # the failed epoch is not recorded


# ---------------------------------------------------------------------------------------------
# KeyboardInterrupt
# ---------------------------------------------------------------------------------------------

def _check_consistent_history(model):
    n = len(model.loss_curve_)
    assert model.n_iter_ == n
    assert all(len(v) == n for v in model.history_.values())


def test_keyboard_interrupt_from_a_step_hook_warns_and_keeps_the_last_step():
    X, y = blobs()
    model = MLP(hidden_layer_sizes=(16,), learning_rate=0.01, batch_size=50, epochs=5,
                random_state=0)
    recorder = StepRecorder(model, raise_at=30)   # epoch 2 (12 steps per epoch), step 5
    model.callbacks = [recorder]
    with pytest.warns(UserWarning, match="interrupted"):
        assert model.fit(X, y) is model
    assert recorder.last == (2, 5)
    assert_same_weights(model.get_weights(), recorder.weights[-1])
    assert len(model.loss_curve_) == 2
    _check_consistent_history(model)


def test_keyboard_interrupt_from_an_epoch_callback_keeps_that_epoch():
    X, y = blobs()

    def stop_at_epoch_1(epoch, logs):
        if epoch == 1:
            raise KeyboardInterrupt

    model = MLP(hidden_layer_sizes=(16,), learning_rate=0.01, batch_size=50, epochs=5,
                random_state=0, callbacks=[stop_at_epoch_1])
    with pytest.warns(UserWarning, match="interrupted"):
        model.fit(X, y)
    assert len(model.loss_curve_) == 2
    _check_consistent_history(model)


@pytest.fixture
def sigint_raises_keyboard_interrupt():
    """Python's own SIGINT handler for the test, whatever the test run inherited (a job started
    in the background runs with SIGINT ignored); the run's handler is put back after."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_real_sigint_during_fit_stops_within_a_step(sigint_raises_keyboard_interrupt):
    """A SIGINT from a timer thread while fit runs on MNIST-sized batches."""
    rng = np.random.default_rng(1)
    X = rng.random((6000, 784), dtype=np.float32)
    y = rng.integers(0, 10, 6000)
    model = MLP(hidden_layer_sizes=(256,), batch_size=200, epochs=1000, random_state=0)
    recorder = StepRecorder(model, every_step=False)
    model.callbacks = [recorder]
    sent, steps_at_signal = [], []

    def interrupt():
        sent.append(time.perf_counter())
        steps_at_signal.append(recorder.steps)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    timer = threading.Timer(0.8, interrupt)
    timer.start()
    try:
        with pytest.warns(UserWarning, match="interrupted"):
            model.fit(X, y)
    finally:
        timer.cancel()
    returned = time.perf_counter()
    assert sent, "the timer never fired"
    assert returned - sent[0] < 5.0                  # one step is a few milliseconds
    # The step running when Ctrl-C came finishes, no other (one more if the timer thread lost the
    # GIL between reading the count and sending the signal).
    assert recorder.steps - steps_at_signal[0] <= 2
    assert len(model.loss_curve_) < 1000
    assert_same_weights(model.get_weights(), recorder.weights[-1])
    _check_consistent_history(model)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    assert all(np.isfinite(w).all() for w in model.get_weights())


# ---------------------------------------------------------------------------------------------
# random_state
# ---------------------------------------------------------------------------------------------

def _fit_weights(random_state, **params):
    X, y = blobs(300)
    kw = dict(hidden_layer_sizes=(16, 8), learning_rate=0.01, batch_size=32, epochs=2,
              shuffle=True, momentum=0.9, random_state=random_state)
    kw.update(params)
    return MLP(**kw).fit(X, y).get_weights()


def test_random_state_int_is_bit_reproducible():
    assert_same_weights(_fit_weights(7), _fit_weights(7))
    different = _fit_weights(8)
    assert not all(np.array_equal(a, b) for a, b in zip(_fit_weights(7), different))


def test_random_state_generator_is_bit_reproducible():
    a = _fit_weights(np.random.default_rng(3))
    b = _fit_weights(np.random.default_rng(3))
    assert_same_weights(a, b)


def test_random_state_none_works_and_varies():
    a, b = _fit_weights(None), _fit_weights(None)
    assert all(np.isfinite(w).all() for w in a)
    assert not all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("random_state", [None, 5, "generator", "legacy"])
def test_global_numpy_rng_is_never_touched(random_state):
    if random_state == "generator":
        random_state = np.random.default_rng(0)
    elif random_state == "legacy":
        random_state = np.random.RandomState(0)
    np.random.seed(1234)
    before = np.random.get_state()
    _fit_weights(random_state, validation_split=0.2)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1])
    assert before[2:] == after[2:]


@pytest.mark.parametrize("bad", ["seed", 1.5, object()])
def test_random_state_of_a_wrong_type_raises(bad):
    X, y = blobs(100)
    with pytest.raises((ValueError, TypeError), match="random_state"):
        MLP(hidden_layer_sizes=(4,), epochs=1, random_state=bad).fit(X, y)


def test_same_model_with_one_and_two_threads():
    X, y = blobs(2000, d=64)
    kw = dict(hidden_layer_sizes=(96, 48), learning_rate=0.01, batch_size=200, epochs=2,
              shuffle=True, random_state=0)
    one = MLP(n_threads=1, **kw).fit(X, y)
    two = MLP(n_threads=2, **kw).fit(X, y)
    assert_same_weights(one.get_weights(), two.get_weights())
    assert np.array_equal(one.predict_proba(X), two.predict_proba(X))


ISA_SCRIPT = r"""
import hashlib, numpy as np
from fastmlp import MLP
rng = np.random.default_rng(0)
X = rng.normal(size=(700, 50)).astype(np.float32)
y = rng.integers(0, 4, 700)
m = MLP(hidden_layer_sizes=(40, 17), learning_rate=0.01, batch_size=64, epochs=2, shuffle=True,
        momentum=0.5, random_state=0).fit(X, y)
h = hashlib.sha256()
for w in m.get_weights():
    h.update(w.tobytes())
print(h.hexdigest())
"""


def test_same_model_on_every_isa_path():
    isas = _core.build_info()["isa_available"]
    digests = {}
    for isa in isas:
        result = run_python(ISA_SCRIPT, timeout=120, FASTMLP_ISA=isa)
        digests[isa] = result.stdout.strip()
    assert len(set(digests.values())) == 1, digests
