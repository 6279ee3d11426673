"""Atomic file writes: write a temporary file beside the target, then rename.

Readers never see a half-written file, and a failed write leaves the previous
file untouched and no temporary file behind.
"""

import contextlib
import os
import shutil
import tempfile


def _default_mode():
    """Permission bits of a newly created file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; it replaces ``path`` on success.

    The temporary name keeps the suffixes of ``path`` (Keras, h5py and
    Matplotlib choose the format from it) and gets the permissions of a
    normally created file. On an exception the temporary file (or directory)
    is removed and ``path`` is left as it was.

    Args:
        path: the final file path; its directory is created if missing.

    Yields:
        str: the temporary path to write.

    Example:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
        >>> with atomic_path(target) as tmp:
        ...     _ = open(tmp, "w").write("ok")
        >>> open(target).read()
        'ok'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base = os.path.basename(path)
    stem, dot, _ = base.partition(".")
    suffix = ".tmp" + (dot + base.partition(".")[2] if dot else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=suffix, dir=directory)
    os.close(fd)
    os.unlink(tmp)
    try:
        yield tmp
        if os.path.isfile(tmp):
            os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            if os.path.isdir(tmp) and not os.path.islink(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                os.unlink(tmp)


def atomic_write(path, write):
    """Write a file atomically: ``write(tmp_path)``, then rename onto ``path``.

    Args:
        path: the target file.
        write: callable that writes the complete file to the path it is given.

    Returns:
        ``path``.
    """
    with atomic_path(path) as tmp:
        write(tmp)
    return path
