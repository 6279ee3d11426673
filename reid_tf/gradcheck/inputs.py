"""Random inputs of the gradient checks.

Part tensors ``[N, H, c]`` with square and rectangular part grids, exact DP
ties, zero and near-zero part distances, and TriHard batches (global features,
local features, labels), optionally with exactly duplicated samples.
"""

import numpy as np


def random_parts(rng, n, hf, hg, c):
    """Standard normal parts ``x [n, hf, c]`` and ``y [n, hg, c]`` (float64)."""
    x = rng.normal(size=(n, hf, c))
    y = rng.normal(size=(n, hg, c))
    return x, y


def tied_parts(rng, n, h, c):
    """Parts drawn from two vectors A, B: part distances are 0 or one value v.

    Every path length is then k * v summed in sequence, bitwise identical in
    any implementation, so DP ties are exact ties in TensorFlow and in the
    reference alike (with arbitrary values, float rounding decides ties).
    """
    vocab = 0.5 * rng.normal(size=(2, c))
    return vocab[rng.integers(0, 2, size=(n, h))], vocab[rng.integers(0, 2, size=(n, h))]


def zero_distance_parts(rng, n, h, c, jitter=0.0):
    """Random parts ``[n, h, c]`` where two parts of each ``y`` copy parts of ``x``
    (to within ``jitter``): zero or near-zero part distances.
    """
    x, y = random_parts(rng, n, h, h, c)
    for k in range(n):
        i, j = rng.integers(0, h, size=2)
        y[k, j] = x[k, i] + jitter * rng.normal(size=c)
        y[k, (j + 1) % h] = x[k, (i + 1) % h] + jitter * rng.normal(size=c)
    return x, y


def trihard_inputs(rng, ids, per_id, dim, h, c, duplicate=False):
    """A shuffled batch of ``ids`` identities x ``per_id`` samples.

    Returns:
        ``(global [N, dim], local [N, h, c], labels [N])`` with ``N = ids * per_id``.

    Example:
        >>> g, loc, labels = trihard_inputs(np.random.default_rng(0), 3, 2, 4, 5, 6)
        >>> g.shape, loc.shape, sorted(labels.tolist())
        ((6, 4), (6, 5, 6), [0, 0, 1, 1, 2, 2])
    """
    labels = np.repeat(np.arange(ids), per_id)
    g = rng.normal(size=(ids * per_id, dim))
    loc = rng.normal(size=(ids * per_id, h, c))
    if duplicate:
        # every identity's second sample is an exact copy of its first one
        g[1::per_id] = g[0::per_id]
        loc[1::per_id] = loc[0::per_id]
    order = rng.permutation(len(labels))
    return g[order], loc[order], labels[order]

