"""Keras callbacks of ``train.py``: schedule, NaN guard, checkpoints, CSV log,
periodic evaluation.

Training runs one ``fit()`` call per epoch (see ``reid_tf.train_cli``) so that
an interrupted epoch can be resumed at the exact step: :class:`Position`
holds the epoch and the step the current ``fit()`` call started from, and the
callbacks turn Keras' per-call batch index into the global position.

The training state (:class:`TrainingState`) is one ``tf.train.Checkpoint``:
the trainer's weights, the optimizer's slots and iteration counter, the
epoch, the step inside the epoch, the global step and the running sums of
the epoch's logged metrics. ``tf.train.CheckpointManager`` writes the files
first and then updates the ``checkpoint`` index file atomically, so a
process killed while saving leaves the previous checkpoint in force.

Callback order matters (Keras calls them in list order and they share the
epoch ``logs`` dict): :class:`LearningRateSchedule`, :class:`NaNGuard`,
:class:`PeriodicEvaluation`, :class:`EpochCSVLogger`,
:class:`CheckpointCallback` -- see :func:`standard_callbacks`.
"""

import csv
import io
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from reid_common import atomic_write_text


class NonFiniteLossError(RuntimeError):
    """Training stopped because the loss (or the weights) became NaN/Inf."""


# ----------------------------------------------------------------- position
class Position:
    """Where training is: epoch, first step of the current ``fit()`` call.

    Args:
        steps_per_epoch: steps in a full epoch.
        epoch: 0-based epoch of the current ``fit()`` call.
        first_step: step (inside the epoch) the call started from.

    Example:
        >>> pos = Position(10, epoch=2, first_step=4)
        >>> pos.global_step(batch=0)   # the 5th step of epoch 2, 1-based count
        25
    """

    def __init__(self, steps_per_epoch, epoch=0, first_step=0):
        self.steps_per_epoch = int(steps_per_epoch)
        self.epoch = int(epoch)
        self.first_step = int(first_step)

    def step_in_epoch(self, batch):
        """Steps done in the epoch after Keras batch ``batch`` (1-based count).

        Args:
            batch: Keras' 0-based batch index within the current call.

        Returns:
            int.

        Example:
            >>> Position(10, 0, 4).step_in_epoch(0)
            5
        """
        return self.first_step + int(batch) + 1

    def global_step(self, batch):
        """Steps done since the start of training after batch ``batch``.

        Args:
            batch: Keras' 0-based batch index within the current call.

        Returns:
            int.

        Example:
            >>> Position(10, 1, 0).global_step(9)
            20
        """
        return self.epoch * self.steps_per_epoch + self.step_in_epoch(batch)


# ------------------------------------------------------------ training state
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
        >>> state = TrainingState(trainer, "runs/x/checkpoints")  # doctest: +SKIP
        >>> state.restore()                 # None when nothing was saved
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

        Example:
            >>> state.unpack_metrics(saved)  # doctest: +SKIP
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

        Example:
            >>> state.save(epoch=1, step=5, global_step=25)  # doctest: +SKIP
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

        Example:
            >>> state.restore()  # doctest: +SKIP
            {'epoch': 1, 'step': 5, 'global_step': 25, ...}
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

        Example:
            >>> state.weights_finite()  # doctest: +SKIP
            True
        """
        return all(
            bool(tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v))))
            for v in self.trainer.trainable_variables
        )


# ---------------------------------------------------------------- callbacks
def piecewise_lr(epoch, milestones, values):
    """Learning rate of a 0-based epoch under a piecewise-constant schedule.

    Args:
        epoch: 0-based epoch.
        milestones: increasing epochs at which the rate changes.
        values: ``len(milestones) + 1`` rates.

    Returns:
        float.

    Example:
        >>> piecewise_lr(80, [80, 160], [1e-3, 1e-4, 1e-5])
        0.0001
    """
    return float(values[sum(1 for m in milestones if epoch >= m)])


class LearningRateSchedule(keras.callbacks.Callback):
    """Sets the optimizer's learning rate at the start of each epoch.

    Args:
        milestones: epochs at which the rate changes.
        values: rates (one more than milestones).

    Example:
        >>> LearningRateSchedule([80, 160], [1e-3, 1e-4, 1e-5])  # doctest: +ELLIPSIS
        <...LearningRateSchedule object at ...>
    """

    def __init__(self, milestones, values):
        super().__init__()
        self.milestones = list(milestones)
        self.values = list(values)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.optimizer.learning_rate.assign(
            piecewise_lr(epoch, self.milestones, self.values)
        )

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = piecewise_lr(epoch, self.milestones, self.values)


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where.

    Later callbacks consult :attr:`failure` so that nothing computed after
    the failure (CSV row, checkpoint) is written.

    Args:
        position: the shared :class:`Position`.
        inject_nan_at_step: test hook: before this global step (1-based)
            the first trainable weight is set to NaN.
        step_delay: test hook: seconds to sleep after every step.

    Example:
        >>> guard = NaNGuard(Position(10))
        >>> guard.failure is None
        True
    """

    def __init__(self, position, inject_nan_at_step=None, step_delay=0.0):
        super().__init__()
        self.position = position
        self.inject_nan_at_step = inject_nan_at_step
        self.step_delay = float(step_delay)
        self.failure = None
        self.current = None

    def record_failure(self, values):
        """Marks training as failed at the step in progress.

        Args:
            values: dict name -> offending value (for the message).

        Returns:
            None.

        Example:
            >>> guard = NaNGuard(Position(10))
            >>> guard.record_failure({"weights": float("nan")})
            >>> guard.failure["values"]
            {'weights': nan}
        """
        epoch, step, gstep = self.current or (self.position.epoch, self.position.first_step, 0)
        if self.failure is None:
            self.failure = {"epoch": epoch, "step": step, "global_step": gstep,
                            "values": dict(values)}

    def on_train_batch_begin(self, batch, logs=None):
        self.current = (self.position.epoch, self.position.step_in_epoch(batch),
                        self.position.global_step(batch))
        if (self.inject_nan_at_step is not None
                and self.position.global_step(batch) == self.inject_nan_at_step):
            v = self.model.trainable_variables[0]
            v.assign(tf.fill(v.shape, float("nan")))

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        bad = {
            k: float(v) for k, v in logs.items()
            if k.endswith("loss") and isinstance(v, (int, float, np.floating, np.ndarray))
            and not math.isfinite(float(v))
        }
        if bad and self.failure is None:
            self.failure = {
                "epoch": self.position.epoch,
                "step": self.position.step_in_epoch(batch),
                "global_step": self.position.global_step(batch),
                "values": bad,
            }
            self.model.stop_training = True
        if self.step_delay:
            time.sleep(self.step_delay)

    def message(self):
        """One-line description of the failure (None when training is fine).

        Returns:
            str or None.

        Example:
            >>> NaNGuard(Position(10)).message() is None
            True
        """
        if self.failure is None:
            return None
        f = self.failure
        terms = ", ".join(f"{k}={v}" for k, v in sorted(f["values"].items()))
        return (
            f"non-finite values at epoch {f['epoch'] + 1}, step {f['step']} "
            f"(global step {f['global_step']}): {terms}"
        )


class PeriodicEvaluation(keras.callbacks.Callback):
    """Evaluates every ``every`` epochs and adds the metrics to the logs.

    Args:
        evaluate: callable returning a flat dict name -> float.
        every: period in epochs (0 disables).
        guard: the :class:`NaNGuard` (no evaluation after a failure).

    Example:
        >>> cb = PeriodicEvaluation(lambda: {"rank1": 0.5}, every=2)
    """

    def __init__(self, evaluate, every, guard=None):
        super().__init__()
        self.evaluate = evaluate
        self.every = int(every)
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):
        if not self.every or (epoch + 1) % self.every:
            return
        if self.guard is not None and self.guard.failure is not None:
            return
        if logs is not None:
            logs.update(self.evaluate())


class EpochCSVLogger(keras.callbacks.Callback):
    """One CSV row per finished epoch, the whole file rewritten atomically.

    On resumption the rows of epochs at or after the resumed epoch are
    dropped (they are recomputed), so the epochs in the file always continue.

    Args:
        path: CSV file.
        start_epoch: first epoch of this process (rows >= it are dropped).
        position: the shared :class:`Position`.
        guard: the :class:`NaNGuard`.

    Example:
        >>> logger = EpochCSVLogger("runs/x/log.csv", 0, Position(10))  # doctest: +SKIP
    """

    FIRST = ("epoch", "global_step", "lr", "loss")

    def __init__(self, path, start_epoch, position, guard=None):
        super().__init__()
        self.path = os.fspath(path)
        self.position = position
        self.guard = guard
        self.rows = [r for r in read_csv_log(self.path) if int(r["epoch"]) <= start_epoch]
        self._epoch_start = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._epoch_start is None:
            self._epoch_start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        if self.guard is not None and self.guard.failure is not None:
            return
        row = {"epoch": epoch + 1,
               "global_step": (epoch + 1) * self.position.steps_per_epoch,
               "time_s": round(time.time() - (self._epoch_start or time.time()), 3)}
        for k, v in (logs or {}).items():
            if isinstance(v, (int, float, np.floating, np.integer)):
                row[k] = float(v)
        self._epoch_start = None
        self.rows = [r for r in self.rows if int(r["epoch"]) != epoch + 1] + [row]
        self.write()

    def write(self):
        """Rewrites the CSV file with :attr:`rows` (atomic).

        Returns:
            None.

        Example:
            >>> logger.write()  # doctest: +SKIP
        """
        keys = [k for k in self.FIRST if any(k in r for r in self.rows)]
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, restval="")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: _fmt(v) for k, v in r.items()})
        atomic_write_text(self.path, buf.getvalue())


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def read_csv_log(path):
    """Rows of a CSV log written by :class:`EpochCSVLogger` (``[]`` if absent).

    Args:
        path: CSV file.

    Returns:
        list of dicts (strings as read; ``epoch`` as int).

    Example:
        >>> read_csv_log("/nonexistent.csv")
        []
    """
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = [dict(r) for r in csv.DictReader(f)]
    for r in rows:
        r["epoch"] = int(r["epoch"])
        for k, v in list(r.items()):
            if k != "epoch" and v not in ("", None):
                try:
                    r[k] = float(v)
                except ValueError:
                    pass
    return rows


class CheckpointCallback(keras.callbacks.Callback):
    """Saves the :class:`TrainingState` every N steps and at each epoch end.

    Nothing is saved after a NaN failure, and a state whose weights are not
    finite is never saved (that is reported as a failure instead), so the
    newest checkpoint is always a good one.

    Args:
        state: the :class:`TrainingState`.
        position: the shared :class:`Position`.
        every: steps between saves.
        guard: the :class:`NaNGuard`.
        on_save: optional callable(path, epoch, step) (for logging).
        pending_metrics: packed metric sums to restore at the start of the
            resumed epoch (after ``fit`` reset them), or None.

    Example:
        >>> cb = CheckpointCallback(state, Position(10), every=5)  # doctest: +SKIP
    """

    def __init__(self, state, position, every, guard=None, on_save=None,
                 pending_metrics=None):
        super().__init__()
        self.state = state
        self.position = position
        self.every = int(every)
        self.guard = guard
        self.on_save = on_save
        self.pending_metrics = pending_metrics
        self.last_saved = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.pending_metrics is not None:
            self.state.unpack_metrics(self.pending_metrics)
            self.pending_metrics = None

    def _save(self, epoch, step, global_step):
        if self.guard is not None and self.guard.failure is not None:
            return
        if not self.state.weights_finite():
            if self.guard is not None:
                self.guard.failure = {
                    "epoch": epoch, "step": step, "global_step": global_step,
                    "values": {"weights": float("nan")},
                }
            self.model.stop_training = True
            return
        path = self.state.save(epoch, step, global_step)
        self.last_saved = (epoch, step, global_step)
        if self.on_save is not None:
            self.on_save(path, epoch, step, global_step)

    def on_train_batch_end(self, batch, logs=None):
        step = self.position.step_in_epoch(batch)
        gstep = self.position.global_step(batch)
        if step < self.position.steps_per_epoch and gstep % self.every == 0:
            self._save(self.position.epoch, step, gstep)

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training:
            return
        self._save(epoch + 1, 0, (epoch + 1) * self.position.steps_per_epoch)


class EpochProgress(keras.callbacks.Callback):
    """Progress bar of the whole run (``fit`` itself runs with ``verbose=0``).

    Shows ``Epoch e/E`` of the whole run (each ``fit`` call covers one epoch)
    and counts steps from the start of the epoch, also after a resumption.
    Metrics whose name contains ``/`` (periodic evaluation) are not shown.

    Args:
        position: the shared :class:`Position`.
        epochs: total epochs of the run.
        verbose: 1 (bar redrawn each step) or 2 (one line per epoch).

    Example:
        >>> EpochProgress(Position(10), epochs=5, verbose=2)  # doctest: +ELLIPSIS
        <...EpochProgress object at ...>
    """

    def __init__(self, position, epochs, verbose=1):
        super().__init__()
        self.position = position
        self.epochs = int(epochs)
        self.verbose = int(verbose)
        self.bar = None

    def on_epoch_begin(self, epoch, logs=None):
        first = self.position.first_step
        note = f" (resuming at step {first})" if first else ""
        print(f"Epoch {epoch + 1}/{self.epochs}{note}", flush=True)
        self.bar = keras.utils.Progbar(self.position.steps_per_epoch, verbose=self.verbose,
                                       unit_name="step")

    @staticmethod
    def _shown(logs):
        return [(k, v) for k, v in (logs or {}).items() if "/" not in k]

    def on_train_batch_end(self, batch, logs=None):
        if self.verbose == 1 and self.bar is not None:
            self.bar.update(self.position.step_in_epoch(batch), self._shown(logs))

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.update(self.position.steps_per_epoch, self._shown(logs), finalize=True)
            self.bar = None


def standard_callbacks(*, position, state, csv_path, start_epoch, milestones,
                       lr_values, checkpoint_every, evaluate=None, eval_every=0,
                       on_save=None, pending_metrics=None, inject_nan_at_step=None,
                       step_delay=0.0, epochs=None, verbose=0):
    """The callbacks of a training run, in the order they must run.

    Args:
        position: shared :class:`Position`.
        state: :class:`TrainingState`.
        csv_path: epoch CSV log path (None: no CSV, e.g. a non-chief worker).
        start_epoch: first epoch of this process.
        milestones, lr_values: learning-rate schedule.
        checkpoint_every: steps between checkpoints.
        evaluate: callable for :class:`PeriodicEvaluation` (or None).
        eval_every: period of the evaluation in epochs.
        on_save: callback after each checkpoint save.
        pending_metrics: metric sums of a resumed epoch.
        inject_nan_at_step, step_delay: test hooks of :class:`NaNGuard`.
        epochs: total epochs (for the progress bar).
        verbose: 0 (no progress), 1 (bar) or 2 (a line per epoch).

    Returns:
        ``(callbacks, guard)``: the list and the :class:`NaNGuard` in it.

    Example:
        >>> cbs, guard = standard_callbacks(...)  # doctest: +SKIP
    """
    guard = NaNGuard(position, inject_nan_at_step=inject_nan_at_step,
                     step_delay=step_delay)
    callbacks = [LearningRateSchedule(milestones, lr_values), guard]
    if evaluate is not None and eval_every:
        callbacks.append(PeriodicEvaluation(evaluate, eval_every, guard))
    if verbose:
        callbacks.append(EpochProgress(position, epochs, verbose))
    if csv_path is not None:
        callbacks.append(EpochCSVLogger(csv_path, start_epoch, position, guard))
    callbacks.append(CheckpointCallback(state, position, checkpoint_every, guard,
                                        on_save=on_save, pending_metrics=pending_metrics))
    return callbacks, guard
