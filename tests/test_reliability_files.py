"""A trained model survives failures while saving, bad files, interrupts and crashes.

- Saving (models and checkpoints) is atomic: a failure in the middle leaves the previous file
  byte-identical and no temporary file behind.
- Loading a truncated, corrupted, wrong-version or hand-crafted file raises ValueError and never
  executes code (loading works with pickle disabled; a pickle payload in a file never runs).
- ``fastmlp train`` on SIGINT saves the model (``--save``) and exits with status 130;
  ``--checkpoint DIR`` saves after every epoch and ``--resume`` ends bit-identical to an
  uninterrupted run of the same seed.
"""
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import fastmlp
from fastmlp import MLP, checkpoint
from fastmlp import io as fio
from mnist_data import needs_mnist
from reliability_util import python_env


def small_model(**params):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6)).astype(np.float32)
    y = np.arange(120) % 3
    kw = dict(hidden_layer_sizes=(5,), learning_rate=0.01, batch_size=16, epochs=2,
              random_state=0, momentum=0.9, shuffle=True)
    kw.update(params)
    return MLP(**kw).fit(X, y), X, y


@pytest.fixture
def saved(tmp_path):
    model, X, _ = small_model()
    path = tmp_path / "model.npz"
    model.save(path)
    return model, path, X


# ---------------------------------------------------------------------------------------------
# Atomic saves
# ---------------------------------------------------------------------------------------------

class Boom(OSError):
    pass


def _fail_in_savez(monkeypatch):
    real = np.savez

    def half_then_fail(f, **arrays):
        real(f, **arrays)          # the bytes are written: the failure comes after them
        f.write(b"\0" * 100)
        raise Boom(28, "No space left on device")

    monkeypatch.setattr(fio.np, "savez", half_then_fail)


@pytest.mark.parametrize("failure", ["write", "fsync", "replace"])
def test_failed_save_leaves_the_previous_file_byte_identical(saved, monkeypatch, failure):
    model, path, X = saved
    before = path.read_bytes()
    other, _, _ = small_model(hidden_layer_sizes=(7,), random_state=1)
    if failure == "write":
        _fail_in_savez(monkeypatch)
    elif failure == "fsync":
        monkeypatch.setattr(fio.os, "fsync", lambda fd: (_ for _ in ()).throw(Boom(5, "I/O error")))
    else:
        monkeypatch.setattr(fio.os, "replace", lambda a, b: (_ for _ in ()).throw(Boom(5, "I/O error")))
    with pytest.raises(OSError):
        other.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == ["model.npz"]   # no temporary file left
    assert np.array_equal(fastmlp.load(path).decision_function(X), model.decision_function(X))


def test_failed_save_of_a_new_file_leaves_nothing(tmp_path, monkeypatch):
    model, _, _ = small_model()
    _fail_in_savez(monkeypatch)
    with pytest.raises(OSError):
        model.save(tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []


def test_keyboard_interrupt_during_save_leaves_the_previous_file(saved, monkeypatch):
    model, path, _ = saved
    before = path.read_bytes()

    def interrupted(f, **arrays):
        f.write(b"PK\3\4 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(fio.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == ["model.npz"]


def test_failed_checkpoint_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    model, X, y = small_model()
    path = tmp_path / checkpoint.CHECKPOINT_NAME
    checkpoint.save_checkpoint(model, path)
    before = path.read_bytes()
    model.partial_fit(X, y)
    real = np.savez
    calls = []

    def fail_second(f, **arrays):   # the first savez is the embedded model, the second the file
        calls.append(1)
        if len(calls) == 2:
            f.write(b"garbage")
            raise Boom(28, "No space left on device")
        real(f, **arrays)

    monkeypatch.setattr(fio.np, "savez", fail_second)
    with pytest.raises(OSError):
        checkpoint.save_checkpoint(model, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [checkpoint.CHECKPOINT_NAME]
    assert len(checkpoint.load_checkpoint(path).loss_curve_) == 2


# ---------------------------------------------------------------------------------------------
# Malformed files
# ---------------------------------------------------------------------------------------------

def members_of(path):
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def write_members(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def npy(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def header_of(members):
    return json.loads(np.load(io.BytesIO(members["header.npy"])).tobytes())


def with_header(members, **changes):
    header = header_of(members)
    header.update(changes)
    members = dict(members)
    members["header.npy"] = npy(np.frombuffer(json.dumps(header).encode(), np.uint8))
    return members


class Exploit:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def malformed_cases(path, tmp_path):
    members = members_of(path)
    good = path.read_bytes()
    marker = str(tmp_path / "pwned")
    yield "empty", b""
    yield "not a zip", b"hello, world"
    yield "truncated half", good[:len(good) // 2]
    yield "truncated end", good[:-1]
    yield "truncated start", good[1:]
    flipped = bytearray(good)
    flipped[len(good) // 3] ^= 0xFF
    yield "flipped byte", bytes(flipped)
    yield "wrong version", with_header(members, format_version=2)
    yield "version 0", with_header(members, format_version=0)
    yield "version string", with_header(members, format_version="1")
    yield "wrong format", with_header(members, format="keras")
    yield "layer sizes mismatch", with_header(members, layer_sizes=[6, 9, 3])
    yield "huge layers", with_header(members, layer_sizes=[6, 2 ** 40, 3])
    yield "negative layer", with_header(members, layer_sizes=[6, -5, 3])
    yield "too few classes", with_header(members, classes={"dtype": "int64", "values": [0, 1]})
    yield "unsorted classes", with_header(members, classes={"dtype": "int64", "values": [2, 1, 0]})
    yield "unknown parameter", with_header(members, params={"evil": 1})
    yield "bad parameter", with_header(members, params={"learning_rate": -1.0})
    yield "history length", with_header(members, history={"loss": [1.0, 2.0, 3.0]})
    yield "extra key", with_header(members, extra=True)
    yield "header not json", dict(members, **{"header.npy": npy(np.frombuffer(b"{nope", np.uint8))})
    yield "header NaN", dict(members, **{"header.npy": npy(np.frombuffer(
        json.dumps(header_of(members)).replace('"n_iter": 2', '"n_iter": NaN').encode(), np.uint8))})
    yield "header float array", dict(members, **{"header.npy": npy(np.zeros(5))})
    yield "missing member", {k: v for k, v in members.items() if k != "W2.npy"}
    yield "extra member", dict(members, **{"W9.npy": npy(np.zeros(3, np.float32))})
    yield "weights float64", dict(members, **{"W1.npy": npy(np.zeros((6, 5)))})
    yield "weights wrong shape", dict(members, **{"W1.npy": npy(np.zeros((5, 6), np.float32))})
    yield "weights NaN", dict(members, **{"b1.npy": npy(np.full(5, np.nan, np.float32))})
    yield "weights huge declared shape", dict(members, **{"W1.npy": npy(np.zeros((6, 5), np.float32))[:80]
                                                         .replace(b"(6, 5)", b"(9999999999, 5)")})
    yield "pickled weights", dict(members, **{"W1.npy": npy(np.array([Exploit(marker)] * 30, object).reshape(6, 5),
                                                            allow_pickle=True)})
    yield "pickled header", dict(members, **{"header.npy": npy(np.array([Exploit(marker)], object),
                                                               allow_pickle=True)})
    yield "a pickle file", pickle.dumps(Exploit(marker))


def test_malformed_files_raise_value_error_and_run_no_code(saved, tmp_path):
    _, path, _ = saved
    marker = tmp_path / "pwned"
    for name, content in malformed_cases(path, tmp_path):
        bad = tmp_path / "bad.npz"
        if isinstance(content, dict):
            write_members(bad, content)
        else:
            bad.write_bytes(content)
        with pytest.raises(ValueError) as info:
            fastmlp.load(bad)
        assert str(bad) in str(info.value) or "fastmlp" in str(info.value), name
        assert not marker.exists(), f"{name}: code from the file ran"


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastmlp.load(tmp_path / "nothing.npz")


def test_loading_works_with_pickle_disabled(saved, monkeypatch):
    model, path, X = saved

    def no_pickle(*args, **kwargs):
        raise AssertionError("pickle was used to load a model")

    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "Unpickler", no_pickle)
    loaded = fastmlp.load(path)
    assert np.array_equal(loaded.decision_function(X), model.decision_function(X))
    cpath = path.parent / "ck.npz"
    checkpoint.save_checkpoint(model, cpath)
    assert len(checkpoint.load_checkpoint(cpath).loss_curve_) == 2


def test_malformed_checkpoints_raise_value_error(tmp_path):
    model, _, _ = small_model()
    path = tmp_path / "ck.npz"
    checkpoint.save_checkpoint(model, path)
    good = path.read_bytes()
    members = members_of(path)
    state = json.loads(np.load(io.BytesIO(members["state.npy"])).tobytes())
    cases = {
        "truncated": good[: len(good) // 2],
        "garbage": b"\x00" * 50,
        "no state": {k: v for k, v in members.items() if k != "state.npy"},
        "no velocity": {k: v for k, v in members.items() if k != "vW1.npy"},
        "bad velocity": dict(members, **{"vW1.npy": npy(np.zeros((2, 2), np.float32))}),
        "wrong version": dict(members, **{"state.npy": npy(np.frombuffer(json.dumps(
            dict(state, format_version=9)).encode(), np.uint8))}),
        "bad rng": dict(members, **{"state.npy": npy(np.frombuffer(json.dumps(
            dict(state, rng={"bit_generator": "Nope"})).encode(), np.uint8))}),
        "bad model": dict(members, **{"model.npy": npy(np.frombuffer(b"not a model", np.uint8))}),
        "pickled": dict(members, **{"state.npy": npy(np.array([{"a": 1}], object), allow_pickle=True)}),
    }
    for name, content in cases.items():
        bad = tmp_path / "bad.npz"
        if isinstance(content, dict):
            write_members(bad, content)
        else:
            bad.write_bytes(content)
        with pytest.raises(ValueError):
            checkpoint.load_checkpoint(bad)


# ---------------------------------------------------------------------------------------------
# The CLI: SIGINT, checkpoints, resume
# ---------------------------------------------------------------------------------------------


TRAIN = ["-m", "fastmlp", "train", "--hidden", "24", "--train-samples", "1000", "--shuffle",
         "--momentum", "0.9", "--seed", "5", "--lr", "0.01", "-q"]


def cli(args, timeout=120):
    return subprocess.run([sys.executable] + TRAIN + args, capture_output=True, text=True,
                          timeout=timeout, env=python_env())


def interrupt_after_first_checkpoint(args, ckpt_dir, timeout=120):
    """Start ``fastmlp train ARGS``, send SIGINT once the first checkpoint exists."""
    # The child takes SIGINT's default disposition whatever this run inherited (a job started
    # in the background ignores SIGINT, and so would its children).
    proc = subprocess.Popen([sys.executable] + TRAIN + args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=python_env(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    target = os.path.join(ckpt_dir, checkpoint.CHECKPOINT_NAME)
    deadline = time.monotonic() + timeout
    while not os.path.exists(target) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"fastmlp train did not stop after SIGINT\n{err[-2000:]}")
    return proc.returncode, out, err


def weights_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


@needs_mnist
def test_cli_sigint_saves_the_model_and_exits_130_then_resume_is_bit_identical(tmp_path):
    epochs = "40"
    ckpt = tmp_path / "ckpt"
    status, _, err = interrupt_after_first_checkpoint(
        ["--epochs", epochs, "--checkpoint", str(ckpt), "--save", str(tmp_path / "interrupted.npz")],
        str(ckpt))
    assert status == 130, err[-2000:]
    interrupted = fastmlp.load(tmp_path / "interrupted.npz")
    assert all(np.isfinite(w).all() for w in interrupted.get_weights())
    done = len(checkpoint.load_checkpoint(ckpt / checkpoint.CHECKPOINT_NAME).loss_curve_)
    assert 1 <= done < int(epochs)
    assert len(interrupted.loss_curve_) >= done
    assert os.listdir(ckpt) == [checkpoint.CHECKPOINT_NAME]     # no temporary files

    resumed = cli(["--epochs", epochs, "--checkpoint", str(ckpt), "--resume",
                   "--save", str(tmp_path / "resumed.npz")])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = cli(["--epochs", epochs, "--save", str(tmp_path / "straight.npz")])
    assert straight.returncode == 0, straight.stderr[-2000:]
    a, b = fastmlp.load(tmp_path / "resumed.npz"), fastmlp.load(tmp_path / "straight.npz")
    assert len(a.loss_curve_) == len(b.loss_curve_) == int(epochs)
    assert weights_equal(a, b)
    assert a.loss_curve_ == b.loss_curve_
    assert resumed.stdout.splitlines()[-1] == straight.stdout.splitlines()[-1]  # test accuracy


@needs_mnist
def test_cli_resume_with_other_options_is_refused(tmp_path):
    ckpt = tmp_path / "ckpt"
    first = cli(["--epochs", "2", "--checkpoint", str(ckpt)])
    assert first.returncode == 0, first.stderr[-2000:]
    other = subprocess.run([sys.executable] + TRAIN[:3] + ["--hidden", "25"] + TRAIN[5:] +
                           ["--epochs", "3", "--checkpoint", str(ckpt), "--resume"],
                           capture_output=True, text=True, timeout=120, env=python_env())
    assert other.returncode != 0 and "hidden_layer_sizes" in other.stderr


def test_resume_in_process_is_bit_identical(tmp_path):
    """The same guarantee without the CLI, with every feature that carries state."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 10)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    kw = dict(hidden_layer_sizes=(12, 7), learning_rate=0.02, batch_size=32, shuffle=True,
              momentum=0.8, nesterov=True, alpha=1e-4, lr_schedule="step", lr_step_epochs=2,
              lr_decay=0.5, random_state=11)
    straight = MLP(epochs=6, **kw).fit(X, y)
    checkpoint.fit(MLP(epochs=3, **kw), X, y, tmp_path)
    resumed = checkpoint.fit(MLP(epochs=6, **kw), X, y, tmp_path, resume=True)
    assert weights_equal(straight, resumed)
    assert straight.loss_curve_ == resumed.loss_curve_
    assert straight._network.get_velocity()[0].tobytes() == resumed._network.get_velocity()[0].tobytes()
