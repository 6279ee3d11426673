"""Keras callbacks of a training run: learning-rate column, NaN guard,
periodic evaluation, progress, CSV log, checkpoints.

Training runs one ``fit()`` call per epoch (see :mod:`reid_tf.fit_loop`) so
that an interrupted epoch can be resumed at the exact step: :class:`Position`
holds the epoch and the step the current ``fit()`` call started from, and
the callbacks turn Keras' per-call batch index into the global position.
The training state they save is :class:`reid_tf.checkpoint.TrainingState`.

Callback order matters (Keras calls them in list order and they share the
epoch ``logs`` dict): :class:`EpochLearningRate`, :class:`NaNGuard`,
:class:`PeriodicEvaluation`, the loggers (Keras's ``TensorBoard``),
:class:`EpochProgress`, :class:`reid_tf.csv_log.EpochCSVLogger`,
:class:`CheckpointCallback` -- see
:func:`standard_callbacks`.
"""

import math

import keras
import numpy as np

from reid_tf.csv_log import EpochCSVLogger


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


# ---------------------------------------------------------------- callbacks
def epoch_learning_rate(epoch, steps_per_epoch, boundaries, values):
    """The learning rate of an epoch under ``PiecewiseConstantDecay(boundaries, values)``.

    The schedule is called with the optimizer's iteration count before each
    update; an epoch's rate is the one of its first step, ``epoch *
    steps_per_epoch``: ``values[i]`` where ``i`` counts the boundaries
    below that step (Keras' rule: ``values[0]`` while ``step <=
    boundaries[0]``).

    Args:
        epoch: 0-based epoch.
        steps_per_epoch: steps in an epoch.
        boundaries: the schedule's boundaries (optimizer steps).
        values: the schedule's values (one more than boundaries).

    Returns:
        float: ``values[i]`` as given (not rounded to float32).

    Example:
        >>> epoch_learning_rate(80, 25, [1999, 3999], [1e-3, 1e-4, 1e-5])
        0.0001
    """
    step = int(epoch) * int(steps_per_epoch)
    return float(values[sum(1 for b in boundaries if step > b)])


class EpochLearningRate(keras.callbacks.Callback):
    """Adds the epoch's learning rate to its logs as ``lr``.

    The rate itself is set by the optimizer's ``PiecewiseConstantDecay``
    schedule from its iteration count; this callback only reports it
    (see :func:`epoch_learning_rate`).

    Args:
        steps_per_epoch: steps in an epoch.
        boundaries, values: the schedule's boundaries and values.

    Example:
        >>> cb = EpochLearningRate(25, [1999, 3999], [1e-3, 1e-4, 1e-5])
        >>> logs = {}
        >>> cb.on_epoch_end(80, logs)
        >>> logs
        {'lr': 0.0001}
    """

    def __init__(self, steps_per_epoch, boundaries, values):
        super().__init__()
        self.steps_per_epoch = int(steps_per_epoch)
        self.boundaries = list(boundaries)
        self.values = list(values)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = epoch_learning_rate(epoch, self.steps_per_epoch, self.boundaries,
                                             self.values)


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where.

    Later callbacks consult :attr:`failure` so that nothing computed after
    the failure (CSV row, checkpoint) is written.

    Keras' ``TerminateOnNaN`` stops ``fit`` as well, but says neither
    where (epoch, step, global step) nor what, and the CSV logger and the
    checkpoint callback could not tell that the epoch failed; the weights
    check of :class:`CheckpointCallback` also reports through this guard.

    Args:
        position: the shared :class:`Position`.

    Example:
        >>> guard = NaNGuard(Position(10))
        >>> guard.failure is None
        True
    """

    def __init__(self, position):
        super().__init__()
        self.position = position
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


class CheckpointCallback(keras.callbacks.Callback):
    """Saves the :class:`TrainingState` every N steps and at each epoch end.

    Nothing is saved after a NaN failure, and a state whose weights are not
    finite is never saved (that is reported as a failure instead), so the
    newest checkpoint is always a good one.

    Args:
        state: the :class:`reid_tf.checkpoint.TrainingState`.
        position: the shared :class:`Position`.
        every: steps between saves.
        guard: the :class:`NaNGuard`.
        on_save: optional callable(path, epoch, step) (for logging).
        pending_metrics: packed metric sums to restore at the start of the
            resumed epoch (after ``fit`` reset them), or None.

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
        # reading ``self.model`` writes the JAX trainer's running state back
        # into the model's variables (Keras keeps it apart during an epoch)
        self.model  # noqa: B018
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


def standard_callbacks(*, position, state, csv_path, start_epoch, lr_boundaries,
                       lr_values, checkpoint_every, evaluate=None, eval_every=0,
                       on_save=None, pending_metrics=None, epochs=None, verbose=0,
                       extra=(), loggers=()):
    """The callbacks of a training run, in the order they must run.

    Args:
        position: shared :class:`Position`.
        state: :class:`reid_tf.checkpoint.TrainingState`.
        csv_path: epoch CSV log path (None: no CSV, e.g. a non-chief worker).
        start_epoch: first epoch of this process.
        lr_boundaries, lr_values: the optimizer's learning-rate schedule
            (for the ``lr`` column).
        checkpoint_every: steps between checkpoints.
        evaluate: callable for :class:`PeriodicEvaluation` (or None).
        eval_every: period of the evaluation in epochs.
        on_save: callback after each checkpoint save.
        pending_metrics: metric sums of a resumed epoch.
        epochs: total epochs (for the progress bar).
        verbose: 0 (no progress), 1 (bar) or 2 (a line per epoch).
        extra: more ``keras.callbacks.Callback`` objects, called first.
        loggers: callbacks that need the complete epoch logs (``lr`` and the
            periodic metrics included), such as Keras's ``TensorBoard``;
            called after the evaluation, before the progress bar.

    Returns:
        ``(callbacks, guard)``: the list and the :class:`NaNGuard` in it.

    Example:
        >>> cbs, guard = standard_callbacks(
        ...     position=Position(10), state=None, csv_path=None, start_epoch=0,
        ...     lr_boundaries=[799], lr_values=[1e-3, 1e-4], checkpoint_every=5)
        >>> [type(c).__name__ for c in cbs]
        ['EpochLearningRate', 'NaNGuard', 'CheckpointCallback']
    """
    guard = NaNGuard(position)
    callbacks = [*extra, EpochLearningRate(position.steps_per_epoch, lr_boundaries, lr_values),
                 guard]
    if evaluate is not None and eval_every:
        callbacks.append(PeriodicEvaluation(evaluate, eval_every, guard))
    callbacks.extend(loggers)
    if verbose:
        callbacks.append(EpochProgress(position, epochs, verbose))
    if csv_path is not None:
        callbacks.append(EpochCSVLogger(csv_path, start_epoch, position, guard))
    callbacks.append(CheckpointCallback(state, position, checkpoint_every, guard,
                                        on_save=on_save, pending_metrics=pending_metrics))
    return callbacks, guard
