"""Tests of reid_tf.losses against the Numba reference and NumPy formulas."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

import reference
from reid_tf import distances, losses

RNG = np.random.default_rng(7)

OPTIONS = [
    dict(normalize_features=n, local_mining=m, aligned=a)
    for n, m, a in itertools.product((False, True, "local"), ("global", "local"), (True, False))
]


def _batch(ids=5, per_id=3, dim=12, parts=6, c=8, duplicate=False, dtype="float64", rng=RNG):
    labels = np.repeat(np.arange(ids), per_id)
    g = rng.normal(size=(labels.size, dim))
    loc = rng.normal(size=(labels.size, parts, c))
    if duplicate:
        g[1::per_id] = g[0::per_id]
        loc[1::per_id] = loc[0::per_id]
    order = rng.permutation(labels.size)
    return g[order].astype(dtype), loc[order].astype(dtype), labels[order]


def _tf_losses(g, loc, labels, jit=False, **options):
    def fn(gt, lt):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([gt, lt])
            out = losses.trihard_losses(gt, lt, labels, **options)
        return (out["global"], out["local"], tape.gradient(out["global"], gt),
                tape.gradient(out["local"], lt))

    if jit:
        fn = tf.function(fn, jit_compile=True)
    return [t.numpy() for t in fn(tf.constant(g), tf.constant(loc))]


def _assert_close(actual, expected, rel):
    scale = max(np.max(np.abs(expected)), np.max(np.abs(actual)), 1e-30)
    assert np.max(np.abs(np.asarray(actual) - expected)) <= rel * scale


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(map(str, o.values())))
@pytest.mark.parametrize("dtype,rel", [("float64", 1e-10), ("float32", 1e-4)])
def test_trihard_matches_reference(options, dtype, rel):
    g, loc, labels = _batch(dtype=dtype)
    gl, ll, gg, gloc = _tf_losses(g, loc, labels, **options)
    ref = reference.trihard_reference(g, loc, labels, **options)
    assert gl.dtype == np.dtype(dtype)
    _assert_close(gl, ref["global_loss"], rel)
    _assert_close(ll, ref["local_loss"], rel)
    _assert_close(gg, ref["grad_global"], rel)
    _assert_close(gloc, ref["grad_local"], rel)


@pytest.mark.parametrize("per_id", [2, 3])
@pytest.mark.parametrize("options", [OPTIONS[0], OPTIONS[6]])
def test_trihard_duplicated_samples_tie_to_lowest_index(per_id, options, monkeypatch):
    # Exact duplicates create exact ties in mining (positives for K=2,
    # negatives for K=3); the lowest index must win, as in the reference.
    # A matrix product does not round duplicated rows identically at every
    # position; to make that visible on any machine, every entry of the
    # distance matrices used for mining gets a random relative error of
    # up to 1e-9 here. The losses must not depend on it.
    exact = distances.pairwise_distance
    noise_rng = np.random.default_rng(3)

    def noisy(a, b, squared=False):
        d = exact(a, b, squared)
        u = noise_rng.uniform(-1e-9, 1e-9, size=tuple(d.shape))
        return d * (1 + tf.constant(u, dtype=d.dtype))

    monkeypatch.setattr(distances, "pairwise_distance", noisy)
    for dtype in ("float64", "float32"):
        g, loc, labels = _batch(ids=6, per_id=per_id, duplicate=True, dtype=dtype)
        gl, ll, gg, gloc = _tf_losses(g, loc, labels, **options)
        ref = reference.trihard_reference(g, loc, labels, **options)
        _assert_close(gg, ref["grad_global"], 1e-4)
        _assert_close(gloc, ref["grad_local"], 1e-4)


def test_trihard_without_negatives_and_without_local():
    g, loc, _ = _batch(ids=1, per_id=4)
    out = losses.trihard_losses(g, loc, np.zeros(4, "int32"))
    assert float(out["global"]) == 0.0 and float(out["local"]) == 0.0
    g, loc, labels = _batch()
    out = losses.trihard_losses(g, None, labels, global_margin=0.3)
    ref = reference.trihard_reference(g, None, labels, global_margin=0.3)
    assert float(out["local"]) == 0.0
    _assert_close(float(out["global"]), ref["global_loss"], 1e-12)


def test_trihard_anchor_is_own_positive_has_zero_gradient_there():
    # two singletons (labels 0, 1) and two pairs: the singleton's positive is
    # itself, distance exactly 0, gradient exactly 0 on that pair
    g, loc, _ = _batch(ids=6, per_id=1)
    labels = np.array([0, 1, 2, 2, 3, 3])
    gl, ll, gg, gloc = _tf_losses(g, loc, labels)
    ref = reference.trihard_reference(g, loc, labels)
    assert np.all(np.isfinite(gg)) and np.all(np.isfinite(gloc))
    _assert_close(gg, ref["grad_global"], 1e-10)
    _assert_close(gloc, ref["grad_local"], 1e-10)


def test_hard_example_mining_lowest_index_rule():
    # brute-force oracle on a distance matrix with many exact ties
    d = RNG.integers(0, 3, size=(9, 9)).astype("float32")
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    pos, neg, ok = (t.numpy() for t in losses.hard_example_mining(d, labels))
    for a in range(9):
        same = [j for j in range(9) if labels[j] == labels[a]]
        other = [j for j in range(9) if labels[j] != labels[a]]
        assert pos[a] == min(j for j in same if d[a, j] == max(d[a, k] for k in same))
        assert neg[a] == min(j for j in other if d[a, j] == min(d[a, k] for k in other))
        assert ok[a]


def test_duplicate_representatives():
    x = RNG.normal(size=(7, 5))
    x[4] = x[1]
    x[6] = x[1]
    x[5] = x[2]
    x[3] = x[0][::-1]  # same entries, other order: not a duplicate
    assert losses.duplicate_representatives(x).numpy().tolist() == [0, 1, 2, 3, 1, 2, 1]


@pytest.mark.parametrize("options", [OPTIONS[0], OPTIONS[3], OPTIONS[6]])
def test_trihard_xla_equals_eager(options):
    g, loc, labels = _batch(dtype="float32")
    eager = _tf_losses(g, loc, labels, **options)
    xla = _tf_losses(g, loc, labels, jit=True, **options)
    for e, x in zip(eager, xla):
        _assert_close(x, e, 1e-5)


def test_trihard_mixed_precision_inputs_compute_in_float32():
    g, loc, labels = _batch(dtype="float32")
    out16 = losses.trihard_losses(g.astype("float16"), loc.astype("float16"), labels)
    assert out16["global"].dtype == tf.float32 and out16["local"].dtype == tf.float32
    ref = reference.trihard_reference(g.astype("float16").astype("float32"),
                                      loc.astype("float16").astype("float32"), labels)
    _assert_close(float(out16["global"]), ref["global_loss"], 1e-4)


def test_trihard_rejects_unknown_mining():
    g, loc, labels = _batch()
    with pytest.raises(ValueError, match="local_mining"):
        losses.trihard_losses(g, loc, labels, local_mining="both")


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_id_loss_matches_numpy(smoothing):
    logits = RNG.normal(size=(6, 5)) * 3
    labels = RNG.integers(0, 5, size=6)
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    target = np.eye(5)[labels] * (1 - smoothing) + smoothing / 5
    expected = -np.mean(np.sum(target * logp, axis=1))
    np.testing.assert_allclose(float(losses.id_loss(labels, logits, smoothing)), expected,
                               rtol=1e-12)
    assert losses.id_loss(labels, logits.astype("float16")).dtype == tf.float32


def test_metric_mutual_loss_stop_gradient():
    m1 = RNG.uniform(0, 2, size=(6, 6))
    m2 = RNG.uniform(0, 2, size=(6, 6))
    t1, t2 = tf.constant(m1), tf.constant(m2)
    with tf.GradientTape() as tape:
        tape.watch([t1, t2])
        loss = losses.metric_mutual_loss(t1, t2)
    g1, g2 = tape.gradient(loss, [t1, t2])
    n2 = m1.size
    # value: both squared terms are equal, so the loss is 2 mean((M1 - M2)^2)
    np.testing.assert_allclose(float(loss), 2 * np.mean((m1 - m2) ** 2), rtol=1e-12)
    # gradient: only the un-stopped occurrence -> 2 (M1 - M2) / N^2, half the
    # derivative of the value (4 (M1 - M2) / N^2) that no stop-gradient would give
    np.testing.assert_allclose(g1.numpy(), 2 * (m1 - m2) / n2, rtol=1e-12)
    np.testing.assert_allclose(g2.numpy(), 2 * (m2 - m1) / n2, rtol=1e-12)
    assert not np.allclose(g1.numpy(), 4 * (m1 - m2) / n2)


def test_classification_mutual_loss_value_and_gradient():
    z1 = RNG.normal(size=(5, 7)) * 2
    z2 = RNG.normal(size=(5, 7)) * 2
    p1 = np.exp(z1) / np.exp(z1).sum(1, keepdims=True)
    p2 = np.exp(z2) / np.exp(z2).sum(1, keepdims=True)
    kl21 = np.sum(p2 * np.log(p2 / p1), axis=1)
    kl12 = np.sum(p1 * np.log(p1 / p2), axis=1)
    t1, t2 = tf.constant(z1), tf.constant(z2)
    with tf.GradientTape() as tape:
        tape.watch([t1, t2])
        loss = losses.classification_mutual_loss(t1, t2)
    g1, g2 = tape.gradient(loss, [t1, t2])
    np.testing.assert_allclose(float(loss), np.mean(kl21 + kl12), rtol=1e-12)
    np.testing.assert_allclose(g1.numpy(), (p1 - p2) / 5, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(g2.numpy(), (p2 - p1) / 5, rtol=1e-10, atol=1e-15)


def test_mutual_losses_xla_equals_eager():
    m1, m2 = RNG.uniform(size=(2, 8, 8)).astype("float32")
    z1, z2 = RNG.normal(size=(2, 8, 11)).astype("float32")

    def both(a, b, c, d):
        return losses.metric_mutual_loss(a, b), losses.classification_mutual_loss(c, d)

    eager = both(m1, m2, z1, z2)
    xla = tf.function(both, jit_compile=True)(m1, m2, z1, z2)
    for e, x in zip(eager, xla):
        np.testing.assert_allclose(x.numpy(), e.numpy(), rtol=1e-5)
