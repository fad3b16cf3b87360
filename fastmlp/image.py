"""Turn a photo or scan of one handwritten digit into an MNIST-like input.

MNIST digits are light strokes on a black background, size-normalised to fit a 20x20 box
(keeping their aspect ratio) and centred by their centre of mass in a 28x28 image. The same
steps, applied to an arbitrary image by :func:`to_mnist`:

1. grayscale in [0, 1] (colour by luminance; transparent pixels count as white paper);
2. invert when the background is light (dark ink on paper), judged by the median of the
   image's border;
3. subtract the background level and stretch the contrast so the darkest ink becomes 1;
4. crop to the bounding box of the pixels above ``threshold`` (the digit);
5. scale that box so its longer side is 20 pixels, keeping the aspect ratio (area averaging);
6. paste it into a black 28x28 image so that its centre of mass is at the centre;
7. values in [0, 1], float32.

Only :func:`load_digit` (reading files) needs Pillow (``pip install "fastmlp[image]"``);
:func:`to_mnist` works on NumPy arrays.
"""
import os

import numpy as np

__all__ = ["load_digit", "load_digits", "to_mnist"]

SIZE = 28
BOX = 20


def _require_pillow():
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise ImportError('reading images needs Pillow: pip install "fastmlp[image]"') from None
    return Image, ImageOps


def _grayscale(image):
    a = np.asarray(image)
    if a.dtype.kind not in "uifb":
        raise ValueError(f"image has dtype {a.dtype}; expected numbers")
    if a.dtype == np.uint16:
        a = a / 65535.0
    elif a.dtype.kind in "ui":
        a = a / 255.0
    else:
        a = a.astype(np.float64)
        if a.size and a.max() > 1.0:  # floats on the 0..255 scale
            a = a / 255.0
    if a.ndim == 3:
        if a.shape[2] in (2, 4):  # with alpha: composite over white paper
            alpha = a[..., -1:]
            a = a[..., :-1] * alpha + (1.0 - alpha)
        if a.shape[2] == 3:
            a = a @ np.array([0.299, 0.587, 0.114])
        elif a.shape[2] == 1:
            a = a[..., 0]
        else:
            raise ValueError(f"image has {a.shape[2]} channels; expected 1 to 4")
    if a.ndim != 2:
        raise ValueError(f"image must be 2-D (height, width) or 3-D with channels; got shape {a.shape}")
    if min(a.shape) < 1:
        raise ValueError(f"image is empty (shape {a.shape})")
    if not np.isfinite(a).all():
        raise ValueError("image contains NaN or infinity")
    return np.clip(a, 0.0, 1.0)


def _area_matrix(n_out, n_in):
    """R of shape (n_out, n_in): R @ v resamples v by averaging the covered input area."""
    scale = n_in / n_out
    edges = np.arange(n_out + 1) * scale
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0, None)
    return overlap / scale


def _resize(a, height, width):
    return _area_matrix(height, a.shape[0]) @ a @ _area_matrix(width, a.shape[1]).T


def to_mnist(image, threshold=0.1):
    """An MNIST-like 28x28 digit from an image array (see the module docstring for the steps).

    Parameters
    ----------
    image : array-like, shape (height, width) or (height, width, channels)
        Grayscale, RGB or RGBA; integers (0..255 for uint8) or floats in [0, 1].
    threshold : float
        After inversion and contrast stretching, pixels above it belong to the digit; their
        bounding box is the crop.

    Returns
    -------
    ndarray, shape (28, 28), float32 in [0, 1]
        Light digit on black, like ``load_mnist()`` images divided by 255.

    Raises
    ------
    ValueError
        If the image is empty, not numeric, or has no digit (no contrast).
    """
    a = _grayscale(image)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if np.median(border) > 0.5:
        a = 1.0 - a
        border = 1.0 - border
    background = float(np.median(border))
    a = a - background
    peak = float(a.max())
    if peak < 0.1:
        raise ValueError("no digit found: the image has no contrast against its background")
    a = np.clip(a / peak, 0.0, 1.0)
    rows = np.flatnonzero((a > threshold).any(axis=1))
    cols = np.flatnonzero((a > threshold).any(axis=0))
    a = a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = a.shape
    scale = BOX / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    digit = _resize(a, new_h, new_w)
    if digit.max() > 0:
        digit /= digit.max()
    mass = digit.sum()
    cy = (digit.sum(axis=1) @ np.arange(new_h)) / mass
    cx = (digit.sum(axis=0) @ np.arange(new_w)) / mass
    top = int(np.clip(round(SIZE / 2 - cy), 0, SIZE - new_h))
    left = int(np.clip(round(SIZE / 2 - cx), 0, SIZE - new_w))
    out = np.zeros((SIZE, SIZE), np.float32)
    out[top:top + new_h, left:left + new_w] = digit
    return out


def load_digit(path, threshold=0.1):
    """Read an image file (PNG, JPEG, ...) of one digit as an MNIST-like 28x28 input.

    Parameters
    ----------
    path : str or os.PathLike
    threshold : float
        See :func:`to_mnist`.

    Returns
    -------
    ndarray, shape (28, 28), float32 in [0, 1]

    Raises
    ------
    ImportError
        Without Pillow (the message says ``pip install "fastmlp[image]"``).
    FileNotFoundError, ValueError
        If the file is missing, not an image, or holds no digit.
    """
    Image, ImageOps = _require_pillow()
    path = os.fspath(path)
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)  # photos: honour the camera's rotation
            img = img.convert("RGBA" if "A" in img.getbands() or "transparency" in img.info else "L")
            array = np.asarray(img)
    except FileNotFoundError:
        raise
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path}: cannot read the image ({exc})") from None
    try:
        return to_mnist(array, threshold)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def load_digits(paths, threshold=0.1):
    """:func:`load_digit` of every path, as a matrix ready for ``MLP.predict``.

    Parameters
    ----------
    paths : iterable of str or os.PathLike
        Image files, one digit each.
    threshold : float
        See :func:`to_mnist`.

    Returns
    -------
    ndarray, shape (n_images, 784), float32
    """
    return np.stack([load_digit(p, threshold).ravel() for p in paths])
