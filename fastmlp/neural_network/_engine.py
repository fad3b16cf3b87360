"""The one place the estimators build their compiled network: ``_core.Network`` with the
training calls of the Adam and float-target core (``train_step_targets``, ``gradient``,
``weights_sum_squares``, ``get_optimizer_state`` / ``set_optimizer_state``).

The tests swap ``NETWORK_CLASS`` for a NumPy stand-in with the same methods; nothing else in
the estimators names a network class.
"""
from .. import _core

__all__ = ["NETWORK_CLASS", "core_supported", "make_network"]

#: The network class the estimators build. A class with the constructor and methods of
#: ``_core.Network`` (Adam and float targets included).
NETWORK_CLASS = _core.Network

#: The calls the estimators make beyond the tutorial's ``train_step``.
REQUIRED_METHODS = ("train_step_targets", "gradient", "weights_sum_squares",
                    "get_optimizer_state", "set_optimizer_state", "forward",
                    "get_weights", "set_weights")


def core_supported(cls=None):
    """Whether ``cls`` (default: the compiled ``_core.Network``) has every call the
    estimators make."""
    cls = _core.Network if cls is None else cls
    return all(hasattr(cls, name) for name in REQUIRED_METHODS)


def make_network(sizes, max_batch, activation, solver="sgd", momentum=0.0):
    """A network of widths ``sizes`` (input first) for batches of at most ``max_batch`` rows,
    with the optimiser state ``solver`` needs: Adam's two moments, or SGD's velocity when
    ``momentum > 0``, or none (plain SGD and L-BFGS)."""
    cls = NETWORK_CLASS
    if not core_supported(cls):
        raise RuntimeError(
            "fastmlp.neural_network needs a compiled core with Adam and float targets "
            "(Network.train_step_targets, gradient, get_optimizer_state); this build of "
            "fastmlp._core lacks them: rebuild fastmlp")
    use_adam = solver == "adam"
    use_momentum = solver == "sgd" and momentum > 0
    return cls(tuple(int(s) for s in sizes), int(max_batch), momentum=use_momentum,
               activation=activation, adam=use_adam)
