"""The ``fastmlp`` command line.

- ``fastmlp train``: train on MNIST (the defaults run the classic tutorial), optionally save the
  model (``--save``) and plot the training curves (``--plot``);
- ``fastmlp evaluate MODEL``: accuracy, confusion matrix, per-class precision and recall on the
  MNIST test set;
- ``fastmlp predict MODEL IMAGE...``: the digit in each image file and the top probabilities;
- ``fastmlp export MODEL OUTPUT``: the model as an ONNX file (needs the ``onnx`` extra);
- ``fastmlp info``: the version, the kernels' instruction set, OpenMP, threads and compiler, and
  with ``--peak`` this machine's measured FMA peak (what a bug report about speed needs).

Errors print ``fastmlp: error: ...`` (one line, or for missing MNIST data the lines that say
where to put it) and exit with a non-zero status. Output cut short by a closed pipe
(``fastmlp evaluate m.npz | head -1``) ends the command quietly, as it ends ``cat``.

Epochs are numbered from 1 in every line printed, except the tutorial's ``epoch step loss:
value`` lines, which count from 0 as the tutorial prints them.
"""
import argparse
import os
import signal
import sys

import numpy as np

from ._options import (ACTIVATIONS, DEFAULT_ACTIVATION, DEFAULT_LOSS, DEFAULT_LR_SCHEDULE,
                       DEFAULT_SOLVER, LOSSES, LR_SCHEDULES, SOLVERS)

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # what a shell reports for `cat` whose reader left


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line that point to --help."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _CliError(Exception):
    """An error worth one line to the user."""


def _version():
    from . import __version__
    return __version__


def _build_parser():
    parser = _Parser(
        prog="fastmlp",
        description="Fast multilayer perceptrons on the CPU: train, evaluate and use MNIST "
                    "digit classifiers.",
        epilog="Run 'fastmlp COMMAND --help' for the options of each command.")
    parser.add_argument("--version", action="version", version=f"fastmlp {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    data_help = ("directory of the four MNIST IDX files (default: $FASTMLP_DATA, else "
                 "~/.cache/fastmlp, downloading them there if missing)")

    train = commands.add_parser(
        "train", help="train on MNIST (defaults: the classic tutorial) and report test accuracy",
        description="Train an MLP on MNIST. The defaults reproduce the classic tutorial: "
                    "784-512-256-10, ReLU, squared error on one-hot targets, SGD at 0.001, "
                    "batches of 200 in dataset order, 30 epochs. On a terminal it shows a "
                    "progress bar; piped or redirected, it prints the tutorial's 'epoch step "
                    "loss: value' lines every 100 steps (epochs from 0, as the tutorial counts) "
                    "and one line per epoch (epochs from 1: time, mean loss, test accuracy). "
                    "Then it prints the final test accuracy.",
        epilog="Example (98.6% test accuracy in 20 epochs): fastmlp train --loss cross_entropy "
               "--lr 0.05 --momentum 0.9 --batch-size 100 --shuffle --epochs 20 "
               "--save model.npz --plot curves.png")
    train.add_argument("--epochs", type=int, default=30, help="passes over the training set (default 30)")
    train.add_argument("--batch-size", type=int, default=200, help="samples per SGD step (default 200)")
    train.add_argument("--learning-rate", "--lr", type=float, default=0.001, dest="learning_rate",
                       help="SGD step size (default 0.001)")
    train.add_argument("--hidden", type=int, nargs="+", default=[512, 256], metavar="N",
                       help="hidden layer widths (default 512 256)")
    train.add_argument("--activation", choices=ACTIVATIONS, default=DEFAULT_ACTIVATION,
                       help=f"activation of the hidden layers (default {DEFAULT_ACTIVATION}, "
                            f"the tutorial's)")
    train.add_argument("--loss", choices=LOSSES, default=DEFAULT_LOSS,
                       help="training loss (default mse, the tutorial's)")
    train.add_argument("--solver", choices=SOLVERS, default=DEFAULT_SOLVER,
                       help=f"optimiser (default {DEFAULT_SOLVER}, the tutorial's); adam is "
                            f"scikit-learn's Adam, --lr its initial rate")
    train.add_argument("--dropout", type=float, nargs="+", default=[0.0],
                       help="dropout rate in [0, 1) of the hidden layers' outputs while "
                            "training: one for all, or one per hidden layer (default 0)")
    train.add_argument("--precision", choices=_core_precisions(), default="fp32",
                       help="the matrix products' precision: fp32 (default) or bf16 (bf16 "
                            "operands summed in float32; weights and updates stay float32)")
    train.add_argument("--momentum", type=float, default=0.0, help="SGD momentum in [0, 1) (default 0)")
    train.add_argument("--nesterov", action="store_true", help="use Nesterov momentum")
    train.add_argument("--alpha", type=float, default=0.0, help="L2 penalty on the weights (default 0)")
    train.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=DEFAULT_LR_SCHEDULE,
                       help="learning-rate schedule (default constant); 'step' multiplies the rate "
                            "by --lr-decay every --lr-step-epochs epochs")
    train.add_argument("--lr-decay", type=float, default=0.1, help="factor of the step schedule (default 0.1)")
    train.add_argument("--lr-step-epochs", type=int, default=10,
                       help="epochs between decays of the step schedule (default 10)")
    train.add_argument("--shuffle", action="store_true", help="shuffle the samples every epoch")
    train.add_argument("--threads", type=int, default=None,
                       help="threads of the C kernels (default: OMP_NUM_THREADS or all cores)")
    train.add_argument("--seed", type=int, default=0,
                       help="random seed of the initial weights and the shuffling (default 0)")
    train.add_argument("--train-samples", type=int, default=None, metavar="N",
                       help="train on the first N training images only (default: all 60000)")
    train.add_argument("--data-dir", default=None, help=data_help)
    train.add_argument("--save", default=None, metavar="PATH",
                       help="save the trained model to PATH (.npz, loadable with fastmlp.load)")
    train.add_argument("--checkpoint", default=None, metavar="DIR",
                       help="save the training state to DIR/checkpoint.npz after every epoch")
    train.add_argument("--resume", action="store_true",
                       help="continue from the checkpoint in --checkpoint DIR (same options)")
    train.add_argument("--plot", default=None, metavar="PATH",
                       help="save loss and accuracy per epoch (train and test) and the test "
                            "confusion matrix as an image (.png, .pdf, .svg; needs matplotlib)")
    train.add_argument("--verbose", "-v", type=int, choices=[0, 1, 2], default=None,
                       help="as MLP(verbose=...): 0 only the final accuracy; 1 a progress bar on "
                            "a terminal, else the tutorial's step lines and one line per epoch; "
                            "2 one line per epoch (default 1)")
    train.add_argument("--quiet", "-q", action="store_true", help="the same as --verbose 0")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser(
        "evaluate", help="accuracy, confusion matrix and per-class precision/recall on MNIST test",
        description="Evaluate a saved model on the MNIST test set: accuracy, the confusion "
                    "matrix and per-class precision, recall and support.",
        epilog="Example: fastmlp evaluate model.npz")
    evaluate.add_argument("model", help="a model file written by 'fastmlp train --save' or MLP.save")
    evaluate.add_argument("--data-dir", default=None, help=data_help)
    evaluate.add_argument("--threads", type=int, default=None, help="threads of the C kernels")
    evaluate.add_argument("--precision", choices=_core_precisions(), default=None,
                          help="the products' precision for the predictions (default: the "
                               "model's)")
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser(
        "predict", help="read the handwritten digit in image files",
        description="Predict the digit in each image (a photo or scan of one handwritten digit, "
                    "dark on light or light on dark): the image is turned into an MNIST-like "
                    "28x28 input (grayscale, inverted if needed, cropped to the digit, scaled to "
                    "20x20, centred by centre of mass) and the digit and the top scores are "
                    "printed: probabilities for a cross-entropy model, the raw outputs (which "
                    "estimate one-hot targets) for a squared-error model. Needs Pillow.",
        epilog="Example: fastmlp predict model.npz digit.png another.jpg")
    predict.add_argument("model", help="a model file written by 'fastmlp train --save' or MLP.save")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    predict.add_argument("--top", type=int, default=3, help="how many scores to print (default 3)")
    predict.add_argument("--threshold", type=float, default=0.1,
                         help="ink threshold in [0, 1) for cropping the digit, after contrast "
                              "stretching (default 0.1; raise it for noisy photos)")
    predict.set_defaults(run=_predict)

    info = commands.add_parser(
        "info", help="how fastmlp was built and what it runs on (for bug reports)",
        description="Print the fastmlp version, the instruction set of the kernels in use and "
                    "those this CPU has, whether OpenMP was compiled in, the thread count and "
                    "the compiler. FASTMLP_ISA and OMP_NUM_THREADS change what is in use.",
        epilog="Example: fastmlp info --peak")
    info.add_argument("--peak", action="store_true",
                      help="also measure this machine's FP32 FMA peak in GFLOP/s (about a "
                           "second), the yardstick of the README's %% of peak figures")
    info.add_argument("--threads", type=int, default=None,
                      help="threads of the C kernels (default: OMP_NUM_THREADS or all cores)")
    info.add_argument("--json", action="store_true", help="print one JSON object instead")
    info.set_defaults(run=_info)

    export = commands.add_parser(
        "export", help="write a saved model as ONNX, for ONNX Runtime (needs fastmlp[onnx])",
        description="Convert a model file to ONNX: input 'X' (float32, one row per sample), "
                    "outputs 'label' and 'probabilities' (see fastmlp.onnx.to_onnx). Needs "
                    "the onnx extra: pip install \"fastmlp[onnx]\".",
        epilog="Example: fastmlp export model.npz model.onnx")
    export.add_argument("model", help="a model file written by 'fastmlp train --save' or MLP.save")
    export.add_argument("output", help="the ONNX file to write (replaced atomically)")
    export.add_argument("--opset", type=int, default=None,
                        help="ONNX opset to write, from 13 (default 21)")
    export.set_defaults(run=_export)
    return parser


def _load_mnist(data_dir, train=True):
    from .datasets import MNISTNotFoundError, load_mnist
    try:
        (x_train, y_train), (x_test, y_test) = load_mnist(data_dir)
    except MNISTNotFoundError as exc:
        raise _CliError(_mnist_not_found(exc)) from None
    x_test = x_test.reshape(len(x_test), -1).astype(np.float32) / np.float32(255)
    if not train:
        return None, None, x_test, y_test
    x_train = x_train.reshape(len(x_train), -1).astype(np.float32) / np.float32(255)
    return x_train, y_train, x_test, y_test


def _mnist_not_found(exc):
    """The loader's whole message (files, directory, mirrors tried), with the CLI's option in
    place of the Python argument."""
    message = str(exc)
    python_hint = "pass data_dir=... to load_mnist()"
    if python_hint in message:
        return message.replace(python_hint, "pass --data-dir DIR")
    return message + "\nOr pass --data-dir DIR."


def _epoch_line(epoch, n_epochs, logs):
    """The CLI's line after each epoch: the validation set is the MNIST test set."""
    return (f"epoch {epoch + 1}/{n_epochs}: {logs['seconds']:.2f} s, "
            f"mean loss {logs['loss']:.6f}, test accuracy {logs['val_accuracy']:.4f}")


def _check_output_path(path, what):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise _CliError(f"cannot write the {what} {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise _CliError(f"cannot write the {what} {path}: directory {directory} is not writable")


def _train(args):
    from .mlp import MLP
    from .progress import reporters_for
    verbose = 0 if args.quiet else (1 if args.verbose is None else args.verbose)
    if args.plot:  # fail before training, not after
        from .plot import check_plot_path
        check_plot_path(args.plot)
        _check_output_path(args.plot, "plot")
    if args.save:
        _check_output_path(args.save, "model")
    if args.train_samples is not None and args.train_samples < 1:
        raise _CliError(f"--train-samples must be positive, got {args.train_samples}")
    model = MLP(hidden_layer_sizes=tuple(args.hidden), learning_rate=args.learning_rate,
                batch_size=args.batch_size, epochs=args.epochs, shuffle=args.shuffle,
                random_state=args.seed, n_threads=args.threads, loss=args.loss,
                momentum=args.momentum, nesterov=args.nesterov, alpha=args.alpha,
                lr_schedule=args.lr_schedule, lr_decay=args.lr_decay,
                lr_step_epochs=args.lr_step_epochs, activation=args.activation,
                solver=args.solver,
                dropout=args.dropout[0] if len(args.dropout) == 1 else tuple(args.dropout),
                precision=args.precision,
                callbacks=reporters_for(verbose, summary=_epoch_line) or None)
    model._check_params()   # a wrong option fails at once, not after reading (or fetching) MNIST
    x_train, y_train, x_test, y_test = _load_mnist(args.data_dir)
    if args.train_samples is not None:
        x_train, y_train = x_train[:args.train_samples], y_train[:args.train_samples]
    if verbose or args.plot:
        model.validation_data = (x_test, y_test)
    from .checkpoint import fit as fit_with_checkpoints
    model = fit_with_checkpoints(model, x_train, y_train, args.checkpoint, args.resume)
    if getattr(model, "_interrupted", False):  # Ctrl-C: keep the last finished step, exit 130
        if args.save:
            model.validation_data, model.callbacks = None, None
            model.save(args.save)
            print(f"interrupted: the model of the last finished step is saved to {args.save}",
                  file=sys.stderr)
        return EXIT_INTERRUPTED
    predicted = model.predict(x_test)
    print(f"test accuracy: {np.mean(predicted == y_test):.4f}")
    if args.save:
        model.validation_data = None  # the test set is not a parameter worth keeping
        model.callbacks = None
        model.save(args.save)
        if verbose:
            print(f"model saved to {args.save}")
    if args.plot:
        from .metrics import confusion_matrix
        from .plot import plot_training
        confusion = confusion_matrix(y_test, predicted, model.classes_)
        plot_training(model.history_, args.plot, confusion, model.classes_,
                      title=f"fastmlp {model.loss}, hidden {tuple(args.hidden)}: "
                            f"test accuracy {np.mean(predicted == y_test):.4f}",
                      validation_name="test")
        if verbose:
            print(f"plot saved to {args.plot}")
    return 0


def _core_precisions():
    from . import _core
    return _core.PRECISIONS


def _load_model(path):
    from .io import load
    model = load(path)
    if model.n_features_in_ != 784:
        raise _CliError(f"{path}: the model takes {model.n_features_in_} features, not the "
                        f"784 pixels of a 28x28 MNIST image")
    return model


def _evaluate(args):
    from .metrics import confusion_matrix, format_report
    model = _load_model(args.model)
    if args.threads is not None:
        model.n_threads = args.threads
    _, _, x_test, y_test = _load_mnist(args.data_dir, train=False)
    predicted = model.predict(x_test, precision=args.precision)
    labels = model.classes_
    confusion = confusion_matrix(y_test, predicted, labels)
    print(f"test accuracy: {np.mean(predicted == y_test):.4f} ({int(np.sum(predicted == y_test))}"
          f" of {len(y_test)})")
    print()
    print(format_report(confusion, labels))
    return 0


def _predict(args):
    from .image import load_digit
    if args.top < 1:
        raise _CliError(f"--top must be positive, got {args.top}")
    model = _load_model(args.model)
    status = 0
    for path in args.images:
        try:
            x = load_digit(path, threshold=args.threshold).reshape(1, -1)
        except (OSError, ValueError) as exc:
            print(f"fastmlp: error: {_message(exc)}", file=sys.stderr)
            status = EXIT_ERROR
            continue
        if model.loss == "cross_entropy":
            name, scores = "probabilities", model.predict_proba(x)[0]
        else:  # squared error: the outputs estimate one-hot targets; their softmax is no probability
            name, scores = "outputs", model._outputs(x)[0]
        order = np.argsort(-scores, kind="stable")[:args.top]
        top = ", ".join(f"{model.classes_[i]}: {scores[i]:.3f}" for i in order)
        print(f"{path}: {model.classes_[order[0]]}  ({name} {top})", flush=True)
    return status


def _export(args):
    from .io import load
    from .onnx import require_onnx, save_onnx
    require_onnx()   # a missing extra fails before the model is read
    _check_output_path(args.output, "ONNX file")
    save_onnx(load(args.model), args.output, target_opset=args.opset)
    print(f"ONNX model written to {args.output}")
    return 0


# Probes of the peak: the highest of a few short ones, as the benchmarks take it (another
# process on the machine can only slow a probe down).
PEAK_PROBES = 5
PEAK_PROBE_SECONDS = 0.2


def _info(args):
    import fastmlp

    if args.threads is not None:
        if args.threads < 1:
            raise _CliError(f"--threads must be >= 1, got {args.threads}")
        fastmlp.set_num_threads(args.threads)
    info = {"version": fastmlp.__version__, **fastmlp.build_info()}
    if args.peak:
        info["peak_gflops"] = round(max(fastmlp.peak_gflops(seconds=PEAK_PROBE_SECONDS)
                                        for _ in range(PEAK_PROBES)), 1)
        info["peak_gflops_bf16"] = round(max(
            fastmlp.peak_gflops(seconds=PEAK_PROBE_SECONDS, precision="bf16")
            for _ in range(PEAK_PROBES)), 1)
    if args.json:
        import json
        print(json.dumps(info))
        return 0
    rows = [("fastmlp", info["version"]),
            ("instruction set", f"{info['isa']} (this CPU: {' '.join(info['isa_available'])})"),
            ("OpenMP", "yes" if info["openmp"] else "no"),
            ("threads", str(info["n_threads"])),
            ("compiler", info["compiler"]),
            ("bf16 products", info["bf16"])]
    if info["isa_note"]:
        rows.append(("note", info["isa_note"]))
    if args.peak:
        rows.append(("FMA peak", f"{info['peak_gflops']:.1f} GFLOP/s on {info['n_threads']} "
                                 f"thread{'s' if info['n_threads'] != 1 else ''}"))
        rows.append(("bf16 peak", f"{info['peak_gflops_bf16']:.1f} GFLOP/s"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def _message(exc):
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"{exc.filename}: no such file"
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def main(argv=None):
    """Entry point of the ``fastmlp`` console script; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:
        # The reader left (`| head -1`): say nothing more, and point stdout at /dev/null so that
        # the interpreter's last flush does not fail again (Python's documented recipe).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("fastmlp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _CliError as exc:
        print(f"fastmlp: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (ValueError, TypeError, OSError, MemoryError, ImportError) as exc:
        print(f"fastmlp: error: {_message(exc)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
