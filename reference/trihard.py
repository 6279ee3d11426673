"""TriHard reference loss of AlignedReID with analytic gradients.

For every anchor a of a batch, the hardest positive p (same label, the anchor
itself included; largest distance) and the hardest negative n (different
label; smallest distance) are mined by the GLOBAL Euclidean distance, ties
going to the lowest index. With d the global distance and l the local
distance (aligned shortest path, or the unaligned sum of d_ii):

    global_loss = mean_a relu(d(a, p) - d(a, n) + global_margin)
    local_loss  = mean_a relu(l(a, p) - l(a, n) + local_margin)

where the mean runs over anchors that have at least one negative (the loss
is 0 when none has). With ``local_mining="local"`` the local loss mines its
own p and n by local distance instead. Gradients are analytic: the
Euclidean distance has gradient 0 at zero distance, relu has gradient 0 at
exactly 0, and the local distance gradient is
:func:`reference.local_distance_grad`'s (indicator of the
optimal path, tie rule (i - 1, j)).

Distances here are computed by direct differences (not the
||a||^2 + ||b||^2 - 2ab expansion), in float32 for float32 input and in
float64 for float64 input.
"""

import numpy as np

from reid_common import normalizes_global, normalizes_local
from reference import _local_kernels as _k
from reference._validate import as_float_array, as_int_array, check_length
from reference.aligned import _PARALLEL_MIN_WORK, pair_gradients

__all__ = ["trihard_reference"]

_NORM_EPS = 1e-12
_LOCAL_MINING = ("global", "local")


def _normalize(x):
    """x / sqrt(max(sum(x^2, axis=-1), 1e-12)); returns (normalised, norm)."""
    norm = np.sqrt(np.maximum(np.sum(x * x, axis=-1, keepdims=True), _NORM_EPS))
    return x / norm, norm


def _normalize_backward(grad, y, norm, x):
    """Chain ``grad`` (w.r.t. y = x / norm) back to x.

    Where sum(x^2) > 1e-12: dx = (grad - y * <y, grad>) / norm; elsewhere the
    norm is the constant 1e-6 and dx = grad / norm.
    """
    active = np.sum(x * x, axis=-1, keepdims=True) > _NORM_EPS
    proj = np.sum(y * grad, axis=-1, keepdims=True)
    return np.where(active, grad - y * proj, grad) / norm


def _global_distances(f):
    """[N, N] Euclidean distances by direct differences, one anchor at a time."""
    n = f.shape[0]
    out = np.empty((n, n), dtype=f.dtype)
    for a in range(n):
        diff = f - f[a]
        out[a] = np.sqrt(np.sum(diff * diff, axis=1))
    return out


def _local_distances(L, ia, ib, aligned):
    """Local distances of pairs (L[ia[k]], L[ib[k]]) -> [K]."""
    out = np.empty(ia.shape[0], dtype=L.dtype)
    ia = np.ascontiguousarray(ia, dtype=np.int64)
    ib = np.ascontiguousarray(ib, dtype=np.int64)
    parallel = ia.shape[0] * L.shape[1] * L.shape[1] * L.shape[2] >= _PARALLEL_MIN_WORK
    if aligned:
        _k.pair_distances(L, ia, L, ib, out, parallel)
    else:
        _k.unaligned_pair_distances(L, ia, L, ib, out, parallel)
    return out


def _mine(dist, same):
    """Hardest positive/negative per row; ties -> lowest index.

    Returns (positive [N], negative [N] with -1 where there is no negative,
    valid [N] bool).
    """
    pos = np.argmax(np.where(same, dist, -np.inf), axis=1)
    valid = ~np.all(same, axis=1)
    neg = np.argmin(np.where(same, np.inf, dist), axis=1)
    neg = np.where(valid, neg, -1)
    return pos, neg, valid


def _hinge_weights(ap, an, margin, valid):
    """Loss mean relu(ap - an + margin) over valid rows and the row weights.

    The weight of a row is 1 / #valid where the hinge is strictly positive,
    else 0 (relu gradient 0 at exactly 0).
    """
    count = int(valid.sum())
    if count == 0:
        return 0.0, np.zeros(ap.shape[0])
    hinge = np.where(valid, ap - np.where(valid, an, 0) + margin, 0)
    active = valid & (hinge > 0)
    loss = float(np.sum(np.maximum(hinge[valid], 0), dtype=np.float64) / count)
    return loss, active / count


def _global_grad(f, anchors, others, dist, weights):
    """Gradient of sum_k weights[k] * ||f[anchors[k]] - f[others[k]]|| w.r.t. f."""
    grad = np.zeros_like(f)
    diff = f[anchors] - f[others]
    safe = np.where(dist > 0, dist, 1)
    coef = np.where(dist > 0, weights / safe, 0).astype(f.dtype)
    g = coef[:, None] * diff
    np.add.at(grad, anchors, g)
    np.add.at(grad, others, -g)
    return grad


def trihard_reference(
    global_features,
    local_features,
    labels,
    global_margin=0.5,
    local_margin=0.5,
    normalize_features=False,
    local_mining="global",
    aligned=True,
):
    """TriHard global and local losses of a batch, with their gradients.

    Args:
        global_features: [N, C] global features.
        local_features: [N, H, c] local features, or None (no local loss).
        labels: [N] integer identity labels.
        global_margin: margin m_g of the global triplet loss.
        local_margin: margin m_l of the local triplet loss.
        normalize_features: divide each global row, and each local part
            along c, by sqrt(max(sum(x^2), 1e-12)) first; gradients flow
            through the normalisation. ``True``/``"both"``, ``False``/
            ``"none"``, or ``"local"`` (the local parts only).
        local_mining: "global" (the local loss uses the pairs mined by the
            global distance) or "local" (it mines its own hardest positive
            and negative by local distance).
        aligned: local distance = aligned shortest path (True) or the
            unaligned sum of d_ii (False, GL-Baseline).

    Returns:
        dict with
        ``global_loss``, ``local_loss`` (float; local_loss is 0.0 without
        local features), ``grad_global`` [N, C] = d global_loss /
        d global_features, ``grad_local`` [N, H, c] = d local_loss /
        d local_features (None without local features), ``positive``,
        ``negative`` [N] int (globally mined indices; negative is -1 for
        anchors without a negative), ``dist_ap``, ``dist_an`` [N] (global
        distances of those pairs; dist_an is NaN without a negative),
        ``local_ap``, ``local_an`` [N] (local distances of the pairs the
        local loss uses; None without local features), and
        ``local_positive``, ``local_negative`` [N] int (those pairs' indices;
        equal to positive/negative when local_mining="global").

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> out = trihard_reference(rng.normal(size=(8, 16)),
        ...                         rng.normal(size=(8, 4, 6)),
        ...                         [0, 0, 1, 1, 2, 2, 3, 3])
        >>> out["grad_global"].shape, out["grad_local"].shape
        ((8, 16), (8, 4, 6))
    """
    g = as_float_array("global_features", global_features, ndim=2)
    labels = as_int_array("labels", labels, ndim=1)
    check_length("labels", labels, g.shape[0], "rows of global_features")
    L = None
    if local_features is not None:
        L = as_float_array("local_features", local_features, ndim=3)
        check_length("local_features", L, g.shape[0], "rows of global_features")
    if local_mining not in _LOCAL_MINING:
        raise ValueError(
            f"local_mining: expected one of {_LOCAL_MINING}, got {local_mining!r}"
        )
    for name, value in (("global_margin", global_margin), ("local_margin", local_margin)):
        if not np.isfinite(float(value)):
            raise ValueError(f"{name}: expected a finite number, got {value!r}")
    dtype = np.float64 if (g.dtype == np.float64 or (L is not None and L.dtype == np.float64)) else np.float32
    g = g.astype(dtype, copy=False)
    n = g.shape[0]
    idx = np.arange(n)
    same = labels[:, None] == labels[None, :]

    norm_global, norm_local = normalizes_global(normalize_features), normalizes_local(
        normalize_features)
    # global branch
    if norm_global:
        gf, gnorm = _normalize(g)
    else:
        gf = g
    dist = _global_distances(gf)
    pos, neg, valid = _mine(dist, same)
    dist_ap = dist[idx, pos]
    dist_an = np.where(valid, dist[idx, np.maximum(neg, 0)], np.nan).astype(dtype)
    global_loss, w = _hinge_weights(dist_ap, dist_an, global_margin, valid)
    anchors = np.concatenate([idx, idx])
    others = np.concatenate([pos, np.maximum(neg, 0)])
    weights = np.concatenate([w, -w])
    pair_dist = np.concatenate([dist_ap, np.where(valid, dist_an, 0)])
    grad_global = _global_grad(gf, anchors, others, pair_dist, weights)
    if norm_global:
        grad_global = _normalize_backward(grad_global, gf, gnorm, g)

    result = {
        "global_loss": global_loss,
        "grad_global": grad_global.astype(dtype, copy=False),
        "positive": pos.astype(np.int64),
        "negative": neg.astype(np.int64),
        "dist_ap": dist_ap,
        "dist_an": dist_an,
        "local_loss": 0.0,
        "grad_local": None,
        "local_ap": None,
        "local_an": None,
        "local_positive": pos.astype(np.int64),
        "local_negative": neg.astype(np.int64),
    }
    if L is None:
        return result

    # local branch
    L = L.astype(dtype, copy=False)
    if norm_local:
        lf, lnorm = _normalize(L)
    else:
        lf = L
    lf = np.ascontiguousarray(lf)
    if local_mining == "local":
        ia, ib = np.meshgrid(idx, idx, indexing="ij")
        ldist = _local_distances(lf, ia.ravel(), ib.ravel(), aligned).reshape(n, n)
        lpos, lneg, _ = _mine(ldist, same)
        local_ap = ldist[idx, lpos]
        local_an = np.where(valid, ldist[idx, np.maximum(lneg, 0)], np.nan).astype(dtype)
    else:
        lpos, lneg = pos, neg
        local_ap = _local_distances(lf, idx, lpos, aligned)
        local_an = np.where(
            valid, _local_distances(lf, idx, np.maximum(lneg, 0), aligned), np.nan
        ).astype(dtype)
    local_loss, lw = _hinge_weights(local_ap, local_an, local_margin, valid)
    ia = np.concatenate([idx, idx])
    ib = np.concatenate([lpos, np.maximum(lneg, 0)])
    lweights = np.concatenate([lw, -lw]).astype(dtype)
    dA, dB = pair_gradients(
        np.ascontiguousarray(lf[ia]), np.ascontiguousarray(lf[ib]), lweights, aligned
    )
    grad_local = np.zeros_like(lf)
    np.add.at(grad_local, ia, dA)
    np.add.at(grad_local, ib, dB)
    if norm_local:
        grad_local = _normalize_backward(grad_local, lf, lnorm, L)
    result.update(
        local_loss=local_loss,
        grad_local=grad_local.astype(dtype, copy=False),
        local_ap=local_ap,
        local_an=local_an,
        local_positive=lpos.astype(np.int64),
        local_negative=np.where(valid, lneg, -1).astype(np.int64),
    )
    return result
