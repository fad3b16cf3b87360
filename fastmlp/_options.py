"""The options table: every named choice of fastmlp, written once.

The estimator validates its parameters against these names, the command line offers them as
``choices``, and the model and checkpoint files check the names they read against them. Adding
an activation, a loss or a schedule is one entry here (and its C kernel and NumPy reference).
"""
__all__ = ["ACTIVATIONS", "DEFAULT_ACTIVATION", "DEFAULT_LOSS", "DEFAULT_LR_SCHEDULE",
           "DEFAULT_SOLVER", "LOSSES", "LR_SCHEDULES", "MOMENTUM_RULES", "MONITORS", "SOLVERS",
           "check_choice"]

#: Training losses. "mse": squared error on one-hot targets, summed over the outputs and
#: averaged over the batch (the tutorial's); "cross_entropy": softmax then the negative
#: log-likelihood, fused in C.
LOSSES = ("mse", "cross_entropy")
DEFAULT_LOSS = "mse"

#: Activations of the hidden layers (the output layer is linear). Each has a fused C kernel
#: and a forward function and derivative in ``fastmlp.reference``.
ACTIVATIONS = ("relu", "tanh", "identity", "logistic", "leaky_relu", "gelu")
DEFAULT_ACTIVATION = "relu"

#: The update rules of SGD: "sgd" without momentum, "momentum" (heavy ball) and "nesterov",
#: each with an optional L2 penalty. The estimator picks one from its ``momentum`` and
#: ``nesterov`` parameters; ``fastmlp.reference`` writes each one out.
MOMENTUM_RULES = ("sgd", "momentum", "nesterov")

#: The optimisers: "sgd" (with the rules above) or "adam" (scikit-learn's AdamOptimizer, with
#: its beta_1, beta_2 and epsilon; ``fastmlp.reference.adam_update``).
SOLVERS = ("sgd", "adam")
DEFAULT_SOLVER = "sgd"

#: Learning-rate schedules: "constant", or "step" (times ``lr_decay`` every
#: ``lr_step_epochs`` epochs).
LR_SCHEDULES = ("constant", "step")
DEFAULT_LR_SCHEDULE = "constant"

#: What early stopping can monitor, and which direction is better.
MONITORS = {"loss": min, "val_loss": min, "accuracy": max, "val_accuracy": max}


def check_choice(value, name, choices):
    """``value`` if it is one of ``choices``, else a ``ValueError`` that names them.

    Parameters
    ----------
    value : object
        The value given for the option.
    name : str
        The option's name, for the message.
    choices : sequence of str or dict
        The allowed names.

    Returns
    -------
    str
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value

