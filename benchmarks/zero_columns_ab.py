"""Real MNIST digits against the same digits with no zero column, alternated in one process:
what skipping the columns that are zero in every row of a batch (src_c/zero_runs.h) saves in
the first layer, for a training step, a 10,000-row prediction and a one-digit prediction.

    FASTMLP_DATA=<dir of the MNIST files> python benchmarks/zero_columns_ab.py [--rounds 100]
        [--threads 2]

The second kind of input is the first plus 1e-6 wherever a pixel is 0, so no column is zero
anywhere and nothing is skipped; the arithmetic is otherwise the same. Training runs on two
networks with the same initial weights, each stepping through the 60,000 training digits in
order; predictions run on the 10,000 test digits, and on one test digit after another.
Prints medians and the per-round ratios of digits to digits-without-zeros (< 1: faster).
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402

from alternate import alternate, report  # noqa: E402
from contenders import BATCH, LR, FastmlpTrainer, mnist_digits  # noqa: E402
from fastmlp import _core  # noqa: E402

NAMES = ("MNIST digits", "the digits, no zero column")


def without_zeros(X):
    return np.where(X == 0, np.float32(1e-6), X).astype(np.float32)


def cycling_blocks(inputs, rows, make_work):
    """One block per input: a call of it runs work(start) `calls` times, each on the next
    `rows` rows of that input (from the start again at its end), where work = make_work(X),
    and returns the seconds taken."""
    def kind(X):
        work = make_work(X)
        position = [0]

        def run(calls):
            start_time = time.perf_counter()
            for _ in range(calls):
                start = position[0] if position[0] + rows <= len(X) else 0
                position[0] = start + rows
                work(start)
            return time.perf_counter() - start_time
        return run
    return [kind(X) for X in inputs]


def train_on(y):
    """Steps of a fresh network of its own on the rows of X from start."""
    def make_work(X):
        net = FastmlpTrainer().net
        return lambda start: net.train_step(X[start:start + BATCH], y[start:start + BATCH], LR)
    return make_work


def predict_with(net, rows):
    return lambda X: (lambda start: net.forward(X[start:start + rows]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        _core.set_num_threads(args.threads)
    X, y, X_test = mnist_digits()
    train_inputs, test_inputs = (X, without_zeros(X)), (X_test, without_zeros(X_test))
    zero_columns = (X[:60000 // BATCH * BATCH].reshape(-1, BATCH, X.shape[1]) == 0).all(axis=1)
    print(f"{_core.build_info()['isa']}, {_core.get_num_threads()} threads, {args.rounds} rounds; "
          f"a batch of {BATCH} digits has {zero_columns.sum(axis=1).mean():.0f} of "
          f"{X.shape[1]} columns zero in every row (mean)")
    predictor = FastmlpTrainer().net
    for title, blocks, steps, rounds in (
            ("training step, batch 200", cycling_blocks(train_inputs, BATCH, train_on(y)), 10,
             args.rounds),
            ("predict 10,000 test digits",
             cycling_blocks(test_inputs, 10000, predict_with(predictor, 10000)), 1,
             max(args.rounds // 5, 5)),
            ("predict 1 digit", cycling_blocks(test_inputs, 1, predict_with(predictor, 1)), 200,
             args.rounds)):
        print(f"\n{title}:")
        report(NAMES, alternate(blocks, rounds, steps=steps), base=1)


if __name__ == "__main__":
    main()
