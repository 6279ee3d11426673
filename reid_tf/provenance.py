"""Provenance of a training run: what ran, where, with which code.

:func:`collect_provenance` gathers the package versions (this project,
Keras, the active Keras backend, NumPy, Numba, h5py, Python), the git commit
of the source checkout (with whether tracked files differ from it), the
command line, the host name and the active backend's devices.
:func:`write_provenance` stores it as ``provenance.json`` in the run
directory; a resumed run keeps the records of the earlier invocations under
``"earlier"``.

Nothing here can fail a run: a value that cannot be obtained (git missing,
not a checkout, a backend that cannot list its devices) is left out or
recorded as ``null``.
"""

import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

from reid_common import atomic_write_json, package_version
from reid_tf.backend import module_version
from reid_tf.run_dir import utc_now

__all__ = ["PROVENANCE_FILE", "backend_devices", "collect_provenance", "git_state",
           "write_provenance"]

PROVENANCE_FILE = "provenance.json"

# the Python module of each Keras backend (its version is recorded)
_BACKEND_MODULES = {"tensorflow": ("tensorflow",), "jax": ("jax", "jaxlib"),
                    "torch": ("torch",), "numpy": ()}

SOURCE_ROOT = Path(__file__).resolve().parents[1]


def package_versions():
    """Versions of the packages a run depends on.

    Returns:
        dict: ``alignedreid``, ``keras``, the backend's package(s)
        (``tensorflow``; ``jax`` and ``jaxlib``; ``torch``), ``numpy``,
        ``numba``, ``h5py`` and ``python``; ``None`` for one that cannot be
        imported.

    Example:
        >>> import numpy
        >>> package_versions()["numpy"] == numpy.__version__
        True
    """
    import keras

    out = {"alignedreid": package_version(), "keras": keras.__version__}
    for name in _BACKEND_MODULES.get(keras.backend.backend(), ()):
        out[name] = module_version(name)
    for name in ("numpy", "numba", "h5py"):
        out[name] = module_version(name)
    out["python"] = platform.python_version()
    return out


def backend_devices():
    """The devices of the active Keras backend, as the backend names them.

    Returns:
        list of str, for example ``["/device:CPU:0"]`` (TensorFlow),
        ``["cpu:0"]`` (JAX), ``["cpu", "cuda:0 (NVIDIA H200)"]`` (torch);
        empty when the backend cannot list them.

    Example:
        >>> len(backend_devices()) >= 1
        True
    """
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return [d.name for d in tf.config.list_logical_devices()]
        if backend == "jax":
            import jax

            return [f"{d.platform}:{d.id}" for d in jax.devices()]
        if backend == "torch":
            import torch

            return ["cpu"] + [f"cuda:{i} ({torch.cuda.get_device_name(i)})"
                              for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - never fail a run over its provenance
        return []
    return ["cpu"]


def _git(root, *args, timeout=5.0):
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, check=True)
    return proc.stdout


def git_state(root=SOURCE_ROOT, timeout=5.0):
    """The commit of a git checkout whose top level is ``root``.

    Args:
        root: the directory expected to be the checkout's top level (default:
            the directory holding the ``reid_tf`` package, so an installed
            copy inside some other repository is not mistaken for one).
        timeout: seconds allowed to each ``git`` call.

    Returns:
        ``{"commit": sha, "dirty": bool}`` (``dirty``: tracked files differ
        from the commit; untracked files do not count), or None when
        ``root`` is not a checkout's top level or git is missing or slow.

    Example:
        >>> import tempfile
        >>> git_state(tempfile.mkdtemp()) is None
        True
    """
    try:
        top, commit = _git(root, "rev-parse", "--show-toplevel", "HEAD",
                           timeout=timeout).split()
        if Path(top).resolve() != Path(root).resolve():
            return None
        changes = _git(root, "status", "--porcelain", "--untracked-files=no",
                       timeout=timeout)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(changes.strip())}


def collect_provenance(argv=None):
    """The provenance record of this process.

    Args:
        argv: the command line (default ``sys.argv``).

    Returns:
        dict with ``started`` (UTC), ``argv``, ``cwd``, ``hostname``, ``packages`` (see
        :func:`package_versions`), ``backend``, ``devices`` and, when run from
        a checkout, ``git`` (see :func:`git_state`).

    Example:
        >>> record = collect_provenance(["train.py", "--epochs", "1"])
        >>> record["argv"], sorted(record)[:3]
        (['train.py', '--epochs', '1'], ['argv', 'backend', 'cwd'])
    """
    import keras

    record = {
        "started": utc_now(),
        "argv": list(sys.argv if argv is None else argv),
        "cwd": os.getcwd(),
        "hostname": socket.gethostname(),
        "packages": package_versions(),
        "backend": keras.backend.backend(),
        "devices": backend_devices(),
    }
    git = git_state()
    if git is not None:
        record["git"] = git
    return record


def write_provenance(run_path, record):
    """Writes ``provenance.json`` atomically; earlier records are kept.

    The file holds ``record`` at the top level; the records of earlier
    invocations of the same run (a resumed run) are listed, oldest first,
    under ``"earlier"``.

    Args:
        run_path: the run directory.
        record: a :func:`collect_provenance` dict.

    Returns:
        ``Path`` of the file.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> _ = write_provenance(d, {"argv": ["a"]})
        >>> path = write_provenance(d, {"argv": ["b"]})
        >>> value = json.loads(path.read_text())
        >>> value["argv"], value["earlier"]
        (['b'], [{'argv': ['a']}])
    """
    path = Path(run_path) / PROVENANCE_FILE
    earlier = []
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(old, dict):
            earlier = list(old.pop("earlier", []) or []) + [old]
    except (OSError, ValueError):
        pass
    atomic_write_json(path, {**record, "earlier": earlier} if earlier else dict(record))
    return path
