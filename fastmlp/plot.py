"""Training curves and the confusion matrix as an image file (needs matplotlib).

matplotlib is imported only when a plot is made, through its object-oriented API (no pyplot,
no change of the global backend); without it the error says ``pip install "fastmlp[plot]"``.
"""
import os

import numpy as np

__all__ = ["check_plot_path", "plot_training"]

DPI = 150
CONFUSION_FONT_SIZE = 9  # points: four digits fit a cell of a 10-class matrix at this size


def _require_matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('plotting needs matplotlib: pip install "fastmlp[plot]"') from None
    return Figure, FigureCanvasAgg


def check_plot_path(path):
    """Raise ``ValueError`` unless matplotlib can write ``path``'s format (from its extension).

    Called before training, so that a wrong extension fails at once rather than after it.
    A path without an extension is written as PNG.

    Parameters
    ----------
    path : str or os.PathLike
        The image file the plot will be written to.

    Raises
    ------
    ValueError
        If matplotlib has no writer for the extension.
    ImportError
        Without matplotlib (the message says ``pip install "fastmlp[plot]"``).
    """
    Figure, FigureCanvasAgg = _require_matplotlib()
    extension = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    formats = FigureCanvasAgg(Figure()).get_supported_filetypes()
    if extension and extension not in formats:
        known = ", ".join("." + f for f in sorted(formats))
        raise ValueError(f"cannot write the plot {path}: matplotlib has no format "
                         f"'.{extension}' (it writes {known})")


def plot_training(history, path, confusion=None, labels=None, title=None,
                  validation_name="validation"):
    """Save loss and accuracy per epoch (train and validation) and a confusion matrix.

    Epochs are numbered from 1 on the x axis. The training loss of an epoch is the mean of its
    steps' losses, taken while the weights improve; the validation loss is measured once, at the
    epoch's end, and so often sits below it. The figure says so under the loss panel.

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
    validation_name : str
        What the validation data is, for the legends ("test" when it is the test set).

    Returns
    -------
    matplotlib.figure.Figure
    """
    Figure, FigureCanvasAgg = _require_matplotlib()
    from matplotlib.ticker import MaxNLocator
    panels = 3 if confusion is not None else 2
    fig = Figure(figsize=(5.2 * panels, 5.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels)
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    series = {
        "loss": (("", "train (mean over the epoch)", "-o"),
                 ("val_", f"{validation_name} (at the epoch's end)", "-s")),
        "accuracy": (("", "train (at the epoch's end)", "-o"),
                     ("val_", f"{validation_name} (at the epoch's end)", "-s")),
    }
    for ax, key in ((axes[0], "loss"), (axes[1], "accuracy")):
        for prefix, label, style in series[key]:
            values = history.get(prefix + key)
            if values is not None and len(values) == len(epochs):
                ax.plot(epochs, values, style, markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6))
        ax.set_ylabel(key)
        ax.set_title(f"{key} per epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].annotate("The training loss averages the epoch's steps while the weights improve;\n"
                     f"the {validation_name} loss is measured after the last step, so it can "
                     "sit lower.",
                     xy=(0, 0), xycoords="axes fraction", xytext=(0, -44),
                     textcoords="offset points", va="top", fontsize=8, color="0.3")
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
        ax.set_title(f"confusion matrix ({validation_name})")
        if n <= 20:
            threshold = confusion.max() / 2
            size = CONFUSION_FONT_SIZE if n <= 10 else CONFUSION_FONT_SIZE - 2
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=size,
                            color="white" if confusion[i, j] > threshold else "black")
    if title:
        fig.suptitle(title)
    fig.savefig(os.fspath(path), dpi=DPI)
    return fig
