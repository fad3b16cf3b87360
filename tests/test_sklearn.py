"""fastmlp.MLP as a scikit-learn classifier, its input handling, and its API without sklearn."""
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastmlp import MLP, MLPClassifier, NotFittedError
from fastmlp.mlp import check_array

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError as SkNotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402


def small(**kw):
    """A configuration that trains in milliseconds yet learns the checks' toy problems."""
    params = dict(hidden_layer_sizes=(16,), epochs=20, learning_rate=0.05, momentum=0.9,
                  batch_size=16, shuffle=True, random_state=0)
    params.update(kw)
    return MLP(**params)


def blobs(n=240, n_features=4, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(n_classes, n_features))
    y = np.arange(n) % n_classes
    X = centres[y] + rng.normal(size=(n, n_features))
    return (X - X.mean(axis=0)) / X.std(axis=0), y


# Every check of scikit-learn passes, so no check is listed as an expected failure. (pandas is
# not a test dependency: the two checks that need it are skipped by scikit-learn itself.)
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks([small(loss="cross_entropy"), small(loss="mse")],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_is_a_sklearn_classifier():
    from sklearn.base import is_classifier
    assert is_classifier(MLP())
    assert issubclass(MLP, MLPClassifier)
    assert issubclass(NotFittedError, SkNotFittedError)
    with pytest.raises(SkNotFittedError):
        MLP().predict([[0.0, 1.0]])


def test_clone_pipeline_grid_search_cross_val():
    X, y = blobs()
    model = small(loss="cross_entropy")
    copy = clone(model)
    assert copy.get_params() == model.get_params() and copy is not model
    pipe = make_pipeline(StandardScaler(), small(loss="cross_entropy"))
    assert pipe.fit(X, y).score(X, y) > 0.9
    grid = GridSearchCV(small(), {"learning_rate": [0.01, 0.05], "loss": ["mse", "cross_entropy"]},
                        cv=3).fit(X, y)
    assert grid.best_score_ > 0.9 and set(grid.best_params_) == {"learning_rate", "loss"}
    scores = cross_val_score(small(loss="cross_entropy"), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.9


def test_fit_twice_is_bit_identical():
    X, y = blobs()
    a = MLP(hidden_layer_sizes=(8, 4), epochs=3, random_state=0).fit(X, y).get_weights()
    b = MLP(hidden_layer_sizes=(8, 4), epochs=3, random_state=0).fit(X, y).get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)


def test_shuffle_is_seeded():
    X, y = blobs()
    runs = [small(random_state=s).fit(X, y).get_weights()[0] for s in (1, 1, 2)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_inputs_of_every_kind_give_the_same_model(tmp_path):
    X, y = blobs()
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    reference = small().fit(X32, y).predict_proba(X32)
    readonly = X32.copy()
    readonly.flags.writeable = False
    strided = np.asfortranarray(np.repeat(X32, 2, axis=1)[:, ::2])
    assert not strided.flags.c_contiguous
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=X32.shape)
    mm[:] = X32
    mm.flush()
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    for data in (X32.tolist(), X32.astype(np.float64), readonly, strided, mm,
                 X32.astype(object)):
        np.testing.assert_array_equal(small().fit(data, y).predict_proba(data), reference)


def test_float32_c_contiguous_input_is_not_copied():
    X = np.zeros((5, 3), np.float32)
    assert check_array(X) is X
    readonly = np.ones((5, 3), np.float32)
    readonly.flags.writeable = False
    assert np.shares_memory(check_array(readonly), readonly)
    images = np.zeros((4, 2, 3), np.float32)
    assert np.shares_memory(check_array(images), images)
    assert check_array(images).shape == (4, 6)


class Frame:
    """A minimal data frame: string column names and an __array__ (pandas is not needed)."""

    def __init__(self, data, columns):
        self.data = np.asarray(data)
        self.columns = list(columns)

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def __len__(self):
        return len(self.data)


def test_feature_names_in():
    X, y = blobs(n_features=3)
    model = small().fit(Frame(X, ["a", "b", "c"]), y)
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c"])
    assert model.feature_names_in_.dtype == object
    model.predict(Frame(X, ["a", "b", "c"]))
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(Frame(X, ["a", "c", "b"]))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        model.predict(X)
    plain = small().fit(X, y)
    assert not hasattr(plain, "feature_names_in_")
    with pytest.warns(UserWarning, match="fitted without feature names"):
        plain.predict(Frame(X, ["a", "b", "c"]))
    assert not hasattr(small().fit(Frame(X, [0, 1, 2]), y), "feature_names_in_")


def test_any_labels_and_partial_fit_with_classes():
    X, y = blobs()
    names = np.array(["cat", "dog", "emu"])[y]
    model = small(loss="cross_entropy").fit(X, names)
    np.testing.assert_array_equal(model.classes_, ["cat", "dog", "emu"])
    assert model.score(X, names) > 0.9
    model = MLP(hidden_layer_sizes=(8,), learning_rate=0.05, random_state=0)
    model.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    model.partial_fit(X, y)
    assert model.n_iter_ == 2 and len(model.loss_curve_) == 2
    with pytest.raises(ValueError, match="not in classes_"):
        model.partial_fit(X, y + 5)
    with pytest.raises(ValueError, match="is expecting 4 features"):
        model.partial_fit(X[:, :3], y)
    with pytest.raises(ValueError, match="not in classes"):
        MLP().partial_fit(X, y, classes=[0, 1])


def test_warm_start_continues():
    X, y = blobs()
    model = small(epochs=2, warm_start=True).fit(X, y)
    before = model.get_weights()
    model.fit(X, y)
    assert model.n_iter_ == 4 and len(model.history_["loss"]) == 4
    assert not np.array_equal(before[0], model.get_weights()[0])
    cold = small(epochs=2).fit(X, y)
    cold.fit(X, y)
    assert cold.n_iter_ == 2


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_predict_proba_and_decision_function(loss, n_classes):
    X, y = blobs(n_classes=n_classes)
    model = small(loss=loss).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(model.classes_[proba.argmax(axis=1)], model.predict(X))
    decision = model.decision_function(X)
    if n_classes == 2:
        assert decision.shape == (len(X),)
        np.testing.assert_array_equal(model.classes_[(decision > 0).astype(int)], model.predict(X))
    else:
        assert decision.shape == (len(X), n_classes) and decision.dtype == np.float32
        np.testing.assert_array_equal(model.classes_[decision.argmax(axis=1)], model.predict(X))


def test_errors_are_clear():
    X, y = blobs()
    with pytest.raises(NotFittedError, match="not fitted"):
        MLP().predict(X)
    with pytest.raises(NotFittedError):
        MLP().coefs_
    with pytest.raises(ValueError, match="only 1 class"):
        small().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="Unknown label type"):
        small().fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="NaN"):
        small().fit(np.full_like(X, np.nan), y)
    with pytest.raises(TypeError, match="sparse"):
        from scipy import sparse
        small().fit(sparse.csr_matrix(X), y)
    with pytest.raises(ValueError, match="learning_rate"):
        small(learning_rate=-1).fit(X, y)
    with pytest.raises(ValueError, match="lr_schedule"):
        small(lr_schedule="cosine").fit(X, y)


def test_pickle_and_joblib_round_trip(tmp_path):
    joblib = pytest.importorskip("joblib")
    X, y = blobs()
    model = small(loss="cross_entropy").fit(X, y)
    for copy in (pickle.loads(pickle.dumps(model)),
                 joblib.load(joblib.dump(model, tmp_path / "m.joblib")[0])):
        np.testing.assert_array_equal(copy.predict_proba(X), model.predict_proba(X))
        assert copy.history_ == model.history_
        copy.partial_fit(X, y)  # still trainable, momentum buffers included
    unfitted = pickle.loads(pickle.dumps(MLP(epochs=3)))
    assert unfitted.epochs == 3 and not hasattr(unfitted, "classes_")


def same_package_env():
    """Subprocesses import the fastmlp these tests imported (installed, or the checkout)."""
    import os

    import fastmlp
    return dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(fastmlp.__file__)))


def test_works_without_sklearn():
    code = textwrap.dedent("""
        import sys
        sys.modules["sklearn"] = None  # makes `import sklearn` fail
        import numpy as np, fastmlp
        from fastmlp import MLP, NotFittedError
        assert not fastmlp._sklearn.HAVE_SKLEARN
        assert MLP.__mro__[1:] == (fastmlp.MLPClassifier, fastmlp._sklearn.ParamsBase, object)
        try:
            MLP().predict(np.zeros((2, 3)))
        except NotFittedError as exc:
            assert isinstance(exc, ValueError) and isinstance(exc, AttributeError)
        else:
            raise AssertionError("no NotFittedError")
        rng = np.random.default_rng(0)
        X = rng.normal(size=(100, 3)); y = (X[:, 0] > 0).astype(int)
        m = MLP(hidden_layer_sizes=(8,), epochs=30, learning_rate=0.05, momentum=0.9,
                random_state=0, batch_size=10).fit(X, y)
        assert m.score(X, y) > 0.85, m.score(X, y)
        assert m.get_params()["epochs"] == 30
        assert m.set_params(epochs=2).epochs == 2
        assert repr(m).startswith("MLP(")
        try:
            m.set_params(nope=1)
        except ValueError:
            pass
        else:
            raise AssertionError("set_params accepted an unknown parameter")
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=same_package_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_type_stubs_match_the_compiled_module():
    import ast
    from importlib import resources

    import fastmlp._core as core
    package = resources.files("fastmlp")
    assert package.joinpath("py.typed").is_file()
    tree = ast.parse(package.joinpath("_core.pyi").read_text())
    stubbed = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    public = {n for n in dir(core) if not n.startswith("_") and callable(getattr(core, n))}
    assert stubbed == public
    network = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Network")
    methods = {n.name for n in network.body if isinstance(n, ast.FunctionDef)}
    assert {n for n in dir(core.Network) if not n.startswith("_")} <= methods
