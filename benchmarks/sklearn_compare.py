"""fastmlp.neural_network against scikit-learn's MLPClassifier and MLPRegressor, side by side.

    python benchmarks/sklearn_compare.py [--rounds 3] [--threads 2] [--only NAME ...] [--csv FILE]

Each row fits scikit-learn's class and fastmlp's drop-in with the same parameters and the same
random_state on the same data, in one process, the two interleaved (their order alternates from
round to round), each fit after a pause that lets the other's thread pool go idle. scikit-learn
runs its products in NumPy's BLAS limited to the same thread count (threadpoolctl). Prints a
Markdown table: median fit time of each, the median of the per-round ratios (fastmlp / sklearn)
and each one's score on held-out data (accuracy, or R^2 for a regressor).

The MNIST rows read the digits from FASTMLP_DATA (or download them), scaled to [0, 1] as
float64, 60,000 for training and 10,000 for the score.
"""
import argparse
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np
from sklearn import datasets as skdata
from sklearn import neural_network as sk
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

import fastmlp
from fastmlp import _core
from fastmlp import neural_network as fm

SETTLE_SECONDS = 0.5


def mnist():
    (x, y), (xt, yt) = fastmlp.datasets.load_mnist(os.environ.get("FASTMLP_DATA"))
    scale = lambda a: a.reshape(len(a), -1).astype(np.float64) / 255.0  # noqa: E731
    return scale(x), y, scale(xt), yt


def regression():
    X, y = skdata.make_regression(n_samples=20000, n_features=100, n_informative=50,
                                  noise=10.0, random_state=0)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    return train_test_split(X, y, test_size=0.2, random_state=0)


def diabetes():
    X, y = skdata.load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    return train_test_split(X, y, test_size=0.25, random_state=0)


def digits():
    X, y = skdata.load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)


def split(data):
    X, Xt, y, yt = data
    return X, y, Xt, yt


# name, estimator class name, parameters, data
CASES = [
    ("MNIST, scikit-learn's defaults (100, relu, adam), 10 epochs", "MLPClassifier",
     dict(max_iter=10, random_state=0), "mnist"),
    ("MNIST, (512, 256) relu, adam, 10 epochs", "MLPClassifier",
     dict(hidden_layer_sizes=(512, 256), max_iter=10, random_state=0), "mnist"),
    ("MNIST, (512, 256) tanh, adam, 10 epochs", "MLPClassifier",
     dict(hidden_layer_sizes=(512, 256), activation="tanh", max_iter=10, random_state=0),
     "mnist"),
    ("MNIST, (512, 256) logistic, adam, 10 epochs", "MLPClassifier",
     dict(hidden_layer_sizes=(512, 256), activation="logistic", max_iter=10, random_state=0),
     "mnist"),
    ("MNIST, (512, 256) relu, sgd + Nesterov, 10 epochs", "MLPClassifier",
     dict(hidden_layer_sizes=(512, 256), solver="sgd", learning_rate_init=0.01, max_iter=10,
          random_state=0), "mnist"),
    ("make_regression 16,000 x 100, MLPRegressor (256, 256), 20 epochs", "MLPRegressor",
     dict(hidden_layer_sizes=(256, 256), max_iter=20, random_state=0), "regression"),
    ("load_diabetes, MLPRegressor defaults, 200 epochs", "MLPRegressor",
     dict(max_iter=200, random_state=0), "diabetes"),
    ("load_digits, lbfgs (100,), 200 iterations", "MLPClassifier",
     dict(solver="lbfgs", max_iter=200, random_state=0), "digits"),
]

LOADERS = {"mnist": lambda: mnist(), "regression": lambda: split(regression()),
           "diabetes": lambda: split(diabetes()), "digits": lambda: split(digits())}


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fit_and_score(cls, params, data):
    X, y, Xt, yt = data
    model = cls(**params)
    time.sleep(SETTLE_SECONDS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - start
    return seconds, model.score(Xt, yt)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", type=int, help="row numbers (1-based) to run")
    parser.add_argument("--csv", metavar="FILE",
                        help="also append the median fit times to FILE (results_csv.py)")
    args = parser.parse_args()
    _core.set_num_threads(args.threads)
    cases = [c for i, c in enumerate(CASES, 1) if not args.only or i in args.only]
    loaded = {}
    results = {name: {"sk": [], "fm": []} for name, *_ in cases}
    with threadpool_limits(args.threads):
        for r in range(args.rounds):
            for name, cls_name, params, source in cases:
                if source not in loaded:
                    loaded[source] = LOADERS[source]()
                order = ("sk", "fm") if r % 2 == 0 else ("fm", "sk")
                for who in order:
                    cls = getattr(sk if who == "sk" else fm, cls_name)
                    results[name][who].append(fit_and_score(cls, params, loaded[source]))
                sk_s, fm_s = results[name]["sk"][-1][0], results[name]["fm"][-1][0]
                print(f"round {r + 1}: {name}: sklearn {sk_s:.2f} s, fastmlp {fm_s:.2f} s",
                      file=sys.stderr)
    print(f"CPU: {cpu_name()}, {args.threads} threads, "
          f"{args.rounds} rounds, ISA {_core.build_info()['isa']}\n")
    print("| case | scikit-learn fit (s) | fastmlp fit (s) | fastmlp / sklearn "
          "(median of rounds) | sklearn score | fastmlp score |")
    print("|---|---|---|---|---|---|")
    for name, *_ in cases:
        sk_runs, fm_runs = results[name]["sk"], results[name]["fm"]
        ratios = [f[0] / s[0] for s, f in zip(sk_runs, fm_runs)]
        print(f"| {name} | {statistics.median(s for s, _ in sk_runs):.2f} "
              f"| {statistics.median(s for s, _ in fm_runs):.2f} "
              f"| **{statistics.median(ratios):.3f}** ({1 / statistics.median(ratios):.1f}x faster) "
              f"| {statistics.median(v for _, v in sk_runs):.4f} "
              f"| {statistics.median(v for _, v in fm_runs):.4f} |")
    if args.csv:
        from results_csv import append_rows
        append_rows(args.csv, [
            {"source": "sklearn_compare.py", "case": name, "contender": contender,
             "metric": "fit", "value": statistics.median(s for s, _ in results[name][who]),
             "unit": "s", "rounds": args.rounds, "threads": args.threads, "cpu": cpu_name()}
            for name, *_ in cases
            for who, contender in (("sk", "scikit-learn"), ("fm", "fastmlp.neural_network"))])


if __name__ == "__main__":
    main()
