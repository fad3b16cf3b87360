"""The fixture that makes every test here train on network_choice.NETWORK_CLASS: the compiled
core once it has the calls of spec #23's parts B and C, the NumPy stand-in until then."""
import pytest

from fastmlp.neural_network import _engine
from network_choice import NETWORK_CLASS


@pytest.fixture(autouse=True)
def network_class(monkeypatch):
    """Every test here trains on NETWORK_CLASS; returns it."""
    monkeypatch.setattr(_engine, "NETWORK_CLASS", NETWORK_CLASS)
    return NETWORK_CLASS
