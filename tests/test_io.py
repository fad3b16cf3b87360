"""save/load: the .npz + JSON format, atomic writes, and refusal of every malformed file."""
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import fastmlp
from fastmlp import MLP, NotFittedError
from fastmlp import io as fio


def data(n=120, n_features=5, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = rng.normal(size=(n, n_features)) + y[:, None]
    return X.astype(np.float32), y


def fitted(labels=None, **kw):
    X, y = data()
    params = dict(hidden_layer_sizes=(7, 4), epochs=3, learning_rate=0.05, random_state=0,
                  loss="cross_entropy")
    params.update(kw)
    return MLP(**params).fit(X, y if labels is None else np.asarray(labels)[y]), X


@pytest.mark.parametrize("labels", [None, ["a", "bb", "c"], np.array(["x", "y", "z"], dtype=object),
                                    [-1.0, 0.0, 2.0], np.array([3, 5, 200], dtype=np.uint8)])
def test_round_trip(tmp_path, labels):
    model, X = fitted(labels, validation_split=0.25)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastmlp.load(path)
    assert type(loaded) is MLP
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.classes_.dtype == model.classes_.dtype
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert loaded.get_params() == model.get_params()
    assert loaded.loss_curve_ == model.loss_curve_ and loaded.history_ == model.history_
    assert loaded.n_features_in_ == 5 and loaded.n_iter_ == 3
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    loaded.partial_fit(X, model.predict(X))  # trainable after loading


def test_bool_classes_and_feature_names(tmp_path):
    X, y = data(n_classes=2)

    class Frame:
        columns = ["a", "b", "c", "d", "e"]

        def __array__(self, dtype=None, copy=None):
            return X

    model = MLP(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(Frame(), y.astype(bool))
    model.save(tmp_path / "m.npz")
    loaded = fastmlp.load(tmp_path / "m.npz")
    assert loaded.classes_.dtype == bool
    np.testing.assert_array_equal(loaded.feature_names_in_, Frame.columns)


def test_header_is_documented_json(tmp_path):
    model, _ = fitted()
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        assert sorted(f.files) == ["W1", "W2", "W3", "b1", "b2", "b3", "header"]
        header = json.loads(f["header"].tobytes())
        assert f["W2"].shape == (7, 4) and f["W2"].dtype == np.float32
    assert header["format"] == "fastmlp.mlp" and header["format_version"] == 1
    assert header["fastmlp_version"] == fastmlp.__version__
    assert header["layer_sizes"] == [5, 7, 4, 3] and header["loss"] == "cross_entropy"
    assert header["classes"] == {"dtype": "int64", "values": [0, 1, 2]}
    assert header["params"]["hidden_layer_sizes"] == [7, 4]


def test_save_refuses_unsavable_models(tmp_path):
    path = tmp_path / "m.npz"
    with pytest.raises(NotFittedError):
        MLP().save(path)
    model, _ = fitted([b"a", b"b", b"c"])
    with pytest.raises(TypeError, match="not numbers or strings"):
        model.save(path)
    from fractions import Fraction
    for labels in (np.array([Fraction(1, 3), Fraction(1, 2), Fraction(2, 3)], dtype=object),
                   np.array(["2020-01-01", "2021-01-01", "2022-01-01"], dtype="datetime64[D]")):
        model, _ = fitted(labels)
        with pytest.raises(TypeError, match="not numbers or strings"):
            model.save(path)
    assert os.listdir(tmp_path) == []


def test_save_is_atomic(tmp_path, monkeypatch):
    model, _ = fitted()
    path = tmp_path / "m.npz"
    path.write_bytes(b"previous content")
    os.chmod(path, 0o640)

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(fio.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == b"previous content"
    assert os.listdir(tmp_path) == ["m.npz"]

    def broken_savez(f, **arrays):
        f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.undo()
    monkeypatch.setattr(fio.np, "savez", broken_savez)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == b"previous content"
    assert os.listdir(tmp_path) == ["m.npz"]
    monkeypatch.undo()
    model.save(path)
    assert os.listdir(tmp_path) == ["m.npz"]
    assert os.stat(path).st_mode & 0o777 == 0o640  # the replaced file's mode is kept
    fastmlp.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastmlp.load(tmp_path / "nothing.npz")


# ---- malformed files ----

def members(tmp_path):
    model, _ = fitted()
    model.save(tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    return arrays, json.loads(arrays["header"].tobytes())


def write(tmp_path, arrays, header=None, name="bad.npz"):
    arrays = dict(arrays)
    if header is not None:
        text = header if isinstance(header, (str, bytes)) else json.dumps(header)
        if isinstance(text, str):
            text = text.encode()
        arrays["header"] = np.frombuffer(text, dtype=np.uint8)
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def header_cases():
    def edit(**changes):
        def apply(h):
            h.update(changes)
            return h
        return apply

    def drop(key):
        def apply(h):
            del h[key]
            return h
        return apply

    def set_in(section, key, value):
        def apply(h):
            h[section][key] = value
            return h
        return apply

    return {
        "wrong format": (edit(format="keras"), "format"),
        "newer version": (edit(format_version=2), "newer fastmlp"),
        "version zero": (edit(format_version=0), "version"),
        "version as string": (edit(format_version="1"), "format_version"),
        "missing key": (drop("loss"), "header keys"),
        "extra key": (edit(code="import os"), "header keys"),
        "unknown loss": (edit(loss="hinge"), "loss"),
        "sizes do not match arrays": (edit(layer_sizes=[5, 7, 3]), "members"),
        "huge layer": (edit(layer_sizes=[5, 7, 4, 2 ** 30]), "out-of-range"),
        "negative size": (edit(layer_sizes=[5, -7, 4, 3]), "out-of-range"),
        "bool as size": (edit(layer_sizes=[5, True, 4, 3]), "bool"),
        "feature count": (edit(n_features_in=6), "n_features_in"),
        "class count": (set_in("classes", "values", [0, 1]), "classes"),
        "unsorted classes": (set_in("classes", "values", [2, 1, 0]), "sorted"),
        "duplicate classes": (set_in("classes", "values", [1, 1, 2]), "sorted"),
        "object dtype": (set_in("classes", "dtype", "O"), "dtype"),
        "bad dtype": (set_in("classes", "dtype", "float128x"), "dtype"),
        "overflowing class": (None, "fit dtype"),
        "unknown param": (set_in("params", "exec", "rm -rf /"), "unknown parameters"),
        "invalid param": (set_in("params", "learning_rate", -1.0), "learning_rate"),
        "param type": (set_in("params", "epochs", {"a": 1}), "wrong type"),
        "hidden mismatch": (set_in("params", "hidden_layer_sizes", [7, 5]), "hidden_layer_sizes"),
        "history length": (edit(history={"loss": [1.0]}), "history"),
        "feature names": (edit(feature_names_in=["a"]), "feature_names_in"),
        "not an object": (lambda h: [h], "header"),
    }


@pytest.mark.parametrize("case", sorted(header_cases()))
def test_hand_crafted_headers_are_refused(tmp_path, case):
    arrays, header = members(tmp_path)
    change, match = header_cases()[case]
    if case == "overflowing class":
        header["classes"] = {"dtype": "uint8", "values": [0, 1, 300]}
    else:
        header = change(header)
    with pytest.raises(ValueError, match=match):
        fastmlp.load(write(tmp_path, arrays, header))


@pytest.mark.parametrize("text", [b"{not json", b"\xff\xfe", b'{"format": NaN}', b"[]"])
def test_header_not_json(tmp_path, text):
    arrays, _ = members(tmp_path)
    with pytest.raises(ValueError, match="not a valid fastmlp model file"):
        fastmlp.load(write(tmp_path, arrays, text))


def array_cases():
    return {
        "missing array": lambda a: a.pop("b2"),
        "extra array": lambda a: a.update(extra=np.zeros(3, np.float32)),
        "float64 weights": lambda a: a.update(W1=a["W1"].astype(np.float64)),
        "int weights": lambda a: a.update(b1=a["b1"].astype(np.int32)),
        "wrong shape": lambda a: a.update(W2=a["W2"].T.copy()),
        "nan weight": lambda a: a["W3"].__setitem__((0, 0), np.nan),
        "inf bias": lambda a: a["b3"].__setitem__(0, np.inf),
        "header dtype": lambda a: a.update(header=a["header"].astype(np.int16)),
        "header 2-d": lambda a: a.update(header=a["header"][None, :]),
    }


@pytest.mark.parametrize("case", sorted(array_cases()))
def test_bad_arrays_are_refused(tmp_path, case):
    arrays, _ = members(tmp_path)
    arrays = {k: v.copy() for k, v in arrays.items()}
    array_cases()[case](arrays)
    with pytest.raises(ValueError, match="not a valid fastmlp model file"):
        fastmlp.load(write(tmp_path, arrays))


def test_bad_containers_are_refused(tmp_path):
    model, _ = fitted()
    good = tmp_path / "good.npz"
    model.save(good)
    content = good.read_bytes()
    cases = {
        "empty": b"",
        "truncated": content[: len(content) // 2],
        "truncated end": content[:-10],
        "random": np.random.default_rng(0).bytes(1000),
        "text": b"hello world\n",
    }
    npy = io.BytesIO()
    np.save(npy, np.zeros(3))
    cases["npy"] = npy.getvalue()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "not a model")
    cases["other zip"] = buf.getvalue()
    corrupt = bytearray(content)
    start = content.index(b"W1.npy") + 200
    corrupt[start:start + 64] = b"\x00" * 64
    cases["corrupt member"] = bytes(corrupt)
    for name, blob in cases.items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(blob)
        with pytest.raises(ValueError, match="not a valid fastmlp model file"):
            fastmlp.load(path)
    # A zip member that claims to be far larger than the header allows is not read.
    arrays, _ = members(tmp_path)
    arrays["W1"] = np.zeros((5, 7 * 1000), np.float32)
    with pytest.raises(ValueError, match="larger|shape"):
        fastmlp.load(write(tmp_path, arrays))


class Exploit:
    def __reduce__(self):
        return (os.mkdir, ("/tmp/fastmlp-pwned-by-load",))


def test_load_never_unpickles(tmp_path):
    arrays, _ = members(tmp_path)
    arrays["W1"] = np.array([Exploit()], dtype=object)
    path = tmp_path / "evil.npz"
    np.savez(path, **arrays, allow_pickle=True)
    with pytest.raises(ValueError, match="not a valid fastmlp model file"):
        fastmlp.load(path)
    assert not os.path.exists("/tmp/fastmlp-pwned-by-load")
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(ValueError):
        fastmlp.load(path)
    assert not os.path.exists("/tmp/fastmlp-pwned-by-load")
