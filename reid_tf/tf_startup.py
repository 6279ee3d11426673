"""Loading TensorFlow for a command line without its start-up log lines.

TensorFlow 2.20 and later write their start-up messages (the oneDNN note,
"Could not find cuda drivers", a failed ``cuInit`` on a machine without a
GPU) through absl logging before ``TF_CPP_MIN_LOG_LEVEL`` takes effect, so a
tool's one-line error arrives after half a dozen lines of noise.
:func:`import_tensorflow` loads TensorFlow and lists its devices with file
descriptor 2 pointed at a temporary file, then writes back the captured
lines that ``TF_CPP_MIN_LOG_LEVEL`` lets through (``I`` lines at 0, ``W`` at
1 or less, ``E`` at 2 or less; any line that is not a log line always).
"""

import os
import re
import sys
import tempfile

#: ``TF_CPP_MIN_LOG_LEVEL`` of the command lines unless the user sets one:
#: every TensorFlow failure that stops a tool reaches it as an exception
#: and is reported in one line, so TensorFlow's own log lines are hidden.
DEFAULT_LOG_LEVEL = "3"

_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_LOG_LINE = re.compile(r"^([IWEF])\d{4} ")
_BANNER = "WARNING: All log messages before absl::InitializeLog() is called"
# set once TensorFlow's devices were listed with the noise filtered (TensorFlow
# may have been imported before, by a library, without the filter)
_READY = False


def _shown(line, level):
    """Whether a captured stderr line passes ``TF_CPP_MIN_LOG_LEVEL`` ``level``.

    Example:
        >>> _shown("I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on.", 1)
        False
        >>> _shown("E0000 00:00:1.0 1 cuda_platform.cc:52] failed call to cuInit", 2)
        True
        >>> _shown("something else", 3)
        True
    """
    if line.startswith(_BANNER):
        return level < _SEVERITY["W"]
    match = _LOG_LINE.match(line)
    if match is None:
        return True
    return _SEVERITY[match.group(1)] >= level


def import_tensorflow():
    """Imports TensorFlow and initialises its devices, start-up noise filtered.

    Called where the tools first need TensorFlow; does nothing the second
    time. When something imported TensorFlow before, only the device listing
    (where the CUDA probing writes its lines) is filtered. Without
    ``TF_CPP_MIN_LOG_LEVEL`` every line is written back (level 0); the
    command lines set it to :data:`DEFAULT_LOG_LEVEL` unless the user did.
    If the import fails, everything captured is written back before the
    exception goes on.

    Returns:
        the ``tensorflow`` module.
    """
    global _READY
    if _READY:
        return sys.modules["tensorflow"]
    try:
        level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        level = 0
    sys.stderr.flush()
    saved = os.dup(2)
    failed = False
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
            _READY = True
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines()
            kept = [line for line in lines if failed or _shown(line, level)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)
    return tf


def configured_backend():
    """The backend Keras runs or will load, without importing Keras: once
    Keras is loaded, its backend; else ``KERAS_BACKEND``, else ``backend`` in
    ``$KERAS_HOME/keras.json`` (``~/.keras/keras.json``), else ``tensorflow``.

    Returns:
        str.

    Example:
        >>> configured_backend() in ("tensorflow", "jax", "torch", "numpy", "openvino")
        True
    """
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    from reid_tf.launch import keras_backend

    return keras_backend()


def import_keras():
    """Imports Keras; under the TensorFlow backend, TensorFlow first with its
    start-up lines filtered (:func:`import_tensorflow`).

    Returns:
        the ``keras`` module.
    """
    if "keras" not in sys.modules and configured_backend() == "tensorflow":
        import_tensorflow()
    import keras

    return keras
