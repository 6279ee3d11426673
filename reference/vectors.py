"""NumPy helpers on feature vectors and distance rows: unit-length scaling
and top-k selection. Plain NumPy (no Numba), so the command-line front ends
can import them without compiling anything.
"""

import numpy as np


def global_topk(dist, k):
    """Indices of the ``k`` smallest entries of each row; ties go to the lower index.

    Args:
        dist: distances [M, N].
        k: shortlist length, 1 <= k <= N.

    Returns:
        int64 [M, k], each row in no particular order.

    Example:
        >>> global_topk(np.array([[3.0, 1.0, 2.0, 1.0]]), 2).tolist()
        [[1, 3]]
    """
    m, n = dist.shape
    k = int(min(k, n))
    out = np.empty((m, k), np.int64)
    if k == n:
        out[:] = np.arange(n)
        return out
    block = 1024
    for start in range(0, m, block):
        rows = dist[start:start + block]
        part = np.argpartition(rows, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(rows, part, axis=1).max(axis=1)
        tied = np.count_nonzero(rows <= kth[:, None], axis=1) > k
        for r in np.flatnonzero(tied):
            part[r] = np.argsort(rows[r], kind="stable")[:k]
        out[start:start + len(rows)] = part
    return out


def normalize_rows(x):
    """Scale vectors along the last axis to unit length: x / sqrt(max(sum(x^2), 1e-12)).

    Args:
        x: float array [..., C].

    Returns:
        float32 array of the same shape.

    Example:
        >>> normalize_rows(np.array([[3.0, 4.0]], np.float32))
        array([[0.6, 0.8]], dtype=float32)
    """
    x = np.asarray(x, np.float32)
    norm = np.sqrt(np.maximum(np.sum(np.square(x), axis=-1, keepdims=True), 1e-12))
    return (x / norm).astype(np.float32)
