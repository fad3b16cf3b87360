"""Type stubs of the compiled module ``fastmlp._core`` (see _core.pyx for the full docs).

Every array argument is float32 and C-contiguous (labels: int32); a wrong dtype, layout or
shape raises ``ValueError`` before any C code runs.
"""
from typing import Literal, Sequence

import numpy as np
import numpy.typing as npt

_F32 = npt.NDArray[np.float32]
_I32 = npt.NDArray[np.int32]
_Loss = Literal["mse", "cross_entropy"]
_TargetLoss = Literal["squared_error", "log_loss", "binary_log_loss", "poisson"]

LOSSES: dict[str, int]

def set_num_threads(n: int) -> None:
    """Set the number of threads of every kernel; ``n <= 0`` restores the default."""
def get_num_threads() -> int:
    """The number of threads the kernels will use.

    Returns
    -------
    int
    """
def have_openmp() -> bool:
    """Whether the extension was compiled with OpenMP.

    Returns
    -------
    bool
    """
def all_finite(X: _F32) -> bool:
    """Whether no element of X (float32, C-contiguous) is NaN or infinite."""
    ...
def float32_from_float64(X: npt.NDArray[np.float64], out: _F32) -> bool:
    """Writes X (float64, C-contiguous) rounded to float32 into out (the same shape), on the
    library's threads; False when a value is infinite in float32."""
    ...
def keeps_preactivation(activation: str, dropout: bool = ...) -> bool:
    """Whether layers with this activation keep their pre-activation beside their output (or,
    with dropout, their output before the drop)."""
def dropout_masks(rows: int, columns: int, rate: float, seed: int, step: int, layer: int,
                  row0: int = ...) -> _F32:
    """A training step's dropout factors (0 or 1 / (1 - rate)) of a hidden layer's units."""
def philox4x32(counter: Sequence[int], key: Sequence[int]) -> tuple[int, int, int, int]:
    """Philox4x32-10's four words of a counter under a key (the masks' generator)."""
def network_sizes_fit(sizes: Sequence[int], max_batch: int) -> bool:
    """Whether every buffer of such a network fits in a C ptrdiff_t (checked in C)."""
    ...

def build_info() -> dict[str, object]:
    """How fastmlp was built and what it runs on (``fastmlp info`` prints it).

    Returns
    -------
    dict
        ``isa`` (the kernels in use), ``isa_available`` (those this CPU runs), ``isa_note``,
        ``openmp`` (bool), ``n_threads``, ``compiler``, ``bf16`` (what runs bf16 products)
        and ``bf16_native`` (bool: the CPU's own bf16 instructions, else their emulation).
    """
def set_bf16_emulated(emulated: bool) -> None:
    """Run bf16 products on the exact emulation even where the CPU has bf16 instructions."""
def set_isa(name: str) -> None:
    """Use the kernels of one instruction set: generic, avx2, avx512 or auto."""
def peak_gflops(n_threads: int | None = ..., seconds: float = ...,
                precision: str = ...) -> float:
    """Measured FMA throughput (GFLOP/s) of n_threads threads (or of bf16 products)."""
def gemm(A: _F32, B: _F32, C: _F32, trans_a: bool = ..., trans_b: bool = ...,
         precision: str = ..., nonzero_runs: bool = ...) -> None:
    """C = op(A) @ op(B), overwriting C (M, N); precision "fp32" or "bf16"; nonzero_runs:
    only A's nonzero runs of columns, as a network's first layer."""
PRECISIONS: tuple[str, ...]
ACTIVATIONS: dict[str, int]
ISAS: tuple[str, ...]
LOSSES: dict[str, int]
LABEL_LOSSES: tuple[str, ...]
TARGET_LOSSES: tuple[str, ...]
def dense_forward(X: _F32, W: _F32, b: _F32, out: _F32, activation: bool | str | None) -> None:
    """out (M, N) = f(X (M, K) @ W (K, N) + b (N,)); True means relu, False or None no f."""
def dense_backward_input(dZ: _F32, W: _F32, A_prev: _F32 | None, dA_prev: _F32,
                         activation: str = ...) -> None:
    """dA_prev (M, K) = (dZ (M, N) @ W.T) * f'(Z), f' from the activation's output A_prev."""
def dense_update(W: _F32, b: _F32, A_prev: _F32, dZ: _F32, lr: float, alpha: float = ...,
                 momentum: float = ..., nesterov: bool = ..., vW: _F32 | None = ...,
                 vb: _F32 | None = ...) -> None:
    """In-place optimiser step of one layer."""
def loss_grad(out: _F32, labels: _I32, dout: _F32, loss: _Loss = ...) -> float:
    """Loss of ``out`` (M, N) against ``labels`` (M,); its gradient written to ``dout``."""

class NonFiniteInput(ValueError):
    """The input of ``Network.forward(X, check_finite=True)`` holds a NaN or an infinity."""

class Network:
    """The weights of a dense network and the buffers of its training step."""

    @property
    def sizes(self) -> tuple[int, ...]: ...
    @property
    def max_batch(self) -> int: ...
    @property
    def has_velocity(self) -> bool: ...
    @property
    def has_adam(self) -> bool: ...
    @property
    def n_layers(self) -> int: ...
    @property
    def activation(self) -> str: ...
    @property
    def dropout(self) -> tuple[float, ...]: ...
    def __init__(self, sizes: Sequence[int], max_batch: int, momentum: bool = ...,
                 activation: str = ..., adam: bool = ...,
                 dropout: float | Sequence[float] | None = ...,
                 precision: str = ...) -> None: ...
    @property
    def precision(self) -> str:
        """"fp32", or "bf16" for bf16 products; settable."""
    @precision.setter
    def precision(self, value: str) -> None: ...
    def get_weights(self) -> list[_F32]:
        """``[W1, b1, W2, b2, ...]`` copies; W of shape (n_in, n_out), b of shape (n_out,)."""
    def set_weights(self, weights: Sequence[npt.ArrayLike]) -> None: ...
    def get_velocity(self) -> list[_F32]: ...
    def set_velocity(self, arrays: Sequence[npt.ArrayLike]) -> None: ...
    def reset_velocity(self) -> None: ...
    def get_optimizer_state(self) -> list[_F32]:
        """``[s0_W1, s0_b1, ..., s1_W1, s1_b1, ...]``: the update rule's states in use."""
    def set_optimizer_state(self, arrays: Sequence[npt.ArrayLike]) -> None: ...
    def train_step(self, X: _F32, labels: _I32, lr: float, loss: _Loss = ..., alpha: float = ...,
                   momentum: float = ..., nesterov: bool = ..., n_threads: int = ...,
                   adam: tuple[float, float, float, int] | None = ..., dropout_seed: int = ...,
                   dropout_step: int = ...) -> float:
        """One optimiser step on X (M, n_in), labels (M,); returns the batch loss."""
    def train_step_rows(self, X: _F32, labels: _I32, rows: npt.NDArray[np.int64], lr: float,
                        loss: _Loss = ..., alpha: float = ..., momentum: float = ...,
                        nesterov: bool = ..., n_threads: int = ...,
                        adam: tuple[float, float, float, int] | None = ...,
                        dropout_seed: int = ..., dropout_step: int = ...) -> float:
        """``train_step(X[rows], labels[rows], ...)`` without the copy: X (n, n_in), labels
        (n,), rows (M,) int64 in [0, n)."""
    def train_step_targets(self, X: _F32, Y: _F32, lr: float, loss: _TargetLoss,
                           sample_weight: _F32 | None = ...,
                           rows: npt.NDArray[np.int64] | None = ..., weight_sum: float = ...,
                           alpha: float = ..., momentum: float = ..., nesterov: bool = ...,
                           adam: tuple[float, float, float, int] | None = ...,
                           n_threads: int = ..., dropout_seed: int = ...,
                           dropout_step: int = ...) -> float:
        """One step towards float targets Y (n, n_out) with scikit-learn's loss, per-sample
        weights (n,) or None, on all rows or ``rows``; returns S = sum_i w_i l_i."""
    def gradient(self, X: _F32, Y: _F32, loss: _TargetLoss, sample_weight: _F32 | None = ...,
                 weight_sum: float = ..., n_threads: int = ..., dropout_seed: int = ...,
                 dropout_step: int = ...) -> tuple[float, list[_F32]]:
        """``(S, [gW1, gb1, ...])``: the gradient of S / weight_sum, weights unchanged; at
        most max_batch rows."""
    def weights_sum_squares(self) -> float:
        """The sum of the squares of every weight (not the biases)."""
    def forward(self, X: _F32, check_finite: bool = ..., n_threads: int = ...,
                precision: str | None = ...) -> _F32:
        """The raw output (M, n_out) for X (M, n_in); with ``check_finite``, ``NonFiniteInput``
        when X holds a NaN or an infinity."""
