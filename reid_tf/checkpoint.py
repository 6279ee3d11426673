"""The checkpointed training state of a run (save and restore, for resumption).

:class:`TrainingState` saves Keras state only, so that the same files are
written and read under every Keras backend (TensorFlow, JAX, PyTorch): one
HDF5 file ``checkpoints/ckpt-<global step>.h5`` per checkpoint holding

- ``trainer/<i>``: every variable of the training model, in
  ``trainer.variables`` order (weights, batch-normalisation statistics and
  the state of the layers' ``keras.random.SeedGenerator`` objects);
- ``optimizer/<i>``: every variable of the optimizer, in
  ``optimizer.variables`` order (the iteration count, which drives the
  learning-rate schedule, Adam's moments, the loss scale of mixed
  precision);
- ``metric_state``: the running sums of the epoch's logged metrics
  (float64);
- attributes ``epoch``, ``step``, ``global_step`` (the position) and
  ``format``, ``version``, ``backend``.

The training batches are a function of the position (the PK sampler of an
epoch is seeded from the run's seed and the epoch, and a resumed epoch skips
the batches already done), so position and variables are the whole state.

Writes are atomic: the file is written under a temporary name and renamed,
then the index ``checkpoints/index.json`` (the newest file and the kept
ones) is replaced atomically; a process killed at any point leaves the
previous checkpoint in force. Variables are matched by order and shape,
not by name (auto-generated layer names differ between processes).
"""

import json
import os
from pathlib import Path

import numpy as np

from reid_common import atomic_path, atomic_write_json

FORMAT = "alignedreid-training-state"
VERSION = 1
INDEX = "index.json"
LEGACY_INDEX = "checkpoint"  # the index file of tf.train.CheckpointManager


def _metric_variables(model):
    return [v for m in model.metrics for v in m.variables]


def _to_numpy(variable):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable))


def legacy_checkpoint(directory):
    """Whether a checkpoint directory holds ``tf.train`` checkpoints of an
    earlier release (and none of this format).

    Args:
        directory: checkpoint directory.

    Returns:
        bool.

    Example:
        >>> legacy_checkpoint("/nonexistent")
        False
    """
    d = Path(directory)
    return (d / LEGACY_INDEX).is_file() and not (d / INDEX).is_file()


def has_state(directory):
    """Whether a checkpoint directory holds a checkpoint (of any format).

    Args:
        directory: checkpoint directory.

    Returns:
        bool.

    Example:
        >>> has_state("/nonexistent")
        False
    """
    d = Path(directory)
    return (d / INDEX).is_file() or (d / LEGACY_INDEX).is_file()


class TrainingState:
    """The checkpointed training state of a trainer in a directory.

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
        >>> Path(state.save(epoch=0, step=2, global_step=2)).name
        'ckpt-2.h5'
        >>> position = state.restore()
        >>> position["epoch"], position["step"], position["global_step"]
        (0, 2, 2)
        >>> state.weights_finite()
        True
    """

    def __init__(self, trainer, directory, max_to_keep=2):
        self.trainer = trainer
        self.directory = Path(directory)
        self.max_to_keep = max(1, int(max_to_keep))
        self._metric_vars = _metric_variables(trainer)

    # ----------------------------------------------------------- index
    def _index(self):
        try:
            with open(self.directory / INDEX, encoding="utf-8") as f:
                index = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.directory / INDEX}: unreadable checkpoint index "
                             f"({exc})") from None
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            raise ValueError(f"{self.directory / INDEX}: not a checkpoint index of this "
                             "program")
        return index

    @property
    def latest_checkpoint(self):
        """Path of the newest checkpoint file, or None.

        Returns:
            str or None.
        """
        try:
            index = self._index()
        except ValueError:
            return None
        return None if index is None else str(self.directory / index["latest"])

    # ----------------------------------------------------------- metrics
    def _pack_metrics(self):
        if not self._metric_vars:
            return np.zeros(0, np.float64)
        return np.concatenate([_to_numpy(v).astype(np.float64).ravel()
                               for v in self._metric_vars])

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

    # ----------------------------------------------------------- save
    def _groups(self):
        return {"trainer": self.trainer.variables,
                "optimizer": self.trainer.optimizer.variables}

    def save(self, epoch, step, global_step):
        """Saves the state at a position (``step`` steps done in ``epoch``).

        Args:
            epoch: 0-based epoch.
            step: steps done inside ``epoch`` (0 at an epoch boundary).
            global_step: steps done in all.

        Returns:
            str: the checkpoint file written.
        """
        import h5py
        import keras

        name = f"ckpt-{int(global_step)}.h5"
        path = self.directory / name
        arrays = {group: [_to_numpy(v) for v in variables]
                  for group, variables in self._groups().items()}
        metric_state = self._pack_metrics()
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                f.attrs.update(format=FORMAT, version=VERSION, epoch=int(epoch),
                               step=int(step), global_step=int(global_step),
                               backend=keras.backend.backend())
                for group, values in arrays.items():
                    g = f.create_group(group)
                    for i, value in enumerate(values):
                        g.create_dataset(str(i), data=value)
                f.create_dataset("metric_state", data=metric_state)
        index = self._index() or {}
        kept = [n for n in index.get("kept", []) if n != name] + [name]
        dropped, kept = kept[:-self.max_to_keep], kept[-self.max_to_keep:]
        atomic_write_json(self.directory / INDEX,
                          {"format": FORMAT, "version": VERSION, "latest": name, "kept": kept})
        for old in dropped:
            (self.directory / old).unlink(missing_ok=True)
        return str(path)

    # ----------------------------------------------------------- restore
    def restore(self):
        """Restores the newest checkpoint, if there is one.

        Returns:
            None, or a dict with ``epoch``, ``step``, ``global_step``,
            ``path`` and ``metric_state`` (numpy vector).

        Raises:
            ValueError: the checkpoint does not match the model (different
                architecture or settings), is unreadable, or is a
                ``tf.train`` checkpoint of an earlier release.
        """
        if legacy_checkpoint(self.directory):
            raise ValueError(f"{self.directory}: a tf.train checkpoint of an earlier release, "
                             "which this release cannot resume")
        index = self._index()
        if index is None:
            return None
        path = self.directory / str(index.get("latest"))
        try:
            values, attrs = _read(path, list(self._groups()))
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{path}: unreadable checkpoint ({exc})") from None
        for group, variables in self._groups().items():
            _check_match(path, group, variables, values[group])
        for group, variables in self._groups().items():
            for v, value in zip(variables, values[group]):
                v.assign(value)  # Keras converts to the variable's dtype
        return {
            "epoch": int(attrs["epoch"]),
            "step": int(attrs["step"]),
            "global_step": int(attrs["global_step"]),
            "path": str(path),
            "metric_state": values["metric_state"],
        }

    def weights_finite(self):
        """Whether every trainable weight of the trainer is finite.

        Returns:
            bool.
        """
        return all(bool(np.isfinite(_to_numpy(v)).all())
                   for v in self.trainer.trainable_variables)


def _read(path, groups):
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError("not a checkpoint of this program")
        attrs = {k: f.attrs[k] for k in ("epoch", "step", "global_step")}
        values = {}
        for group in groups:
            g = f[group]
            values[group] = [np.asarray(g[str(i)][()]) for i in range(len(g))]
        values["metric_state"] = np.asarray(f["metric_state"][()], np.float64)
    return values, attrs


def _check_match(path, group, variables, values):
    if len(variables) != len(values):
        raise ValueError(f"{path}: checkpoint does not match the model: {len(values)} "
                         f"{group} variables saved, the model has {len(variables)}")
    for i, (v, value) in enumerate(zip(variables, values)):
        if tuple(v.shape) != value.shape:
            raise ValueError(f"{path}: checkpoint does not match the model: {group} "
                             f"variable {i} ({v.path}) has shape {tuple(v.shape)}, saved "
                             f"{value.shape}")
