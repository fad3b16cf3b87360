"""The training plot: the test set named as such, a linear loss axis, confusion counts large
enough to read, and a note on why the two losses differ."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")

from fastmlp.plot import check_plot_path, plot_training  # noqa: E402


def _figure(tmp_path):
    history = {"loss": list(np.linspace(0.9, 0.5, 30)), "val_loss": list(np.linspace(0.85, 0.45, 30)),
               "accuracy": list(np.linspace(0.7, 0.92, 30)),
               "val_accuracy": list(np.linspace(0.72, 0.92, 30))}
    confusion = np.full((10, 10), 7) + np.diag(np.full(10, 1100))
    path = tmp_path / "curves.png"
    fig = plot_training(history, path, confusion, list(range(10)), validation_name="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return fig


def test_plot_names_the_test_set_and_draws_loss_on_a_linear_axis(tmp_path):
    loss, accuracy, matrix = _figure(tmp_path).axes[:3]
    assert loss.get_yscale() == "linear"
    for ax in (loss, accuracy):
        names = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any(n.startswith("test") for n in names) and not any("validation" in n for n in names)
    assert list(loss.get_lines()[0].get_xdata()[:2]) == [1, 2]      # epochs from 1
    assert "test" in matrix.get_title()


def test_plot_counts_are_readable_and_the_losses_explained(tmp_path):
    fig = _figure(tmp_path)
    counts = [t for t in fig.axes[2].texts if t.get_text().isdigit()]
    assert len(counts) == 100 and min(t.get_fontsize() for t in counts) >= 9
    notes = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "averages the epoch's steps" in notes and "after the last step" in notes


def test_plot_path_of_an_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"no format '\.xyz'"):
        check_plot_path(tmp_path / "x.xyz")
    check_plot_path(tmp_path / "x.svg")
    check_plot_path(tmp_path / "x.PDF")
