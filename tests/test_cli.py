"""The fastmlp command line: train (--save, --plot), evaluate, predict, info, --help and errors."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import fastmlp
from fastmlp.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_files):
    directory = tmp_path_factory.mktemp("cli")
    model, plot = directory / "model.npz", directory / "curves.png"
    argv = ["train", "--train-samples", "3000", "--epochs", "2", "--hidden", "32",
            "--loss", "cross_entropy", "--lr", "0.05", "--momentum", "0.9", "--batch-size", "20",
            "--shuffle", "--save", str(model)]
    if _have("matplotlib"):
        argv += ["--plot", str(plot)]
    return directory, model, plot, argv


def _have(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def test_train_prints_the_tutorial_lines_and_saves(trained, capsys):
    directory, model, plot, argv = trained
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    steps = [line for line in out if re.fullmatch(r"\d+ \d+ loss: \d+\.\d{6}", line)]
    assert [line.split()[:2] for line in steps] == [["0", "0"], ["0", "100"], ["1", "0"], ["1", "100"]]
    epochs = [line for line in out if line.startswith("epoch ")]
    assert len(epochs) == 2
    assert re.fullmatch(r"epoch 2/2: \d+\.\d\d s, mean loss \d\.\d{6}, test accuracy 0\.\d{4}", epochs[1])
    final = [line for line in out if line.startswith("test accuracy: ")]
    assert len(final) == 1 and float(final[0].split(": ")[1]) > 0.8
    loaded = fastmlp.load(model)
    assert loaded.n_features_in_ == 784 and loaded.validation_data is None
    assert len(loaded.history_["val_accuracy"]) == 2
    if _have("matplotlib"):
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quiet_prints_one_line(mnist_files, capsys):
    assert main(["train", "--train-samples", "500", "--epochs", "1", "--hidden", "8", "-q"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("test accuracy: ")


def test_train_with_dropout_saves_the_rates(mnist_files, tmp_path, capsys):
    path = tmp_path / "dropout.npz"
    assert main(["train", "--train-samples", "1000", "--epochs", "2", "--hidden", "32", "16",
                 "--dropout", "0.2", "0.1", "--lr", "0.05", "--loss", "cross_entropy", "-q",
                 "--save", str(path)]) == 0
    assert capsys.readouterr().out.startswith("test accuracy: ")
    assert tuple(fastmlp.load(path).dropout) == (0.2, 0.1)
    assert main(["train", "--dropout", "1.0", "-q"]) != 0   # refused before reading MNIST


def test_train_with_adam_saves_the_solver(mnist_files, tmp_path, capsys):
    path = tmp_path / "adam.npz"
    assert main(["train", "--train-samples", "1000", "--epochs", "2", "--hidden", "16",
                 "--solver", "adam", "--lr", "0.001", "--loss", "cross_entropy", "--batch-size",
                 "20", "-q",
                 "--save", str(path)]) == 0
    accuracy = float(capsys.readouterr().out.split(": ")[1])
    assert accuracy > 0.7
    assert fastmlp.load(path).solver == "adam"
    with pytest.raises(SystemExit) as info:
        main(["train", "--solver", "lbfgs"])
    assert info.value.code == 2


def test_evaluate_prints_aligned_tables(trained, capsys):
    directory, model, _, argv = trained
    if not model.exists():
        main(argv)
        capsys.readouterr()
    assert main(["evaluate", str(model)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"test accuracy: 0\.\d{4} \(\d+ of 10000\)", out[0])
    header = out.index("confusion matrix (rows: true label, columns: predicted label)")
    rows = out[header + 2:header + 12]
    assert len({len(r) for r in rows}) == 1  # aligned
    counts = np.array([[int(v) for v in r.split()[1:]] for r in rows])
    assert counts.sum() == 10000
    table = out[out.index("class  precision  recall  support") + 1:][:10]
    assert len(table) == 10 and len({len(r) for r in table}) == 1
    assert sum(int(r.split()[-1]) for r in table) == 10000


def test_predict_reads_drawn_digits(trained, capsys, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    directory, model, _, argv = trained
    if not model.exists():
        main(argv)
    capsys.readouterr()
    (_, _), (x_test, y_test) = fastmlp.datasets.load_mnist()
    paths = []
    for i in range(10):
        paper = np.full((150, 170), 255, np.uint8)
        paper[20:132, 40:152] = 255 - np.kron(x_test[i], np.ones((4, 4), np.uint8))
        path = tmp_path / f"d{i}.png"
        Image.fromarray(paper).save(path)
        paths.append(str(path))
    assert main(["predict", str(model)] + paths) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 10
    predicted = []
    for path, line in zip(paths, out):
        m = re.fullmatch(re.escape(path) + r": (\d)  \(probabilities (\d): (\d\.\d{3}), (\d): \d\.\d{3}, (\d): \d\.\d{3}\)", line)
        assert m, line
        assert m.group(1) == m.group(2)
        predicted.append(int(m.group(1)))
    assert np.mean(np.array(predicted) == y_test[:10]) >= 0.8


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "missing.npz"], "missing.npz: no such file"),
    (["predict", "missing.npz", "x.png"], "missing.npz: no such file"),
    (["train", "--epochs", "0", "--train-samples", "100"], "epochs must be a positive integer"),
    (["train", "--lr", "-1", "--train-samples", "100"], "learning_rate"),
    (["train", "--save", "/nonexistent/dir/m.npz"], "does not exist"),
    (["info", "--threads", "0"], "--threads must be >= 1, got 0"),
])
def test_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fastmlp: error: ") and message in err


def test_bad_model_file_and_bad_image(tmp_path, trained, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    assert main(["evaluate", str(bad)]) == 1
    assert "not a valid fastmlp model file" in capsys.readouterr().err
    _, model, _, argv = trained
    if not model.exists():
        main(argv)
    pytest.importorskip("PIL")
    image = tmp_path / "notimage.png"
    image.write_bytes(b"garbage")
    assert main(["predict", str(model), str(image)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read the image" in err


def test_usage_errors_and_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--epochs", "x"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fastmlp train: error: argument --epochs" in err
    for command, words in (("train", ["--save", "--plot", "--loss", "--momentum", "--shuffle",
                                      "--lr-schedule", "--data-dir", "--seed", "--quiet"]),
                           ("evaluate", ["model", "--data-dir"]),
                           ("predict", ["model", "IMAGE", "--top", "--threshold"]),
                           ("info", ["--peak", "--json", "--threads"])):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        assert "Example" in text and all(w in text for w in words), command
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert all(c in text for c in ("train", "evaluate", "predict", "info", "--version"))
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"fastmlp {fastmlp.__version__}\n"


@pytest.mark.usefixtures("restore_isa_and_threads")
def test_info_prints_the_build_as_a_table(capsys):
    assert main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = dict(re.fullmatch(r"(\S+(?: \S+)?) {2,}(.+)", line).groups() for line in lines)
    info = fastmlp.build_info()
    assert table["fastmlp"] == fastmlp.__version__
    assert table["instruction set"].startswith(info["isa"] + " (this CPU: ")
    assert table["threads"] == str(fastmlp.get_num_threads())
    assert table["OpenMP"] == ("yes" if info["openmp"] else "no")
    assert table["compiler"] == info["compiler"]
    assert "FMA peak" not in table


@pytest.mark.usefixtures("restore_isa_and_threads")
def test_info_json_with_the_peak_on_one_thread(capsys):
    assert main(["info", "--json", "--peak", "--threads", "1"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_threads"] == 1 and info["version"] == fastmlp.__version__
    assert info["isa"] in info["isa_available"]
    assert info["peak_gflops"] > 0


def test_missing_matplotlib_names_the_extra(monkeypatch, capsys, tmp_path):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["train", "--plot", str(tmp_path / "p.png")]) == 1
    assert 'pip install "fastmlp[plot]"' in capsys.readouterr().err


def test_python_dash_m_runs():
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(fastmlp.__file__)))
    result = subprocess.run([sys.executable, "-m", "fastmlp", "--help"], capture_output=True,
                            text=True, timeout=60, env=env)
    assert result.returncode == 0 and "evaluate" in result.stdout
