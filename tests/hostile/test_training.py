"""Hostile hyperparameters, batch sizes, thread counts, inputs and interruptions
(issue 25, items 1, 2, 4, 5, 10, 11)."""
import pytest

from limited import run_limited

DATA = ("import numpy as np, fastmlp, warnings\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.random((200, 20), dtype=np.float32)\n"
        "y = np.arange(200) % 3\n")
ALL_FINITE = "assert all(np.isfinite(w).all() for w in m.get_weights()), 'non-finite weights'\n"


@pytest.mark.parametrize("lr", [1e30, 1e38, 3e38])
@pytest.mark.parametrize("epochs", [1, 3])
def test_huge_learning_rate_never_leaves_non_finite_weights(lr, epochs):
    code = DATA + (
        f"m = fastmlp.MLP(hidden_layer_sizes=(16,), epochs={epochs}, learning_rate={lr!r},\n"
        f"                random_state=0)\n"
        "try:\n    m.fit(X, y)\nexcept ValueError as exc:\n    assert 'diverged' in str(exc), exc\n"
        + ALL_FINITE + "assert np.isfinite(m.predict_proba(X)).all()\n")
    run_limited(code).expect(None)


@pytest.mark.parametrize("param", ["learning_rate", "alpha"])
@pytest.mark.parametrize("value", [1e39, 1e300])
def test_hyperparameters_beyond_float32_are_a_value_error(param, value):
    code = DATA + (f"m = fastmlp.MLP(hidden_layer_sizes=(16,), epochs=1, {param}={value!r})\n"
                   "m.fit(X, y)\n")
    run_limited(code).expect(ValueError, match="float32")


def test_memory_follows_the_data_not_batch_size():
    code = DATA + ("m = fastmlp.MLP(hidden_layer_sizes=(64,), epochs=1, batch_size=3 * 10**6)\n"
                   "m.fit(X[:10], y[:10] % 2)\n")
    run_limited(code, memory_mb=768).expect(None, max_rss_mb=160)


@pytest.mark.parametrize("n_threads", [2 ** 40, 0, 4097, True, 2.0])
def test_n_threads_out_of_range_is_a_value_error(n_threads):
    code = DATA + f"fastmlp.MLP(hidden_layer_sizes=(4,), epochs=1, n_threads={n_threads!r}).fit(X, y)\n"
    run_limited(code).expect(ValueError, match="n_threads")
    run_limited(f"import fastmlp\nfastmlp.set_num_threads({n_threads!r})").expect(
        None if n_threads == 0 else ValueError)


def test_a_thousand_threads_are_clamped_before_openmp_sees_them():
    """Under a 4 GiB address space libgomp cannot start 1000 threads (and ends the process)."""
    code = DATA + (
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    fastmlp.peak_gflops(n_threads=1000, seconds=0.01)\n"
        "    fastmlp.set_num_threads(1000)\n"
        "    fastmlp.set_num_threads(0)\n"
        "    fastmlp.MLP(hidden_layer_sizes=(256, 256), batch_size=200, epochs=1,\n"
        "                n_threads=1000).fit(X, y)\n"
        "assert sum('per usable CPU' in str(w.message) for w in caught) >= 3, caught\n")
    run_limited(code, memory_mb=4096, timeout=60).expect(None)


def test_huge_finite_input_gives_finite_probabilities_or_a_value_error():
    code = DATA + (
        "m = fastmlp.MLP(hidden_layer_sizes=(16,), epochs=2, random_state=0, loss='cross_entropy').fit(X, y)\n"
        "for scale in (3e38, -3e38, 1e30):\n"
        "    Z = np.full((4, 20), scale, np.float32)\n"
        "    Z[1] = 0\n"
        "    try:\n"
        "        p = m.predict_proba(Z)\n"
        "    except ValueError as exc:\n"
        "        assert 'scale X' in str(exc), exc\n"
        "        continue\n"
        "    assert np.isfinite(p).all() and np.allclose(p.sum(axis=1), 1), p\n"
        "    assert (p.argmax(axis=1) == np.searchsorted(m.classes_, m.predict(Z))).all()\n")
    run_limited(code).expect(None)


def test_an_interrupt_at_any_line_of_the_epoch_end_leaves_a_savable_model(tmp_path):
    """A KeyboardInterrupt raised at every line of _end_epoch (by a trace function), in the
    second epoch: the records are the first epoch's or both, whole, and save + load work."""
    code = DATA + f"""
import os, sys
path = {str(tmp_path / "m.npz")!r}

def fit_interrupted_at(line):
    count = [0]
    epochs = [0]

    def tracer(frame, event, arg):
        if frame.f_code.co_name != "end_epoch":   # fastmlp/_training.py
            return None
        def local(frame, event, arg):
            if event == "line":
                if epochs[0] == 2:
                    count[0] += 1
                    if count[0] == line:
                        raise KeyboardInterrupt
            return local
        if event == "call":
            epochs[0] += 1
        return local

    m = fastmlp.MLP(hidden_layer_sizes=(8,), epochs=3, batch_size=50, random_state=0)
    sys.settrace(tracer)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(X, y)
    finally:
        sys.settrace(None)
    return m, count[0]

_, lines = fit_interrupted_at(-1)
assert lines > 3, lines
for line in range(1, lines + 1):
    m, _ = fit_interrupted_at(line)
    n = len(m.loss_curve_)
    assert n in (1, 2, 3) and m.n_iter_ == n, (line, n, m.n_iter_)
    assert all(len(v) == n for v in m.history_.values()), (line, m.history_)
    m.save(path)
    assert fastmlp.load(path).n_iter_ == n
"""
    run_limited(code, timeout=60).expect(None)


def test_temporary_files_of_a_killed_run_are_removed_by_the_next(tmp_path):
    old = 1_000_000_000   # 2001: older than any run
    (tmp_path / "ck").mkdir()
    stale = [tmp_path / ".m.npz.abcd1234.tmp", tmp_path / "ck" / ".checkpoint.npz.zz_9zz_9.tmp"]
    stale_dir = tmp_path / "ck" / "tmpab12cd34"
    stale_dir.mkdir()
    stale.append(stale_dir / "model.npz")
    stale.append(stale_dir / ".model.npz.q1w2e3r4.tmp")
    kept = [tmp_path / ".m.npz.notours.tmp", tmp_path / ".other.npz.abcd1234.tmp"]
    user_dir = tmp_path / "ck" / "tmpuser1234"
    user_dir.mkdir()
    kept.append(user_dir / "notes.txt")
    import os
    for path in stale + kept:
        path.write_bytes(b"x")
        os.utime(path, (old, old))
    code = DATA + (
        f"from fastmlp import checkpoint\n"
        f"m = fastmlp.MLP(hidden_layer_sizes=(4,), epochs=1).fit(X, y)\n"
        f"m.save({str(tmp_path / 'm.npz')!r})\n"
        f"checkpoint.fit(fastmlp.MLP(hidden_layer_sizes=(4,), epochs=1), X, y, "
        f"{str(tmp_path / 'ck')!r})\n")
    run_limited(code).expect(None)
    assert [p for p in stale if p.exists()] == []
    assert not stale_dir.exists()
    assert all(p.exists() for p in kept)
