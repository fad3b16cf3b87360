"""Make the tutorial's figures for the docs: learning curves and the test confusion matrix.

Trains the MNIST tutorial's model (``fastmlp.MLP(random_state=0)``, 30 epochs) once, recording
the batch loss every 100 steps and the test accuracy after every epoch, and writes
``docs/figures/learning_curves.png`` and ``docs/figures/confusion_matrix.png``.

    FASTMLP_DATA=/path/to/mnist python docs/figures/make_figures.py [--epochs 30] [--out DIR]

Needs matplotlib (``pip install "fastmlp[plot]"``).
"""
import argparse
import os
import platform

import numpy as np

import fastmlp
from fastmlp.metrics import confusion_matrix

HERE = os.path.dirname(os.path.abspath(__file__))
EVERY = 100  # steps between two recorded losses, as the tutorial prints them


class StepLosses:
    """A callback that keeps the batch loss every ``EVERY`` steps, and the test accuracy."""

    def __init__(self):
        self.steps, self.losses = [], []
        self.step = 0

    def on_batch_end(self, epoch, step, loss):
        if step % EVERY == 0:
            self.steps.append(self.step)
            self.losses.append(loss)
        self.step += 1

    def __call__(self, epoch, logs):
        return False


def cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default=HERE, help="where to write the PNG files")
    args = parser.parse_args(argv)

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    (x_train, y_train), (x_test, y_test) = fastmlp.datasets.load_mnist()
    X_train = x_train.reshape(len(x_train), -1) / 255.0
    X_test = x_test.reshape(len(x_test), -1) / 255.0
    recorder = StepLosses()
    model = fastmlp.MLP(epochs=args.epochs, random_state=0, validation_data=(X_test, y_test),
                        callbacks=[recorder])
    model.fit(X_train, y_train)
    accuracy = model.score(X_test, y_test)
    steps_per_epoch = recorder.step // args.epochs
    machine = f"{cpu_name()}, {os.cpu_count()} cores, {fastmlp.build_info()['isa']} kernels"
    print(f"test accuracy {accuracy:.4f} after {args.epochs} epochs ({machine})")

    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    left.plot(np.array(recorder.steps) / steps_per_epoch, recorder.losses, lw=1)
    left.set_xlabel("epoch")
    left.set_ylabel("batch loss (sum of squares / batch)")
    left.set_title(f"training loss every {EVERY} steps")
    left.grid(alpha=0.3)
    epochs = np.arange(1, args.epochs + 1)
    right.plot(epochs, model.history_["val_accuracy"], "-o", markersize=3)
    right.set_xlabel("epoch")
    right.set_ylabel("test accuracy")
    right.set_title(f"test accuracy per epoch (final {accuracy:.4f})")
    right.grid(alpha=0.3)
    fig.savefig(os.path.join(args.out, "learning_curves.png"), dpi=110)

    labels = model.classes_
    confusion = confusion_matrix(y_test, model.predict(X_test), labels)
    fig = Figure(figsize=(6, 5.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(confusion, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    n = len(labels)
    ax.set_xticks(range(n), [str(l) for l in labels])
    ax.set_yticks(range(n), [str(l) for l in labels])
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(f"MNIST test set, 10,000 digits (accuracy {accuracy:.4f})")
    threshold = confusion.max() / 2
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if confusion[i, j] > threshold else "black")
    fig.savefig(os.path.join(args.out, "confusion_matrix.png"), dpi=110)


if __name__ == "__main__":
    main()
