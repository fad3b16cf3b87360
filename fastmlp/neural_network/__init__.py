"""scikit-learn's ``MLPClassifier`` and ``MLPRegressor`` on fastmlp's compiled core.

Change one import line and keep the rest::

    # from sklearn.neural_network import MLPClassifier, MLPRegressor
    from fastmlp.neural_network import MLPClassifier, MLPRegressor

Needs scikit-learn (>= 1.9); ``solver="lbfgs"`` needs SciPy.
"""
from ._multilayer_perceptron import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
