"""A NumPy stand-in for ``fastmlp._core.Network`` with the calls of the Adam and float-target
core (spec #23, parts B and C), for testing ``fastmlp.neural_network`` before (and besides)
the compiled core.

Weights, biases and optimiser states are stored in float32 as the core stores them; each call
computes in float64 from them (``NumpyNetwork32``: in float32, as the core does) and rounds its
results to float32. Inputs are checked as the
binding checks them (float32, C-contiguous, shapes), so the estimator's conversions are
tested too. The losses, their gradients and the update rules are scikit-learn 1.9's
(sklearn/neural_network/_base.py, _stochastic_optimizers.py).
"""
import numpy as np

LOSSES = ("mse", "cross_entropy", "squared_error", "log_loss", "binary_log_loss", "poisson")
EPS = np.finfo(np.float64).eps


def _relu(z):
    return np.maximum(z, 0)


def _logistic(z):
    return np.exp(-np.logaddexp(0, -z))


ACTIVATIONS = {"identity": lambda z: z, "relu": _relu, "tanh": np.tanh, "logistic": _logistic}
# Derivatives from the activation's output a, as scikit-learn takes them.
DERIVATIVES = {"identity": lambda a: np.ones_like(a), "relu": lambda a: (a > 0).astype(a.dtype),
               "tanh": lambda a: 1 - a * a, "logistic": lambda a: a * (1 - a)}


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _xlogy(x, y):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log(np.where(x == 0, 1.0, y)))


def loss_rows(loss, z, y):
    """(per-row loss l_i, output p) of scikit-learn's loss ``loss`` on the output layer's
    pre-activation z and targets y, both (M, n_out) float64."""
    if loss == "squared_error":
        p = z
        return 0.5 * np.mean((y - p) ** 2, axis=1), p
    if loss == "log_loss":
        p = _softmax(z)
        return -np.sum(_xlogy(y, np.clip(p, EPS, 1 - EPS)), axis=1), p
    if loss == "binary_log_loss":
        p = _logistic(z)
        pc = np.clip(p, EPS, 1 - EPS)
        return -np.sum(_xlogy(y, pc) + _xlogy(1 - y, 1 - pc), axis=1), p
    if loss == "poisson":
        with np.errstate(over="ignore"):
            p = np.exp(z)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.sum(_xlogy(y, y / p) - y + p, axis=1), p
    raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")


def _check_float32_matrix(a, name, rows=None, cols=None):
    if not (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.ndim == 2
            and a.flags.c_contiguous):
        raise ValueError(f"{name} must be a C-contiguous float32 matrix, got "
                         f"{type(a).__name__} {getattr(a, 'dtype', None)} "
                         f"{getattr(a, 'shape', None)}")
    if rows is not None and a.shape[0] != rows:
        raise ValueError(f"{name} has {a.shape[0]} rows, expected {rows}")
    if cols is not None and a.shape[1] != cols:
        raise ValueError(f"{name} has {a.shape[1]} columns, expected {cols}")


class NumpyNetwork:
    """``_core.Network(sizes, max_batch, momentum=False, activation="relu", adam=False)`` in
    NumPy: the same constructor, the same methods, the same checks."""

    COMPUTE = np.float64    # the dtype of the arithmetic (storage is always float32)

    def __init__(self, sizes, max_batch, momentum=False, activation="relu", adam=False):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"bad sizes {sizes}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if momentum and adam:
            raise ValueError("momentum and adam are exclusive")
        self.sizes = sizes
        self.max_batch = int(max_batch)
        self.activation = activation
        self.has_velocity = bool(momentum)
        self.has_adam = bool(adam)
        L = len(sizes) - 1
        self._W = [np.zeros((sizes[l], sizes[l + 1]), np.float32) for l in range(L)]
        self._b = [np.zeros(sizes[l + 1], np.float32) for l in range(L)]
        n_states = 2 if adam else (1 if momentum else 0)
        self._states = [[np.zeros_like(a) for a in self._params()] for _ in range(n_states)]
        self.steps = 0   # training calls made (tests read it)

    @property
    def n_layers(self):
        return len(self.sizes) - 1

    def _params(self):
        return [a for pair in zip(self._W, self._b) for a in pair]

    def _shapes(self):
        return [a.shape for a in self._params()]

    # -- weights and states ---------------------------------------------------------------
    def get_weights(self):
        return [a.copy() for a in self._params()]

    def set_weights(self, weights):
        weights = list(weights)
        if len(weights) != 2 * self.n_layers:
            raise ValueError(f"expected {2 * self.n_layers} arrays, got {len(weights)}")
        new = []
        for a, shape in zip(weights, self._shapes()):
            a = np.asarray(a)
            if a.shape != shape:
                raise ValueError(f"array of shape {a.shape}, expected {shape}")
            a = a.astype(np.float32)
            if not np.isfinite(a).all():
                raise ValueError("weights contain NaN or infinity")
            new.append(a)
        self._W = new[0::2]
        self._b = new[1::2]
        for state in self._states:
            for s in state:
                s.fill(0)

    def get_optimizer_state(self):
        return [s.copy() for state in self._states for s in state]

    def set_optimizer_state(self, arrays):
        arrays = list(arrays)
        n = 2 * self.n_layers
        if len(arrays) != n * len(self._states):
            raise ValueError(f"expected {n * len(self._states)} state arrays, got {len(arrays)}")
        checked = []
        for a, shape in zip(arrays, self._shapes() * len(self._states)):
            if np.shape(a) != shape:
                raise ValueError(f"state of shape {np.shape(a)}, expected {shape}")
            a = np.asarray(a, np.float32)
            if not np.isfinite(a).all():
                raise ValueError("state contains NaN or infinity")
            checked.append(a.copy())
        self._states = [checked[k * n:(k + 1) * n] for k in range(len(self._states))]

    def get_velocity(self):
        return self.get_optimizer_state() if self.has_velocity else []

    def set_velocity(self, arrays):
        if not self.has_velocity:
            raise ValueError("velocity arrays do not match this network")
        self.set_optimizer_state(arrays)

    def weights_sum_squares(self):
        return float(sum(np.dot(w.ravel().astype(np.float64), w.ravel().astype(np.float64))
                         for w in self._W))

    # -- passes -----------------------------------------------------------------------------
    def _forward64(self, X, dtype=None):
        """Activations of every layer (in dtype, default COMPUTE), the output layer's
        pre-activation last."""
        dtype = self.COMPUTE if dtype is None else dtype
        acts = [X.astype(dtype)]
        f = ACTIVATIONS[self.activation]
        for l in range(self.n_layers):
            z = acts[-1] @ self._W[l].astype(dtype) + self._b[l]
            acts.append(f(z) if l < self.n_layers - 1 else z)
        return acts

    def forward(self, X, check_finite=False, n_threads=0):
        _check_float32_matrix(X, "X", cols=self.sizes[0])
        if check_finite and not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinity")
        if X.shape[0] == 0:
            return np.zeros((0, self.sizes[-1]), np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            # float64 whatever COMPUTE: the core gives each row the same bits whatever the
            # number of rows, and NumPy's float32 products do not (their blocking depends on
            # the shape); float64 rounded to float32 does, in practice.
            return self._forward64(X, np.float64)[-1].astype(np.float32)

    def _batch(self, X, Y, sample_weight, rows, loss, weight_sum):
        _check_float32_matrix(X, "X", cols=self.sizes[0])
        _check_float32_matrix(Y, "Y", rows=X.shape[0], cols=self.sizes[-1])
        if loss not in LOSSES or loss in ("mse", "cross_entropy"):
            raise ValueError(f"loss must be one of {sorted(LOSSES)} with float targets, got {loss!r}")
        if sample_weight is not None:
            if not (isinstance(sample_weight, np.ndarray) and sample_weight.dtype == np.float32
                    and sample_weight.ndim == 1 and sample_weight.flags.c_contiguous
                    and sample_weight.shape[0] == X.shape[0]):
                raise ValueError("sample_weight must be a C-contiguous float32 vector, one "
                                 "weight a row of X")
            if not (np.isfinite(sample_weight).all() and (sample_weight >= 0).all()):
                raise ValueError("sample weights must be finite and >= 0")
        if rows is not None:
            if not (isinstance(rows, np.ndarray) and rows.dtype == np.int64 and rows.ndim == 1):
                raise ValueError("rows must be an int64 vector")
            if rows.size and (rows.min() < 0 or rows.max() >= X.shape[0]):
                raise ValueError("a row number is outside X")
            X, Y = X[rows], Y[rows]
            sample_weight = None if sample_weight is None else sample_weight[rows]
        M = X.shape[0]
        if not 1 <= M <= self.max_batch:
            raise ValueError(f"batch of {M} rows, expected 1..{self.max_batch}")
        if not np.isfinite(weight_sum) or weight_sum < 0:
            raise ValueError(f"weight_sum must be finite and >= 0, got {weight_sum}")
        sw = np.ones(M) if sample_weight is None else sample_weight.astype(np.float64)
        if weight_sum == 0:
            weight_sum = float(M) if sample_weight is None else float(sw.sum())
        return X, Y.astype(self.COMPUTE), sw.astype(self.COMPUTE), 1.0 / weight_sum

    def _loss_and_grads(self, X, Y, sw, scale, loss):
        with np.errstate(over="ignore", invalid="ignore"):
            acts = self._forward64(X)
            # the loss in float64 from the output's float32 (or float64) sums, as the core's
            l, p = loss_rows(loss, acts[-1].astype(np.float64), Y.astype(np.float64))
            p = p.astype(self.COMPUTE)
            S = float(np.dot(sw.astype(np.float64), l))
            dZ = (p - Y) * (sw * self.COMPUTE(scale))[:, None]
            grads = [None] * (2 * self.n_layers)
            d = DERIVATIVES[self.activation]
            for k in range(self.n_layers - 1, -1, -1):
                grads[2 * k] = acts[k].T @ dZ
                grads[2 * k + 1] = dZ.sum(axis=0)
                if k > 0:
                    dZ = (dZ @ self._W[k].T.astype(self.COMPUTE)) * d(acts[k])
        return S, grads

    def gradient(self, X, Y, loss, sample_weight=None, weight_sum=0.0, n_threads=0):
        X, Y, sw, scale = self._batch(X, Y, sample_weight, None, loss, weight_sum)
        S, grads = self._loss_and_grads(X, Y, sw, scale, loss)
        return S, [g.astype(np.float32) for g in grads]

    def train_step_targets(self, X, Y, lr, loss, sample_weight=None, rows=None,
                           weight_sum=0.0, alpha=0.0, momentum=0.0, nesterov=False,
                           n_threads=0, adam=None):
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"learning rate must be a positive number, got {lr}")
        if not (np.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"alpha must be a number >= 0, got {alpha}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if momentum != 0 and not self.has_velocity:
            raise ValueError("momentum needs a Network made with momentum=True")
        if (adam is not None) != self.has_adam:
            raise ValueError("adam=(beta_1, beta_2, epsilon, t) is needed by, and only by, a "
                             "Network made with adam=True")
        if adam is not None:
            beta_1, beta_2, epsilon, t = adam
            if not (0 <= beta_1 < 1 and 0 <= beta_2 < 1 and epsilon > 0 and int(t) >= 1):
                raise ValueError(f"bad adam parameters {adam}")
        X, Y, sw, scale = self._batch(X, Y, sample_weight, rows, loss, weight_sum)
        S, grads = self._loss_and_grads(X, Y, sw, scale, loss)
        self.steps += 1
        if not np.isfinite(S):
            return S     # the core leaves the weights as they were
        params = self._params()
        new = []
        with np.errstate(over="ignore", invalid="ignore"):
            if adam is not None:
                lr_t = lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
            for i, (w, g) in enumerate(zip(params, grads)):
                w64 = w.astype(self.COMPUTE)
                if i % 2 == 0 and alpha != 0:
                    g = g + alpha * w64
                if adam is not None:
                    m = beta_1 * self._states[0][i] + (1 - beta_1) * g
                    v = beta_2 * self._states[1][i] + (1 - beta_2) * g * g
                    self._states[0][i] = m.astype(np.float32)
                    self._states[1][i] = v.astype(np.float32)
                    w64 = w64 - lr_t * m / (np.sqrt(v) + epsilon)
                elif self.has_velocity:
                    upd = momentum * self._states[0][i] - lr * g
                    self._states[0][i] = upd.astype(np.float32)
                    w64 = w64 + (momentum * upd - lr * g if nesterov else upd)
                else:
                    w64 = w64 - lr * g
                new.append(w64.astype(np.float32))
        if not all(np.isfinite(a).all() for a in new):
            raise FloatingPointError("the update made a weight or bias NaN or infinite")
        self._W, self._b = new[0::2], new[1::2]
        return S


class NumpyNetwork32(NumpyNetwork):
    """The stand-in with its arithmetic in float32, as the compiled core's: what the tests'
    tolerances must allow before the core lands (FASTMLP_SK_NETWORK=numpy32)."""

    COMPUTE = np.float32

