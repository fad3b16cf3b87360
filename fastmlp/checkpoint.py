"""Training checkpoints: the whole training state after every epoch, written atomically, and
resuming from it so that an interrupted run ends bit-identical to an uninterrupted one.

A checkpoint is one file, ``DIR/checkpoint.npz``: an uncompressed ``.npz`` (never pickle) with

- ``model``: the bytes of the model in fastmlp's model format (:mod:`fastmlp.io`), so
  :func:`fastmlp.io.load` checks them like any model file;
- ``state``: the UTF-8 bytes of a JSON object ``{"format": "fastmlp.checkpoint",
  "format_version": 1, "epochs_done": int, "rng": <numpy bit generator state>}``;
- ``vW1``, ``vb1``, ...: the momentum velocities (only when the model has them).

It is replaced atomically (temporary file, fsync, rename) after every epoch, so a crash or a
Ctrl-C at any moment leaves the previous epoch's checkpoint intact.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

from . import io as _io
from ._files import atomic_write
from .mlp import MLP

__all__ = ["CHECKPOINT_NAME", "Checkpointer", "fit", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_NAME = "checkpoint.npz"
FORMAT = "fastmlp.checkpoint"
FORMAT_VERSION = 1
# Parameters that must match between a checkpoint and the run that resumes it.
_TRAINING_PARAMS = ("hidden_layer_sizes", "learning_rate", "batch_size", "shuffle",
                    "random_state", "loss", "momentum", "nesterov", "alpha", "lr_schedule",
                    "lr_decay", "lr_step_epochs", "validation_split", "activation")


def _fail(path, message):
    raise ValueError(f"{path}: not a valid fastmlp checkpoint: {message}")


def save_checkpoint(model, path):
    """Write the training state of a fitted ``model`` to ``path`` atomically."""
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(path))) as tmp:
        model_file = os.path.join(tmp, "model.npz")
        _io.save(model, model_file)
        with open(model_file, "rb") as f:
            model_bytes = f.read()
    training = model.get_state()
    state = {"format": FORMAT, "format_version": FORMAT_VERSION,
             "epochs_done": len(training["loss_curve"]), "rng": training["rng"]}
    arrays = {"model": np.frombuffer(model_bytes, np.uint8),
              "state": np.frombuffer(json.dumps(state).encode("utf-8"), np.uint8)}
    velocity = training["velocity"]
    for l in range(len(velocity) // 2):
        arrays[f"vW{l + 1}"] = velocity[2 * l]
        arrays[f"vb{l + 1}"] = velocity[2 * l + 1]
    atomic_write(os.fspath(path), lambda f: np.savez(f, **arrays))


def load_checkpoint(path):
    """The model saved in the checkpoint ``path``, ready to continue training.

    Returns
    -------
    model : fastmlp.MLP
        With its weights, momentum velocities, history and random generator state restored.

    Raises
    ------
    ValueError
        If the file is not a valid checkpoint.
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            members = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        _fail(path, f"{type(exc).__name__}: {exc}")
    except ValueError as exc:
        _fail(path, str(exc))
    for name in ("model", "state"):
        if name not in members or members[name].dtype != np.uint8 or members[name].ndim != 1:
            _fail(path, f"member {name!r} missing or not a 1-D uint8 array")
    try:
        state = json.loads(members["state"].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        _fail(path, f"state is not valid JSON ({exc})")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        _fail(path, f"format is not {FORMAT!r}")
    if state.get("format_version") != FORMAT_VERSION:
        _fail(path, f"format version {state.get('format_version')!r}, expected {FORMAT_VERSION}")
    fd, model_file = tempfile.mkstemp(suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(members["model"].tobytes())
        saved = _io.read_state(model_file)
    finally:
        os.unlink(model_file)
    if state.get("epochs_done") != len(saved["loss_curve"]):
        _fail(path, "epochs_done differs from the model's loss curve")
    saved["rng"] = state.get("rng")
    n_layers = len(saved["layer_sizes"]) - 1
    names = [f"{k}{l}" for l in range(1, n_layers + 1) for k in ("vW", "vb")]
    present = [name for name in names if name in members]
    if present:
        if len(present) != len(names):
            _fail(path, "momentum velocities do not match the model")
        velocity = [members[name] for name in names]
        for name, v in zip(names, velocity):
            if v.dtype != np.float32 or not np.isfinite(v).all():
                _fail(path, f"{name} must be finite float32")
        saved["velocity"] = velocity
    try:
        model = MLP.from_state(saved)
    except ValueError as exc:
        _fail(path, str(exc))
    if not present and model.momentum > 0:
        _fail(path, "the model uses momentum but the checkpoint has no velocities")
    return model


class Checkpointer:
    """Callback (``MLP(callbacks=[...])``) saving a checkpoint of ``model`` after every epoch."""

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
    state all come from the checkpoint. Returns the trained model (a new object on resume).
    """
    if directory is None:
        if resume:
            raise ValueError("resuming needs a checkpoint directory")
        return model.fit(X, y)
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, CHECKPOINT_NAME)
    callbacks = list(model.callbacks or ())
    if resume and os.path.exists(path):
        saved = load_checkpoint(path)
        theirs, ours = saved.get_params(), model.get_params()
        for name in _TRAINING_PARAMS:
            a, b = theirs.get(name), ours.get(name)
            if name == "hidden_layer_sizes":
                a, b = tuple(np.atleast_1d(a)), tuple(np.atleast_1d(b))
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
