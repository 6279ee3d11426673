"""Atomic file writes: write a temporary file beside the target, fsync, rename.

Readers never see a half-written file; a failed write leaves the previous file
untouched and no temporary file behind.
"""

import contextlib
import json
import os
import shutil
import tempfile


def _default_mode():
    """Permission bits of a newly created file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_path(path):
    """Flush a written file (or every file of a written directory) to disk."""
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            for name in files:
                _fsync_file(os.path.join(root, name))
    elif os.path.isfile(path):
        _fsync_file(path)


def _fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory):
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


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; it replaces ``path`` on success.

    The temporary name keeps the suffixes of ``path`` (Keras, h5py and
    Matplotlib choose the format from it) and gets the permissions of a
    normally created file. The written file (or directory) is fsync'd before
    the rename and the directory after it. On an exception the temporary file
    is removed and ``path`` is left as it was.

    Args:
        path: the final file path; its directory is created if missing.

    Yields:
        str: the temporary path to write.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base = os.path.basename(path)
    stem, dot, rest = base.partition(".")
    suffix = ".tmp" + (dot + rest if dot else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=suffix, dir=directory)
    os.close(fd)
    os.unlink(tmp)
    try:
        yield tmp
        if os.path.isfile(tmp):
            os.chmod(tmp, _default_mode())
        _fsync_path(tmp)
        os.replace(tmp, path)
        _fsync_dir(directory)
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


def atomic_write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically; return ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return path


def atomic_write_text(path, text, newline=None):
    """Write ``text`` (UTF-8) to ``path`` atomically; return ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline=newline) as f:
            f.write(text)
    return path


def atomic_write_json(path, obj, *, indent=2, sort_keys=True):
    """Write ``obj`` as JSON (a trailing newline) to ``path`` atomically; return ``path``."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n")


def same_file(a, b):
    """True when paths ``a`` and ``b`` name the same file or directory.

    Existing files are compared by device and inode (symbolic links, hard
    links and ``..`` included); a path that does not exist yet is compared by
    its resolved form (``os.path.realpath``).

    Example:
        >>> same_file("a/../b.txt", "b.txt"), same_file("a.txt", "b.txt")
        (True, False)
    """
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return os.path.realpath(os.fspath(a)) == os.path.realpath(os.fspath(b))


def clashing_input(output, inputs):
    """The first of ``inputs`` that names the same file as ``output``, or None.

    An output that is also an input would be overwritten before (or while) it
    is read; tools call this before writing anything and refuse with an error
    naming both paths.

    Args:
        output: the path a tool is about to write (file or directory).
        inputs: the paths it reads.

    Example:
        >>> clashing_input("runs/./x.h5", ["y.h5", "runs/x.h5"])
        'runs/x.h5'
        >>> clashing_input("out.json", ["y.h5"]) is None
        True
    """
    for candidate in inputs:
        if same_file(output, candidate):
            return candidate
    return None


def is_inside(path, root):
    """True when ``path`` lies in the directory ``root`` after resolving ``..`` and links.

    Both are resolved with ``os.path.realpath``; ``root`` itself counts as inside.

    Example:
        >>> is_inside("data/images/a.jpg", "data"), is_inside("data/../secret.jpg", "data")
        (True, False)
    """
    try:
        real = os.path.realpath(os.fspath(path))
        base = os.path.realpath(os.fspath(root))
    except (OSError, ValueError):
        return False
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)
