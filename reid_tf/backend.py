"""The Keras backend of a training run: its name and version, what it
supports, and the devices it trains on.

``train.py`` runs on the backend Keras selects (``KERAS_BACKEND``:
``tensorflow``, the default, ``jax`` or ``torch``). :func:`check_backend`
refuses, before anything is loaded or written, the settings a backend
cannot honour; :func:`describe_backend` is the start-up line of the run
log. Nothing here imports TensorFlow, JAX or PyTorch when it is not the
backend in use.
"""

import importlib
import os
import sys

from reid_tf.config import SettingError

BACKENDS = ("tensorflow", "jax", "torch")

#: the strategy settings each backend runs
STRATEGIES_OF = {
    "tensorflow": ("default", "mirrored", "multiworker"),
    "jax": ("default", "mirrored"),
    "torch": ("default",),
}

_WHY_NOT = {
    ("jax", "multiworker"): "multi-worker training needs the TensorFlow backend "
                            "(MultiWorkerMirroredStrategy)",
    ("torch", "multiworker"): "multi-worker training needs the TensorFlow backend "
                              "(MultiWorkerMirroredStrategy)",
    ("torch", "mirrored"): "the PyTorch backend trains on one device (Keras has no "
                           "data-parallel distribution for it)",
}


def backend_name():
    """The Keras backend in use (``keras.backend.backend()``), loading Keras
    (and, under the TensorFlow backend, TensorFlow with its start-up lines
    filtered, :func:`reid_tf.tf_startup.import_tensorflow`) if needed.

    Returns:
        str: ``"tensorflow"``, ``"jax"``, ``"torch"`` (or another backend Keras
        knows, which :func:`check_backend` refuses).

    Example:
        >>> backend_name() in BACKENDS
        True
    """
    from reid_tf.tf_startup import import_keras

    keras = import_keras()
    return keras.backend.backend()


def module_version(name):
    """The version of package ``name`` as its module reports it (importing it
    when needed; the module name also covers builds such as
    ``tensorflow-cpu``), or None when it cannot be imported.

    Example:
        >>> import numpy
        >>> module_version("numpy") == numpy.__version__
        True
    """
    try:
        module = sys.modules.get(name) or importlib.import_module(name)
    except Exception:  # noqa: BLE001 - an unimportable package has no version
        return None
    return str(getattr(module, "__version__", None) or "") or None


def check_backend(*, strategy):
    """Refuses the settings the Keras backend in use cannot run.

    Args:
        strategy: the strategy setting (see :data:`STRATEGIES_OF`).

    Returns:
        str: the backend's name.

    Raises:
        SettingError: the backend is not one this program trains on, or it
            cannot run the strategy (the message names the flag).

    Example:
        >>> check_backend(strategy="default") == backend_name()
        True
    """
    name = backend_name()
    if name not in BACKENDS:
        raise SettingError("KERAS_BACKEND={name}: train.py runs on tensorflow, jax or torch",
                           name=name)
    if strategy not in STRATEGIES_OF[name]:
        raise SettingError("{strategy} {value}: not available with KERAS_BACKEND={name}: "
                           "{why}", value=strategy, name=name,
                           why=_WHY_NOT.get((name, strategy), "not supported"))
    return name


def training_devices():
    """The devices the backend trains on, as ``(kind, count)``.

    Returns:
        ``("gpu", n)`` when the backend sees GPUs, else ``("cpu", n)``.

    Example:
        >>> training_devices()[0] in ("cpu", "gpu")
        True
    """
    name = backend_name()
    if name == "tensorflow":
        import tensorflow as tf

        # physical devices: listing logical ones would start TensorFlow's
        # runtime, which a multi-worker strategy must configure first
        gpus = tf.config.list_physical_devices("GPU")
        return ("gpu", len(gpus)) if gpus else ("cpu", len(tf.config.list_physical_devices("CPU")))
    if name == "jax":
        import jax

        devices = jax.local_devices()
        kind = "gpu" if any(d.platform in ("gpu", "cuda", "rocm") for d in devices) else "cpu"
        return kind, len(devices)
    if name == "torch":
        import torch

        return ("gpu", torch.cuda.device_count()) if torch.cuda.is_available() else ("cpu", 1)
    return "cpu", 1


def describe_backend():
    """One line naming the backend, its version, Keras' version and the devices.

    Returns:
        str, for example ``"backend: jax 0.10.2 (keras 3.15.0), 1 CPU device"``.

    Example:
        >>> describe_backend().startswith("backend: " + backend_name())
        True
    """
    name = backend_name()
    kind, count = training_devices()
    devices = f"{count} {kind.upper()} device{'s' if count != 1 else ''}"
    keras_version = module_version("keras") or "?"
    return (f"backend: {name} {module_version(name) or '?'} (keras {keras_version}, "
            f"KERAS_BACKEND={os.environ.get('KERAS_BACKEND', 'unset')}), {devices}")
