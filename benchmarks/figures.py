"""Draw the side-by-side speeds that compare.py / sklearn_compare.py wrote with --csv.

    python benchmarks/compare.py --rounds 9 --data mnist --csv speeds.csv
    python benchmarks/sklearn_compare.py --rounds 3 --csv speeds.csv
    python benchmarks/figures.py speeds.csv --out docs/figures/speeds.png

One panel per (case, metric), one bar per contender the file holds (fastmlp, PyTorch, NumPy,
Keras, scikit-learn, ONNX Runtime, ... whichever ran), with its median and its ratio to
fastmlp's. Shorter is faster. The machine, threads and rounds the rows name go under the
figure. Needs matplotlib.
"""
import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from results_csv import read_rows  # noqa: E402

COLUMNS = 3


def is_fastmlp(contender):
    return contender.startswith("fastmlp")


def number(value):
    """Three significant digits, without an exponent."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def panels(rows, metrics=None):
    """{(case, metric, unit): {contender: value}}, in the order the rows come."""
    out = {}
    for row in rows:
        if metrics and row["metric"] not in metrics:
            continue
        out.setdefault((row["case"], row["metric"], row["unit"]), {})[row["contender"]] = row["value"]
    return out


def draw(rows, path, metrics=None, title=None):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = panels(rows, metrics)
    if not groups:
        raise SystemExit("no rows to draw")
    contenders = list(dict.fromkeys(c for g in groups.values() for c in g))
    colours = {c: f"C{i % 10}" for i, c in enumerate(contenders)}
    ncols = min(COLUMNS, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    height = max(1.2, 0.45 * max(len(g) for g in groups.values()) + 1.0)
    fig = Figure(figsize=(5.0 * ncols, height * nrows + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, ((case, metric, unit), values) in zip(axes, groups.items()):
        names = list(values)
        base = next((values[n] for n in names if is_fastmlp(n)), None)
        ax.barh(range(len(names)), [values[n] for n in names],
                color=[colours[n] for n in names])
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        for i, n in enumerate(names):
            label = f" {number(values[n])} {unit}"
            if base and not is_fastmlp(n):
                label += f" ({values[n] / base:.1f}x fastmlp)"
            ax.text(values[n], i, label, va="center", fontsize=8)
        ax.set_xlim(0, max(values.values()) * 1.6)
        ax.set_xlabel(f"{metric} ({unit}), shorter is faster")
        ax.set_title(case, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[len(groups):]:
        ax.set_visible(False)
    machines = sorted({f"{r['cpu']}, {r['threads']} threads, median of {r['rounds']} rounds"
                       for r in rows})
    fig.suptitle(title or "fastmlp side by side", fontsize=11)
    fig.supxlabel("; ".join(machines), fontsize=8, color="0.3")
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="+", help="files written by --csv")
    parser.add_argument("--out", default="speeds.png", help="the image file (.png, .svg, ...)")
    parser.add_argument("--metric", nargs="*", help="draw only these metrics (e.g. epoch 'predict 1')")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    rows = [row for path in args.csv for row in read_rows(path)]
    draw(rows, args.out, set(args.metric or ()), args.title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
