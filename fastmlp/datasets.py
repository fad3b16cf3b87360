"""The MNIST handwritten digits, loaded as NumPy arrays.

``load_mnist`` returns ``((x_train, y_train), (x_test, y_test))`` like
``keras.datasets.mnist.load_data``. It reads the four original IDX files from
a directory (see ``mnist_dir``) and downloads the missing ones from public
mirrors when it can.

Integrity policy
----------------
Every file is checked against the SHA-256 of its *decompressed* content in
``MNIST_FILES``, both right after a download (before the file is moved into
place) and on every load (about 0.1 s for the 55 MB). A download goes to a
temporary file in the target directory that is verified, flushed to disk and
only then renamed to its final name, so an interrupted or corrupt download
never leaves a file behind. Files that are already present are never deleted
or overwritten: a corrupt one raises ``MNISTIntegrityError`` and the user
decides.

The module-level constants ``MIRRORS``, ``TIMEOUT``, ``RETRIES``,
``RETRY_DELAY`` and ``MNIST_FILES`` are read at call time, so tests (and users
behind a local mirror) can override them.
"""

import gzip
import hashlib
import os
import time
import zlib

import numpy as np

from ._archive import open_regular
from ._files import fsync_dir

__all__ = [
    "MNISTIntegrityError",
    "MNISTNotFoundError",
    "MNIST_FILES",
    "MNIST_SIZES",
    "MIRRORS",
    "download_mnist",
    "load_mnist",
    "mnist_dir",
    "read_idx",
]

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"

#: SHA-256 of the decompressed content of each file, keyed by base name.
MNIST_FILES = {
    TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: Size in bytes of the decompressed content of each file (its IDX header included): no file
#: is decompressed beyond it.
MNIST_SIZES = {
    TRAIN_IMAGES: 16 + 60000 * 28 * 28,
    TRAIN_LABELS: 8 + 60000,
    TEST_IMAGES: 16 + 10000 * 28 * 28,
    TEST_LABELS: 8 + 10000,
}

#: The most bytes ``read_idx`` reads, or decompresses, by default.
MAX_IDX_BYTES = 1 << 31

#: Base URLs serving ``<name>.gz``, tried in order (yann.lecun.com no longer serves them).
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

#: Seconds a single blocking socket operation (connect, read) may take.
TIMEOUT = 30.0
#: Extra attempts per mirror after a transient failure (timeout, reset, HTTP 5xx).
RETRIES = 2
#: Seconds to wait before retry k is ``RETRY_DELAY * k``.
RETRY_DELAY = 1.0

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 16
# The most dimensions an IDX file may declare (NumPy's arrays have at most 32 in any version).
_IDX_MAX_DIMS = 32
# Bytes decompressed past what the IDX header declares, so that a file with a few trailing
# bytes is reported as such; more than this is refused before it is decompressed.
_TRAILING_SLACK = 1 << 16
_USER_AGENT = "fastmlp-datasets (+https://pypi.org/project/fastmlp/)"
# HTTP statuses worth retrying on the same mirror; any other error status moves on.
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

# IDX type code -> big-endian dtype, from the format description on the MNIST page.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class MNISTNotFoundError(FileNotFoundError):
    """MNIST files are missing and could not be downloaded.

    Raised when a file is absent from the directory and downloading is disabled,
    every mirror is unreachable (network error, timeout, HTTP error) or the
    directory cannot be written to. The message names the four files, the
    directory and how to provide the files.

    Attributes
    ----------
    directory : str
        The directory that was searched.
    missing : list of str
        Base names of the missing files.
    """

    directory = None
    missing = ()


class MNISTIntegrityError(ValueError):
    """An MNIST file has the wrong content.

    Raised when a file's decompressed SHA-256 differs from ``MNIST_FILES``, or
    when every mirror delivered content that failed verification (wrong
    checksum, corrupt gzip stream). The message names the file.
    """


class _TransferError(Exception):
    """One download attempt failed before content could be checked."""

    def __init__(self, reason, retry):
        super().__init__(reason)
        self.retry = retry


def mnist_dir(data_dir=None):
    """Return the directory where MNIST files are looked for and downloaded.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Explicit directory; wins over everything else.

    Returns
    -------
    str
        Absolute path: ``data_dir`` if given, else ``$FASTMLP_DATA`` if set and
        non-empty, else ``$XDG_CACHE_HOME/fastmlp`` if ``XDG_CACHE_HOME`` is an
        absolute path, else ``~/.cache/fastmlp``. The directory need not exist.
    """
    if data_dir is None:
        data_dir = os.environ.get("FASTMLP_DATA") or None
    if data_dir is None:
        cache = os.environ.get("XDG_CACHE_HOME", "")
        # The XDG spec says relative paths are invalid and must be ignored.
        if not os.path.isabs(cache):
            cache = os.path.join(os.path.expanduser("~"), ".cache")
        data_dir = os.path.join(cache, "fastmlp")
    return os.path.abspath(os.path.expanduser(os.fspath(data_dir)))


def read_idx(source, *, ndim=None, name=None, max_bytes=MAX_IDX_BYTES):
    """Parse an IDX file (the MNIST container format) into an array.

    Parameters
    ----------
    source : str, os.PathLike, bytes, bytearray or memoryview
        A path (of a regular file), or the file's content. Content is gunzipped when it
        starts with the gzip magic bytes; a path ending in ``.gz`` must be gzip.
    ndim : int, optional
        Required number of dimensions (3 for images, 1 for labels).
    name : str, optional
        Name used in error messages; defaults to the path, or ``"<bytes>"``.
    max_bytes : int, optional
        The most bytes read from the file and, after gunzipping, the most its content may
        hold (default ``MAX_IDX_BYTES``, 2 GiB). Gzip content is decompressed in chunks, and
        never beyond what its IDX header declares.

    Returns
    -------
    numpy.ndarray
        Writable array in native byte order with the shape stored in the header,
        e.g. uint8 of shape (n_images, 28, 28) or (n_labels,).

    Raises
    ------
    ValueError
        If the content is malformed: corrupt gzip stream, magic number not of
        the form ``0x0000TTDD``, unknown type code ``TT``, zero, too many or unexpected
        number of dimensions ``DD``, truncated header, a data length that
        differs from the product of the dimensions (truncated or trailing
        bytes), or more than ``max_bytes``; or if the path is not a regular file.
        The message starts with the file's name.
    OSError
        If a path cannot be read.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        if name is None:
            name = "<bytes>"
        data = _maybe_gunzip(bytes(source), name, force=False, max_bytes=max_bytes)
    else:
        path = os.fspath(source)
        if name is None:
            name = path
        data = _read_file(path, name, max_bytes)
    return _parse_idx(data, name, ndim)


def _read_file(path, name, max_bytes):
    """Return the content of the regular file ``path``, gunzipped if it is gzip, reading and
    decompressing at most ``max_bytes``."""
    def fail(message):
        raise ValueError(f"{name}: {message}")

    with open_regular(path, max_bytes, fail) as f:
        raw = f.read(min(max_bytes, os.fstat(f.fileno()).st_size) + 1)   # read(n) allocates n
    if len(raw) > max_bytes:
        fail(f"more than {max_bytes} bytes")
    return _maybe_gunzip(raw, name, force=os.fspath(path).endswith(".gz"), max_bytes=max_bytes)


def _maybe_gunzip(raw, name, force, max_bytes):
    """``raw`` gunzipped when it is gzip (or ``force``): first its IDX header, then the rest up
    to what that header declares (and ``max_bytes``), in bounded chunks."""
    if not (force or raw[:2] == _GZIP_MAGIC):
        return raw
    head = _gunzip(raw, name, 4 + 4 * 255, stop=True)
    limit = min(max_bytes, _declared_size(head) + _TRAILING_SLACK)
    data = _gunzip(raw, name, limit, stop=False)
    if len(data) > limit:
        raise ValueError(f"{name}: the gzip stream decompresses to more than {limit} bytes, "
                         f"more than its IDX header declares or max_bytes allows")
    return bytes(data)


def _declared_size(head):
    """The total size an IDX header at the start of ``head`` declares (0 when it is not one:
    the parser then reports what is wrong)."""
    if len(head) < 4 or head[2] not in _IDX_DTYPES or len(head) < 4 + 4 * head[3]:
        return 0
    count = 1
    for i in range(head[3]):
        count *= int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big")
    return 4 + 4 * head[3] + count * _IDX_DTYPES[head[2]].itemsize


def _gunzip(raw, name, limit, stop):
    """Gunzip ``raw`` (one or more gzip members) in chunks, to at most ``limit`` + 1 bytes;
    with ``stop``, the first ``limit`` bytes, whatever follows."""
    out = bytearray()
    try:
        d = zlib.decompressobj(wbits=31)
        data = raw
        while True:
            out += d.decompress(data, limit + 1 - len(out))
            if len(out) > limit or (stop and len(out) >= limit):
                return out[:limit] if stop else out
            if d.eof:
                data = d.unused_data
                if not data:
                    return out
                if data[:2] != _GZIP_MAGIC:
                    raise ValueError("trailing bytes after the gzip stream")
                d = zlib.decompressobj(wbits=31)
            else:
                data = d.unconsumed_tail
                if not data:
                    more = d.decompress(b"", limit + 1 - len(out))
                    if not more and not d.eof:
                        if stop:
                            return out
                        raise ValueError("the gzip stream is truncated")
                    out += more
    except (zlib.error, ValueError) as exc:
        raise ValueError(f"{name}: corrupt gzip stream ({exc})") from None


def _parse_idx(data, name, ndim):
    if len(data) < 4:
        raise ValueError(
            f"{name}: not an IDX file: {len(data)} bytes, shorter than the 4-byte magic number"
        )
    magic = int.from_bytes(data[:4], "big")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{name}: bad IDX magic number 0x{magic:08X} (must start with two zero bytes, "
            "e.g. 0x00000803 for uint8 images, 0x00000801 for uint8 labels)"
        )
    type_code, nd = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(
            f"{name}: unsupported IDX type code 0x{type_code:02X} in magic number "
            f"0x{magic:08X} (known: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, "
            "0x0D float32, 0x0E float64)"
        )
    if nd == 0:
        raise ValueError(f"{name}: IDX magic number 0x{magic:08X} declares zero dimensions")
    if nd > _IDX_MAX_DIMS:
        raise ValueError(f"{name}: IDX magic number 0x{magic:08X} declares {nd} dimensions, "
                         f"more than the {_IDX_MAX_DIMS} an array may have")
    if ndim is not None and nd != ndim:
        raise ValueError(
            f"{name}: expected {ndim} dimension(s) (magic 0x0000{type_code:02X}{ndim:02X}), "
            f"got {nd} (magic 0x{magic:08X})"
        )
    header = 4 + 4 * nd
    if len(data) < header:
        raise ValueError(
            f"{name}: truncated IDX header: {nd} dimension(s) need {header} bytes, "
            f"got {len(data)}"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(nd))
    dtype = _IDX_DTYPES[type_code]
    count = 1
    for d in shape:
        count *= d
    want, got = count * dtype.itemsize, len(data) - header
    if got < want:
        raise ValueError(
            f"{name}: truncated IDX data: shape {shape} needs {want} bytes after the "
            f"{header}-byte header, got {got}"
        )
    if got > want:
        raise ValueError(
            f"{name}: {got - want} trailing bytes after the IDX data of shape {shape}"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))  # always a fresh, writable copy


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _find(directory, name):
    """Return the path of ``name`` (raw first, then ``.gz``) in ``directory``, or None."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def _not_found(directory, missing, reason):
    msg = (
        f"MNIST data not found in {directory}\n"
        f"Missing: {', '.join(missing)} (each may be raw or gzip-compressed with a .gz suffix).\n"
        f"Put the four files {', '.join(MNIST_FILES)} in that directory, or set the "
        "FASTMLP_DATA environment variable to a directory holding them, or pass "
        "data_dir=... to load_mnist().\n"
        f"They could not be downloaded: {reason}"
    )
    exc = MNISTNotFoundError(msg)
    exc.directory = directory
    exc.missing = list(missing)
    return exc


def download_mnist(directory=None, *, mirrors=None, timeout=None, retries=None):
    """Download the MNIST files missing from ``directory``.

    Each missing ``<name>.gz`` is fetched from each mirror in turn, retrying
    transient failures (timeouts, resets, HTTP 408/429/5xx) at most ``retries``
    times per mirror. It is written to a temporary file in ``directory``,
    verified against ``MNIST_FILES`` (SHA-256 of the decompressed content),
    fsync'ed and renamed into place; on any failure the temporary file is
    removed. A mirror that delivers bad content is skipped for the next one.
    Files already present are left untouched.

    Parameters
    ----------
    directory : str or os.PathLike, optional
        Target directory, created if needed; default ``mnist_dir()``.
    mirrors : sequence of str, optional
        Base URLs serving ``<name>.gz``; default ``MIRRORS``.
    timeout : float, optional
        Seconds per blocking socket operation; default ``TIMEOUT``.
    retries : int, optional
        Extra attempts per mirror after a transient failure; default ``RETRIES``.

    Returns
    -------
    dict of str to str
        Path of each of the four files, keyed by base name.

    Raises
    ------
    MNISTNotFoundError
        If the directory cannot be written to, or a file could not be fetched
        from any mirror (network errors, timeouts, HTTP errors). Stops at the
        first such file.
    MNISTIntegrityError
        If a file could not be fetched intact and at least one mirror delivered
        content failing verification (wrong checksum, corrupt gzip).
    """
    directory = mnist_dir(directory)
    mirrors = MIRRORS if mirrors is None else mirrors
    if isinstance(mirrors, str):
        mirrors = (mirrors,)
    timeout = TIMEOUT if timeout is None else float(timeout)
    retries = RETRIES if retries is None else int(retries)
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")

    paths = {name: _find(directory, name) for name in MNIST_FILES}
    missing = [name for name, path in paths.items() if path is None]
    if not missing:
        return paths
    try:
        os.makedirs(directory, exist_ok=True)
        if not os.access(directory, os.W_OK | os.X_OK):
            raise PermissionError(f"no write permission for {directory}")
    except OSError as exc:
        raise _not_found(
            directory, missing, f"the directory cannot be created or written to ({exc})"
        ) from exc

    import urllib.request  # deferred: pulls in http.client, email and ssl

    opener = urllib.request.build_opener()
    opener.addheaders = [("User-Agent", _USER_AGENT), ("Accept-Encoding", "identity")]
    for name in missing:
        remaining = [n for n in missing if paths[n] is None]
        paths[name] = _download_file(opener, directory, name, mirrors, timeout, retries, remaining)
    return paths


def _download_file(opener, directory, name, mirrors, timeout, retries, missing):
    """Fetch ``name`` from the first mirror that delivers it intact."""
    failures = []  # one line per mirror
    bad_content = False
    for mirror in mirrors:
        url = (mirror if mirror.endswith("/") else mirror + "/") + name + ".gz"
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(RETRY_DELAY * attempt)
            try:
                return _download_attempt(opener, url, directory, name, timeout)
            except _TransferError as exc:
                reason = f"{exc} ({attempt + 1} attempt{'s' if attempt else ''})"
                if not exc.retry:
                    break
            except ValueError as exc:  # delivered, but failed verification
                reason, bad_content = str(exc), True
                break
        failures.append(f"  {url}: {reason}")
    if not mirrors:
        failures.append("  (no mirrors configured)")
    attempts = "\n".join(failures)
    if bad_content:
        raise MNISTIntegrityError(
            f"{name}: could not download an intact copy into {directory}; nothing was "
            f"written. Attempts:\n{attempts}"
        )
    raise _not_found(directory, missing, f"no mirror delivered {name}.gz:\n{attempts}")


def _download_attempt(opener, url, directory, name, timeout):
    """Download ``url`` to a temporary file, verify it, move it into place."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            _fetch(opener, url, f, timeout)
            f.flush()
            os.fsync(f.fileno())
        with open(tmp, "rb") as f:
            raw = f.read()
        # Sniff instead of trusting the URL: a server may transparently gunzip.
        is_gzip = raw[:2] == _GZIP_MAGIC
        data = _maybe_gunzip(raw, f"{name}.gz from {url}", force=False,
                             max_bytes=MNIST_SIZES[name])
        digest, want = _sha256(data), MNIST_FILES[name]
        if digest != want:
            raise ValueError(
                f"SHA-256 of the decompressed {name} is {digest}, expected {want}"
            )
        del raw, data
        final = os.path.join(directory, name + (".gz" if is_gzip else ""))
        os.replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(directory)
    return final


def _fetch(opener, url, f, timeout):
    """Stream ``url`` into the binary file ``f``; raise ``_TransferError`` on failure."""
    import http.client
    import urllib.error

    try:
        resp = opener.open(url, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise _TransferError(f"HTTP {exc.code} {exc.reason}", exc.code in _RETRY_STATUS) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _TransferError(_describe(exc, timeout), True) from None
    with resp:
        length = resp.headers.get("Content-Length")
        received = 0
        while True:
            try:
                chunk = resp.read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise _TransferError(
                    f"{_describe(exc, timeout)} after {received} bytes", True
                ) from None
            if not chunk:
                break
            f.write(chunk)  # a local write error (disk full) propagates as is
            received += len(chunk)
    if length is not None and length.strip().isdigit() and int(length) != received:
        raise _TransferError(f"connection closed after {received} of {int(length)} bytes", True)


def _describe(exc, timeout):
    reason = getattr(exc, "reason", None)  # URLError wraps the socket error
    if isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError):
        return f"timed out after {timeout:g} s"
    if reason is not None:
        return str(reason)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _load_file(path, name, ndim):
    """Read, parse and verify one MNIST file."""
    data = _read_file(path, path, MNIST_SIZES[name])
    arr = _parse_idx(data, path, ndim)
    if arr.dtype != np.uint8:
        raise ValueError(f"{path}: expected uint8 data (IDX type 0x08), got {arr.dtype}")
    digest, want = _sha256(data), MNIST_FILES[name]
    if digest != want:
        raise MNISTIntegrityError(
            f"{path}: SHA-256 of the decompressed content is {digest}, expected {want}. "
            "The file is corrupt or not the original MNIST file; replace it (or delete "
            "it and call load_mnist() again to download it)."
        )
    return arr


def _load_split(paths, images_name, labels_name):
    images = _load_file(paths[images_name], images_name, ndim=3)
    labels = _load_file(paths[labels_name], labels_name, ndim=1)
    if images.shape[1:] != (28, 28):
        raise ValueError(
            f"{paths[images_name]}: expected 28x28 images, got shape {images.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{paths[images_name]} holds {images.shape[0]} images but "
            f"{paths[labels_name]} holds {labels.shape[0]} labels"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{paths[labels_name]}: label {labels.max()} out of range 0..9")
    return images, labels


def load_mnist(data_dir=None, *, download=True, mirrors=None, timeout=None, retries=None):
    """Load the MNIST digits, downloading missing files if needed.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Directory holding the files; default ``mnist_dir()`` (``$FASTMLP_DATA``,
        else ``$XDG_CACHE_HOME/fastmlp`` or ``~/.cache/fastmlp``). Each file may
        be raw (``train-images-idx3-ubyte``) or gzip (``train-images-idx3-ubyte.gz``);
        the raw one is used when both exist.
    download : bool, default True
        Download missing files into that directory (see ``download_mnist``).
    mirrors, timeout, retries
        Passed to ``download_mnist``.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuples of numpy.ndarray
        uint8 arrays of shapes (60000, 28, 28), (60000,), (10000, 28, 28) and
        (10000,); pixels are 0..255, labels 0..9.

    Raises
    ------
    MNISTNotFoundError
        If files are missing and cannot be downloaded (offline, download=False,
        directory not writable). Subclass of ``FileNotFoundError``.
    MNISTIntegrityError
        If a file's SHA-256 (of its decompressed content) is wrong. Subclass of
        ``ValueError``.
    ValueError
        If a file is malformed (bad IDX header, truncated, corrupt gzip) or the
        files disagree (image/label counts, image size).

    Examples
    --------
    >>> (x_train, y_train), (x_test, y_test) = load_mnist()  # doctest: +SKIP
    >>> x_train.shape, y_train[:5]  # doctest: +SKIP
    ((60000, 28, 28), array([5, 0, 4, 1, 9], dtype=uint8))
    """
    directory = mnist_dir(data_dir)
    paths = {name: _find(directory, name) for name in MNIST_FILES}
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        if not download:
            raise _not_found(directory, missing, "downloading is disabled (download=False)")
        paths = download_mnist(directory, mirrors=mirrors, timeout=timeout, retries=retries)
    train = _load_split(paths, TRAIN_IMAGES, TRAIN_LABELS)
    test = _load_split(paths, TEST_IMAGES, TEST_LABELS)
    return train, test
