"""``MLPClassifier`` and ``MLPRegressor``: scikit-learn's classes (1.9), trained by fastmlp's core.

The parameters, their validation, the fitted attributes, the random draws (initial weights,
validation split, shuffling), the stopping rules, the learning-rate schedules and the messages
are scikit-learn's, written here in the order scikit-learn runs them (its
``sklearn/neural_network/_multilayer_perceptron.py``), so the same ``random_state`` gives the
same initial weights and the same batches. Only the arithmetic moves to C: a batch's forward
pass, loss, backward pass and optimiser step are one ``Network.train_step_targets`` call, in
float32; L-BFGS's loss and gradient are ``Network.gradient`` calls over blocks of rows.

The network (``_engine.make_network``) holds the weights and the optimiser's state while the
estimator trains; ``coefs_`` and ``intercepts_`` are copied out of it after every ``fit`` and
``partial_fit``, in the input's float dtype, and copied back into it when they were changed.
"""
import copy
import math
import mmap
import warnings
from itertools import chain
from numbers import Integral, Real

import numpy as np

try:
    from sklearn.base import (BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context,
                              is_classifier)
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, column_or_1d, gen_batches
    from sklearn.utils._param_validation import Interval, Options, StrOptions
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import (_check_partial_fit_first_call, type_of_target,
                                          unique_labels)
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
    from threadpoolctl import threadpool_limits   # a dependency of scikit-learn's
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(f"fastmlp.neural_network needs scikit-learn (>= 1.9): "
                      f"pip install 'scikit-learn>=1.9' ({exc})") from exc

from .. import _core, _precision
from . import _engine

__all__ = ["MLPClassifier", "MLPRegressor"]

_STOCHASTIC_SOLVERS = ["sgd", "adam"]

# Rows per Network.gradient call of L-BFGS: the network's buffers hold this many rows of
# every layer's activations, whatever the data's size.
_LBFGS_BLOCK_ROWS = 4096

# Rows densified at a time when a prediction reads sparse input.
_SPARSE_BLOCK_ROWS = 1024

# Bytes from which a float32 copy of X gets a mapping of its own (_float32_empty).
_OWN_MAPPING_BYTES = 16 << 20

_FLOAT32_OVERFLOW = "Input {} contains infinity or a value too large for dtype('float32')."
_NON_FINITE_WEIGHTS = ("Solver produced non-finite parameter weights. The input data may"
                       " contain large values and need to be preprocessed.")


def _pack(coefs_, intercepts_):
    """Pack the parameters into a single vector."""
    return np.hstack([l.ravel() for l in coefs_ + intercepts_])


def _logistic(X):
    """The logistic function in place, without overflow: exp(-log(1 + exp(-x)))."""
    np.logaddexp(0, -X, out=X)
    np.negative(X, out=X)
    np.exp(X, out=X)


def _softmax(X):
    """The softmax of each row in place (scikit-learn's ``inplace_softmax``)."""
    tmp = X - X.max(axis=1)[:, np.newaxis]
    np.exp(tmp, out=X)
    X /= X.sum(axis=1)[:, np.newaxis]


# The output activations, applied in NumPy to the network's linear output.
_OUTPUT_ACTIVATIONS = {"identity": lambda X: None, "exp": lambda X: np.exp(X, out=X),
                       "logistic": _logistic, "softmax": _softmax}


class _SGDSchedule:
    """scikit-learn's ``SGDOptimizer`` without its arithmetic (which the core does): the
    learning rate, its schedules and the stopping decision. ``state`` holds the velocity
    while no network does (after unpickling)."""

    def __init__(self, learning_rate_init, lr_schedule, momentum, nesterov, power_t):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t
        self.state = None

    @property
    def solver(self):
        return "sgd"

    @property
    def kind(self):
        """The optimiser state the network keeps: "momentum" (a velocity) or "plain"."""
        return "momentum" if self.momentum > 0 else "plain"

    def step_arguments(self):
        """The keyword arguments of ``train_step_targets`` for the next step."""
        if self.momentum > 0:
            return {"lr": self.learning_rate, "momentum": self.momentum,
                    "nesterov": bool(self.nesterov)}
        return {"lr": self.learning_rate}

    def iteration_ends(self, time_step):
        if self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class _AdamSchedule:
    """scikit-learn's ``AdamOptimizer`` without its arithmetic: the step count ``t`` and the
    bias-corrected rate of the last step (``learning_rate``). ``state`` holds the two moments
    while no network does (after unpickling)."""

    def __init__(self, learning_rate_init, beta_1, beta_2, epsilon):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self.state = None

    solver = "adam"
    kind = "adam"

    def step_arguments(self):
        self.t += 1
        self.learning_rate = np.float64(self.learning_rate_init
                                        * math.sqrt(1 - self.beta_2 ** self.t)
                                        / (1 - self.beta_1 ** self.t))
        return {"lr": self.learning_rate_init,
                "adam": (self.beta_1, self.beta_2, self.epsilon, self.t)}

    def iteration_ends(self, time_step):
        pass

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True


def _as_float32_rows(X, name="X"):
    """X (dense or sparse, finite: validated) with float32 values, C-contiguous when dense, CSR
    when sparse; a ValueError when a value overflows float32."""
    # The cast reports an overflow itself: no second pass over the values to find one.
    try:
        with np.errstate(over="raise"):
            if hasattr(X, "tocsr"):
                return X.tocsr().astype(np.float32)
            if X.dtype == np.float32:
                return np.ascontiguousarray(X)
            if X.dtype == np.float64 and X.ndim == 2 and X.flags.c_contiguous:
                # The library's threads make the fresh pages and convert, each its part.
                X32 = _float32_empty(X.shape, populate=False)
                if not _core.float32_from_float64(X, X32):
                    raise ValueError(_FLOAT32_OVERFLOW.format(name))
                return X32
            X32 = _float32_empty(X.shape)
            np.copyto(X32, X, casting="unsafe")
            return X32
    except FloatingPointError:
        raise ValueError(_FLOAT32_OVERFLOW.format(name)) from None


def _float32_empty(shape, populate=True):
    """A C-contiguous float32 array (contents unset); from _OWN_MAPPING_BYTES on, in an
    anonymous mapping of its own, its pages made at once where the system can (MAP_POPULATE)
    if populate, else by whatever touches them first.
    NumPy asks the kernel for transparent huge pages for large arrays, and right after another
    library's fit had used the memory, finding them took 0.3-0.4 s of kernel time for MNIST's
    188 MB (0.02 s for a second fit in a row); the mapping's 4 KiB pages take about 0.07 s."""
    nbytes = 4 * math.prod(shape)
    if nbytes < _OWN_MAPPING_BYTES:
        return np.empty(shape, np.float32)
    if hasattr(mmap, "MAP_ANONYMOUS"):
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
        if populate:
            flags |= getattr(mmap, "MAP_POPULATE", 0)
        buffer = mmap.mmap(-1, nbytes, flags=flags)
    else:
        buffer = mmap.mmap(-1, nbytes)
    return np.frombuffer(buffer, np.float32).reshape(shape)


def _shuffled(sample_idx, random_state):
    """scikit-learn's ``utils.shuffle(sample_idx, random_state=random_state)`` for an index
    array: the same draw from random_state and the same order, without the input checks that
    cost it about 0.1 ms a call, once an epoch (a third of load_diabetes's default fit)."""
    order = np.arange(sample_idx.shape[0])
    random_state.shuffle(order)
    return sample_idx[order]


def _dense_rows(X32, rows):
    """The rows ``rows`` (a slice or indices) of the float32 X as a C-contiguous matrix."""
    if hasattr(X32, "toarray"):
        return np.ascontiguousarray(X32[rows].toarray())
    return np.ascontiguousarray(X32[rows])


class BaseMultilayerPerceptron(BaseEstimator):
    """Base class for MLP classification and regression (scikit-learn's, on fastmlp's core).

    Warning: This class should not be used directly. Use derived classes instead.
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "precision": [StrOptions({"fp32", "bf16"})],
    }

    def __init__(self, hidden_layer_sizes, activation, solver, alpha, batch_size,
                 learning_rate, learning_rate_init, power_t, max_iter, loss, shuffle,
                 random_state, tol, verbose, warm_start, momentum, nesterovs_momentum,
                 early_stopping, validation_fraction, beta_1, beta_2, epsilon,
                 n_iter_no_change, max_fun, precision="fp32"):
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.precision = precision

    # -- the network: built from coefs_ / intercepts_, the truth while training ---------------

    def _interleaved(self):
        return [a for pair in zip(self.coefs_, self.intercepts_) for a in pair]

    def _layer_sizes(self):
        return [self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]

    def _core_loss(self):
        """The core's name of the loss this model trains with."""
        if self.loss == "log_loss" and self.out_activation_ == "logistic":
            return "binary_log_loss"
        return self.loss

    def _weights_in_network(self):
        """Whether coefs_ and intercepts_ still hold what was last copied between them and the
        network (then the network's weights are the model's)."""
        held = self.__dict__.get("_network_weights")
        current = self.coefs_ + self.intercepts_
        return held is not None and len(held) == len(current) and all(
            a.shape == b.shape and np.array_equal(a, b) for a, b in zip(held, current))

    def _remember_weights(self):
        self._network_weights = [a.copy() for a in chain(self.coefs_, self.intercepts_)]

    def _pull_weights(self):
        """coefs_ and intercepts_ from the network, in their own dtype."""
        weights = self._network.get_weights()
        dtype = self.coefs_[0].dtype
        self.coefs_ = [w.astype(dtype) for w in weights[0::2]]
        self.intercepts_ = [b.astype(dtype) for b in weights[1::2]]
        self._remember_weights()

    def _push_weights(self, net):
        """Loads coefs_ and intercepts_ into net, keeping its optimiser state, unless it holds
        them already."""
        if self._weights_in_network():
            return
        state = net.get_optimizer_state()
        net.set_weights(self._interleaved())
        if state:
            net.set_optimizer_state(state)
        self._remember_weights()

    def _release_network(self):
        """Drops the network, keeping its optimiser state with the optimiser when it is
        that optimiser's."""
        net = self.__dict__.pop("_network", None)
        kind = self.__dict__.pop("_network_kind", None)
        self.__dict__.pop("_network_weights", None)
        optimizer = self.__dict__.get("_optimizer")
        if net is not None and optimizer is not None and kind == optimizer.kind:
            optimizer.state = net.get_optimizer_state()

    def _training_network(self, optimizer, max_batch):
        """The network that trains with ``optimizer`` on batches of up to max_batch rows,
        holding coefs_, intercepts_ and the optimiser's state."""
        net = self.__dict__.get("_network")
        if (net is not None and self._network_kind == optimizer.kind
                and net.max_batch >= max_batch and list(net.sizes) == self._layer_sizes()
                and net.activation == self.activation):
            self._push_weights(net)
            return self._with_precision(net)
        self._release_network()
        net = _engine.make_network(self._layer_sizes(), max_batch, self.activation,
                                   solver=optimizer.solver,
                                   momentum=getattr(optimizer, "momentum", 0.0))
        net.set_weights(self._interleaved())
        if optimizer.state:
            net.set_optimizer_state(optimizer.state)
        optimizer.state = None
        self._network = net
        self._network_kind = optimizer.kind
        self._remember_weights()
        return self._with_precision(net)

    def _predict_network(self):
        """A network holding the model's weights, for a forward pass."""
        net = self.__dict__.get("_network")
        if (net is not None and list(net.sizes) == self._layer_sizes()
                and net.activation == self.activation):
            self._push_weights(net)
            return self._with_precision(net)
        self._release_network()
        net = _engine.make_network(self._layer_sizes(), 1, self.activation, solver="lbfgs")
        net.set_weights(self._interleaved())
        self._network = net
        self._network_kind = "plain"
        self._remember_weights()
        return self._with_precision(net)

    def _with_precision(self, net):
        """net, its products in the model's precision (the NumPy stand-in the tests can swap
        in computes in float64 or float32 whatever it is told, so it is told only bf16)."""
        precision = getattr(self, "precision", "fp32")   # models pickled before it existed
        if precision != "fp32" or hasattr(net, "precision"):
            net.precision = precision
        if precision == "bf16":
            _precision.warn_if_emulated(precision)
        return net

    def __getstate__(self):
        state = dict(super().__getstate__())
        net = state.pop("_network", None)
        kind = state.pop("_network_kind", None)
        state.pop("_network_weights", None)
        optimizer = state.get("_optimizer")
        if net is not None and optimizer is not None and kind == optimizer.kind:
            optimizer = copy.copy(optimizer)
            optimizer.state = net.get_optimizer_state()
            state["_optimizer"] = optimizer
        return state

    # -- forward pass and fitting ---------------------------------------------------------

    def _forward_pass_fast(self, X, check_input=True):
        """The output layer's activation for X, computed by the network in float32 and
        returned in scikit-learn's dtype (X's and coefs_' common float type)."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        net = self._predict_network()
        dtype = np.result_type(X.dtype, self.coefs_[0].dtype)
        if not np.issubdtype(dtype, np.floating):
            dtype = np.float64
        X32 = _as_float32_rows(X)
        if hasattr(X32, "toarray"):
            n = X32.shape[0]
            out = np.empty((n, self.n_outputs_), np.float32)
            for start in range(0, n, _SPARSE_BLOCK_ROWS):
                rows = slice(start, min(n, start + _SPARSE_BLOCK_ROWS))
                out[rows] = net.forward(_dense_rows(X32, rows))
        else:
            out = net.forward(X32)
        out = out.astype(dtype, copy=False)
        _OUTPUT_ACTIVATIONS[self.out_activation_](out)
        return out

    def _initialize(self, y, layer_units, dtype):
        # set all attributes, allocate weights etc. for first call
        # Initialize parameters
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]

        # Compute the number of layers
        self.n_layers_ = len(layer_units)

        # Output for regression
        if not is_classifier(self):
            if self.loss == "poisson":
                self.out_activation_ = "exp"
            else:
                # loss = "squared_error"
                self.out_activation_ = "identity"
        # Output for multi class
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        # Output for binary class and multi-label
        else:
            self.out_activation_ = "logistic"

        # Initialize coefficient and intercept layers
        self.coefs_ = []
        self.intercepts_ = []

        for i in range(self.n_layers_ - 1):
            coef_init, intercept_init = self._init_coef(layer_units[i], layer_units[i + 1], dtype)
            self.coefs_.append(coef_init)
            self.intercepts_.append(intercept_init)

        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [i.copy() for i in self.intercepts_]

        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _init_coef(self, fan_in, fan_out, dtype):
        # Use the initialization method recommended by Glorot et al.
        factor = 6.0
        if self.activation == "logistic":
            factor = 2.0
        init_bound = np.sqrt(factor / (fan_in + fan_out))

        # Generate weights and bias:
        coef_init = self._random_state.uniform(-init_bound, init_bound, (fan_in, fan_out))
        intercept_init = self._random_state.uniform(-init_bound, init_bound, fan_out)
        coef_init = coef_init.astype(dtype, copy=False)
        intercept_init = intercept_init.astype(dtype, copy=False)
        return coef_init, intercept_init

    def _fit(self, X, y, sample_weight=None, incremental=False):
        # Make sure self.hidden_layer_sizes is a list
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)

        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % hidden_layer_sizes)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)

        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        n_samples, n_features = X.shape
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)

        # Ensure y is 2D
        if y.ndim == 1:
            y = y.reshape((-1, 1))

        self.n_outputs_ = y.shape[1]

        layer_units = [n_features] + hidden_layer_sizes + [self.n_outputs_]

        # check random state
        self._random_state = check_random_state(self.random_state)

        if first_pass:
            # First time training the model
            self._release_network()
            self._initialize(y, layer_units, X.dtype)

        # Run the Stochastic optimization solver
        if self.solver in _STOCHASTIC_SOLVERS:
            self._fit_stochastic(X, y, sample_weight, layer_units, incremental)

        # Run the LBFGS solver
        elif self.solver == "lbfgs":
            # L-BFGS-B calls BLAS between the gradient passes, and OpenBLAS's threads, spinning
            # after each call (and after the caller's own NumPy work), would take the cores from
            # fastmlp's: a pass over load_digits takes 0.4 ms alone and 4 ms beside them. The
            # solver's vectors are small, so one BLAS thread loses nothing.
            with threadpool_limits(limits=1, user_api="blas"):
                self._fit_lbfgs(X, y, sample_weight, layer_units)

        # validate parameter weights
        weights = chain(self.coefs_, self.intercepts_)
        if not all(np.isfinite(w).all() for w in weights):
            raise ValueError(_NON_FINITE_WEIGHTS)

        return self

    def _core_inputs(self, X, y, sample_weight):
        """X, y and sample_weight as the core reads them: float32 (X: C-contiguous or CSR)."""
        X32 = _as_float32_rows(X)
        with np.errstate(over="ignore"):
            Y32 = np.ascontiguousarray(y, dtype=np.float32)
        if not np.isfinite(Y32).all():
            raise ValueError(_FLOAT32_OVERFLOW.format("y"))
        sw32 = None
        if sample_weight is not None:
            sw32 = np.ascontiguousarray(sample_weight, dtype=np.float32)
            if not np.isfinite(sw32).all():
                raise ValueError(_FLOAT32_OVERFLOW.format("sample_weight"))
            if (sw32 < 0).any():
                raise ValueError("fastmlp.neural_network: sample_weight must be >= 0 "
                                 "(negative weights are not supported)")
        return X32, Y32, sw32

    def _fit_lbfgs(self, X, y, sample_weight, layer_units):
        try:
            import scipy.optimize
            from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
            from sklearn.utils.optimize import _check_optimize_result
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("solver='lbfgs' needs SciPy: pip install scipy") from exc
        # Store meta information for the parameters
        self._coef_indptr = []
        self._intercept_indptr = []
        start = 0

        # Save sizes and indices of coefficients for faster unpacking
        for i in range(self.n_layers_ - 1):
            n_fan_in, n_fan_out = layer_units[i], layer_units[i + 1]

            end = start + (n_fan_in * n_fan_out)
            self._coef_indptr.append((start, end, (n_fan_in, n_fan_out)))
            start = end

        # Save sizes and indices of intercepts for faster unpacking
        for i in range(self.n_layers_ - 1):
            end = start + layer_units[i + 1]
            self._intercept_indptr.append((start, end))
            start = end

        # Run LBFGS
        packed_coef_inter = _pack(self.coefs_, self.intercepts_)

        if self.verbose is True or self.verbose >= 1:
            iprint = 1
        else:
            iprint = -1

        X32, Y32, sw32 = self._core_inputs(X, y, sample_weight)
        n_samples = X32.shape[0]
        self._release_network()
        net = self._with_precision(_engine.make_network(
            layer_units, min(n_samples, _LBFGS_BLOCK_ROWS), self.activation, solver="lbfgs"))
        self._network = net
        self._network_kind = "plain"
        sw_sum = float(n_samples) if sw32 is None else float(sample_weight.sum())
        blocks = [slice(s, min(n_samples, s + _LBFGS_BLOCK_ROWS))
                  for s in range(0, n_samples, _LBFGS_BLOCK_ROWS)]
        loss_name = self._core_loss()

        def loss_grad(packed):
            self._unpack(packed)
            net.set_weights(self._interleaved())
            total = 0.0
            grads = None
            for rows in blocks:
                s, g = net.gradient(_dense_rows(X32, rows), Y32[rows], loss_name,
                                    sample_weight=None if sw32 is None else sw32[rows],
                                    weight_sum=sw_sum)
                total += s
                if grads is None:
                    grads = [a.astype(np.float64) for a in g]
                else:
                    for acc, a in zip(grads, g):
                        acc += a
            # Add L2 regularization term to loss, and its gradient to the weights'; the sum
            # of squares in the core's fixed order, the same on every CPU (NumPy's dot sums
            # in the order of its BLAS kernel).
            values = net.weights_sum_squares()
            weights = net.get_weights()[0::2]
            loss = (total + (0.5 * self.alpha) * values) / sw_sum
            for i, w in enumerate(weights):
                grads[2 * i] += (self.alpha / sw_sum) * w
            return loss, _pack(grads[0::2], grads[1::2])

        opt_res = scipy.optimize.minimize(
            loss_grad,
            packed_coef_inter,
            method="L-BFGS-B",
            jac=True,
            options={
                "maxfun": self.max_fun,
                "maxiter": self.max_iter,
                "gtol": self.tol,
                **_get_additional_lbfgs_options_dict("iprint", iprint),
            },
        )
        self.n_iter_ = _check_optimize_result("lbfgs", opt_res, self.max_iter)
        self.loss_ = opt_res.fun
        self._unpack(opt_res.x)
        net.set_weights(self._interleaved())
        self._remember_weights()

    def _unpack(self, packed_parameters):
        """Extract the coefficients and intercepts from packed_parameters."""
        for i in range(self.n_layers_ - 1):
            start, end, shape = self._coef_indptr[i]
            self.coefs_[i] = np.reshape(packed_parameters[start:end], shape)

            start, end = self._intercept_indptr[i]
            self.intercepts_[i] = packed_parameters[start:end]

    def _make_optimizer(self):
        if self.solver == "sgd":
            if self.momentum >= 1:
                raise ValueError("fastmlp.neural_network supports momentum in [0, 1) "
                                 f"for solver='sgd'; got momentum={self.momentum!r}")
            return _SGDSchedule(self.learning_rate_init, self.learning_rate, self.momentum,
                                self.nesterovs_momentum, self.power_t)
        return _AdamSchedule(self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon)

    def _fit_stochastic(self, X, y, sample_weight, layer_units, incremental):
        if not incremental or not hasattr(self, "_optimizer"):
            self._release_network()
            self._optimizer = self._make_optimizer()

        # early_stopping in partial_fit doesn't make sense
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            # don't stratify in multilabel classification
            should_stratify = is_classifier(self) and self.n_outputs_ == 1
            stratify = y if should_stratify else None
            if sample_weight is None:
                X_train, X_val, y_train, y_val = train_test_split(
                    X, y, random_state=self._random_state,
                    test_size=self.validation_fraction, stratify=stratify)
                sample_weight_train = sample_weight_val = None
            else:
                # TODO: incorporate sample_weight in sampling here.
                (X_train, X_val, y_train, y_val, sample_weight_train,
                 sample_weight_val) = train_test_split(
                    X, y, sample_weight, random_state=self._random_state,
                    test_size=self.validation_fraction, stratify=stratify)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")

            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
        else:
            X_train, y_train, sample_weight_train = X, y, sample_weight
            X_val = y_val = sample_weight_val = None

        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)

        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than "
                              "sample size. It is going to be clipped")
            batch_size = np.clip(self.batch_size, 1, n_samples)

        X32, Y32, sw32 = self._core_inputs(X_train, y_train, sample_weight_train)
        sparse = hasattr(X32, "toarray")
        optimizer = self._optimizer
        net = self._training_network(optimizer, int(batch_size))
        loss_name = self._core_loss()
        alpha = self.alpha
        values = net.weights_sum_squares() if alpha else 0.0
        batches = list(gen_batches(n_samples, batch_size))

        try:
            self.n_iter_ = 0
            for it in range(self.max_iter):
                if self.shuffle:
                    # Only shuffle the sample indices instead of X and y to
                    # reduce the memory footprint. These indices will be used
                    # to slice the X and y.
                    sample_idx = _shuffled(sample_idx, self._random_state)
                    rows_of_epoch = sample_idx.astype(np.int64)

                accumulated_loss = 0.0
                for batch_slice in batches:
                    n_batch = batch_slice.stop - batch_slice.start
                    if self.shuffle:
                        batch_idx = rows_of_epoch[batch_slice]
                    else:
                        batch_idx = batch_slice
                    if sw32 is None:
                        sw_sum = float(n_batch)
                    else:
                        sw_sum = float(sw32[batch_idx].sum(dtype=np.float64))
                    if sw_sum <= 0:
                        continue    # no weight in this batch: nothing to learn from it
                    step = optimizer.step_arguments()
                    if sparse or not self.shuffle:
                        batch_loss = net.train_step_targets(
                            _dense_rows(X32, batch_idx), np.ascontiguousarray(Y32[batch_idx]),
                            loss=loss_name,
                            sample_weight=None if sw32 is None
                            else np.ascontiguousarray(sw32[batch_idx]),
                            weight_sum=sw_sum, alpha=alpha / sw_sum, **step)
                    else:
                        batch_loss = net.train_step_targets(
                            X32, Y32, loss=loss_name, sample_weight=sw32, rows=batch_idx,
                            weight_sum=sw_sum, alpha=alpha / sw_sum, **step)
                    if not math.isfinite(batch_loss):
                        raise ValueError(_NON_FINITE_WEIGHTS)
                    # Add L2 regularization term to loss
                    batch_loss = (batch_loss + (0.5 * alpha) * values) / sw_sum
                    if alpha:
                        values = net.weights_sum_squares()
                    accumulated_loss += batch_loss * n_batch

                self.n_iter_ += 1
                self.loss_ = np.float64(accumulated_loss / X_train.shape[0])

                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))

                # update no_improvement_count based on training loss or
                # validation score according to early_stopping
                self._update_no_improvement_count(early_stopping, X_val, y_val,
                                                  sample_weight_val)

                # for learning rate that needs to be updated at iteration end
                optimizer.iteration_ends(self.t_)

                if self._no_improvement_count > self.n_iter_no_change:
                    # not better than last `n_iter_no_change` iterations by tol
                    # stop or decrease learning rate
                    if early_stopping:
                        msg = ("Validation score did not improve more than "
                               "tol=%f for %d consecutive epochs."
                               % (self.tol, self.n_iter_no_change))
                    else:
                        msg = ("Training loss did not improve more than tol=%f"
                               " for %d consecutive epochs."
                               % (self.tol, self.n_iter_no_change))

                    is_stopping = optimizer.trigger_stopping(msg, self.verbose)
                    if is_stopping:
                        break
                    else:
                        self._no_improvement_count = 0

                if incremental:
                    break

                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) "
                        "reached and the optimization hasn't converged yet."
                        % self.max_iter, ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        except FloatingPointError:
            raise ValueError(_NON_FINITE_WEIGHTS) from None
        finally:
            self._pull_weights()

        if early_stopping:
            # restore best weights
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts

    def _update_no_improvement_count(self, early_stopping, X, y, sample_weight):
        if early_stopping:
            # compute validation score (can be NaN), use that for stopping
            val_score = self._score(X, y, sample_weight=sample_weight)

            self.validation_scores_.append(val_score)

            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            # update best parameters
            # use validation_scores_, not loss_curve_
            # let's hope no-one overloads .score with mse
            last_valid_score = self.validation_scores_[-1]

            if last_valid_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0

            if last_valid_score > self.best_validation_score_:
                self.best_validation_score_ = last_valid_score
                weights = self._network.get_weights()
                dtype = self.coefs_[0].dtype
                self._best_coefs = [w.astype(dtype) for w in weights[0::2]]
                self._best_intercepts = [b.astype(dtype) for b in weights[1::2]]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_samples, n_features)
            The input data.

        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in
            regression).

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights (>= 0).

        Returns
        -------
        self : object
            Returns a trained MLP model.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def save_onnx(self, path, **kwargs):
        """Write the fitted model to ``path`` as ONNX (atomically), for ONNX Runtime.

        Needs the ``onnx`` extra (``pip install "fastmlp[onnx]"``); see
        :func:`fastmlp.onnx.to_onnx` for the graph, its outputs and ``kwargs``.

        Parameters
        ----------
        path : str or os.PathLike
        """
        from ..onnx import save_onnx
        save_onnx(self, path, **kwargs)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic"
                                 " optimizers. %s is not stochastic." % self.solver)
        return True

    def _score_with_function(self, X, y, sample_weight, score_function):
        """Private score method without input validation."""
        # Input validation would remove feature names, so we disable it
        y_pred = self._predict(X, check_input=False)

        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan

        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class MLPClassifier(ClassifierMixin, BaseMultilayerPerceptron):
    """Multi-layer Perceptron classifier: scikit-learn's ``MLPClassifier``
    (1.9), trained by fastmlp's compiled core in float32.

    This model optimizes the log-loss function using LBFGS or stochastic gradient descent.
    Parameters, attributes and behaviour are scikit-learn's; see
    ``sklearn.neural_network.MLPClassifier``. The differences: arithmetic in float32 (coefs_
    keep the input's dtype), ``sample_weight`` must be >= 0, and ``momentum`` < 1.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,)
        The number of neurons of each hidden layer.
    activation : {"relu", "identity", "logistic", "tanh"}
        The hidden layers' activation.
    solver : {"adam", "lbfgs", "sgd"}
        The weight optimiser; "lbfgs" needs SciPy.
    alpha : float
        The L2 penalty's strength (divided by the sample size when added to the loss).
    batch_size : int or "auto"
        Minibatch size of the stochastic solvers; "auto" is min(200, n_samples).
    learning_rate : {"constant", "invscaling", "adaptive"}
        SGD's learning-rate schedule.
    learning_rate_init : float
        The initial learning rate (SGD and Adam).
    power_t : float
        The exponent of the "invscaling" schedule.
    max_iter : int
        The most epochs (stochastic solvers) or iterations (L-BFGS).
    shuffle : bool
        Shuffle the samples every epoch (stochastic solvers).
    random_state : int, RandomState instance or None
        Seeds the initial weights, the shuffling and the early-stopping split, drawn as
        scikit-learn draws them.
    tol : float
        The improvement below which ``n_iter_no_change`` epochs end training.
    verbose : bool
        Print the loss after every epoch.
    warm_start : bool
        Continue from the previous fit's weights.
    momentum : float
        SGD's momentum, in [0, 1).
    nesterovs_momentum : bool
        Nesterov's momentum (SGD with momentum > 0).
    early_stopping : bool
        Hold out ``validation_fraction`` of the data and stop when its score stops improving.
    validation_fraction : float
        The share held out for early stopping.
    beta_1, beta_2 : float
        Adam's decay rates of the first and second moment estimates, in [0, 1).
    epsilon : float
        Adam's numerical-stability term.
    n_iter_no_change : int
        Epochs without an improvement of ``tol`` before stopping (stochastic solvers).
    max_fun : int
        The most loss-function calls of L-BFGS.
    precision : {"fp32", "bf16"}
        fastmlp's addition: "bf16" runs every matrix product of training and prediction with
        bfloat16 operands summed in float32 (VDPBF16PS where the CPU has it, an exact
        emulation elsewhere); the weights, the optimiser's state and the update stay float32
        (or the input's dtype for ``coefs_``). See the documentation's page on bf16.

    Examples
    --------
    >>> from fastmlp.neural_network import MLPClassifier
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> model = MLPClassifier(max_iter=50, random_state=0).fit(X / 16, y)
    >>> model.predict(X[:3] / 16).tolist()
    [0, 1, 2]
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 precision="fp32"):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            loss="log_loss", shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            precision=precision)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)

        # incremental warm_start classes_ def  action
        #    0            0         0        define classes_
        #    0            1         0        define classes_
        #    0            0         1        redefine classes_
        #    0            1         1        check compat warm_start
        #    1            1         1        check compat warm_start
        #    1            0         1        check compat last fit
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}.")

        # This downcast to bool is to prevent upcasting when working with
        # float32 data
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray, shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        """Private predict method with optional input validation"""
        y_pred = self._forward_pass_fast(X, check_input=check_input)

        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()

        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return super()._score_with_function(X, y, sample_weight=sample_weight,
                                            score_function=accuracy_score)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : array-like of shape (n_samples,)
            The target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights (>= 0).

        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit. Required for the first call.

        Returns
        -------
        self : object
            Trained MLP model.
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)

        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_log_proba(self, X):
        """Return the log of probability estimates.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            The probability of each class, in the order of ``classes_``.
        """
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)

        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()

        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        else:
            return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMultilayerPerceptron):
    """Multi-layer Perceptron regressor: scikit-learn's ``MLPRegressor``
    (1.9), trained by fastmlp's compiled core in float32.

    This model optimizes the squared error (or the Poisson deviance) using LBFGS or
    stochastic gradient descent. Parameters, attributes and behaviour are scikit-learn's; see
    ``sklearn.neural_network.MLPRegressor``. The differences: arithmetic in float32 (coefs_
    keep the input's dtype), ``sample_weight`` must be >= 0, and ``momentum`` < 1.

    Parameters
    ----------
    loss : {"squared_error", "poisson"}
        The loss; "poisson" takes an exponential output and non-negative targets.
    hidden_layer_sizes : array-like of shape (n_layers - 2,)
        The number of neurons of each hidden layer.
    activation : {"relu", "identity", "logistic", "tanh"}
        The hidden layers' activation.
    solver : {"adam", "lbfgs", "sgd"}
        The weight optimiser; "lbfgs" needs SciPy.
    alpha : float
        The L2 penalty's strength (divided by the sample size when added to the loss).
    batch_size : int or "auto"
        Minibatch size of the stochastic solvers; "auto" is min(200, n_samples).
    learning_rate : {"constant", "invscaling", "adaptive"}
        SGD's learning-rate schedule.
    learning_rate_init : float
        The initial learning rate (SGD and Adam).
    power_t : float
        The exponent of the "invscaling" schedule.
    max_iter : int
        The most epochs (stochastic solvers) or iterations (L-BFGS).
    shuffle : bool
        Shuffle the samples every epoch (stochastic solvers).
    random_state : int, RandomState instance or None
        Seeds the initial weights, the shuffling and the early-stopping split, drawn as
        scikit-learn draws them.
    tol : float
        The improvement below which ``n_iter_no_change`` epochs end training.
    verbose : bool
        Print the loss after every epoch.
    warm_start : bool
        Continue from the previous fit's weights.
    momentum : float
        SGD's momentum, in [0, 1).
    nesterovs_momentum : bool
        Nesterov's momentum (SGD with momentum > 0).
    early_stopping : bool
        Hold out ``validation_fraction`` of the data and stop when its score stops improving.
    validation_fraction : float
        The share held out for early stopping.
    beta_1, beta_2 : float
        Adam's decay rates of the first and second moment estimates, in [0, 1).
    epsilon : float
        Adam's numerical-stability term.
    n_iter_no_change : int
        Epochs without an improvement of ``tol`` before stopping (stochastic solvers).
    max_fun : int
        The most loss-function calls of L-BFGS.
    precision : {"fp32", "bf16"}
        fastmlp's addition: "bf16" runs every matrix product of training and prediction with
        bfloat16 operands summed in float32 (VDPBF16PS where the CPU has it, an exact
        emulation elsewhere); the weights, the optimiser's state and the update stay float32
        (or the input's dtype for ``coefs_``). See the documentation's page on bf16.

    Examples
    --------
    >>> from fastmlp.neural_network import MLPRegressor
    >>> from sklearn.datasets import make_regression
    >>> X, y = make_regression(n_samples=500, n_features=10, random_state=0)
    >>> model = MLPRegressor(max_iter=500, random_state=0).fit(X, y)
    >>> model.predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 precision="fp32"):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            loss=loss, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            precision=precision)

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        """Private predict method with optional input validation"""
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return super()._score_with_function(X, y, sample_weight=sample_weight,
                                            score_function=r2_score)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    # scikit-learn's check (the method, not its result) is always true: partial_fit with
    # solver="lbfgs" runs L-BFGS, as it does there.
    @available_if(lambda est: est._check_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : ndarray of shape (n_samples,)
            The target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights (>= 0).

        Returns
        -------
        self : object
            Trained MLP model.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)
