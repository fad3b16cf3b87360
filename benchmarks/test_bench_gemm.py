"""Each matrix product of the training step, alone, in GFLOP/s and % of the machine's peak."""
import numpy as np
import pytest

from fastmlp import _core

# (M, N, K, trans_a, trans_b, what): C (M x N) = op(A) (M x K) op(B) (K x N).
SHAPES = [
    (200, 512, 784, False, False, "forward layer 1"),
    (200, 256, 512, False, False, "forward layer 2"),
    (200, 10, 256, False, False, "forward layer 3 (skinny N)"),
    (200, 256, 10, False, True, "input gradient layer 3 (skinny K)"),
    (200, 512, 256, False, True, "input gradient layer 2"),
    (784, 512, 200, True, False, "weight gradient layer 1"),
    (512, 256, 200, True, False, "weight gradient layer 2"),
    (256, 10, 200, True, False, "weight gradient layer 3 (skinny N)"),
]


@pytest.mark.parametrize("M,N,K,trans_a,trans_b,what", SHAPES, ids=[s[-1] for s in SHAPES])
def test_gemm(benchmark, M, N, K, trans_a, trans_b, what, peak_gflops):
    rng = np.random.default_rng(0)
    A = rng.uniform(-1, 1, size=(K, M) if trans_a else (M, K)).astype(np.float32)
    B = rng.uniform(-1, 1, size=(N, K) if trans_b else (K, N)).astype(np.float32)
    C = np.empty((M, N), np.float32)
    benchmark.group = "gemm shapes of the training step"
    benchmark.pedantic(_core.gemm, args=(A, B, C, trans_a, trans_b), rounds=50, iterations=5,
                       warmup_rounds=2)
    gflops = 2 * M * N * K / benchmark.stats.stats.median / 1e9
    benchmark.extra_info["GFLOP/s"] = round(gflops, 1)
    if peak_gflops:
        benchmark.extra_info["% of peak"] = round(100 * gflops / peak_gflops, 1)
