"""The MLP estimator's core contract: fit/predict/score, reproducibility, weights, labels."""
import numpy as np
import pytest

import fastmlp
from fastmlp import reference as ref


def blobs(n=300, n_features=6, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, size=n)
    X = centres[y] + rng.normal(0, 1, size=(n, n_features))
    return X, y


def small_model(**kw):
    params = dict(hidden_layer_sizes=(16, 8), learning_rate=0.01, batch_size=32, epochs=20,
                  random_state=0)
    params.update(kw)
    return fastmlp.MLP(**params)


def test_defaults_are_the_tutorial():
    m = fastmlp.MLP()
    assert m.hidden_layer_sizes == (512, 256)
    assert m.learning_rate == 0.001 and m.batch_size == 200 and m.epochs == 30
    assert m.shuffle is False and m.random_state is None and m.loss == "mse"


def test_fit_returns_self_and_learns():
    X, y = blobs()
    m = small_model()
    assert m.fit(X, y) is m
    assert m.score(X, y) > 0.95
    assert len(m.loss_curve_) == 20 and m.loss_curve_[-1] < m.loss_curve_[0]
    assert m.n_features_in_ == 6
    assert [w.shape for w in m.coefs_] == [(6, 16), (16, 8), (8, 3)]
    assert [b.shape for b in m.intercepts_] == [(16,), (8,), (3,)]
    assert all(w.dtype == np.float32 for w in m.coefs_ + m.intercepts_)


def test_same_seed_gives_bit_identical_weights():
    X, y = blobs()
    a = small_model(random_state=42).fit(X, y).get_weights()
    b = small_model(random_state=42).fit(X, y).get_weights()
    c = small_model(random_state=43).fit(X, y).get_weights()
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_shuffle_is_reproducible_and_changes_the_result():
    X, y = blobs()
    a = small_model(shuffle=True, random_state=1).fit(X, y).get_weights()
    b = small_model(shuffle=True, random_state=1).fit(X, y).get_weights()
    c = small_model(shuffle=False, random_state=1).fit(X, y).get_weights()
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_fit_matches_the_reference_fit():
    """Same initial weights (Glorot from the same seed), same batches: same trajectory."""
    X, y = blobs(n=90, n_features=5)
    X /= np.abs(X).max()
    m = fastmlp.MLP(hidden_layer_sizes=(7,), learning_rate=0.05, batch_size=32, epochs=3,
                    random_state=7).fit(X, y)
    weights, biases, curve = ref.fit(X.astype(np.float32).astype(np.float64), y, [5, 7, 3], lr=0.05, batch_size=32,
                                     epochs=3, rng=np.random.default_rng(7))
    np.testing.assert_allclose(m.loss_curve_, curve, rtol=1e-4)
    for got, want in zip(m.coefs_, weights):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_partial_fit_continues_from_current_weights():
    X, y = blobs()
    full = small_model(epochs=3).fit(X, y).get_weights()
    m = small_model(epochs=3)
    for _ in range(3):
        m.partial_fit(X, y)
    assert all(np.array_equal(p, q) for p, q in zip(full, m.get_weights()))
    assert len(m.loss_curve_) == 3


def test_any_label_values():
    X, y = blobs(n_classes=3)
    names = np.array(["cat", "dog", "emu"])[y]
    m = small_model().fit(X, names)
    assert list(m.classes_) == ["cat", "dog", "emu"]
    assert set(m.predict(X)) <= {"cat", "dog", "emu"}
    assert m.score(X, names) > 0.95
    m2 = small_model().fit(X, y * 10 - 7)
    assert list(m2.classes_) == [-7, 3, 13]


def test_get_and_set_weights_round_trip():
    X, y = blobs()
    a = small_model(epochs=2).fit(X, y)
    b = small_model(epochs=1, random_state=5).fit(X, y)
    b.set_weights(a.get_weights())
    assert np.array_equal(a.predict(X), b.predict(X))
    assert np.array_equal(a.decision_function(X), b.decision_function(X))
    w = a.get_weights()
    w[0][...] = 0          # a copy: the model is unchanged
    assert not np.array_equal(a.get_weights()[0], w[0])


def test_set_weights_checks_shapes_and_changes_nothing_on_error():
    X, y = blobs()
    m = small_model(epochs=1).fit(X, y)
    before = m.get_weights()
    bad = [np.ones_like(a) for a in before]
    bad[-1] = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="shape"):
        m.set_weights(bad)
    with pytest.raises(ValueError):
        m.set_weights(before[:-1])
    assert all(np.array_equal(p, q) for p, q in zip(before, m.get_weights()))


def test_start_from_given_weights_like_keras():
    X, y = blobs(n_features=4)
    m = fastmlp.MLP(hidden_layer_sizes=(5,), epochs=1, batch_size=300, learning_rate=0.1,
                    random_state=0).fit(X, y)
    rng = np.random.default_rng(3)
    weights, biases = ref.init_params([4, 5, 3], rng)
    m.set_weights([weights[0], biases[0], weights[1], biases[1]])
    m.partial_fit(X, y)
    new_w, _, _ = ref.train_step([w.astype(np.float64) for w in weights],
                                 [b.astype(np.float64) for b in biases],
                                 X.astype(np.float32).astype(np.float64), np.searchsorted(m.classes_, y),
                                 0.1)
    np.testing.assert_allclose(m.coefs_[0], new_w[0], rtol=1e-4, atol=1e-6)


def test_predict_proba_and_decision_function():
    X, y = blobs()
    for loss in ("mse", "cross_entropy"):
        m = small_model(loss=loss).fit(X, y)
        p = m.predict_proba(X)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
        assert np.array_equal(m.classes_[p.argmax(axis=1)], m.predict(X))
        assert m.decision_function(X).shape == (len(X), 3)


def test_images_are_flattened():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(60, 4, 5))
    y = (X[:, 0, 0] > 0.5).astype(int)
    m = small_model(epochs=2).fit(X, y)
    assert m.n_features_in_ == 20
    assert np.array_equal(m.predict(X), m.predict(X.reshape(60, 20)))


def test_float32_input_is_not_copied():
    X = np.zeros((4, 3), np.float32)
    assert fastmlp.mlp.check_array(X) is X


def test_more_hidden_layers_and_no_hidden_layer():
    X, y = blobs()
    assert small_model(hidden_layer_sizes=(9, 8, 7, 6)).fit(X, y).score(X, y) > 0.9
    assert small_model(hidden_layer_sizes=()).fit(X, y).score(X, y) > 0.9


def test_not_fitted():
    with pytest.raises(fastmlp.mlp.NotFittedError):
        fastmlp.MLP().predict(np.zeros((1, 3)))


def test_state_round_trip_continues_bit_identical():
    """from_state(get_state()) is the same model: same outputs, and training on from it (the
    velocities and the shuffling generator included) gives the same bits as the original."""
    X, y = blobs()
    kw = dict(momentum=0.9, nesterov=True, shuffle=True, warm_start=True, epochs=2)
    model = small_model(**kw).fit(X, y)
    state = model.get_state()
    assert sorted(state) == ["adam_state", "adam_t", "best_epoch", "classes", "dropout_seed",
                             "dropout_step", "feature_names_in", "history", "layer_sizes",
                             "loss_curve", "n_iter", "params", "rng", "velocity", "weights"]
    assert state["dropout_seed"] is None   # no dropout: no seed drawn
    assert state["adam_state"] == [] and state["adam_t"] == 0      # SGD keeps none of Adam's
    assert state["layer_sizes"] == [6, 16, 8, 3] and state["params"]["activation"] == "relu"
    copy = fastmlp.MLP.from_state(state)
    assert copy.get_params() == model.get_params()
    np.testing.assert_array_equal(copy.decision_function(X), model.decision_function(X))
    model.fit(X, y)
    copy.fit(X, y)
    for a, b in zip(model.get_weights() + model.get_state()["velocity"],
                    copy.get_weights() + copy.get_state()["velocity"]):
        assert a.tobytes() == b.tobytes()
    assert copy.loss_curve_ == model.loss_curve_ and copy.n_iter_ == 4


def test_state_needs_a_fitted_model_and_valid_parameters():
    with pytest.raises(fastmlp.NotFittedError):
        fastmlp.MLP().get_state()
    state = small_model(epochs=1).fit(*blobs()).get_state()
    state["params"]["learning_rate"] = -1.0
    with pytest.raises(ValueError, match="learning_rate"):
        fastmlp.MLP.from_state(state)


def test_production_code_does_not_import_the_reference():
    """Only the tests read the NumPy reference; the package runs without it."""
    import os
    import subprocess
    import sys
    code = ("import sys, fastmlp, fastmlp.io, fastmlp.checkpoint, fastmlp.cli, fastmlp.progress\n"
            "assert fastmlp.__file__.startswith(sys.argv[1]), fastmlp.__file__\n"
            "assert 'fastmlp.reference' not in sys.modules, 'fastmlp.reference was imported'\n")
    root = os.path.dirname(os.path.dirname(fastmlp.__file__))
    subprocess.run([sys.executable, "-c", code, root], check=True,
                   env=dict(os.environ, PYTHONPATH=root))
