"""A shuffled training step two ways, alternated in one process: the batch gathered by the
step's own threads (``Network.train_step_rows``, what ``MLP(shuffle=True)`` runs) against the
same step on a copy ``X[rows]`` made by NumPy first (what it ran before), with the ordered
step (a slice, no gather) for scale.

    python benchmarks/shuffled_ab.py [--rounds 200] [--threads 2]

Each round runs a block of 10 steps of each kind in turn, every step on the next 200 rows of
one permutation of 60,000 MNIST-shaped rows. Prints the median step time of each kind and the
median of the per-round ratios to the NumPy gather, with its quartiles: on a shared machine
only ratios of blocks run next to each other mean anything.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402

from alternate import alternate, report  # noqa: E402
from contenders import BATCH, LR, FastmlpTrainer, mnist_like  # noqa: E402
from fastmlp import _core  # noqa: E402

BLOCK_STEPS = 10
KINDS = ("ordered slice", "gathered by NumPy", "gathered by the step")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        _core.set_num_threads(args.threads)
    X, y = mnist_like()
    net = FastmlpTrainer().net
    order = np.random.default_rng(0).permutation(len(X))
    position = [0]

    def block(kind):
        def run(steps):
            start_time = time.perf_counter()
            for _ in range(steps):
                start = position[0] if position[0] + BATCH <= len(X) else 0
                position[0] = start + BATCH
                rows = order[start:start + BATCH]
                if kind == 0:
                    net.train_step(X[start:start + BATCH], y[start:start + BATCH], LR)
                elif kind == 1:
                    net.train_step(X[rows], y[rows], LR)
                else:
                    net.train_step_rows(X, y, rows, LR)
            return time.perf_counter() - start_time
        return run

    times = alternate([block(k) for k in range(len(KINDS))], args.rounds, steps=BLOCK_STEPS)
    print(f"{_core.build_info()['isa']}, {_core.get_num_threads()} threads, {args.rounds} rounds "
          f"of {BLOCK_STEPS} steps per kind")
    report(KINDS, times, base=1)


if __name__ == "__main__":
    main()
