"""AlignedReID training losses in ``keras.ops``.

* :func:`trihard_losses` -- triplet loss with batch-hard mining (TriHard) on
  the global features, and the same triplets scored with the local distance.
* :func:`id_loss` -- softmax cross-entropy on identity logits.
* :func:`metric_mutual_loss`, :func:`classification_mutual_loss` -- the two
  mutual-learning terms between a pair of networks.

All losses are computed in float32 (inputs in float16/bfloat16 under mixed
precision are cast up); float64 inputs stay float64 so that gradients can be
verified at double precision (``python -m reid_tf.gradcheck``). Semantics are
identical to ``reference.trihard_reference``; see ``docs/losses.md``.
"""

import keras
import numpy as np
from keras import ops

from reid_common import normalizes_global, normalizes_local

from reid_tf import distances

_LOCAL_MINING = ("global", "local")
_NORM_EPS = 1e-12


def _as_loss_float(x):
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) == "float64":
        return x
    return ops.cast(x, "float32")


def _mean(values):
    """Mean of a vector as sum / count, in its own dtype on every backend
    (Keras' JAX and torch ``mean`` accumulate float64 in float32)."""
    return ops.sum(values) / ops.cast(ops.shape(values)[0], values.dtype)


def l2_normalize(x, axis=-1):
    """Divide by the Euclidean norm along ``axis``: ``x / sqrt(max(sum x^2, 1e-12))``.

    Args:
        x: tensor, e.g. ``[N, C]`` or ``[N, H, c]``.
        axis: axis holding the channels.

    Returns:
        Tensor of the shape of ``x``; gradients flow through the norm.

    Example:
        >>> import numpy as np
        >>> [float(v) for v in l2_normalize(np.array([[3.0, 4.0]]))[0]]
        [0.6, 0.8]
    """
    sq = ops.sum(ops.square(x), axis=axis, keepdims=True)
    # max(sq, eps) keeping the dtype on every backend (Keras' torch maximum
    # computes float64 in float32)
    return x / ops.sqrt(ops.where(ops.greater_equal(sq, _NORM_EPS), sq,
                                  ops.full_like(sq, _NORM_EPS)))


def _first_index_where(mask):
    """Lowest column index where ``mask`` is True, per row (``N`` if none)."""
    n = ops.shape(mask)[1]
    idx = ops.arange(n, dtype="int32")[None, :]
    return ops.min(ops.where(mask, idx, n), axis=1)


def duplicate_representatives(features):
    """Index of the first exactly equal row, per row.

    Two row fingerprints (fixed weighted sums, computed by a per-row
    reduction that is bitwise reproducible) find candidate duplicates,
    which are then confirmed by exact comparison.

    Args:
        features: ``[N, D]``.

    Returns:
        ``[N]`` int32: ``rep[i]`` is the lowest ``j`` with
        ``features[j] == features[i]`` (``i`` itself when there is none).

    Example:
        >>> import numpy as np
        >>> x = np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]])
        >>> [int(v) for v in duplicate_representatives(x)]
        [0, 1, 0]
    """
    features = ops.convert_to_tensor(features)
    dim = int(features.shape[1])
    weights = np.random.default_rng(12345).uniform(0.5, 1.5, size=(2, dim))
    weights = ops.convert_to_tensor(weights, dtype=features.dtype)
    h1 = ops.sum(features * weights[0][None, :], axis=1)
    h2 = ops.sum(features * weights[1][None, :], axis=1)
    candidate = ops.logical_and(
        ops.equal(h1[:, None], h1[None, :]), ops.equal(h2[:, None], h2[None, :])
    )
    rep = _first_index_where(candidate)
    exact = ops.all(ops.equal(ops.take(features, rep, axis=0), features), axis=1)
    return ops.where(exact, rep, ops.arange(ops.shape(features)[0], dtype="int32"))


def _canonical_distances(dist, rep):
    """Give exactly duplicated samples bitwise equal rows and columns."""
    return ops.take(ops.take(dist, rep, axis=0), rep, axis=1)


def hard_example_mining(dist, labels):
    """Batch-hard mining with the lowest-index tie rule.

    Positives are the samples with the anchor's label, the anchor itself
    included; the hardest positive has the largest distance, the hardest
    negative the smallest distance to a different label. Among equal
    distances the lowest index wins (implemented explicitly, independent of
    the tie behaviour of ``argmax``). No gradient flows through the mining.

    Args:
        dist: ``[N, N]`` distances (anchor rows).
        labels: ``[N]`` integer identity labels.

    Returns:
        ``(positive [N] int32, negative [N] int32, has_negative [N] bool)``;
        ``negative`` is 0 where ``has_negative`` is False.

    Example:
        >>> import numpy as np
        >>> d = np.array([[0, 1, 2], [1, 0, 2], [2, 2, 0]], "float32")
        >>> p, n, ok = hard_example_mining(d, np.array([0, 0, 1]))
        >>> [int(v) for v in p], [int(v) for v in n]
        ([1, 0, 2], [2, 2, 0])
    """
    dist = ops.stop_gradient(ops.convert_to_tensor(dist))
    labels = ops.convert_to_tensor(labels)
    same = ops.equal(labels[:, None], labels[None, :])
    diff = ops.logical_not(same)
    low = ops.min(dist) - 1
    high = ops.max(dist) + 1
    ap = ops.max(ops.where(same, dist, low), axis=1, keepdims=True)
    an = ops.min(ops.where(diff, dist, high), axis=1, keepdims=True)
    positive = _first_index_where(ops.logical_and(same, ops.equal(dist, ap)))
    negative = _first_index_where(ops.logical_and(diff, ops.equal(dist, an)))
    has_negative = ops.any(diff, axis=1)
    negative = ops.where(has_negative, negative, 0)
    return positive, negative, has_negative


def _masked_mean(values, mask):
    mask = ops.cast(mask, values.dtype)
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1)


def trihard_losses(
    global_features,
    local_features,
    labels,
    global_margin=0.5,
    local_margin=0.5,
    normalize_features=False,
    local_mining="global",
    aligned=True,
):
    """TriHard losses on the global and the local branch (AlignedReID).

    Each anchor is paired with its hardest positive and hardest negative,
    mined by global Euclidean distance (see :func:`hard_example_mining`).
    ``global = mean_a relu(d(a, p) - d(a, n) + global_margin)``;
    ``local = mean_a relu(l(a, p) - l(a, n) + local_margin)`` with ``l`` the
    aligned local distance (``aligned=False``: the unaligned ``sum_i d_ii``)
    of the same pairs. Anchors without any negative are left out of both
    means (the loss is 0 when none is left). The distances of the mined
    pairs are computed from explicit differences, so the gradient at a zero
    distance (an anchor that is its own hardest positive) is exactly 0.

    Args:
        global_features: ``[N, C]``.
        local_features: ``[N, H, c]`` or None (then ``"local"`` is 0).
        labels: ``[N]`` integer identity labels.
        global_margin: margin of the global triplet loss.
        local_margin: margin of the local triplet loss.
        normalize_features: divide each global row, and each local part, by
            its Euclidean norm ``sqrt(max(sum x^2, 1e-12))`` first
            (``True``/``"both"``); ``"local"``: the local parts only;
            ``False``/``"none"``: neither.
        local_mining: ``"global"`` (local loss reuses the globally mined
            triplets) or ``"local"`` (it mines its own hardest positive and
            negative by local distance).
        aligned: use the aligned (shortest-path) local distance.

    Returns:
        ``{"global": scalar, "local": scalar}`` (float32, or float64 for
        float64 features).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> g = rng.normal(size=(8, 16)).astype("float32")
        >>> l = rng.normal(size=(8, 4, 8)).astype("float32")
        >>> out = trihard_losses(g, l, np.repeat(np.arange(4), 2))
        >>> sorted(out)
        ['global', 'local']
    """
    if local_mining not in _LOCAL_MINING:
        raise ValueError(
            f"local_mining: expected one of {_LOCAL_MINING}, got {local_mining!r}"
        )
    g = _as_loss_float(global_features)
    labels = ops.convert_to_tensor(labels)
    if normalizes_global(normalize_features):
        g = l2_normalize(g, axis=-1)
    # Exactly duplicated samples (e.g. an image drawn twice by the sampler)
    # must tie exactly, as in exact arithmetic; the matrix product behind
    # pairwise_distance is not bitwise reproducible across row positions.
    g_rep = duplicate_representatives(ops.stop_gradient(g))
    same_sample = ops.equal(g_rep[:, None], g_rep[None, :])
    dist = _canonical_distances(distances.pairwise_distance(g, g), g_rep)
    positive, negative, has_negative = hard_example_mining(
        ops.where(same_sample, 0, dist), labels
    )
    n = ops.shape(g)[0]
    partners = ops.take(g, ops.concatenate([positive, negative], axis=0), axis=0)
    pair_dist = distances.safe_norm(ops.concatenate([g, g], axis=0) - partners)
    d_ap, d_an = pair_dist[:n], pair_dist[n:]
    global_loss = _masked_mean(ops.relu(d_ap - d_an + global_margin), has_negative)

    if local_features is None:
        return {"global": global_loss, "local": ops.zeros((), dtype=g.dtype)}

    loc = ops.cast(local_features, g.dtype)
    if normalizes_local(normalize_features):
        loc = l2_normalize(loc, axis=-1)
    if local_mining == "local":
        flat = ops.reshape(ops.stop_gradient(loc), (ops.shape(loc)[0], -1))
        local_dist = _canonical_distances(
            distances.local_distance_matrix(loc, loc, aligned=aligned),
            duplicate_representatives(flat),
        )
        positive, negative, _ = hard_example_mining(local_dist, labels)
    anchors = ops.concatenate([loc, loc], axis=0)
    partners = ops.take(loc, ops.concatenate([positive, negative], axis=0), axis=0)
    if aligned:
        pair_dist = distances.aligned_local_distance(anchors, partners)
    else:
        pair_dist = distances.unaligned_local_distance(anchors, partners)
    l_ap, l_an = pair_dist[:n], pair_dist[n:]
    local_loss = _masked_mean(ops.relu(l_ap - l_an + local_margin), has_negative)
    return {"global": global_loss, "local": local_loss}


def id_loss(labels, logits, label_smoothing=0.0):
    """Softmax cross-entropy on identity logits, averaged over the batch.

    With smoothing ``eps`` the target is ``(1 - eps) onehot + eps / K``.

    Args:
        labels: ``[N]`` integer class labels in ``[0, K)``.
        logits: ``[N, K]``.
        label_smoothing: ``eps`` in ``[0, 1)``.

    Returns:
        Scalar loss (float32, or float64 for float64 logits).

    Example:
        >>> import numpy as np
        >>> round(float(id_loss(np.array([0]), np.zeros((1, 4)))), 4)
        1.3863
    """
    logits = _as_loss_float(logits)
    k = logits.shape[-1]
    target = ops.one_hot(ops.convert_to_tensor(labels), k, dtype=logits.dtype)
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / k
    logp = ops.log_softmax(logits, axis=-1)
    return -_mean(ops.sum(target * logp, axis=-1))


def metric_mutual_loss(dist1, dist2):
    """Metric mutual loss between two networks' distance matrices (Eq. 3).

    ``(1 / N^2) sum_ij ([ZG(M1_ij) - M2_ij]^2 + [M1_ij - ZG(M2_ij)]^2)`` with
    ``ZG`` = stop-gradient: each network is pulled towards the other's
    (fixed) distances. The gradient w.r.t. ``dist1`` is
    ``2 (M1 - M2) / N^2`` (from the second term only). The paper weights
    this term by 0.001.

    Args:
        dist1: ``[N, N]`` distance matrix of network 1.
        dist2: ``[N, N]`` distance matrix of network 2.

    Returns:
        Scalar loss.

    Example:
        >>> import numpy as np
        >>> float(metric_mutual_loss(np.ones((2, 2)), np.zeros((2, 2))))
        2.0
    """
    m1 = _as_loss_float(dist1)
    m2 = ops.cast(dist2, m1.dtype)
    first = ops.square(ops.stop_gradient(m1) - m2)
    second = ops.square(m1 - ops.stop_gradient(m2))
    return _mean(ops.reshape(first + second, (-1,)))


def classification_mutual_loss(logits1, logits2):
    """Classification mutual loss: symmetric KL with stop-gradient targets.

    ``mean_batch [KL(ZG(p2) || p1) + KL(ZG(p1) || p2)]`` with
    ``p = softmax(logits)``. The gradient w.r.t. ``logits1`` is
    ``(p1 - p2) / B``. The paper weights this term by 0.01.

    Args:
        logits1: ``[B, K]`` logits of network 1.
        logits2: ``[B, K]`` logits of network 2.

    Returns:
        Scalar loss.

    Example:
        >>> import numpy as np
        >>> float(classification_mutual_loss(np.zeros((2, 3)), np.zeros((2, 3))))
        0.0
    """
    z1 = _as_loss_float(logits1)
    z2 = ops.cast(logits2, z1.dtype)
    logp1 = ops.log_softmax(z1, axis=-1)
    logp2 = ops.log_softmax(z2, axis=-1)
    fixed1, fixed2 = ops.stop_gradient(logp1), ops.stop_gradient(logp2)
    kl_21 = ops.sum(ops.exp(fixed2) * (fixed2 - logp1), axis=-1)
    kl_12 = ops.sum(ops.exp(fixed1) * (fixed1 - logp2), axis=-1)
    return _mean(kl_21 + kl_12)
