"""Training speed: one step and one epoch of the tutorial's model, and one step of a small
network (where the cost of a call sets the pace), fastmlp vs NumPy vs PyTorch.

A shuffled batch (shuffle=True) is gathered by fastmlp's step threads (train_step_rows); the
"gathered by NumPy" row is the same step on a copy X[rows] made first, as before. The
"real MNIST digits" epoch runs on the tutorial's data from FASTMLP_DATA.

Run: pytest benchmarks --benchmark-only  (PyTorch rows appear when torch is installed:
pip install torch==2.13.0 for the CPU build).
"""
import itertools

import numpy as np
import pytest

from contenders import (BATCH, SIZES, SMALL, FastmlpTrainer, NumpyTrainer, TorchTrainer,
                        available_trainers, mnist_like)
from fastmlp.reference import flops_per_step

STEP_FLOP = flops_per_step(list(SIZES), BATCH)
TRAINERS = {t.name: t for t in available_trainers()}
ALL = [FastmlpTrainer.name, NumpyTrainer.name, TorchTrainer.name]


def _trainer(name, sizes=SIZES):
    if name not in TRAINERS:
        pytest.skip(f"{name} is not installed")
    return TRAINERS[name](sizes=sizes)


def _report(benchmark, flop, peak):
    seconds = benchmark.stats.stats.median
    gflops = flop / seconds / 1e9
    benchmark.extra_info["GFLOP/s"] = round(gflops, 1)
    if peak:
        benchmark.extra_info["% of peak"] = round(100 * gflops / peak, 1)


@pytest.mark.parametrize("name", ALL)
def test_train_step(benchmark, name, batch, peak_gflops):
    trainer = _trainer(name)
    X, y = batch
    benchmark.group = "training step (batch 200)"
    benchmark.pedantic(trainer.step, args=(X, y), rounds=30, iterations=3, warmup_rounds=2)
    _report(benchmark, STEP_FLOP, peak_gflops)


@pytest.mark.parametrize("name", ALL)
def test_small_network_train_step(benchmark, name):
    trainer = _trainer(name, SMALL)
    benchmark.group = "training step, small network 64-32-3 (batch 200)"
    benchmark.pedantic(trainer.step, args=mnist_like(BATCH, sizes=SMALL), rounds=200,
                       iterations=10, warmup_rounds=10)


EPOCH_GROUPS = {"data": "training epoch (60000 samples)",
                "digits": "training epoch, real MNIST digits (FASTMLP_DATA)"}


@pytest.mark.parametrize("inputs", list(EPOCH_GROUPS))
@pytest.mark.parametrize("name", ALL)
def test_train_epoch(benchmark, request, name, inputs, peak_gflops):
    # "digits": the tutorial's own data, on which fastmlp's first layer skips the pixels blank
    # in every row of a tile of 12 rows (gemm.h, tile_steps); GFLOP/s still count every
    # product's full flops.
    trainer = _trainer(name)
    X, y = request.getfixturevalue(inputs)
    benchmark.group = EPOCH_GROUPS[inputs]
    benchmark.pedantic(trainer.epoch, args=(X, y), rounds=3, iterations=1, warmup_rounds=1)
    _report(benchmark, STEP_FLOP * 300, peak_gflops)


GATHERED_BY_NUMPY = "fastmlp, batch gathered by NumPy"


@pytest.mark.parametrize("name", ALL + [GATHERED_BY_NUMPY])
def test_train_step_shuffled(benchmark, name, data, peak_gflops):
    trainer = _trainer(FastmlpTrainer.name if name == GATHERED_BY_NUMPY else name)
    X, y = data
    order = np.random.default_rng(0).permutation(len(X))
    starts = itertools.cycle(range(0, len(X) - BATCH + 1, BATCH))

    def step():   # each call the next batch of the permutation, as in a shuffled epoch
        start = next(starts)
        rows = order[start:start + BATCH]
        if name == GATHERED_BY_NUMPY:
            return trainer.step(X[rows], y[rows])
        return trainer.step_rows(X, y, rows)

    benchmark.group = "training step, shuffled batch (batch 200)"
    benchmark.pedantic(step, rounds=30, iterations=3, warmup_rounds=2)
    _report(benchmark, STEP_FLOP, peak_gflops)
