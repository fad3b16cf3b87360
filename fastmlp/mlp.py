"""The MLP estimator: a thin Python driver over the compiled training step.

Python only validates, slices batches and loops over epochs; each batch is one call into C
(`fastmlp._core.Network.train_step`) that runs the forward pass, the loss, the backward pass
and the in-place update of every layer with the GIL released.

When scikit-learn is installed the estimator is a real scikit-learn classifier (it inherits
``ClassifierMixin`` and ``BaseEstimator``); without it, it is a plain class with the same API.
"""
import inspect
import math
import numbers
import time
import warnings

import numpy as np

from . import _core, _limits, _safety
from ._threading import threads as _threads
from .progress import reporters_for
from .reference import glorot_uniform, softmax

try:  # scikit-learn is optional: inherit its base classes only when it is installed.
    from sklearn.base import BaseEstimator as _SkBaseEstimator
    from sklearn.base import ClassifierMixin as _SkClassifierMixin
    from sklearn.exceptions import DataConversionWarning
    from sklearn.exceptions import NotFittedError as _SkNotFittedError
    HAVE_SKLEARN = True
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    HAVE_SKLEARN = False

    class DataConversionWarning(UserWarning):
        """Input data was converted (for example a column-vector ``y`` was flattened)."""

    class _SkNotFittedError(ValueError, AttributeError):
        pass

LOSSES = ("mse", "cross_entropy")
LR_SCHEDULES = ("constant", "step")
MONITORS = {"loss": min, "val_loss": min, "accuracy": max, "val_accuracy": max}

#: Training accuracy in ``history_`` is measured after each epoch on at most this many
#: training samples (evenly spaced, the same ones every epoch), to keep its cost small.
TRAIN_ACCURACY_SAMPLES = 5000


_FLOAT32_MAX = float(np.finfo(np.float32).max)
_HUGE = 1e300   # beyond any float32, and its difference with -_HUGE is finite in float64


class NotFittedError(_SkNotFittedError):
    """Raised when a model is used before it has been fitted.

    A ``ValueError`` and an ``AttributeError``; a subclass of scikit-learn's
    ``NotFittedError`` when scikit-learn is installed.
    """


class StopTraining(Exception):
    """Raise from a callback to stop training after the current epoch."""


# ---------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------

_FLOAT32 = np.dtype(np.float32)


def _is_sparse(X):
    return hasattr(X, "toarray") and (hasattr(X, "tocsr") or hasattr(X, "nnz"))


def check_array(X, n_features=None, name="X", estimator="the model", finite=True):
    """X as a C-contiguous float32 matrix (n_samples, n_features), validated.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features) or (n_samples, height, width)
        Lists, arrays of any real dtype (object arrays of numbers too), read-only or
        non-contiguous arrays and memmaps. Images are flattened to (n, height * width).
    n_features : int, optional
        The number of features the model expects.
    finite : bool
        Whether to check here that no value is NaN or infinite. A prediction leaves it to
        ``Network.forward(X, check_finite=True)``, which checks X block by block as it goes.

    Returns
    -------
    ndarray, shape (n_samples, n_features), float32, C-contiguous
        ``X`` itself when it already is float32 and C-contiguous (never copied then);
        otherwise one converted copy.
    """
    # Already what the kernels read: none of the conversions applies (one row: 0.59 us here
    # against 1.27 us through them).
    if not _kernel_ready(X, n_features):
        X = _as_float32_matrix(X, n_features, name, estimator)
    if finite and not _core.all_finite(X):
        raise _not_finite(name)
    return X


def _kernel_ready(X, n_features):
    """Whether X is a plain native float32 matrix, C-contiguous and aligned, with rows and
    columns (n_features of them, if given)."""
    return (type(X) is np.ndarray and X.dtype is _FLOAT32 and X.ndim == 2 and X.shape[0] > 0
            and X.shape[1] > 0 and (n_features is None or X.shape[1] == n_features)
            and X.flags.c_contiguous and X.flags.aligned)


def _as_float32_matrix(X, n_features, name, estimator):
    """X converted and checked as check_array promises, all but for NaN and infinity."""
    if _is_sparse(X):
        raise TypeError(f"sparse input is not supported: convert {name} to a dense array "
                        f"first (for example {name}.toarray())")
    try:
        X = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} could not be read as a numeric array: {exc}") from None
    kind = X.dtype.kind
    if kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {X.dtype}")
    if kind in "SUVMm":
        raise TypeError(f"{name} has dtype {X.dtype}; expected real numbers")
    if kind == "O":
        X = X.astype(np.float32)  # raises TypeError / ValueError on non-numbers
    if X.ndim == 3:
        X = X.reshape(X.shape[0], -1)
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D array (n_samples, n_features) or 3-D images "
                         f"(n_samples, height, width) for {name}; got shape {X.shape}. "
                         f"Reshape your data: a single sample with "
                         f"{name}.reshape(1, -1).")
    if X.shape[0] == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum "
                         f"of 1 is required.")
    if X.shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum "
                         f"of 1 is required.")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, but {estimator} is expecting "
                         f"{n_features} features as input.")
    # Aligned too: C reads floats through float pointers (an unaligned buffer is a copy here).
    if not (X.dtype == np.float32 and X.flags.c_contiguous and X.flags.aligned):
        X = np.require(X, dtype=np.float32, requirements=["C_CONTIGUOUS", "ALIGNED"])
    return X


def _not_finite(name):
    return ValueError(f"Input {name} contains NaN or infinity (after conversion to float32)")


def _column_names(X):
    """The string column names of a data frame, or None (pandas is never imported)."""
    columns = getattr(X, "columns", None)
    if columns is None or _is_sparse(X) or isinstance(X, np.ndarray):
        return None
    names = list(columns)
    strings = [isinstance(c, str) for c in names]
    if names and all(strings):
        return np.asarray(names, dtype=object)
    if any(strings):
        raise TypeError("Feature names are only supported if all input features have string "
                        "names, but your input has a mix of string and non-string names.")
    return None


def _check_targets(y, n_samples):
    """y as a 1-D array of class labels, one per sample."""
    if y is None:
        raise ValueError("This classifier requires y to be passed, but the target y is None")
    if _is_sparse(y):
        raise TypeError("sparse y is not supported; pass a 1-D array of labels")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected. Please change "
                      "the shape of y to (n_samples, ), for example using ravel().",
                      DataConversionWarning, stacklevel=3)
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y should be a 1d array, got an array of shape {y.shape} instead.")
    if y.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} samples but y has {y.shape[0]} labels")
    if y.dtype.kind == "c":
        raise ValueError("Complex data not supported in y")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise ValueError("Input y contains NaN or infinity")
        if np.any(y != np.round(y)):
            raise ValueError("Unknown label type: continuous. A classifier needs discrete "
                             "labels, not a regression target.")
    if y.dtype.kind == "O":
        kinds = {type(v) for v in y.tolist()}
        if any(issubclass(k, float) for k in kinds) and any(
                isinstance(v, float) and (not math.isfinite(v) or v != round(v))
                for v in y.tolist()):
            raise ValueError("Unknown label type: continuous (or NaN) labels in y")
        if len(kinds) > 1 and not all(issubclass(k, numbers.Number) for k in kinds):
            raise ValueError(f"Unknown label type: y mixes label types {sorted(k.__name__ for k in kinds)}")
    return y


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value > 2 ** 62:  # beyond any memory, and beyond the C sizes (ptrdiff_t)
        raise ValueError(f"{name} must be at most 2**62, got {value!r}")
    return int(value)


def _real(value, name, low, high=math.inf, low_open=False, high_open=False):
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value) and (value > low if low_open else value >= low)
          and (value < high if high_open else value <= high))
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
        raise ValueError(f"{name} must be a finite number in {lo}{low}, {high}{hi}, got {value!r}")
    return float(value)


def _rng(random_state):
    if isinstance(random_state, np.random.RandomState):
        random_state = random_state.randint(2 ** 31)
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.Generator)):
        return np.random.default_rng(random_state)
    raise ValueError(f"random_state must be None, an int or a numpy.random.Generator, "
                     f"got {random_state!r}")


def _loss_value(out, y, loss):
    """The training loss of raw outputs ``out`` (M, N) against label indices ``y`` (M,),
    computed in float64 exactly as the C kernels define it."""
    out = out.astype(np.float64)
    rows = np.arange(out.shape[0])
    if loss == "mse":
        out[rows, y] -= 1.0
        return float(np.einsum("ij,ij->", out, out) / out.shape[0])
    m = out.max(axis=1)
    lse = m + np.log(np.exp(out - m[:, None]).sum(axis=1))
    return float(np.mean(lse - out[rows, y]))


class _ParamsBase:
    """``get_params`` / ``set_params`` for when scikit-learn is not installed."""

    @classmethod
    def _get_param_names(cls):
        signature = inspect.signature(cls.__init__)
        return sorted(p for p in signature.parameters if p != "self")

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"Invalid parameter {key!r} for estimator {type(self).__name__}. "
                                 f"Valid parameters are: {valid}.")
            setattr(self, key, value)
        return self

    def __repr__(self):
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if not (defaults[k].default is v or
                           (type(defaults[k].default) is type(v) and defaults[k].default == v))]
        return f"{type(self).__name__}({', '.join(changed)})"


_BASES = (_SkClassifierMixin, _SkBaseEstimator) if HAVE_SKLEARN else (_ParamsBase,)


class MLPClassifier(*_BASES):
    """A multilayer perceptron classifier trained by minibatch SGD, on C kernels.

    The defaults reproduce the classic MNIST tutorial: 784 -> 512 -> 256 -> 10 with ReLU after
    the hidden layers, a linear output, the squared-error loss summed over outputs and averaged
    over the batch, plain SGD at 0.001, batches of 200 in dataset order, 30 epochs,
    Glorot-uniform weights and zero biases.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int
        Widths of the hidden layers (ReLU).
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
        Threads of the C kernels, at most; None uses ``OMP_NUM_THREADS`` or all cores. A pass
        too small to repay them uses fewer (one for a small network; see README, Performance).
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
        epoch ``e`` (from 0) uses ``learning_rate * lr_decay ** (e // lr_step_epochs)``.
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
        With early stopping: the epoch whose weights were restored.

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
                 callbacks=None, warm_start=False):
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
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        _real(self.momentum, "momentum", 0, 1, high_open=True)
        _real(self.alpha, "alpha", 0)
        _limits.check_float32(self.alpha, "alpha")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        _real(self.lr_decay, "lr_decay", 0, 1, low_open=True)
        _positive_int(self.lr_step_epochs, "lr_step_epochs")
        _real(self.validation_split, "validation_split", 0, 1, high_open=True)
        _positive_int(self.patience, "patience")
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {sorted(MONITORS)}, got {self.monitor!r}")
        _real(self.min_delta, "min_delta", 0)
        if not isinstance(self.verbose, numbers.Integral) or self.verbose < 0:
            raise ValueError(f"verbose must be 0, 1 or 2, got {self.verbose!r}")
        if self.callbacks is not None:
            for cb in self.callbacks:
                if not callable(cb):
                    raise ValueError(f"every callback must be callable, got {cb!r}")
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
        self._fit_epochs(X, y_encoded, self.epochs, validation, early_stopping=self.early_stopping)
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
        self._fit_epochs(X, y_encoded, 1, self._validation_set(), early_stopping=False)
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
            _safety.check_network_memory(sizes, max_batch, self.momentum > 0)
            network = _core.Network(sizes, max_batch, momentum=self.momentum > 0)
            network.set_weights(self._initial_weights(sizes))
            self._network = network
            self.loss_curve_ = []
            self.history_ = {}
            self.n_iter_ = 0
        else:
            self._check_feature_names(names)
            if self._network.sizes[1:-1] != hidden:
                raise ValueError(f"hidden_layer_sizes is {hidden}, but the fitted network has "
                                 f"{self._network.sizes[1:-1]}; refit with warm_start=False")
            max_batch = min(self.batch_size, X.shape[0])
            if self._network.max_batch < max_batch or (
                    self.momentum > 0 and not self._network.has_velocity):
                self._rebuild_network(max_batch)
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

    def _initial_weights(self, sizes):
        weights = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            weights += [glorot_uniform(fan_in, fan_out, self._rng), np.zeros(fan_out, np.float32)]
        return weights

    def _rebuild_network(self, max_batch):
        old = self._network
        _safety.check_network_memory(old.sizes, max_batch, self.momentum > 0 or old.has_velocity)
        self._network = _core.Network(old.sizes, max(max_batch, old.max_batch),
                                      momentum=self.momentum > 0 or old.has_velocity)
        self._network.set_weights(old.get_weights())
        if old.has_velocity and self._network.has_velocity:
            self._network.set_velocity(old.get_velocity())

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

    def _fit_epochs(self, X, y, n_epochs, validation=None, early_stopping=False):
        """The epoch loop shared by ``fit`` and ``partial_fit``.

        Runs up to ``n_epochs`` epochs after those already in ``history_``; after each one
        ``_end_epoch`` records the logs and runs the printers, the callbacks and early stopping,
        and returns True to stop.
        """
        hooks = reporters_for(self.verbose) + list(self.callbacks or ())
        begin = [h for h in hooks if hasattr(h, "on_epoch_begin")]
        step_hooks = [h.on_batch_end for h in hooks if hasattr(h, "on_batch_end")]
        n = X.shape[0]
        if n > TRAIN_ACCURACY_SAMPLES:
            acc_idx = np.linspace(0, n - 1, TRAIN_ACCURACY_SAMPLES).astype(np.intp)
            acc_set = (X[acc_idx], y[acc_idx])
        else:
            acc_set = (X, y)
        stopper = _EarlyStopping(self.monitor, self.patience, self.min_delta) if early_stopping else None
        first = len(self.loss_curve_)
        info = {"epochs": first + n_epochs, "steps": -(-n // self.batch_size), "samples": n}
        self._interrupted = False
        interrupt = _safety.InterruptFlag()   # Ctrl-C stops between two steps (fastmlp/_safety.py)
        try:
            with interrupt:
                for epoch in range(first, first + n_epochs):
                    for h in begin:
                        h.on_epoch_begin(epoch, info)
                    logs = self._run_epoch(X, y, epoch, step_hooks, interrupt)
                    # "loss" stays the running mean of the epoch's batch losses (loss_curve_);
                    # the accuracy is measured on (a sample of) the training set afterwards.
                    logs["accuracy"] = self._evaluate(*acc_set, prefix="")["accuracy"]
                    if validation is not None:
                        logs.update(self._evaluate(*validation, prefix="val_"))
                    if self._end_epoch(epoch, logs, hooks, stopper) or interrupt.requested:
                        if interrupt.requested:
                            raise KeyboardInterrupt
                        break
        except KeyboardInterrupt:
            self._interrupted = True
            warnings.warn(f"Training interrupted by the user (KeyboardInterrupt): the model keeps "
                          f"the weights of the last finished step; loss_curve_ and history_ hold "
                          f"the {len(self.loss_curve_)} finished epochs.", UserWarning, stacklevel=3)
            return self
        if stopper is not None:
            stopper.restore(self)
        return self

    def _run_epoch(self, X, y, epoch, step_hooks=(), interrupt=None):
        """One pass over the data, one C call per batch; returns the epoch's training logs."""
        n = X.shape[0]
        bs = self.batch_size
        lr = self._lr_at(epoch)
        # int64 whatever the platform's default integer: train_step_rows takes int64 rows.
        order = self._rng.permutation(n).astype(np.int64, copy=False) if self.shuffle else None
        total = 0.0
        start_time = time.perf_counter()
        network = self._network
        kept = _safety.FiniteWeights(network)   # restored if this epoch makes a weight non-finite
        with _threads(self.n_threads):
            for step, start in enumerate(range(0, n, bs)):
                rows = min(bs, n - start)
                try:
                    if order is None:
                        loss = network.train_step(X[start:start + bs], y[start:start + bs], lr,
                                                  self.loss, self.alpha, self.momentum,
                                                  self.nesterov)
                    else:   # the step's threads gather the shuffled rows: no copy made here
                        loss = network.train_step_rows(X, y, order[start:start + bs], lr,
                                                       self.loss, self.alpha, self.momentum,
                                                       self.nesterov)
                except FloatingPointError:   # the step made a weight non-finite
                    loss = math.nan
                if not abs(loss) <= _FLOAT32_MAX:   # NaN, inf, or beyond float32 (see fm_train_step)
                    raise kept.diverged(f"the loss became {loss} at epoch {epoch}, step {step}",
                                        epoch, lr)
                total += loss * rows
                for hook in step_hooks:
                    hook(epoch, step, loss)
                if interrupt is not None and interrupt.requested:
                    raise KeyboardInterrupt
        if not kept.still_finite(X[:bs]):
            raise kept.diverged(f"the weights or outputs became non-finite during epoch {epoch}",
                                epoch, lr, restore=True)
        seconds = time.perf_counter() - start_time
        return {"loss": total / n, "seconds": seconds,
                "samples_per_second": n / seconds if seconds > 0 else float("inf"), "lr": lr}

    def _evaluate(self, X, y, prefix):
        with _threads(self.n_threads):
            out = self._network.forward(X)
        return {prefix + "loss": _loss_value(out, y, self.loss),
                prefix + "accuracy": float(np.mean(np.argmax(out, axis=1) == y))}

    def _end_epoch(self, epoch, logs, hooks, stopper):
        """Record the epoch, run printers and callbacks, early stopping; True stops training.

        The records are built aside, then committed by one ``dict.update`` that no Ctrl-C can
        interrupt halfway: ``loss_curve_``, ``history_`` and ``n_iter_`` gain the epoch together
        or not at all, so the model stays savable.
        """
        done = len(self.loss_curve_)
        curve = self.loss_curve_ + [logs["loss"]]
        history = {key: self.history_.get(key, [math.nan] * done) + [logs.get(key, math.nan)]
                   for key in list(self.history_) + [k for k in logs if k not in self.history_]}
        self.__dict__.update(loss_curve_=curve, history_=history, n_iter_=len(curve))
        stop = False
        for hook in hooks:
            try:
                if hook(epoch, dict(logs)):
                    stop = True
            except StopTraining:
                stop = True
        if stopper is not None and stopper.update(self, epoch, logs):
            stop = True
        return stop

    # ---- prediction ----

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

    def _outputs(self, X):
        self._check_fitted()
        _safety.check_not_fitting(self, "predict")
        self._check_feature_names(_column_names(X))
        X = check_array(X, self.n_features_in_, estimator=type(self).__name__, finite=False)
        try:
            if self.n_threads is None:   # no context to enter: ~0.3 us of a one-sample call
                out = self._network.forward(X, check_finite=True)
            else:
                with _threads(self.n_threads):
                    out = self._network.forward(X, check_finite=True)
        except _core.NonFiniteInput:
            raise _not_finite("X") from None
        if not _core.all_finite(out) and np.isnan(out).any():   # inf - inf inside the network
            raise ValueError(f"the network's outputs are undefined (NaN) for this X: its values "
                             f"(up to {float(np.abs(X).max()):.3g}) overflow float32 inside the "
                             f"network; scale X like the training data")
        return out

    def decision_function(self, X):
        """Raw network outputs (the logits with cross-entropy).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples, n_classes), float32
            For two classes, scikit-learn's convention: shape (n_samples,), the output of the
            second class minus that of the first (float64; positive means ``classes_[1]``).
        """
        out = self._outputs(X)
        if out.shape[1] == 2:
            return out[:, 1].astype(np.float64) - out[:, 0]
        return out

    def predict_proba(self, X):
        """Class probabilities: the softmax of the outputs.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples, n_classes), float64
            Rows sum to 1 and their argmax is ``predict``'s answer. With ``loss="mse"`` the
            outputs estimate one-hot targets, not probabilities; their softmax is only a
            normalised score.
        """
        # An output that overflowed float32 is +-inf: clipped to +-1e300 in float64, a row's
        # infinite maxima share its probability and the others get 0, never NaN.
        return softmax(np.clip(self._outputs(X), -_HUGE, _HUGE, dtype=np.float64))

    def predict(self, X):
        """The predicted label of each sample.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples,), the dtype of ``classes_``
        """
        out = self._outputs(X)
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

    def set_weights(self, weights):
        """Load ``[W1, b1, ..., WL, bL]``; shapes must match the fitted model (resets momentum).

        Parameters
        ----------
        weights : list of array-like
            ``W`` of shape (n_in, n_out), ``b`` of shape (n_out,).
        """
        self._check_fitted()
        self._network.set_weights(weights)

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

    def _restore(self, sizes, weights, classes, feature_names, loss_curve, history, n_iter,
                 best_epoch):
        """Make this model the fitted model described by a saved file (see fastmlp.io)."""
        self.classes_ = classes
        self.n_features_in_ = int(sizes[0])
        if feature_names is not None:
            self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        self._rng = _rng(self.random_state)
        # Buffers for one row: training grows them to its batches (_prepare_fit), so a
        # batch_size read from a file allocates nothing.
        network = _core.Network(sizes, 1, momentum=self.momentum > 0)
        network.set_weights(weights)
        self._network = network
        self.loss_curve_ = list(loss_curve)
        self.history_ = {key: list(values) for key, values in history.items()}
        self.n_iter_ = n_iter
        if best_epoch is not None:
            self.best_epoch_ = best_epoch
        return self

    def __getstate__(self):
        state = dict(self.__dict__)
        network = state.pop("_network", None)
        if network is not None:
            state["_network_state"] = {
                "sizes": network.sizes, "max_batch": network.max_batch,
                "momentum": network.has_velocity, "weights": network.get_weights(),
                "velocity": network.get_velocity()}
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved = state.pop("_network_state", None)
        self.__dict__.update(state)
        if saved is not None:
            network = _core.Network(saved["sizes"], saved["max_batch"], momentum=saved["momentum"])
            network.set_weights(saved["weights"])
            if saved["momentum"] and saved["velocity"]:
                network.set_velocity(saved["velocity"])
            self._network = network


class MLP(MLPClassifier):
    __doc__ = MLPClassifier.__doc__


class _EarlyStopping:
    """Tracks the best value of a monitored metric and the weights that gave it."""

    def __init__(self, monitor, patience, min_delta):
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.better = MONITORS[monitor]
        self.best = None
        self.best_epoch = None
        self.best_weights = None
        self.wait = 0

    def update(self, model, epoch, logs):
        value = logs.get(self.monitor)
        if value is None or not math.isfinite(value):
            raise ValueError(f"early stopping monitors {self.monitor!r}, which this epoch did "
                             f"not produce (logs: {sorted(logs)})")
        improved = self.best is None or (
            value < self.best - self.min_delta if self.better is min else value > self.best + self.min_delta)
        if improved:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            self.best_weights = model._network.get_weights()
            return False
        self.wait += 1
        return self.wait >= self.patience

    def restore(self, model):
        if self.best_weights is not None:
            model._network.set_weights(self.best_weights)
            model.best_epoch_ = self.best_epoch
