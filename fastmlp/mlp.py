"""The MLP estimator: a thin Python driver over the compiled training step.

Python only slices batches and loops over epochs; each batch is one call into C
(`fastmlp._core.Network.train_step`) that runs the forward pass, the loss, the backward pass
and the in-place SGD update of every layer with the GIL released.
"""
import numbers
import warnings

import numpy as np

from . import _core
from .reference import glorot_uniform

LOSSES = ("mse", "cross_entropy")


class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used before it has been fitted."""


def check_array(X, n_features=None, name="X"):
    """X as a C-contiguous float32 matrix (n_samples, n_features), validated.

    Images of shape (n, h, w) are flattened to (n, h * w). float32 C-contiguous input is used
    as it is (no copy); anything else is converted once.
    """
    if isinstance(X, np.ndarray) and X.dtype.kind in "OSUVc":
        raise TypeError(f"{name} has dtype {X.dtype}; expected real numbers")
    try:
        X = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be read as a numeric array: {exc}") from None
    if X.dtype.kind not in "fiub":
        raise TypeError(f"{name} has dtype {X.dtype}; expected real numbers (float, int or bool)")
    if X.ndim == 3:
        X = X.reshape(X.shape[0], -1)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features) or 3-D images "
                         f"(n_samples, height, width); got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} has 0 samples; at least 1 is required")
    if X.shape[1] == 0:
        raise ValueError(f"{name} has 0 features; at least 1 is required")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, but the model expects {n_features}")
    X = np.ascontiguousarray(X, dtype=np.float32)
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinity (after conversion to float32)")
    return X


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _rng(random_state):
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.Generator)):
        return np.random.default_rng(random_state)
    raise ValueError(f"random_state must be None, an int or a numpy.random.Generator, "
                     f"got {random_state!r}")


class MLP:
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
        SGD step size.
    batch_size : int
        Samples per step; the last batch of an epoch holds the remainder.
    epochs : int
        Passes over the data made by ``fit``.
    shuffle : bool
        Shuffle the samples before each epoch (with ``random_state``).
    random_state : None, int or numpy.random.Generator
        Seeds the initial weights and the shuffling. The same int gives the same model, bit for
        bit, whatever the thread count.
    n_threads : int or None
        Threads of the C kernels; None uses ``OMP_NUM_THREADS`` or all cores.
    verbose : int
        0 silent; >= 1 prints ``epoch step loss: value`` every 100 steps, as the tutorial does.
    loss : {"mse", "cross_entropy"}
        "mse" is the tutorial's loss on one-hot targets; "cross_entropy" is softmax followed by
        the negative log-likelihood.
    momentum : float
        Momentum of the SGD update, in [0, 1).
    nesterov : bool
        Use Nesterov's momentum.
    alpha : float
        L2 penalty on the weights.

    Attributes
    ----------
    coefs_ : list of ndarray, shape (n_in, n_out)
    intercepts_ : list of ndarray, shape (n_out,)
    classes_ : ndarray, the distinct labels seen in ``fit``
    n_features_in_ : int
    loss_curve_ : list of float, the mean training loss of each epoch
    """

    def __init__(self, hidden_layer_sizes=(512, 256), learning_rate=0.001, batch_size=200,
                 epochs=30, shuffle=False, random_state=None, n_threads=None, verbose=0,
                 loss="mse", momentum=0.0, nesterov=False, alpha=0.0):
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

    # ---- parameters ----

    def _check_params(self):
        hidden = self.hidden_layer_sizes
        if isinstance(hidden, numbers.Integral):
            hidden = (hidden,)
        hidden = tuple(hidden)
        for h in hidden:
            _positive_int(h, "every hidden layer size")
        lr = self.learning_rate
        if not isinstance(lr, numbers.Real) or not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning_rate must be a positive finite number, got {lr!r}")
        _positive_int(self.batch_size, "batch_size")
        _positive_int(self.epochs, "epochs")
        if self.n_threads is not None:
            _positive_int(self.n_threads, "n_threads")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not (isinstance(self.momentum, numbers.Real) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not (isinstance(self.alpha, numbers.Real) and np.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"alpha must be a finite number >= 0, got {self.alpha!r}")
        return hidden

    # ---- fitting ----

    def fit(self, X, y):
        """Train from a fresh initialisation for ``epochs`` epochs.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features) or (n_samples, height, width)
        y : array-like, shape (n_samples,), any label values (at least two distinct)

        Returns
        -------
        self
        """
        X, y_encoded = self._prepare_fit(X, y, reset=True)
        for _ in range(self.epochs):
            if not self._run_epoch(X, y_encoded):
                break
        return self

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y) from the current weights (initialising them on first use).

        ``classes`` lists every label that will ever be seen; it is needed on the first call
        when X does not contain them all.
        """
        first = not hasattr(self, "_network")
        X, y_encoded = self._prepare_fit(X, y, reset=first, classes=classes)
        self._run_epoch(X, y_encoded)
        return self

    def _prepare_fit(self, X, y, reset, classes=None):
        hidden = self._check_params()
        X = check_array(X, None if reset else self.n_features_in_)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must be 1-D with one label per sample: X has {X.shape[0]} "
                             f"samples, y has shape {y.shape}")
        if reset:
            known = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if known.shape[0] < 2:
                raise ValueError(f"y has {known.shape[0]} distinct class; at least 2 are needed")
            self.classes_ = known
            self.n_features_in_ = X.shape[1]
            self._rng = _rng(self.random_state)
            sizes = (X.shape[1],) + hidden + (known.shape[0],)
            self._network = _core.Network(sizes, self.batch_size, momentum=self.momentum > 0)
            self._network.set_weights(self._initial_weights(sizes))
            self.loss_curve_ = []
        elif self._network.max_batch < self.batch_size or (self.momentum > 0 and not self._network.has_velocity):
            self._rebuild_network()
        y_encoded = np.searchsorted(self.classes_, y)
        unseen = (y_encoded >= len(self.classes_)) | (self.classes_[np.minimum(y_encoded, len(self.classes_) - 1)] != y)
        if unseen.any():
            raise ValueError(f"y contains labels not in classes_: {np.unique(y[unseen])[:10]}")
        return X, y_encoded.astype(np.int32)

    def _initial_weights(self, sizes):
        weights = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            weights += [glorot_uniform(fan_in, fan_out, self._rng), np.zeros(fan_out, np.float32)]
        return weights

    def _rebuild_network(self):
        weights = self._network.get_weights()
        self._network = _core.Network(self._network.sizes, self.batch_size, momentum=self.momentum > 0)
        self._network.set_weights(weights)

    def _run_epoch(self, X, y):
        """One pass over the data; returns False if training must stop."""
        n = X.shape[0]
        bs = self.batch_size
        order = self._rng.permutation(n) if self.shuffle else None
        total = 0.0
        epoch = len(self.loss_curve_)
        with _threads(self.n_threads):
            for step, start in enumerate(range(0, n, bs)):
                if order is None:
                    xb, yb = X[start:start + bs], y[start:start + bs]
                else:
                    idx = order[start:start + bs]
                    xb, yb = X[idx], y[idx]
                loss = self._network.train_step(xb, yb, self.learning_rate, self.loss,
                                                self.alpha, self.momentum, self.nesterov)
                if not np.isfinite(loss):
                    raise ValueError(
                        f"training diverged: the loss became {loss} at epoch {epoch}, step {step}; "
                        f"the weights of the last finite step are kept. Try a lower learning_rate "
                        f"(now {self.learning_rate}).")
                total += loss * xb.shape[0]
                if self.verbose and step % 100 == 0:
                    print(f"{epoch} {step} loss: {loss:.6f}", flush=True)
        self.loss_curve_.append(total / n)
        return True

    # ---- prediction ----

    def _check_fitted(self):
        if not hasattr(self, "_network"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet; call fit first.")

    def decision_function(self, X):
        """The raw network outputs, shape (n_samples, n_classes), float32."""
        self._check_fitted()
        X = check_array(X, self.n_features_in_)
        with _threads(self.n_threads):
            return self._network.forward(X)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes): the softmax of the outputs.

        For ``loss="cross_entropy"`` these are the model's probabilities. For ``loss="mse"`` the
        outputs estimate one-hot targets, not probabilities; the softmax turns them into a
        distribution whose argmax is ``predict``'s answer.
        """
        out = self.decision_function(X).astype(np.float64)
        out -= out.max(axis=1, keepdims=True)
        np.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        return out

    def predict(self, X):
        """The predicted label of each sample, shape (n_samples,)."""
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]

    def score(self, X, y):
        """Accuracy of ``predict(X)`` against ``y``."""
        y = np.asarray(y)
        predicted = self.predict(X)
        if y.shape != predicted.shape:
            raise ValueError(f"y has shape {y.shape}, expected {predicted.shape}")
        return float(np.mean(predicted == y))

    # ---- weights ----

    @property
    def coefs_(self):
        self._check_fitted()
        return self._network.get_weights()[0::2]

    @property
    def intercepts_(self):
        self._check_fitted()
        return self._network.get_weights()[1::2]

    def get_weights(self):
        """``[W1, b1, W2, b2, ...]`` as float32 copies; W has shape (n_in, n_out)."""
        self._check_fitted()
        return self._network.get_weights()

    def set_weights(self, weights):
        """Load ``[W1, b1, ..., WL, bL]``; shapes must match the fitted model."""
        self._check_fitted()
        self._network.set_weights(weights)


class _threads:
    """Sets the kernels' thread count for the duration of a block."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        if self.n is not None:
            self.saved = _core.get_num_threads()
            _core.set_num_threads(self.n)

    def __exit__(self, *exc):
        if self.n is not None:
            _core.set_num_threads(self.saved)
