"""NumPy reference implementation of the MLP: the executable spec.

Everything the C kernels compute is written here once, plainly, in NumPy.
It is slow on purpose and meant to be read top to bottom like a textbook:
the C code is checked against these functions, and these functions are
checked by finite differences (``tests/test_reference.py``).

Conventions
-----------
- ``M`` is the batch size, ``K`` a layer's input width, ``N`` its output width.
- A dense layer computes ``Z = X @ W + b`` with ``W`` of shape ``(K, N)``
  (row-major, one row per input feature) and ``b`` of shape ``(N,)``.
- Hidden layers apply an activation from :data:`ACTIVATIONS` (ReLU unless
  an ``activation`` argument names another); the last layer is linear (its
  outputs are the "logits" ``out``).
- Every update rule the C step applies (plain SGD, momentum, Nesterov, the
  L2 penalty) is written out in "Updates".
- Labels are integer class indices of shape ``(M,)``.
- Functions are dtype-generic: they compute in the dtype of their inputs
  (float64 for checking, float32 to match the C code). Only the
  initialisation fixes a dtype (float32).

The network of the MNIST tutorial is ``[784, 512, 256, 10]``: two ReLU
layers of 512 and 256 units, a linear output of 10, the "mse" loss and
plain SGD with ``lr=0.001`` and batches of 200.
"""

import math

import numpy as np

# Initialisation is shared with the estimator (fastmlp/_init.py), so both start from the same
# weights; it is re-exported here as part of the spec.
from ._init import glorot_uniform, init_params

__all__ = [
    "glorot_uniform",
    "init_params",
    "ACTIVATIONS",
    "DERIVATIVES",
    "relu",
    "tanh",
    "identity",
    "logistic",
    "leaky_relu",
    "LEAKY_RELU_SLOPE",
    "gelu",
    "normal_cdf",
    "FROM_PREACTIVATION",
    "relu_derivative",
    "tanh_derivative",
    "identity_derivative",
    "logistic_derivative",
    "leaky_relu_derivative",
    "gelu_derivative",
    "preactivations",
    "dense_forward",
    "forward",
    "onehot",
    "mse_loss",
    "mse_grad",
    "softmax",
    "cross_entropy_loss",
    "cross_entropy_grad",
    "relu_backward",
    "dense_backward",
    "backward",
    "l2_gradient",
    "sgd_update",
    "momentum_update",
    "nesterov_update",
    "UPDATES",
    "adam_lr",
    "adam_update",
    "parameter_update",
    "loss_and_grads",
    "train_step",
    "predict",
    "fit",
    "flops_per_step",
    "logistic",
    "OUTPUT_ACTIVATIONS",
    "TARGET_LOSSES",
    "target_loss",
    "target_output_grad",
    "target_loss_and_grads",
]


# --------------------------------------------------------------------------
# Activations: each is a function and its derivative, the derivative written
# in terms of the activation's output A (what the backward pass keeps).
# --------------------------------------------------------------------------

def identity(Z):
    """The linear output layer's activation: ``A = Z``."""
    return Z


def relu(Z):
    """``A = max(Z, 0)``, as ``np.where(Z > 0, Z, 0)`` (exact, and 0 for ``Z = -0``)."""
    return np.where(Z > 0, Z, 0)


def tanh(Z):
    """``A = tanh(Z)``."""
    return np.tanh(Z)


def logistic(Z):
    """``A = 1 / (1 + exp(-Z))``, written so that neither sign overflows or cancels."""
    E = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1 / (1 + E), E / (1 + E))


#: Leaky ReLU's slope below 0 (PyTorch's default ``negative_slope``).
LEAKY_RELU_SLOPE = 0.01


def leaky_relu(Z):
    """``A = Z`` where ``Z > 0``, else ``LEAKY_RELU_SLOPE * Z`` (in Z's dtype, as the C kernel)."""
    return np.where(Z > 0, Z, Z * np.asarray(LEAKY_RELU_SLOPE, Z.dtype))


def normal_cdf(Z):
    """The standard normal CDF ``Phi(Z) = erfc(-Z / sqrt(2)) / 2``, in Z's dtype (erfc keeps
    its relative accuracy far into the lower tail)."""
    Z = np.asarray(Z)
    erfc = np.vectorize(math.erfc, otypes=[np.float64])
    return (0.5 * erfc(-Z.astype(np.float64) / math.sqrt(2))).astype(Z.dtype)


def gelu(Z):
    """``A = Z Phi(Z)``: GELU in its exact (erf) form, PyTorch's default."""
    return Z * normal_cdf(Z)


def identity_derivative(A):
    """``dA/dZ = 1``."""
    return np.ones_like(A)


def relu_derivative(A):
    """``dA/dZ = 1`` where ``A > 0`` (exactly where ``Z > 0``), else 0 (the kink counts as 0)."""
    return A > 0


def tanh_derivative(A):
    """``dA/dZ = 1 - tanh(Z)**2 = 1 - A**2``."""
    return 1 - A * A


def logistic_derivative(A):
    """``dA/dZ = A (1 - A)``."""
    return A * (1 - A)


def leaky_relu_derivative(A):
    """``dA/dZ = 1`` where ``A > 0`` (exactly where ``Z > 0``), else ``LEAKY_RELU_SLOPE``."""
    return np.where(A > 0, 1, np.asarray(LEAKY_RELU_SLOPE, A.dtype))


def gelu_derivative(Z):
    """``dA/dZ = Phi(Z) + Z phi(Z)``, from the pre-activation ``Z`` (GELU is not monotonic:
    its output does not determine Z)."""
    return normal_cdf(Z) + Z * np.exp(-Z * Z / 2) / math.sqrt(2 * math.pi)


#: Activation functions by name: ``A = ACTIVATIONS[name](Z)``.
ACTIVATIONS = {"identity": identity, "relu": relu, "tanh": tanh, "logistic": logistic,
               "leaky_relu": leaky_relu, "gelu": gelu}
#: Their derivatives, from the output: ``dA/dZ = DERIVATIVES[name](A)``, or from the
#: pre-activation for those in :data:`FROM_PREACTIVATION`: ``DERIVATIVES[name](Z)``.
DERIVATIVES = {"identity": identity_derivative, "relu": relu_derivative,
               "tanh": tanh_derivative, "logistic": logistic_derivative,
               "leaky_relu": leaky_relu_derivative, "gelu": gelu_derivative}
#: The activations whose derivative is written in Z: a layer keeps Z for them.
FROM_PREACTIVATION = {"gelu"}


def _activation_functions(activation):
    try:
        return ACTIVATIONS[activation], DERIVATIVES[activation]
    except KeyError:
        raise ValueError(f"unknown activation {activation!r}; expected one of "
                         f"{sorted(ACTIVATIONS)}") from None


# --------------------------------------------------------------------------
# Forward pass
# --------------------------------------------------------------------------

def dense_forward(X, W, b, relu=False, activation=None):
    """One dense layer: ``A = f(X @ W + b)``.

    Parameters
    ----------
    X : ndarray, shape (M, K)
    W : ndarray, shape (K, N)
    b : ndarray, shape (N,)
    relu : bool
        Apply ReLU (the C kernel's flag): the same as ``activation="relu"``,
        and ``False`` the same as ``activation="identity"``.
    activation : str, optional
        A name in :data:`ACTIVATIONS`; when given, ``relu`` is ignored.

    Returns
    -------
    A : ndarray, shape (M, N)
    """
    if activation is None:
        activation = "relu" if relu else "identity"
    f, _ = _activation_functions(activation)
    return f(X @ W + b)


def forward(weights, biases, X, activation="relu", dropout=None):
    """Forward pass through all layers, keeping every activation.

    Parameters
    ----------
    weights : list of L ndarrays, shapes (n_l, n_{l+1})
    biases : list of L ndarrays, shapes (n_{l+1},)
    X : ndarray, shape (M, n_0)
    activation : str
        The hidden layers' activation, a name in :data:`ACTIVATIONS`.
    dropout : list of L - 1 ndarrays, optional
        A training step's dropout factors of the hidden layers (:func:`dropout_factors`):
        hidden layer l's output is ``f(Z) * dropout[l]``.

    Returns
    -------
    activations : list of L + 1 ndarrays
        ``[X, A_1, ..., A_{L-1}, out]``; ``A_l`` has shape (M, n_l), the
        hidden layers apply ``activation``, ``out`` (shape (M, n_L)) is
        linear. The backward pass needs them all.
    """
    activations = [X]
    n_layers = len(weights)
    for l, (W, b) in enumerate(zip(weights, biases)):
        is_hidden = l < n_layers - 1
        A = dense_forward(activations[-1], W, b,
                          activation=activation if is_hidden else "identity")
        if is_hidden and dropout is not None:
            A = A * dropout[l]
        activations.append(A)
    return activations


# --------------------------------------------------------------------------
# Dropout: inverted dropout's masks from a counter-based generator
# --------------------------------------------------------------------------
#
# Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2,
# 3", SC 2011; Random123): a 64-bit key and a 128-bit counter give four 32-bit words through
# ten rounds. A unit's word: key = the seed, counter = (column // 4, row, layer, step mod
# 2**32), word column % 4 of the four. The unit is dropped when its word is below
# floor(rate * 2**32), so it is kept with probability 1 - rate (to within 2**-32).

PHILOX_M = (0xD2511F53, 0xCD9E8D57)   # the round's multipliers
PHILOX_W = (0x9E3779B9, 0xBB67AE85)   # the key's step between rounds
_WORD = 0xFFFFFFFF


def philox4x32(counters, key):
    """Philox4x32-10's words of every counter.

    Parameters
    ----------
    counters : array of int, shape (..., 4)
        Each counter's four 32-bit words.
    key : pair of int
        The key's two 32-bit words.

    Returns
    -------
    words : ndarray of uint32, shape (..., 4)
    """
    c = [np.asarray(counters, np.uint64)[..., i] for i in range(4)]
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    m0, m1, word = np.uint64(PHILOX_M[0]), np.uint64(PHILOX_M[1]), np.uint64(_WORD)
    for _ in range(10):
        p0, p1 = c[0] * m0, c[2] * m1            # exact: 32 x 32 bits fit in 64
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & word,
             (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & word]
        k0 = (k0 + np.uint64(PHILOX_W[0])) & word
        k1 = (k1 + np.uint64(PHILOX_W[1])) & word
    return np.stack(c, axis=-1).astype(np.uint32)


def dropout_keep(rate, seed, step, layer, rows, columns, row0=0):
    """Which units a training step keeps: a bool array (rows, columns) for the batch's rows
    ``row0 ..`` of hidden layer ``layer`` (from 0), the step's key ``(seed, step)``."""
    groups = (columns + 3) // 4
    ctr = np.zeros((rows, groups, 4), np.uint64)
    ctr[..., 0] = np.arange(groups, dtype=np.uint64)[None, :]
    ctr[..., 1] = np.arange(row0, row0 + rows, dtype=np.uint64)[:, None]
    ctr[..., 2] = layer
    ctr[..., 3] = step % 2 ** 32
    words = philox4x32(ctr, (seed & _WORD, seed >> 32)).reshape(rows, 4 * groups)[:, :columns]
    return words >= np.uint32(math.floor(rate * 2 ** 32))


def dropout_factors(rate, seed, step, layer, rows, columns, row0=0, dtype=np.float64):
    """What a training step multiplies hidden layer ``layer``'s output by (inverted dropout, as
    Keras and PyTorch): 0 for a dropped unit, ``1 / (1 - rate)`` (in ``dtype``) for a kept
    one. Shape (rows, columns)."""
    keep = dropout_keep(rate, seed, step, layer, rows, columns, row0)
    return np.where(keep, dtype(1.0 / (1.0 - rate)), dtype(0.0)).astype(dtype)


def step_dropout(rates, seed, step, layer_sizes, rows, dtype=np.float64):
    """The factors of every hidden layer (``rates`` one per hidden layer, 0: all ones) for a
    step on ``rows`` rows of a network of widths ``layer_sizes``: :func:`forward`'s and
    :func:`backward`'s ``dropout``."""
    return [dropout_factors(r, seed, step, l, rows, n, dtype=dtype) if r > 0
            else np.ones((rows, n), dtype)
            for l, (r, n) in enumerate(zip(rates, layer_sizes[1:-1]))]


# --------------------------------------------------------------------------
# Losses and their gradients with respect to the network output
# --------------------------------------------------------------------------

def onehot(labels, n_classes, dtype):
    """One-hot encoding of integer class labels.

    Parameters
    ----------
    labels : array of int, shape (M,)
        Class indices in ``[0, n_classes)``.
    n_classes : int
    dtype : numpy dtype

    Returns
    -------
    Y : ndarray, shape (M, n_classes)
        ``Y[i, labels[i]] = 1``, every other entry 0.
    """
    labels = np.asarray(labels)
    Y = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    Y[np.arange(labels.shape[0]), labels] = 1
    return Y


def mse_loss(out, labels):
    """Squared error against one-hot targets, summed, divided by the batch size.

    ``loss = sum_{i,j} (out[i, j] - Y[i, j])**2 / M`` with ``Y = onehot(labels)``.

    Parameters
    ----------
    out : ndarray, shape (M, N)
    labels : array of int, shape (M,)

    Returns
    -------
    loss : float
    """
    M, N = out.shape
    diff = out - onehot(labels, N, out.dtype)
    return float(np.sum(diff * diff) / M)


def mse_grad(out, labels):
    """Gradient of :func:`mse_loss` with respect to ``out``: ``2 (out - Y) / M``.

    Parameters
    ----------
    out : ndarray, shape (M, N)
    labels : array of int, shape (M,)

    Returns
    -------
    dOut : ndarray, shape (M, N), dtype of ``out``
    """
    M, N = out.shape
    return 2 * (out - onehot(labels, N, out.dtype)) / M


def softmax(logits):
    """Row-wise softmax, computed stably by subtracting each row's maximum.

    Parameters
    ----------
    logits : ndarray, shape (M, N)

    Returns
    -------
    P : ndarray, shape (M, N)
        Non-negative, each row sums to 1.
    """
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy_loss(logits, labels):
    """Mean negative log-likelihood of the labels under ``softmax(logits)``.

    ``loss = mean_i ( logsumexp(logits[i]) - logits[i, labels[i]] )``, with the
    log-sum-exp taken stably as ``m + log(sum(exp(logits[i] - m)))``,
    ``m = max(logits[i])``.

    Parameters
    ----------
    logits : ndarray, shape (M, N)
    labels : array of int, shape (M,)

    Returns
    -------
    loss : float
    """
    M = logits.shape[0]
    m = logits.max(axis=1)
    logsumexp = m + np.log(np.exp(logits - m[:, None]).sum(axis=1))
    correct = logits[np.arange(M), labels]
    return float(np.mean(logsumexp - correct))


def cross_entropy_grad(logits, labels):
    """Gradient of :func:`cross_entropy_loss` w.r.t. the logits: ``(P - Y) / M``.

    Parameters
    ----------
    logits : ndarray, shape (M, N)
    labels : array of int, shape (M,)

    Returns
    -------
    dLogits : ndarray, shape (M, N), dtype of ``logits``
    """
    M, N = logits.shape
    return (softmax(logits) - onehot(labels, N, logits.dtype)) / M


LOSSES = {
    "mse": (mse_loss, mse_grad),
    "cross_entropy": (cross_entropy_loss, cross_entropy_grad),
}


def _loss_functions(loss):
    try:
        return LOSSES[loss]
    except KeyError:
        raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}") from None


# --------------------------------------------------------------------------
# Backward pass
# --------------------------------------------------------------------------

def relu_backward(dA, A):
    """Gradient through a ReLU, given its output ``A``: ``dZ = dA * (A > 0)``.

    Parameters
    ----------
    dA : ndarray, shape (M, N)
        Gradient with respect to the ReLU output.
    A : ndarray, shape (M, N)
        The ReLU output from the forward pass (``A > 0`` exactly where ``Z > 0``).

    Returns
    -------
    dZ : ndarray, shape (M, N)
        Gradient with respect to the pre-activation.
    """
    return dA * relu_derivative(A)


def dense_backward(dZ, A_prev, W):
    """Gradients of a dense layer ``Z = A_prev @ W + b``.

    Parameters
    ----------
    dZ : ndarray, shape (M, N)
        Gradient with respect to the layer's pre-activation ``Z``.
    A_prev : ndarray, shape (M, K)
        The layer's input from the forward pass.
    W : ndarray, shape (K, N)

    Returns
    -------
    dA_prev : ndarray, shape (M, K)
        ``dZ @ W.T``, gradient w.r.t. the input (not yet masked by any ReLU).
    dW : ndarray, shape (K, N)
        ``A_prev.T @ dZ``.
    db : ndarray, shape (N,)
        ``dZ.sum(axis=0)``.
    """
    dA_prev = dZ @ W.T
    dW = A_prev.T @ dZ
    db = dZ.sum(axis=0)
    return dA_prev, dW, db


def preactivations(weights, biases, activations):
    """``[Z_1, ..., Z_{L-1}]``: each hidden layer's ``A_prev @ W + b``, from :func:`forward`'s
    activations (what the backward pass of a :data:`FROM_PREACTIVATION` activation needs)."""
    return [A @ W + b for A, W, b in zip(activations[:-2], weights[:-1], biases[:-1])]


def backward(weights, activations, dOut, activation="relu", preactivations=None,
             dropout=None):
    """Backward pass: gradients of the loss w.r.t. every weight and bias.

    Parameters
    ----------
    weights : list of L ndarrays, shapes (n_l, n_{l+1})
    activations : list of L + 1 ndarrays
        As returned by :func:`forward`: ``[X, A_1, ..., out]``.
    dOut : ndarray, shape (M, n_L)
        Gradient of the loss w.r.t. the (linear) output.
    activation : str
        The hidden layers' activation, as given to :func:`forward`.
    preactivations : list of L - 1 ndarrays, optional
        As :func:`preactivations` returns; needed for an activation in
        :data:`FROM_PREACTIVATION`, and with ``dropout``.
    dropout : list of L - 1 ndarrays, optional
        The factors :func:`forward` dropped the hidden layers' outputs by: the gradient
        of a layer's output before the drop is the dropped output's times them, and the
        derivative comes from the output before the drop (or Z).

    Returns
    -------
    dWs : list of L ndarrays, shapes like ``weights``
    dbs : list of L ndarrays, shapes (n_{l+1},)
    """
    _, derivative = _activation_functions(activation)
    n_layers = len(weights)
    dWs, dbs = [None] * n_layers, [None] * n_layers
    dZ = dOut  # the output layer is linear: dZ_L = dOut
    for l in reversed(range(n_layers)):
        dA_prev, dWs[l], dbs[l] = dense_backward(dZ, activations[l], weights[l])
        if l > 0:
            # activations[l] is the output A of layer l - 1: dZ = dA * f'(Z), from A (or Z).
            source = (preactivations[l - 1] if activation in FROM_PREACTIVATION
                      else activations[l])
            if dropout is not None:
                if activation not in FROM_PREACTIVATION:   # f(Z) before the drop
                    source = ACTIVATIONS[activation](preactivations[l - 1])
                dA_prev = dA_prev * dropout[l - 1]
            dZ = dA_prev * derivative(source)
        # For l == 0, dA_prev (the gradient w.r.t. X) is not needed.
    return dWs, dbs


# --------------------------------------------------------------------------
# Updates: how one parameter and its velocity move after a step. The C step
# applies parameter_update to every weight matrix and bias (alpha = 0 for a
# bias: the L2 penalty is on the weights only).
# --------------------------------------------------------------------------

def l2_gradient(dW, W, alpha):
    """Gradient of ``loss + alpha / 2 * sum(W**2)``: ``dW + alpha * W``.

    Parameters
    ----------
    dW, W : ndarray, same shape
    alpha : float
        The L2 penalty (weight decay); 0 leaves the gradient as it is.

    Returns
    -------
    g : ndarray, shape of ``W``
    """
    return dW + alpha * W


def sgd_update(W, dW, lr):
    """Plain SGD step ``W - lr * dW``; returns a new array, ``W`` is untouched.

    Parameters
    ----------
    W, dW : ndarray, same shape
    lr : float

    Returns
    -------
    W_new : ndarray, shape of ``W``
    """
    return W - lr * dW


def momentum_update(W, v, dW, lr, momentum):
    """SGD with (heavy-ball) momentum; new arrays, the inputs are untouched.

    The velocity keeps a decaying sum of past steps, ``v = momentum * v - lr * dW``,
    and the parameter moves by it, ``W = W + v``.

    Parameters
    ----------
    W, v, dW : ndarray, same shape
        The parameter, its velocity and its gradient.
    lr : float
    momentum : float
        In [0, 1); 0 is plain SGD.

    Returns
    -------
    W_new, v_new : ndarray, shape of ``W``
    """
    v_new = momentum * v - lr * dW          # decay the velocity, add this step
    return W + v_new, v_new                 # move by the velocity


def nesterov_update(W, v, dW, lr, momentum):
    """SGD with Nesterov's momentum; new arrays, the inputs are untouched.

    The velocity is updated as in :func:`momentum_update`; the parameter then
    moves by the velocity's next value had the gradient stayed the same,
    ``W = W + momentum * v_new - lr * dW`` (the look-ahead form of Sutskever
    et al., 2013, also used by scikit-learn and Keras). Parameters and return
    values are those of :func:`momentum_update`.
    """
    v_new = momentum * v - lr * dW                  # the same velocity as momentum_update
    return W + (momentum * v_new - lr * dW), v_new  # look one step ahead along it


#: The update rules by name (the names of ``fastmlp._options.MOMENTUM_RULES``).
UPDATES = {"sgd": sgd_update, "momentum": momentum_update, "nesterov": nesterov_update}


def adam_lr(lr, t, beta_1=0.9, beta_2=0.999):
    """Adam's bias-corrected rate for step ``t >= 1``: ``lr sqrt(1 - beta_2^t) / (1 - beta_1^t)``.

    Parameters
    ----------
    lr : float
    t : int
        The step's number, counting this step (scikit-learn's ``AdamOptimizer.t``).
    beta_1, beta_2 : float
        The moments' decay rates, in [0, 1).

    Returns
    -------
    lr_t : float
    """
    return lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)


def adam_update(W, m, v, dW, lr, t, beta_1=0.9, beta_2=0.999, epsilon=1e-8, alpha=0.0):
    """One Adam step (Kingma and Ba, 2015, as scikit-learn's ``AdamOptimizer``); new arrays,
    the inputs are untouched.

    Parameters
    ----------
    W, m, v, dW : ndarray, same shape
        The parameter, its first and second moments, and the gradient of the loss.
    lr : float
    t : int
        The step's number, counting this step (1 for the first).
    beta_1, beta_2, epsilon : float
    alpha : float
        The L2 penalty (:func:`l2_gradient`); pass 0 for a bias.

    Returns
    -------
    W_new, m_new, v_new : ndarray, shape of ``W``
    """
    g = l2_gradient(dW, W, alpha)
    m_new = beta_1 * m + (1 - beta_1) * g               # decaying mean of the gradients
    v_new = beta_2 * v + (1 - beta_2) * g ** 2          # decaying mean of their squares
    lr_t = adam_lr(lr, t, beta_1, beta_2)               # both means' bias, corrected in the rate
    return W - lr_t * m_new / (np.sqrt(v_new) + epsilon), m_new, v_new


def parameter_update(W, dW, lr, v=None, alpha=0.0, momentum=0.0, nesterov=False):
    """The update the C training step applies to one parameter.

    First the L2 penalty joins the gradient (:func:`l2_gradient`), then the
    rule that ``momentum`` and ``nesterov`` select moves the parameter:
    :func:`sgd_update` when ``momentum`` is 0, else :func:`nesterov_update`
    or :func:`momentum_update`.

    Parameters
    ----------
    W, dW : ndarray, same shape
        The parameter and the gradient of the loss.
    lr : float
    v : ndarray, shape of ``W``, optional
        The velocity; needed when ``momentum > 0``.
    alpha : float
        The L2 penalty; pass 0 for a bias.
    momentum : float
    nesterov : bool

    Returns
    -------
    W_new : ndarray, shape of ``W``
    v_new : ndarray or None
        The new velocity, or ``v`` unchanged without momentum.
    """
    g = l2_gradient(dW, W, alpha)
    if momentum == 0:
        return UPDATES["sgd"](W, g, lr), v
    rule = UPDATES["nesterov" if nesterov else "momentum"]
    return rule(W, v, g, lr, momentum)


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

def loss_and_grads(weights, biases, X, labels, loss="mse", activation="relu", dropout=None):
    """Loss of one batch and its gradients w.r.t. all parameters.

    Parameters
    ----------
    weights, biases : lists of L ndarrays
        See :func:`init_params`.
    X : ndarray, shape (M, n_0)
    labels : array of int, shape (M,)
    loss : {"mse", "cross_entropy"}
    activation : str
        The hidden layers' activation, a name in :data:`ACTIVATIONS`.
    dropout : list of L - 1 ndarrays, optional
        The step's dropout factors (:func:`step_dropout`).

    Returns
    -------
    loss : float
    dWs : list of L ndarrays, shapes like ``weights``
    dbs : list of L ndarrays, shapes like ``biases``
    """
    loss_fn, grad_fn = _loss_functions(loss)
    activations = forward(weights, biases, X, activation, dropout)
    out = activations[-1]
    dWs, dbs = backward(weights, activations, grad_fn(out, labels), activation,
                        preactivations(weights, biases, activations), dropout)
    return loss_fn(out, labels), dWs, dbs


def train_step(weights, biases, X, labels, lr, loss="mse", activation="relu"):
    """One SGD step on one batch.

    Parameters
    ----------
    weights, biases : lists of L ndarrays
        Not modified.
    X : ndarray, shape (M, n_0)
    labels : array of int, shape (M,)
    lr : float
    loss : {"mse", "cross_entropy"}
    activation : str
        The hidden layers' activation, a name in :data:`ACTIVATIONS`.

    Returns
    -------
    new_weights, new_biases : lists of L ndarrays
    loss : float
        The batch loss of the forward pass *before* the update.
    """
    value, dWs, dbs = loss_and_grads(weights, biases, X, labels, loss, activation)
    new_weights = [sgd_update(W, dW, lr) for W, dW in zip(weights, dWs)]
    new_biases = [sgd_update(b, db, lr) for b, db in zip(biases, dbs)]
    return new_weights, new_biases, value


def predict(weights, biases, X, activation="relu"):
    """Predicted class of each sample: the argmax of the network output.

    Parameters
    ----------
    weights, biases : lists of L ndarrays
    X : ndarray, shape (M, n_0)
    activation : str
        The hidden layers' activation, a name in :data:`ACTIVATIONS`.

    Returns
    -------
    classes : ndarray of int, shape (M,)
    """
    return np.argmax(forward(weights, biases, X, activation)[-1], axis=1)


def fit(X, labels, layer_sizes, lr=0.001, batch_size=200, epochs=1, rng=None, loss="mse",
        activation="relu"):
    """Train an MLP with plain mini-batch SGD.

    Batches are taken in dataset order (no shuffling): samples
    ``[0, batch_size)``, ``[batch_size, 2 * batch_size)``, ... The last,
    partial batch is included and its loss is divided by its own size.

    Parameters
    ----------
    X : ndarray, shape (n_samples, layer_sizes[0])
        A floating X sets the dtype of the computation (the float32
        initial weights are cast to it); any other X is cast to float32.
    labels : array of int, shape (n_samples,)
    layer_sizes : sequence of int
        E.g. ``[784, 512, 256, 10]``.
    lr : float
    batch_size : int
    epochs : int
    rng : numpy.random.Generator, int or None
        Passed to ``numpy.random.default_rng`` for :func:`init_params`.
    loss : {"mse", "cross_entropy"}
    activation : str
        The hidden layers' activation, a name in :data:`ACTIVATIONS`.

    Returns
    -------
    weights, biases : lists of L ndarrays
    loss_curve : list of float, length ``epochs``
        Mean training loss of each epoch: the batch losses (taken before
        each update) averaged with weights equal to the batch sizes.
    """
    _loss_functions(loss)  # fail early on an unknown loss or activation name
    _activation_functions(activation)
    X = np.asarray(X)
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float32)
    labels = np.asarray(labels)
    weights, biases = init_params(layer_sizes, np.random.default_rng(rng))
    weights = [W.astype(X.dtype) for W in weights]
    biases = [b.astype(X.dtype) for b in biases]

    n_samples = X.shape[0]
    loss_curve = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, n_samples, batch_size):
            stop = min(start + batch_size, n_samples)
            weights, biases, batch_loss = train_step(
                weights, biases, X[start:stop], labels[start:stop], lr, loss, activation)
            total += batch_loss * (stop - start)
        loss_curve.append(total / n_samples)
    return weights, biases, loss_curve


# --------------------------------------------------------------------------
# Cost model
# --------------------------------------------------------------------------

def flops_per_step(layer_sizes, batch):
    """Floating-point operations of one training step (multiply-adds count 2).

    Per layer ``K -> N`` with batch ``M``: the forward product costs
    ``2 M K N``, the weight gradient ``2 M K N``, and the input gradient
    ``2 M K N`` for every layer except the first (nobody needs dL/dX).
    Bias adds, activations, the loss and the update are ignored (O(M N)).

    For ``[784, 512, 256, 10]`` and ``batch=200``: 214.0 + 214.0 + 53.5 =
    481.5 MFLOP.

    Parameters
    ----------
    layer_sizes : sequence of int
    batch : int

    Returns
    -------
    flops : int
    """
    total = 0
    for l, (K, N) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:])):
        per_product = 2 * batch * K * N
        total += per_product  # forward
        total += per_product  # weight gradient
        if l > 0:
            total += per_product  # input gradient
    return total


# --------------------------------------------------------------------------
# Float targets with sample weights: scikit-learn's losses
# (sklearn/neural_network/_base.py and _multilayer_perceptron.py ``_backprop``).
# Each loss applies its output activation p = act(out) to the linear output,
# and its output gradient is the same simple form for all four, p - y.
# Used by the tests; the C step computes them in double from the logits.
# --------------------------------------------------------------------------

def logistic(Z):
    """``1 / (1 + exp(-Z))``, without overflow for large ``|Z|``."""
    E = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1 / (1 + E), E / (1 + E))


def _xlogy(x, y):
    """``x * log(y)``, 0 where ``x == 0`` (scipy.special.xlogy)."""
    safe = np.where(x == 0, 1, y)
    return np.where(x == 0, 0, x * np.log(safe))


def _clip(P):
    """scikit-learn's ``np.clip(p, eps, 1 - eps)`` before its logs, eps of float64."""
    eps = np.finfo(np.float64).eps
    return np.clip(P, eps, 1 - eps)


def squared_error_rows(P, Y):
    """Each row's ``0.5 * mean_j (y - p)**2``."""
    return 0.5 * np.mean((Y - P) ** 2, axis=1)


def log_loss_rows(P, Y):
    """Each row's ``-sum_j y log clip(p)``."""
    return -np.sum(_xlogy(Y, _clip(P)), axis=1)


def binary_log_loss_rows(P, Y):
    """Each row's ``-sum_j [y log clip(p) + (1 - y) log clip(1 - p)]``."""
    P = _clip(P)
    return -np.sum(_xlogy(Y, P) + _xlogy(1 - Y, 1 - P), axis=1)


def poisson_rows(P, Y):
    """Each row's ``sum_j [xlogy(y, y / p) - y + p]`` (half the Poisson deviance)."""
    return np.sum(_xlogy(Y, Y / P) - Y + P, axis=1)


#: The output activation of each float-target loss: ``p = OUTPUT_ACTIVATIONS[loss](out)``.
OUTPUT_ACTIVATIONS = {"squared_error": identity, "log_loss": softmax,
                      "binary_log_loss": logistic, "poisson": np.exp}
#: Each float-target loss's per-row loss ``l_i`` of ``(p, y)``.
TARGET_LOSSES = {"squared_error": squared_error_rows, "log_loss": log_loss_rows,
                 "binary_log_loss": binary_log_loss_rows, "poisson": poisson_rows}


def _weights(sample_weight, M, dtype):
    return np.ones(M, dtype) if sample_weight is None else np.asarray(sample_weight, dtype)


def target_loss(out, Y, loss, sample_weight=None):
    """``S = sum_i w_i l_i`` for the linear output ``out`` (M, N) and targets ``Y`` (M, N),
    ``w_i = 1`` without weights; scikit-learn's loss is ``S / sum_i w_i``."""
    P = OUTPUT_ACTIVATIONS[loss](out)
    return float(np.sum(_weights(sample_weight, out.shape[0], out.dtype)
                        * TARGET_LOSSES[loss](P, Y)))


def target_output_grad(out, Y, loss, sample_weight=None, weight_sum=None):
    """scikit-learn's output delta ``(p - y) * w_i / weight_sum`` (weight_sum: the sum of
    the weights, or M, when None). For log_loss, binary_log_loss and poisson it is the
    gradient of ``S / weight_sum`` w.r.t. ``out``; for squared_error ``n_out`` times it (the
    loss takes the mean over the outputs, the delta does not)."""
    w = _weights(sample_weight, out.shape[0], out.dtype)
    if weight_sum is None:
        weight_sum = w.sum()
    return (OUTPUT_ACTIVATIONS[loss](out) - Y) * w[:, None] / weight_sum


def target_loss_and_grads(weights, biases, X, Y, loss, sample_weight=None, weight_sum=None,
                          activation="relu", dropout=None):
    """``S`` and the gradients ``dWs, dbs`` that the output delta
    :func:`target_output_grad` gives through :func:`backward`: scikit-learn's
    ``_backprop`` with ``alpha = 0``, its loss times its weight sum."""
    activations = forward(weights, biases, X, activation, dropout)
    out = activations[-1]
    dOut = target_output_grad(out, Y, loss, sample_weight, weight_sum)
    dWs, dbs = backward(weights, activations, dOut, activation,
                        preactivations(weights, biases, activations), dropout)
    return target_loss(out, Y, loss, sample_weight), dWs, dbs


# ---- bf16 products (precision="bf16"; src_c/ops/bf16.h) ----

def bf16_round(x):
    """float32 values rounded to bfloat16, as float32: to nearest, ties to even; zeros and
    subnormals become a zero of their sign; a NaN stays a (quiet) NaN; values past the largest
    bf16 become infinities. What fastmlp's packing does to each operand of a bf16 product."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    rounded = np.where((u & 0x7F800000) == 0, u & 0x80000000, rounded)
    rounded = np.where((u & 0x7FFFFFFF) > 0x7F800000, (u | 0x00400000) & 0xFFFF0000, rounded)
    return rounded.astype(np.uint32).view(np.float32).reshape(np.shape(x))


def _flush_subnormal(x):
    """float32 x with the values below the smallest normal float in magnitude made zeros of
    their sign."""
    tiny = np.abs(x) < np.finfo(np.float32).tiny
    return np.where(tiny, np.copysign(np.float32(0.0), x), x).astype(np.float32)


ZERO_RUNS_MAX = 48     # runs kept by nonzero_runs; later columns join the last run
ZERO_RUNS_MIN_GAP = 4  # shorter gaps of zero columns are kept inside a run


def nonzero_runs(X):
    """The runs of X's columns that a network's first layer computes (src_c/frame/zero_runs.h):
    a list of ``(start, end)``, ascending, covering every column with a nonzero (-0.0 counts
    as zero). A gap of fewer than ``ZERO_RUNS_MIN_GAP`` zero columns joins the runs on either
    side, and past ``ZERO_RUNS_MAX`` runs the later columns join the last one. ``None`` when
    the runs would leave out fewer than a sixteenth of the columns (or none): then every
    column is computed."""
    X = np.asarray(X, dtype=np.float32)
    M, K = X.shape
    if M == 0:
        return None if K == 0 else []
    nonzero = (X != 0).any(axis=0)
    runs = []
    k = 0
    while k < K:
        if not nonzero[k]:
            k += 1
            continue
        start = k
        while k < K and nonzero[k]:
            k += 1
        if runs and (start - runs[-1][1] < ZERO_RUNS_MIN_GAP or len(runs) == ZERO_RUNS_MAX):
            runs[-1] = (runs[-1][0], k)
        else:
            runs.append((start, k))
    skipped = K - sum(end - start for start, end in runs)
    return runs if skipped >= K // 16 and skipped > 0 else None


PAIR_GROUP_ROWS = 6    # rows of A that share the pairs they leave out (gemm_bf16's runs)


def gemm_bf16(A, B, runs=None):
    """The bits of ``A @ B`` with precision="bf16": both operands rounded by ``bf16_round``;
    then, for each pair of steps (2q, 2q + 1) of K (an odd K's last pair padded with zeros),
    ``acc = flush(acc + A[:, 2q+1] B[2q+1]); acc = flush(acc + A[:, 2q] B[2q])``, each sum
    rounded once to float32 (x86's VDPBF16PS: a product of bf16 is exact, and a float64 sum of
    it and a float32 rounds to float32 as one rounding would) and each result below the
    smallest normal float flushed to a zero of its sign.

    ``runs``: as ``nonzero_runs(A)`` gives them (a network's first layer takes those of its
    batch), the pairs with neither step in a run are left out; and A's rows fall in groups of
    ``PAIR_GROUP_ROWS`` from row 0 (the last group the rows left over), each of which also
    leaves out the pairs that are zero (both steps, once rounded) in every one of its rows.
    That differs from adding their zeros only where a partial sum is a flushed negative zero,
    which a zero pair would make positive."""
    A = bf16_round(np.asarray(A, dtype=np.float32)).astype(np.float64)
    B = bf16_round(np.asarray(B, dtype=np.float32)).astype(np.float64)
    M, K = A.shape
    N = B.shape[1]
    pairs = (K + 1) // 2
    keep = np.ones((M, pairs), dtype=bool)
    if runs is not None:
        in_run = np.zeros(2 * pairs, dtype=bool)
        for start, end in runs:
            in_run[start:end] = True
        keep[:] = in_run[0::2] | in_run[1::2]
        nonzero = np.zeros((M, 2 * pairs), dtype=bool)
        nonzero[:, :K] = A != 0
        pair_nonzero = nonzero[:, 0::2] | nonzero[:, 1::2]
        for r0 in range(0, M, PAIR_GROUP_ROWS):
            keep[r0:r0 + PAIR_GROUP_ROWS] &= pair_nonzero[r0:r0 + PAIR_GROUP_ROWS].any(axis=0)
    acc = np.zeros((M, N), dtype=np.float32)
    with np.errstate(all="ignore"):
        for q in np.flatnonzero(keep.any(axis=0)):
            rows = keep[:, q:q + 1]
            for k in (2 * q + 1, 2 * q):
                product = np.outer(A[:, k], B[k]) if k < K else np.zeros((M, N))
                summed = _flush_subnormal((acc.astype(np.float64) + product).astype(np.float32))
                acc = np.where(rows, summed, acc)
    return acc
