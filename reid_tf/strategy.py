"""The distribution strategy of a training run and the cluster role of a process.

Under the TensorFlow backend a strategy is a ``tf.distribute`` strategy;
under JAX, ``mirrored`` is Keras' ``keras.distribution.DataParallel`` over
the local devices and ``default`` one device; under PyTorch, one device
(:class:`KerasDistribution` gives these the two members of a
``tf.distribute`` strategy the engine uses: ``num_replicas_in_sync`` and
``scope()``).
"""

import contextlib
import json
import os

from reid_tf.config import SettingError


def cluster_role(name):
    """Whether this process is the chief, read from ``TF_CONFIG`` (no TF import).

    Args:
        name: strategy name (see :data:`reid_tf.config.STRATEGIES`).

    Returns:
        bool: True except on non-chief workers of a multi-worker cluster.

    Raises:
        SettingError: ``multiworker`` without a usable ``TF_CONFIG``.

    Example:
        >>> cluster_role("default")
        True
    """
    if name != "multiworker":
        return True
    try:
        tf_config = json.loads(os.environ.get("TF_CONFIG", ""))
        task, cluster = tf_config["task"], tf_config["cluster"]
        kind, index = task["type"], int(task.get("index", 0))
    except (ValueError, KeyError, TypeError):
        raise SettingError("{strategy} multiworker: TF_CONFIG must be set to a JSON object "
                           "with 'cluster' and 'task' (type, index)") from None
    if "chief" in cluster:
        return kind == "chief"
    return kind == "worker" and index == 0


class KerasDistribution:
    """A Keras distribution (or none) in the shape of a ``tf.distribute``
    strategy: ``num_replicas_in_sync`` and ``scope()``.

    Args:
        distribution: a ``keras.distribution.Distribution`` or None (one
            device).
        replicas: devices the batch is split over.

    Example:
        >>> one = KerasDistribution(None, 1)
        >>> with one.scope():
        ...     one.num_replicas_in_sync
        1
    """

    def __init__(self, distribution, replicas):
        self.distribution = distribution
        self.num_replicas_in_sync = int(replicas)

    def scope(self):
        """Context in which the distribution is Keras' current one.

        Returns:
            a context manager.
        """
        if self.distribution is None:
            return contextlib.nullcontext()
        return self.distribution.scope()


def make_strategy(name):
    """The strategy of a name under the Keras backend in use.

    Under JAX, ``mirrored`` is ``keras.distribution.DataParallel`` over all
    local devices: one program over the global batch (hard mining sees the
    whole batch); under JAX and PyTorch, ``default`` is one device. Which
    backend runs which strategy is :func:`reid_tf.backend.check_backend`'s.

    Args:
        name: ``"default"`` (the default strategy: one device), ``"mirrored"``
            (``MirroredStrategy`` over all local GPUs, or the CPU) or
            ``"multiworker"`` (``MultiWorkerMirroredStrategy`` from
            ``TF_CONFIG``).

    Returns:
        ``tf.distribute.Strategy`` (TensorFlow) or :class:`KerasDistribution`.

    Example:
        >>> make_strategy("default").num_replicas_in_sync
        1
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        if name != "mirrored":
            return KerasDistribution(None, 1)
        devices = keras.distribution.list_devices()
        return KerasDistribution(keras.distribution.DataParallel(devices=devices), len(devices))
    import tensorflow as tf

    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        # No GPU: one replica per logical CPU device (see
        # tf.config.set_logical_device_configuration; one by default).
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=cpus)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()
