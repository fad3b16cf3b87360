"""The estimators the Dask tests train: fastmlp.MLP and the drop-in classes, small enough to
train in well under a second, with every source of randomness seeded (shuffling, dropout,
initial weights) so that two runs can be compared bit for bit."""
import numpy as np

import fastmlp
from dask_helpers import N_CLASSES

#: Every label, for a classifier's first partial_fit on a block that may lack some.
CLASSES = np.arange(N_CLASSES)


def mlp():
    """fastmlp.MLP with shuffling, momentum and dropout: every piece of state partial_fit
    carries from one block to the next."""
    return fastmlp.MLP(hidden_layer_sizes=(32,), loss="cross_entropy", learning_rate=0.05,
                       momentum=0.9, batch_size=50, shuffle=True, random_state=0, dropout=0.1,
                       epochs=3)


def mlp_classifier():
    """The drop-in MLPClassifier (Adam, shuffled batches)."""
    from fastmlp.neural_network import MLPClassifier
    return MLPClassifier(hidden_layer_sizes=(32,), batch_size=50, learning_rate_init=0.01,
                         random_state=0, max_iter=3)


def mlp_regressor():
    """The drop-in MLPRegressor (SGD with Nesterov's momentum, shuffled batches)."""
    from fastmlp.neural_network import MLPRegressor
    return MLPRegressor(hidden_layer_sizes=(32,), solver="sgd", batch_size=50,
                        learning_rate_init=0.01, random_state=0, max_iter=3)


#: name -> (factory, is a classifier)
ESTIMATORS = {"MLP": (mlp, True), "MLPClassifier": (mlp_classifier, True),
              "MLPRegressor": (mlp_regressor, False)}
