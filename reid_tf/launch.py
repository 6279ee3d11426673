"""Entry points of the commands that need Keras and a Keras backend.

``pip install alignedreid`` installs what evaluation needs (``reference``,
``data_prep``, ``human_study``) and no deep-learning framework; training,
extraction, search, export and gradient checks need Keras and a backend,
which come with an extra (``[tf]``, ``[jax]``, ``[torch]``, ``[tf-cuda]``,
``[jax-cuda]``). The console scripts ``reid-train``, ``reid-extract``,
``reid-search``, ``reid-export`` and ``reid-gradcheck`` start here: before
anything heavy is imported, :func:`missing_backend` looks for Keras and for
the backend Keras will load, and a missing one ends the command with one
line naming the extra to install (exit status 2) instead of a traceback.
``--help`` and ``--version`` work without them.

This module imports only the standard library.
"""

import importlib
import importlib.util
import json
import os
import sys

#: The backend Keras loads when nothing chooses another one.
DEFAULT_BACKEND = "tensorflow"

#: Keras backend -> (module that must be importable, extra that installs it).
BACKEND_EXTRAS = {
    "tensorflow": ("tensorflow", "tf"),
    "jax": ("jax", "jax"),
    "torch": ("torch", "torch"),
}

#: Console script -> (module whose ``main`` it runs, backends it runs on;
#: None: every backend of :data:`BACKEND_EXTRAS`).
COMMANDS = {
    "reid-train": ("reid_tf.train_cli", None),
    "reid-extract": ("reid_tf.extract_cli", None),
    "reid-search": ("reid_tf.search_cli", None),
    "reid-export": ("reid_tf.export_cli", ("tensorflow",)),
    "reid-gradcheck": ("reid_tf.gradcheck.cli", None),
}

_PASS_THROUGH = ("-h", "--help", "--version")


def keras_backend(environ=None):
    """The backend Keras will load, found the way Keras finds it.

    ``KERAS_BACKEND`` if set, else the ``"backend"`` of ``keras.json`` in
    ``KERAS_HOME`` (default ``~/.keras``), else ``"tensorflow"``.

    Args:
        environ: the environment (default ``os.environ``).

    Returns:
        str: the backend's name.

    Example:
        >>> keras_backend({"KERAS_BACKEND": "jax"})
        'jax'
    """
    environ = os.environ if environ is None else environ
    name = environ.get("KERAS_BACKEND")
    if name:
        return name
    home = environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as f:
            name = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        name = None
    return name if isinstance(name, str) and name else DEFAULT_BACKEND


def importable(module):
    """Whether ``module`` can be imported (found, without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_backend(prog, backend=None, backends=None):
    """Why Keras cannot run ``prog`` here, or None when it can.

    Args:
        prog: the command's name, put at the start of the message.
        backend: the backend to check (default :func:`keras_backend`).
        backends: the backends the command runs on (default: all of
            :data:`BACKEND_EXTRAS`).

    Returns:
        ``None``, or one line: ``prog: error: ...`` naming the extra that
        installs what is missing.

    Example:
        >>> missing_backend("reid-train", backend="numpy")
        "reid-train: error: KERAS_BACKEND: 'numpy' cannot run reid-train; use tensorflow, jax or torch"
    """
    backends = tuple(backends or BACKEND_EXTRAS)
    backend = backend or keras_backend()
    if backend not in backends:
        choices = " or ".join(backends) if len(backends) < 3 else (
            ", ".join(backends[:-1]) + " or " + backends[-1])
        return f"{prog}: error: KERAS_BACKEND: {backend!r} cannot run {prog}; use {choices}"
    module, extra = BACKEND_EXTRAS[backend]
    missing = [name for name in ("keras", module) if not importable(name)]
    if not missing:
        return None
    hint = f"pip install 'alignedreid[{extra}]'"
    others = [b for b in backends if b != backend]
    if others:
        hint += f" (or set KERAS_BACKEND to {' or '.join(others)} and install its extra)"
    return (f"{prog}: error: needs {' and '.join(missing)} for the Keras backend "
            f"{backend!r}, not installed: {hint}")


def launch(prog, argv=None):
    """Runs the console script ``prog`` (a key of :data:`COMMANDS`).

    Args:
        prog: the command's name.
        argv: its arguments (default ``sys.argv[1:]``).

    Returns:
        int: the command's exit status; 2 when Keras or its backend is
        missing (one line on stderr).
    """
    module, backends = COMMANDS[prog]
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(arg in _PASS_THROUGH for arg in argv):
        problem = missing_backend(prog, backends=backends)
        if problem:
            print(problem, file=sys.stderr)
            return 2
    return importlib.import_module(module).main(argv)


def train():
    """``reid-train`` (``train.py``)."""
    return launch("reid-train")


def extract():
    """``reid-extract``."""
    return launch("reid-extract")


def search():
    """``reid-search``."""
    return launch("reid-search")


def export():
    """``reid-export``."""
    return launch("reid-export")


def gradcheck():
    """``reid-gradcheck``."""
    return launch("reid-gradcheck")
