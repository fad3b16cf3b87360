"""Training curves and the confusion matrix as an image file (needs matplotlib).

matplotlib is imported only when a plot is made, through its object-oriented API (no pyplot,
no change of the global backend); without it the error says ``pip install "fastmlp[plot]"``.
"""
import os

import numpy as np

__all__ = ["plot_training"]


def _require_matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('plotting needs matplotlib: pip install "fastmlp[plot]"') from None
    return Figure, FigureCanvasAgg


def plot_training(history, path, confusion=None, labels=None, title=None):
    """Save loss and accuracy per epoch (train and validation) and a confusion matrix.

    Parameters
    ----------
    history : dict of lists
        ``MLP.history_``: ``loss``, ``accuracy`` and optionally ``val_loss``, ``val_accuracy``.
    path : str or os.PathLike
        The image file; its extension (``.png``, ``.pdf``, ``.svg``) picks the format.
    confusion : ndarray, shape (n_classes, n_classes), optional
        Counts, rows true labels, columns predicted labels (see ``fastmlp.metrics``).
    labels : sequence, optional
        Class names of the confusion matrix.
    title : str, optional
    """
    Figure, FigureCanvasAgg = _require_matplotlib()
    from matplotlib.ticker import MaxNLocator
    panels = 3 if confusion is not None else 2
    fig = Figure(figsize=(5 * panels, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels)
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for ax, key, name in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        for prefix, label, style in (("", "train", "-o"), ("val_", "validation", "-s")):
            values = history.get(prefix + key)
            if values is not None and len(values) == len(epochs):
                ax.plot(epochs, values, style, markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.set_title(f"{name} per epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_yscale("log")
    if confusion is not None:
        confusion = np.asarray(confusion)
        n = confusion.shape[0]
        labels = [str(l) for l in (labels if labels is not None else range(n))]
        ax = axes[2]
        image = ax.imshow(confusion, cmap="Blues")
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax.set_xticks(range(n), labels)
        ax.set_yticks(range(n), labels)
        ax.set_xlabel("predicted label")
        ax.set_ylabel("true label")
        ax.set_title("confusion matrix")
        if n <= 20:
            threshold = confusion.max() / 2
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if confusion[i, j] > threshold else "black")
    if title:
        fig.suptitle(title)
    fig.savefig(os.fspath(path), dpi=100)
