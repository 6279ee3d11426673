"""Training models: loss wiring, fit(), logs, serialization, mutual learning."""

import numpy as np
import pytest
import tensorflow as tf

import keras

from reid_tf.distances import pairwise_distance
from reid_tf.losses import id_loss, trihard_losses
from reid_tf.model import build_model
from reid_tf.training import AlignedReIDModel, MutualAlignedReID

SHAPE = (64, 32, 3)
NUM_CLASSES = 8


def _colour_batches(num_batches, P=4, K=4, seed=0):
    """Images whose colour depends on the label (a learnable problem), P x K batches."""
    rng = np.random.default_rng(seed)
    colours = rng.uniform(0.0, 1.0, size=(NUM_CLASSES, 3))
    labels = np.concatenate(
        [np.repeat(rng.choice(NUM_CLASSES, P, replace=False), K) for _ in range(num_batches)]
    ).astype("int32")
    noise = rng.normal(0.0, 0.08, size=(len(labels), *SHAPE))
    images = np.clip(colours[labels][:, None, None, :] + noise, 0.0, 1.0).astype("float32")
    return images, labels


def _dataset(images, labels, batch):
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch)


# ---- independent float64 oracle of the AlignedReID objective --------------


def _np_local_distance(x, y, aligned):
    d = np.tanh(np.linalg.norm(x[:, None, :] - y[None, :, :], axis=-1) / 2.0)
    if not aligned:
        return float(np.trace(d))
    s = np.zeros_like(d)
    for i in range(d.shape[0]):
        for j in range(d.shape[1]):
            if i == 0 and j == 0:
                best = 0.0
            elif i == 0:
                best = s[i, j - 1]
            elif j == 0:
                best = s[i - 1, j]
            else:
                best = min(s[i - 1, j], s[i, j - 1])
            s[i, j] = best + d[i, j]
    return float(s[-1, -1])


def _np_objective(out, labels, margin=0.5, aligned=True):
    g = out["global"].astype(np.float64)
    n = len(labels)
    dist = np.sqrt(np.maximum(((g[:, None, :] - g[None, :, :]) ** 2).sum(-1), 0.0))
    glob, loc = [], []
    for a in range(n):
        pos = labels == labels[a]
        if pos.all():
            continue
        p = int(np.argmax(np.where(pos, dist[a], -np.inf)))
        q = int(np.argmin(np.where(~pos, dist[a], np.inf)))
        glob.append(max(dist[a, p] - dist[a, q] + margin, 0.0))
        if "local" in out:
            loc_feat = out["local"].astype(np.float64)
            lp = _np_local_distance(loc_feat[a], loc_feat[p], aligned)
            ln = _np_local_distance(loc_feat[a], loc_feat[q], aligned)
            loc.append(max(lp - ln + margin, 0.0))
    logits = out["logits"].astype(np.float64)
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    terms = {"id_loss": -logp[np.arange(n), labels].mean(), "global_loss": np.mean(glob)}
    if "local" in out:
        terms["local_loss"] = np.mean(loc)
    terms["id_accuracy"] = float((logits.argmax(1) == labels).mean())
    return terms


@pytest.mark.parametrize(
    "with_local, aligned", [(True, True), (True, False), (False, True)]
)
def test_loss_matches_numpy_oracle(with_local, aligned):
    keras.utils.set_random_seed(0)
    net = build_model("tiny", NUM_CLASSES, SHAPE, local_channels=8, with_local=with_local)
    model = AlignedReIDModel(
        net, aligned=aligned, id_weight=0.7, global_weight=1.3, local_weight=2.0
    )
    _, labels = _colour_batches(1, P=4, K=2, seed=1)
    images = np.random.default_rng(1).uniform(size=(len(labels), *SHAPE)).astype("float32")
    y_pred = model(images, training=False)
    loss = float(model.compute_loss(images, labels, y_pred))
    expected = _np_objective({k: np.asarray(v) for k, v in y_pred.items()}, labels, aligned=aligned)
    total = 0.7 * expected["id_loss"] + 1.3 * expected["global_loss"]
    if with_local:
        total += 2.0 * expected["local_loss"]
    assert expected["global_loss"] > 0
    np.testing.assert_allclose(loss, total, rtol=1e-4, atol=1e-5)
    logged = {t.name: float(t.result()) for t in model.component_trackers}
    assert set(logged) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(logged[key], value, rtol=1e-4, atol=1e-5)


def test_fit_lowers_the_loss_and_logs_components():
    """fit() in a (one-replica) distribution strategy scope, XLA-compiled."""
    images, labels = _colour_batches(4, seed=0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = AlignedReIDModel(build_model("tiny", NUM_CLASSES, SHAPE))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    history = model.fit(_dataset(images, labels, 16), epochs=3, verbose=0).history
    assert set(history) == {"loss", "id_loss", "global_loss", "local_loss", "id_accuracy"}
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["id_accuracy"][-1] > history["id_accuracy"][0]
    # the logged total is the sum of the (unit-weighted) components
    parts = sum(history[k][-1] for k in ("id_loss", "global_loss", "local_loss"))
    np.testing.assert_allclose(history["loss"][-1], parts, rtol=1e-4)


def test_baseline_logs_no_local_loss():
    images, labels = _colour_batches(1, seed=2)
    model = AlignedReIDModel(build_model("tiny", NUM_CLASSES, SHAPE, with_local=False))
    model.compile(optimizer="sgd", run_eagerly=True)
    logs = model.train_on_batch(images, labels, return_dict=True)
    assert set(logs) == {"loss", "id_loss", "global_loss", "id_accuracy"}
    scores = model.evaluate(images, labels, batch_size=16, verbose=0, return_dict=True)
    assert set(scores) == set(logs)
    np.testing.assert_allclose(scores["loss"], scores["id_loss"] + scores["global_loss"], rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"local_mining": "both"}, "local_mining"),
        ({"global_margin": -1.0}, "global_margin"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
    ],
)
def test_bad_hyper_parameters(kwargs, message):
    net = build_model("tiny", NUM_CLASSES, SHAPE)
    with pytest.raises(ValueError, match=message):
        AlignedReIDModel(net, **kwargs)


def test_config_round_trip():
    net = build_model("tiny", NUM_CLASSES, SHAPE)
    model = AlignedReIDModel(
        net, global_margin=0.3, local_margin=0.2, normalize_features=True,
        local_mining="local", aligned=False, label_smoothing=0.1, id_weight=0.5,
    )
    config = model.get_config()
    clone = AlignedReIDModel.from_config(config)
    assert clone.get_config() == config
    assert clone.local_mining == "local" and clone.aligned is False
    assert len(clone.network.weights) == len(net.weights)


def test_trained_model_saves_and_resumes(tmp_path):
    keras.utils.set_random_seed(1)
    images, labels = _colour_batches(2, seed=3)
    model = AlignedReIDModel(build_model("tiny", NUM_CLASSES, SHAPE), local_margin=0.4)
    # eager: tracing a graph costs more than these few steps
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    model.fit(_dataset(images, labels, 16), epochs=1, verbose=0)
    path = str(tmp_path / "train.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, AlignedReIDModel)
    assert loaded.local_margin == 0.4
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 2
    before = model.predict(images[:4], verbose=0)
    after = loaded.predict(images[:4], verbose=0)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])
    logs = loaded.train_on_batch(images[:16], labels[:16], return_dict=True)
    assert np.isfinite(logs["loss"])


def test_mutual_fit_logs_and_saves(tmp_path):
    keras.utils.set_random_seed(2)
    images, labels = _colour_batches(2, seed=4)
    model = MutualAlignedReID(
        build_model("tiny", NUM_CLASSES, SHAPE),
        build_model("tiny", NUM_CLASSES, SHAPE, with_local=False),
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    history = model.fit(_dataset(images, labels, 16), epochs=1, verbose=0).history
    assert set(history) == {
        "loss", "kl_loss", "metric_mutual_loss",
        "net1_loss", "net1_id_loss", "net1_global_loss", "net1_local_loss", "net1_id_accuracy",
        "net2_loss", "net2_id_loss", "net2_global_loss", "net2_id_accuracy",
    }
    path = str(tmp_path / "mutual.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.kl_weight == 0.01 and loaded.metric_weight == 0.001
    before, after = model.predict(images[:4], verbose=0), loaded.predict(images[:4], verbose=0)
    for net in ("net1", "net2"):
        np.testing.assert_array_equal(after[net]["global"], before[net]["global"])


def test_mutual_rejects_different_class_counts():
    with pytest.raises(ValueError, match="network2"):
        MutualAlignedReID(build_model("tiny", 5, SHAPE), build_model("tiny", 6, SHAPE))


def _own_objective(out, labels):
    tri = trihard_losses(out["global"], out.get("local"), labels)
    total = id_loss(labels, out["logits"]) + tri["global"]
    if "local" in out:
        total = total + tri["local"]
    return total


def _dml_objective(out, peer, labels, kl_weight, metric_weight):
    """Network k's own DML objective with the peer's outputs as constants."""
    logp = tf.nn.log_softmax(out["logits"])
    peer_logp = tf.nn.log_softmax(peer["logits"])
    kl = tf.reduce_mean(tf.reduce_sum(tf.exp(peer_logp) * (peer_logp - logp), axis=1))
    dist = pairwise_distance(out["global"], out["global"])
    peer_dist = pairwise_distance(peer["global"], peer["global"])
    metric = tf.reduce_mean(tf.square(dist - peer_dist))
    return _own_objective(out, labels) + kl_weight * kl + metric_weight * metric


def test_mutual_gradient_is_each_networks_own_dml_gradient():
    keras.utils.set_random_seed(3)
    images, labels = _colour_batches(1, P=4, K=2, seed=5)
    net1 = build_model("tiny", NUM_CLASSES, SHAPE, local_channels=8)
    net2 = build_model("tiny", NUM_CLASSES, SHAPE, with_local=False)
    kl_weight, metric_weight = 0.5, 0.2
    model = MutualAlignedReID(net1, net2, kl_weight=kl_weight, metric_weight=metric_weight)
    x = tf.constant(images)

    with tf.GradientTape() as tape:
        total = model.mutual_terms(labels, model(x, training=False))["loss"]
    variables = net1.trainable_variables + net2.trainable_variables
    grads = tape.gradient(total, variables)
    split = len(net1.trainable_variables)

    outs = {k: {n: tf.constant(v) for n, v in net(x, training=False).items()}
            for k, net in (("net1", net1), ("net2", net2))}
    cases = ((net1, grads[:split], outs["net2"]), (net2, grads[split:], outs["net1"]))
    for net, grad, peer in cases:
        with tf.GradientTape(persistent=True) as tape:
            out = net(x, training=False)
            dml = _dml_objective(out, peer, labels, kl_weight, metric_weight)
            own = _own_objective(out, labels)
        expected = tape.gradient(dml, net.trainable_variables)
        own_grad = tape.gradient(own, net.trainable_variables)
        for g, e in zip(grad, expected):
            np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=2e-4, atol=1e-6)
        # the mutual terms do contribute (the comparison above can fail)
        differences = [
            np.abs(np.asarray(e) - np.asarray(o)).max() for e, o in zip(expected, own_grad)
        ]
        assert max(differences) > 1e-4


def test_mixed_precision_step():
    images, labels = _colour_batches(1, seed=6)
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(4)
        net = build_model("tiny", NUM_CLASSES, SHAPE)
        model = AlignedReIDModel(net)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
        assert net(images[:2])["global"].dtype == tf.bfloat16
        logs = model.train_on_batch(images, labels, return_dict=True)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert all(np.isfinite(v) for v in logs.values())
    assert logs["loss"] > 0
