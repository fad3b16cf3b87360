"""Input validation: data, labels and parameter values, checked and converted before C sees them.

Every check raises ``ValueError`` (or ``TypeError`` for a wrong kind of input) with a message
that says what was expected; what passes is in the layout the kernels read (float32,
C-contiguous, aligned).
"""
import math
import numbers
import warnings

import numpy as np

from . import _core
from ._sklearn import DataConversionWarning

__all__ = ["check_array"]

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

