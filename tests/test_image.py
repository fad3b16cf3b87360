"""Digit image preprocessing: drawn test images (MNIST digits upscaled, inverted, off-centre)."""
import sys

import numpy as np
import pytest

from fastmlp import MLP
from fastmlp.datasets import load_mnist
from fastmlp.image import load_digit, load_digits, to_mnist


@pytest.fixture(scope="module")
def mnist(mnist_files):
    (x_train, y_train), (x_test, y_test) = load_mnist()
    return x_train, y_train, x_test, y_test


@pytest.fixture(scope="module")
def model(mnist):
    x_train, y_train, _, _ = mnist
    X = x_train[:12000].reshape(12000, -1).astype(np.float32) / 255
    return MLP(hidden_layer_sizes=(64,), epochs=4, loss="cross_entropy", learning_rate=0.05,
               momentum=0.9, batch_size=100, shuffle=True, random_state=0).fit(X, y_train[:12000])


def on_paper(digit, scale=4, canvas=(190, 230), at=(25, 90), ink=(20, 30, 90)):
    """An MNIST digit as dark ink on white paper, upscaled and placed off-centre (RGB uint8)."""
    big = np.kron(digit.astype(np.float64) / 255, np.ones((scale, scale)))
    paper = np.full(canvas + (3,), 250.0)
    top, left = at
    region = paper[top:top + big.shape[0], left:left + big.shape[1]]
    region[...] = region * (1 - big[..., None]) + np.array(ink) * big[..., None]
    return paper.round().astype(np.uint8)


def centre_of_mass(a):
    return (np.array([a.sum(axis=1) @ np.arange(a.shape[0]), a.sum(axis=0) @ np.arange(a.shape[1])])
            / a.sum())


def test_to_mnist_recovers_mnist_digits(mnist):
    _, _, x_test, _ = mnist
    correlations = []
    for digit in x_test[:60]:
        out = to_mnist(on_paper(digit))
        assert out.shape == (28, 28) and out.dtype == np.float32
        assert out.min() >= 0 and out.max() == pytest.approx(1.0)
        rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 20
        np.testing.assert_allclose(centre_of_mass(out), 14.0, atol=0.6)
        correlations.append(np.corrcoef(out.ravel(), digit.ravel())[0, 1])
    assert np.median(correlations) > 0.98


def test_dark_on_light_and_light_on_dark_agree(mnist):
    digit = mnist[2][0]
    paper = on_paper(digit)
    np.testing.assert_allclose(to_mnist(paper), to_mnist(255 - paper), atol=1e-6)
    np.testing.assert_allclose(to_mnist(paper), to_mnist(paper.astype(np.float64) / 255), atol=1e-6)
    np.testing.assert_allclose(to_mnist(digit), to_mnist(np.pad(digit, 40)), atol=1e-6)


def test_no_digit_is_an_error():
    with pytest.raises(ValueError, match="no digit"):
        to_mnist(np.full((50, 40), 200, np.uint8))
    with pytest.raises(ValueError):
        to_mnist(np.zeros((0, 5)))
    with pytest.raises(ValueError):
        to_mnist(np.array([["a"]]))


def test_drawn_png_files_are_read_right(tmp_path, mnist, model):
    Image = pytest.importorskip("PIL.Image")
    _, _, x_test, y_test = mnist
    rng = np.random.default_rng(0)
    paths, n = [], 60
    for i in range(n):
        scale = int(rng.integers(3, 7))
        size = 28 * scale
        canvas = (size + int(rng.integers(10, 120)), size + int(rng.integers(10, 120)))
        at = (int(rng.integers(0, canvas[0] - size)), int(rng.integers(0, canvas[1] - size)))
        path = tmp_path / f"digit{i}.png"
        image = Image.fromarray(on_paper(x_test[i], scale, canvas, at))
        if i % 3 == 1:
            image = image.convert("L")
        elif i % 3 == 2:  # dark ink on a transparent background
            rgba = np.zeros(canvas + (4,), np.uint8)
            rgba[..., 3] = 255 - np.asarray(image.convert("L"))
            image = Image.fromarray(rgba, "RGBA")
        image.save(path)
        paths.append(path)
    X = load_digits(paths)
    assert X.shape == (n, 784)
    from_files = model.predict(X)
    from_mnist = model.predict(x_test[:n].reshape(n, -1).astype(np.float32) / 255)
    assert np.mean(from_files == y_test[:n]) >= 0.9
    assert np.mean(from_files == from_mnist) >= 0.9
    np.testing.assert_allclose(load_digit(paths[0]), to_mnist(on_paper(x_test[0], 3)), atol=0.05)


def test_bad_files(tmp_path):
    pytest.importorskip("PIL")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read the image"):
        load_digit(bad)
    with pytest.raises(FileNotFoundError):
        load_digit(tmp_path / "missing.png")


def test_missing_pillow_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r'pip install "fastmlp\[image\]"'):
        load_digit(tmp_path / "x.png")
