"""The hidden layers' activation: MLP(activation=...), its files, checkpoints and CLI option.
The kernels themselves are tested in test_activation_kernels.py."""
import io
import json
import pickle
import zipfile

import numpy as np
import pytest

import fastmlp
from fastmlp import MLP, _core, _options, checkpoint
from fastmlp import reference as ref
from fastmlp.cli import _build_parser, main

EPS32 = float(np.finfo(np.float32).eps)


def data(n=200, n_features=6, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = rng.normal(size=(n, n_features)) + 2 * np.eye(n_classes, n_features)[y]
    return X.astype(np.float32), y


def small(**params):
    kw = dict(hidden_layer_sizes=(16, 8), epochs=20, learning_rate=0.05, batch_size=20,
              loss="cross_entropy", momentum=0.9, random_state=0)
    kw.update(params)
    return MLP(**kw)


def rewrite_header(path, edit):
    """Rewrite the header of the model file ``path`` with ``edit(header)``."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(arrays["header"].tobytes())
    edit(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, **arrays)


# ---------------------------------------------------------------------------------------------
# On every binding
# ---------------------------------------------------------------------------------------------

def test_default_is_relu_and_is_a_parameter():
    model = MLP()
    assert model.activation == "relu" and model.get_params()["activation"] == "relu"
    assert model.set_params(activation="tanh").activation == "tanh"


def test_clone_keeps_the_activation():
    base = pytest.importorskip("sklearn.base")
    assert base.clone(MLP(activation="tanh")).activation == "tanh"


@pytest.mark.parametrize("bad", ["swish", "ReLU", None, 1])
def test_unknown_activation_names_the_choices(bad):
    X, y = data()
    with pytest.raises(ValueError, match=r"activation must be one of \('relu', 'tanh', "):
        small(activation=bad).fit(X, y)


@pytest.mark.parametrize("activation", _options.ACTIVATIONS)
def test_the_binding_gets_the_activation(monkeypatch, activation):
    calls = []
    build = _core.Network

    def recording(*args, **kwargs):
        calls.append(dict(kwargs))
        return build(*args, **kwargs)

    monkeypatch.setattr(_core, "Network", recording)
    X, y = data()
    small(activation=activation, epochs=1).fit(X, y)
    assert calls and calls[-1].get("activation") == activation
    assert _core.Network((3, 4, 2), 1, activation=activation).activation == activation


def test_warm_start_with_another_activation_asks_for_a_refit():
    X, y = data()
    model = small(epochs=1).fit(X, y)
    model.set_params(activation="tanh", warm_start=True)
    with pytest.raises(ValueError, match="activation is 'tanh'.*'relu'.*warm_start=False"):
        model.fit(X, y)


def test_a_model_file_without_activation_loads_as_relu(tmp_path):
    X, y = data()
    model = small(epochs=2).fit(X, y)
    path = tmp_path / "model.npz"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        header = json.loads(np.load(io.BytesIO(archive.read("header.npy"))).tobytes())
    assert header["activation"] == "relu" and header["params"]["activation"] == "relu"

    def drop(h):
        del h["activation"], h["params"]["activation"]
    rewrite_header(path, drop)
    loaded = fastmlp.load(path)
    assert loaded.activation == "relu"
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("edit, match", [
    (lambda h: h.update(activation="swish"), "unknown activation 'swish'"),
    (lambda h: h["params"].update(activation="swish"), "activation"),
    (lambda h: h.update(activation="tanh"), "params.activation differs"),
    (lambda h: h.update(activation=1), "activation has the wrong type"),
])
def test_a_model_file_with_a_bad_activation_is_refused_naming_the_file(tmp_path, edit, match):
    X, y = data()
    path = tmp_path / "model.npz"
    small(epochs=1).fit(X, y).save(path)
    rewrite_header(path, edit)
    with pytest.raises(ValueError, match=match) as info:
        fastmlp.load(path)
    assert str(path) in str(info.value)


def test_resuming_with_another_activation_is_refused(tmp_path):
    X, y = data()
    checkpoint.fit(small(epochs=1), X, y, tmp_path)
    with pytest.raises(ValueError, match="activation='relu'"):
        checkpoint.fit(small(epochs=2, activation="tanh"), X, y, tmp_path, resume=True)


def test_cli_offers_the_table_s_activations(capsys):
    assert _build_parser().parse_args(["train", "--activation", "tanh"]).activation == "tanh"
    assert _build_parser().parse_args(["train"]).activation == "relu"
    with pytest.raises(SystemExit) as info:
        main(["train", "--activation", "swish"])
    assert info.value.code == 2
    assert ", ".join(repr(a) for a in _options.ACTIVATIONS) in capsys.readouterr().err
    for name in _options.ACTIVATIONS:
        assert _build_parser().parse_args(["train", "--activation", name]).activation == name


# ---------------------------------------------------------------------------------------------
# A network with each activation other than ReLU (needs the binding's activation keyword)
# ---------------------------------------------------------------------------------------------

OTHERS = [a for a in _options.ACTIVATIONS if a != "relu"]
# The activations whose outputs are within [-1, 1]; each of the others has |f(z)| <= |z|.
BOUNDED = {"tanh", "logistic"}
# The largest slope of each activation: 1 but for GELU's (1.129 near z = 2.4).
LIPSCHITZ = {"gelu": 1.13}


def forward_bound(weights, biases, X, activation):
    """An error bound of the float32 forward pass against the float64 reference.

    Each K-term float32 dot product (plus the bias) is within ``(K + 2) * eps`` of its
    float64 value, relative to the sum of the absolute terms; the float32 activation adds at
    most ``2 * eps`` relative to its result; an error already in a layer's input reaches its
    output through ``|W|`` and the activation's largest slope (the output layer's is 1).
    """
    A, err = np.abs(X.astype(np.float64)), np.zeros((X.shape[0], X.shape[1]))
    for l, (W, b) in enumerate(zip(weights, biases)):
        W64, b64 = np.abs(W.astype(np.float64)), np.abs(b.astype(np.float64))
        err = err @ W64 + (W.shape[0] + 2) * EPS32 * (A @ W64 + b64)
        A = A @ W64 + b64
        if l < len(weights) - 1:
            A = np.minimum(A, 1.0) if activation in BOUNDED else A
            err = LIPSCHITZ.get(activation, 1.0) * err + 2 * EPS32 * A
    return err


@pytest.mark.parametrize("activation", OTHERS)
def test_mlp_fits(activation):
    X, y = data()
    model = small(activation=activation).fit(X, y)
    assert model.score(X, y) > 0.9
    assert model.loss_curve_[-1] < model.loss_curve_[0]


@pytest.mark.parametrize("activation", OTHERS)
def test_mlp_forward_matches_the_float64_reference(activation):
    X, y = data()
    model = small(activation=activation, epochs=3).fit(X, y)
    weights = model.get_weights()
    Ws, bs = weights[0::2], weights[1::2]
    W64, b64 = [W.astype(np.float64) for W in Ws], [b.astype(np.float64) for b in bs]
    expected = ref.forward(W64, b64, X.astype(np.float64), activation=activation)[-1]
    got = model.decision_function(X)
    assert np.all(np.abs(got - expected) <= forward_bound(Ws, bs, X, activation))
    # ReLU on the same weights gives other outputs: the network does apply its activation.
    relu = ref.forward(W64, b64, X.astype(np.float64), activation="relu")[-1]
    assert not np.allclose(got, relu)


@pytest.mark.parametrize("activation", OTHERS)
def test_mlp_saves_loads_and_pickles_with_its_activation(tmp_path, activation):
    X, y = data()
    model = small(activation=activation, epochs=3).fit(X, y)
    path = tmp_path / "model.npz"
    model.save(path)
    for copy in (fastmlp.load(path), pickle.loads(pickle.dumps(model))):
        assert copy.activation == activation
        np.testing.assert_array_equal(copy.decision_function(X), model.decision_function(X))


@pytest.mark.parametrize("activation", OTHERS)
def test_checkpoint_resumes_bit_identical(tmp_path, activation):
    X, y = data()
    straight = small(activation=activation, epochs=4, shuffle=True).fit(X, y)
    checkpoint.fit(small(activation=activation, epochs=2, shuffle=True), X, y, tmp_path)
    saved = checkpoint.load_checkpoint(tmp_path / checkpoint.CHECKPOINT_NAME)
    assert saved.activation == activation
    resumed = checkpoint.fit(small(activation=activation, epochs=4, shuffle=True), X, y,
                             tmp_path, resume=True)
    assert resumed.activation == activation
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        assert a.tobytes() == b.tobytes()
