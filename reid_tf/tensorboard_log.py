"""TensorBoard logs of a training run (``--tensorboard DIR``).

Keras's own ``TensorBoard`` callback writes each epoch's logs to
``DIR/train`` as ``epoch_<name>`` scalars at step = the 0-based epoch: the
loss terms, ``lr``, Keras's ``learning_rate`` and, with periodic evaluation,
the metrics (``epoch_<dataset>/<ranking>/<metric>``).
:func:`write_evaluation` adds the before/after-training evaluation to
``DIR/evaluation`` (``before/<dataset>/<ranking>/<metric>`` at step 0,
``after/...`` at the last epoch's step). Both write with TensorFlow's
``tf.summary``, whatever the Keras backend.
"""

import os

from reid_tf.evaluation import flat_metrics

__all__ = ["log_dir_problem", "tensorboard_callback", "write_evaluation"]


def log_dir_problem(path):
    """Why TensorBoard logs cannot be written to ``path`` (None: they can).

    Creates the directory.

    Args:
        path: the log directory.

    Returns:
        str or None.

    Example:
        >>> import tempfile
        >>> log_dir_problem(tempfile.mkdtemp()) is None
        True
    """
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        return f"cannot create {path} ({exc.strerror or exc})"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path} is not writable"
    return None


def tensorboard_callback(log_dir):
    """Keras's ``TensorBoard`` callback writing once per epoch.

    Args:
        log_dir: the log directory.

    Returns:
        ``keras.callbacks.TensorBoard`` (no graph, no profiling).
    """
    import keras

    return keras.callbacks.TensorBoard(log_dir=os.fspath(log_dir), write_graph=False,
                                       profile_batch=0, update_freq="epoch")


def write_evaluation(log_dir, when, results, step):
    """Writes evaluation metrics as scalars to ``log_dir/evaluation``.

    Args:
        log_dir: the log directory.
        when: tag prefix, ``"before"`` or ``"after"``.
        results: :func:`reid_tf.engine.evaluate_sets` output.
        step: the TensorBoard step.

    Returns:
        list of str: the tags written.
    """
    from reid_tf.tf_startup import import_tensorflow

    tf = import_tensorflow()
    tags = []
    writer = tf.summary.create_file_writer(os.path.join(os.fspath(log_dir), "evaluation"))
    with writer.as_default():
        for name, res in results.items():
            for key, value in flat_metrics(res["metrics"], prefix=f"{when}/{name}/").items():
                tf.summary.scalar(key, float(value), step=int(step))
                tags.append(key)
    writer.close()
    return tags
