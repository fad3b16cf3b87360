"""Side-by-side comparison for the README: contenders interleaved in one process, medians.

    python benchmarks/compare.py [--rounds 5] [--threads 2] [--data random|mnist] [--csv FILE]

Each round runs one training epoch (300 steps of 200 samples) of every contender in turn, then
predict on 10,000 samples and on 1 sample (fastmlp's through MLPClassifier.decision_function,
the user's call with its input checks), so the machine's load drifts over all of them alike.
ONNX Runtime, when installed, predicts with the same weights exported by fastmlp.onnx (its
session on the same thread count) in the same rounds; it has no epoch columns.
The data are MNIST-shaped random values (--data random, the default: every contender does all
of its arithmetic), or the real digits from FASTMLP_DATA (--data mnist: the tutorial's own
data, training digits for the epoch, test digits for the predictions, on which fastmlp skips
the pixels that are blank in every row of a tile of 12 rows, and in its update the digits
blank in every pixel of a tile of 12 pixels). Prints a Markdown table: epoch time (median),
GFLOP/s, % of the measured FP32 peak, ratio to PyTorch, predict times.

Each measurement starts after a pause (settle): the thread pools of the contender before it
keep spinning for a while after its last call (OpenBLAS's, behind the NumPy reference, for
0.1-0.2 s: 20 fastmlp steps right after one NumPy step took 2.7x as long), and would slow down
whichever contender comes next.

The ratio to PyTorch is given twice: the ratio of the median epochs, and the median of the
per-round ratios (with their range), which cancels most of the load that drifts from one
round to the next on a shared machine. The FP32 peak is probed before every round and the
highest reading is used: a probe that ran while the machine was busy says nothing about it.
"""
import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402

from contenders import (BATCH, SIZES, available_predictors, available_trainers,  # noqa: E402
                        mnist_digits, mnist_like)
from fastmlp import _core  # noqa: E402
from fastmlp.reference import flops_per_step  # noqa: E402


SETTLE_SECONDS = 0.3


def timed(fn, *args, repeat=1):
    time.sleep(SETTLE_SECONDS)   # let the previous contender's spinning threads go idle
    start = time.perf_counter()
    for _ in range(repeat):
        fn(*args)
    return (time.perf_counter() - start) / repeat


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data", choices=("random", "mnist"), default="random")
    parser.add_argument("--csv", metavar="FILE",
                        help="also append the medians to FILE (results_csv.py; figures.py draws them)")
    args = parser.parse_args()
    if args.threads:
        _core.set_num_threads(args.threads)
    if args.data == "mnist":
        X, y, X_test = mnist_digits()
    else:
        X, y = mnist_like()
        X_test = X
    X10k, X1 = X_test[:10000].copy(), X_test[:1].copy()
    trainers = [cls(args.threads) for cls in available_trainers()]
    predictors = [cls(args.threads) for cls in available_predictors()]   # no training
    probe = getattr(_core, "peak_gflops", None)
    peaks = [probe(seconds=0.3)] if probe else []
    epoch_flop = flops_per_step(list(SIZES), BATCH) * (len(X) // BATCH)
    forward_flop = sum(2 * a * b for a, b in zip(SIZES[:-1], SIZES[1:])) * len(X10k)

    epochs = {t.name: [] for t in trainers}
    p10k = {t.name: [] for t in trainers + predictors}
    p1 = {t.name: [] for t in trainers + predictors}
    for t in trainers:                      # warm-up: caches, thread pools, lazy init
        t.step(X[:BATCH], y[:BATCH])
        t.predict(X1)
    for t in predictors:
        t.predict(X1)
    for r in range(args.rounds):
        if probe:
            peaks.append(probe(seconds=0.3))
        for t in trainers:
            epochs[t.name].append(timed(t.epoch, X, y))
            p10k[t.name].append(timed(t.predict, X10k))
            p1[t.name].append(timed(t.predict, X1, repeat=2000))
        for t in predictors:
            p10k[t.name].append(timed(t.predict, X10k))
            p1[t.name].append(timed(t.predict, X1, repeat=2000))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{n} {epochs[n][-1]:.3f} s" for n in epochs), file=sys.stderr)

    peak = max(peaks) if peaks else None
    info = _core.build_info() if hasattr(_core, "build_info") else {}
    print(f"Machine: {platform.processor() or platform.machine()}, "
          f"{_core.get_num_threads()} threads; fastmlp ISA: {info.get('isa', 'n/a')}; "
          f"measured FP32 peak: {f'{peak:.0f} GFLOP/s' if peak else 'n/a'}; "
          f"{args.data} data; {args.rounds} interleaved rounds, medians.")
    if args.data == "mnist":
        print("GFLOP/s and % of peak count every product's full flops, for every contender; "
              "fastmlp skips the terms of blank pixels (in every row of a tile of 12 digits; "
              "6 with the AVX2 kernels, 4 with the portable ones).")
    print()
    print("| contender | epoch (s) | GFLOP/s | % of peak | vs PyTorch epoch | "
          "per-round ratio (range) | predict 10k (ms) | predict 10k % of peak | "
          "predict 1 (us) |")
    print("|---|---|---|---|---|---|---|---|---|")
    torch_epoch = statistics.median(epochs["pytorch"]) if "pytorch" in epochs else None
    for name in epochs:
        e = statistics.median(epochs[name])
        g = epoch_flop / e / 1e9
        g10k = forward_flop / statistics.median(p10k[name]) / 1e9
        if torch_epoch:
            ratios = [a / b for a, b in zip(epochs[name], epochs["pytorch"])]
            per_round = (f"{statistics.median(ratios):.2f}x "
                         f"({min(ratios):.2f}-{max(ratios):.2f})")
        else:
            per_round = "n/a"
        print(f"| {name} | {e:.3f} | {g:.0f} | {f'{100 * g / peak:.0f}%' if peak else 'n/a'} | "
              f"{f'{e / torch_epoch:.2f}x' if torch_epoch else 'n/a'} | {per_round} | "
              f"{1e3 * statistics.median(p10k[name]):.2f} | "
              f"{f'{100 * g10k / peak:.0f}%' if peak else 'n/a'} | "
              f"{1e6 * statistics.median(p1[name]):.1f} |")
    for t in predictors:                    # predict only: no epoch columns
        g10k = forward_flop / statistics.median(p10k[t.name]) / 1e9
        print(f"| {t.name} | n/a | n/a | n/a | n/a | n/a | "
              f"{1e3 * statistics.median(p10k[t.name]):.2f} | "
              f"{f'{100 * g10k / peak:.0f}%' if peak else 'n/a'} | "
              f"{1e6 * statistics.median(p1[t.name]):.1f} |")
    if args.csv:
        from results_csv import append_rows, cpu_name
        common = {"source": "compare.py", "case": f"784-512-256-10, {args.data} data",
                  "rounds": args.rounds, "threads": _core.get_num_threads(), "cpu": cpu_name()}
        append_rows(args.csv, [
            dict(common, contender=name, metric=metric, value=scale * statistics.median(values),
                 unit=unit)
            for metric, unit, scale, table in (("epoch", "s", 1, epochs),
                                               ("predict 10k", "ms", 1e3, p10k),
                                               ("predict 1", "us", 1e6, p1))
            for name, values in table.items() if values])
    if torch_epoch and peak and args.data != "mnist":
        # The epoch target is a ratio to PyTorch, whose share of the peak differs from
        # machine to machine: say what the ratio asks of fastmlp on this one.
        torch_share = epoch_flop / torch_epoch / 1e9 / peak
        print(f"\nPyTorch ran at {100 * torch_share:.0f}% of the peak: an epoch in 0.6x of its "
              f"time would take fastmlp {100 * torch_share / 0.6:.0f}% of the peak.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
