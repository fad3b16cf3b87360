"""set_weights: on a fitted model it loads weights of the same shapes; before fit it builds the
network from the weights' shapes, as Keras lets one set the weights of a built, untrained model."""
import numpy as np
import pytest

from fastmlp import MLP


def weights(sizes, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        out += [rng.normal(size=(n_in, n_out)).astype(np.float32),
                rng.normal(size=n_out).astype(np.float32)]
    return out


def forward(ws, X):
    h = X.astype(np.float64)
    for layer in range(0, len(ws), 2):
        h = h @ ws[layer] + ws[layer + 1]
        if layer + 2 < len(ws):
            h = np.maximum(h, 0)
    return h


def test_set_weights_before_fit_builds_the_network():
    ws = weights((5, 7, 4, 3))
    model = MLP(hidden_layer_sizes=(7, 4))
    model.set_weights(ws)
    assert model.n_features_in_ == 5 and model.n_iter_ == 0
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    for got, want in zip(model.get_weights(), ws):
        np.testing.assert_array_equal(got, want)
    X = np.random.default_rng(1).normal(size=(20, 5)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(X), forward(ws, X).argmax(axis=1))
    model.fit(X, np.arange(20) % 3)   # and it trains like any model
    assert model.n_iter_ == model.epochs


def test_set_weights_before_fit_takes_the_classes():
    model = MLP(hidden_layer_sizes=(4,))
    model.set_weights(weights((3, 4, 2)), classes=["no", "yes"])
    X = np.eye(3, dtype=np.float32)
    assert set(model.predict(X)) <= {"no", "yes"}
    np.testing.assert_array_equal(model.classes_, ["no", "yes"])


@pytest.mark.parametrize("ws, params, message", [
    (weights((5, 7, 3)), dict(hidden_layer_sizes=(8,)), "hidden layers \\(7,\\)"),
    (weights((5, 7, 3))[:3], dict(hidden_layer_sizes=(7,)), "got 3 arrays"),
    (weights((5, 7, 3))[:2] + weights((6, 3)), dict(hidden_layer_sizes=(7,)), "W2 has shape"),
    (weights((5, 7, 3))[:1] + [np.zeros(6, np.float32)] + weights((7, 3)),
     dict(hidden_layer_sizes=(7,)), "b1"),
    (weights((5, 7, 1)), dict(hidden_layer_sizes=(7,)), "at least 2 outputs"),
])
def test_set_weights_before_fit_refuses_what_is_ambiguous(ws, params, message):
    model = MLP(**params)
    with pytest.raises(ValueError, match=message):
        model.set_weights(ws)
    assert not hasattr(model, "classes_")


def test_set_weights_before_fit_refuses_unsorted_or_wrong_classes():
    with pytest.raises(ValueError, match="sorted"):
        MLP(hidden_layer_sizes=(4,)).set_weights(weights((3, 4, 2)), classes=[1, 0])
    with pytest.raises(ValueError, match="sorted"):
        MLP(hidden_layer_sizes=(4,)).set_weights(weights((3, 4, 2)), classes=[0, 1, 2])


def test_set_weights_on_a_fitted_model_keeps_its_classes():
    X = np.random.default_rng(2).normal(size=(30, 3)).astype(np.float32)
    model = MLP(hidden_layer_sizes=(4,), epochs=1).fit(X, np.arange(30) % 2 + 5)
    model.set_weights(weights((3, 4, 2)))
    np.testing.assert_array_equal(model.classes_, [5, 6])
    with pytest.raises(ValueError, match="fitted already"):
        model.set_weights(weights((3, 4, 2)), classes=[0, 1])
