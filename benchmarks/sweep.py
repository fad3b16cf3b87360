"""A training step over many network shapes, fastmlp against PyTorch, interleaved.

    python benchmarks/sweep.py [--rounds 3] [--threads 2] [--quick | --only N [N ...]]
                               [--plot sweep.png] [--csv sweep.csv]
    python benchmarks/sweep.py --table-from sweep.csv [--plot sweep.png]

Each row is one network (input, hidden..., output widths) and batch size, trained with the
tutorial's step: MSE on one-hot targets, plain SGD, ReLU, on dense random data (every term of
every product is computed; no blank pixels to skip). Per round, each contender runs the same
number of steps in turn (the order alternating from round to round); a row reports the median
step time of each, the GFLOP/s counting the full flops of the step's products
(`fastmlp.reference.flops_per_step`: forward, weight gradient, and input gradient of every
layer but the first), the % of the FP32 peak measured on the same threads, the ratio of
fastmlp's time to PyTorch's (median of the per-round ratios) and fastmlp's 2-thread over
1-thread speed-up. `--plot` draws GFLOP/s against the step's flops for both.

`--only` runs the rows of those numbers (1-based, in SHAPES' order), and `--csv` appends each
row, with the peak probed for it, to a CSV file; `--table-from` prints the table and draws the
plot from such a file without measuring. sweep_one_l3.sh uses them to run each row while the
two cores share an L3.
"""
import argparse
import csv
import statistics
import sys
import time

from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402

from contenders import LR, TorchTrainer, initial_weights  # noqa: E402
from fastmlp import _core  # noqa: E402
from fastmlp.reference import flops_per_step  # noqa: E402

# (name, sizes, batch): the table, then widths, depths, batches, inputs and outputs
SHAPES = [
    ("tutorial", (784, 512, 256, 10), 200),
    ("tutorial, batch 32", (784, 512, 256, 10), 32),
    ("tutorial, batch 1024", (784, 512, 256, 10), 1024),
    ("784-64-10", (784, 64, 10), 200),
    ("wide 784-2048-2048-10", (784, 2048, 2048, 10), 200),
    ("deep 784-512x6-10", (784,) + (512,) * 6 + (10,), 200),
    ("tabular 64-256-256-2", (64, 256, 256, 2), 256),
] + [
    (f"width {w}", (784, w, w, 10), 200) for w in (128, 256, 1024, 4096)
] + [
    (f"{d} hidden of 512", (784,) + (512,) * d + (10,), 200) for d in (1, 2, 4, 8)
] + [
    (f"batch {b}", (784, 512, 256, 10), b) for b in (1, 8, 128, 512, 4096)
] + [
    (f"input {n}", (n, 512, 256, 10), 200) for n in (8, 64, 256, 1024, 4096)
] + [
    (f"output {n}", (784, 512, 256, n), 200) for n in (1, 2, 32, 100, 1000)
]

QUICK = {"tutorial", "784-64-10", "wide 784-2048-2048-10", "deep 784-512x6-10",
         "tabular 64-256-256-2"}


class FastmlpStep:
    """fastmlp's training step on a network of its own (batches up to `batch`), on `threads`."""
    def __init__(self, sizes, batch, weights, biases, threads):
        self.net = _core.Network(sizes, batch)
        self.net.set_weights([a for pair in zip(weights, biases) for a in pair])
        self.threads = threads

    def __call__(self, X, y):
        return self.net.train_step(X, y, LR, n_threads=self.threads)


def seconds_per_step(step, X, y, n):
    step(X, y)   # warm: first-touch of buffers, thread pools
    start = time.perf_counter()
    for _ in range(n):
        step(X, y)
    return (time.perf_counter() - start) / n


def steps_for(flop, target_seconds=0.25, assumed_gflops=100.0):
    """Steps of a round: about target_seconds of work at assumed_gflops, 3 to 2000."""
    return int(min(2000, max(3, target_seconds * assumed_gflops * 1e9 / flop)))


def measure(shapes, rounds, threads, peak):
    """The rows of the table for `shapes`: (name, sizes, batch, flop, fastmlp s, PyTorch s,
    ratio, 2T/1T, threads, peak)."""
    rows = []
    for name, sizes, batch in shapes:
        rng = np.random.default_rng(0)
        X = rng.uniform(0, 1, size=(batch, sizes[0])).astype(np.float32)
        y = rng.integers(0, sizes[-1], size=batch).astype(np.int32)
        weights, biases = initial_weights(sizes=sizes)
        flop = flops_per_step(list(sizes), batch)
        n = steps_for(flop)
        contenders = [("fastmlp", FastmlpStep(sizes, batch, weights, biases, threads)),
                      ("pytorch", TorchTrainer(threads, sizes).step)]
        one_thread = FastmlpStep(sizes, batch, weights, biases, 1)
        times = {name: [] for name, _ in contenders}
        single = []
        for r in range(rounds):
            for who, step in contenders if r % 2 == 0 else contenders[::-1]:
                times[who].append(seconds_per_step(step, X, y, n))
            single.append(seconds_per_step(one_thread, X, y, n))
        f, t = statistics.median(times["fastmlp"]), statistics.median(times["pytorch"])
        ratio = statistics.median(a / b for a, b in zip(times["fastmlp"], times["pytorch"]))
        scaling = statistics.median(s / a for s, a in zip(single, times["fastmlp"]))
        rows.append((name, sizes, batch, flop, f, t, ratio, scaling, threads, peak))
        print(f"{name}: fastmlp {f * 1e6:.0f} us, pytorch {t * 1e6:.0f} us", file=sys.stderr)
    return rows


CSV_COLUMNS = ["network", "sizes", "batch", "flop", "fastmlp_s", "pytorch_s", "ratio",
               "scaling", "threads", "peak_gflops"]


def append_csv(path, rows):
    new = not Path(path).exists() or Path(path).stat().st_size == 0
    with open(path, "a", newline="") as out:
        writer = csv.writer(out)
        if new:
            writer.writerow(CSV_COLUMNS)
        for name, sizes, *rest in rows:
            writer.writerow([name, "-".join(map(str, sizes))] + rest)


def read_csv(path):
    with open(path, newline="") as f:
        lines = list(csv.reader(f))
    if not lines or lines[0] != CSV_COLUMNS:
        raise SystemExit(f"{path}: not a CSV written by sweep.py --csv")
    return [(name, tuple(int(w) for w in sizes.split("-")), int(batch), float(flop), float(fs),
             float(ts), float(ratio), float(scaling), int(threads), float(peak))
            for name, sizes, batch, flop, fs, ts, ratio, scaling, threads, peak in lines[1:]]


def print_table(rows, rounds=None):
    peaks = sorted({round(r[9]) for r in rows})
    threads = sorted({r[8] for r in rows})
    peak_text = f"{peaks[0]}" if len(peaks) == 1 else f"{peaks[0]}-{peaks[-1]}"
    print(f"{'/'.join(map(str, threads))} threads, FP32 peak {peak_text} GFLOP/s (probed)"
          + (f", {rounds} rounds" if rounds else "") + f", ISA {_core.build_info()['isa']}\n")
    print("| network | batch | MFLOP/step | fastmlp us | GFLOP/s | % of peak | PyTorch us | "
          "PyTorch GFLOP/s | fastmlp / PyTorch | 2T / 1T |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, sizes, batch, flop, f, t, ratio, scaling, _, peak in rows:
        print(f"| {name} ({'-'.join(map(str, sizes))}) | {batch} | {flop / 1e6:.1f} "
              f"| {f * 1e6:.0f} | {flop / f / 1e9:.0f} | {100 * flop / f / 1e9 / peak:.0f}% "
              f"| {t * 1e6:.0f} | {flop / t / 1e9:.0f} | {ratio:.2f}x | {scaling:.2f}x |")


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    flops = [r[3] for r in rows]
    peak = max(r[9] for r in rows)
    threads = "/".join(str(t) for t in sorted({r[8] for r in rows}))
    ax.scatter(flops, [r[3] / r[4] / 1e9 for r in rows], label="fastmlp")
    ax.scatter(flops, [r[3] / r[5] / 1e9 for r in rows], marker="x", label="PyTorch")
    ax.axhline(peak, linestyle="--", color="gray", label=f"FP32 peak ({peak:.0f})")
    ax.set_xscale("log")
    ax.set_xlabel("flops of one training step")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(f"Training step, {threads} threads")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="the issue's table's shapes only")
    parser.add_argument("--only", nargs="+", type=int, metavar="N",
                        help=f"the rows of these numbers only (1-{len(SHAPES)})")
    parser.add_argument("--plot", help="write GFLOP/s against the step's flops to this image")
    parser.add_argument("--csv", help="append the rows to this CSV file")
    parser.add_argument("--table-from", metavar="CSV",
                        help="print the table (and --plot) from a CSV of earlier runs")
    args = parser.parse_args()
    if args.table_from:
        rows = read_csv(args.table_from)
        print_table(rows)
        if args.plot:
            plot(rows, args.plot)
        return
    if args.only and not all(1 <= i <= len(SHAPES) for i in args.only):
        parser.error(f"--only takes row numbers from 1 to {len(SHAPES)}")
    shapes = [s for i, s in enumerate(SHAPES, 1)
              if (not args.quick or s[0] in QUICK) and (not args.only or i in args.only)]
    peak = max(_core.peak_gflops(args.threads) for _ in range(3))
    rows = measure(shapes, args.rounds, args.threads, peak)
    print_table(rows, args.rounds)
    if args.csv:
        append_csv(args.csv, rows)
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
