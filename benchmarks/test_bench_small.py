"""A small network (64 -> 32 -> 3), where the cost of a call, not arithmetic, sets the pace:
one training step on 200 samples and predicting one sample, fastmlp vs NumPy vs PyTorch.

Run: pytest benchmarks/test_bench_small.py --benchmark-only
"""
import numpy as np
import pytest

from contenders import BATCH, FastmlpTrainer, NumpyTrainer, TorchTrainer, available_trainers

SMALL = (64, 32, 3)
TRAINERS = {t.name: t for t in available_trainers()}
ALL = [FastmlpTrainer.name, NumpyTrainer.name, TorchTrainer.name]


def _trainer(name):
    if name not in TRAINERS:
        pytest.skip(f"{name} is not installed")
    return TRAINERS[name](sizes=SMALL)


@pytest.fixture(scope="module")
def small_batch():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(BATCH, SMALL[0])).astype(np.float32)
    y = rng.integers(0, SMALL[-1], size=BATCH).astype(np.int32)
    return X, y


@pytest.mark.parametrize("name", ALL)
def test_small_train_step(benchmark, name, small_batch):
    trainer = _trainer(name)
    benchmark.group = "small network 64-32-3: training step (batch 200)"
    benchmark.pedantic(trainer.step, args=small_batch, rounds=200, iterations=10,
                       warmup_rounds=10)


@pytest.mark.parametrize("name", ALL)
def test_small_predict_one(benchmark, name, small_batch):
    trainer = _trainer(name)
    X = small_batch[0][:1].copy()
    benchmark.group = "small network 64-32-3: predict 1 sample"
    benchmark.pedantic(trainer.predict, args=(X,), rounds=200, iterations=10, warmup_rounds=10)
