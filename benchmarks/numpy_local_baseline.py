"""Plain blocked NumPy implementation of the aligned local distance (Eq. 1-2).

The baseline that benchmarks/bench_local_distance.py measures the Numba
reference against. Same formulas: squared part distances from
||a||^2 + ||b||^2 - 2 a.b (clamped at 0), d = (e^x - 1) / (e^x + 1) written
as 1 - 2 / (e^x + 1) so that large x gives 1 instead of inf / inf, and the
right/down shortest path computed with NumPy operations over a whole block
of pairs at once.
"""

import numpy as np


def _part_distance(sq):
    """d = (e^x - 1) / (e^x + 1) with x = sqrt(max(sq, 0))."""
    with np.errstate(over="ignore"):
        e = np.exp(np.sqrt(np.maximum(sq, 0)))
    return 1 - 2 / (e + 1)


def shortest_paths(d):
    """Shortest right/down path lengths of a batch of grids d [..., Hf, Hg]."""
    hf, hg = d.shape[-2:]
    dp = np.cumsum(d[..., 0, :], axis=-1)
    for i in range(1, hf):
        dp[..., 0] += d[..., i, 0]
        for j in range(1, hg):
            dp[..., j] = np.minimum(dp[..., j], dp[..., j - 1]) + d[..., i, j]
    return dp[..., hg - 1]


def local_distance_matrix(X, Y, block_queries=64, block_gallery=1024):
    """[M, N] aligned local distances of X [M, Hf, c] against Y [N, Hg, c]."""
    m, hf, c = X.shape
    n, hg, _ = Y.shape
    out = np.empty((m, n), dtype=X.dtype)
    xn = np.einsum("qic,qic->qi", X, X)
    yn = np.einsum("gjc,gjc->gj", Y, Y)
    for q0 in range(0, m, block_queries):
        xb = X[q0:q0 + block_queries]
        mq = xb.shape[0]
        for g0 in range(0, n, block_gallery):
            yb = Y[g0:g0 + block_gallery]
            ng = yb.shape[0]
            gram = (xb.reshape(mq * hf, c) @ yb.reshape(ng * hg, c).T).reshape(mq, hf, ng, hg)
            sq = xn[q0:q0 + mq, :, None, None] + yn[None, None, g0:g0 + ng] - 2 * gram
            d = _part_distance(sq).transpose(0, 2, 1, 3)  # [mq, ng, Hf, Hg]
            out[q0:q0 + mq, g0:g0 + ng] = shortest_paths(d)
    return out


def local_distance_shortlist(X, Y, shortlist, block_queries=256):
    """[M, K] distances of X[q] against Y[shortlist[q, k]]."""
    m = X.shape[0]
    out = np.empty(shortlist.shape, dtype=X.dtype)
    for q0 in range(0, m, block_queries):
        xb = X[q0:q0 + block_queries]
        yb = Y[shortlist[q0:q0 + block_queries]]  # [mq, K, Hg, c]
        gram = np.einsum("qic,qkjc->qkij", xb, yb)
        sq = (
            np.einsum("qic,qic->qi", xb, xb)[:, None, :, None]
            + np.einsum("qkjc,qkjc->qkj", yb, yb)[:, :, None, :]
            - 2 * gram
        )
        out[q0:q0 + block_queries] = shortest_paths(_part_distance(sq))
    return out
