"""Classification metrics in NumPy: the confusion matrix and per-class precision and recall."""
import numpy as np

__all__ = ["confusion_matrix", "format_report", "precision_recall"]


def confusion_matrix(y_true, y_pred, labels):
    """Counts of (true, predicted) label pairs.

    Examples
    --------
    >>> from fastmlp.metrics import confusion_matrix
    >>> confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], labels=[0, 1, 2]).tolist()
    [[1, 0, 0], [0, 1, 1], [0, 0, 1]]

    Parameters
    ----------
    y_true, y_pred : array-like, shape (n_samples,)
    labels : array-like, shape (n_labels,)
        The labels, in the order of the rows and columns.

    Returns
    -------
    ndarray, shape (n_labels, n_labels), int64
        ``C[i, j]`` counts samples of label ``labels[i]`` predicted as ``labels[j]``; pairs
        involving other labels are not counted.
    """
    labels = np.asarray(labels)
    index = {label: i for i, label in enumerate(labels.tolist())}
    n = len(labels)
    t = np.array([index.get(v, -1) for v in np.asarray(y_true).tolist()], dtype=np.int64)
    p = np.array([index.get(v, -1) for v in np.asarray(y_pred).tolist()], dtype=np.int64)
    keep = (t >= 0) & (p >= 0)
    return np.bincount(t[keep] * n + p[keep], minlength=n * n).reshape(n, n)


def precision_recall(confusion):
    """Per-class precision (of the predictions) and recall (of the true labels).

    Parameters
    ----------
    confusion : ndarray, shape (n_labels, n_labels)

    Returns
    -------
    precision, recall : ndarray, shape (n_labels,), float64
        NaN where a class is never predicted (precision) or never present (recall).
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    hits = np.diag(confusion)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = hits / confusion.sum(axis=0)
        recall = hits / confusion.sum(axis=1)
    return precision, recall


def format_report(confusion, labels):
    """The confusion matrix and a per-class precision / recall / support table, aligned.

    ``fastmlp evaluate`` prints it.

    Parameters
    ----------
    confusion : ndarray, shape (n_labels, n_labels)
        Counts from :func:`confusion_matrix`.
    labels : sequence
        The labels of its rows and columns.

    Returns
    -------
    str
    """
    labels = [str(label) for label in labels]
    confusion = np.asarray(confusion)
    width = max(max(len(l) for l in labels), len(str(confusion.max())), 4) + 1
    lines = ["confusion matrix (rows: true label, columns: predicted label)",
             " " * (width + 1) + "".join(f"{l:>{width}}" for l in labels)]
    for label, row in zip(labels, confusion):
        lines.append(f"{label:>{width}} " + "".join(f"{v:>{width}}" for v in row))
    precision, recall = precision_recall(confusion)
    name = max(max(len(l) for l in labels), len("class"))
    lines += ["", f"{'class':>{name}}  precision  recall  support"]
    for label, p, r, s in zip(labels, precision, recall, confusion.sum(axis=1)):
        lines.append(f"{label:>{name}}  {p:>9.4f}  {r:>6.4f}  {s:>7d}")
    return "\n".join(lines)
