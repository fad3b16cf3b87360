"""Predicting from Python with two builds of fastmlp, alternated process by process.

A change to the C or Cython code under a prediction is judged against the code before it:
build each in a directory of its own (`python setup.py build_ext --inplace` in a checkout of
each), then

    FASTMLP_DATA=../shared/data/mnist python benchmarks/predict_ab.py OLD_DIR NEW_DIR

Each round runs one process per build, in turn (the order swapped every round), and each
process times, after a warm-up, one sample at a time in loops of 2000 calls (the first test
digit again and again, 2000 test digits one after another, a random row in [0, 1)) and, with
--many, 10,000 rows at once (the test digits, random rows) in loops of 5 calls. What is timed
is `Network.forward`, or with --through model `MLPClassifier.predict` (input checks, labels and
all) on a model holding the same weights. The result (alternate.report): the medians of the
times, and the median of the per-round ratios NEW / OLD with quartiles. Without FASTMLP_DATA
only the random rows are timed. The same weights (Glorot, seed 0) in both, on 2 threads unless
--threads says otherwise.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

from alternate import report

MEASURE = r"""
import json, os, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
from fastmlp import _core
if not os.path.abspath(_core.__file__).startswith(os.path.abspath(sys.argv[2]) + os.sep):
    sys.exit(f"imported {_core.__file__}, not the build in {sys.argv[2]}")
from contenders import FastmlpTrainer, mnist_digits
threads, through, many = int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
_core.set_num_threads(threads)
trainer = FastmlpTrainer()
call = trainer.model.predict if through == "model" else trainer.net.forward
rng = np.random.default_rng(0)
rows = {"random row": [rng.uniform(0, 1, (1, 784)).astype(np.float32)]}
test = mnist_digits()[2] if os.environ.get("FASTMLP_DATA") else None
if test is not None:
    rows["first test digit"] = [test[:1].copy()]
    rows["2000 test digits in turn"] = [test[i:i + 1].copy() for i in range(2000)]
if many:
    if test is not None:
        rows["10,000 test digits at once"] = [np.ascontiguousarray(test[:10000])]
    rows["10,000 random rows at once"] = [rng.uniform(0, 1, (10000, 784)).astype(np.float32)]
times = {}
for name, xs in rows.items():
    n_calls = 5 if len(xs[0]) > 1 else 2000
    for x in xs[:min(50, n_calls)]:
        call(x)
    calls = xs * (n_calls // len(xs))
    start = time.perf_counter()
    for x in calls:
        call(x)
    per_call = (time.perf_counter() - start) / len(calls)
    times[name] = per_call * (1e3 if len(xs[0]) > 1 else 1e6)
print(json.dumps(times))
"""


def measure(build_dir, threads, through, many):
    here = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run([sys.executable, "-c", MEASURE, here, build_dir, str(threads), through,
                           "1" if many else "0"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"measuring {build_dir} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="a directory holding a built fastmlp package (the base)")
    parser.add_argument("new", help="the same for the code to judge")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--through", choices=["network", "model"], default="network",
                        help="time Network.forward (default) or MLPClassifier.predict")
    parser.add_argument("--many", action="store_true", help="also 10,000 rows at once")
    args = parser.parse_args()
    for d in (args.old, args.new):
        if not os.path.isdir(os.path.join(d, "fastmlp")):
            parser.error(f"{d} holds no fastmlp package")
    runs = {"old": [], "new": []}
    for r in range(args.rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for which in order:
            runs[which].append(measure(getattr(args, which), args.threads, args.through,
                                       args.many))
    what = "Network.forward" if args.through == "network" else "MLPClassifier.predict"
    print(f"{what}, {args.threads} threads, {args.rounds} rounds alternated process by process "
          f"(one row: us a call; 10,000 rows: ms a call)")
    for name in runs["old"][0]:
        print(f"{name}:")
        times = np.array([[r[name] for r in runs[which]] for which in ("old", "new")])
        report(["old", "new"], times, base=0, unit=1,
               unit_name="ms" if name.startswith("10,000") else "us")


if __name__ == "__main__":
    main()
