"""The MLP estimator: its parameters and its public API.

``MLPClassifier`` (alias ``MLP``) stores its parameters, checks them against the options table
(:mod:`fastmlp._options`), builds the compiled network (:mod:`fastmlp._core`) and answers
``predict``; the epochs run in :mod:`fastmlp._training`, the input checks in
:mod:`fastmlp._validation`. ``get_state`` and ``from_state`` give the fitted model as a plain
dict and back, which is what the model files (:mod:`fastmlp.io`) and checkpoints
(:mod:`fastmlp.checkpoint`) store.

When scikit-learn is installed the estimator is a real scikit-learn classifier (it inherits
``ClassifierMixin`` and ``BaseEstimator``); without it, it is a plain class with the same API
(:mod:`fastmlp._sklearn`).
"""
import numbers
import warnings

import numpy as np

from . import _core, _limits, _precision, _safety, _training
from ._init import glorot_uniform
from ._options import (ACTIVATIONS, DEFAULT_ACTIVATION, DEFAULT_SOLVER, LOSSES, LR_SCHEDULES,
                       MONITORS, SOLVERS, check_choice)
from ._sklearn import BASES, HAVE_SKLEARN, SkNotFittedError
from ._threading import call_threads
from ._training import TRAIN_ACCURACY_SAMPLES, StopTraining
from ._validation import (_check_targets, _column_names, _not_finite, _positive_int, _real, _rng,
                          check_array)

__all__ = ["MLP", "MLPClassifier", "NotFittedError", "StopTraining", "TRAIN_ACCURACY_SAMPLES",
           "check_array"]


_HUGE = 1e300   # beyond any float32, and its difference with -_HUGE is finite in float64


class NotFittedError(SkNotFittedError):
    """Raised when a model is used before it has been fitted.

    A ``ValueError`` and an ``AttributeError``; a subclass of scikit-learn's
    ``NotFittedError`` when scikit-learn is installed.
    """


def _new_network(sizes, max_batch, momentum, activation, adam=False, dropout=None,
                 precision="fp32"):
    """The compiled network of widths ``sizes``, for batches of up to ``max_batch`` rows, with
    velocity buffers when ``momentum``, Adam's moments when ``adam``, ``activation`` after
    its hidden layers and their ``dropout`` rates, its products in ``precision``
    (``_core.Network``)."""
    return _core.Network(sizes, max_batch, momentum=momentum and not adam, activation=activation,
                         adam=adam, dropout=dropout, precision=precision)


def _softmax(logits):
    """Row-wise softmax of ``logits`` (M, N), stable: each row's maximum is subtracted first."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class MLPClassifier(*BASES):
    """A multilayer perceptron classifier trained by minibatch SGD, on C kernels.

    The defaults are the classic MNIST tutorial's, and they are what this class promises:
    784 -> 512 -> 256 -> 10 with ReLU after the hidden layers, a linear output, the
    squared-error loss summed over outputs and averaged over the batch, plain SGD at 0.001,
    batches of 200 in dataset order, 30 epochs, Glorot-uniform weights and zero biases. They
    reproduce the tutorial (about 92% on MNIST) and underfit most other data. For general use
    take the README's recipe: ``loss="cross_entropy"``, ``momentum=0.9``, a larger
    ``learning_rate`` (0.05) and ``shuffle=True`` (98.6% on MNIST in 20 epochs).

    Epochs are numbered from 1 in everything printed and in ``best_epoch_``; ``history_``'s
    lists hold epoch ``e`` at index ``e - 1``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int
        Widths of the hidden layers (each followed by ``activation``).
    learning_rate : float
        SGD step size (of the first epoch, see ``lr_schedule``).
    batch_size : int
        Samples per step; the last batch of an epoch holds the remainder.
    epochs : int
        Passes over the data made by ``fit``.
    shuffle : bool
        Shuffle the samples before each epoch (with ``random_state``). False (the tutorial's
        choice) goes through the data in order.
    random_state : None, int or numpy.random.Generator
        Seeds the initial weights, the shuffling and ``validation_split``. The same int gives
        the same model, bit for bit, whatever the thread count.
    n_threads : int or None
        Threads of the C kernels, at most; None uses ``OMP_NUM_THREADS`` or all cores (in a
        task on a Dask worker, at most its share of them: docs/dask.md). A pass too small to
        repay them uses fewer (one for a small network; see README, Performance).
    verbose : int
        0 silent. 1: a live progress bar per epoch when standard output is a terminal (steps
        done, ETA, running loss); otherwise plain lines, the tutorial's ``epoch step loss:
        value`` every 100 steps and one summary line per epoch. 2: one summary line per epoch.
        (:mod:`fastmlp.progress` has these printers as callbacks.)
    loss : {"mse", "cross_entropy"}
        "mse" is the tutorial's squared error on one-hot targets; "cross_entropy" is softmax
        followed by the negative log-likelihood (fused in C).
    momentum : float
        Momentum of the SGD update, in [0, 1).
    nesterov : bool
        Use Nesterov's momentum (with ``momentum > 0``).
    alpha : float
        L2 penalty on the weights (weight decay).
    lr_schedule : {"constant", "step"}
        "step" multiplies the learning rate by ``lr_decay`` every ``lr_step_epochs`` epochs:
        epoch ``e`` (from 1) uses ``learning_rate * lr_decay ** ((e - 1) // lr_step_epochs)``.
    lr_decay : float
        Factor of the step schedule, in (0, 1].
    lr_step_epochs : int
        Epochs between two decays of the step schedule.
    validation_data : tuple (X_val, y_val) or None
        Evaluated after every epoch: ``val_loss`` and ``val_accuracy`` in ``history_``.
    validation_split : float
        Fraction in [0, 1) of the training data held out (drawn at random with
        ``random_state``) as validation data by ``fit``, when ``validation_data`` is None.
    early_stopping : bool
        Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
        epochs, then restore the weights of the best epoch. Monitoring a validation metric
        without any validation data holds out 10% of the training data.
    patience : int
        Epochs without improvement tolerated by early stopping.
    monitor : {"val_loss", "val_accuracy", "loss", "accuracy"}
        The quantity early stopping watches.
    min_delta : float
        The smallest change of ``monitor`` that counts as an improvement.
    callbacks : list of callable or None
        Each is called as ``callback(epoch, logs)`` after every epoch (``epoch`` from 0,
        ``logs`` the epoch's values of ``history_``); returning a true value, or raising
        :class:`StopTraining`, stops training. See :mod:`fastmlp.progress` for the optional
        per-step hooks.
    warm_start : bool
        When True, ``fit`` on a fitted model continues from its weights instead of starting
        afresh.
    activation : {"relu", "tanh", "identity", "logistic", "leaky_relu", "gelu"}
        The activation of the hidden layers (the output layer is linear): ``max(z, 0)``,
        ``tanh(z)``, ``z``, ``1 / (1 + exp(-z))``, ``z > 0 ? z : 0.01 z`` or GELU
        ``z Phi(z)`` (the exact form; its layers keep z too), fused into the C kernels.
    solver : {"sgd", "adam"}
        "sgd" (the tutorial's, with ``momentum`` and ``nesterov``) or "adam": scikit-learn's
        AdamOptimizer with ``learning_rate`` as its initial rate, fused into the C kernels
        (``momentum`` must then be 0).
    beta_1, beta_2 : float
        Adam's decay rates of its first and second moment estimates, in [0, 1).
    epsilon : float
        Adam's term for numerical stability, > 0.
    dropout : float or sequence of float
        Inverted dropout on the hidden layers' outputs while training (Keras' and PyTorch's):
        a rate in [0, 1) for every hidden layer, or one rate per hidden layer. Each training
        step drops each unit with that probability and scales the others by
        ``1 / (1 - rate)``; predictions never drop. The masks come from a counter-based
        generator (Philox4x32-10) keyed by a seed drawn from ``random_state`` and by the step,
        layer, row and column, so they are the same bits on every instruction set and thread
        count, and a resumed checkpoint continues them. 0 (the default): none.
    precision : {"fp32", "bf16"}
        "bf16": mixed precision, as PyTorch's CPU autocast: every matrix product of training
        and prediction takes its operands rounded to bfloat16 and sums them in float32 (x86's
        VDPBF16PS, on CPUs with AVX512_BF16), while the weights, biases, optimiser state and
        the update stay float32. On other CPUs an exact emulation gives the same bits, more
        slowly (a warning says so once). The same bits on every instruction set and thread
        count, as in float32; ``fastmlp.build_info()["bf16"]`` says which path runs.

    Attributes
    ----------
    coefs_ : list of ndarray, shape (n_in, n_out)
        The weight matrix of every layer (float32 copies).
    intercepts_ : list of ndarray, shape (n_out,)
        The bias of every layer.
    classes_ : ndarray, shape (n_classes,)
        The distinct labels, sorted; any numbers or strings.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, shape (n_features_in_,)
        Only when ``fit`` was given a data frame whose column names are all strings.
    loss_curve_ : list of float
        The mean training loss of every epoch.
    history_ : dict of lists
        Per epoch: ``loss``, ``accuracy`` (on at most ``TRAIN_ACCURACY_SAMPLES`` fixed
        training samples, after the epoch), ``val_loss`` and ``val_accuracy`` (with validation
        data), ``seconds``, ``samples_per_second`` and ``lr``.
    n_iter_ : int
        Epochs trained in total.
    best_epoch_ : int
        With early stopping: the epoch (from 1) whose weights were restored; its values are
        ``history_[key][best_epoch_ - 1]``.

    Notes
    -----
    ``predict_proba`` is the softmax of the outputs. With ``loss="cross_entropy"`` these are the
    probabilities the model was trained to give. With ``loss="mse"`` the outputs estimate the
    one-hot targets, not probabilities; their softmax is a distribution with the same argmax.
    """

    def __init__(self, hidden_layer_sizes=(512, 256), learning_rate=0.001, batch_size=200,
                 epochs=30, shuffle=False, random_state=None, n_threads=None, verbose=0,
                 loss="mse", momentum=0.0, nesterov=False, alpha=0.0, lr_schedule="constant",
                 lr_decay=0.1, lr_step_epochs=10, validation_data=None, validation_split=0.0,
                 early_stopping=False, patience=5, monitor="val_loss", min_delta=0.0,
                 callbacks=None, warm_start=False, activation=DEFAULT_ACTIVATION,
                 solver=DEFAULT_SOLVER, beta_1=0.9, beta_2=0.999, epsilon=1e-8, dropout=0.0,
                 precision="fp32"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.shuffle = shuffle
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose
        self.loss = loss
        self.momentum = momentum
        self.nesterov = nesterov
        self.alpha = alpha
        self.lr_schedule = lr_schedule
        self.lr_decay = lr_decay
        self.lr_step_epochs = lr_step_epochs
        self.validation_data = validation_data
        self.validation_split = validation_split
        self.early_stopping = early_stopping
        self.patience = patience
        self.monitor = monitor
        self.min_delta = min_delta
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.activation = activation
        self.solver = solver
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.dropout = dropout
        self.precision = precision

    if HAVE_SKLEARN:
        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.input_tags.allow_nan = False
            tags.input_tags.sparse = False
            tags.classifier_tags.multi_label = False
            return tags

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_network")

    # ---- parameters ----

    def _check_params(self):
        """Validate the parameters; returns the hidden layer sizes as a tuple."""
        hidden = self.hidden_layer_sizes
        if isinstance(hidden, numbers.Integral):
            hidden = (hidden,)
        try:
            hidden = tuple(hidden)
        except TypeError:
            raise ValueError(f"hidden_layer_sizes must be a tuple of positive integers, "
                             f"got {self.hidden_layer_sizes!r}") from None
        for h in hidden:
            _positive_int(h, "every hidden layer size")
        _real(self.learning_rate, "learning_rate", 0, low_open=True)
        _limits.check_float32(self.learning_rate, "learning_rate")   # the kernels read float32
        _positive_int(self.batch_size, "batch_size")
        _positive_int(self.epochs, "epochs")
        if self.n_threads is not None:
            _limits.check_n_threads(self.n_threads)
        check_choice(self.loss, "loss", LOSSES)
        check_choice(self.activation, "activation", ACTIVATIONS)
        _real(self.momentum, "momentum", 0, 1, high_open=True)
        check_choice(self.solver, "solver", SOLVERS)
        if self.solver == "adam" and self.momentum > 0:
            raise ValueError("momentum is SGD's: set momentum=0 with solver='adam'")
        _real(self.beta_1, "beta_1", 0, 1, high_open=True)
        _real(self.beta_2, "beta_2", 0, 1, high_open=True)
        _real(self.epsilon, "epsilon", 0, low_open=True)
        if not np.float32(_limits.check_float32(self.epsilon, "epsilon")) > 0:
            raise ValueError(f"epsilon must be > 0 in float32, got {self.epsilon!r}")
        _real(self.alpha, "alpha", 0)
        _limits.check_float32(self.alpha, "alpha")
        check_choice(self.lr_schedule, "lr_schedule", LR_SCHEDULES)
        _real(self.lr_decay, "lr_decay", 0, 1, low_open=True)
        _positive_int(self.lr_step_epochs, "lr_step_epochs")
        _real(self.validation_split, "validation_split", 0, 1, high_open=True)
        _positive_int(self.patience, "patience")
        check_choice(self.monitor, "monitor", MONITORS)
        _real(self.min_delta, "min_delta", 0)
        if not isinstance(self.verbose, numbers.Integral) or self.verbose < 0:
            raise ValueError(f"verbose must be 0, 1 or 2, got {self.verbose!r}")
        if self.callbacks is not None:
            for cb in self.callbacks:
                if not callable(cb):
                    raise ValueError(f"every callback must be callable, got {cb!r}")
        _core._dropout_rates(self.dropout, len(hidden))   # ValueError for bad rates
        check_choice(self.precision, "precision", _core.PRECISIONS)
        if self.validation_data is not None and (
                not isinstance(self.validation_data, (tuple, list)) or len(self.validation_data) != 2):
            raise ValueError("validation_data must be a pair (X_val, y_val)")
        return hidden

    def _lr_at(self, epoch):
        """The learning rate of epoch ``epoch`` (from 0) under ``lr_schedule``."""
        if self.lr_schedule == "step":
            return self.learning_rate * self.lr_decay ** (epoch // self.lr_step_epochs)
        return self.learning_rate

    # ---- fitting ----

    @_safety.exclusive_fit
    def fit(self, X, y):
        """Train for ``epochs`` epochs, from a fresh initialisation unless ``warm_start``.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features) or (n_samples, height, width)
        y : array-like, shape (n_samples,)
            Labels: numbers or strings, at least two distinct values.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            On invalid input or parameters, or when training diverges: the model then keeps
            the weights of the last step that finished if they are finite, else those of the
            start of the epoch (the message says which).
        """
        reset = not (self.warm_start and self.__sklearn_is_fitted__())
        X, y_encoded = self._prepare_fit(X, y, reset=reset)
        validation = self._validation_set()
        split = self.validation_split
        if validation is None and self.early_stopping and self.monitor.startswith("val_") and not split:
            split = 0.1
        if validation is None and split:
            X, y_encoded, validation = self._split(X, y_encoded, split)
        _training.fit_epochs(self, X, y_encoded, self.epochs, validation,
                             early_stopping=self.early_stopping)
        return self

    @_safety.exclusive_fit
    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y) from the current weights (initialising them on first use).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,)
        classes : array-like, shape (n_classes,), optional
            Every label that will ever be seen; needed on the first call when y does not
            contain them all, ignored afterwards.

        Returns
        -------
        self

        Notes
        -----
        ``validation_data`` is evaluated; ``validation_split`` and ``early_stopping`` are not
        used (they need several epochs over the same data: use ``fit``).
        """
        first = not self.__sklearn_is_fitted__()
        X, y_encoded = self._prepare_fit(X, y, reset=first, classes=classes)
        _training.fit_epochs(self, X, y_encoded, 1, self._validation_set(), early_stopping=False)
        return self

    def _prepare_fit(self, X, y, reset, classes=None):
        hidden = self._check_params()
        names = _column_names(X)
        X = check_array(X, None if reset else self.n_features_in_, estimator=type(self).__name__)
        y = _check_targets(y, X.shape[0])
        if reset:
            if classes is not None:
                known = np.unique(_check_targets(classes, len(classes)))
                missing = np.setdiff1d(np.unique(y), known)
                if missing.size:
                    raise ValueError(f"y contains labels not in classes: {missing[:10]}")
            else:
                known = np.unique(y)
            if known.shape[0] < 2:
                raise ValueError(f"y has only {known.shape[0]} class; a classifier needs at least "
                                 f"2 classes")
            self.classes_ = known
            self.n_features_in_ = X.shape[1]
            if names is not None:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            for attr in ("best_epoch_",):
                if hasattr(self, attr):
                    delattr(self, attr)
            self._rng = _rng(self.random_state)
            sizes = (X.shape[1],) + hidden + (known.shape[0],)
            max_batch = min(self.batch_size, X.shape[0])   # no batch is larger than the data
            adam = self.solver == "adam"
            rates = _core._dropout_rates(self.dropout, len(hidden))
            _safety.check_network_memory(sizes, max_batch, 2 if adam else self.momentum > 0,
                                         self.activation, any(rates))
            network = _new_network(sizes, max_batch, self.momentum > 0, self.activation, adam,
                                   rates, self.precision)
            network.set_weights(self._initial_weights(sizes))
            self._network = network
            self._adam_t = 0
            # The masks' seed, drawn after the weights (and only with dropout, so a run
            # without it draws what it always drew); their step counts every step from here.
            self._dropout_seed = self._draw_dropout_seed() if any(rates) else None
            self._dropout_step = 0
            self._activation = self.activation
            self.loss_curve_ = []
            self.history_ = {}
            self.n_iter_ = 0
        else:
            self._check_feature_names(names)
            if self._network.sizes[1:-1] != hidden:
                raise ValueError(f"hidden_layer_sizes is {hidden}, but the fitted network has "
                                 f"{self._network.sizes[1:-1]}; refit with warm_start=False")
            if self.activation != self._activation:
                raise ValueError(f"activation is {self.activation!r}, but the fitted network "
                                 f"uses {self._activation!r}; refit with warm_start=False")
            max_batch = min(self.batch_size, X.shape[0])
            rates = _core._dropout_rates(self.dropout, len(hidden))
            if self._network.max_batch < max_batch or (
                    self.momentum > 0 and not self._network.has_velocity) or (
                    (self.solver == "adam") != self._network.has_adam) or (
                    self._network.dropout != rates):
                self._rebuild_network(max_batch)
            if any(rates) and getattr(self, "_dropout_seed", None) is None:
                self._dropout_seed = self._draw_dropout_seed()
            self._network.precision = self.precision
        _precision.warn_if_emulated(self.precision)
        return X, self._encode(y, "y")

    def _encode(self, y, name):
        """Label values -> int32 indices into ``classes_``; unknown labels raise ValueError."""
        classes = self.classes_
        try:
            idx = np.searchsorted(classes, y)
        except TypeError:
            raise ValueError(f"{name} has labels of another type than classes_ "
                             f"({classes.dtype})") from None
        clipped = np.minimum(idx, len(classes) - 1)
        unseen = (idx >= len(classes)) | (classes[clipped] != y)
        if unseen.any():
            raise ValueError(f"{name} contains labels not in classes_: "
                             f"{np.unique(np.asarray(y)[unseen])[:10]}")
        return idx.astype(np.int32)

    def _draw_dropout_seed(self):
        """The dropout masks' seed (64 bits), from the model's generator."""
        return int(self._rng.integers(0, 2 ** 63, dtype=np.int64)) * 2 + int(
            self._rng.integers(0, 2, dtype=np.int64))

    def _dropout_key(self):
        """The next training step's dropout key, ``dropout_seed`` and ``dropout_step`` for
        ``Network.train_step``, counting the step; None without dropout."""
        if not any(self._network.dropout):
            return None
        step = self._dropout_step
        self._dropout_step = step + 1
        return {"dropout_seed": self._dropout_seed, "dropout_step": step}

    def _initial_weights(self, sizes):
        weights = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            weights += [glorot_uniform(fan_in, fan_out, self._rng), np.zeros(fan_out, np.float32)]
        return weights

    def _rebuild_network(self, max_batch):
        """A network for larger batches, or for another solver: the weights kept, and the
        optimiser's state when the rule stays (else it starts from zero)."""
        old = self._network
        adam = self.solver == "adam"
        momentum = not adam and (self.momentum > 0 or old.has_velocity)
        rates = _core._dropout_rates(self.dropout, len(old.sizes) - 2)
        _safety.check_network_memory(old.sizes, max_batch, 2 if adam else momentum,
                                     self._activation, any(rates))
        self._network = _new_network(old.sizes, max(max_batch, old.max_batch), momentum,
                                     self._activation, adam, rates, self.precision)
        self._network.set_weights(old.get_weights())
        if (old.has_adam, old.has_velocity) == (adam, momentum):
            self._network.set_optimizer_state(old.get_optimizer_state())
        elif adam:
            self._adam_t = 0

    def _validation_set(self):
        if self.validation_data is None:
            return None
        X_val, y_val = self.validation_data
        X_val = check_array(X_val, self.n_features_in_, name="X_val",
                            estimator=type(self).__name__)
        y_val = _check_targets(y_val, X_val.shape[0])
        return X_val, self._encode(y_val, "y_val")

    def _split(self, X, y, fraction):
        n = X.shape[0]
        n_val = int(round(n * fraction))
        if n_val < 1 or n - n_val < 1:
            raise ValueError(f"validation_split={fraction} leaves an empty training or "
                             f"validation set with {n} samples")
        order = self._rng.permutation(n)
        val_idx = np.sort(order[:n_val])
        train_idx = np.sort(order[n_val:])
        return X[train_idx], y[train_idx], (X[val_idx], y[val_idx])


    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call "
                                 f"'fit' with appropriate arguments before using this estimator.")

    def _check_feature_names(self, names):
        fitted = getattr(self, "feature_names_in_", None)
        cls = type(self).__name__
        if fitted is None and names is not None:
            warnings.warn(f"X has feature names, but {cls} was fitted without feature names",
                          UserWarning, stacklevel=4)
        elif fitted is not None and names is None:
            warnings.warn(f"X does not have valid feature names, but {cls} was fitted with "
                          f"feature names", UserWarning, stacklevel=4)
        elif fitted is not None and (len(fitted) != len(names) or np.any(fitted != names)):
            raise ValueError("The feature names should match those that were passed during fit.")

    def _outputs(self, X, precision=None):
        self._check_fitted()
        _safety.check_not_fitting(self, "predict")
        self._check_feature_names(_column_names(X))
        precision = self.precision if precision is None else precision
        check_choice(precision, "precision", _core.PRECISIONS)
        X = check_array(X, self.n_features_in_, estimator=type(self).__name__, finite=False)
        try:
            out = self._network.forward(X, check_finite=True,
                                        n_threads=call_threads(self.n_threads),
                                        precision=precision)
        except _core.NonFiniteInput:
            raise _not_finite("X") from None
        if not _core.all_finite(out) and np.isnan(out).any():   # inf - inf inside the network
            raise ValueError(f"the network's outputs are undefined (NaN) for this X: its values "
                             f"(up to {float(np.abs(X).max()):.3g}) overflow float32 inside the "
                             f"network; scale X like the training data")
        return out

    def decision_function(self, X, *, precision=None):
        """Raw network outputs (the logits with cross-entropy).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        precision : {"fp32", "bf16"}, optional
            The products' precision for this call; by default the model's ``precision``.

        Returns
        -------
        ndarray, shape (n_samples, n_classes), float32
            For two classes, scikit-learn's convention: shape (n_samples,), the output of the
            second class minus that of the first (float64; positive means ``classes_[1]``).
        """
        out = self._outputs(X, precision)
        if out.shape[1] == 2:
            return out[:, 1].astype(np.float64) - out[:, 0]
        return out

    def predict_proba(self, X, *, precision=None):
        """Class probabilities: the softmax of the outputs.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        precision : {"fp32", "bf16"}, optional
            The products' precision for this call; by default the model's ``precision``.

        Returns
        -------
        ndarray, shape (n_samples, n_classes), float64
            Rows sum to 1 and their argmax is ``predict``'s answer. With ``loss="mse"`` the
            outputs estimate one-hot targets, not probabilities; their softmax is only a
            normalised score.
        """
        # An output that overflowed float32 is +-inf: clipped to +-1e300 in float64, a row's
        # infinite maxima share its probability and the others get 0, never NaN.
        return _softmax(np.clip(self._outputs(X, precision), -_HUGE, _HUGE, dtype=np.float64))

    def predict(self, X, *, precision=None):
        """The predicted label of each sample.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        precision : {"fp32", "bf16"}, optional
            The products' precision for this call; by default the model's ``precision``.

        Returns
        -------
        ndarray, shape (n_samples,), the dtype of ``classes_``
        """
        out = self._outputs(X, precision)
        return self.classes_[out.argmax(axis=1)]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of ``predict(X)`` against ``y`` (weighted by ``sample_weight``).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,)
        sample_weight : array-like, shape (n_samples,), optional

        Returns
        -------
        float
        """
        predicted = self.predict(X)
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.shape != predicted.shape:
            raise ValueError(f"y has shape {y.shape}, expected {predicted.shape}")
        return float(np.average(predicted == y, weights=sample_weight))

    # ---- weights, persistence ----

    @property
    def coefs_(self):
        self._check_fitted()
        return self._network.get_weights()[0::2]

    @property
    def intercepts_(self):
        self._check_fitted()
        return self._network.get_weights()[1::2]

    def get_weights(self):
        """The weights as ``[W1, b1, W2, b2, ...]``, float32 copies.

        Returns
        -------
        list of ndarray
            ``W`` of shape (n_in, n_out), ``b`` of shape (n_out,).
        """
        self._check_fitted()
        return self._network.get_weights()

    def set_weights(self, weights, classes=None):
        """Load ``[W1, b1, ..., WL, bL]`` (resets momentum).

        On a fitted model the shapes must match it. Before ``fit``, the weights build the
        network, as in Keras: the layer sizes are read from their shapes, which must agree with
        ``hidden_layer_sizes``, and the classes are ``classes`` or ``0, 1, ..., n_out - 1``.

        Parameters
        ----------
        weights : list of array-like
            ``W`` of shape (n_in, n_out), ``b`` of shape (n_out,).
        classes : array-like, shape (n_out,), optional
            Only before ``fit``: the label of each output, sorted and distinct.
        """
        if self.__sklearn_is_fitted__():
            if classes is not None:
                raise ValueError("classes= builds a model; this one is fitted already")
            self._network.set_weights(weights)
            return
        weights = [np.asarray(w) for w in weights]
        if len(weights) < 2 or len(weights) % 2:
            raise ValueError(f"weights must be [W1, b1, ..., WL, bL], got {len(weights)} arrays")
        sizes = [weights[0].shape[0] if weights[0].ndim == 2 else None]
        for layer, (W, b) in enumerate(zip(weights[0::2], weights[1::2]), start=1):
            if W.ndim != 2 or W.shape[0] != sizes[-1] or b.shape != W.shape[1:]:
                raise ValueError(f"W{layer} has shape {W.shape} and b{layer} {b.shape}: expected "
                                 f"({sizes[-1]}, n_out) and (n_out,)")
            sizes.append(W.shape[1])
        hidden = self._check_params()
        if tuple(sizes[1:-1]) != hidden:
            raise ValueError(f"the weights have hidden layers {tuple(sizes[1:-1])}, but "
                             f"hidden_layer_sizes is {hidden}")
        classes = np.arange(sizes[-1]) if classes is None else np.asarray(classes)
        if classes.shape != (sizes[-1],) or not np.array_equal(np.unique(classes), classes):
            raise ValueError(f"classes must be {sizes[-1]} distinct labels in sorted order, one "
                             f"per output, got {classes!r}")
        if sizes[-1] < 2:
            raise ValueError("a classifier needs at least 2 outputs")
        built = type(self).from_state({
            "params": self.get_params(deep=False), "layer_sizes": sizes, "weights": weights,
            "classes": classes, "loss_curve": [], "history": {}, "n_iter": 0})
        self.__dict__.update(built.__dict__)

    def save(self, path):
        """Save the fitted model to ``path`` in fastmlp's ``.npz`` format (no pickle).

        The file is written atomically: a crash or error leaves any previous file intact.
        See :func:`fastmlp.io.save` for the format.

        Parameters
        ----------
        path : str or os.PathLike
        """
        from .io import save
        save(self, path)

    def save_onnx(self, path, **kwargs):
        """Write the fitted model to ``path`` as ONNX (atomically), for ONNX Runtime.

        Needs the ``onnx`` extra (``pip install "fastmlp[onnx]"``); see
        :func:`fastmlp.onnx.to_onnx` for the graph, its outputs and ``kwargs``.

        Parameters
        ----------
        path : str or os.PathLike
        """
        from .onnx import save_onnx
        save_onnx(self, path, **kwargs)

    def get_state(self):
        """The fitted model as a plain dict: what a model file or a checkpoint stores.

        :meth:`from_state` makes the same model from it; :mod:`fastmlp.io` and
        :mod:`fastmlp.checkpoint` write and read it.

        Returns
        -------
        dict
            ``params`` : dict
                The constructor's parameters (``get_params(deep=False)``), ``activation``
                being the one the network computes.
            ``layer_sizes`` : list of int
                Widths from the input to the output, ``[n_features_in_, *hidden, n_classes]``.
            ``weights`` : list of ndarray
                ``[W1, b1, ..., WL, bL]``, float32 copies; ``Wl`` of shape
                ``(layer_sizes[l-1], layer_sizes[l])``, ``bl`` of shape ``(layer_sizes[l],)``.
            ``velocity`` : list of ndarray
                The momentum buffers, shaped like ``weights``; empty without momentum.
            ``adam_state`` : list of ndarray
                With ``solver="adam"``: the first moments shaped like ``weights``, then the
                second moments; else empty.
            ``adam_t`` : int
                Adam's steps taken (the bias correction's t); 0 without Adam.
            ``classes`` : ndarray, shape (n_classes,)
            ``feature_names_in`` : ndarray of str or None
            ``loss_curve`` : list of float
            ``history`` : dict of str to list of float
            ``n_iter`` : int
            ``best_epoch`` : int or None
                The 0-based index into ``loss_curve`` of the epoch early stopping kept
                (``best_epoch_ - 1``).
            ``rng`` : dict
                The state of the random generator that shuffles the next epochs
                (``numpy.random.Generator.bit_generator.state``).
            ``dropout_seed`` : int or None
                The dropout masks' seed (None: not drawn yet).
            ``dropout_step`` : int
                The training steps taken since the masks' seed was drawn: the next step's
                number in its masks' key.

        Raises
        ------
        NotFittedError
            If the model is not fitted.
        """
        self._check_fitted()
        network = self._network
        names = getattr(self, "feature_names_in_", None)
        params = self.get_params(deep=False)
        params["activation"] = self._activation
        return {
            "params": params,
            "layer_sizes": [int(s) for s in network.sizes],
            "weights": network.get_weights(),
            "velocity": network.get_velocity(),
            "adam_state": network.get_optimizer_state() if network.has_adam else [],
            "adam_t": int(getattr(self, "_adam_t", 0)),
            "classes": self.classes_,
            "feature_names_in": None if names is None else np.asarray(names, dtype=object),
            "loss_curve": list(self.loss_curve_),
            "history": {key: list(values) for key, values in getattr(self, "history_", {}).items()},
            "n_iter": int(getattr(self, "n_iter_", len(self.loss_curve_))),
            "best_epoch": None if getattr(self, "best_epoch_", None) is None
                          else self.best_epoch_ - 1,
            "rng": self._rng.bit_generator.state,
            "dropout_seed": getattr(self, "_dropout_seed", None),
            "dropout_step": int(getattr(self, "_dropout_step", 0)),
        }

    @classmethod
    def from_state(cls, state):
        """The fitted model that a :meth:`get_state` dict describes.

        Parameters
        ----------
        state : dict
            As returned by :meth:`get_state`. These keys may be left out: ``velocity``
            (zero velocities), ``adam_state`` and ``adam_t`` (Adam from its start), ``rng``
            (a generator seeded from ``random_state``), ``feature_names_in`` and
            ``best_epoch`` (None), ``dropout_seed`` (None: drawn when training starts) and
            ``dropout_step`` (0); ``params`` may hold only some parameters (the others take
            their defaults).

        Returns
        -------
        MLPClassifier
            Ready to ``predict``, or to train further with ``partial_fit`` or ``warm_start``.

        Raises
        ------
        ValueError
            If a parameter is invalid, the weights or velocities do not match
            ``layer_sizes``, or ``rng`` is not a generator state.
        """
        model = cls(**state["params"])
        model._check_params()
        sizes = [int(s) for s in state["layer_sizes"]]
        model.classes_ = state["classes"]
        model.n_features_in_ = sizes[0]
        if state.get("feature_names_in") is not None:
            model.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
        model._rng = _rng(model.random_state)
        if "rng" in state:
            try:
                model._rng.bit_generator.state = state["rng"]
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"invalid random generator state ({exc})") from None
        # Buffers for one row: training grows them to its batches (_prepare_fit), so a
        # batch_size read from a file allocates nothing.
        adam = model.solver == "adam"
        rates = _core._dropout_rates(model.dropout, len(sizes) - 2)
        network = _new_network(sizes, 1, model.momentum > 0, model.activation, adam, rates)
        network.set_weights(state["weights"])    # zeroes the velocities: set them after
        velocity = state.get("velocity")
        if velocity:
            if len(velocity) != 2 * network.n_layers or not network.has_velocity:
                raise ValueError("momentum velocities do not match the model")
            network.set_velocity(velocity)
        adam_state = state.get("adam_state")
        if adam_state:
            if len(adam_state) != 4 * network.n_layers or not adam:
                raise ValueError("Adam's moments do not match the model")
            network.set_optimizer_state(adam_state)
        adam_t = state.get("adam_t", 0)
        if isinstance(adam_t, bool) or not isinstance(adam_t, numbers.Integral) or adam_t < 0:
            raise ValueError(f"adam_t must be an integer >= 0, got {adam_t!r}")
        model._adam_t = int(adam_t)
        seed, step = state.get("dropout_seed"), state.get("dropout_step", 0)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                                 or not 0 <= seed < 2 ** 64):
            raise ValueError(f"dropout_seed must be None or an integer in [0, 2**64), got "
                             f"{seed!r}")
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"dropout_step must be an integer >= 0, got {step!r}")
        model._dropout_seed = None if seed is None else int(seed)
        model._dropout_step = int(step)
        model._network = network
        model._activation = model.activation
        model.loss_curve_ = list(state["loss_curve"])
        model.history_ = {key: list(values) for key, values in state["history"].items()}
        model.n_iter_ = int(state["n_iter"])
        if state.get("best_epoch") is not None:
            model.best_epoch_ = state["best_epoch"] + 1
        return model

    def __getstate__(self):
        state = dict(self.__dict__)
        network = state.pop("_network", None)
        if network is not None:
            state["_network_state"] = {
                "sizes": network.sizes, "max_batch": network.max_batch,
                "momentum": network.has_velocity, "activation": self._activation,
                "weights": network.get_weights(),
                "velocity": network.get_velocity(), "adam": network.has_adam,
                "optimizer_state": network.get_optimizer_state(), "dropout": network.dropout}
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved = state.pop("_network_state", None)
        state.setdefault("activation", DEFAULT_ACTIVATION)   # a pickle without it is ReLU
        for name, default in (("solver", DEFAULT_SOLVER), ("beta_1", 0.9), ("beta_2", 0.999),
                              ("epsilon", 1e-8), ("_adam_t", 0),   # a pickle from before Adam
                              ("dropout", 0.0), ("_dropout_seed", None),
                              ("_dropout_step", 0)):   # or from before dropout
            state.setdefault(name, default)
        self.__dict__.update(state)
        if saved is not None:
            # A pickle without an activation holds a ReLU network.
            self._activation = saved.get("activation", DEFAULT_ACTIVATION)
            network = _new_network(saved["sizes"], saved["max_batch"], saved["momentum"],
                                   self._activation, saved.get("adam", False),
                                   saved.get("dropout"))
            network.set_weights(saved["weights"])
            if saved["momentum"] and saved["velocity"]:
                network.set_velocity(saved["velocity"])
            if saved.get("adam", False):
                network.set_optimizer_state(saved["optimizer_state"])
            self._network = network


class MLP(MLPClassifier):
    __doc__ = MLPClassifier.__doc__

