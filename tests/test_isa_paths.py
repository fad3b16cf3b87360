"""Every instruction-set path and thread count computes the same bits.

gemm.h's contract: each output element is one FMA chain in ascending k, whatever the micro-kernel
(generic C with fmaf, AVX2, AVX-512), the blocking or the number of threads. So a training run
must give bit-identical weights on every path, and every kernel must agree with a float64
reference within a bound that grows with K: |err| <= c * K * eps32 * sum_k |a_ik b_kj|.
"""
import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastmlp import _core

ISAS = list(_core.ISAS)
AVAILABLE = _core.build_info()["isa_available"]
EPS32 = float(np.finfo(np.float32).eps)


pytestmark = pytest.mark.usefixtures("restore_isa_and_threads")


def test_build_info_reports_the_dispatch():
    info = _core.build_info()
    assert info["isa"] in AVAILABLE
    assert AVAILABLE[0] == "generic"
    assert info["isa"] == AVAILABLE[-1] or os.environ.get("FASTMLP_ISA")
    assert isinstance(info["openmp"], bool)
    assert info["n_threads"] >= 1
    assert info["compiler"]


def test_set_isa_rejects_unknown_and_unsupported():
    with pytest.raises(ValueError, match="unknown"):
        _core.set_isa("sse9")
    for isa in ISAS:
        if isa not in AVAILABLE:
            with pytest.raises(ValueError, match="does not support"):
                _core.set_isa(isa)


def test_forced_isa_the_cpu_lacks_falls_back_and_says_so():
    code = "import fastmlp._core as c, json; print(json.dumps(c.build_info()))"
    env = dict(os.environ, FASTMLP_ISA="not-an-isa")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    import json
    info = json.loads(out.stdout)
    assert info["isa"] == AVAILABLE[-1]
    assert "not-an-isa" in info["isa_note"]


def test_peak_gflops_is_positive():
    assert _core.peak_gflops(1, 0.02) > 0
    with pytest.raises(ValueError):
        _core.peak_gflops(0, 0.02)


def test_the_package_exports_build_info_and_the_peak_probe():
    import fastmlp

    assert fastmlp.build_info() == _core.build_info()
    assert fastmlp.peak_gflops(1, 0.02) > 0
    with pytest.raises(ValueError, match="seconds"):
        fastmlp.peak_gflops(1, 0.0)
    assert {"build_info", "peak_gflops"} <= set(fastmlp.__all__)


# ---- kernels on every path against float64 ----

SHAPES = [(1, 1, 1), (1, 512, 784), (5, 63, 7), (7, 65, 13), (13, 17, 200), (25, 10, 256),
          (200, 10, 256), (200, 256, 10), (97, 130, 300), (200, 512, 1000), (31, 1, 33),
          (6, 64, 0), (1001, 70, 300),
          # 1 to 8 columns past the last 32-wide tile, or 1 to 8 in all: tall tiles
          # (kernels/tile.h) when A is stored by columns or packed
          (40, 97, 120), (29, 98, 41), (13, 35, 77), (200, 100, 784), (784, 100, 200),
          (100, 2, 200), (47, 3, 65), (24, 4, 31), (17, 1, 300), (40, 104, 50), (25, 37, 40),
          (30, 6, 70), (26, 8, 19)]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("M,N,K", SHAPES)
def test_gemm_against_float64_on_every_path(isa, M, N, K, use_isa):
    use_isa(isa)
    rng = np.random.default_rng(M * 10007 + N * 101 + K)
    A = rng.standard_normal((M, K)).astype(np.float32)
    B = rng.standard_normal((K, N)).astype(np.float32)
    a, b = A.astype(np.float64), B.astype(np.float64)
    ref = a @ b
    bound = 2.0 * max(K, 1) * EPS32 * (np.abs(a) @ np.abs(b)) + 1e-30
    results = []
    for trans_a in (False, True):
        for trans_b in (False, True):
            C = np.full((M, N), np.nan, np.float32)
            _core.gemm(np.ascontiguousarray(A.T) if trans_a else A,
                       np.ascontiguousarray(B.T) if trans_b else B, C,
                       trans_a=trans_a, trans_b=trans_b)
            assert np.all(np.abs(C - ref) <= bound), (trans_a, trans_b)
            results.append(C)
    # The four layouts multiply the same numbers in the same order: identical bits.
    for C in results[1:]:
        assert np.array_equal(C.view(np.uint32), results[0].view(np.uint32))


@pytest.mark.parametrize("isa", ISAS)
def test_layer_kernels_against_float64_on_every_path(isa, use_isa):
    use_isa(isa)
    rng = np.random.default_rng(7)
    M, K, N = 37, 301, 70
    X = rng.standard_normal((M, K)).astype(np.float32)
    W = rng.standard_normal((K, N)).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    x64, w64 = X.astype(np.float64), W.astype(np.float64)
    bound = 2.0 * K * EPS32 * (np.abs(x64) @ np.abs(w64)) + 1e-30

    out = np.empty((M, N), np.float32)
    _core.dense_forward(X, W, b, out, True)
    z = x64 @ w64 + b
    assert np.all(np.abs(out - np.maximum(z, 0)) <= bound + EPS32 * np.abs(z))

    dZ = rng.standard_normal((M, N)).astype(np.float32)
    dX = np.empty((M, K), np.float32)
    _core.dense_backward_input(dZ, W, X, dX)
    g = dZ.astype(np.float64) @ w64.T
    gbound = 2.0 * N * EPS32 * (np.abs(dZ.astype(np.float64)) @ np.abs(w64.T))
    assert np.all(np.abs(dX - np.where(X > 0, g, 0)) <= gbound + 1e-30)
    assert np.all(dX[X <= 0] == 0)

    W2, b2, lr = W.copy(), b.copy(), 0.01
    _core.dense_update(W2, b2, X, dZ, lr)
    grad = x64.T @ dZ.astype(np.float64)
    ubound = lr * 2.0 * M * EPS32 * (np.abs(x64.T) @ np.abs(dZ.astype(np.float64)))
    assert np.all(np.abs(W2 - (w64 - lr * grad)) <= ubound + 2 * EPS32 * np.abs(w64))


def test_layer_kernels_identical_bits_on_every_path():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 784)).astype(np.float32)
    W = rng.standard_normal((784, 64)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    dZ = rng.standard_normal((200, 64)).astype(np.float32)
    digests = set()
    for isa in AVAILABLE:
        for threads in (1, 2, 3):
            _core.set_isa(isa)
            _core.set_num_threads(threads)
            out = np.empty((200, 64), np.float32)
            dX = np.empty((200, 784), np.float32)
            W2, b2 = W.copy(), b.copy()
            vW, vb = np.ones_like(W), np.ones_like(b)
            _core.dense_forward(X, W, b, out, True)
            _core.dense_backward_input(dZ, W, X, dX)
            _core.dense_update(W2, b2, X, dZ, 0.01, alpha=1e-4, momentum=0.9, nesterov=True,
                               vW=vW, vb=vb)
            h = hashlib.sha256()
            for a in (out, dX, W2, b2, vW, vb):
                h.update(a.tobytes())
            digests.add(h.hexdigest())
    assert len(digests) == 1


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_passes_of_a_few_rows_give_the_same_bits_call_after_call(isa, threads, use_isa):
    # Passes of up to 16 rows take their weight panels upwards and downwards in turn
    # (mlp_step.c, columns_downwards), each thread over its own share of the columns, which
    # may start or end inside a panel. Consecutive calls take both directions: every one must
    # give the bits of the single-layer products, which always go upwards.
    use_isa(isa, threads)
    rng = np.random.default_rng(41)
    for sizes in [(784, 512, 256, 10), (300, 333, 200, 75), (90, 1000, 7)]:
        net = _core.Network(sizes, 16)
        net.set_weights([a for n_in, n_out in zip(sizes[:-1], sizes[1:])
                         for a in (rng.normal(0, (2 / n_in) ** 0.5, (n_in, n_out)),
                                   rng.normal(0, 0.1, n_out))])
        params = net.get_weights()
        for rows in (1, 2, 5, 16, 17):
            X = rng.uniform(0, 1, (rows, sizes[0])).astype(np.float32)
            expected = X
            for l in range(0, len(params), 2):
                out = np.empty((rows, params[l].shape[1]), np.float32)
                _core.dense_forward(expected, params[l], params[l + 1], out,
                                    l + 2 < len(params))
                expected = out
            for _ in range(3):
                assert np.array_equal(net.forward(X), expected)


# ---- a short training run in fresh processes: every ISA x 1 and 2 threads ----

TRAIN_SCRIPT = textwrap.dedent(r"""
    import hashlib, numpy as np
    from fastmlp import _core
    rng = np.random.default_rng(0)
    h = hashlib.sha256()
    losses = []
    # The MNIST network, widths that cut the weights' 64-column panels unevenly, and an input
    # wider than the forward product's K block (all big enough for a team of threads:
    # mlp_step.c's team_for).
    for sizes in ((784, 512, 256, 10), (170, 330, 75, 3), (1100, 90, 3)):
        net = _core.Network(sizes, 200, momentum=True)
        weights = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            weights += [rng.normal(0, (2 / n_in) ** 0.5, (n_in, n_out)),
                        rng.normal(0, 0.01, n_out)]
        net.set_weights(weights)
        X = rng.random((400, sizes[0]), dtype=np.float32)
        y = rng.integers(0, sizes[-1], 400).astype(np.int32)
        for step in range(4):
            rows = slice(200 * (step % 2), 200 * (step % 2) + 200 - 17 * (step == 3))
            losses.append(net.train_step(X[rows], y[rows], 0.05,
                                         loss="cross_entropy" if step % 2 else "mse",
                                         alpha=1e-4 * (step >= 2), momentum=0.9 * (step >= 1),
                                         nesterov=step == 3))
        # A shuffled batch, gathered by the step's threads (mlp_step.c).
        losses.append(net.train_step_rows(X, y, rng.permutation(400)[:200], 0.05, momentum=0.9))
        for w in net.get_weights() + net.get_velocity():
            h.update(w.tobytes())
        h.update(net.forward(X[:33]).tobytes())
        h.update(net.forward(X[:1]).tobytes())
        # Many rows: block by block (mlp_step.c) on 1-3 threads, or on 1 thread only.
        many = rng.random((3001, sizes[0]), dtype=np.float32)
        h.update(net.forward(many).tobytes())
        h.update(net.forward(many[:1500]).tobytes())
    # The output layer by rows, each thread its own (mlp_step.c): no hidden layer; more rows
    # than the step's loss slots (several rows a slot); so few rows that a thread has none.
    for sizes, batch in (((3000, 64), 200), ((100, 60, 3), 2101), ((3000, 2000, 10), 5)):
        net = _core.Network(sizes, batch)
        net.set_weights([a for n_in, n_out in zip(sizes[:-1], sizes[1:])
                         for a in (rng.normal(0, (2 / n_in) ** 0.5, (n_in, n_out)),
                                   rng.normal(0, 0.01, n_out))])
        X = rng.random((batch, sizes[0]), dtype=np.float32)
        y = rng.integers(0, sizes[-1], batch).astype(np.int32)
        for step in range(2):
            losses.append(net.train_step(X, y, 0.05, loss="cross_entropy" if step else "mse"))
        for w in net.get_weights():
            h.update(w.tobytes())
    info = _core.build_info()
    print(info["isa"], info["n_threads"], h.hexdigest(), repr(losses))
""")


def test_training_is_bit_identical_on_every_isa_and_thread_count():
    runs = {}
    for isa in ISAS:
        if isa not in AVAILABLE:
            continue
        # A build without OpenMP (Apple's clang has none) runs one thread whatever is asked.
        for threads in ("1", "2", "3") if _core.build_info()["openmp"] else ("1",):
            env = dict(os.environ, FASTMLP_ISA=isa, OMP_NUM_THREADS=threads)
            out = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT], capture_output=True,
                                 text=True, env=env, timeout=600)
            assert out.returncode == 0, out.stderr
            got_isa, got_threads, digest, losses = out.stdout.split(" ", 3)
            assert got_isa == isa
            assert got_threads == threads
            runs[(isa, threads)] = (digest, losses.strip())
    assert len(runs) >= 2
    assert len(set(runs.values())) == 1, runs
