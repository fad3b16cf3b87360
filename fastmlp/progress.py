"""Training feedback: the objects behind ``MLP(verbose=...)``, usable as callbacks too.

Epochs are numbered from 1 in everything printed here, except the MNIST tutorial's own
``epoch step loss: value`` lines, which count from 0 as the tutorial prints them. A callback is
any callable ``callback(epoch, logs)`` run after each epoch; its ``epoch`` argument is the
0-based index into ``history_``'s lists (Keras's convention), and ``logs`` is the epoch's entry of
``history_``. It may also have

- ``on_epoch_begin(epoch, info)``, ``info`` a dict with ``epochs`` (the index of the last
  planned epoch + 1), ``steps`` (steps in this epoch) and ``samples``;
- ``on_batch_end(epoch, step, loss)`` after every training step (``loss`` is the batch loss).

The classes here print to ``sys.stdout`` (or the ``stream`` they are given):

- :class:`StepLines`: the MNIST tutorial's ``epoch step loss: value`` lines every 100 steps;
- :class:`EpochLines`: one summary line per epoch;
- :class:`ProgressBar`: a live bar on a terminal (steps done, ETA, running loss).
"""
import math
import sys
import time

__all__ = ["EpochLines", "ProgressBar", "StepLines", "format_epoch"]


def format_epoch(epoch, n_epochs, logs):
    """The one-line summary of an epoch.

    Parameters
    ----------
    epoch : int
        Index of the epoch, from 0 (printed from 1).
    n_epochs : int or None
        Total planned epochs, printed as ``epoch 3/20``.
    logs : dict
        ``loss``, ``accuracy``, ``seconds``, ``samples_per_second`` and, with a validation
        set, ``val_loss`` and ``val_accuracy``.

    Returns
    -------
    str
    """
    head = f"epoch {epoch + 1}/{n_epochs}" if n_epochs else f"epoch {epoch + 1}"
    parts = [f"{logs['seconds']:.2f} s", f"{logs['samples_per_second']:.0f} samples/s",
             f"loss {logs['loss']:.6f}"]
    for key, fmt in (("accuracy", ".4f"), ("val_loss", ".6f"), ("val_accuracy", ".4f")):
        value = logs.get(key)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            parts.append(f"{key} {value:{fmt}}")
    return f"{head}: " + ", ".join(parts)


class _Printer:
    def __init__(self, stream=None):
        self.stream = stream
        self.n_epochs = None

    def _out(self):
        return self.stream if self.stream is not None else sys.stdout

    def on_epoch_begin(self, epoch, info):
        self.n_epochs = info.get("epochs")


class StepLines(_Printer):
    """Print ``epoch step loss: value`` every ``every`` steps (the MNIST tutorial's lines).

    Parameters
    ----------
    every : int
        Steps between two lines; step 0 of every epoch is printed.
    stream : file-like, optional
        Where to write; ``sys.stdout`` by default.
    """

    def __init__(self, every=100, stream=None):
        super().__init__(stream)
        self.every = every

    def on_batch_end(self, epoch, step, loss):
        if step % self.every == 0:
            print(f"{epoch} {step} loss: {loss:.6f}", file=self._out(), flush=True)

    def __call__(self, epoch, logs):
        return None


class EpochLines(_Printer):
    """Print one summary line per epoch.

    Parameters
    ----------
    stream : file-like, optional
        Where to write; ``sys.stdout`` by default.
    summary : callable, optional
        ``summary(epoch, n_epochs, logs)`` returns the line; :func:`format_epoch` by default.
    """

    def __init__(self, stream=None, summary=format_epoch):
        super().__init__(stream)
        self.summary = summary

    def __call__(self, epoch, logs):
        print(self.summary(epoch, self.n_epochs, logs), file=self._out(), flush=True)


class ProgressBar(_Printer):
    """A live progress bar for terminals: steps done, ETA and the running mean loss.

    The bar is redrawn in place (carriage return) at most every ``interval`` seconds and
    replaced by the epoch's summary line (``summary(epoch, n_epochs, logs)``, by default
    :func:`format_epoch`) when the epoch ends.

    Parameters
    ----------
    stream : file-like, optional
        Where to write; ``sys.stdout`` by default.
    width : int
        Characters of the bar.
    interval : float
        The shortest time in seconds between two redraws.
    summary : callable, optional
        ``summary(epoch, n_epochs, logs)`` returns the epoch's line.
    """

    def __init__(self, stream=None, width=30, interval=0.1, summary=format_epoch):
        super().__init__(stream)
        self.width = width
        self.interval = interval
        self.summary = summary

    def on_epoch_begin(self, epoch, info):
        super().on_epoch_begin(epoch, info)
        self.steps = max(1, info.get("steps", 1))
        self.start = time.perf_counter()
        self.last_draw = 0.0
        self.loss_sum = 0.0
        self.done = 0

    def on_batch_end(self, epoch, step, loss):
        self.done = step + 1
        self.loss_sum += loss
        now = time.perf_counter()
        if now - self.last_draw < self.interval and self.done < self.steps:
            return
        self.last_draw = now
        elapsed = now - self.start
        eta = elapsed / self.done * (self.steps - self.done)
        filled = int(self.width * self.done / self.steps)
        bar = "=" * filled + (">" if filled < self.width else "") + " " * (self.width - filled - 1)
        head = f"epoch {epoch + 1}/{self.n_epochs}" if self.n_epochs else f"epoch {epoch + 1}"
        line = (f"\r{head} [{bar}] {self.done}/{self.steps} ETA {eta:4.0f} s "
                f"loss {self.loss_sum / self.done:.4f}")
        out = self._out()
        out.write(line)
        out.flush()

    def __call__(self, epoch, logs):
        out = self._out()
        out.write("\r\033[K" + self.summary(epoch, self.n_epochs, logs) + "\n")
        out.flush()


def reporters_for(verbose, stream=None, summary=format_epoch):
    """The printers behind ``MLP(verbose=...)`` and ``fastmlp train --verbose``.

    0: none; 1: a :class:`ProgressBar` when ``stream`` (default ``sys.stdout``) is a terminal,
    else :class:`StepLines` and :class:`EpochLines` (plain lines for logs and pipes); 2 (or
    more): :class:`EpochLines` only. ``summary(epoch, n_epochs, logs)`` writes the epoch's
    line (:func:`format_epoch` by default).

    Parameters
    ----------
    verbose : int
        0, 1 or 2, as ``MLP(verbose=...)``.
    stream : file-like, optional
        Where to write; ``sys.stdout`` by default.
    summary : callable, optional
        ``summary(epoch, n_epochs, logs)`` returns an epoch's line.

    Returns
    -------
    list
        The callbacks to run.
    """
    if not verbose:
        return []
    if verbose >= 2:
        return [EpochLines(stream, summary)]
    out = stream if stream is not None else sys.stdout
    isatty = getattr(out, "isatty", None)
    if isatty is not None and isatty():
        return [ProgressBar(stream, summary=summary)]
    return [StepLines(stream=stream), EpochLines(stream, summary)]
