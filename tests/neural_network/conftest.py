"""The network the estimators train on: the compiled core once it has the Adam and
float-target calls (spec #23, parts B and C), the NumPy stand-in until then.

FASTMLP_SK_NETWORK=numpy forces the stand-in, =core the compiled core (an error when the core
lacks the calls).
"""
import os

import pytest

from fastmlp import _core
from fastmlp.neural_network import _engine
from numpy_network import NumpyNetwork

_CHOICE = os.environ.get("FASTMLP_SK_NETWORK", "auto")
if _CHOICE not in ("auto", "core", "numpy"):
    raise ValueError(f"FASTMLP_SK_NETWORK must be auto, core or numpy, got {_CHOICE!r}")
USE_CORE = _CHOICE == "core" or (_CHOICE == "auto" and _engine.core_supported(_core.Network))
NETWORK_CLASS = _core.Network if USE_CORE else NumpyNetwork


@pytest.fixture(autouse=True)
def network_class(monkeypatch):
    """Every test here trains on NETWORK_CLASS; returns it."""
    monkeypatch.setattr(_engine, "NETWORK_CLASS", NETWORK_CLASS)
    return NETWORK_CLASS
