"""``tf.distribute`` strategies of a training run and the cluster role of a process."""

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


def make_strategy(name):
    """The ``tf.distribute`` strategy of a name.

    Args:
        name: ``"default"`` (the default strategy: one device), ``"mirrored"``
            (``MirroredStrategy`` over all local GPUs, or the CPU) or
            ``"multiworker"`` (``MultiWorkerMirroredStrategy`` from
            ``TF_CONFIG``).

    Returns:
        ``tf.distribute.Strategy``.

    Example:
        >>> make_strategy("default").num_replicas_in_sync
        1
    """
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
