"""The checkpointed training state of a run (save and restore, for resumption).

:class:`TrainingState` is one ``tf.train.Checkpoint``: the trainer's
weights, the optimizer's slots and iteration counter (which also drives the
learning-rate schedule), the epoch, the step inside the epoch, the global
step and the running sums of the epoch's logged metrics.
``tf.train.CheckpointManager`` writes the files first and then updates the
``checkpoint`` index file atomically, so a process killed while saving
leaves the previous checkpoint in force.
"""

import os

import numpy as np
import tensorflow as tf


def _metric_variables(model):
    return [v for m in model.metrics for v in m.variables]


class TrainingState:
    """The checkpointed training state and its ``CheckpointManager``.

    Args:
        trainer: compiled training model (``AlignedReIDModel`` or
            ``MutualAlignedReID``) whose optimizer is built.
        directory: checkpoint directory.
        max_to_keep: checkpoints kept.

    Example:
        >>> import keras
        >>> from reid_tf.model import build_model
        >>> from reid_tf.training import AlignedReIDModel
        >>> trainer = AlignedReIDModel(build_model("tiny", 4, (64, 32, 3)))
        >>> trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> trainer.optimizer.build(trainer.trainable_variables)
        >>> import tempfile
        >>> state = TrainingState(trainer, tempfile.mkdtemp())
        >>> state.restore() is None         # nothing saved yet
        True
        >>> state.weights_finite()
        True
    """

    def __init__(self, trainer, directory, max_to_keep=2):
        self.trainer = trainer
        self.directory = os.fspath(directory)
        self._metric_vars = _metric_variables(trainer)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        size = sum(int(np.prod(v.shape)) for v in self._metric_vars)
        self.metric_state = tf.Variable(
            np.zeros(size, np.float64), trainable=False, name="metric_state"
        )
        self.checkpoint = tf.train.Checkpoint(
            model=trainer,
            optimizer=trainer.optimizer,
            epoch=self.epoch,
            step=self.step,
            global_step=self.global_step,
            metric_state=self.metric_state,
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.directory, max_to_keep=max_to_keep,
            checkpoint_name="ckpt",
        )

    def _pack_metrics(self):
        if not self._metric_vars:
            return np.zeros(0, np.float64)
        return np.concatenate(
            [np.asarray(v.numpy(), np.float64).ravel() for v in self._metric_vars]
        )

    def unpack_metrics(self, values):
        """Assigns a packed vector (from a checkpoint) to the metric variables.

        Args:
            values: float64 vector, as saved by :meth:`save`.

        Returns:
            None.
        """
        offset = 0
        for v in self._metric_vars:
            n = int(np.prod(v.shape))
            v.assign(np.asarray(values[offset:offset + n]).reshape(v.shape).astype(v.dtype))
            offset += n

    def save(self, epoch, step, global_step):
        """Saves the state at a position (``step`` steps done in ``epoch``).

        Args:
            epoch: 0-based epoch.
            step: steps done inside ``epoch`` (0 at an epoch boundary).
            global_step: steps done in all.

        Returns:
            str: the checkpoint prefix written.
        """
        self.epoch.assign(int(epoch))
        self.step.assign(int(step))
        self.global_step.assign(int(global_step))
        self.metric_state.assign(self._pack_metrics())
        return self.manager.save(checkpoint_number=int(global_step))

    def restore(self):
        """Restores the newest checkpoint, if there is one.

        Returns:
            None, or a dict with ``epoch``, ``step``, ``global_step``,
            ``path`` and ``metric_state`` (numpy vector).

        Raises:
            ValueError: the checkpoint does not match the model (different
                architecture or settings).
        """
        path = self.manager.latest_checkpoint
        if path is None:
            return None
        status = self.checkpoint.restore(path)
        try:
            status.assert_existing_objects_matched()
        except AssertionError as exc:
            raise ValueError(f"{path}: checkpoint does not match the model: {exc}") from None
        return {
            "epoch": int(self.epoch.numpy()),
            "step": int(self.step.numpy()),
            "global_step": int(self.global_step.numpy()),
            "path": path,
            "metric_state": self.metric_state.numpy().copy(),
        }

    def weights_finite(self):
        """Whether every trainable weight of the trainer is finite.

        Returns:
            bool.
        """
        return all(
            bool(tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v))))
            for v in self.trainer.trainable_variables
        )
