"""A custom training loop for ``tf.distribute`` strategies that ``fit()``
cannot drive (``MultiWorkerMirroredStrategy`` with Keras 3).

:class:`DistributedLoop` replaces one ``trainer.fit(dataset, epochs=e + 1,
initial_epoch=e, steps_per_epoch=n, callbacks=...)`` call of
``reid_tf.fit_loop.train_epochs`` by :meth:`DistributedLoop.fit_epoch` with the same
arguments and the same callback protocol, so the NaN guard, the learning-rate column,
the checkpoints, the CSV log and the periodic evaluation of
:mod:`reid_tf.callbacks` work unchanged.

One step, per replica (``strategy.run``):

1. forward pass of the training model (``AlignedReIDModel`` or
   ``MutualAlignedReID``) on the replica's share of the batch;
2. the loss of the training model's own ``compute_loss`` (it updates the
   loss-term trackers and divides the loss by the number of replicas);
3. the Keras ``"loss"`` tracker updated with the undivided loss, as
   ``fit()`` does;
4. gradients (of the loss scaled by the optimizer for mixed precision) and
   ``optimizer.apply_gradients``: in the replica context the Keras
   optimizer all-reduces (sums) the gradients across replicas before the
   update, so every replica applies the same update.

The trackers are Keras metrics (sync-on-read variables with sum
aggregation): reading them in the strategy's cross-replica context (inside
its scope, between steps) sums the running totals and counts of all replicas, so the logged loss terms are the means
over all replicas' steps. Every worker reads them in the same order after
every step (the reads are collective operations under a multi-worker
strategy), and every worker therefore sees the same logs and takes the same
decisions (stop on a non-finite loss, save a checkpoint).

Input: every worker builds the same deterministic global P x K batch
(:func:`reid_tf.data.make_train_dataset`) and keeps its replicas' contiguous
slices (:func:`replica_shares`): with P divisible by the number of replicas
each replica holds all K images of P / R identities, exactly as the
``mirrored`` strategy splits a batch. Hard mining is per replica.

Batch normalisation: Keras updates the moving mean and variance on each
replica from its share only; :meth:`DistributedLoop.sync_statistics`
averages them over all replicas at the end of every epoch, so all workers
end an epoch with identical weights.
"""

import threading

import numpy as np
import tensorflow as tf


def outside_strategy_scope(fn):
    """Wraps ``fn`` so that it runs outside any ``tf.distribute`` scope.

    The scope of a strategy is per thread: the wrapper calls ``fn`` in a new
    thread and waits for it. Used for the chief's periodic evaluation, which
    runs between training steps (inside the strategy's scope): there,
    Keras' ``predict_on_batch`` would distribute the prediction over all
    workers and wait for workers that do not evaluate.

    Args:
        fn: callable without arguments.

    Returns:
        callable without arguments returning ``fn()`` (its exception is
        re-raised in the calling thread).

    Example:
        >>> outside_strategy_scope(lambda: tf.distribute.has_strategy())()
        False
    """

    def wrapper():
        result = {}

        def target():
            try:
                result["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                result["error"] = exc

        thread = threading.Thread(target=target, name="outside-strategy-scope")
        thread.start()
        thread.join()
        if "error" in result:
            raise result["error"]
        return result["value"]

    return wrapper


def replica_shares(dataset, global_batch, num_replicas, first_replica, local_replicas):
    """The per-replica slices of a worker's global batches.

    Args:
        dataset: ``tf.data.Dataset`` of (images [B, H, W, 3], labels [B])
            global batches, B = ``global_batch``.
        global_batch: B, divisible by ``num_replicas``.
        num_replicas: replicas in sync over all workers (R).
        first_replica: global index of this worker's first replica.
        local_replicas: replicas of this worker (L).

    Returns:
        ``tf.data.Dataset`` of (images [B / R, H, W, 3], labels [B / R]):
        for each global batch, the L consecutive slices ``[r * B / R,
        (r + 1) * B / R)`` for r = ``first_replica`` .. ``first_replica + L
        - 1``, in that order (a replica dequeues one element per step).

    Raises:
        ValueError: B not divisible by R, or replica indices out of range.

    Example:
        >>> ds = tf.data.Dataset.from_tensors((tf.zeros([8, 4, 2, 3]), tf.range(8)))
        >>> [lab.numpy().tolist() for _, lab in replica_shares(ds, 8, 2, 1, 1)]
        [[4, 5, 6, 7]]
    """
    global_batch, num_replicas = int(global_batch), int(num_replicas)
    first_replica, local_replicas = int(first_replica), int(local_replicas)
    if num_replicas < 1 or global_batch % num_replicas:
        raise ValueError(f"global_batch: {global_batch} cannot be split evenly over "
                         f"{num_replicas} replicas")
    if not (0 <= first_replica and local_replicas >= 1
            and first_replica + local_replicas <= num_replicas):
        raise ValueError(f"first_replica/local_replicas: replicas {first_replica}.."
                         f"{first_replica + local_replicas - 1} outside 0..{num_replicas - 1}")
    per = global_batch // num_replicas

    def split(images, labels):
        parts = None
        for r in range(first_replica, first_replica + local_replicas):
            part = tf.data.Dataset.from_tensors(
                (images[r * per:(r + 1) * per], labels[r * per:(r + 1) * per]))
            parts = part if parts is None else parts.concatenate(part)
        return parts

    return dataset.flat_map(split)


class DistributedLoop:
    """Trains a compiled training model under a strategy without ``fit()``.

    Args:
        trainer: compiled ``AlignedReIDModel`` or ``MutualAlignedReID`` whose
            variables and optimizer were created in ``strategy.scope()``.
        strategy: the ``tf.distribute`` strategy (any; written for
            ``MultiWorkerMirroredStrategy``).
        global_batch: rows of a global batch (P * K).

    ``reid_tf.fit_loop.train_epochs`` builds one under the ``multiworker``
    strategy and calls :meth:`fit_epoch` once per epoch (see
    ``tests/train/test_multiworker.py``).
    """

    def __init__(self, trainer, strategy, global_batch):
        self.trainer = trainer
        self.strategy = strategy
        self.global_batch = int(global_batch)
        replicas = strategy.num_replicas_in_sync
        if self.global_batch % replicas:
            raise ValueError(f"global_batch: {self.global_batch} cannot be split evenly "
                             f"over {replicas} replicas")
        self.loss_tracker = next((m for m in trainer.metrics if m.name == "loss"), None)
        self._step = tf.function(self._distributed_step)
        self._sync = tf.function(self._sync_statistics)

    # ------------------------------------------------------------ input
    def distribute(self, dataset):
        """Distributes a dataset of global batches: each replica gets its slice.

        Args:
            dataset: ``tf.data.Dataset`` of (images [B, H, W, 3], labels [B]),
                the same on every worker (B = ``global_batch``).

        Returns:
            ``tf.distribute.DistributedDataset`` of per-replica
            (images [B / R, H, W, 3], labels [B / R]).
        """
        replicas = self.strategy.num_replicas_in_sync

        def dataset_fn(context):
            local = replicas // context.num_input_pipelines
            return replica_shares(dataset, self.global_batch, replicas,
                                  context.input_pipeline_id * local, local)

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    # ------------------------------------------------------------- step
    def _replica_step(self, images, labels):
        trainer = self.trainer
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        weights = trainer.trainable_weights
        with tf.GradientTape() as tape:
            y_pred = trainer(images, training=True)
            # divided by the number of replicas (gradients are summed)
            loss = trainer.compute_loss(x=images, y=labels, y_pred=y_pred, training=True)
            if self.loss_tracker is not None:
                self.loss_tracker.update_state(loss * replicas,
                                               sample_weight=tf.shape(labels)[0])
            scaled = trainer.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, weights)
        trainer.optimizer.apply_gradients(zip(gradients, weights))
        return loss

    def _distributed_step(self, images, labels):
        losses = self.strategy.run(self._replica_step, args=(images, labels))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    def _replica_sync(self, variables):
        context = tf.distribute.get_replica_context()
        local = [tf.identity(tf.convert_to_tensor(v)) for v in variables]
        means = context.all_reduce(tf.distribute.ReduceOp.MEAN, local)
        for variable, mean in zip(variables, means):
            # aggregation "none": each replica assigns its own copy, all the same value
            variable.assign(mean)

    def _sync_statistics(self):
        variables = [v for v in self.trainer.non_trainable_weights
                     if v.dtype.startswith("float")]
        if variables:
            self.strategy.run(lambda: self._replica_sync(variables))

    def sync_statistics(self):
        """Replaces every float non-trainable weight (batch-norm moving mean
        and variance) by its mean over all replicas.

        Keras updates these variables on each replica from the replica's
        share of the batch only (aggregation ``"none"``), so the replicas'
        copies drift apart during an epoch; after this call all replicas and
        all workers hold the same values.

        Returns:
            None.
        """
        self._sync()

    def logs(self):
        """The running means of the trainer's metrics, over all replicas.

        Returns:
            dict name -> float (``loss``, the loss terms, ``id_accuracy``).
        """
        out = {}
        for metric in self.trainer.metrics:
            result = metric.result()
            if isinstance(result, dict):
                out.update({k: float(np.asarray(v)) for k, v in result.items()})
            else:
                out[metric.name] = float(np.asarray(result))
        return out

    # ------------------------------------------------------------ epoch
    def fit_epoch(self, dataset, *, epoch, steps, callbacks):
        """One epoch, like ``trainer.fit(dataset, epochs=epoch + 1,
        initial_epoch=epoch, steps_per_epoch=steps, callbacks=callbacks)``.

        The callbacks are called as ``fit()`` calls them: ``on_train_begin``,
        ``on_epoch_begin`` (after the metrics are reset),
        ``on_train_batch_begin``/``on_train_batch_end`` with the running
        means of the metrics, ``on_epoch_end`` with the epoch's logs (which
        the callbacks may extend), ``on_train_end``. A callback that sets
        ``trainer.stop_training`` ends the epoch after the current step.
        Call it inside ``strategy.scope()``, on every worker (as ``fit()``
        is called): the metric reads and the checkpoint saves of the
        callbacks are then collective operations that all workers run in the
        same order.

        Args:
            dataset: ``tf.data.Dataset`` of global batches with at least
                ``steps`` elements (the same on every worker).
            epoch: 0-based epoch.
            steps: steps to run.
            callbacks: list of ``keras.callbacks.Callback``.

        Returns:
            dict: the epoch's logs after the callbacks (like the last entry
            of ``fit()``'s history).
        """
        trainer = self.trainer
        for cb in callbacks:
            cb.set_model(trainer)
        trainer.stop_training = False
        for cb in callbacks:
            cb.on_train_begin()
        trainer.reset_metrics()
        for cb in callbacks:
            cb.on_epoch_begin(epoch)
        logs = {}
        iterator = iter(self.distribute(dataset.take(steps)))
        for batch in range(int(steps)):
            for cb in callbacks:
                cb.on_train_batch_begin(batch)
            images, labels = next(iterator)
            self._step(images, labels)
            logs = self.logs()
            for cb in callbacks:
                cb.on_train_batch_end(batch, dict(logs))
            if trainer.stop_training:
                break
        self.sync_statistics()  # before the end-of-epoch checkpoint
        epoch_logs = dict(logs)
        for cb in callbacks:
            cb.on_epoch_end(epoch, epoch_logs)
        for cb in callbacks:
            cb.on_train_end(dict(epoch_logs))
        return epoch_logs
