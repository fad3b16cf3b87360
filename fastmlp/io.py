"""Saving and loading fitted models: a documented ``.npz`` format that never runs code.

Format ``fastmlp.mlp``, version 1
---------------------------------
An uncompressed NumPy ``.npz`` archive (a zip of ``.npy`` files) holding exactly:

- ``header``: a 1-D ``uint8`` array, the UTF-8 bytes of a JSON object (strict JSON: no NaN)::

      {"format": "fastmlp.mlp", "format_version": 1, "fastmlp_version": "0.1.0",
       "layer_sizes": [784, 512, 256, 10], "loss": "cross_entropy", "activation": "relu",
       "params": {...the estimator's JSON-representable parameters...},
       "classes": {"dtype": "int64", "values": [0, 1, ...]},
       "n_features_in": 784, "feature_names_in": null or ["a", ...],
       "n_iter": 20, "loss_curve": [...], "history": {"loss": [...], ...},
       "best_epoch": null or int}

  ``activation`` names the hidden layers' activation (``fastmlp._options.ACTIVATIONS``); a
  header without it is of a ReLU network, and reads as ``"relu"``.
  ``best_epoch`` is the 0-based index into ``loss_curve`` of the epoch early stopping kept;
  the model's ``best_epoch_`` numbers that epoch from 1 (``best_epoch + 1``).

- ``W1``, ``b1``, ..., ``WL``, ``bL``: float32 arrays, ``Wl`` of shape
  ``(layer_sizes[l-1], layer_sizes[l])`` and ``bl`` of shape ``(layer_sizes[l],)``.

Classes are numbers (``dtype`` an integer, unsigned, float or bool NumPy type) or strings
(``dtype`` ``"str"``, or ``"object"`` for an object array of Python strings); any other label
type cannot be saved (``TypeError``). Non-finite values in ``loss_curve``/``history`` are
written as ``null``.

:func:`load` reads with ``allow_pickle=False``, so it never executes code from the file, and
checks everything before building a model: the member names, the header (format, version,
types, sizes), the dtypes, shapes and finiteness of every array, and the sizes of the zip
members before reading them. Anything malformed raises ``ValueError`` (a missing file raises
``FileNotFoundError``). Use this format for files from elsewhere; pickle (which the estimator
also supports, for scikit-learn and joblib) only for files you wrote yourself.

:func:`save` writes atomically: to a temporary file in the destination's directory, flushed and
fsync'ed, then renamed over the destination with ``os.replace``. On any failure the temporary
file is removed and a previous file at ``path`` is left as it was.
"""
import functools
import json
import math
import numbers
import os

import numpy as np

from . import _archive, _limits, _safety
from ._files import atomic_write
from ._options import ACTIVATIONS, DEFAULT_ACTIVATION, LOSSES
from .mlp import MLP

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "read_state", "save"]

#: The format's name in every model file's header.
FORMAT = "fastmlp.mlp"
#: The version of the format this fastmlp writes; ``load`` reads it and every earlier one.
FORMAT_VERSION = 1

# Limits of what load() accepts, so that a hostile file cannot make it allocate without bound
# (with the byte budget, _limits.MAX_LOAD_BYTES, and the archive rules of fastmlp._archive).
MAX_HEADER_BYTES = 64 << 20
MAX_LAYER_WIDTH = 1 << 24
#: The most weights and biases a model file may declare.
MAX_PARAMETERS = 1 << 31
_NUMBER_KINDS = "iufb"
_HEADER_KEYS = {"format", "format_version", "fastmlp_version", "layer_sizes", "loss",
                "activation", "params", "classes", "n_features_in", "feature_names_in", "n_iter",
                "loss_curve", "history", "best_epoch"}
# Keys a version-1 header may leave out, and what their absence means.
_HEADER_DEFAULTS = {"activation": DEFAULT_ACTIVATION}
# Parameters stored in the header (the others, like callbacks and validation data, are not).
_SAVED_PARAMS = ("hidden_layer_sizes", "learning_rate", "batch_size", "epochs", "shuffle",
                 "random_state", "n_threads", "verbose", "loss", "momentum", "nesterov", "alpha",
                 "lr_schedule", "lr_decay", "lr_step_epochs", "validation_split",
                 "early_stopping", "patience", "monitor", "min_delta", "warm_start",
                 "activation", "solver", "beta_1", "beta_2", "epsilon", "dropout", "precision")


# ---------------------------------------------------------------------------------------------
# save
# ---------------------------------------------------------------------------------------------

def _json_number(x):
    x = float(x)
    return x if math.isfinite(x) else None


def _classes_to_json(classes):
    classes = np.asarray(classes)
    kind = classes.dtype.kind
    if kind in _NUMBER_KINDS:
        values = classes.tolist()
        if kind == "f" and not all(math.isfinite(v) for v in values):
            raise TypeError("classes_ contains NaN or infinity: such a model cannot be saved")
        return {"dtype": classes.dtype.name, "values": values}
    if kind == "U":
        return {"dtype": "str", "values": classes.tolist()}
    if kind == "O" and all(isinstance(v, str) for v in classes.tolist()):
        return {"dtype": "object", "values": classes.tolist()}
    raise TypeError(f"cannot save a model whose classes_ are not numbers or strings "
                    f"(dtype {classes.dtype}, first {classes[:3].tolist()!r}); re-encode the "
                    f"labels, for example as strings, or pickle the model instead")


def _param_to_json(name, value):
    if name == "hidden_layer_sizes":
        if isinstance(value, numbers.Integral):
            value = (value,)
        return [int(v) for v in value]
    if name == "dropout" and not isinstance(value, numbers.Real):
        return [float(v) for v in value]   # one rate per hidden layer
    if name == "random_state" and not isinstance(value, numbers.Integral):
        return None  # a Generator is not saved; the loaded model gets a fresh one
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"parameter {name}={value!r} cannot be saved")


def _no_dropout(value):
    """Whether a dropout parameter drops nothing: a file then leaves it out, as files made
    before dropout do."""
    return all(float(v) == 0.0 for v in np.atleast_1d(value))


def _left_out(name, value):
    """Whether a parameter at the value that files made before it mean is left out of a file
    (so that those versions still read it)."""
    return (name == "dropout" and _no_dropout(value)) or (name == "precision" and value == "fp32")


def _header(state):
    params = state["params"]
    names = state["feature_names_in"]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fastmlp_version": _version(),
        "layer_sizes": state["layer_sizes"],
        "loss": params["loss"],
        "activation": params["activation"],
        "params": {name: _param_to_json(name, params[name]) for name in _SAVED_PARAMS
                   if name in params and not _left_out(name, params[name])},
        "classes": _classes_to_json(state["classes"]),
        "n_features_in": state["layer_sizes"][0],
        "feature_names_in": None if names is None else [str(n) for n in names],
        "n_iter": state["n_iter"],
        "loss_curve": [_json_number(v) for v in state["loss_curve"]],
        "history": {key: [_json_number(v) for v in values]
                    for key, values in state["history"].items()},
        "best_epoch": state["best_epoch"],
    }


def _version():
    from . import __version__
    return __version__


def save(model, path):
    """Save a fitted model to ``path`` (format ``fastmlp.mlp`` version 1, see the module doc).

    Parameters
    ----------
    model : fastmlp.MLP
        A fitted model.
    path : str or os.PathLike
        The destination; written as given (no extension is added).

    Raises
    ------
    NotFittedError
        If the model is not fitted.
    TypeError
        If ``classes_`` are not numbers or strings, or a parameter cannot be represented.
    OSError
        If the file cannot be written; ``path`` is then left as it was.
    """
    atomic_write(os.fspath(path), writer(model.get_state()))


def writer(state):
    """A function writing the model file of ``state`` (:meth:`MLP.get_state`) to a binary
    file object (checked here, before any byte is written)."""
    header = json.dumps(_header(state), allow_nan=False, separators=(",", ":")).encode("utf-8")
    arrays = {"header": np.frombuffer(header, dtype=np.uint8)}
    weights = state["weights"]
    for l in range(1, len(weights) // 2 + 1):
        arrays[f"W{l}"] = np.ascontiguousarray(weights[2 * l - 2], dtype=np.float32)
        arrays[f"b{l}"] = np.ascontiguousarray(weights[2 * l - 1], dtype=np.float32)
    return lambda f: np.savez(f, **arrays)


# ---------------------------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------------------------

def _fail(path, message):
    raise ValueError(f"{path}: not a valid fastmlp model file: {message}")


def _expect_type(path, value, types, what):
    if isinstance(value, bool) and bool not in types:
        _fail(path, f"{what} has the wrong type (bool)")
    if not isinstance(value, types):
        _fail(path, f"{what} has the wrong type ({type(value).__name__})")
    return value


def _int_list(path, value, what, low=0, high=None):
    _expect_type(path, value, (list,), what)
    for v in value:
        _expect_type(path, v, (int,), f"an entry of {what}")
        if v < low or (high is not None and v > high):
            _fail(path, f"{what} has an out-of-range entry {v}")
    return value


def _float_list(path, value, what):
    _expect_type(path, value, (list,), what)
    for v in value:
        if v is not None:
            _expect_type(path, v, (int, float), f"an entry of {what}")
    return [math.nan if v is None else float(v) for v in value]


def _decode_classes(path, spec, n_classes):
    _expect_type(path, spec, (dict,), "classes")
    if set(spec) != {"dtype", "values"}:
        _fail(path, "classes must have exactly the keys 'dtype' and 'values'")
    dtype, values = spec["dtype"], spec["values"]
    _expect_type(path, dtype, (str,), "classes.dtype")
    _expect_type(path, values, (list,), "classes.values")
    if len(values) != n_classes:
        _fail(path, f"{len(values)} classes for an output layer of {n_classes}")
    if dtype in ("str", "object"):
        if not all(isinstance(v, str) for v in values):
            _fail(path, "string classes must all be strings")
        classes = np.array(values, dtype=object if dtype == "object" else str)
    else:
        try:
            np_dtype = np.dtype(dtype)
        except TypeError:
            _fail(path, f"unknown classes dtype {dtype!r}")
        if np_dtype.kind not in _NUMBER_KINDS or np_dtype.name != dtype:
            _fail(path, f"classes dtype {dtype!r} is not a plain numeric type")
        kinds = (bool,) if np_dtype.kind == "b" else (int,) if np_dtype.kind in "iu" else (int, float)
        for v in values:
            _expect_type(path, v, kinds, "a class value")
            if isinstance(v, float) and not math.isfinite(v):
                _fail(path, f"class value {v} is not finite")
        try:
            classes = np.array(values, dtype=np_dtype)
        except (OverflowError, ValueError):
            _fail(path, f"class values do not fit dtype {dtype}")
        if classes.tolist() != values:
            _fail(path, f"class values do not fit dtype {dtype}")
    if len(classes) > 1 and not np.all(classes[1:] > classes[:-1]):
        _fail(path, "classes must be distinct and sorted")
    return classes


def load(path, max_bytes=None):
    """Load a model saved by :meth:`MLP.save` / :func:`save`.

    Never executes code from the file (``allow_pickle=False``) and checks every part of it
    before allocating for it (see :mod:`fastmlp._archive` and ``docs/reliability.md``).

    Parameters
    ----------
    path : str or os.PathLike
        A regular file (not a FIFO or a device).
    max_bytes : int, optional
        The most bytes the file, and its arrays uncompressed, may hold; default
        ``fastmlp._limits.MAX_LOAD_BYTES`` (4 GiB). Raise it to load a larger model.

    Returns
    -------
    fastmlp.MLP
        A fitted model, ready to ``predict`` (or to train further with ``partial_fit`` or
        ``warm_start``).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a valid fastmlp model file of a supported version, is not a
        regular file, or needs more than ``max_bytes`` or this machine's memory.
    """
    return _model(os.fspath(path), read_state(path, max_bytes))


def _model(path, state):
    try:
        return MLP.from_state(state)
    except ValueError as exc:
        _fail(path, f"invalid parameters: {exc}")


def read_state(path, max_bytes=None):
    """The model in a model file, as the state dict of :meth:`MLP.get_state`.

    Checks everything :func:`load` checks but the parameters' values, which
    :meth:`MLP.from_state` checks when it builds the model. The state has no ``velocity``
    and no ``rng``: a model file does not store them.

    Parameters
    ----------
    path : str or os.PathLike
    max_bytes : int, optional
        As for :func:`load`.

    Returns
    -------
    dict

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`load` does.
    """
    path = os.fspath(path)
    max_bytes = load_budget(max_bytes)
    with _archive.open_regular(path, max_bytes, functools.partial(_fail, path)) as f:
        return read_state_from(f, path, max_bytes)


def load_budget(max_bytes):
    """The byte budget of a load: ``max_bytes``, checked, or the default."""
    if max_bytes is None:
        return _limits.MAX_LOAD_BYTES
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive integer, got {max_bytes!r}")
    return int(max_bytes)


def load_from(source, path, max_bytes):
    """The model in ``source`` (a binary file or bytes), named ``path`` in errors."""
    return _model(path, read_state_from(source, path, max_bytes))


def read_state_from(source, path, max_bytes):
    """The state of the model in ``source`` (a binary file or bytes), named ``path`` in
    errors; see :func:`read_state`."""
    fail = functools.partial(_fail, path)
    with _archive.open_archive(source, max_bytes, fail) as archive:
        try:
            return _read_archive(path, archive, max_bytes)
        except (MemoryError, RecursionError) + _archive.READ_ERRORS as exc:
            _fail(path, f"{type(exc).__name__}: {exc}")


def _read_archive(path, archive, max_bytes):
    fail = functools.partial(_fail, path)
    names = set(archive.namelist())
    raw = _archive.read_npy(archive, "header", fail, max_bytes=MAX_HEADER_BYTES)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        _fail(path, f"header must be a 1-D uint8 array, got {raw.dtype} with shape {raw.shape}")
    header = _archive.read_json(raw, "header", fail)
    if header.get("format") != FORMAT:
        _fail(path, f"format is {header.get('format')!r}, expected {FORMAT!r}")
    version = _expect_type(path, header.get("format_version"), (int,), "format_version")
    if version > FORMAT_VERSION:
        _fail(path, f"format version {version} was written by a newer fastmlp "
                    f"({header.get('fastmlp_version')!r}); this one reads up to {FORMAT_VERSION}")
    if version < 1:
        _fail(path, f"unknown format version {version}")
    header = {**_HEADER_DEFAULTS, **header}
    if set(header) != _HEADER_KEYS:
        _fail(path, f"header keys differ from the format's: missing "
                    f"{sorted(_HEADER_KEYS - set(header))}, unexpected {sorted(set(header) - _HEADER_KEYS)}")

    sizes = _int_list(path, header["layer_sizes"], "layer_sizes", 1, MAX_LAYER_WIDTH)
    if len(sizes) < 2:
        _fail(path, f"layer_sizes {sizes} needs at least an input and an output width")
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if n_params > MAX_PARAMETERS:
        _fail(path, f"layer_sizes {sizes} are too large")
    if 4 * n_params > max_bytes:
        _fail(path, f"layer_sizes {sizes} need {4 * n_params} bytes of weights, more than the "
                    f"{max_bytes} allowed (max_bytes)")
    n_layers = len(sizes) - 1
    expected = {"header.npy"} | {f"{k}{l}.npy" for l in range(1, n_layers + 1) for k in "Wb"}
    if names != expected:
        _fail(path, f"archive members differ from the format's: missing "
                    f"{sorted(expected - names)}, unexpected {sorted(names - expected)}")
    loss = _expect_type(path, header["loss"], (str,), "loss")
    if loss not in LOSSES:
        _fail(path, f"unknown loss {loss!r}")
    activation = _expect_type(path, header["activation"], (str,), "activation")
    if activation not in ACTIVATIONS:
        _fail(path, f"unknown activation {activation!r}; this fastmlp knows {ACTIVATIONS}")
    n_features = _expect_type(path, header["n_features_in"], (int,), "n_features_in")
    if n_features != sizes[0]:
        _fail(path, f"n_features_in {n_features} differs from layer_sizes[0] {sizes[0]}")
    classes = _decode_classes(path, header["classes"], sizes[-1])
    feature_names = header["feature_names_in"]
    if feature_names is not None:
        _expect_type(path, feature_names, (list,), "feature_names_in")
        if len(feature_names) != n_features or not all(isinstance(n, str) for n in feature_names):
            _fail(path, "feature_names_in must be null or one string per feature")
    n_iter = _expect_type(path, header["n_iter"], (int,), "n_iter")
    loss_curve = _float_list(path, header["loss_curve"], "loss_curve")
    history = _expect_type(path, header["history"], (dict,), "history")
    history = {str(k): _float_list(path, v, f"history[{k!r}]") for k, v in history.items()}
    if any(len(v) != len(loss_curve) for v in history.values()):
        _fail(path, "every history list must have one entry per epoch of loss_curve")
    best_epoch = header["best_epoch"]
    if best_epoch is not None:
        _expect_type(path, best_epoch, (int,), "best_epoch")

    params = _expect_type(path, header["params"], (dict,), "params")
    known = set(MLP().get_params(deep=False))
    unknown = set(params) - known
    if unknown:
        _fail(path, f"unknown parameters {sorted(unknown)}")
    for name, value in params.items():
        if not (value is None or isinstance(value, (bool, int, float, str, list))):
            _fail(path, f"parameter {name} has the wrong type")
    if "hidden_layer_sizes" in params:
        params["hidden_layer_sizes"] = tuple(
            _int_list(path, params["hidden_layer_sizes"], "hidden_layer_sizes", 1))
        if list(params["hidden_layer_sizes"]) != sizes[1:-1]:
            _fail(path, "params.hidden_layer_sizes differs from layer_sizes")
    if params.get("loss", loss) != loss:
        _fail(path, "params.loss differs from loss")
    if params.setdefault("activation", activation) != activation:
        _fail(path, "params.activation differs from activation")
    if isinstance(params.get("dropout"), list):   # one rate per hidden layer
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in params["dropout"]):
            _fail(path, "parameter dropout has the wrong type")
        params["dropout"] = tuple(float(v) for v in params["dropout"])
    for name, value in params.items():
        if isinstance(value, list):
            if name != "hidden_layer_sizes":
                _fail(path, f"parameter {name} has the wrong type")
    try:   # the parameters and the network's memory, before allocating for the weights
        model = MLP(**params)
        model._check_params()
        _safety.check_network_memory(sizes, 1, model.momentum > 0, model.activation)
    except (ValueError, MemoryError) as exc:
        _fail(path, f"invalid parameters: {exc}")
    weights = []
    for l in range(1, n_layers + 1):
        n_in, n_out = sizes[l - 1], sizes[l]
        for name, shape in ((f"W{l}", (n_in, n_out)), (f"b{l}", (n_out,))):
            array = _archive.read_npy(archive, name, fail, shape=shape,
                                      max_bytes=4 * math.prod(shape))
            if array.dtype.kind != "f" or array.dtype.itemsize != 4:
                _fail(path, f"{name} has dtype {array.dtype}, expected float32")
            if array.shape != shape:
                _fail(path, f"{name} has shape {array.shape}, expected {shape}")
            array = np.ascontiguousarray(array, dtype=np.float32)
            if not np.isfinite(array).all():
                _fail(path, f"{name} contains NaN or infinity")
            weights.append(array)
    return {"params": params, "layer_sizes": sizes, "weights": weights, "classes": classes,
            "feature_names_in": feature_names, "loss_curve": loss_curve, "history": history,
            "n_iter": n_iter, "best_epoch": best_epoch}
