"""Durable file replacement, shared by model files, checkpoints and dataset downloads.

A replacement writes ``.NAME.XXXXXXXX.tmp`` beside ``NAME`` (``tempfile.mkstemp``) and renames
it; a process killed in between leaves that file, and the next replacement of ``NAME`` in a
later run removes it (only files of that exact pattern, older than this run).
"""
import os
import string
import tempfile
import time

#: When this run started (this module's import): temporary files older than it are stale.
RUN_STARTED = time.time()
# tempfile's random names: 8 characters of this alphabet.
_RANDOM_CHARS = frozenset(string.ascii_lowercase + string.digits + "_")
_RANDOM_LENGTH = 8


def fsync_dir(directory):
    """Make a rename inside ``directory`` durable (POSIX); best effort elsewhere."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _matches(name, prefix, suffix, length):
    middle = name[len(prefix):len(name) - len(suffix)]
    return (name.startswith(prefix) and name.endswith(suffix) and len(middle) == length
            and set(middle) <= _RANDOM_CHARS)


def is_temporary_name(name, target):
    """Whether ``name`` is one of atomic_write's temporary names for ``target``."""
    return _matches(name, f".{target}.", ".tmp", _RANDOM_LENGTH)


def stale_entries(directory, prefix, suffix, length):
    """Paths in ``directory`` named ``prefix`` + ``length`` random characters + ``suffix``,
    not symlinks, last modified before this run started."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    stale = []
    for entry in entries:
        try:
            if (_matches(entry.name, prefix, suffix, length) and not entry.is_symlink()
                    and entry.stat(follow_symlinks=False).st_mtime < RUN_STARTED):
                stale.append(entry.path)
        except OSError:
            pass
    return stale


def remove_stale_temporaries(directory, target):
    """Remove the temporary files of ``target`` that an earlier, killed run left in
    ``directory``."""
    for path in stale_entries(directory, f".{target}.", ".tmp", _RANDOM_LENGTH):
        if os.path.isfile(path):
            try:
                os.unlink(path)
            except OSError:
                pass


def atomic_write(path, write):
    """Replace ``path`` with what ``write(binary_file)`` writes, atomically.

    The data goes to a temporary file in the same directory, is flushed and fsync'ed, then
    renamed over ``path``; on any failure (Ctrl-C included) the temporary file is removed and
    the previous ``path`` is left byte-identical. An existing file's permissions are kept, and
    temporary files of ``path`` left by an earlier run that was killed are removed.
    """
    directory = os.path.dirname(os.path.abspath(path))
    remove_stale_temporaries(directory, os.path.basename(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        try:
            mode = os.stat(path).st_mode & 0o777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            fd = None
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    fsync_dir(directory)
