"""Inference: predicting 10,000 samples and a single sample (latency, Python call included), the
latter for the tutorial's network and a small one."""
import numpy as np
import pytest

from contenders import SIZES, SMALL, FastmlpTrainer, NumpyTrainer, TorchTrainer, available_trainers

TRAINERS = {t.name: t for t in available_trainers()}
ALL = [FastmlpTrainer.name, NumpyTrainer.name, TorchTrainer.name]
FORWARD_FLOP_PER_SAMPLE = sum(2 * a * b for a, b in zip(SIZES[:-1], SIZES[1:]))


def _trainer(name, sizes=SIZES):
    if name not in TRAINERS:
        pytest.skip(f"{name} is not installed")
    return TRAINERS[name](sizes=sizes)


@pytest.mark.parametrize("name", ALL)
def test_predict_10k(benchmark, name, data, peak_gflops):
    trainer = _trainer(name)
    X = data[0][:10000].copy()
    benchmark.group = "predict 10,000 samples"
    benchmark.pedantic(trainer.predict, args=(X,), rounds=10, iterations=1, warmup_rounds=1)
    gflops = FORWARD_FLOP_PER_SAMPLE * 10000 / benchmark.stats.stats.median / 1e9
    benchmark.extra_info["GFLOP/s"] = round(gflops, 1)
    if peak_gflops:
        benchmark.extra_info["% of peak"] = round(100 * gflops / peak_gflops, 1)


@pytest.mark.parametrize("sizes", [SIZES, SMALL], ids=["mnist", "small"])
@pytest.mark.parametrize("name", ALL)
def test_predict_one(benchmark, name, sizes):
    trainer = _trainer(name, sizes)
    X = np.random.default_rng(0).uniform(0, 1, size=(1, sizes[0])).astype(np.float32)
    benchmark.group = f"predict 1 sample, network {'-'.join(map(str, sizes))}"
    benchmark.pedantic(trainer.predict, args=(X,), rounds=200, iterations=10, warmup_rounds=10)
