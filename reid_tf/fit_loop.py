"""The trainer of a run and its epoch loop.

:func:`build_trainer` builds and compiles the training model with Adam on
Keras' ``PiecewiseConstantDecay`` schedule (:func:`learning_rate_schedule`):
the optimizer's iteration count drives the rate, so a resumed run (whose
checkpoint restores the count) continues on the same schedule, under every
strategy, with no callback touching the optimizer.

:func:`train_epochs` runs one ``fit()`` call per epoch, with the callbacks
of :func:`reid_tf.callbacks.standard_callbacks`; under the ``multiworker``
strategy :class:`reid_tf.distributed.DistributedLoop` runs each epoch with
the same callbacks.
"""

import contextlib
import os
import sys

from reid_tf.config import SettingError, SettingMessage


class TrainingFailed(SettingMessage, RuntimeError):
    """Training stopped (non-finite loss or weights)."""


def _op_errors():
    """The exceptions of a failed backend op (TensorFlow's; none on the others)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return (tf.errors.InvalidArgumentError,)
    return ()


def learning_rate_boundaries(milestones, steps_per_epoch):
    """``PiecewiseConstantDecay`` boundaries of epoch milestones.

    The schedule is evaluated at the optimizer's iteration count before each
    update (0 for the first step) and keeps ``values[i]`` while ``step <=
    boundaries[i]``; an epoch milestone ``m`` therefore becomes the boundary
    ``m * steps_per_epoch - 1``, so that the first step of epoch ``m``
    (step ``m * steps_per_epoch``) uses the next value.

    Args:
        milestones: increasing positive epochs at which the rate changes.
        steps_per_epoch: steps in an epoch.

    Returns:
        list of int.

    Example:
        >>> learning_rate_boundaries([80, 160], 25)
        [1999, 3999]
    """
    return [int(m) * int(steps_per_epoch) - 1 for m in milestones]


def learning_rate_schedule(milestones, values, steps_per_epoch):
    """The learning rate of a run: ``PiecewiseConstantDecay`` over optimizer steps.

    Args:
        milestones: epochs at which the rate changes (may be empty).
        values: rates, one more than milestones.
        steps_per_epoch: steps in an epoch.

    Returns:
        ``keras.optimizers.schedules.PiecewiseConstantDecay``, or the float
        rate when there are no milestones (the schedule needs a boundary).

    Example:
        >>> learning_rate_schedule([], [1e-3], 25)
        0.001
        >>> s = learning_rate_schedule([2], [1e-3, 1e-4], 5)
        >>> [round(float(s(step)), 6) for step in (0, 9, 10)]
        [0.001, 0.001, 0.0001]
    """
    if not milestones:
        return float(values[0])
    import keras

    return keras.optimizers.schedules.PiecewiseConstantDecay(
        learning_rate_boundaries(milestones, steps_per_epoch), [float(v) for v in values])


def build_trainer(cfg, num_classes):
    """Builds and compiles the training model (call inside the strategy scope).

    Args:
        cfg: resolved ``TrainConfig``.
        num_classes: training identities.

    Returns:
        ``(trainer, network)``: the compiled ``AlignedReIDModel`` or
        ``MutualAlignedReID`` (optimizer built) and the main network.

    Raises:
        SettingError: the backbone cannot be built with these weights.
    """
    import keras

    from reid_tf.model import build_model
    from reid_tf.training import AlignedReIDModel, MutualAlignedReID

    weights = None if cfg.weights == "none" else cfg.weights
    shape = (cfg.image_size[0], cfg.image_size[1], 3)

    def network(backbone, w, setting="weights"):
        try:
            return build_model(
                backbone, num_classes=num_classes, input_shape=shape,
                local_channels=cfg.local_channels, local_pooling=cfg.local_pooling,
                weights=w, last_stride=cfg.last_stride, with_local=not cfg.no_local,
            )
        except ValueError as exc:
            text = str(exc)
            if text.startswith("weights: "):  # a file Keras could not load
                raise SettingError("{%s}: {error}" % setting,
                                   error=text[len("weights: "):]) from None
            raise SettingError("{backbone}/{%s}: {error}" % setting, error=exc) from None

    settings = cfg.loss_settings()
    net = network(cfg.backbone, weights)
    if cfg.mutual:
        peer_weights = None if cfg.peer_weights in (None, "none") else cfg.peer_weights
        peer = network(cfg.peer_backbone, peer_weights, "peer_weights")
        trainer = MutualAlignedReID(net, peer, settings, kl_weight=cfg.mutual_kl_weight,
                                    metric_weight=cfg.mutual_metric_weight)
    else:
        trainer = AlignedReIDModel(net, settings)
    schedule = learning_rate_schedule(cfg.lr_milestones, cfg.lr_values, cfg.steps_per_epoch)
    # JAX runs a train step op by op unless it is jit-compiled: always compile it there
    jit = cfg.jit_compile or keras.backend.backend() == "jax"
    trainer.compile(optimizer=keras.optimizers.Adam(schedule), jit_compile=jit)
    trainer.optimizer.build(trainer.trainable_variables)
    return trainer, net


def train_epochs(cfg, trainer, train_split, run, state, *, start, evaluate, log,
                 strategy, csv=True, verbose=1, callbacks=(), loggers=()):
    """Runs the remaining epochs, one ``fit()`` call per epoch (under the
    ``multiworker`` strategy, one
    :meth:`reid_tf.distributed.DistributedLoop.fit_epoch` call per epoch,
    with the same callbacks).

    Args:
        cfg: resolved ``TrainConfig``.
        trainer: compiled training model.
        train_split: training ``Split``.
        run: :class:`reid_tf.run_dir.RunDir` (its CSV log and checkpoints).
        state: :class:`reid_tf.checkpoint.TrainingState`.
        start: restored position dict (``epoch``, ``step``, ``metric_state``)
            or None.
        evaluate: callable for periodic evaluation (flat metrics), or None.
        log: callable taking a message.
        strategy: the ``tf.distribute`` strategy (``fit`` runs in its scope).
        csv: write the epoch CSV (False on non-chief workers).
        verbose: 0, 1 (progress bar) or 2 (a line per epoch).
        callbacks: extra Keras callbacks, called before the run's own.
        loggers: Keras callbacks that see each epoch's complete logs (loss
            terms, ``lr``, periodic metrics), such as ``TensorBoard``.

    Returns:
        dict with ``epochs_done`` and ``last_logs``.

    Raises:
        TrainingFailed: the loss or the weights became non-finite.
    """
    from reid_tf.callbacks import Position, standard_callbacks
    from reid_tf.train_data import scan_training_images, training_batches

    start_epoch = start["epoch"] if start else 0
    start_step = start["step"] if start else 0
    if start_step >= cfg.steps_per_epoch:
        start_epoch, start_step = start_epoch + 1, 0
    position = Position(cfg.steps_per_epoch, start_epoch, start_step)

    def on_save(path, epoch, step, global_step):
        where = f"epoch {epoch + 1}, step {step}" if step else f"end of epoch {epoch}"
        run.log_event(f"checkpoint {os.path.basename(path)}: {where} (global step {global_step})")
        run.set_status("running", checkpoint={"epoch": epoch, "step": step,
                                              "global_step": global_step})

    all_callbacks, guard = standard_callbacks(
        position=position, state=state, csv_path=run.log_path if csv else None,
        start_epoch=start_epoch,
        lr_boundaries=learning_rate_boundaries(cfg.lr_milestones, cfg.steps_per_epoch),
        lr_values=cfg.lr_values, checkpoint_every=cfg.checkpoint_every, evaluate=evaluate,
        eval_every=cfg.eval_every, on_save=on_save,
        pending_metrics=start["metric_state"] if start and start_step else None,
        epochs=cfg.epochs, verbose=verbose, extra=callbacks, loggers=loggers,
    )
    paths, labels = train_split.paths, train_split.labels
    readable = scan_training_images(cfg, paths)
    if not readable.all():
        log(f"skipping {int((~readable).sum())} unreadable training image(s), "
            f"first: {paths[~readable][0]}")
        paths, labels = paths[readable], labels[readable]
    # fit() cannot run under MultiWorkerMirroredStrategy with Keras 3: a custom
    # loop with the same callback protocol replaces it (reid_tf.distributed)
    loop = None
    if cfg.strategy == "multiworker":
        from reid_tf.distributed import DistributedLoop

        loop = DistributedLoop(trainer, strategy, global_batch=cfg.P * cfg.K)
    last_logs = {}
    for epoch in range(start_epoch, cfg.epochs):
        first = start_step if epoch == start_epoch else 0
        position.epoch, position.first_step = epoch, first
        steps = cfg.steps_per_epoch - first
        # first_batch: a resumed epoch starts at its next batch without
        # loading the images of the batches already done
        dataset = training_batches(cfg, paths, labels, epoch=epoch, first_batch=first,
                                   steps=steps)
        try:
            with contextlib.redirect_stdout(sys.stderr), strategy.scope():
                if loop is not None:
                    epoch_logs = loop.fit_epoch(dataset, epoch=epoch, steps=steps,
                                                callbacks=all_callbacks)
                else:
                    history = trainer.fit(dataset, epochs=epoch + 1, initial_epoch=epoch,
                                          steps_per_epoch=steps, callbacks=all_callbacks,
                                          verbose=0, shuffle=False)
                    epoch_logs = {k: v[-1] for k, v in history.history.items() if v}
        except _op_errors():
            # Non-finite features can make an index computed from them invalid
            # (an op error rather than a NaN loss): report it as the NaN it is.
            if state.weights_finite():
                raise
            guard.record_failure({"weights": float("nan")})
        if guard.failure is not None:
            break
        last_logs = {k: float(v) for k, v in epoch_logs.items()}
    if guard.failure is not None:
        saved = state.latest_checkpoint
        where = (f"the last good checkpoint {saved} is kept" if saved
                 else "no checkpoint had been saved")
        raise TrainingFailed("{failure}; training stopped, {where} (check the data or lower "
                             "{lr}, then start afresh with {overwrite})",
                             failure=guard.message(), where=where)
    return {"epochs_done": cfg.epochs, "last_logs": last_logs}
