"""The inputs of ``reid-evaluate``: dumps named on the command line, directories
of dumps and training run directories, read and checked before any scoring.

A run directory of ``train.py`` is recognised by its files (``config.json``
beside a ``features/`` folder of ``*.h5`` dumps); its dumps are evaluated in
name order. Any other directory stands for the ``*.h5`` dumps directly inside
it.
"""

import os

__all__ = ["InputError", "dump_nbytes", "expand_inputs", "run_dir_dumps"]


class InputError(ValueError):
    """A command-line input that is neither a dump nor a directory of dumps (one line)."""


def _h5_files(directory):
    """The regular ``*.h5`` files directly inside ``directory``, sorted by name."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise InputError(f"{directory}: cannot list the directory ({exc.strerror})") from None
    return [os.path.join(directory, n) for n in names
            if n.lower().endswith(".h5") and os.path.isfile(os.path.join(directory, n))]


def run_dir_dumps(path):
    """The feature dumps of a run directory, or None when ``path`` is not one.

    Args:
        path: a directory.

    Returns:
        sorted list of ``path/features/*.h5`` when ``path`` holds
        ``config.json``, else None.

    Raises:
        InputError: a run directory without feature dumps.

    Example:
        >>> import os, tempfile
        >>> run = tempfile.mkdtemp()
        >>> os.makedirs(os.path.join(run, "features"))
        >>> for name in ("config.json", "features/b.h5", "features/a.h5"):
        ...     open(os.path.join(run, name), "w").close()
        >>> [os.path.relpath(p, run) for p in run_dir_dumps(run)]
        ['features/a.h5', 'features/b.h5']
        >>> run_dir_dumps(tempfile.mkdtemp()) is None
        True
    """
    if not os.path.isfile(os.path.join(path, "config.json")):
        return None
    features = os.path.join(path, "features")
    dumps = _h5_files(features) if os.path.isdir(features) else []
    if not dumps:
        raise InputError(
            f"{path}: a run directory without feature dumps ({features}/*.h5); the run "
            "has not reached its evaluation (see its status.json), or was trained without "
            "test sets"
        )
    return dumps


def expand_inputs(paths):
    """The dump files the command-line inputs stand for, in order.

    Args:
        paths: the positional arguments: dump files, run directories,
            directories of dumps. A path that is not a directory is kept as it
            is (a missing file is reported when it is read).

    Returns:
        list of str.

    Raises:
        InputError: a directory that is neither a run directory nor holds
            ``*.h5`` files.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> open(os.path.join(d, "x.h5"), "w").close()
        >>> [os.path.basename(p) for p in expand_inputs(["a.h5", d])]
        ['a.h5', 'x.h5']
    """
    out = []
    for path in paths:
        path = os.fspath(path)
        if not os.path.isdir(path):
            out.append(path)
            continue
        dumps = run_dir_dumps(path)
        if dumps is None:
            dumps = _h5_files(path)
            if not dumps:
                raise InputError(
                    f"{path}: a directory that is neither a run directory (config.json and "
                    "features/*.h5) nor holds feature dumps (*.h5)"
                )
        out.extend(dumps)
    return out


def dump_nbytes(dump):
    """Bytes held by the feature arrays of a :class:`reference.FeatureDump`.

    Example:
        >>> import numpy as np
        >>> from types import SimpleNamespace
        >>> split = {"global": np.zeros((2, 4), np.float32), "local": None}
        >>> dump_nbytes(SimpleNamespace(query=split, gallery=split))
        64
    """
    return sum(getattr(v, "nbytes", 0) for split in (dump.query, dump.gallery)
               for v in split.values())
