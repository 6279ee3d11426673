"""Training models: the AlignedReID objective and mutual learning.

Both classes are ``keras.Model`` subclasses that override only
``compute_loss``: Keras' own ``train_step`` runs the forward pass, the loss
scaling of mixed precision, the gradient and the optimizer update, so
``fit()`` keeps its progress bar, callbacks, ``jit_compile`` and
``tf.distribute`` support. Compile them with an optimizer only (no ``loss``
and no ``metrics``: the loss components and the ID accuracy are tracked by
the model itself and appear in the logs).

The data are ``(images [B, H, W, 3] float32, labels [B] int)`` batches
(P identities x K images, see ``reid_tf.data.make_train_dataset``).

Under a ``tf.distribute`` strategy ``compute_loss`` runs once per replica on
the replica's share of the batch, so hard-example mining happens within each
replica's sub-batch; the returned loss is divided by the number of replicas
(gradients are summed across replicas). Feed P x K batches whose per-replica
shares still hold whole identities if mining should see all K images.
"""

import copy

import keras
from keras import ops

from reid_common import normalizes_global
from reid_tf.distances import pairwise_distance
from reid_tf.losses import (
    classification_mutual_loss,
    id_loss,
    l2_normalize,
    metric_mutual_loss,
    trihard_losses,
)
from reid_tf.loss_settings import LossSettings
from reid_tf.loss_settings import field_names as loss_field_names
from reid_tf.model import has_local_branch


def _scale_for_replicas(loss):
    """Divides a per-replica loss by the number of replicas in sync."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            loss = loss / ops.cast(replicas, loss.dtype)
    return loss


def _float32_outputs(outputs):
    return {key: ops.cast(value, "float32") for key, value in outputs.items()}


def _batch_accuracy(labels, logits):
    predicted = ops.argmax(logits, axis=-1)
    return ops.mean(ops.cast(ops.equal(predicted, ops.cast(labels, predicted.dtype)), "float32"))


class _AlignedReIDObjective:
    """One network's AlignedReID loss, from a :class:`LossSettings`.

    The nine settings are also readable as attributes (``model.local_margin``).
    """

    def _init_objective(self, loss_settings, overrides):
        settings = loss_settings if loss_settings is not None else LossSettings()
        if isinstance(settings, dict):
            settings = LossSettings.from_dict(settings)
        if overrides:
            settings = settings.replace(**overrides)
        self.loss_settings = settings

    def _objective(self, outputs, labels, with_local):
        """One network's loss terms (float32 scalars).

        Returns:
            dict with "loss" (weighted sum), "id_loss", "global_loss",
            "local_loss" (only with a local branch) and "id_accuracy".
        """
        tri = trihard_losses(
            outputs["global"],
            outputs["local"] if with_local else None,
            labels,
            global_margin=self.global_margin,
            local_margin=self.local_margin,
            normalize_features=self.normalize_features,
            local_mining=self.local_mining,
            aligned=self.aligned,
        )
        terms = {
            "id_loss": id_loss(labels, outputs["logits"], label_smoothing=self.label_smoothing),
            "global_loss": tri["global"],
        }
        total = self.id_weight * terms["id_loss"] + self.global_weight * terms["global_loss"]
        if with_local:
            terms["local_loss"] = tri["local"]
            total = total + self.local_weight * terms["local_loss"]
        terms["loss"] = total
        terms["id_accuracy"] = _batch_accuracy(labels, outputs["logits"])
        return terms

    def _global_distances(self, global_features):
        if normalizes_global(self.normalize_features):
            global_features = l2_normalize(global_features)
        return pairwise_distance(global_features, global_features)


for _name in loss_field_names():
    setattr(_AlignedReIDObjective, _name,
            property(lambda self, _n=_name: getattr(self.loss_settings, _n)))
del _name


def _split_overrides(kwargs):
    """Takes the loss-setting keywords out of ``kwargs``."""
    return {name: kwargs.pop(name) for name in loss_field_names() if name in kwargs}


def _settings_from_config(config):
    """The ``loss_settings`` of a stored config; flat keys (older files) too."""
    values = dict(config.pop("loss_settings", None) or {})
    for name in loss_field_names():
        if name in config:
            values.setdefault(name, config.pop(name))
    return LossSettings.from_dict(values)


def _make_trackers(names):
    return [keras.metrics.Mean(name=name) for name in names]


def _labels(y):
    if y is None:
        raise ValueError("labels: the training data must be (images, labels) pairs")
    return ops.reshape(ops.cast(y, "int32"), (-1,))


@keras.saving.register_keras_serializable(package="reid_tf")
class AlignedReIDModel(_AlignedReIDObjective, keras.Model):
    """Trains one network with the AlignedReID loss.

    loss = id_weight * ID loss (softmax cross-entropy on "logits")
         + global_weight * TriHard loss on the global features
         + local_weight * TriHard loss on the aligned local distances
           (only when the network has a local branch).

    Hard examples are mined in the batch by global distance (or by local
    distance for the local term with ``local_mining="local"``), see
    ``reid_tf.losses.trihard_losses``.

    Logged metrics (running means over the epoch, as Keras' ``loss``):
    ``loss``, ``id_loss``, ``global_loss``, ``local_loss`` (with a local
    branch) and ``id_accuracy`` (batch accuracy of the ID classifier).

    Args:
        network: a model from :func:`reid_tf.model.build_model`.
        loss_settings: :class:`reid_tf.loss_settings.LossSettings` (or its
            dict); default: ``LossSettings()``.
        **kwargs: any :class:`LossSettings` field (``local_margin=0.4``),
            overriding ``loss_settings``, and ``keras.Model`` arguments
            (``name``).

    Example:
        >>> import numpy as np
        >>> from reid_tf.model import build_model
        >>> net = build_model("tiny", num_classes=4, input_shape=(64, 32, 3))
        >>> model = AlignedReIDModel(net)
        >>> model.compile(optimizer=keras.optimizers.Adam(3e-4))
        >>> images = np.random.default_rng(0).random((8, 64, 32, 3), dtype=np.float32)
        >>> labels = np.repeat(np.arange(4), 2)  # a P x K batch: 4 identities x 2
        >>> history = model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
        >>> sorted(history.history)
        ['global_loss', 'id_accuracy', 'id_loss', 'local_loss', 'loss']
    """

    def __init__(self, network, loss_settings=None, **kwargs):
        overrides = _split_overrides(kwargs)
        super().__init__(**kwargs)
        self._init_objective(loss_settings, overrides)
        self.network = network
        self.with_local = has_local_branch(network)
        names = ["id_loss", "global_loss"]
        if self.with_local:
            names.append("local_loss")
        names.append("id_accuracy")
        self.component_trackers = _make_trackers(names)
        self.built = True

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The AlignedReID loss of a batch (``sample_weight`` is not used).

        Args:
            x: images (unused).
            y: labels ``[B]``.
            y_pred: the network's output dict.
            sample_weight: unused.
            training: unused (the same loss is reported by ``evaluate``).

        Returns:
            Scalar float32 loss (divided by the number of replicas under a
            distribution strategy), plus any regularisation losses.
        """
        terms = self._objective(_float32_outputs(y_pred), _labels(y), self.with_local)
        for tracker in self.component_trackers:
            tracker.update_state(terms[tracker.name])
        total = terms["loss"]
        if self.losses:
            total = total + ops.cast(ops.sum([ops.sum(v) for v in self.losses]), "float32")
        return _scale_for_replicas(total)

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        config["network"] = keras.saving.serialize_keras_object(self.network)
        config["loss_settings"] = self.loss_settings.to_dict()
        return config

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)  # deserialization consumes nested dicts
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(loss_settings=_settings_from_config(config), **config)


@keras.saving.register_keras_serializable(package="reid_tf")
class MutualAlignedReID(_AlignedReIDObjective, keras.Model):
    """Trains two networks together with mutual learning (paper section 3.3).

    loss = L1 + L2
         + kl_weight * classification mutual loss
           (KL(sg(p2) || p1) + KL(sg(p1) || p2), batch mean)
         + metric_weight * metric mutual loss (Eq. 3 on the two networks'
           global distance matrices [B, B], peer side under stop-gradient)

    where Lk is network k's own AlignedReID loss (as in
    :class:`AlignedReIDModel`, same hyper-parameters for both). One optimizer
    updates the union of both networks' variables: because each mutual term
    holds the peer's side constant, the gradient of this sum with respect to
    network k's variables is exactly network k's own mutual-learning
    gradient (its loss plus the mutual terms with the peer held fixed).

    Logged metrics: ``loss``; per network k in (1, 2): ``netk_loss``,
    ``netk_id_loss``, ``netk_global_loss``, ``netk_local_loss`` (with a local
    branch), ``netk_id_accuracy``; and ``kl_loss``, ``metric_mutual_loss``
    (unweighted).

    Args:
        network1, network2: models from :func:`reid_tf.model.build_model`
            with the same number of classes.
        loss_settings: :class:`reid_tf.loss_settings.LossSettings` of both
            networks' own losses, as in :class:`AlignedReIDModel`.
        kl_weight: weight of the classification mutual loss.
        metric_weight: weight of the metric mutual loss.
        **kwargs: :class:`LossSettings` fields and ``keras.Model`` arguments,
            as in :class:`AlignedReIDModel`.

    Example:
        >>> import numpy as np
        >>> from reid_tf.model import build_model
        >>> net1 = build_model("tiny", num_classes=4, input_shape=(64, 32, 3))
        >>> net2 = build_model("tiny", num_classes=4, input_shape=(64, 32, 3))
        >>> model = MutualAlignedReID(net1, net2)
        >>> model.compile(optimizer=keras.optimizers.Adam(2e-4))
        >>> images = np.random.default_rng(0).random((8, 64, 32, 3), dtype=np.float32)
        >>> labels = np.repeat(np.arange(4), 2)
        >>> history = model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
        >>> [k for k in sorted(history.history) if not k.startswith("net2")]
        ['kl_loss', 'loss', 'metric_mutual_loss', 'net1_global_loss', 'net1_id_accuracy', 'net1_id_loss', 'net1_local_loss', 'net1_loss']
    """

    def __init__(self, network1, network2, loss_settings=None, kl_weight=0.01,
                 metric_weight=0.001, **kwargs):
        overrides = _split_overrides(kwargs)
        super().__init__(**kwargs)
        self._init_objective(loss_settings, overrides)
        for name, value in (("kl_weight", kl_weight), ("metric_weight", metric_weight)):
            if float(value) < 0:
                raise ValueError(f"{name}: expected >= 0, got {value!r}")
        classes = [net.get_layer("logits").units for net in (network1, network2)]
        if classes[0] != classes[1]:
            raise ValueError(
                f"network2: expected {classes[0]} classes like network1, got {classes[1]}"
            )
        self.kl_weight = float(kl_weight)
        self.metric_weight = float(metric_weight)
        self.network1 = network1
        self.network2 = network2
        self.with_local = (has_local_branch(network1), has_local_branch(network2))
        names = []
        for k, local in zip((1, 2), self.with_local):
            names += [f"net{k}_loss", f"net{k}_id_loss", f"net{k}_global_loss"]
            if local:
                names.append(f"net{k}_local_loss")
            names.append(f"net{k}_id_accuracy")
        names += ["kl_loss", "metric_mutual_loss"]
        self.component_trackers = _make_trackers(names)
        self.built = True

    def call(self, inputs, training=False):
        return {
            "net1": self.network1(inputs, training=training),
            "net2": self.network2(inputs, training=training),
        }

    def mutual_terms(self, y, y_pred):
        """All loss terms of a batch (float32 scalars), before weighting.

        Args:
            y: labels ``[B]``.
            y_pred: ``{"net1": outputs, "net2": outputs}`` (see ``call``).

        Returns:
            dict with "loss" (the weighted total) and every logged component.
        """
        labels = _labels(y)
        out1 = _float32_outputs(y_pred["net1"])
        out2 = _float32_outputs(y_pred["net2"])
        terms = {}
        for k, out, local in ((1, out1, self.with_local[0]), (2, out2, self.with_local[1])):
            for key, value in self._objective(out, labels, local).items():
                terms[f"net{k}_{key}"] = value
        terms["kl_loss"] = classification_mutual_loss(out1["logits"], out2["logits"])
        terms["metric_mutual_loss"] = metric_mutual_loss(
            self._global_distances(out1["global"]),
            self._global_distances(out2["global"]),
        )
        terms["loss"] = (
            terms["net1_loss"]
            + terms["net2_loss"]
            + self.kl_weight * terms["kl_loss"]
            + self.metric_weight * terms["metric_mutual_loss"]
        )
        return terms

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The mutual-learning loss of a batch (``sample_weight`` is not used).

        Args:
            x: images (unused).
            y: labels ``[B]``.
            y_pred: ``{"net1": ..., "net2": ...}``.
            sample_weight: unused.
            training: unused.

        Returns:
            Scalar float32 loss (divided by the number of replicas under a
            distribution strategy), plus any regularisation losses.
        """
        terms = self.mutual_terms(y, y_pred)
        for tracker in self.component_trackers:
            tracker.update_state(terms[tracker.name])
        total = terms["loss"]
        if self.losses:
            total = total + ops.cast(ops.sum([ops.sum(v) for v in self.losses]), "float32")
        return _scale_for_replicas(total)

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        config["network1"] = keras.saving.serialize_keras_object(self.network1)
        config["network2"] = keras.saving.serialize_keras_object(self.network2)
        config["loss_settings"] = self.loss_settings.to_dict()
        config.update(kl_weight=self.kl_weight, metric_weight=self.metric_weight)
        return config

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)  # deserialization consumes nested dicts
        for key in ("network1", "network2"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(loss_settings=_settings_from_config(config), **config)
