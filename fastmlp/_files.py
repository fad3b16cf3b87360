"""Durable file replacement, shared by model files, checkpoints and dataset downloads."""
import os
import tempfile


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


def atomic_write(path, write):
    """Replace ``path`` with what ``write(binary_file)`` writes, atomically.

    The data goes to a temporary file in the same directory, is flushed and fsync'ed, then
    renamed over ``path``; on any failure (Ctrl-C included) the temporary file is removed and
    the previous ``path`` is left byte-identical. An existing file's permissions are kept.
    """
    directory = os.path.dirname(os.path.abspath(path))
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
