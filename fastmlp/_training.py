"""The training loop: epochs of C training steps, callbacks, early stopping and Ctrl-C.

``fit`` and ``partial_fit`` of the estimator call :func:`fit_epochs`. Each batch is one call
into C (``Network.train_step`` or ``train_step_rows``) that runs the forward pass, the loss, the
backward pass and the update of every layer with the GIL released; Python slices the batches,
checks that the loss stays finite and runs the hooks between steps.
"""
import math
import time
import warnings

import numpy as np

from . import _safety
from ._options import MONITORS
from ._threading import call_threads
from .progress import reporters_for

__all__ = ["TRAIN_ACCURACY_SAMPLES", "EarlyStopping", "StopTraining", "fit_epochs", "loss_value"]

#: Training accuracy in ``history_`` is measured after each epoch on at most this many
#: training samples (evenly spaced, the same ones every epoch), to keep its cost small.
TRAIN_ACCURACY_SAMPLES = 5000

_FLOAT32_MAX = float(np.finfo(np.float32).max)


class StopTraining(Exception):
    """Raise from a callback to stop training after the current epoch."""


def loss_value(out, y, loss):
    """The training loss of raw outputs ``out`` (M, N) against label indices ``y`` (M,),
    computed in float64 exactly as the C kernels define it."""
    out = out.astype(np.float64)
    rows = np.arange(out.shape[0])
    if loss == "mse":
        out[rows, y] -= 1.0
        return float(np.einsum("ij,ij->", out, out) / out.shape[0])
    m = out.max(axis=1)
    lse = m + np.log(np.exp(out - m[:, None]).sum(axis=1))
    return float(np.mean(lse - out[rows, y]))


def fit_epochs(model, X, y, n_epochs, validation=None, early_stopping=False):
    """The epoch loop shared by ``fit`` and ``partial_fit``.

    Runs up to ``n_epochs`` epochs after those already in ``history_``; after each one
    :func:`end_epoch` records the logs and runs the printers, the callbacks and early stopping,
    and returns True to stop.
    """
    hooks = reporters_for(model.verbose) + list(model.callbacks or ())
    begin = [h for h in hooks if hasattr(h, "on_epoch_begin")]
    step_hooks = [h.on_batch_end for h in hooks if hasattr(h, "on_batch_end")]
    n = X.shape[0]
    if n > TRAIN_ACCURACY_SAMPLES:
        acc_idx = np.linspace(0, n - 1, TRAIN_ACCURACY_SAMPLES).astype(np.intp)
        acc_set = (X[acc_idx], y[acc_idx])
    else:
        acc_set = (X, y)
    stopper = EarlyStopping(model.monitor, model.patience, model.min_delta) if early_stopping else None
    first = len(model.loss_curve_)
    info = {"epochs": first + n_epochs, "steps": -(-n // model.batch_size), "samples": n}
    model._interrupted = False
    interrupt = _safety.InterruptFlag()   # Ctrl-C stops between two steps (fastmlp/_safety.py)
    try:
        with interrupt:
            for epoch in range(first, first + n_epochs):
                for h in begin:
                    h.on_epoch_begin(epoch, info)
                logs = run_epoch(model, X, y, epoch, step_hooks, interrupt)
                # "loss" stays the running mean of the epoch's batch losses (loss_curve_);
                # the accuracy is measured on (a sample of) the training set afterwards.
                logs["accuracy"] = evaluate(model, *acc_set, prefix="")["accuracy"]
                if validation is not None:
                    logs.update(evaluate(model, *validation, prefix="val_"))
                if end_epoch(model, epoch, logs, hooks, stopper) or interrupt.requested:
                    if interrupt.requested:
                        raise KeyboardInterrupt
                    break
    except KeyboardInterrupt:
        model._interrupted = True
        warnings.warn(f"Training interrupted by the user (KeyboardInterrupt): the model keeps "
                      f"the weights of the last finished step; loss_curve_ and history_ hold "
                      f"the {len(model.loss_curve_)} finished epochs.", UserWarning, stacklevel=3)
        return model
    if stopper is not None:
        stopper.restore(model)
    return model


def run_epoch(model, X, y, epoch, step_hooks=(), interrupt=None):
    """One pass over the data, one C call per batch; returns the epoch's training logs."""
    n = X.shape[0]
    bs = model.batch_size
    lr = model._lr_at(epoch)
    # int64 whatever the platform's default integer: train_step_rows takes int64 rows.
    order = model._rng.permutation(n).astype(np.int64, copy=False) if model.shuffle else None
    total = 0.0
    start_time = time.perf_counter()
    network = model._network
    n_threads = call_threads(model.n_threads)   # per call: the process's count is left alone
    kept = _safety.FiniteWeights(network)   # restored if this epoch makes a weight non-finite
    adam = model.solver == "adam"
    for step, start in enumerate(range(0, n, bs)):
        rows = min(bs, n - start)
        if adam:   # Adam's t counts this step (scikit-learn's AdamOptimizer)
            model._adam_t += 1
            rule = (model.beta_1, model.beta_2, model.epsilon, model._adam_t)
        else:
            rule = None
        drop = model._dropout_key() or {}   # the step's dropout masks' key, counting it
        try:
            if order is None:
                loss = network.train_step(X[start:start + bs], y[start:start + bs], lr,
                                          model.loss, model.alpha, model.momentum, model.nesterov,
                                          n_threads=n_threads, adam=rule, **drop)
            else:   # the step's threads gather the shuffled rows: no copy made here
                loss = network.train_step_rows(X, y, order[start:start + bs], lr, model.loss,
                                               model.alpha, model.momentum, model.nesterov,
                                               n_threads=n_threads, adam=rule, **drop)
        except FloatingPointError:   # the step made a weight non-finite
            loss = math.nan
        if not abs(loss) <= _FLOAT32_MAX:   # NaN, inf, or beyond float32 (see fm_train_step)
            raise kept.diverged(f"the loss became {loss} at epoch {epoch}, step {step}",
                                epoch, lr)
        total += loss * rows
        for hook in step_hooks:
            hook(epoch, step, loss)
        if interrupt is not None and interrupt.requested:
            raise KeyboardInterrupt
    if not kept.still_finite(X[:bs]):
        raise kept.diverged(f"the outputs became non-finite during epoch {epoch}",
                            epoch, lr, restore=True)
    seconds = time.perf_counter() - start_time
    return {"loss": total / n, "seconds": seconds,
            "samples_per_second": n / seconds if seconds > 0 else float("inf"), "lr": lr}


def evaluate(model, X, y, prefix):
    """The loss and accuracy of the model on (X, y), keyed ``prefix + "loss"`` and so on."""
    out = model._network.forward(X, n_threads=call_threads(model.n_threads))
    return {prefix + "loss": loss_value(out, y, model.loss),
            prefix + "accuracy": float(np.mean(np.argmax(out, axis=1) == y))}


def end_epoch(model, epoch, logs, hooks, stopper):
    """Record the epoch, run printers and callbacks, early stopping; True stops training.

    The records are built aside, then committed by one ``dict.update`` that no Ctrl-C can
    interrupt halfway: ``loss_curve_``, ``history_`` and ``n_iter_`` gain the epoch together
    or not at all, so the model stays savable.
    """
    done = len(model.loss_curve_)
    curve = model.loss_curve_ + [logs["loss"]]
    history = {key: model.history_.get(key, [math.nan] * done) + [logs.get(key, math.nan)]
               for key in list(model.history_) + [k for k in logs if k not in model.history_]}
    model.__dict__.update(loss_curve_=curve, history_=history, n_iter_=len(curve))
    stop = False
    for hook in hooks:
        try:
            if hook(epoch, dict(logs)):
                stop = True
        except StopTraining:
            stop = True
    if stopper is not None and stopper.update(model, epoch, logs):
        stop = True
    return stop


class EarlyStopping:
    """Tracks the best value of a monitored metric and the weights that gave it."""

    def __init__(self, monitor, patience, min_delta):
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.better = MONITORS[monitor]
        self.best = None
        self.best_epoch = None
        self.best_weights = None
        self.wait = 0

    def update(self, model, epoch, logs):
        value = logs.get(self.monitor)
        if value is None or not math.isfinite(value):
            raise ValueError(f"early stopping monitors {self.monitor!r}, which this epoch did "
                             f"not produce (logs: {sorted(logs)})")
        improved = self.best is None or (
            value < self.best - self.min_delta if self.better is min else value > self.best + self.min_delta)
        if improved:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            self.best_weights = model._network.get_weights()
            return False
        self.wait += 1
        return self.wait >= self.patience

    def restore(self, model):
        if self.best_weights is not None:
            model._network.set_weights(self.best_weights)
            model.best_epoch_ = self.best_epoch + 1   # the 0-based index -> the epoch's number
