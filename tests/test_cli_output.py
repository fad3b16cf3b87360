"""What the command line shows a user: progress (--verbose), errors worth reading, a pipe closed
early, the predict command's scores named for what they are, and checks made before training."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from fastmlp import MLP, datasets
from fastmlp.cli import EXIT_BROKEN_PIPE, main
from fastmlp.image import load_digit
from mnist_data import needs_mnist
from reliability_util import python_env

STEP_LINE = re.compile(r"^\d+ \d+ loss: \d+\.\d{6}$", re.MULTILINE)
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+): \d+\.\d\d s, mean loss \d\.\d{6}, test accuracy 0\.\d{4}$",
                        re.MULTILINE)
TINY = ["train", "--train-samples", "600", "--epochs", "2", "--hidden", "8", "--batch-size", "20"]


class Terminal:
    """A text stream that says it is a terminal, as sys.stdout does on one."""

    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(text)
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return True

    def getvalue(self):
        return "".join(self.parts)


@needs_mnist
def test_train_piped_prints_the_tutorial_lines_counting_epochs_from_0_and_1(capsys):
    assert main(TINY) == 0
    out = capsys.readouterr().out
    steps = [line.split()[:2] for line in STEP_LINE.findall(out)]
    assert steps == [["0", "0"], ["1", "0"]]          # the tutorial's own count, from 0
    assert [m[:2] for m in EPOCH_LINE.findall(out)] == [("1", "2"), ("2", "2")]   # from 1
    assert "\r" not in out


@needs_mnist
def test_train_on_a_terminal_draws_a_bar(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert main(TINY) == 0
    out = terminal.getvalue()
    assert "\r" in out and "ETA" in out and "[" in out
    assert not STEP_LINE.search(out)
    assert [m[:2] for m in EPOCH_LINE.findall(out.replace("\r\033[K", "\n"))] == [("1", "2"), ("2", "2")]


@needs_mnist
def test_train_in_a_real_terminal_draws_a_bar():
    pty = pytest.importorskip("pty")
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "fastmlp"] + TINY, stdout=terminal,
                            stderr=subprocess.PIPE, env=python_env())
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:   # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    out = b"".join(chunks).decode()
    assert "ETA" in out and "epoch 2/2: " in out and not STEP_LINE.search(out.replace("\r\n", "\n"))


@needs_mnist
@pytest.mark.parametrize("verbose, steps, epochs", [("0", 0, 0), ("1", 2, 2), ("2", 0, 2)])
def test_train_verbose_means_what_mlp_verbose_means(verbose, steps, epochs, capsys):
    assert main(TINY + ["--verbose", verbose]) == 0
    out = capsys.readouterr().out
    assert len(STEP_LINE.findall(out)) == steps and len(EPOCH_LINE.findall(out)) == epochs
    assert out.splitlines()[-1].startswith("test accuracy: ")


def test_missing_mnist_says_what_to_do_and_names_data_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(datasets, "MIRRORS", ["http://127.0.0.1:9/"])   # refused at once
    monkeypatch.setattr(datasets, "RETRY_DELAY", 0)
    assert main(["train", "--data-dir", str(tmp_path / "none"), "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"fastmlp: error: MNIST data not found in {tmp_path / 'none'}")
    for needed in list(datasets.MNIST_FILES) + ["FASTMLP_DATA", "--data-dir", "http://127.0.0.1:9/"]:
        assert needed in err
    assert "data_dir=" not in err


def test_a_pipe_closed_early_ends_quietly_as_it_ends_cat():
    reader, writer = os.pipe()
    os.close(reader)   # the reader is gone before the first line is written
    proc = subprocess.run([sys.executable, "-m", "fastmlp", "info"], stdout=writer,
                          stderr=subprocess.PIPE, text=True, env=python_env(), timeout=60)
    os.close(writer)
    assert proc.stderr == ""
    assert proc.returncode == EXIT_BROKEN_PIPE == 141   # a shell shows 141 for `cat | head -1`


def test_a_plot_format_matplotlib_lacks_fails_before_training(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    # --data-dir points nowhere: reaching MNIST would be another error
    assert main(["train", "--plot", str(tmp_path / "curves.xyz"),
                 "--data-dir", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no format '.xyz'" in err and ".png" in err


def _digit_model(tmp_path, loss):
    """A 784-16-10 model made from weights (no training): the digit image is one pixel block."""
    rng = np.random.default_rng(3)
    model = MLP(hidden_layer_sizes=(16,), loss=loss)
    model.set_weights([rng.normal(scale=0.1, size=(784, 16)).astype(np.float32),
                       np.zeros(16, np.float32),
                       rng.normal(scale=0.1, size=(16, 10)).astype(np.float32),
                       np.zeros(10, np.float32)])
    path = tmp_path / f"{loss}.npz"
    model.save(path)
    return model, path


@pytest.mark.parametrize("loss, name", [("mse", "outputs"), ("cross_entropy", "probabilities")])
def test_predict_names_the_scores_for_the_loss(loss, name, tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    model, path = _digit_model(tmp_path, loss)
    paper = np.full((60, 60), 255, np.uint8)
    paper[15:45, 25:35] = 0
    image = tmp_path / "digit.png"
    Image.fromarray(paper).save(image)
    assert main(["predict", str(path), str(image)]) == 0
    line = capsys.readouterr().out.strip()
    m = re.fullmatch(re.escape(str(image)) + rf": (\d)  \({name} (\d): (-?\d\.\d{{3}}), "
                     rf"\d: -?\d\.\d{{3}}, \d: -?\d\.\d{{3}}\)", line)
    assert m, line
    x = load_digit(image).reshape(1, -1)
    scores = model.predict_proba(x)[0] if loss == "cross_entropy" else model._outputs(x)[0]
    assert m.group(1) == m.group(2) == str(model.predict(x)[0])
    assert float(m.group(3)) == pytest.approx(scores.max(), abs=5e-4)
