"""Plain NumPy implementations used as benchmark baselines.

These are the straightforward dense formulations: one full argsort of the
gallery per query for the metrics, and N x N arrays for the re-ranking. They
compute the same formulas as ``reference.metrics`` and ``reference.rerank``
(with NumPy's default sort, so ties may be ordered differently).
"""

import numpy as np


def evaluate_market_numpy(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50, queries=None):
    """Market-1501 CMC / mAP / mINP with a full argsort per query.

    Args:
        distmat: [Q, G] distances.
        q_pids, g_pids, q_camids, g_camids: labels.
        max_rank: CMC length.
        queries: optional subset of query indices to evaluate.

    Returns:
        dict with ``cmc`` [max_rank], ``mAP``, ``mINP``, ``num_valid_queries``.

    Example:
        >>> import numpy as np
        >>> r = evaluate_market_numpy(np.array([[0.1, 0.5]]), np.array([1]),
        ...                           np.array([1, 2]), np.array([0]), np.array([1, 1]), 2)
        >>> r["mAP"]
        1.0
    """
    rows = range(distmat.shape[0]) if queries is None else queries
    cmcs, aps, inps = [], [], []
    for i in rows:
        order = np.argsort(distmat[i])
        keep = (g_pids[order] != -1) & ~(
            (g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i])
        )
        match = (g_pids[order][keep] == q_pids[i]).astype(np.int64)
        if not match.any():
            continue
        cmc = match.cumsum()
        cmc[cmc > 1] = 1
        curve = np.ones(max_rank)
        curve[: min(max_rank, cmc.size)] = cmc[:max_rank]
        cmcs.append(curve)
        positions = np.flatnonzero(match)
        aps.append(np.mean(np.arange(1, positions.size + 1) / (positions + 1.0)))
        inps.append(positions.size / (positions[-1] + 1.0))
    return {
        "cmc": np.mean(cmcs, axis=0),
        "mAP": float(np.mean(aps)),
        "mINP": float(np.mean(inps)),
        "num_valid_queries": len(cmcs),
    }


def re_rank_numpy(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3):
    """Dense k-reciprocal re-ranking with N x N arrays (N = Q + G).

    Returns:
        [Q, G] float32 re-ranked distances.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(12, 4))
        >>> d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
        >>> re_rank_numpy(d[:2, 2:], d[:2, :2], d[2:, 2:], k1=4, k2=2).shape
        (2, 10)
    """
    nq = q_g.shape[0]
    dist = np.block([[q_q, q_g], [q_g.T, g_g]])
    dist = np.power(dist, 2).astype(np.float32)
    dist = np.transpose(dist / np.max(dist, axis=0))
    n = dist.shape[0]
    rank = np.argsort(dist, axis=1).astype(np.int32)
    v = np.zeros((n, n), dtype=np.float32)
    half = int(np.round(k1 / 2))
    for i in range(n):
        forward = rank[i, : k1 + 1]
        recip = forward[np.any(rank[forward, : k1 + 1] == i, axis=1)]
        expansion = recip
        for cand in recip:
            c_forward = rank[cand, : half + 1]
            c_recip = c_forward[np.any(rank[c_forward, : half + 1] == cand, axis=1)]
            if np.intersect1d(c_recip, recip).size > 2.0 / 3.0 * c_recip.size:
                expansion = np.append(expansion, c_recip)
        expansion = np.unique(expansion)
        w = np.exp(-dist[i, expansion])
        v[i, expansion] = w / np.sum(w)
    dist_q = dist[:nq]
    if k2 != 1:
        v_qe = np.zeros_like(v)
        for i in range(n):
            v_qe[i] = np.mean(v[rank[i, :k2]], axis=0)
        v = v_qe
        del v_qe
    del rank
    inv = [np.flatnonzero(v[:, col]) for col in range(n)]
    jaccard = np.zeros((nq, n), dtype=np.float32)
    for i in range(nq):
        shared = np.zeros(n, dtype=np.float32)
        for col in np.flatnonzero(v[i]):
            rows = inv[col]
            shared[rows] += np.minimum(v[i, col], v[rows, col])
        jaccard[i] = 1 - shared / (2.0 - shared)
    final = jaccard * (1 - lambda_value) + dist_q * lambda_value
    return final[:, nq:]
