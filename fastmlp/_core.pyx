# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled kernels of fastmlp: validation here, arithmetic in C (src_c/) without the GIL.

Every function checks the shapes of the buffers it is given and raises ``ValueError`` before
any C runs; typed memoryviews reject a wrong dtype or a non-contiguous buffer. The C code
checks again each label and row number it indexes with, as it reads it, so a buffer changed by
another thread after these checks cannot make it read or write out of bounds.
"""
import numbers
import threading

import numpy as np
cimport numpy as cnp
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.float cimport FLT_MAX
from libc.math cimport isfinite, sqrt
from libc.string cimport memset
from libc.stdint cimport int32_t, int64_t, uint32_t
from cpython.pyport cimport PY_SSIZE_T_MAX

cnp.import_array()

# The losses by name: on integer labels (train_step, train_step_rows, loss_grad) and
# scikit-learn's on float targets with sample weights (train_step_targets, gradient).
LABEL_LOSSES = ("mse", "cross_entropy")
TARGET_LOSSES = ("squared_error", "log_loss", "binary_log_loss", "poisson")
LOSSES = {"mse": FM_LOSS_MSE, "cross_entropy": FM_LOSS_CROSS_ENTROPY,
          "squared_error": FM_LOSS_SQUARED_ERROR, "log_loss": FM_LOSS_LOG,
          "binary_log_loss": FM_LOSS_BINARY_LOG, "poisson": FM_LOSS_POISSON}
_LABEL_KINDS = {name: LOSSES[name] for name in LABEL_LOSSES}
_TARGET_KINDS = {name: LOSSES[name] for name in TARGET_LOSSES}
# The hidden layers' activations, by the names the C library gives them (ops/activation.h).
ACTIVATIONS = {fm_activation_names[i].decode(): i for i in range(FM_ACT_COUNT)}

# Rows of forward()'s scratch that a Network keeps (the call's cost matters for few rows; many
# rows repay their own allocation, and a full-batch network should not hold a copy of its
# activations twice).
cdef Py_ssize_t OWN_SCRATCH_ROWS = 512


class NonFiniteInput(ValueError):
    """The input of ``Network.forward(X, check_finite=True)`` holds a NaN or an infinity."""


cdef _expect(bint ok, str message):
    if not ok:
        raise ValueError(message)


cdef _check_status(int status):
    if status == 0:
        return
    if status == FM_ERR_INDEX:
        raise ValueError("a label or row number is out of range (was its buffer changed while "
                         "the step ran?); the weights are unchanged")
    if status == FM_ERR_NOT_FINITE:
        raise FloatingPointError("the update made a weight or bias NaN or infinite")
    raise MemoryError("fastmlp: could not allocate a working buffer")


cdef int _activation_code(activation) except -2:
    """The C code of a hidden activation's name (``ACTIVATIONS``); ValueError for another."""
    code = ACTIVATIONS.get(activation) if isinstance(activation, str) else None
    if code is None:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return code


cdef _check_labels(const int32_t[::1] labels, Py_ssize_t n_classes):
    cdef Py_ssize_t i
    for i in range(labels.shape[0]):
        if labels[i] < 0 or labels[i] >= n_classes:
            raise ValueError(f"label {labels[i]} at position {i} is outside [0, {n_classes})")


def set_num_threads(int n):
    """Set the number of threads of every kernel, at most (a product or a pass too small to
    repay them uses fewer); ``n <= 0`` restores the default (``OMP_NUM_THREADS`` or the number
    of cores)."""
    fm_set_num_threads(n)


def get_num_threads():
    """The number of threads the kernels will use."""
    return fm_get_num_threads()


def have_openmp():
    """Whether the extension was compiled with OpenMP."""
    return bool(fm_have_openmp())


# The micro-kernels are chosen here, at import: the best the CPU has, or FASTMLP_ISA's choice.
fm_dispatch_init()
# Every kernel set this build has (src_c/kernels/registry.c), slowest first.
ISAS = tuple(fm_isa_known().decode().split())


def build_info():
    """How this extension was built and what it runs on.

    Returns
    -------
    dict with keys
        ``isa``: the instruction set of the kernels in use ("generic", "avx2" or "avx512");
        ``isa_available``: the sets this CPU supports, best last (of ``ISAS``, every set the
        build has);
        ``isa_note``: why FASTMLP_ISA was not honoured, or "";
        ``openmp``: whether OpenMP was compiled in; ``n_threads``: threads the kernels use;
        ``compiler``: the C compiler;
        ``bf16``: what runs the products of ``precision="bf16"``, e.g.
        "avx512_bf16 (VDPBF16PS)" or "avx2 (emulated)"; ``bf16_native``: whether that is
        the CPU's own bf16 instructions (else their exact emulation, the same bits, slower).
    """
    return {
        "isa": fm_isa_name().decode(),
        "isa_available": fm_isa_available().decode().split(),
        "isa_note": fm_isa_note().decode(),
        "openmp": bool(fm_have_openmp()),
        "n_threads": fm_get_num_threads(),
        "compiler": fm_compiler().decode(),
        "bf16": fm_bf16_name().decode(),
        "bf16_native": bool(fm_bf16_native()),
    }


def set_bf16_emulated(bint emulated):
    """Run ``precision="bf16"``'s products on the exact emulation of the CPU's bf16
    instructions even where it has them (``FASTMLP_BF16=emulate`` does the same at start-up):
    the same bits, slower; for tests and bug reports."""
    fm_bf16_set_emulated(emulated)


PRECISIONS = ("fp32", "bf16")


cdef int _precision_code(precision) except -1:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return 1 if precision == "bf16" else 0


def set_isa(str name):
    """Use the kernels of instruction set ``name`` ("generic", "avx2", "avx512", or "auto" for
    the best available). Every set gives bit-identical results; this is for tests and bug
    reports. Raises ValueError for an unknown name or one this CPU lacks."""
    cdef bytes raw = name.encode()
    cdef int status = fm_isa_set(raw)
    if status == 1:
        raise ValueError(f"unknown instruction set {name!r}: expected generic, avx2, avx512 or auto")
    if status == 2:
        raise ValueError(f"this CPU does not support {name!r} "
                         f"(available: {fm_isa_available().decode()})")


def peak_gflops(n_threads=None, double seconds=0.2, precision="fp32"):
    """Measured FMA throughput in GFLOP/s of ``n_threads`` threads (default: the kernels'
    thread count) running for about ``seconds``, with the current instruction set: the
    yardstick for "% of peak". ``precision="bf16"``: the throughput of bf16 products
    (VDPBF16PS, or its emulation where the CPU lacks it; ``build_info()["bf16"]``)."""
    cdef int n = 0 if n_threads is None else int(n_threads)
    cdef int bf16 = _precision_code(precision)
    _expect(n_threads is None or n >= 1, f"n_threads must be >= 1, got {n_threads}")
    _expect(seconds > 0 and seconds <= 60, f"seconds must be in (0, 60], got {seconds}")
    cdef double value
    with nogil:
        value = fm_peak_gflops_bf16(n, seconds) if bf16 else fm_peak_gflops(n, seconds)
    return value


def gemm(const float[:, ::1] A, const float[:, ::1] B, float[:, ::1] C,
         bint trans_a=False, bint trans_b=False, precision="fp32",
         bint nonzero_runs=False):
    """C = op(A) @ op(B), overwriting C; op transposes when ``trans_*`` is true.

    Parameters
    ----------
    A : float32 array, shape (M, K), or (K, M) when trans_a
    B : float32 array, shape (K, N), or (N, K) when trans_b
    C : float32 array, shape (M, N), written in place
    precision : "fp32" or "bf16"
        "bf16": A and B rounded to bfloat16 (to nearest even, subnormals to zero), each
        pair of steps of K summed into a float as x86's VDPBF16PS sums it (``reference.
        gemm_bf16`` computes the same bits in NumPy).
    nonzero_runs : bool
        Compute only the runs of A's columns that hold a nonzero, as a network's first layer
        does (``reference.nonzero_runs``; A not transposed). The same bits in "fp32"; in
        "bf16" the pairs of steps outside the runs are left out, and in each group of 6 rows
        of A the pairs zero in all of them
        (``reference.gemm_bf16(A, B, runs=reference.nonzero_runs(A))``).
    """
    cdef int bf16 = _precision_code(precision)
    cdef Py_ssize_t M = A.shape[1] if trans_a else A.shape[0]
    cdef Py_ssize_t K = A.shape[0] if trans_a else A.shape[1]
    cdef Py_ssize_t KB = B.shape[1] if trans_b else B.shape[0]
    cdef Py_ssize_t N = B.shape[0] if trans_b else B.shape[1]
    _expect(K == KB, f"gemm: inner dimensions differ ({K} and {KB})")
    _expect(C.shape[0] == M and C.shape[1] == N,
            f"gemm: C has shape ({C.shape[0]}, {C.shape[1]}), expected ({M}, {N})")
    cdef Py_ssize_t rsa = 1 if trans_a else A.shape[1]
    cdef Py_ssize_t csa = A.shape[1] if trans_a else 1
    cdef Py_ssize_t rsb = 1 if trans_b else B.shape[1]
    cdef Py_ssize_t csb = B.shape[1] if trans_b else 1
    cdef fm_epilogue epi
    memset(&epi, 0, sizeof(epi))   # the fields the binding does not declare: none
    epi.kind = FM_EPI_STORE
    cdef int status
    if M == 0 or N == 0:
        return
    with nogil:
        if nonzero_runs:
            status = fm_gemm_nonzero_runs(M, N, K, &A[0, 0] if K else NULL, rsa, csa,
                                          &B[0, 0] if K else NULL, rsb, csb, &C[0, 0], N, &epi,
                                          bf16)
        elif bf16:
            status = fm_gemm_bf16(M, N, K, &A[0, 0] if K else NULL, rsa, csa,
                                  &B[0, 0] if K else NULL, rsb, csb, &C[0, 0], N, &epi)
        else:
            status = fm_gemm(M, N, K, &A[0, 0] if K else NULL, rsa, csa,
                             &B[0, 0] if K else NULL, rsb, csb, &C[0, 0], N, &epi)
    _check_status(status)


def dense_forward(const float[:, ::1] X, const float[:, ::1] W, const float[::1] b,
                  float[:, ::1] out, activation):
    """out = f(X @ W + b): ``activation`` names f (``ACTIVATIONS``); True means ``"relu"``,
    False or None no activation.

    Shapes: X (M, K), W (K, N), b (N,), out (M, N); all float32, C-contiguous.
    """
    cdef int act = FM_ACT_NONE
    if activation is True:
        act = _activation_code("relu")
    elif activation is not None and activation is not False:
        act = _activation_code(activation)
    cdef Py_ssize_t M = X.shape[0], K = X.shape[1], N = W.shape[1]
    _expect(W.shape[0] == K, f"dense_forward: W has {W.shape[0]} rows, X has {K} columns")
    _expect(b.shape[0] == N, f"dense_forward: b has length {b.shape[0]}, expected {N}")
    _expect(out.shape[0] == M and out.shape[1] == N,
            f"dense_forward: out has shape ({out.shape[0]}, {out.shape[1]}), expected ({M}, {N})")
    _expect(K > 0, "dense_forward: X has no columns")
    if M == 0 or N == 0:
        return
    cdef int status
    with nogil:
        status = fm_dense_forward(&out[0, 0], &X[0, 0], &W[0, 0], &b[0], M, K, N, act)
    _check_status(status)


def dense_backward_input(const float[:, ::1] dZ, const float[:, ::1] W, A_prev,
                         float[:, ::1] dA_prev, str activation="relu"):
    """dA_prev = (dZ @ W.T) * f'(Z), f' the derivative of ``activation`` taken from its output
    ``A_prev`` (ReLU: ``A_prev > 0``; tanh: ``1 - A_prev**2``), or, for an activation whose
    output does not determine its derivative (gelu), from its pre-activation, which
    ``A_prev`` then holds; no factor when ``A_prev`` is None.

    Shapes: dZ (M, N), W (K, N), A_prev (M, K) or None, dA_prev (M, K).
    """
    cdef int act = _activation_code(activation)
    cdef Py_ssize_t M = dZ.shape[0], N = dZ.shape[1], K = W.shape[0]
    cdef const float[:, ::1] mask
    cdef const float *mask_ptr = NULL
    _expect(W.shape[1] == N, f"dense_backward_input: W has {W.shape[1]} columns, dZ has {N}")
    _expect(dA_prev.shape[0] == M and dA_prev.shape[1] == K,
            f"dense_backward_input: dA_prev has shape ({dA_prev.shape[0]}, {dA_prev.shape[1]}),"
            f" expected ({M}, {K})")
    _expect(N > 0, "dense_backward_input: dZ has no columns")
    if A_prev is not None:
        mask = A_prev
        _expect(mask.shape[0] == M and mask.shape[1] == K,
                f"dense_backward_input: A_prev has shape ({mask.shape[0]}, {mask.shape[1]}),"
                f" expected ({M}, {K})")
        if M and K:
            mask_ptr = &mask[0, 0]
    if M == 0 or K == 0:
        return
    cdef int status
    with nogil:
        status = fm_dense_backward_input(&dA_prev[0, 0], &dZ[0, 0], &W[0, 0], mask_ptr, act,
                                         M, K, N)
    _check_status(status)


cdef fm_optimizer _optimizer(double lr, double alpha, double momentum, bint nesterov) except *:
    # Plain ifs, not _expect: its message would be formatted on every training step. The C
    # side computes in float32: a value outside its finite range would become infinite there.
    if not (isfinite(lr) and lr <= FLT_MAX and <float>lr > 0):
        raise ValueError(f"learning rate must be a positive number in float32's range, got {lr}")
    if not (isfinite(alpha) and 0 <= alpha <= FLT_MAX):
        raise ValueError(f"alpha must be a number >= 0 in float32's range, got {alpha}")
    if not (isfinite(momentum) and 0 <= momentum < 1):
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    cdef fm_optimizer opt
    opt.lr = <float>lr
    opt.alpha = <float>alpha
    opt.momentum = <float>momentum
    opt.nesterov = nesterov
    opt.rule = FM_OPT_SGD
    opt.beta_1 = opt.beta_2 = opt.epsilon = opt.lr_t = 0.0
    return opt


cdef fm_optimizer _adam_optimizer(double lr, double alpha, adam) except *:
    """Adam's step number t (>= 1, this step's) with (beta_1, beta_2, epsilon) from the tuple
    adam; its rate lr_t = lr sqrt(1 - beta_2^t) / (1 - beta_1^t) in double, as scikit-learn's
    AdamOptimizer computes it."""
    cdef fm_optimizer opt = _optimizer(lr, alpha, 0.0, False)
    if not (isinstance(adam, tuple) and len(adam) == 4):
        raise ValueError(f"adam must be a tuple (beta_1, beta_2, epsilon, t), got {adam!r}")
    cdef double beta_1 = adam[0], beta_2 = adam[1], epsilon = adam[2]
    t = adam[3]
    if not (isfinite(beta_1) and 0 <= beta_1 < 1 and isfinite(beta_2) and 0 <= beta_2 < 1):
        raise ValueError(f"beta_1 and beta_2 must be in [0, 1), got {beta_1}, {beta_2}")
    if not (isfinite(epsilon) and epsilon <= FLT_MAX and <float>epsilon > 0):
        raise ValueError(f"epsilon must be a positive number in float32's range, got {epsilon}")
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1:
        raise ValueError(f"Adam's step number t must be an integer >= 1, got {t!r}")
    # beta ** t underflows to 0 for a large t: the rate is then lr itself.
    cdef double lr_t = lr * sqrt(1.0 - beta_2 ** float(t)) / (1.0 - beta_1 ** float(t))
    if not (isfinite(lr_t) and lr_t <= FLT_MAX and <float>lr_t > 0):
        raise ValueError(f"Adam's step rate {lr_t} is not a positive float32")
    opt.rule = FM_OPT_ADAM
    opt.beta_1 = <float>beta_1
    opt.beta_2 = <float>beta_2
    opt.epsilon = <float>epsilon
    opt.lr_t = <float>lr_t
    return opt


def dense_update(float[:, ::1] W, float[::1] b, const float[:, ::1] A_prev,
                 const float[:, ::1] dZ, double lr, double alpha=0.0, double momentum=0.0,
                 bint nesterov=False, vW=None, vb=None):
    """In-place optimiser step of one layer: the gradient of W is A_prev.T @ dZ, of b the
    column sums of dZ (src_c/ops/optimizer.h has the exact update). Raises FloatingPointError
    when the update made a weight or bias NaN or infinite.

    Shapes: W (K, N), b (N,), A_prev (M, K), dZ (M, N); velocities vW (K, N) and vb (N,)
    when momentum is used, else None.
    """
    cdef Py_ssize_t M = A_prev.shape[0], K = A_prev.shape[1], N = dZ.shape[1]
    _expect(dZ.shape[0] == M, f"dense_update: dZ has {dZ.shape[0]} rows, A_prev has {M}")
    _expect(W.shape[0] == K and W.shape[1] == N,
            f"dense_update: W has shape ({W.shape[0]}, {W.shape[1]}), expected ({K}, {N})")
    _expect(b.shape[0] == N, f"dense_update: b has length {b.shape[0]}, expected {N}")
    _expect((vW is None) == (vb is None), "dense_update: give both velocities or neither")
    _expect(momentum == 0 or vW is not None, "dense_update: momentum needs velocities vW, vb")
    cdef fm_optimizer opt = _optimizer(lr, alpha, momentum, nesterov)
    cdef float[:, ::1] vW_view
    cdef float[::1] vb_view
    cdef float *vW_ptr = NULL
    cdef float *vb_ptr = NULL
    if vW is not None:
        vW_view = vW
        vb_view = vb
        _expect(vW_view.shape[0] == K and vW_view.shape[1] == N and vb_view.shape[0] == N,
                "dense_update: velocities must have the shapes of W and b")
        if K and N:
            vW_ptr = &vW_view[0, 0]
            vb_ptr = &vb_view[0]
    _expect(M > 0 and K > 0 and N > 0, "dense_update: empty operands")
    cdef int status
    with nogil:
        status = fm_dense_update(&W[0, 0], &b[0], vW_ptr, vb_ptr, &A_prev[0, 0], &dZ[0, 0],
                                 M, K, N, &opt)
    _check_status(status)


def loss_grad(const float[:, ::1] out, const int32_t[::1] labels, float[:, ::1] dout,
              str loss="mse"):
    """Loss of ``out`` against integer ``labels`` and its gradient, written to ``dout``.

    Shapes: out (M, N), labels (M,) in [0, N), dout (M, N). Returns the loss (a float):
    ``mse`` is sum((out - onehot)**2) / M; ``cross_entropy`` is mean(-log softmax(out)[label]).
    """
    cdef Py_ssize_t M = out.shape[0], N = out.shape[1]
    _expect(loss in _LABEL_KINDS, f"loss must be one of {sorted(_LABEL_KINDS)}, got {loss!r}")
    _expect(labels.shape[0] == M, f"loss_grad: {labels.shape[0]} labels for {M} rows")
    _expect(dout.shape[0] == M and dout.shape[1] == N,
            f"loss_grad: dout has shape ({dout.shape[0]}, {dout.shape[1]}), expected ({M}, {N})")
    _expect(M > 0 and N > 0, "loss_grad: empty output")
    _check_labels(labels, N)
    cdef double value
    cdef int kind = LOSSES[loss]
    with nogil:
        if kind == FM_LOSS_CROSS_ENTROPY:
            value = fm_cross_entropy_loss_grad(&dout[0, 0], &out[0, 0], &labels[0], M, N)
        else:
            value = fm_mse_loss_grad(&dout[0, 0], &out[0, 0], &labels[0], M, N)
    return value


cdef int _targets(fm_targets *t, const float[:, ::1] Y, const float[::1] sw,
                  const int64_t[::1] rows, Py_ssize_t n, Py_ssize_t n_out, str loss,
                  double weight_sum) except -1:
    """Checks float targets Y (n, n_out), weights sw (n,) or None and rows (M,) or None (all
    n rows) for ``loss`` (``TARGET_LOSSES``) and fills t for them; the gradient's scale is
    1 / weight_sum, or 1 / the batch's sum of weights (its row count without) when
    weight_sum is 0. ValueError for a wrong shape, a row out of range, a target or weight not
    finite, a negative weight (or a negative Poisson target), or a sum not > 0."""
    kind = _TARGET_KINDS.get(loss)
    if kind is None:
        raise ValueError(f"loss must be one of {list(TARGET_LOSSES)} (integer labels: "
                         f"train_step), got {loss!r}")
    if Y.shape[0] != n or Y.shape[1] != n_out:
        raise ValueError(f"Y has shape ({Y.shape[0]}, {Y.shape[1]}), expected ({n}, {n_out})")
    if sw is not None and sw.shape[0] != n:
        raise ValueError(f"sample_weight has length {sw.shape[0]}, expected {n}")
    if not (isfinite(weight_sum) and weight_sum >= 0):
        raise ValueError(f"weight_sum must be finite and >= 0 (0: the batch's), got {weight_sum}")
    cdef Py_ssize_t M = n if rows is None else rows.shape[0], i, j, r
    cdef bint poisson = kind == FM_LOSS_POISSON
    cdef double total = 0.0
    cdef float w, y
    for i in range(M):
        r = i if rows is None else rows[i]
        if r < 0 or r >= n:
            raise ValueError(f"row index {r} at position {i} is outside [0, {n})")
        for j in range(n_out):
            y = Y[r, j]
            if not isfinite(y) or (poisson and y < 0):
                raise ValueError(f"target {y} at ({r}, {j}) is not "
                                 + ("a finite number >= 0 (poisson)" if poisson else "finite"))
        if sw is not None:
            w = sw[r]
            if not (isfinite(w) and w >= 0):
                raise ValueError(f"sample weight {w} of row {r} is not a finite number >= 0")
            total += w
    if weight_sum == 0:
        weight_sum = total if sw is not None else <double>M
    if not (weight_sum > 0 and isfinite(1.0 / weight_sum)):
        raise ValueError(f"the batch's weight sum is {weight_sum}: it must be > 0")
    t.kind = kind
    t.labels = NULL
    t.Y = &Y[0, 0]
    t.weights = &sw[0] if sw is not None else NULL
    t.scale = 1.0 / weight_sum
    return 0


def keeps_preactivation(activation, dropout=False):
    """Whether layers with this activation keep their pre-activation z beside their output
    (its derivative needs z), or, with ``dropout``, their output before the drop (its
    derivative needs more than the output's sign): one more buffer of the activations' size
    per such hidden layer."""
    cdef int act = _activation_code(activation)
    return fm_activation_keeps_z(act) != 0 or (
        bool(dropout) and fm_activation_sign_only(act) == 0)


cdef tuple _dropout_key(seed, step):
    """(seed, step) as the masks' key; ValueError for a seed outside [0, 2**64) or a negative
    step (taken mod 2**32)."""
    if (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
            or not 0 <= seed < 2 ** 64):
        raise ValueError(f"dropout_seed must be an integer in [0, 2**64), got {seed!r}")
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"dropout_step must be an integer >= 0, got {step!r}")
    return int(seed), int(step) % 2 ** 32


def _dropout_rates(dropout, Py_ssize_t n_hidden):
    """A Network's dropout as a tuple of one rate per hidden layer, each a float in [0, 1):
    from None, a rate for every layer, or a sequence of n_hidden rates. ValueError else."""
    if dropout is None:
        return (0.0,) * n_hidden
    if isinstance(dropout, numbers.Real) and not isinstance(dropout, bool):
        rates = [dropout] * n_hidden
    else:
        try:
            rates = list(dropout)
        except TypeError:
            raise ValueError(f"dropout must be a rate in [0, 1) or one per hidden layer, got "
                             f"{dropout!r}") from None
        if len(rates) != n_hidden:
            raise ValueError(f"dropout has {len(rates)} rates for {n_hidden} hidden layers")
    for r in rates:
        if (isinstance(r, bool) or not isinstance(r, numbers.Real)
                or not 0.0 <= float(r) < 1.0):
            raise ValueError(f"every dropout rate must be a number in [0, 1), got {r!r}")
    return tuple(float(r) for r in rates)


def dropout_masks(Py_ssize_t rows, Py_ssize_t columns, double rate, seed, step, int layer,
                  Py_ssize_t row0=0):
    """The factors a training step multiplies hidden layer ``layer``'s output by, for batch
    rows [row0, row0 + rows) and columns [0, columns): 0 for a dropped unit, ``1 / (1 - rate)``
    rounded to float32 for a kept one (ops/dropout.h: Philox4x32-10 keyed by the seed, its
    counter (column // 4, row, layer, step)). A float32 array (rows, columns)."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate!r}")
    _expect(rows >= 0 and columns >= 0 and row0 >= 0 and layer >= 0, "negative size")
    key_seed, key_step = _dropout_key(seed, step)
    out = np.zeros((rows, columns), np.float32)
    if rate == 0.0:
        out.fill(1.0)
        return out
    cdef float[:, ::1] view = out
    cdef fm_dropout d
    d.threshold = <uint32_t>(rate * 4294967296.0)
    d.scale = <float>(1.0 / (1.0 - rate))
    d.key[0] = <uint32_t>(key_seed & 0xffffffff)
    d.key[1] = <uint32_t>(key_seed >> 32)
    d.layer = <uint32_t>layer
    d.step = <uint32_t>key_step
    d.row0 = row0
    cdef Py_ssize_t i
    if columns > 0:
        with nogil:
            for i in range(rows):
                fm_dropout_factors(&d, i, 0, <int>columns, &view[i, 0])
    return out


def philox4x32(counter, key):
    """Philox4x32-10's four words of ``counter`` (4 integers) under ``key`` (2): the generator
    of the dropout masks, for tests against Random123's known answers."""
    cdef uint32_t c[4]
    cdef uint32_t k[2]
    cdef uint32_t out[4]
    cdef int i
    for i in range(4):
        c[i] = <uint32_t>counter[i]
    for i in range(2):
        k[i] = <uint32_t>key[i]
    fm_philox4x32(c, k, out)
    return tuple(int(out[i]) for i in range(4))


def all_finite(const float[:, ::1] X):
    """Whether no element of X (float32, C-contiguous) is NaN or infinite: one pass without the
    GIL and without a temporary array."""
    cdef int ok = 1
    if X.shape[0] > 0 and X.shape[1] > 0:
        with nogil:
            ok = fm_all_finite(&X[0, 0], X.shape[0] * X.shape[1])
    return ok != 0


def float32_from_float64(const double[:, ::1] X, float[:, ::1] out):
    """Writes X (float64, C-contiguous) into out (float32, C-contiguous, the same shape),
    rounded to nearest as NumPy's cast rounds, on the library's threads, without the GIL.
    Returns False when a value is infinite in float32 (beyond its range), True otherwise."""
    if X.shape[0] != out.shape[0] or X.shape[1] != out.shape[1]:
        raise ValueError(f"out has shape ({out.shape[0]}, {out.shape[1]}), "
                         f"X ({X.shape[0]}, {X.shape[1]})")
    cdef int status = 0
    if X.shape[0] > 0 and X.shape[1] > 0:
        with nogil:
            status = fm_float32_from_float64(&out[0, 0], &X[0, 0], X.shape[0] * X.shape[1])
    return status == 0


def network_sizes_fit(sizes, Py_ssize_t max_batch):
    """Whether every buffer of a network with these widths and batch size has a byte size
    that fits in a C ``ptrdiff_t`` (the overflow check the C library itself applies)."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s < 1 or s > PY_SSIZE_T_MAX for s in sizes):
        return False
    cdef Py_ssize_t n = len(sizes)
    cdef Py_ssize_t *c_sizes = <Py_ssize_t *>PyMem_Malloc(n * sizeof(Py_ssize_t))
    if c_sizes == NULL:
        raise MemoryError()
    cdef Py_ssize_t i
    cdef int status
    try:
        for i in range(n):
            c_sizes[i] = sizes[i]
        status = fm_network_sizes_check(<int>(n - 1), c_sizes, max_batch)
    finally:
        PyMem_Free(c_sizes)
    return status == 0


cdef class Network:
    """The weights of a dense network and the buffers of its training step.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first: ``(784, 512, 256, 10)``.
    max_batch : int
        The largest batch ``train_step`` will be given; its buffers are made once, here.
    momentum : bool
        Whether to keep velocity buffers (for momentum and Nesterov updates).
    activation : str
        The hidden layers' activation, one of ``ACTIVATIONS``.
    adam : bool
        Whether to keep Adam's two moments (and train with Adam alone: every step passes
        ``adam=(beta_1, beta_2, epsilon, t)``). Not with ``momentum``.
    dropout : None, float or sequence of float
        Inverted dropout on the hidden layers' outputs in training steps (and ``gradient``),
        never in ``forward``: a rate in [0, 1) for every hidden layer, or one per hidden layer
        (``dropout`` then holds them as a tuple). Each step's masks come from its
        ``dropout_seed`` and ``dropout_step`` (``dropout_masks``). None or 0: none.
    precision : "fp32" or "bf16"
        "bf16": every matrix product of the training steps and forward passes takes bf16
        operands and sums in float (``gemm``'s precision); weights, biases, optimiser state
        and everything else stay float32. Settable later (``precision`` attribute).

    The calls that take ``n_threads`` run on at most that many threads (0: the process's
    count, ``get_num_threads()``), for that call alone.
    """
    cdef readonly tuple sizes
    cdef readonly str activation
    cdef readonly Py_ssize_t max_batch
    cdef readonly bint has_velocity
    cdef readonly bint has_adam
    cdef readonly tuple dropout   # one rate per hidden layer
    cdef double *_dropout
    cdef list _W, _b, _vW, _vb, _act, _grad, _pre
    cdef list _state_W, _state_b  # the update rule's state buffers, [state][layer]: velocity or
                                  # Adam's moments (_vW, _vb: state 0 with momentum)
    cdef object _batch, _batch_labels   # train_step_rows's gathered batch, made on first use
    cdef object _batch_Y, _batch_sw     # train_step_targets's gathered targets, likewise
    cdef Py_ssize_t *_sizes
    cdef float **_ptrs
    cdef list _scratch            # forward()'s hidden activations for up to _scratch_rows rows,
    cdef object _scratch_lock     # one call at a time (others make their own)
    cdef Py_ssize_t _scratch_rows
    cdef fm_net _net

    def __cinit__(self, sizes, Py_ssize_t max_batch, bint momentum=False, activation="relu",
                  bint adam=False, dropout=None, precision="fp32"):
        cdef int act = _activation_code(activation)
        cdef int bf16 = _precision_code(precision)
        _expect(not (momentum and adam), "a Network keeps momentum's or Adam's state, not both")
        cdef int n_states = 2 if adam else 1 if momentum else 0
        sizes = tuple(int(s) for s in sizes)
        _expect(len(sizes) >= 2, f"a network needs at least an input and an output width, got {sizes}")
        for s in sizes:
            _expect(s >= 1, f"layer widths must be >= 1, got {sizes}")
        _expect(max_batch >= 1, f"max_batch must be >= 1, got {max_batch}")
        if not network_sizes_fit(sizes, max_batch):
            raise MemoryError(f"a network of widths {sizes} with batch {max_batch} has buffers "
                              f"larger than this machine can address")
        n_weights = sum(sizes[l] * sizes[l + 1] for l in range(len(sizes) - 1))
        n_act = max_batch * sum(sizes[1:])
        rates = _dropout_rates(dropout, len(sizes) - 2)
        # What each hidden layer's derivative reads beside its output (fm_net_keeps_pre).
        keeps = [fm_activation_keeps_z(act) != 0
                 or (r > 0 and fm_activation_sign_only(act) == 0) for r in rates]
        keeps_z = any(keeps)
        # weights (and the update rule's states), activations, gradients (and the
        # pre-activations)
        n_floats = n_weights * (1 + n_states) + (3 if keeps_z else 2) * n_act
        if n_floats > 2 ** 40:
            raise MemoryError(f"a network of widths {sizes} with batch {max_batch} needs "
                              f"{n_floats * 4 / 2**30:.0f} GiB")
        self.sizes = sizes
        self.max_batch = max_batch
        self.has_velocity = momentum
        self.has_adam = adam
        cdef int L = len(sizes) - 1
        # Weights and their velocities live in column panels (gemm.h), flat; get_weights and
        # set_weights convert from and to the (n_in, n_out) matrices users see.
        self._W = [_aligned_zeros((sizes[l] * sizes[l + 1],)) for l in range(L)]
        self._b = [_aligned_zeros((sizes[l + 1],)) for l in range(L)]
        self._act = [_aligned_zeros((max_batch, sizes[l + 1])) for l in range(L)]
        self._grad = [_aligned_zeros((max_batch, sizes[l + 1])) for l in range(L)]
        # An activation whose derivative needs z keeps each hidden layer's (fm_net.pre).
        # So does a dropout layer whose derivative needs its output before the drop.
        self._pre = [_aligned_zeros((max_batch, sizes[l + 1])) if keeps[l] else None
                     for l in range(L - 1)]
        self._state_W = [[_aligned_zeros(w.shape) for w in self._W] for s in range(n_states)]
        self._state_b = [[_aligned_zeros(b.shape) for b in self._b] for s in range(n_states)]
        self._vW = self._state_W[0] if momentum else []
        self._vb = self._state_b[0] if momentum else []
        self._sizes = <Py_ssize_t *>PyMem_Malloc((L + 1) * sizeof(Py_ssize_t))
        self._scratch_rows = min(max_batch, OWN_SCRATCH_ROWS)
        self._scratch = [_aligned_zeros((self._scratch_rows, sizes[l + 1])) for l in range(L - 1)]
        self._scratch_lock = threading.Lock()
        # W, b, act, grad, state 0 of W and b, forward's scratch, state 1 of W and b,
        # pre-activations
        self._ptrs = <float **>PyMem_Malloc(10 * L * sizeof(float *))
        self._dropout = <double *>PyMem_Malloc(L * sizeof(double))
        if self._sizes == NULL or self._ptrs == NULL or self._dropout == NULL:
            raise MemoryError()
        cdef int l
        for l in range(L - 1):
            self._dropout[l] = rates[l]
        for l in range(L + 1):
            self._sizes[l] = sizes[l]
        for l in range(L):
            self._ptrs[0 * L + l] = _data(self._W[l])
            self._ptrs[1 * L + l] = _data(self._b[l])
            self._ptrs[2 * L + l] = _data(self._act[l])
            self._ptrs[3 * L + l] = _data(self._grad[l])
            if n_states >= 1:
                self._ptrs[4 * L + l] = _data(self._state_W[0][l])
                self._ptrs[5 * L + l] = _data(self._state_b[0][l])
            if n_states >= 2:
                self._ptrs[7 * L + l] = _data(self._state_W[1][l])
                self._ptrs[8 * L + l] = _data(self._state_b[1][l])
            if l < L - 1:
                self._ptrs[6 * L + l] = _data(self._scratch[l])
                self._ptrs[9 * L + l] = _data(self._pre[l]) if keeps[l] else NULL
        self._net.n_layers = L
        self._net.sizes = self._sizes
        self._net.W = self._ptrs
        self._net.b = self._ptrs + L
        self._net.act = self._ptrs + 2 * L
        self._net.grad = self._ptrs + 3 * L
        self._net.state_W[0] = self._ptrs + 4 * L if n_states >= 1 else NULL
        self._net.state_b[0] = self._ptrs + 5 * L if n_states >= 1 else NULL
        self._net.state_W[1] = self._ptrs + 7 * L if n_states >= 2 else NULL
        self._net.state_b[1] = self._ptrs + 8 * L if n_states >= 2 else NULL
        self._net.pre = self._ptrs + 9 * L if keeps_z else NULL
        self._net.dropout = self._dropout if any(r > 0 for r in rates) else NULL
        self._net.dropout_seed = 0
        self._net.dropout_step = 0
        self.dropout = rates
        self._net.activation = act
        self._net.n_threads = 0
        self._net.check_finite = 1
        self._net.bf16 = bf16
        self.activation = activation

    @property
    def precision(self):
        """"fp32", or "bf16" for bf16 products (see the class's parameters)."""
        return "bf16" if self._net.bf16 else "fp32"

    @precision.setter
    def precision(self, value):
        self._net.bf16 = _precision_code(value)

    def __dealloc__(self):
        PyMem_Free(self._sizes)
        PyMem_Free(self._ptrs)
        PyMem_Free(self._dropout)

    @property
    def n_layers(self):
        return len(self.sizes) - 1

    def _interleaved_copies(self, matrices, vectors):
        """``[M1, v1, M2, v2, ...]`` as new arrays, each M (held in column panels) as an
        (n_in, n_out) matrix."""
        return [a for l, (flat, v) in enumerate(zip(matrices, vectors))
                for a in (_from_panels(flat, self.sizes[l], self.sizes[l + 1]), v.copy())]

    def _shapes(self):
        """The shapes users see of ``[W1, b1, W2, b2, ...]`` (and of the velocities)."""
        return [s for l in range(self.n_layers)
                for s in ((self.sizes[l], self.sizes[l + 1]), (self.sizes[l + 1],))]

    def get_weights(self):
        """``[W1, b1, W2, b2, ...]`` as new float32 arrays, W of shape (n_in, n_out)."""
        return self._interleaved_copies(self._W, self._b)

    def set_weights(self, weights):
        """Load ``[W1, b1, W2, b2, ...]`` (any float dtype; shapes must match exactly)."""
        weights = list(weights)
        L = self.n_layers
        _expect(len(weights) == 2 * L,
                f"expected {2 * L} arrays [W1, b1, ..., W{L}, b{L}], got {len(weights)}")
        targets = [t for pair in zip(self._W, self._b) for t in pair]
        new = []
        for i, (array, target, shape) in enumerate(zip(weights, targets, self._shapes())):
            name = f"{'Wb'[i % 2]}{i // 2 + 1}"
            a = np.asarray(array)
            _expect(a.shape == shape, f"{name} has shape {a.shape}, expected {shape}")
            _expect(a.dtype.kind in "fiu", f"{name} has dtype {a.dtype}, expected floats")
            a = a.astype(np.float32)
            _expect(bool(np.isfinite(a).all()), f"{name} contains NaN or infinity")
            new.append((target, a))
        for target, a in new:      # all checked: now copy, so a bad list changes nothing
            _store(target, a)
        self.reset_velocity()

    def get_velocity(self):
        """``[vW1, vb1, ...]`` copies of the momentum buffers (empty without momentum)."""
        return self._interleaved_copies(self._vW, self._vb)

    def set_velocity(self, arrays):
        arrays = list(arrays)
        _expect(self.has_velocity and len(arrays) == 2 * self.n_layers,
                "velocity arrays do not match this network")
        targets = [t for pair in zip(self._vW, self._vb) for t in pair]
        checked = []
        for a, shape in zip(arrays, self._shapes()):
            _expect(np.shape(a) == shape, f"velocity of shape {np.shape(a)}, expected {shape}")
            a = np.asarray(a, np.float32)
            _expect(bool(np.isfinite(a).all()), "velocity contains NaN or infinity")
            checked.append(a)
        for a, t in zip(checked, targets):   # all checked: a bad list changes nothing
            _store(t, a)

    def reset_velocity(self):
        """Zeros the update rule's state: the velocities, or Adam's moments."""
        for states in self._state_W + self._state_b:
            for v in states:
                v.fill(0)

    def get_optimizer_state(self):
        """``[s0_W1, s0_b1, ..., s1_W1, s1_b1, ...]``: copies of the update rule's state
        buffers in use, state by state (momentum: the velocity; Adam: the first moments, then
        the second), each W's as an (n_in, n_out) matrix; empty for plain SGD."""
        return [a for W, b in zip(self._state_W, self._state_b)
                for a in self._interleaved_copies(W, b)]

    def set_optimizer_state(self, arrays):
        """Loads ``get_optimizer_state()``'s list (any float dtype, shapes exact, finite;
        Adam's second moments >= 0). A bad list changes nothing."""
        arrays = list(arrays)
        cdef Py_ssize_t n = 2 * self.n_layers
        _expect(len(arrays) == n * len(self._state_W),
                f"expected {n * len(self._state_W)} state arrays, got {len(arrays)}")
        targets = [t for W, b in zip(self._state_W, self._state_b)
                   for pair in zip(W, b) for t in pair]
        checked = []
        for i, a in enumerate(arrays):
            shape = self._shapes()[i % n]
            _expect(np.shape(a) == shape, f"state of shape {np.shape(a)}, expected {shape}")
            a = np.asarray(a)
            _expect(a.dtype.kind in "fiu", f"state of dtype {a.dtype}, expected floats")
            a = a.astype(np.float32)
            _expect(bool(np.isfinite(a).all()), "state contains NaN or infinity")
            _expect(not (self.has_adam and i >= n and (a < 0).any()),
                    "Adam's second moments must be >= 0")
            checked.append(a)
        for a, t in zip(checked, targets):
            _store(t, a)

    def train_step(self, const float[:, ::1] X, const int32_t[::1] labels, double lr,
                   str loss="mse", double alpha=0.0, double momentum=0.0, bint nesterov=False,
                   int n_threads=0, adam=None, dropout_seed=0, dropout_step=0):
        """One optimiser step on the batch (X, labels); returns the batch loss computed before
        the update. When that loss is not finite the weights are left as they were; when the
        update makes a weight NaN or infinite it raises FloatingPointError.

        Shapes: X (M, n_in) float32 with 1 <= M <= max_batch, labels (M,) int32 in [0, n_out).
        adam: None (SGD), or ``(beta_1, beta_2, epsilon, t)`` on a Network made with
        ``adam=True``: an Adam step, t >= 1 the step's number counting this one.
        dropout_seed, dropout_step: the key of the masks of a Network made with ``dropout``
        (integers, the seed in [0, 2**64), the step >= 0, taken mod 2**32): a unit's mask is a
        function of (seed, step, layer, row of the batch, column) alone (``dropout_masks``).
        """
        cdef Py_ssize_t M = X.shape[0]
        cdef int kind = self._check_step(M, X.shape[0], X.shape[1], labels.shape[0], loss, momentum)
        _check_labels(labels, self._sizes[self._net.n_layers])
        cdef fm_optimizer opt = self._step_optimizer(lr, alpha, momentum, nesterov, adam)
        cdef double value = 0.0
        cdef int status
        cdef fm_net net = self._for_step(n_threads, dropout_seed, dropout_step)
        with nogil:
            status = fm_train_step(&net, M, &X[0, 0], &labels[0], kind, &opt, &value)
        _check_status(status)
        return value

    def train_step_rows(self, const float[:, ::1] X, const int32_t[::1] labels,
                        const int64_t[::1] rows, double lr, str loss="mse", double alpha=0.0,
                        double momentum=0.0, bint nesterov=False, int n_threads=0, adam=None,
                        dropout_seed=0, dropout_step=0):
        """``train_step`` on the rows ``rows`` of (X, labels): a shuffled batch, with no copy
        made in Python. The same bits as ``train_step(X[rows], labels[rows], ...)``; the rows
        are copied by the step's own threads into a buffer of this Network's (made on the
        first call, then reused).

        Shapes: X (n, n_in) float32, labels (n,) int32 in [0, n_out), rows (M,) int64 in
        [0, n) with 1 <= M <= max_batch.
        """
        cdef Py_ssize_t M = rows.shape[0], n = X.shape[0], i, r
        cdef Py_ssize_t n_classes = self._sizes[self._net.n_layers]
        cdef int kind = self._check_step(M, n, X.shape[1], labels.shape[0], loss, momentum)
        for i in range(M):
            r = rows[i]
            if r < 0 or r >= n:
                raise ValueError(f"row index {r} at position {i} is outside [0, {n})")
            if labels[r] < 0 or labels[r] >= n_classes:
                raise ValueError(f"label {labels[r]} of row {r} is outside [0, {n_classes})")
        if self._batch is None:
            self._batch = _aligned_zeros((self.max_batch, self._sizes[0]))
            self._batch_labels = np.zeros(self.max_batch, np.int32)
        cdef float[:, ::1] batch = self._batch
        cdef int32_t[::1] batch_labels = self._batch_labels
        cdef fm_optimizer opt = self._step_optimizer(lr, alpha, momentum, nesterov, adam)
        cdef double value = 0.0
        cdef int status
        cdef fm_net net = self._for_step(n_threads, dropout_seed, dropout_step)
        with nogil:
            status = fm_train_step_rows(&net, M, &X[0, 0], &labels[0], n, &rows[0],
                                        &batch[0, 0], &batch_labels[0], kind, &opt, &value)
        _check_status(status)
        return value

    def train_step_targets(self, const float[:, ::1] X, const float[:, ::1] Y, double lr,
                           str loss, const float[::1] sample_weight=None,
                           const int64_t[::1] rows=None, double weight_sum=0.0,
                           double alpha=0.0, double momentum=0.0, bint nesterov=False,
                           adam=None, int n_threads=0, dropout_seed=0, dropout_step=0):
        """One optimiser step towards float targets with scikit-learn's loss ``loss`` (one of
        ``TARGET_LOSSES``), on the batch (X, Y) or, with ``rows``, on those rows of (X, Y,
        sample_weight), gathered by the step's threads as ``train_step_rows`` does.

        The output gradient is ``(p - y) * w_i / weight_sum``, p the loss's output activation
        of the network's output (scikit-learn's ``_backprop``); ``weight_sum`` 0 takes the
        batch's sum of weights, or its row count without weights. Returns
        ``S = sum_i w_i l_i``, the batch's loss before the update, not divided (scikit-learn's
        loss is ``S / weight_sum``). A non-finite S leaves the weights as they were. ``adam``:
        None (SGD, with ``momentum`` and ``nesterov``), or ``(beta_1, beta_2, epsilon, t)`` on a
        Network made with ``adam=True``, as ``train_step`` takes it.

        Shapes: X (n, n_in), Y (n, n_out) float32 finite (poisson: >= 0), sample_weight (n,)
        float32 finite >= 0 or None, rows (M,) int64 in [0, n) or None (then M = n);
        1 <= M <= max_batch.
        """
        cdef Py_ssize_t n = X.shape[0]
        cdef Py_ssize_t M = n if rows is None else rows.shape[0]
        cdef fm_targets t
        self._check_step(M, n, X.shape[1], n, "mse", momentum)
        _targets(&t, Y, sample_weight, rows, n, self._sizes[self._net.n_layers], loss,
                 weight_sum)
        cdef fm_optimizer opt = self._step_optimizer(lr, alpha, momentum, nesterov, adam)
        cdef fm_batch batch
        batch.X = NULL
        batch.labels = NULL
        batch.Y = NULL
        batch.weights = NULL
        cdef float[:, ::1] batch_X, batch_Y
        cdef float[::1] batch_sw
        cdef const int64_t *rows_ptr = NULL
        if rows is not None:
            rows_ptr = &rows[0]
            if self._batch is None:
                self._batch = _aligned_zeros((self.max_batch, self._sizes[0]))
                self._batch_labels = np.zeros(self.max_batch, np.int32)
            if self._batch_Y is None:
                self._batch_Y = _aligned_zeros((self.max_batch, self._sizes[self._net.n_layers]))
                self._batch_sw = np.zeros(self.max_batch, np.float32)
            batch_X = self._batch
            batch_Y = self._batch_Y
            batch_sw = self._batch_sw
            batch.X = &batch_X[0, 0]
            batch.Y = &batch_Y[0, 0]
            batch.weights = &batch_sw[0]
        cdef double value = 0.0
        cdef int status
        cdef fm_net net = self._for_step(n_threads, dropout_seed, dropout_step)
        with nogil:
            status = fm_train_step_targets(&net, M, &X[0, 0], &t, n, rows_ptr, &batch, &opt,
                                           &value)
        _check_status(status)
        return value

    def gradient(self, const float[:, ::1] X, const float[:, ::1] Y, str loss,
                 const float[::1] sample_weight=None, double weight_sum=0.0, int n_threads=0,
                 dropout_seed=0, dropout_step=0):
        """The loss on the batch (X, Y) and its gradient with respect to every weight and
        bias, the weights unchanged (for L-BFGS): returns ``(S, [gW1, gb1, gW2, gb2, ...])``,
        S as ``train_step_targets`` returns it and the gradients those of ``S / weight_sum``
        (scikit-learn's ``_backprop`` without ``alpha``), new float32 arrays shaped (n_in,
        n_out) and (n_out,). ``weight_sum`` 0: the batch's sum of weights, or its row count.
        At most ``max_batch`` rows: callers chunk a larger set, pass the whole set's
        ``weight_sum`` and add the chunks' results.

        Shapes: X (M, n_in), Y (M, n_out), sample_weight (M,) or None; 1 <= M <= max_batch.
        """
        cdef Py_ssize_t M = X.shape[0]
        cdef int L = self._net.n_layers
        cdef fm_targets t
        self._check_step(M, M, X.shape[1], M, "mse", 0.0)
        _targets(&t, Y, sample_weight, None, M, self._sizes[L], loss, weight_sum)
        grads = [a for l in range(L)
                 for a in (_aligned_empty((self._sizes[l], self._sizes[l + 1])),
                           _aligned_empty((self._sizes[l + 1],)))]
        cdef float **ptrs = <float **>PyMem_Malloc(2 * L * sizeof(float *))
        if ptrs == NULL:
            raise MemoryError()
        cdef int l
        for l in range(L):
            ptrs[l] = _data(grads[2 * l])
            ptrs[L + l] = _data(grads[2 * l + 1])
        cdef double value = 0.0
        cdef int status
        cdef fm_net net = self._for_step(n_threads, dropout_seed, dropout_step)
        try:
            with nogil:
                status = fm_gradient(&net, M, &X[0, 0], &t, ptrs, ptrs + L, &value)
        finally:
            PyMem_Free(ptrs)
        _check_status(status)
        return value, grads

    def weights_sum_squares(self):
        """The sum of the squares of every weight (not the biases), in double: the L2 term's
        ``sum(W**2)``."""
        cdef double value
        with nogil:
            value = fm_weights_sum_squares(&self._net)
        return value

    cdef fm_optimizer _step_optimizer(self, double lr, double alpha, double momentum,
                                      bint nesterov, adam) except *:
        """A step's rule: Adam (adam a tuple) on a Network with Adam's moments, else SGD."""
        if self.has_adam != (adam is not None):
            raise ValueError("Adam's steps (adam=(beta_1, beta_2, epsilon, t)) need a Network "
                             "made with adam=True, which takes no other")
        if adam is None:
            return _optimizer(lr, alpha, momentum, nesterov)
        if momentum != 0:
            raise ValueError("momentum is SGD's: not with adam")
        return _adam_optimizer(lr, alpha, adam)

    cdef fm_net _for_call(self, int n_threads):
        """This network for one call on at most n_threads threads (<= 0: the process's count):
        the count goes with the call, and concurrent calls never change each other's."""
        cdef fm_net net = self._net
        net.n_threads = n_threads if n_threads > 0 else 0
        return net

    cdef fm_net _for_step(self, int n_threads, seed, step) except *:
        """_for_call for a training step whose dropout masks take the key (seed, step)."""
        cdef fm_net net = self._for_call(n_threads)
        net.dropout_seed, net.dropout_step = _dropout_key(seed, step)
        return net

    cdef int _check_step(self, Py_ssize_t M, Py_ssize_t n, Py_ssize_t features,
                         Py_ssize_t n_labels, str loss, double momentum) except -1:
        """Checks a step on M rows of an (n, features) X with n_labels labels; returns the C
        loss code for ``loss``. ValueError for a batch that does not fit the buffers, a wrong
        width, labels that do not match the rows, an unknown loss, or momentum on a Network
        without velocity buffers."""
        # Plain ifs, not _expect: the messages are formatted only when a check fails.
        if not 1 <= M <= self.max_batch:
            raise ValueError(f"batch of {M} rows, expected 1..{self.max_batch}")
        if features != self._sizes[0]:
            raise ValueError(f"X has {features} features, expected {self.sizes[0]}")
        if n_labels != n:
            raise ValueError(f"{n_labels} labels for {n} rows")
        loss_kind = _LABEL_KINDS.get(loss)
        if loss_kind is None:
            raise ValueError(f"loss must be one of {sorted(_LABEL_KINDS)} (float targets: "
                             f"train_step_targets), got {loss!r}")
        if momentum != 0 and not self.has_velocity:
            raise ValueError("momentum needs a Network made with momentum=True")
        return loss_kind

    def forward(self, const float[:, ::1] X, bint check_finite=False, int n_threads=0,
                precision=None):
        """The raw network output for X (M, n_in) float32: a new (M, n_out) float32 array.
        ``precision`` ("fp32" or "bf16") for this call alone; None: the network's.

        With ``check_finite``, a NaN or an infinity in X raises ``NonFiniteInput``. A pass of
        many rows checks each block of rows as it packs it for the first layer, on the thread
        that computes it (cheaper than a check of all of X before the pass, which reads X from
        memory once more); a pass of fewer rows checks X before it starts."""
        cdef Py_ssize_t M = X.shape[0], L = self._net.n_layers
        cdef fm_net net = self._for_call(n_threads)
        if precision is not None:
            net.bf16 = _precision_code(precision)
        if X.shape[1] != self._sizes[0]:
            raise ValueError(f"X has {X.shape[1]} features, expected {self.sizes[0]}")
        out = _aligned_empty((M, self._sizes[L]))
        if M == 0:
            return out
        # Scratch for the hidden activations: all M rows for a few, a slot per thread for many.
        # The network's own when it is free and big enough (a one-sample prediction then
        # allocates only its output: ~2 us less), else new buffers.
        cdef Py_ssize_t scratch_rows = fm_forward_scratch_rows(&net, M)
        cdef bint own = scratch_rows <= self._scratch_rows and self._scratch_lock.acquire(False)
        cdef float **ptrs = self._ptrs + 6 * L if own else NULL
        cdef float[:, ::1] out_view = out
        cdef int status = 0
        cdef int l
        try:
            if not own:
                scratch = [_aligned_empty((scratch_rows, self._sizes[l + 1])) for l in range(L - 1)]
                ptrs = <float **>PyMem_Malloc((L if L > 1 else 1) * sizeof(float *))
                if ptrs == NULL:
                    raise MemoryError()
                for l in range(L - 1):
                    ptrs[l] = _data(scratch[l])
            with nogil:
                if check_finite:
                    status = fm_forward_finite(&net, M, &X[0, 0], &out_view[0, 0], ptrs,
                                               scratch_rows)
                else:
                    status = fm_forward(&net, M, &X[0, 0], &out_view[0, 0], ptrs, scratch_rows)
        finally:
            if own:
                self._scratch_lock.release()
            else:
                PyMem_Free(ptrs)
        if status == FM_ERR_NOT_FINITE:
            raise NonFiniteInput("X contains NaN or infinity")
        _check_status(status)
        return out


# Buffers the kernels write or stream start on a cache line: a 64-byte AVX-512 load or store
# that straddles two lines costs two (measured: a training step 6-7% slower, predicting one
# sample ~30% slower, with NumPy's usual 16-byte alignment).
cdef enum:
    CACHE_LINE = 64


def _aligned_empty(shape):
    """An uninitialised float32 array of this shape whose data starts on a 64-byte boundary."""
    cdef cnp.npy_intp dims[8]
    cdef int d
    cdef int nd = len(shape)
    cdef cnp.npy_intp n = 1
    if nd > 8:
        raise ValueError(f"{nd} dimensions: at most 8")
    for d in range(nd):
        dims[d] = shape[d]
        n *= dims[d]
    # NumPy's float32 data is at least 4-byte aligned: CACHE_LINE // 4 floats more leave room
    # to start on a line. One array over the aligned part of raw (its base) costs less than
    # slicing and reshaping raw, which a one-sample prediction paid on every call.
    n += CACHE_LINE // 4
    cdef cnp.ndarray raw = cnp.PyArray_EMPTY(1, &n, cnp.NPY_FLOAT32, 0)
    cdef char *data = <char *>cnp.PyArray_DATA(raw)
    data += (-<Py_ssize_t>data) % CACHE_LINE
    cdef cnp.ndarray view = cnp.PyArray_SimpleNewFromData(nd, dims, cnp.NPY_FLOAT32, data)
    cnp.set_array_base(view, raw)
    return view


def _aligned_zeros(shape):
    a = _aligned_empty(shape)
    a.fill(0)
    return a


def _panels(flat, Py_ssize_t rows, Py_ssize_t cols):
    """The column panels (gemm.h) of the (rows, cols) matrix that the flat array holds, as
    (column slice, rows x w view) pairs: panel q holds columns [q*FM_PANEL, q*FM_PANEL + w) as a
    rows x w block starting at element q*FM_PANEL*rows."""
    cdef Py_ssize_t q0, w
    for q0 in range(0, cols, FM_PANEL):
        w = min(FM_PANEL, cols - q0)
        yield slice(q0, q0 + w), flat[q0 * rows:q0 * rows + rows * w].reshape(rows, w)


def _from_panels(flat, Py_ssize_t rows, Py_ssize_t cols):
    """The (rows, cols) matrix held in column panels by the flat array, as a new array."""
    out = np.empty((rows, cols), np.float32)
    for columns, panel in _panels(flat, rows, cols):
        out[:, columns] = panel
    return out


def _store(target, a):
    """Copies a into the buffer target: a vector as it is, a matrix into column panels."""
    if a.ndim == 1:
        target[...] = a
        return
    for columns, panel in _panels(target, a.shape[0], a.shape[1]):
        panel[...] = a[:, columns]


cdef float *_data(cnp.ndarray a):
    return <float *>cnp.PyArray_DATA(a)
