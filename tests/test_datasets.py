"""Tests for fastmlp.datasets: the IDX parser, MNIST loading and downloading.

Downloads only ever go to a local server on 127.0.0.1 (see http_fixtures.py);
an autouse fixture points the default mirrors at a closed local port so that
no test can reach the internet. The real-data test runs when FASTMLP_DATA
names a directory holding the four MNIST files, and is skipped otherwise.
"""

import gzip
import hashlib
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastmlp import datasets
from fastmlp.datasets import (
    MNISTIntegrityError,
    MNISTNotFoundError,
    download_mnist,
    load_mnist,
    mnist_dir,
    read_idx,
)

try:
    from http_fixtures import LocalHTTPServer, closed_port_url
except ImportError:  # tests/ turned into a package
    from tests.http_fixtures import LocalHTTPServer, closed_port_url

NAMES = list(datasets.MNIST_FILES)
TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = NAMES
_CI = bool(os.environ.get("CI"))
# Derandomized in CI, like NumPy's "np.test() profile".
HYPOTHESIS = settings(
    max_examples=150, deadline=None, derandomize=_CI, database=None if _CI else settings().database
)
_TYPE_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(arr, magic=None):
    """Encode ``arr`` as IDX (big-endian), optionally with a forced magic number."""
    arr = np.asarray(arr)
    if magic is None:
        magic = bytes([0, 0, _TYPE_CODES[arr.dtype.str[1:]], arr.ndim])
    dims = b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return magic + dims + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def gz(data):
    return gzip.compress(data, mtime=0)


def write(path, data):
    path.write_bytes(data)
    return path


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path_factory):
    """No internet, no sleeping between retries, no access to the user's cache."""
    monkeypatch.setattr(datasets, "MIRRORS", (closed_port_url(),))
    monkeypatch.setattr(datasets, "RETRY_DELAY", 0.0)
    monkeypatch.setattr(datasets, "TIMEOUT", 5.0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg")))
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture
def synthetic(monkeypatch):
    """Small MNIST-shaped IDX files; MNIST_FILES patched with their checksums."""
    rng = np.random.default_rng(0)
    arrays = {
        TRAIN_IMAGES: rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        TRAIN_LABELS: np.array([5, 0, 4], dtype=np.uint8),
        TEST_IMAGES: rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        TEST_LABELS: np.array([7, 2], dtype=np.uint8),
    }
    raw = {name: idx_bytes(a) for name, a in arrays.items()}
    monkeypatch.setattr(
        datasets, "MNIST_FILES", {n: hashlib.sha256(raw[n]).hexdigest() for n in NAMES}
    )

    class Synthetic:
        pass

    s = Synthetic()
    s.arrays, s.raw, s.gz = arrays, raw, {n: gz(b) for n, b in raw.items()}
    return s


@pytest.fixture
def server():
    with LocalHTTPServer() as srv:
        yield srv


def serve(server, synthetic, prefix=""):
    for name in NAMES:
        server.files[f"/{prefix}{name}.gz"] = synthetic.gz[name]


def check_loaded(result, synthetic):
    (x_train, y_train), (x_test, y_test) = result
    for arr, name in zip((x_train, y_train, x_test, y_test), NAMES):
        assert arr.dtype == np.uint8
        np.testing.assert_array_equal(arr, synthetic.arrays[name])


def assert_no_leftovers(directory, allowed=()):
    assert sorted(os.listdir(directory)) == sorted(allowed)


# ---------------------------------------------------------------------------
# Real data


def test_real_mnist(mnist_files):
    assert mnist_dir() == mnist_files
    (x_train, y_train), (x_test, y_test) = load_mnist(download=False)
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    for arr in (x_train, y_train, x_test, y_test):
        assert arr.dtype == np.uint8 and arr.flags.c_contiguous and arr.flags.writeable
    assert y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert y_test[:5].tolist() == [7, 2, 1, 0, 4]
    assert x_train.min() == 0 and x_train.max() == 255
    assert x_test.min() == 0 and x_test.max() == 255
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))
    assert np.bincount(y_train).tolist()[:2] == [5923, 6742]


# ---------------------------------------------------------------------------
# IDX parser


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_read_idx_round_trip(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([3, 1], dtype=np.uint8)
    for arr, name in ((images, "images"), (labels, "labels")):
        data = idx_bytes(arr)
        suffix = ".gz" if compress else ""
        path = write(tmp_path / (name + suffix), gz(data) if compress else data)
        out = read_idx(path)
        assert out.dtype == np.uint8 and out.flags.writeable
        np.testing.assert_array_equal(out, arr)
        np.testing.assert_array_equal(read_idx(str(path), ndim=arr.ndim), arr)
        np.testing.assert_array_equal(read_idx(path.read_bytes()), arr)


def test_read_idx_magic_numbers():
    assert idx_bytes(np.zeros((1, 28, 28), np.uint8))[:4] == bytes.fromhex("00000803")
    assert idx_bytes(np.zeros(1, np.uint8))[:4] == bytes.fromhex("00000801")


@pytest.mark.parametrize("dtype", ["i1", "i2", "i4", "f4", "f8"])
def test_read_idx_other_types(dtype):
    arr = np.array([[-3, 2, 1], [0, 100, -100]]).astype(dtype)
    out = read_idx(idx_bytes(arr))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_read_idx_empty_dimension():
    out = read_idx(idx_bytes(np.zeros((0, 28, 28), np.uint8)))
    assert out.shape == (0, 28, 28)


GOOD = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))

MALFORMED = {
    "empty": (b"", "shorter than the 4-byte magic"),
    "short magic": (b"\x00\x00\x08", "shorter than the 4-byte magic"),
    "bad magic": (b"\x01\x00" + GOOD[2:], "bad IDX magic number 0x01000802"),
    "gzip-ish magic": (b"\x00\x01" + GOOD[2:], "bad IDX magic"),
    "unknown type": (GOOD[:2] + b"\x07" + GOOD[3:], "unsupported IDX type code 0x07"),
    "zero dims": (b"\x00\x00\x08\x00", "zero dimensions"),
    "truncated header": (GOOD[:9], "truncated IDX header"),
    "too many dims": (GOOD[:3] + b"\x03" + GOOD[4:], "truncated IDX data"),
    "too few dims": (GOOD[:3] + b"\x01" + GOOD[4:], "trailing bytes"),
    "truncated data": (GOOD[:-1], "truncated IDX data"),
    "trailing bytes": (GOOD + b"\x00", "1 trailing bytes"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_read_idx_malformed(tmp_path, case, compress):
    data, message = MALFORMED[case]
    suffix = ".gz" if compress else ""
    path = write(tmp_path / ("bad.idx" + suffix), gz(data) if compress else data)
    with pytest.raises(ValueError, match=message) as excinfo:
        read_idx(path)
    assert str(excinfo.value).startswith(str(path) + ":")
    with pytest.raises(ValueError, match="^mine.idx: "):
        read_idx(path.read_bytes(), name="mine.idx")


def test_read_idx_wrong_dimension_count(tmp_path):
    path = write(tmp_path / "labels", idx_bytes(np.zeros(4, np.uint8)))
    message = r"expected 3 dimension\(s\) \(magic 0x00000803\), got 1 "
    with pytest.raises(ValueError, match=message) as excinfo:
        read_idx(path, ndim=3)
    assert str(excinfo.value).startswith(str(path) + ":")


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda z: z[: len(z) // 2],  # truncated stream
        lambda z: z[:-4],  # missing size trailer
        lambda z: z[:12] + bytes(b ^ 0xFF for b in z[12:20]) + z[20:],  # damaged deflate data
        lambda z: z[:-8] + b"\x00\x00\x00\x00" + z[-4:],  # wrong CRC
        lambda z: z + b"garbage!",  # trailing junk
        lambda z: z[:2],  # bare magic
    ],
    ids=["truncated", "no-trailer", "damaged", "bad-crc", "trailing", "magic-only"],
)
def test_read_idx_corrupt_gzip(tmp_path, corrupt):
    path = write(tmp_path / "images.gz", corrupt(gz(GOOD)))
    with pytest.raises(ValueError, match="corrupt gzip stream") as excinfo:
        read_idx(path)
    assert str(path) in str(excinfo.value)


def test_read_idx_gz_suffix_requires_gzip(tmp_path):
    path = write(tmp_path / "labels.gz", GOOD)
    with pytest.raises(ValueError, match="corrupt gzip stream"):
        read_idx(path)
    # Without the suffix, the content decides.
    np.testing.assert_array_equal(read_idx(write(tmp_path / "a", gz(GOOD))), read_idx(GOOD))


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


def _valid_arrays():
    shapes = st.lists(st.integers(0, 4), min_size=1, max_size=3)
    return st.builds(
        lambda shape, dtype, seed: np.random.default_rng(seed)
        .integers(-50, 50, shape)
        .astype(dtype),
        shapes,
        st.sampled_from(list(_TYPE_CODES)),
        st.integers(0, 2**16),
    )


def _parses_or_value_error(data):
    try:
        out = read_idx(data, name="fuzz")
    except ValueError as exc:
        assert str(exc).startswith("fuzz: ")
    else:
        assert isinstance(out, np.ndarray)


@HYPOTHESIS
@given(
    st.one_of(
        st.binary(max_size=64),
        st.binary(max_size=64).map(lambda b: b"\x1f\x8b" + b),
        st.tuples(
            st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]),
            st.integers(0, 4),
            st.binary(max_size=64),
        ).map(lambda t: bytes([0, 0, t[0], t[1]]) + t[2]),
    )
)
def test_read_idx_random_bytes(data):
    _parses_or_value_error(data)


@HYPOTHESIS
@given(_valid_arrays(), st.booleans(), st.data())
def test_read_idx_truncations_always_fail(arr, compress, data):
    full = idx_bytes(arr)
    np.testing.assert_array_equal(read_idx(gz(full) if compress else full), arr)
    blob = gz(full) if compress else full
    cut = data.draw(st.integers(0, len(blob) - 1), label="cut")
    with pytest.raises(ValueError, match="^fuzz: "):
        read_idx(blob[:cut], name="fuzz")


@HYPOTHESIS
@given(_valid_arrays(), st.booleans(), st.data())
def test_read_idx_byte_flips(arr, compress, data):
    blob = bytearray(gz(idx_bytes(arr)) if compress else idx_bytes(arr))
    i = data.draw(st.integers(0, len(blob) - 1), label="index")
    blob[i] ^= data.draw(st.integers(1, 255), label="xor")
    _parses_or_value_error(bytes(blob))


# ---------------------------------------------------------------------------
# Directory resolution


def test_mnist_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("FASTMLP_DATA", raising=False)
    assert mnist_dir() == str(tmp_path / "xdg" / "fastmlp")
    monkeypatch.setenv("FASTMLP_DATA", "")  # empty means unset
    assert mnist_dir() == str(tmp_path / "xdg" / "fastmlp")
    monkeypatch.setenv("FASTMLP_DATA", str(tmp_path / "env"))
    assert mnist_dir() == str(tmp_path / "env")
    assert mnist_dir(tmp_path / "arg") == str(tmp_path / "arg")


def test_mnist_dir_home_fallback(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTMLP_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    for xdg in (None, "", "relative/cache"):  # unset, empty or relative: ignored
        if xdg is None:
            monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        else:
            monkeypatch.setenv("XDG_CACHE_HOME", xdg)
        assert mnist_dir() == str(tmp_path / ".cache" / "fastmlp")
    assert mnist_dir("~/data") == str(tmp_path / "data")


# ---------------------------------------------------------------------------
# Loading local files


@pytest.mark.parametrize("layout", ["gzip", "raw", "mixed", "both"])
def test_load_local(tmp_path, synthetic, layout):
    for i, name in enumerate(NAMES):
        if layout in ("gzip", "both") or (layout == "mixed" and i % 2):
            write(tmp_path / (name + ".gz"), synthetic.gz[name])
        if layout in ("raw", "both") or (layout == "mixed" and not i % 2):
            write(tmp_path / name, synthetic.raw[name])
    check_loaded(load_mnist(tmp_path, download=False), synthetic)


def test_load_from_env(tmp_path, synthetic, monkeypatch):
    for name in NAMES:
        write(tmp_path / (name + ".gz"), synthetic.gz[name])
    monkeypatch.setenv("FASTMLP_DATA", str(tmp_path))
    check_loaded(load_mnist(), synthetic)


def test_load_checksum_mismatch(tmp_path, synthetic):
    for name in NAMES:
        write(tmp_path / (name + ".gz"), synthetic.gz[name])
    other = synthetic.arrays[TEST_LABELS].copy()
    other[0] = 3
    bad = write(tmp_path / (TEST_LABELS + ".gz"), gz(idx_bytes(other)))
    with pytest.raises(MNISTIntegrityError, match="SHA-256") as excinfo:
        load_mnist(tmp_path)
    assert str(bad) in str(excinfo.value)
    assert bad.exists()  # a user's file is never deleted


def _patched_set(monkeypatch, tmp_path, arrays):
    raw = {n: idx_bytes(a) for n, a in arrays.items()}
    monkeypatch.setattr(
        datasets, "MNIST_FILES", {n: hashlib.sha256(raw[n]).hexdigest() for n in NAMES}
    )
    for name in NAMES:
        write(tmp_path / name, raw[name])


@pytest.mark.parametrize(
    "change, message",
    [
        ({TRAIN_LABELS: np.zeros(2, np.uint8)}, "holds 3 images but .* holds 2 labels"),
        ({TEST_IMAGES: np.zeros((2, 27, 28), np.uint8)}, "expected 28x28 images"),
        ({TRAIN_LABELS: np.array([1, 10, 2], np.uint8)}, "label 10 out of range"),
        ({TRAIN_LABELS: np.zeros((3, 1), np.uint8)}, r"expected 1 dimension\(s\)"),
        ({TEST_LABELS: np.zeros(2, np.int16)}, "expected uint8"),
    ],
    ids=["counts", "image-size", "label-range", "label-ndim", "dtype"],
)
def test_load_inconsistent(tmp_path, synthetic, monkeypatch, change, message):
    arrays = dict(synthetic.arrays, **change)
    _patched_set(monkeypatch, tmp_path, arrays)
    with pytest.raises(ValueError, match=message) as excinfo:
        load_mnist(tmp_path, download=False)
    assert str(tmp_path / next(iter(change))) in str(excinfo.value)


# ---------------------------------------------------------------------------
# Missing files


def _assert_clear_not_found(exc, directory, missing=NAMES):
    message = str(exc)
    assert isinstance(exc, FileNotFoundError)
    assert str(directory) in message
    for name in NAMES:
        assert name in message
    assert "FASTMLP_DATA" in message and "data_dir" in message
    assert exc.directory == str(directory)
    assert exc.missing == list(missing)


def test_missing_download_disabled(tmp_path):
    with pytest.raises(MNISTNotFoundError) as excinfo:
        load_mnist(tmp_path, download=False)
    _assert_clear_not_found(excinfo.value, tmp_path)
    assert "download=False" in str(excinfo.value)
    assert_no_leftovers(tmp_path)


def test_missing_offline(tmp_path, synthetic):
    write(tmp_path / TRAIN_IMAGES, synthetic.raw[TRAIN_IMAGES])
    mirrors = [closed_port_url(), closed_port_url()]
    start = time.monotonic()
    with pytest.raises(MNISTNotFoundError) as excinfo:
        load_mnist(tmp_path, mirrors=mirrors, retries=1)
    assert time.monotonic() - start < 5
    _assert_clear_not_found(excinfo.value, tmp_path, NAMES[1:])
    for mirror in mirrors:
        assert f"{mirror}{TRAIN_LABELS}.gz: " in str(excinfo.value)
    assert "2 attempts" in str(excinfo.value)
    assert_no_leftovers(tmp_path, [TRAIN_IMAGES])


def test_missing_default_cache_offline(monkeypatch):
    """The default directory, default (patched) mirrors: one clear error."""
    monkeypatch.delenv("FASTMLP_DATA", raising=False)
    with pytest.raises(MNISTNotFoundError) as excinfo:
        load_mnist(retries=0)
    _assert_clear_not_found(excinfo.value, mnist_dir())
    assert mnist_dir().endswith(os.path.join("", "fastmlp"))


def test_directory_not_writable(tmp_path):
    blocker = write(tmp_path / "a-file", b"")
    target = blocker / "mnist"  # cannot be created, even by root
    with pytest.raises(MNISTNotFoundError, match="cannot be created or written") as excinfo:
        load_mnist(target)
    _assert_clear_not_found(excinfo.value, target)


# ---------------------------------------------------------------------------
# Downloading from a local server


def test_download_success(tmp_path, synthetic, server):
    serve(server, synthetic)
    target = tmp_path / "new" / "dir"
    check_loaded(load_mnist(target, mirrors=[server.url]), synthetic)
    assert_no_leftovers(target, [n + ".gz" for n in NAMES])
    for name in NAMES:
        assert (target / (name + ".gz")).read_bytes() == synthetic.gz[name]
    # A second load reads the cache and makes no request.
    count = len(server.requests)
    check_loaded(load_mnist(target, mirrors=[server.url]), synthetic)
    assert len(server.requests) == count == 4


def test_download_only_missing(tmp_path, synthetic, server):
    serve(server, synthetic)
    write(tmp_path / TRAIN_IMAGES, synthetic.raw[TRAIN_IMAGES])
    paths = download_mnist(tmp_path, mirrors=server.url)
    assert paths[TRAIN_IMAGES] == str(tmp_path / TRAIN_IMAGES)
    assert sorted(server.requests) == sorted(f"/{n}.gz" for n in NAMES[1:])
    check_loaded(load_mnist(tmp_path, download=False), synthetic)


def test_download_into_xdg_cache(tmp_path, synthetic, server, monkeypatch):
    serve(server, synthetic)
    monkeypatch.delenv("FASTMLP_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(datasets, "MIRRORS", (server.url,))
    check_loaded(load_mnist(), synthetic)
    assert_no_leftovers(tmp_path / "fastmlp", [n + ".gz" for n in NAMES])


def test_download_uncompressed_response(tmp_path, synthetic, server):
    """A server that transparently gunzips: the file is stored without .gz."""
    for name in NAMES:
        server.files[f"/{name}.gz"] = synthetic.raw[name]
    check_loaded(load_mnist(tmp_path, mirrors=[server.url]), synthetic)
    assert_no_leftovers(tmp_path, NAMES)


@pytest.mark.parametrize("bad_name", [TRAIN_IMAGES, TEST_LABELS])
def test_download_wrong_checksum(tmp_path, synthetic, server, bad_name):
    serve(server, synthetic)
    server.files[f"/{bad_name}.gz"] = gz(synthetic.raw[bad_name][:-1] + b"\x01")
    with pytest.raises(MNISTIntegrityError) as excinfo:
        load_mnist(tmp_path, mirrors=[server.url], retries=2)
    message = str(excinfo.value)
    assert message.startswith(bad_name + ":")
    assert "SHA-256" in message and datasets.MNIST_FILES[bad_name] in message
    assert server.requests.count(f"/{bad_name}.gz") == 1  # bad content is not retried
    good = NAMES[: NAMES.index(bad_name)]
    assert_no_leftovers(tmp_path, [n + ".gz" for n in good])


def test_download_truncated_gzip(tmp_path, synthetic, server):
    serve(server, synthetic)
    blob = synthetic.gz[TRAIN_IMAGES]
    server.files[f"/{TRAIN_IMAGES}.gz"] = blob[: len(blob) // 2]
    with pytest.raises(MNISTIntegrityError, match="corrupt gzip stream") as excinfo:
        load_mnist(tmp_path, mirrors=[server.url])
    assert TRAIN_IMAGES in str(excinfo.value)
    assert_no_leftovers(tmp_path)


def test_download_connection_closed_early(tmp_path, synthetic, server):
    serve(server, synthetic)
    path = f"/{TRAIN_IMAGES}.gz"
    server.behaviours[path] = server.short_body(synthetic.gz[TRAIN_IMAGES])
    with pytest.raises(MNISTNotFoundError, match="connection closed after") as excinfo:
        load_mnist(tmp_path, mirrors=[server.url], retries=1)
    _assert_clear_not_found(excinfo.value, tmp_path)
    assert server.requests.count(path) == 2
    assert_no_leftovers(tmp_path)


@pytest.mark.parametrize("where", ["before-headers", "mid-body"])
def test_download_stall_times_out(tmp_path, synthetic, server, where):
    serve(server, synthetic)
    path = f"/{TRAIN_IMAGES}.gz"
    if where == "before-headers":
        server.behaviours[path] = server.stall()
    else:
        server.behaviours[path] = server.stall_mid_body(synthetic.gz[TRAIN_IMAGES])
    start = time.monotonic()
    with pytest.raises(MNISTNotFoundError, match=r"timed out after 0.2 s") as excinfo:
        load_mnist(tmp_path, mirrors=[server.url], timeout=0.2, retries=1)
    assert time.monotonic() - start < 3
    assert server.requests.count(path) == 2
    _assert_clear_not_found(excinfo.value, tmp_path)
    assert_no_leftovers(tmp_path)


@pytest.mark.parametrize("first", ["404", "closed-port", "bad-checksum", "503"])
def test_download_mirror_fallback(tmp_path, synthetic, server, first):
    serve(server, synthetic, prefix="good/")
    if first == "closed-port":
        bad_mirror = closed_port_url()
    else:
        bad_mirror = server.url + "bad/"
        if first == "bad-checksum":
            serve(server, synthetic, prefix="bad/")
            server.files[f"/bad/{TRAIN_LABELS}.gz"] = gz(idx_bytes(np.zeros(3, np.uint8)))
        elif first == "503":
            for name in NAMES:
                server.behaviours[f"/bad/{name}.gz"] = server.status(503)
    result = load_mnist(tmp_path, mirrors=[bad_mirror, server.url + "good/"], retries=1)
    check_loaded(result, synthetic)
    assert_no_leftovers(tmp_path, [n + ".gz" for n in NAMES])


def test_download_retries_bounded(tmp_path, synthetic, server):
    serve(server, synthetic)
    for prefix in ("", "b/"):
        server.behaviours[f"/{prefix}{TRAIN_IMAGES}.gz"] = server.status(503)
    with pytest.raises(MNISTNotFoundError, match=r"HTTP 503 .*\(3 attempts\)") as excinfo:
        load_mnist(tmp_path, mirrors=[server.url, server.url + "b/"], retries=2)
    _assert_clear_not_found(excinfo.value, tmp_path)
    # 2 mirrors x (1 + 2 retries), then stop: the other files are not tried.
    assert server.requests == [f"/{TRAIN_IMAGES}.gz"] * 3 + [f"/b/{TRAIN_IMAGES}.gz"] * 3
    assert_no_leftovers(tmp_path)


def test_download_404_not_retried(tmp_path, server):
    with pytest.raises(MNISTNotFoundError, match="HTTP 404") as excinfo:
        load_mnist(tmp_path, mirrors=[server.url, server.url + "b/"], retries=5)
    assert server.requests == [f"/{TRAIN_IMAGES}.gz", f"/b/{TRAIN_IMAGES}.gz"]
    _assert_clear_not_found(excinfo.value, tmp_path)


def test_download_retry_delay(tmp_path, server, monkeypatch):
    server.behaviours[f"/{TRAIN_IMAGES}.gz"] = server.status(500)
    monkeypatch.setattr(datasets, "RETRY_DELAY", 0.05)
    start = time.monotonic()
    with pytest.raises(MNISTNotFoundError):
        load_mnist(tmp_path, mirrors=[server.url], retries=2)
    assert time.monotonic() - start >= 0.05 + 0.1  # delays grow: 1x, then 2x
    assert len(server.requests) == 3


def test_download_rejects_negative_retries(tmp_path):
    with pytest.raises(ValueError, match="retries"):
        download_mnist(tmp_path, retries=-1)


# ---------------------------------------------------------------------------
# Import cost


def test_import_is_light():
    """Importing the module loads numpy but not the networking stack."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(datasets.__file__)))
    code = (
        "import sys\n"
        # The estimator imports scikit-learn (and its dependencies) when installed: block it
        # so that only what the loader itself imports is measured.
        "sys.modules['sklearn'] = None\n"
        f"sys.path.insert(0, {package_parent!r})\n"
        "import fastmlp.datasets\n"
        "heavy = ('urllib.request', 'http.client', 'ssl', 'email')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
