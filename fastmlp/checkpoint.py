"""Training checkpoints: the whole training state after every epoch, written atomically, and
resuming from it so that an interrupted run ends bit-identical to an uninterrupted one.

A checkpoint is one file, ``DIR/checkpoint.npz``: an uncompressed ``.npz`` (never pickle) with

- ``model``: the bytes of the model in fastmlp's model format (:mod:`fastmlp.io`), so
  :func:`fastmlp.io.load` checks them like any model file;
- ``state``: the UTF-8 bytes of a JSON object ``{"format": "fastmlp.checkpoint",
  "format_version": 1, "epochs_done": int, "rng": <numpy bit generator state>}``;
- ``vW1``, ``vb1``, ...: the momentum velocities (only when the model has them);
- ``adam_mW1``, ``adam_mb1``, ..., ``adam_vW1``, ``adam_vb1``, ...: Adam's first and second
  moments (only with ``solver="adam"``), and ``"adam_t"`` (its steps taken) in ``state``;
  ``state`` also holds ``"dropout_seed"`` (an integer or null) and ``"dropout_step"``, the key
  of the next step's dropout masks.

It is replaced atomically (temporary file, fsync, rename) after every epoch, so a crash or a
Ctrl-C at any moment leaves the previous epoch's checkpoint intact.
"""
import functools
import io
import json
import os

import numpy as np

from . import _archive
from . import io as _io
from ._files import atomic_write, is_temporary_name, remove_stale_temporaries, stale_entries
from .mlp import MLP

__all__ = ["CHECKPOINT_NAME", "Checkpointer", "fit", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_NAME = "checkpoint.npz"
FORMAT = "fastmlp.checkpoint"
FORMAT_VERSION = 1
# The state member is a few hundred bytes; this bounds what load_checkpoint reads of it.
MAX_STATE_BYTES = 1 << 20
# Parameters that must match between a checkpoint and the run that resumes it.
_TRAINING_PARAMS = ("hidden_layer_sizes", "learning_rate", "batch_size", "shuffle",
                    "random_state", "loss", "momentum", "nesterov", "alpha", "lr_schedule",
                    "lr_decay", "lr_step_epochs", "validation_split", "activation", "solver",
                    "beta_1", "beta_2", "epsilon", "dropout", "precision")


def _fail(path, message):
    raise ValueError(f"{path}: not a valid fastmlp checkpoint: {message}")


def save_checkpoint(model, path):
    """Write the training state of a fitted ``model`` to ``path`` atomically.

    Parameters
    ----------
    model : fastmlp.MLP
        A fitted model (after at least one epoch).
    path : str or os.PathLike
        The checkpoint file; a previous one is replaced only once the new one is complete.

    Raises
    ------
    NotFittedError
        If the model is not fitted.
    OSError
        If the file cannot be written; ``path`` is then left as it was.
    """
    training = model.get_state()
    buffer = io.BytesIO()
    _io.writer(training)(buffer)
    model_bytes = buffer.getbuffer()
    state = {"format": FORMAT, "format_version": FORMAT_VERSION,
             "epochs_done": len(training["loss_curve"]), "rng": training["rng"],
             "adam_t": training["adam_t"], "dropout_seed": training["dropout_seed"],
             "dropout_step": training["dropout_step"]}
    arrays = {"model": np.frombuffer(model_bytes, np.uint8),
              "state": np.frombuffer(json.dumps(state).encode("utf-8"), np.uint8)}
    velocity = training["velocity"]
    for l in range(len(velocity) // 2):
        arrays[f"vW{l + 1}"] = velocity[2 * l]
        arrays[f"vb{l + 1}"] = velocity[2 * l + 1]
    for name, a in zip(_adam_names(len(training["adam_state"]) // 4), training["adam_state"]):
        arrays[name] = a
    atomic_write(os.fspath(path), lambda f: np.savez(f, **arrays))


def _adam_names(n_layers):
    """The members of Adam's moments, in get_optimizer_state's order."""
    return [f"adam_{m}{k}{l}" for m in "mv" for l in range(1, n_layers + 1) for k in "Wb"]


def load_checkpoint(path, max_bytes=None):
    """The model saved in the checkpoint ``path``, ready to continue training.

    The file is read under the model loader's rules (:mod:`fastmlp._archive`): a regular file,
    bounded sizes checked before anything is allocated, no pickle, and ``ValueError`` for
    every malformed file.

    Parameters
    ----------
    path : str or os.PathLike
    max_bytes : int, optional
        The most bytes the file, and its arrays uncompressed, may hold; default
        ``fastmlp._limits.MAX_LOAD_BYTES``.

    Returns
    -------
    model : fastmlp.MLP
        With its weights, momentum velocities, history and random generator state restored.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a valid checkpoint.
    """
    path = os.fspath(path)
    max_bytes = _io.load_budget(max_bytes)
    fail = functools.partial(_fail, path)
    with _archive.open_regular(path, max_bytes, fail) as f, \
            _archive.open_archive(f, max_bytes, fail) as archive:
        try:
            return _load_members(path, archive, max_bytes, fail)
        except (MemoryError, RecursionError) + _archive.READ_ERRORS as exc:
            fail(f"{type(exc).__name__}: {exc}")


def _load_members(path, archive, max_bytes, fail):
    members = {}
    for name, limit in (("model", max_bytes), ("state", MAX_STATE_BYTES)):
        members[name] = _archive.read_npy(archive, name, fail, max_bytes=limit)
        if members[name].dtype != np.uint8 or members[name].ndim != 1:
            fail(f"member {name!r} is not a 1-D uint8 array")
    state = _archive.read_json(members["state"], "state", fail)
    if state.get("format") != FORMAT:
        fail(f"format is not {FORMAT!r}")
    if state.get("format_version") != FORMAT_VERSION:
        fail(f"format version {state.get('format_version')!r}, expected {FORMAT_VERSION}")
    saved = _io.read_state_from(io.BytesIO(members.pop("model")), f"{path} (its model)",
                                max_bytes)
    if state.get("epochs_done") != len(saved["loss_curve"]):
        fail("epochs_done differs from the model's loss curve")
    try:
        np.random.default_rng().bit_generator.state = state["rng"]
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        fail(f"invalid random generator state ({type(exc).__name__}: {exc})")
    saved["rng"] = state["rng"]
    saved["adam_t"] = state.get("adam_t", 0)
    saved["dropout_seed"] = state.get("dropout_seed")
    saved["dropout_step"] = state.get("dropout_step", 0)
    try:
        model = MLP.from_state(saved)   # zero velocities: read below, once the shapes are known
    except ValueError as exc:
        fail(str(exc))
    network = model._network
    names = [f"{k}{l}" for l in range(1, network.n_layers + 1) for k in ("vW", "vb")]
    sizes = network.sizes
    shapes = [shape for n_in, n_out in zip(sizes[:-1], sizes[1:])
              for shape in ((n_in, n_out), (n_out,))]
    if network.has_adam:
        adam = _adam_names(network.n_layers)
        expected = {"model.npy", "state.npy"} | {name + ".npy" for name in adam}
        if set(archive.namelist()) != expected:
            fail("Adam's moments do not match the model")
        moments = [_archive.read_npy(archive, name, fail, dtype=np.float32, shape=shape)
                   for name, shape in zip(adam, shapes + shapes)]
        try:
            network.set_optimizer_state(moments)
        except ValueError as exc:
            fail(str(exc))
        return model
    expected = {"model.npy", "state.npy"} | {name + ".npy" for name in names}
    present = set(archive.namelist())
    if present - expected:
        fail(f"unexpected members {sorted(present - expected)}")
    if present == expected and network.has_velocity:
        velocity = [_archive.read_npy(archive, name, fail, dtype=np.float32, shape=shape)
                    for name, shape in zip(names, shapes)]
        for name, v in zip(names, velocity):
            if not np.isfinite(v).all():
                fail(f"{name} contains NaN or infinity")
        network.set_velocity(velocity)
    elif network.has_velocity:
        fail("the model uses momentum but the checkpoint has no velocities")
    elif present != {"model.npy", "state.npy"}:
        fail("momentum velocities do not match the model")
    return model


def _remove_stale_model_dirs(directory):
    """Remove the ``tmpXXXXXXXX/`` directories that earlier versions of save_checkpoint made
    beside the checkpoint and a killed run left: only those older than this run that hold
    nothing but that version's ``model.npz`` and its temporary files."""
    for entry in stale_entries(directory, "tmp", "", 8):
        try:
            inside = os.listdir(entry)
        except OSError:
            continue
        if all(name == "model.npz" or is_temporary_name(name, "model.npz") for name in inside):
            for name in inside:
                try:
                    os.unlink(os.path.join(entry, name))
                except OSError:
                    pass
            try:
                os.rmdir(entry)
            except OSError:
                pass


class Checkpointer:
    """Callback (``MLP(callbacks=[...])``) saving a checkpoint of ``model`` after every epoch.

    Parameters
    ----------
    model : fastmlp.MLP
        The model being trained.
    directory : str or os.PathLike
        Where ``checkpoint.npz`` is written.
    """

    def __init__(self, model, directory):
        self.model = model
        self.path = os.path.join(os.fspath(directory), CHECKPOINT_NAME)

    def __call__(self, epoch, logs):
        save_checkpoint(self.model, self.path)
        return False


def fit(model, X, y, directory=None, resume=False):
    """``model.fit(X, y)``, saving a checkpoint in ``directory`` after every epoch; with
    ``resume``, continues from ``directory``'s checkpoint when there is one.

    The resumed run ends bit-identical to an uninterrupted ``model.fit(X, y)`` with the same
    parameters: the weights, the momentum velocities, the history and the random generator
    state all come from the checkpoint.

    Parameters
    ----------
    model : fastmlp.MLP
        The model to train, with the parameters of the whole run (``epochs`` counts the
        epochs the checkpoint already holds).
    X : array-like, shape (n_samples, n_features)
        Training data.
    y : array-like, shape (n_samples,)
        Labels.
    directory : str or os.PathLike, optional
        Where ``checkpoint.npz`` is written after every epoch; None trains without one.
    resume : bool
        Continue from ``directory``'s checkpoint when there is one.

    Returns
    -------
    fastmlp.MLP
        The trained model: ``model``, or on resume a new object loaded from the checkpoint.

    Raises
    ------
    ValueError
        If ``resume`` has no directory, or the checkpoint was made with other training
        parameters (the message names the first that differs).
    """
    if directory is None:
        if resume:
            raise ValueError("resuming needs a checkpoint directory")
        return model.fit(X, y)
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(directory, CHECKPOINT_NAME)
    _remove_stale_model_dirs(directory)
    path = os.path.join(directory, CHECKPOINT_NAME)
    callbacks = list(model.callbacks or ())
    if resume and os.path.exists(path):
        saved = load_checkpoint(path)
        theirs, ours = saved.get_params(), model.get_params()
        for name in _TRAINING_PARAMS:
            a, b = theirs.get(name), ours.get(name)
            if name in ("hidden_layer_sizes", "dropout"):
                a, b = tuple(np.atleast_1d(a).tolist()), tuple(np.atleast_1d(b).tolist())
            if a != b:
                raise ValueError(f"the checkpoint in {directory} was made with {name}={a!r}, "
                                 f"this run asks for {b!r}: resume with the same options, or "
                                 f"use another checkpoint directory")
        done = len(saved.loss_curve_)
        if done >= model.epochs:
            return saved
        saved.set_params(epochs=model.epochs - done, warm_start=True, n_threads=model.n_threads,
                         verbose=model.verbose, validation_data=model.validation_data,
                         callbacks=callbacks + [Checkpointer(saved, directory)])
        saved.fit(X, y)
        saved.set_params(epochs=model.epochs, warm_start=model.warm_start, callbacks=model.callbacks)
        return saved
    model.callbacks = callbacks + [Checkpointer(model, directory)]
    try:
        model.fit(X, y)
    finally:
        model.callbacks = callbacks or None
    return model
