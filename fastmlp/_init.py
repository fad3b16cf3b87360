"""Initial weights of a network: Glorot-uniform weights and zero biases.

The estimator draws its initial weights here, and ``fastmlp.reference`` re-exports these
functions, so the C path and the NumPy reference start from the same numbers.
"""
import numpy as np

__all__ = ["glorot_uniform", "init_params"]


def glorot_uniform(fan_in, fan_out, rng):
    """Glorot (Xavier) uniform initialisation of one weight matrix.

    Draws from ``U(-limit, limit)`` with ``limit = sqrt(6 / (fan_in + fan_out))``,
    so the variance is ``limit**2 / 3 = 2 / (fan_in + fan_out)``.

    Parameters
    ----------
    fan_in, fan_out : int
        Input and output width of the layer (``K`` and ``N``).
    rng : numpy.random.Generator
        Source of randomness; one call to ``rng.uniform`` is made.

    Returns
    -------
    W : ndarray, shape (fan_in, fan_out), float32
    """
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)


def init_params(layer_sizes, rng):
    """Initial weights (Glorot uniform) and biases (zeros) of an MLP.

    Parameters
    ----------
    layer_sizes : sequence of int, length L + 1
        Widths from input to output, e.g. ``[784, 512, 256, 10]`` (L = 3 layers).
    rng : numpy.random.Generator
        Weights are drawn from it in layer order, first layer first.

    Returns
    -------
    weights : list of L ndarrays, shapes (layer_sizes[l], layer_sizes[l+1]), float32
    biases : list of L ndarrays, shapes (layer_sizes[l+1],), float32, all zero
    """
    weights, biases = [], []
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        weights.append(glorot_uniform(fan_in, fan_out, rng))
        biases.append(np.zeros(fan_out, dtype=np.float32))
    return weights, biases
