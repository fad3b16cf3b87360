"""The ``fastmlp`` command line: ``fastmlp train`` runs the MNIST tutorial's job."""
import argparse
import sys
import time

import numpy as np


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="fastmlp",
        description="Fast multilayer perceptrons on the CPU.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    train = commands.add_parser(
        "train", help="train on MNIST (defaults: the classic tutorial) and report test accuracy",
        description="Train an MLP on MNIST. The defaults reproduce the classic tutorial: "
                    "784-512-256-10, ReLU, squared error on one-hot targets, SGD at 0.001, "
                    "batches of 200 in dataset order, 30 epochs.")
    train.add_argument("--epochs", type=int, default=30, help="passes over the training set (default 30)")
    train.add_argument("--batch-size", type=int, default=200, help="samples per SGD step (default 200)")
    train.add_argument("--learning-rate", "--lr", type=float, default=0.001, dest="learning_rate",
                       help="SGD step size (default 0.001)")
    train.add_argument("--hidden", type=int, nargs="+", default=[512, 256], metavar="N",
                       help="hidden layer widths (default 512 256)")
    train.add_argument("--loss", choices=["mse", "cross_entropy"], default="mse",
                       help="training loss (default mse, the tutorial's)")
    train.add_argument("--momentum", type=float, default=0.0, help="SGD momentum in [0, 1) (default 0)")
    train.add_argument("--shuffle", action="store_true", help="shuffle the samples every epoch")
    train.add_argument("--threads", type=int, default=None,
                       help="threads of the C kernels (default: OMP_NUM_THREADS or all cores)")
    train.add_argument("--seed", type=int, default=0, help="random seed of the initial weights (default 0)")
    train.add_argument("--data-dir", default=None,
                       help="directory of the four MNIST IDX files (default: $FASTMLP_DATA, "
                            "else ~/.cache/fastmlp, downloading them there if missing)")
    train.add_argument("--quiet", "-q", action="store_true", help="print only the final accuracy")
    train.set_defaults(run=_train)
    return parser


def _load_mnist(data_dir):
    from .datasets import load_mnist
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir)
    x_train = x_train.reshape(len(x_train), -1).astype(np.float32) / np.float32(255)
    x_test = x_test.reshape(len(x_test), -1).astype(np.float32) / np.float32(255)
    return x_train, y_train, x_test, y_test


def _train(args):
    from .mlp import MLP
    x_train, y_train, x_test, y_test = _load_mnist(args.data_dir)
    model = MLP(hidden_layer_sizes=tuple(args.hidden), learning_rate=args.learning_rate,
                batch_size=args.batch_size, epochs=args.epochs, shuffle=args.shuffle,
                random_state=args.seed, n_threads=args.threads, verbose=0 if args.quiet else 1,
                loss=args.loss, momentum=args.momentum)
    model._check_params()
    for epoch in range(args.epochs):
        start = time.perf_counter()
        model.partial_fit(x_train, y_train, classes=np.arange(10))
        seconds = time.perf_counter() - start
        if not args.quiet:
            accuracy = model.score(x_test, y_test)
            print(f"epoch {epoch + 1}/{args.epochs}: {seconds:.2f} s, "
                  f"mean loss {model.loss_curve_[-1]:.6f}, test accuracy {accuracy:.4f}", flush=True)
    print(f"test accuracy: {model.score(x_test, y_test):.4f}")
    return 0


def main(argv=None):
    """Entry point of the ``fastmlp`` console script; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, OSError, MemoryError) as exc:
        print(f"fastmlp: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
