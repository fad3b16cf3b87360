"""Guards that keep a model whole while it trains: Ctrl-C and concurrent use.

- :class:`InterruptFlag` turns the first SIGINT during training into a flag that the epoch loop
  checks after every step, so training stops between two steps (never inside the C step, which
  is atomic anyway) and the model's weights and history stay consistent. A second Ctrl-C raises
  ``KeyboardInterrupt`` at once.
- :class:`FiniteWeights` keeps a copy of the weights at the start of an epoch, so that a step
  that makes a weight non-finite leaves the model with finite weights and a true message.
- :func:`fitting` marks a model as being fitted by the current thread; :func:`check_not_fitting`
  makes another thread's ``predict`` (or ``fit``) raise a clear ``RuntimeError`` instead of
  reading weights that are being overwritten.
"""
import functools
import os
import signal
import threading

from . import _core

__all__ = ["FiniteWeights", "InterruptFlag", "check_network_memory", "check_not_fitting",
           "exclusive_fit", "fitting", "weights_finite"]


class InterruptFlag:
    """Context manager: while active in the main thread, SIGINT sets ``requested``.

    Only replaces Python's default SIGINT handler (a handler the user installed is left alone),
    and restores it on exit. Elsewhere (another thread, a custom handler) it does nothing and
    ``KeyboardInterrupt`` arrives as usual.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:          # a second Ctrl-C: the user really wants out
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            try:
                self._previous = signal.signal(signal.SIGINT, self._handler)
            except ValueError:      # not the main interpreter
                self._previous = None
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        return False


_lock = threading.Lock()
_active = {}   # id(model) -> [thread ident, depth]


class fitting:
    """Context manager held by ``fit``/``partial_fit``: one training thread per model."""

    def __init__(self, model):
        self.key = id(model)
        self.name = type(model).__name__

    def __enter__(self):
        me = threading.get_ident()
        with _lock:
            entry = _active.get(self.key)
            if entry is not None and entry[0] != me:
                raise RuntimeError(f"this {self.name} is already being fitted in another thread; "
                                   f"wait for that fit to return (or use a separate model per "
                                   f"thread)")
            if entry is None:
                _active[self.key] = [me, 1]
            else:
                entry[1] += 1
        return self

    def __exit__(self, *exc):
        with _lock:
            entry = _active[self.key]
            entry[1] -= 1
            if entry[1] == 0:
                del _active[self.key]
        return False


def check_not_fitting(model, what):
    """Raise ``RuntimeError`` if another thread is fitting ``model`` right now."""
    entry = _active.get(id(model))
    if entry is not None and entry[0] != threading.get_ident():
        raise RuntimeError(f"cannot {what} while this {type(model).__name__} is being fitted "
                           f"in another thread; wait for fit to return")


def exclusive_fit(method):
    """Decorator of ``fit``/``partial_fit``: the call holds :class:`fitting` on its model."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with fitting(self):
            return method(self, *args, **kwargs)
    return wrapper


def physical_memory():
    """Bytes of physical memory, or None where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_network_memory(sizes, max_batch, momentum, activation="relu", dropout=False):
    """Raise ``MemoryError`` before allocating a network that cannot fit in physical memory.
    ``momentum``: the update rule's state buffers per weight (True or 1: a velocity; 2: Adam's
    moments); ``activation``: the hidden layers' (some keep their pre-activations too);
    ``dropout``: whether they drop units (some then keep their outputs before the drop).

    Allocation alone would not fail everywhere: where the kernel overcommits memory, a huge
    ``numpy.empty`` succeeds and the process is killed later, when the pages are touched.
    """
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    largest = max(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    activations = max_batch * sum(sizes[1:])
    if _core.keeps_preactivation(activation, dropout):
        activations += max_batch * sum(sizes[1:-1]) // 2   # float32 z of each hidden layer
    # float32 weights (+ velocities) and the copy FiniteWeights keeps of them during an epoch,
    # float32 activations and gradients, the batch a shuffled epoch gathers
    # (Network.train_step_rows), and the float64 temporary of the initialisation of the largest
    # layer.
    need = (8 * weights * (1 + int(momentum)) + 8 * activations + 4 * max_batch * sizes[0]
            + 8 * largest)
    have = physical_memory()
    if have is not None and need > have:
        raise MemoryError(f"a network of widths {tuple(sizes)} with batches of {max_batch} needs "
                          f"about {need / 2**30:.1f} GiB, more than this machine's "
                          f"{have / 2**30:.1f} GiB: use smaller hidden_layer_sizes or batch_size")


def weights_finite(network):
    """Whether every weight and bias of ``network`` is finite."""
    return all(_core.all_finite(w.reshape(1, -1)) for w in network.get_weights())


class FiniteWeights:
    """A copy of a network's finite weights and optimiser state (one memcpy of each)."""

    def __init__(self, network):
        self.network = network
        self.weights = network.get_weights()
        self.velocity = network.get_optimizer_state()

    def still_finite(self, X):
        """Whether the network's outputs for the rows ``X`` are finite. Its weights need no
        check here: every training step checks the ones it writes (``FloatingPointError``)."""
        return _core.all_finite(self.network.forward(X))

    def diverged(self, what, epoch, lr, restore=False):
        """The ``ValueError`` of a diverged step, after making the network's weights finite:
        those of the last step when they are (and not ``restore``), else this copy, from the
        start of ``epoch``."""
        if not restore and weights_finite(self.network):
            kept = "the weights of the last finite step are kept"
        else:
            self.network.set_weights(self.weights)   # resets the velocities
            if self.velocity:
                self.network.set_optimizer_state(self.velocity)
            kept = f"the weights from the start of epoch {epoch}, the last known finite, are restored"
        return ValueError(f"training diverged: {what}; {kept}. Try a lower learning_rate "
                          f"(now {lr}).")
