"""Hostile files: model files, checkpoints and IDX files that try to exhaust memory, block,
or raise something other than ValueError (issue 25, items 2 and 5-9, 11)."""
import gzip
import io
import json
import os
import zipfile

import numpy as np
import pytest

from conftest import deflated_zeros, npy_header, rewrite_header, rewrite_header_text
from limited import run_limited

LOAD = "import fastmlp\nfastmlp.load({path!r})\n"
LOAD_CHECKPOINT = "from fastmlp import checkpoint\ncheckpoint.load_checkpoint({path!r})\n"
# A child that imports fastmlp peaks near 60 MB here; a case may add a little to that.
SMALL_RSS_MB = 160


def test_model_zip_bomb_is_refused_before_decompressing(model_zip_bomb):
    assert os.path.getsize(model_zip_bomb) < 2 << 20
    run_limited(LOAD.format(path=str(model_zip_bomb))).expect(
        ValueError, max_rss_mb=SMALL_RSS_MB, match="more than 64 times")


def test_load_budget_is_the_callers(model_file):
    run_limited(f"import fastmlp\nfastmlp.load({str(model_file)!r}, max_bytes=1000)").expect(
        ValueError, match="max_bytes")
    run_limited(f"import fastmlp\nfastmlp.load({str(model_file)!r}, max_bytes=10**9)").expect(None)


@pytest.mark.parametrize("batch_size", [3 * 10 ** 7, 2 ** 62])
def test_batch_size_from_a_file_allocates_nothing(model_file, tmp_path, batch_size):
    path = rewrite_header(model_file, tmp_path / "batch.npz", params={"batch_size": batch_size})
    code = LOAD.format(path=str(path)).replace("fastmlp.load", "m = fastmlp.load") + (
        "import numpy as np\nassert m.predict(np.zeros((3, 6), np.float32)).shape == (3,)\n")
    run_limited(code).expect(None, max_rss_mb=SMALL_RSS_MB)


@pytest.mark.parametrize("n_threads", [2 ** 40, 0, -1, 5000])
def test_n_threads_out_of_range_in_a_file_is_a_value_error(model_file, tmp_path, n_threads):
    path = rewrite_header(model_file, tmp_path / "threads.npz", params={"n_threads": n_threads})
    run_limited(LOAD.format(path=str(path))).expect(ValueError, match="n_threads")


def test_cli_evaluate_of_such_a_file_prints_a_clean_error(model_file, tmp_path):
    path = rewrite_header(model_file, tmp_path / "threads.npz", params={"n_threads": 2 ** 40})
    code = (f"import sys\nsys.argv = ['fastmlp', 'evaluate', {str(path)!r}]\n"
            f"from fastmlp.cli import main\nraise SystemExit(main())\n")
    outcome = run_limited(code)
    outcome.expect("SystemExit", match="1")
    assert "fastmlp: error:" in outcome.stderr and "n_threads" in outcome.stderr
    assert "Traceback" not in outcome.stderr


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "symlink", "fifo", "directory"])
def test_load_of_anything_but_a_regular_file_is_a_value_error(tmp_path, device):
    if device == "symlink":
        path = tmp_path / "model.npz"
        path.symlink_to("/dev/zero")
    elif device == "fifo":
        path = tmp_path / "fifo.npz"
        os.mkfifo(path)
    elif device == "directory":
        path = tmp_path
    else:
        path = device
    for code in (LOAD, LOAD_CHECKPOINT,
                 "from fastmlp.datasets import read_idx\nread_idx({path!r})\n"):
        run_limited(code.format(path=str(path)), timeout=15).expect(
            ValueError, max_rss_mb=SMALL_RSS_MB, match="regular file")


def test_inf_class_in_a_file_is_a_value_error(model_file, tmp_path):
    path = rewrite_header_text(model_file, tmp_path / "inf.npz", lambda text: text.replace(
        '"classes":{"dtype":"int64","values":[0,1,2]}',
        '"classes":{"dtype":"float64","values":[0.0,1.0,1e400]}'))
    run_limited(LOAD.format(path=str(path))).expect(ValueError, match="not finite")


def test_inf_class_at_fit_is_a_value_error():
    code = ("import numpy as np, fastmlp\n"
            "fastmlp.MLP(hidden_layer_sizes=(4,), epochs=1).fit(np.ones((4, 2), np.float32),\n"
            "    np.array([0.0, 1.0, float('inf'), 1.0]))\n")
    run_limited(code).expect(ValueError, match="infinity")
    code = code.replace("np.array([0.0, 1.0, float('inf'), 1.0])",
                        "np.array([0.0, 1.0, float('inf'), 1.0], dtype=object)")
    run_limited(code).expect(ValueError)


# ---- checkpoints: the model loader's rules, and only ValueError --------------------------------

def _members(path):
    with zipfile.ZipFile(path) as z:
        return {info.filename: (z.read(info.filename), info) for info in z.infolist()}


def _write(path, members, compress=None):
    with zipfile.ZipFile(path, "w") as z:
        for name, (data, _) in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = (compress or {}).get(name, zipfile.ZIP_STORED)
            z.writestr(info, data)
    return path


def _state(members, **changes):
    state = json.loads(np.load(io.BytesIO(members["state.npy"][0])).tobytes())
    state.update(changes)
    return state


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _with_state(members, text):
    return dict(members, **{"state.npy": (_npy_bytes(np.frombuffer(text.encode(), np.uint8)), None)})


def checkpoint_cases(ck, tmp):
    members = _members(ck)
    # a deflated member whose stream is corrupt (zlib.error)
    path = _write(tmp / "zlib.npz", members, {"state.npy": zipfile.ZIP_DEFLATED})
    raw = bytearray(path.read_bytes())
    start = raw.find(b"state.npy") + len("state.npy")
    raw[start + 20:start + 40] = b"\xff" * 20
    (tmp / "zlib.npz").write_bytes(bytes(raw))
    yield "corrupt deflate", tmp / "zlib.npz"
    # compression method 99 (NotImplementedError)
    raw = bytearray(ck.read_bytes())
    for marker in (b"PK\x03\x04", b"PK\x01\x02"):
        at = raw.find(marker)
        while at >= 0:
            offset = 8 if marker == b"PK\x03\x04" else 10
            raw[at + offset:at + offset + 2] = (99).to_bytes(2, "little")
            at = raw.find(marker, at + 4)
    (tmp / "method99.npz").write_bytes(bytes(raw))
    yield "method 99", tmp / "method99.npz"
    # JSON nested 100,000 deep (RecursionError)
    yield "deep json", _write(tmp / "deep.npz", _with_state(members, "[" * 100000 + "]" * 100000))
    # RNG states out of range (OverflowError)
    for value in (-1, 2 ** 200):
        state = _state(members)
        state["rng"]["state"]["state"] = value
        yield f"rng {value}", _write(tmp / f"rng{value > 0}.npz", _with_state(members, json.dumps(state)))
    # a declared shape of 2**33 (MemoryError)
    model = members["model.npy"][0]
    header_end = model.index(b"\n") + 1
    forged = npy_header((2 ** 33,), "|u1")
    yield "shape 2**33", _write(tmp / "shape.npz", dict(members, **{
        "model.npy": (forged + model[header_end:], None)}))
    # a velocity bomb: vW1 of 2**26 deflated zeros floats
    path = tmp / "vbomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, (data, _) in members.items():
            if name != "vW1.npy":
                z.writestr(name, data)
        deflated_zeros(z, "vW1.npy", 4 * 2 ** 26, npy_header((2 ** 26,)))
    yield "velocity bomb", path
    # a velocity of the right shape holding NaN
    vw = np.load(io.BytesIO(members["vW1.npy"][0]))
    yield "velocity NaN", _write(tmp / "vnan.npz", dict(members, **{
        "vW1.npy": (_npy_bytes(np.full_like(vw, np.nan)), None)}))


def test_every_corrupt_checkpoint_is_a_value_error(momentum_checkpoint, tmp_path):
    paths = list(checkpoint_cases(momentum_checkpoint, tmp_path))
    code = ("from fastmlp import checkpoint\nimport resource\nresults = {}\n"
            f"for name, path in {[(n, str(p)) for n, p in paths]!r}:\n"
            "    try:\n        checkpoint.load_checkpoint(path)\n        results[name] = 'loaded'\n"
            "    except ValueError:\n        results[name] = 'ValueError'\n"
            "    except BaseException as exc:\n        results[name] = type(exc).__name__\n"
            "bad = {k: v for k, v in results.items() if v != 'ValueError'}\n"
            "assert not bad, bad\n")
    run_limited(code).expect(None, max_rss_mb=SMALL_RSS_MB)


# ---- IDX files ---------------------------------------------------------------------------------

def test_idx_gzip_bomb_is_decompressed_no_further_than_its_known_size(tmp_path):
    """train-labels whose header declares 60000 labels but whose stream inflates to 256 MiB."""
    directory = tmp_path / "mnist"
    directory.mkdir()
    path = directory / "train-labels-idx1-ubyte.gz"
    zeros = bytes(1 << 20)
    with gzip.open(path, "wb") as f:
        f.write(b"\x00\x00\x08\x01" + (60000).to_bytes(4, "big"))
        for _ in range(256):
            f.write(zeros)
    assert path.stat().st_size < 1 << 20
    code = (f"from fastmlp.datasets import read_idx, _load_file\n"
            f"try:\n    read_idx({str(path)!r})\nexcept ValueError as exc:\n    first = exc\n"
            f"else:\n    raise AssertionError('read_idx accepted the bomb')\n"
            f"_load_file({str(path)!r}, 'train-labels-idx1-ubyte', 1)\n")
    run_limited(code).expect(ValueError, max_rss_mb=SMALL_RSS_MB, match="more than")


def test_idx_with_255_dimensions_names_the_file(tmp_path):
    path = tmp_path / "dims.idx"
    path.write_bytes(bytes([0, 0, 8, 255]) + (1).to_bytes(4, "big") * 255 + b"\x00")
    run_limited(f"from fastmlp.datasets import read_idx\nread_idx({str(path)!r})").expect(
        ValueError, match=str(path))
