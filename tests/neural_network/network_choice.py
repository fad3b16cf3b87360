"""The network the estimators train on in these tests: the compiled core once it has the Adam
and float-target calls (spec #23, parts B and C), the NumPy stand-in until then.

FASTMLP_SK_NETWORK=numpy forces the stand-in, =numpy32 the stand-in with float32 arithmetic (as
the core's), =core the compiled core (an error when the core lacks the calls).
"""
import os

from fastmlp import _core
from fastmlp.neural_network import _engine
from numpy_network import NumpyNetwork, NumpyNetwork32

_CHOICE = os.environ.get("FASTMLP_SK_NETWORK", "auto")
if _CHOICE not in ("auto", "core", "numpy", "numpy32"):
    raise ValueError(f"FASTMLP_SK_NETWORK must be auto, core, numpy or numpy32, got {_CHOICE!r}")

#: Whether the tests run on the compiled core.
USE_CORE = _CHOICE == "core" or (_CHOICE == "auto" and _engine.core_supported(_core.Network))

#: The class the fixture of conftest.py gives the estimators.
NETWORK_CLASS = (_core.Network if USE_CORE
                 else NumpyNetwork32 if _CHOICE == "numpy32" else NumpyNetwork)

#: Whether that network's arithmetic is float32 (the core's) rather than the stand-in's float64.
FLOAT32_ARITHMETIC = NETWORK_CLASS is not NumpyNetwork


def skip_without_activation(activation):
    """Skips the calling test when the compiled core in use lacks this hidden activation
    (spec #23's part A adds identity and logistic)."""
    import pytest
    if USE_CORE and activation not in getattr(_core, "ACTIVATIONS", ()):
        pytest.skip(f"this build of the core lacks the {activation!r} activation")
