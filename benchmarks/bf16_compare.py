"""precision="bf16" side by side: fastmlp's bf16 and float32 steps, PyTorch's float32 and its
CPU autocast (bf16), interleaved in one process, medians and per-round ratios.

    FASTMLP_DATA=/path/to/mnist python benchmarks/bf16_compare.py [--rounds 5] [--data mnist|random]

Each round runs, for every contender in turn, one training epoch (300 steps of 200 on the
tutorial's network, 784-512-256-10, MSE, SGD at 0.001), and fastmlp's and PyTorch's
predictions of 10,000 rows. The FP32 and the bf16 peaks (fastmlp.peak_gflops: FMA chains, and
VDPBF16PS chains or their emulation) are probed before every round; the highest of each is the
yardstick. Prints a Markdown table: epoch time, GFLOP/s, % of the FP32 and of the bf16 peak,
the ratio to fastmlp's own FP32 epoch and to PyTorch's bf16 epoch (median of the per-round
ratios), predictions of 10,000 rows.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from contenders import BATCH, SIZES, FastmlpTrainer, TorchTrainer, mnist_digits, mnist_like  # noqa: E402
from fastmlp import _core  # noqa: E402
from fastmlp.reference import flops_per_step  # noqa: E402

SETTLE_SECONDS = 0.3   # the previous contender's spinning threads go idle first


def timed(fn, *args):
    time.sleep(SETTLE_SECONDS)
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data", choices=("random", "mnist"), default="mnist")
    args = parser.parse_args()
    if args.threads:
        _core.set_num_threads(args.threads)
    if args.data == "mnist":
        X, y, X_test = mnist_digits()
    else:
        X, y = mnist_like()
        X_test = X
    X10k = X_test[:10000].copy()
    contenders = {"fastmlp fp32": FastmlpTrainer(args.threads),
                  "fastmlp bf16": FastmlpTrainer(args.threads, precision="bf16")}
    try:
        contenders["pytorch fp32"] = TorchTrainer(args.threads)
        contenders["pytorch bf16 autocast"] = TorchTrainer(args.threads, bf16=True)
    except ImportError:
        print("(PyTorch is not installed: fastmlp alone)")
    epoch_flop = flops_per_step(list(SIZES), BATCH) * (len(X) // BATCH)
    forward_flop = sum(2 * a * b for a, b in zip(SIZES[:-1], SIZES[1:])) * len(X10k)
    epochs = {name: [] for name in contenders}
    p10k = {name: [] for name in contenders}
    peak32, peak16 = [], []
    for r in range(args.rounds):
        peak32.append(_core.peak_gflops(seconds=0.3))
        peak16.append(_core.peak_gflops(seconds=0.3, precision="bf16"))
        for name, c in contenders.items():
            epochs[name].append(timed(c.epoch, X, y))
            p10k[name].append(timed(c.predict, X10k))
        print(f"round {r + 1}: " + ", ".join(f"{n} {epochs[n][-1]:.3f} s" for n in contenders),
              file=sys.stderr)
    p32, p16 = max(peak32), max(peak16)
    info = _core.build_info()
    print(f"{info['isa']} kernels, bf16 on {info['bf16']}, {info['n_threads']} threads; "
          f"peaks: FP32 {p32:.0f} GFLOP/s, bf16 {p16:.0f} GFLOP/s; {args.data} data, "
          f"{args.rounds} rounds\n")

    def ratio(a, b):
        values = [x / y for x, y in zip(epochs[a], epochs[b])]
        return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"

    print("| contender | epoch (s) | GFLOP/s | % FP32 peak | % bf16 peak | vs fastmlp fp32 "
          "| vs PyTorch bf16 | predict 10,000 (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in contenders:
        e = statistics.median(epochs[name])
        g = epoch_flop / e / 1e9
        vs_torch = ratio(name, "pytorch bf16 autocast") if "pytorch bf16 autocast" in contenders \
            else "n/a"
        print(f"| {name} | {e:.3f} | {g:.0f} | {100 * g / p32:.0f}% | {100 * g / p16:.0f}% "
              f"| {ratio(name, 'fastmlp fp32')} | {vs_torch} "
              f"| {1e3 * statistics.median(p10k[name]):.1f} |")
    print(f"\nforward flops of 10,000 rows: {forward_flop / 1e9:.1f} GFLOP")


if __name__ == "__main__":
    main()
