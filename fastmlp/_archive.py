"""Reading ``.npz`` archives from untrusted files with bounded memory and one exception type.

Model files (:mod:`fastmlp.io`) and checkpoints (:mod:`fastmlp.checkpoint`) share these rules:

- only a regular file is opened, without blocking (a FIFO, a device such as ``/dev/zero``, or a
  symlink to one is refused), and its size is bounded before any byte is read;
- the zip directory is checked before any member is decompressed: stored or deflated members
  only, no encryption, no duplicate names, each member's and the archive's uncompressed sizes
  within the caller's byte budget, and a deflated member of more than ``RATIO_FREE_BYTES``
  expanding at most ``MAX_RATIO`` times;
- an ``.npy`` member's header (dtype, shape) is checked against what the caller expects before
  its array is allocated, and its data is read into that array in place, never as pickle;
- JSON is strict (no NaN), and nesting too deep for the parser is a malformed file;
- every failure is a ``ValueError`` built by the caller's ``fail(message)``.
"""
import io
import json
import math
import os
import stat
import struct
import zipfile
import zlib

import numpy as np

__all__ = ["MAX_RATIO", "RATIO_FREE_BYTES", "READ_ERRORS", "open_archive", "open_regular", "read_json",
           "read_npy"]

#: The largest expansion of a deflated member bigger than ``RATIO_FREE_BYTES``.
MAX_RATIO = 64
#: Members up to this uncompressed size may expand by any ratio (a header, zero biases).
RATIO_FREE_BYTES = 1 << 20
#: What reading a corrupt archive raises; the readers turn each into the caller's ``fail``.
READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
                RuntimeError, KeyError, IndexError, OverflowError, TypeError, struct.error)


def open_regular(path, max_bytes, fail):
    """``path`` opened for binary reading when it is a regular file of at most ``max_bytes``.

    Opens with ``O_NONBLOCK`` so that a FIFO never blocks, then checks the opened file itself
    (``fstat``), so a symlink to a device or a file swapped after a check is refused too.
    A missing file raises ``FileNotFoundError``; anything else that is wrong, ``fail``.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            fail("not a regular file")
        if info.st_size > max_bytes:
            fail(f"{info.st_size} bytes, more than the {max_bytes} allowed (max_bytes)")
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return f


def open_archive(source, max_bytes, fail):
    """A ``zipfile.ZipFile`` over ``source`` (a binary file or bytes) whose directory passes the
    checks of the module doc; ``max_bytes`` bounds the total uncompressed size."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(source)
    try:
        archive = zipfile.ZipFile(source)
        infos = archive.infolist()
    except (ValueError,) + READ_ERRORS as exc:
        fail(f"not an .npz archive ({type(exc).__name__}: {exc})")
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        fail("duplicate archive members")
    total = 0
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            fail(f"member {info.filename!r} uses compression method {info.compress_type}; "
                 f"only stored and deflated members are read")
        if info.flag_bits & 0x1:
            fail(f"member {info.filename!r} is encrypted")
        if info.file_size > RATIO_FREE_BYTES and (
                info.file_size > MAX_RATIO * max(info.compress_size, 1)):
            fail(f"member {info.filename!r} expands {info.compress_size} bytes to "
                 f"{info.file_size}, more than {MAX_RATIO} times")
        total += info.file_size
        if total > max_bytes:
            fail(f"its members hold {total} bytes or more uncompressed, more than the "
                 f"{max_bytes} allowed (max_bytes)")
    return archive


def _read_exactly(f, view, fail, what):
    done = 0
    while done < len(view):
        n = f.readinto(view[done:])
        if not n:
            fail(f"{what} is truncated")
        done += n


def read_npy(archive, name, fail, dtype=None, shape=None, max_bytes=None):
    """The array of member ``name + '.npy'``, read without pickle.

    ``dtype`` and ``shape``, when given, must match the member's header exactly;
    ``max_bytes`` bounds its data. All are checked before the array is allocated.
    """
    try:
        info = archive.getinfo(name + ".npy")
    except KeyError:
        fail(f"missing array {name!r}")
    try:
        with archive.open(info) as f:
            got_shape, fortran, got_dtype = _npy_header(f, name, fail)
            if dtype is not None and got_dtype != np.dtype(dtype):
                fail(f"{name} has dtype {got_dtype}, expected {np.dtype(dtype)}")
            if shape is not None and tuple(got_shape) != tuple(shape):
                fail(f"{name} has shape {tuple(got_shape)}, expected {tuple(shape)}")
            nbytes = math.prod(got_shape) * got_dtype.itemsize
            limit = info.file_size if max_bytes is None else min(max_bytes, info.file_size)
            if nbytes > limit:
                fail(f"array {name!r} declares {nbytes} bytes, more than its member holds "
                     f"or the {limit} allowed")
            array = np.empty(got_shape, dtype=got_dtype, order="F" if fortran else "C")
            if nbytes:
                _read_exactly(f, memoryview(array.reshape(-1, order="A")).cast("B"), fail,
                              f"array {name!r}")
            if f.read(1):   # also reaches the end of the member, where zipfile checks its CRC
                fail(f"array {name!r} has trailing bytes")
    except READ_ERRORS as exc:
        fail(f"array {name!r} cannot be read ({type(exc).__name__}: {exc})")
    return array


def _npy_header(f, name, fail):
    """(shape, fortran_order, dtype) of the ``.npy`` stream ``f``, without object dtypes."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            header = np.lib.format.read_array_header_2_0(f)
        else:
            header = None
    except Exception as exc:   # numpy parses the header with tokenize and ast: any error
        fail(f"array {name!r} has no valid .npy header ({type(exc).__name__}: {exc})")
    if header is None:
        fail(f"array {name!r} has .npy version {version}")
    if header[2].hasobject:
        fail(f"array {name!r} holds Python objects (pickle is never loaded)")
    return header


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def read_json(raw, what, fail):
    """The strict JSON object in UTF-8 bytes ``raw`` (no NaN); nesting deeper than the
    interpreter's recursion limit is a ``fail`` too."""
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"{what} is not UTF-8 ({exc})")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        fail(f"{what} is not valid JSON ({exc})")
    if not isinstance(value, dict):
        fail(f"{what} is not a JSON object")
    return value
