"""ONNX export (fastmlp.onnx), checked in ONNX Runtime: every activation and output layer of
fastmlp.MLP and the drop-in classes, MNIST's test set, skl2onnx pipelines, save_onnx, the CLI
and the error without the extra."""
import sys
import warnings

import numpy as np
import pytest

import fastmlp
from fastmlp.cli import main

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import fastmlp.onnx  # noqa: E402  (registers the skl2onnx converters)

ACTIVATIONS = ["relu", "tanh", "logistic", "identity", "leaky_relu", "gelu"]
# The operators the graphs may hold: ONNX's default domain, no ZipMap.
STANDARD_OPS = {"Gemm", "Relu", "Tanh", "Sigmoid", "LeakyRelu", "Gelu", "Erf", "Mul", "Add",
                "Sub", "Concat", "Softmax", "ArgMax", "Gather", "Greater", "Cast", "Exp",
                "Identity"}
# Probabilities: float32 products summed in another order than the core's, then a softmax.
ATOL = 1e-5


def run(model_proto, X):
    """The outputs of ``model_proto`` in ONNX Runtime for the float32 rows ``X``."""
    onnx.checker.check_model(model_proto, full_check=True)
    session = ort.InferenceSession(model_proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: np.asarray(X, np.float32)})


def op_types(model_proto):
    assert all(node.domain in ("", "ai.onnx") for node in model_proto.graph.node)
    return {node.op_type for node in model_proto.graph.node}


def data(n=400, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] + X[:, 2] > 0.5)
    return X, y


# ---- fastmlp.MLP ----------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_every_activation_and_loss(activation, loss):
    X, y = data()
    labels = np.array(["cat", "dog", "emu"])[y] if loss == "mse" else y * 10 - 7
    model = fastmlp.MLP(hidden_layer_sizes=(16, 8), epochs=3, activation=activation, loss=loss,
                        learning_rate=0.05, momentum=0.9, batch_size=20, random_state=0)
    model.fit(X, labels)
    proto = fastmlp.onnx.to_onnx(model)
    assert op_types(proto) <= STANDARD_OPS
    label, proba = run(proto, X)
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=ATOL)
    np.testing.assert_array_equal(label, model.predict(X))
    assert label.dtype == (object if loss == "mse" else np.int64)


def _probe_model(activation):
    """A 1 -> 1 -> 2 MLP whose second output is the activation of its input: the probability
    of class 1 is the logistic of f(x)."""
    model = fastmlp.MLP(hidden_layer_sizes=(1,), activation=activation)
    model.set_weights([np.ones((1, 1), np.float32), np.zeros(1, np.float32),
                       np.array([[0.0, 1.0]], np.float32), np.zeros(2, np.float32)])
    return model


@pytest.mark.parametrize("opset", [17, 21])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_matches_the_core(activation, opset):
    """Each activation over [-8, 8] against the C core's, for the Erf form of GELU (opset
    17) and the Gelu operator (21); the logistic's slope is at most 1/4, so 1e-5 on the
    probabilities bounds f(x) to 4e-5."""
    model = _probe_model(activation)
    x = np.linspace(-8, 8, 2001, dtype=np.float32).reshape(-1, 1)
    proto = fastmlp.onnx.to_onnx(model, target_opset=opset)
    ops = op_types(proto)
    if activation == "gelu":
        assert ("Gelu" in ops) == (opset >= 20) and ("Erf" in ops) == (opset < 20)
    if activation == "leaky_relu":
        (node,) = [n for n in proto.graph.node if n.op_type == "LeakyRelu"]
        assert node.attribute[0].f == pytest.approx(0.01)
    label, proba = run(proto, x)
    np.testing.assert_allclose(proba, model.predict_proba(x), rtol=0, atol=ATOL)
    # f(x) itself: log(p1 / p0), away from saturated probabilities
    logit = np.log(proba[:, 1].astype(np.float64) / proba[:, 0])
    core = model.decision_function(x)
    keep = np.abs(core) < 6
    np.testing.assert_allclose(logit[keep], core[keep], rtol=0, atol=1e-4)


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_two_classes_bool_or_float_labels(kind):
    X, y = data()
    target = y == 1 if kind == "bool" else np.where(y == 1, 3.0, -2.0)
    model = fastmlp.MLP(hidden_layer_sizes=(8,), epochs=2, loss="cross_entropy",
                        learning_rate=0.1, random_state=1).fit(X, target)
    label, proba = run(fastmlp.onnx.to_onnx(model, input_name="features"), X)
    assert label.dtype == (np.bool_ if kind == "bool" else np.float64)
    np.testing.assert_array_equal(label, model.predict(X))
    np.testing.assert_allclose(proba, model.predict_proba(X.astype(np.float64)), atol=ATOL)


# ---- the drop-in classes --------------------------------------------------------------

def _fit_quietly(model, X, y):
    from sklearn.exceptions import ConvergenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("target", ["multiclass", "binary", "multilabel"])
def test_dropin_classifier(activation, target):
    from fastmlp.neural_network import MLPClassifier
    X, y = data()
    Y = {"multiclass": np.array(["a", "b", "c"])[y], "binary": np.where(y == 1, 5, -3),
         "multilabel": np.c_[y == 1, y == 2, X[:, 3] > 0].astype(int)}[target]
    # float64 data: coefs_ are float64, written as the float32 the core computes with
    model = _fit_quietly(MLPClassifier((12,), activation=activation, max_iter=30,
                                       random_state=0), X.astype(np.float64), Y)
    assert model.coefs_[0].dtype == np.float64
    proto = fastmlp.onnx.to_onnx(model)
    assert op_types(proto) <= STANDARD_OPS
    label, proba = run(proto, X)
    np.testing.assert_allclose(proba, model.predict_proba(X.astype(np.float64)), atol=ATOL)
    np.testing.assert_array_equal(label, model.predict(X.astype(np.float64)))
    assert label.shape == (len(X), 3) if target == "multilabel" else (len(X),)


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_dropin_regressor(activation, loss):
    from fastmlp.neural_network import MLPRegressor
    X, _ = data()
    Y = np.c_[np.abs(X[:, 0]) + X[:, 1] ** 2, np.exp(0.3 * X[:, 2])]
    model = _fit_quietly(MLPRegressor(loss=loss, hidden_layer_sizes=(12,),
                                      activation=activation, max_iter=30, random_state=0), X, Y)
    proto = fastmlp.onnx.to_onnx(model)
    assert ("Exp" in op_types(proto)) == (loss == "poisson")
    (variable,) = run(proto, X)
    assert variable.shape == (len(X), 2)
    np.testing.assert_allclose(variable, model.predict(X), rtol=1e-5, atol=1e-5)


# ---- MNIST ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist(mnist_files):
    from fastmlp.datasets import load_mnist
    (x_train, y_train), (x_test, y_test) = load_mnist(mnist_files, download=False)
    X = x_train.reshape(len(x_train), -1).astype(np.float32) / 255
    Xt = x_test.reshape(len(x_test), -1).astype(np.float32) / 255
    return X, y_train, Xt, y_test


def test_mnist_labels_identical_probabilities_close(mnist):
    X, y, Xt, yt = mnist
    model = fastmlp.MLP(hidden_layer_sizes=(64,), epochs=1, loss="cross_entropy",
                        learning_rate=0.05, momentum=0.9, batch_size=200, shuffle=True,
                        random_state=0).fit(X, y)
    label, proba = run(fastmlp.onnx.to_onnx(model), Xt)
    np.testing.assert_array_equal(label, model.predict(Xt))
    np.testing.assert_allclose(proba, model.predict_proba(Xt), rtol=0, atol=ATOL)
    assert np.mean(label == yt) > 0.9


def test_mnist_dropin_classifier(mnist):
    from fastmlp.neural_network import MLPClassifier
    X, y, Xt, _ = mnist
    model = _fit_quietly(MLPClassifier((64,), max_iter=1, random_state=0), X, y)
    label, proba = run(fastmlp.onnx.to_onnx(model), Xt)
    np.testing.assert_array_equal(label, model.predict(Xt))
    np.testing.assert_allclose(proba, model.predict_proba(Xt), rtol=0, atol=ATOL)


# ---- skl2onnx -------------------------------------------------------------------------

def _pipeline_cases():
    from fastmlp.neural_network import MLPClassifier, MLPRegressor
    return [
        ("MLP", lambda: fastmlp.MLP(hidden_layer_sizes=(16,), epochs=5, loss="cross_entropy",
                                    learning_rate=0.1, activation="gelu", random_state=0)),
        ("MLPClassifier", lambda: MLPClassifier((16,), max_iter=50, random_state=0)),
        ("MLPRegressor", lambda: MLPRegressor(hidden_layer_sizes=(16,), max_iter=50,
                                              random_state=0)),
    ]


@pytest.mark.parametrize("case", range(3), ids=["MLP", "MLPClassifier", "MLPRegressor"])
@pytest.mark.parametrize("input_dtype", [np.float32, np.float64])
def test_skl2onnx_converts_a_pipeline(case, input_dtype):
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    name, make = _pipeline_cases()[case]
    X, y = data()
    X = X * 20 + 5   # the scaler matters
    target = np.array(["no", "yes", "maybe"])[y] if name != "MLPRegressor" else X[:, 0] * 0.1
    pipe = _fit_quietly(Pipeline([("scale", StandardScaler()), ("mlp", make())]), X, target)
    proto = skl2onnx.to_onnx(pipe, X[:1].astype(input_dtype))
    assert "ZipMap" not in {n.op_type for n in proto.graph.node}
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"X": X.astype(input_dtype)})
    if name == "MLPRegressor":
        assert [o.name for o in session.get_outputs()] == ["variable"]
        np.testing.assert_allclose(outputs[0].ravel(), pipe.predict(X), rtol=1e-4, atol=1e-4)
    else:
        assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
        np.testing.assert_array_equal(outputs[0], pipe.predict(X))
        np.testing.assert_allclose(outputs[1], pipe.predict_proba(X), rtol=0, atol=1e-4)


# ---- files, the CLI, errors -----------------------------------------------------------

def test_save_onnx_round_trip(tmp_path):
    from fastmlp.neural_network import MLPRegressor
    X, y = data()
    model = fastmlp.MLP(hidden_layer_sizes=(8,), epochs=1, random_state=0).fit(X, y)
    path = tmp_path / "model.onnx"
    model.save_onnx(path)
    loaded = onnx.load(str(path))
    assert loaded == fastmlp.onnx.to_onnx(model)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(["label"], {"X": X})[0], model.predict(X))
    before = path.read_bytes()
    with pytest.raises(fastmlp.NotFittedError):   # a failed export leaves the file as it was
        fastmlp.MLP().save_onnx(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    regressor = _fit_quietly(MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0),
                             X, X[:, 0])
    regressor.save_onnx(path, target_opset=17)
    loaded = onnx.load(str(path))
    assert loaded.opset_import[0].version == 17
    np.testing.assert_allclose(run(loaded, X)[0].ravel(), regressor.predict(X), atol=1e-5)


def test_cli_export(tmp_path, capsys):
    X, y = data()
    model = fastmlp.MLP(hidden_layer_sizes=(8,), epochs=1, random_state=0).fit(X, y)
    model.save(tmp_path / "model.npz")
    out = tmp_path / "model.onnx"
    assert main(["export", str(tmp_path / "model.npz"), str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"ONNX model written to {out}"
    label, proba = run(onnx.load(str(out)), X)
    np.testing.assert_array_equal(label, model.predict(X))
    np.testing.assert_allclose(proba, model.predict_proba(X), atol=ATOL)


def test_cli_export_errors(tmp_path, capsys):
    missing = tmp_path / "missing.npz"
    assert main(["export", str(missing), str(tmp_path / "m.onnx")]) == 1
    assert capsys.readouterr().err == f"fastmlp: error: {missing}: no such file\n"
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    assert main(["export", str(bad), str(tmp_path / "m.onnx")]) == 1
    assert "not a valid fastmlp model file" in capsys.readouterr().err
    assert main(["export", str(bad), str(tmp_path / "nowhere" / "m.onnx")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_missing_extra_names_it(tmp_path, monkeypatch, capsys):
    X, y = data()
    model = fastmlp.MLP(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X, y)
    model.save(tmp_path / "model.npz")
    monkeypatch.setitem(sys.modules, "onnx", None)   # as if onnx were not installed
    with pytest.raises(ImportError, match=r'pip install "fastmlp\[onnx\]"'):
        fastmlp.onnx.to_onnx(model)
    with pytest.raises(ImportError, match=r'pip install "fastmlp\[onnx\]"'):
        model.save_onnx(tmp_path / "model.onnx")
    assert main(["export", str(tmp_path / "model.npz"), str(tmp_path / "model.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fastmlp: error: ") and 'pip install "fastmlp[onnx]"' in err
    assert not (tmp_path / "model.onnx").exists()


def test_bad_arguments():
    X, y = data()
    with pytest.raises(fastmlp.NotFittedError):
        fastmlp.onnx.to_onnx(fastmlp.MLP())
    with pytest.raises(TypeError, match="cannot export a LogisticRegression"):
        from sklearn.linear_model import LogisticRegression
        fastmlp.onnx.to_onnx(LogisticRegression().fit(X, y))
    model = fastmlp.MLP(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="target_opset must be >= 13"):
        fastmlp.onnx.to_onnx(model, target_opset=12)
