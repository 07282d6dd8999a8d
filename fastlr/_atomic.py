"""Atomic file writes: every file fastlr writes for the user goes through :func:`atomic_write`.

May import: the standard library only.
"""

import os
import tempfile
from contextlib import contextmanager


def _mode_of_new_file():
    """The mode a plain ``open()`` would give (0666 & ~umask); mkstemp makes 0600 files."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_write(path, mode="wb", **open_kwargs):
    """Yield a file object on a temporary file beside ``path``; on success it replaces ``path``.

    The temporary file is flushed and fsynced, given a new file's mode, then moved
    onto ``path`` with ``os.replace``, so a crash or kill never leaves a half-written
    file under ``path``. On any error (``OSError`` from the disk included) the
    temporary file is removed, an existing ``path`` is left as it was, and the
    error propagates.

    Parameters
    ----------
    path : str or os.PathLike
    mode : {"wb", "w"}
    **open_kwargs
        Passed to :func:`os.fdopen` (``newline``, ``encoding`` for text).
    """
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                               prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        os.chmod(tmp, _mode_of_new_file())
        with os.fdopen(fd, mode, **open_kwargs) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
