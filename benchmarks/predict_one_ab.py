"""Predicting one sample from Python with two builds of fastmlp, alternated process by process.

A change to the C or Cython code under a one-sample prediction is judged against the code
before it: build each in a directory of its own (`python setup.py build_ext --inplace` in a
checkout of each), then

    FASTMLP_DATA=../shared/data/mnist python benchmarks/predict_one_ab.py OLD_DIR NEW_DIR

Each round runs one process per build, in turn (the order swapped every round), and each
process times `Network.forward` on one row, in loops of 2000 calls after a warm-up: the first
test digit again and again, 2000 test digits one after another, and a random row in [0, 1).
The result (alternate.report): the medians of the times, and the median of the per-round
ratios NEW / OLD with quartiles. Without FASTMLP_DATA only the random row is timed. The same weights (Glorot, seed
0) in both, on 2 threads unless --threads says otherwise.
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
_core.set_num_threads(int(sys.argv[3]))
trainer = FastmlpTrainer()
forward = trainer.net.forward
rows = {"random row": [np.random.default_rng(0).uniform(0, 1, (1, 784)).astype(np.float32)]}
if os.environ.get("FASTMLP_DATA"):
    test = mnist_digits()[2]
    rows["first test digit"] = [test[:1].copy()]
    rows["2000 test digits in turn"] = [test[i:i + 1].copy() for i in range(2000)]
times = {}
for name, xs in rows.items():
    for x in xs[:50]:
        forward(x)
    calls = xs * (2000 // len(xs))
    start = time.perf_counter()
    for x in calls:
        forward(x)
    times[name] = (time.perf_counter() - start) / len(calls) * 1e6
print(json.dumps(times))
"""


def measure(build_dir, threads):
    here = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run([sys.executable, "-c", MEASURE, here, build_dir, str(threads)],
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
    args = parser.parse_args()
    for d in (args.old, args.new):
        if not os.path.isdir(os.path.join(d, "fastmlp")):
            parser.error(f"{d} holds no fastmlp package")
    runs = {"old": [], "new": []}
    for r in range(args.rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for which in order:
            runs[which].append(measure(getattr(args, which), args.threads))
    print(f"one-sample predictions, {args.threads} threads, {args.rounds} rounds alternated "
          f"process by process")
    for name in runs["old"][0]:
        print(f"{name}:")
        times = np.array([[r[name] for r in runs[which]] for which in ("old", "new")])
        report(["old", "new"], times, base=0, unit=1)


if __name__ == "__main__":
    main()
