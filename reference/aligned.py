"""Aligned local distance of AlignedReID (values, optimal paths, gradients).

Local features are ``[H, c]`` arrays: ``H`` horizontal stripes of ``c``
channels each. For two images with local features ``f`` [Hf, c] and ``g``
[Hg, c] the part distance is (Eq. 1)

    d_ij = (e^x - 1) / (e^x + 1) = tanh(x / 2),   x = ||f_i - g_j||_2,

and the aligned local distance S (Eq. 2) is the length of the shortest path
from (0, 0) to (Hf - 1, Hg - 1) in the grid of d_ij, moving one step right
(j + 1) or down (i + 1) at a time; the length includes both end cells.

Conventions shared with the TensorFlow implementation:

* Tie rule: when the two predecessors of a cell have the same shortest-path
  length, the predecessor (i - 1, j) wins. It decides the path returned by
  :func:`local_path` and therefore which cells receive gradient.
* The gradient of the Euclidean norm at zero distance (f_i == g_j) is 0.

float32 input is computed in float32 and float64 input in float64 (mixed
input is computed in float64). The kernels live in
:mod:`reference._local_kernels` and are compiled on first use.
"""

import contextlib

import numba
import numpy as np

from reference import _local_kernels as _k
from reference._validate import as_float_array, as_int_array, check_length

__all__ = [
    "local_distance",
    "local_path",
    "local_distance_pairs",
    "unaligned_local_distance_pairs",
    "local_distance_matrix",
    "local_distance_grad",
    "jit_cache_hits",
]

# Default block of the matrix mode: each thread multiplies 256 query parts by
# 4096 gallery parts at a time (a 4 MB float32 block; the fastest of the sizes
# measured on a 2-core machine with 2 MB of L2 per core).
_BLOCK_QUERY_PARTS = 256
_BLOCK_GALLERY_PARTS = 4096
# Pair kernels run single-threaded below this many multiply-adds.
_PARALLEL_MIN_WORK = 1 << 18


def _features(x_name, x, y_name, y, x_ndim, y_ndim):
    """Validate two feature arrays; return them in one common float dtype."""
    x = as_float_array(x_name, x, ndim=x_ndim)
    y = as_float_array(y_name, y, ndim=y_ndim)
    if x.dtype != y.dtype:
        x = x.astype(np.float64)
        y = y.astype(np.float64)
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"{y_name}: expected {x.shape[-1]} channels (last axis, as in "
            f"{x_name}), got shape {y.shape}"
        )
    return x, y


def _parallel(X, Y, pairs=None):
    """Whether a pair kernel should use threads (enough work to pay off)."""
    pairs = X.shape[0] if pairs is None else pairs
    return pairs * X.shape[1] * Y.shape[1] * X.shape[2] >= _PARALLEL_MIN_WORK


def _pair_index(n):
    return np.arange(n, dtype=np.int64)


def local_distance(x, y):
    """Aligned local distance between two images.

    Args:
        x: local features of the first image, [Hf, c].
        y: local features of the second image, [Hg, c] (Hg may differ from Hf).

    Returns:
        float: the shortest-path length S over the grid of part distances
        d_ij = tanh(||x_i - y_j|| / 2).

    Example:
        >>> import numpy as np
        >>> x = np.eye(3, dtype=np.float32)
        >>> round(local_distance(x, x), 4)  # 2 off-diagonal cells of tanh(sqrt(2)/2)
        1.2177
    """
    x, y = _features("x", x, "y", y, 2, 2)
    return float(local_distance_pairs(x[None], y[None])[0])


def local_path(x, y):
    """Optimal alignment path between two images.

    Args:
        x: local features [Hf, c].
        y: local features [Hg, c].

    Returns:
        list of (i, j) int tuples from (0, 0) to (Hf - 1, Hg - 1), each step
        moving one row down (i + 1) or one column right (j + 1); the sum of
        d_ij over it equals :func:`local_distance`. Between two optimal
        predecessors the path comes from (i - 1, j) (tie rule).

    Example:
        >>> import numpy as np
        >>> local_path(np.zeros((2, 4)), np.zeros((3, 4)))  # all ties
        [(0, 0), (0, 1), (0, 2), (1, 2)]
    """
    x, y = _features("x", x, "y", y, 2, 2)
    paths = np.empty((1, x.shape[0] + y.shape[0] - 1, 2), dtype=np.int64)
    idx = _pair_index(1)
    _k.pair_paths(x[None], idx, y[None], idx, paths, False)
    return [(int(i), int(j)) for i, j in paths[0]]


def local_distance_pairs(X, Y):
    """Aligned local distances of N pairs (X[n], Y[n]).

    Args:
        X: [N, Hf, c] local features.
        Y: [N, Hg, c] local features.

    Returns:
        [N] array (float32, or float64 for float64 input).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(4, 8, 16)).astype(np.float32)
        >>> local_distance_pairs(X, X[::-1]).shape
        (4,)
    """
    X, Y = _features("X", X, "Y", Y, 3, 3)
    check_length("Y", Y, X.shape[0], "number of pairs in X")
    out = np.empty(X.shape[0], dtype=X.dtype)
    idx = _pair_index(X.shape[0])
    _k.pair_distances(X, idx, Y, idx, out, _parallel(X, Y))
    return out


def unaligned_local_distance_pairs(X, Y):
    """Unaligned local distances sum_i d_ii of N pairs (the GL-Baseline).

    Args:
        X: [N, H, c] local features.
        Y: [N, H, c] local features (same H).

    Returns:
        [N] array (float32, or float64 for float64 input).

    Example:
        >>> import numpy as np
        >>> X = np.zeros((2, 4, 3))
        >>> unaligned_local_distance_pairs(X, X).tolist()
        [0.0, 0.0]
    """
    X, Y = _features("X", X, "Y", Y, 3, 3)
    check_length("Y", Y, X.shape[0], "number of pairs in X")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"Y: expected {X.shape[1]} parts (axis 1, as in X) for the "
            f"unaligned distance, got shape {Y.shape}"
        )
    out = np.empty(X.shape[0], dtype=X.dtype)
    idx = _pair_index(X.shape[0])
    _k.unaligned_pair_distances(X, idx, Y, idx, out, _parallel(X, Y))
    return out


def unaligned_local_distance_matrix(X, Y):
    """Unaligned local distances sum_i d_ii between every query and gallery item.

    Part i of the query is compared with part i of the gallery item only
    (the GL-Baseline's distance), ``d = tanh(||x_i - y_i|| / 2)``; one
    Euclidean matrix per part.

    Args:
        X: [M, H, c] query local features.
        Y: [N, H, c] gallery local features (same H).

    Returns:
        [M, N] distances (float32, or float64 for float64 input).

    Example:
        >>> import numpy as np
        >>> X = np.zeros((2, 4, 3), np.float32)
        >>> unaligned_local_distance_matrix(X, X).tolist()
        [[0.0, 0.0], [0.0, 0.0]]
    """
    from reference.euclidean import pairwise_distance

    X, Y = _features("X", X, "Y", Y, 3, 3)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"Y: expected {X.shape[1]} parts (axis 1, as in X) for the "
            f"unaligned distance, got shape {Y.shape}"
        )
    out = np.zeros((X.shape[0], Y.shape[0]), X.dtype)
    for i in range(X.shape[1]):
        d = np.asarray(pairwise_distance(np.ascontiguousarray(X[:, i]),
                                         np.ascontiguousarray(Y[:, i])), X.dtype)
        out += np.tanh(d / 2)
    return out


def _check_block(block):
    if block is None:
        return _BLOCK_QUERY_PARTS, _BLOCK_GALLERY_PARTS
    try:
        bq, bg = (int(v) for v in block)
    except (TypeError, ValueError):
        raise TypeError(f"block: expected a pair of ints, got {block!r}") from None
    if bq < 1 or bg < 1:
        raise ValueError(f"block: expected positive sizes, got {block!r}")
    return bq, bg


def local_distance_matrix(X, Y, shortlist=None, block=None):
    """Aligned local distances between every query and gallery item.

    Without a shortlist the work is done in blocks: for a few queries and a
    block of gallery items one matrix product gives all inner products of
    their parts, the squared part distances are ||a||^2 + ||b||^2 - 2 a.b
    (clamped at 0), and the shortest path runs for every pair of the block.
    Threads work on different query blocks; BLAS is kept single-threaded
    meanwhile (through threadpoolctl). Peak extra memory is the output plus
    one block per thread and one gallery block, never the
    [M * Hf, N * Hg] matrix of the whole problem. With a shortlist only the
    listed pairs are computed (same expansion, one matrix product per
    query over its gathered shortlist).

    Args:
        X: [M, Hf, c] query local features.
        Y: [N, Hg, c] gallery local features.
        shortlist: optional int [M, K] of indices into Y; row q lists the
            gallery items to compare with query q.
        block: optional (query parts, gallery parts) per block, a tuning
            knob; the default (256, 4096) makes one float32 block 4 MB.

    Returns:
        [M, N] distances, or [M, K] with out[q, k] = S(X[q], Y[shortlist[q, k]])
        when a shortlist is given (float32, or float64 for float64 input).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(3, 8, 16)).astype(np.float32)
        >>> Y = rng.normal(size=(5, 8, 16)).astype(np.float32)
        >>> local_distance_matrix(X, Y).shape
        (3, 5)
        >>> local_distance_matrix(X, Y, shortlist=[[0, 4]] * 3).shape
        (3, 2)
    """
    X, Y = _features("X", X, "Y", Y, 3, 3)
    if shortlist is not None:
        shortlist = as_int_array("shortlist", shortlist, ndim=2)
        check_length("shortlist", shortlist, X.shape[0], "number of queries in X")
        low, high = int(shortlist.min()), int(shortlist.max())
        if low < 0 or high >= Y.shape[0]:
            bad = low if low < 0 else high
            raise ValueError(
                f"shortlist: index {bad} out of range for Y with {Y.shape[0]} items"
            )
        out = np.empty(shortlist.shape, dtype=X.dtype)
        x2 = X.reshape(-1, X.shape[2])
        qnorm = np.einsum("ij,ij->i", x2, x2)
        ynorm = np.einsum("gjc,gjc->gj", Y, Y)
        parallel = _parallel(X, Y, shortlist.size)
        with _single_threaded_blas() if parallel else contextlib.nullcontext():
            _k.shortlist_distances(x2, qnorm, Y, ynorm, shortlist, out, parallel)
        return out
    bq, bg = _check_block(block)
    m, hf, c = X.shape
    n, hg, _ = Y.shape
    qchunk = max(1, bq // hf)
    nb = max(1, bg // hg)
    out = np.empty((m, n), dtype=X.dtype)
    x2 = X.reshape(m * hf, c)
    qnorm = np.einsum("ij,ij->i", x2, x2)
    with _single_threaded_blas(), numba.parallel_chunksize(1):
        for g0 in range(0, n, nb):
            ng = min(nb, n - g0)
            # gallery block in part-major order: row j * ng + g = part j of item g0 + g
            yb = np.ascontiguousarray(Y[g0:g0 + ng].transpose(1, 0, 2)).reshape(hg * ng, c)
            gnorm = np.einsum("ij,ij->i", yb, yb)
            _k.matrix_block(x2, qnorm, yb.T, gnorm, hf, hg, out, g0, ng, qchunk)
    return out


def _single_threaded_blas():
    """Context in which BLAS runs in the calling thread only.

    The matrix kernel calls BLAS from each of its own threads; letting BLAS
    start threads of its own as well would oversubscribe the cores. Without
    threadpoolctl this is a no-op.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def local_distance_grad(X, Y):
    """Gradient of sum_n S(X[n], Y[n]) with respect to X and Y.

    The shortest path's derivative is the indicator of the optimal path
    (tie rule: (i - 1, j) wins), so for every cell (i, j) on the path of
    pair n, with x = ||X[n, i] - Y[n, j]|| and d = tanh(x / 2):

        dX[n, i] += (1 - d^2) / 2 * (X[n, i] - Y[n, j]) / x
        dY[n, j] -= (1 - d^2) / 2 * (X[n, i] - Y[n, j]) / x

    and the term is 0 when x == 0.

    Args:
        X: [N, Hf, c] local features.
        Y: [N, Hg, c] local features.

    Returns:
        (dX [N, Hf, c], dY [N, Hg, c]) in the computation dtype.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X, Y = rng.normal(size=(2, 5, 8, 16))
        >>> dX, dY = local_distance_grad(X, Y)
        >>> dX.shape, dY.shape
        ((5, 8, 16), (5, 8, 16))
    """
    X, Y = _features("X", X, "Y", Y, 3, 3)
    check_length("Y", Y, X.shape[0], "number of pairs in X")
    weights = np.ones(X.shape[0], dtype=X.dtype)
    return pair_gradients(X, Y, weights, aligned=True)


def pair_gradients(X, Y, weights, aligned=True):
    """Per-pair gradients of sum_n weights[n] * l(X[n], Y[n]) (no validation).

    l is the aligned local distance, or sum_i d_ii when ``aligned`` is False.
    X, Y must be C-contiguous arrays of one float dtype and ``weights`` [N]
    of that dtype. Used by :mod:`reference.trihard`.

    Returns:
        (dX [N, Hf, c], dY [N, Hg, c]).
    """
    dX = np.zeros_like(X)
    dY = np.zeros_like(Y)
    idx = _pair_index(X.shape[0])
    _k.pair_gradients(
        X, idx, Y, idx, weights.astype(X.dtype), bool(aligned), dX, dY, _parallel(X, Y)
    )
    return dX, dY


_ENTRY_KERNELS = (
    _k.pair_distances,
    _k.unaligned_pair_distances,
    _k.pair_paths,
    _k.pair_gradients,
    _k.shortlist_distances,
    _k.matrix_block,
)


def jit_cache_hits():
    """Number of local-distance kernels loaded from Numba's disk cache so far.

    A diagnostic: the kernels behind the functions of this module compile on
    their first call in a process, or load from the on-disk cache
    (``cache=True``) when an earlier process compiled them for the same types.
    This counts the loads (one per kernel and type signature) made in this
    process; 0 before the first call, or when every kernel was compiled.

    Returns:
        int.

    Example:
        >>> import numpy as np
        >>> _ = local_distance_matrix(np.ones((2, 3, 4)), np.ones((2, 3, 4)))
        >>> jit_cache_hits() >= 0
        True
    """
    return int(sum(sum(kernel.stats.cache_hits.values()) for kernel in _ENTRY_KERNELS))
