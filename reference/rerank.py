"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) without N x N arrays.

Computes what the widely used dense transcription computes (steps 1-8 of the
project's re-ranking specification) while keeping only, for the N = Q + G
items, the k nearest neighbours of every row, the row maxima, the sparse
weight matrix V, and the [Q, G] output:

1. For each row i of the squared distance matrix: its maximum, and its
   ``max(k1 + 1, k2)`` smallest entries of ``C[i] = A[i] / max(A[i])`` in
   ascending order, ties broken by the lower index (a stable sort).
2. The k-reciprocal sets R, their expansions E and the weights
   ``exp(-C[i, E]) / sum`` as CSR arrays.
3. Local query expansion (mean of the V rows of the k2 nearest items).
4. The Jaccard distance of each query to each gallery item through an inverted
   index over the gallery rows of V, fused with ``lambda * C`` straight into
   the output.

Cost: the distances take O(N^2 C) (float32 GEMM in blocks, the bulk of the
time at scale); the neighbourhoods O(N k1^2); the Jaccard step about
O(Q (k2 k1)^2). ``k1`` and ``k2`` are therefore limited to :data:`MAX_K1` and
:data:`MAX_K2`; values above N - 1 (k1) and N (k2) are cut to those (every
item is then a neighbour). An optional ``progress`` object reports the
distance blocks and the Jaccard step with an ETA.

The squared distances are rounded to float32 and normalised in float32, as in
the dense transcription. ``q_q`` and ``g_g`` are read by rows: for symmetric
distance matrices this is the specification's column normalisation followed by
a transpose.
"""

import numpy as np

from reference import _rerank_kernels as K
from reference._validate import as_float_array
from reference.euclidean import distance_block, squared_norms
from reference.rerank_limits import MAX_K1, MAX_K2, check_rerank_params  # noqa: F401

#: Rows handled per block when gathering rows or computing distances.
BLOCK_ROWS = 256
#: Queries per Jaccard block between progress reports.
JACCARD_BLOCKS = 50


class _Silent:
    def count(self, what, done, total):
        pass


class _Workspace:
    """The per-row arrays of the first pass and the [Q, G] output."""

    def __init__(self, num_query, num_gallery, k1, k2):
        self.num_query = num_query
        self.n = num_query + num_gallery
        self.k = min(max(k1 + 1, k2), self.n)
        self.knn = np.empty((self.n, self.k), np.int64)
        self.knn_vals = np.empty((self.n, self.k), np.float32)
        self.rowmax = np.empty(self.n, np.float32)
        self.out = np.empty((num_query, num_gallery), np.float32)

    def select(self, left, right, row0):
        K.select_block(left, right, row0, self.k, self.knn, self.knn_vals, self.rowmax, self.out)

    def check_rowmax(self, where):
        zero = np.flatnonzero(self.rowmax == 0)
        if zero.size:
            i = int(zero[0])
            item = f"query {i}" if i < self.num_query else f"gallery item {i - self.num_query}"
            raise ValueError(
                f"{where}: all distances of {item} to the other items are zero; "
                "the row normalisation is undefined"
            )


def _finish(ws, k1, k2, lambda_value, fill_values, progress):
    """Steps 2-4: V, query expansion, Jaccard + lambda * C into ws.out."""
    n = ws.n
    k1p = min(k1 + 1, n)
    half = min(int(np.round(k1 / 2.0)) + 1, n)
    rc, rc_len = K.reciprocal_sets(ws.knn, half)
    sorted_knn = K.sorted_prefix(ws.knn, k1p)
    counts = K.expansion_counts(ws.knn, k1p, sorted_knn, rc, rc_len, K._chunks(n))
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(indptr[-1], np.int64)
    K.expansion_fill(ws.knn, k1p, sorted_knn, rc, rc_len, K._chunks(n), indptr, indices)
    del rc, rc_len, counts, sorted_knn
    data = np.empty(indptr[-1], np.float32)
    fill_values(indptr, indices, data)
    K.normalise_weights(indptr, data)
    if k2 != 1:
        k2n = min(k2, n)
        chunks = K._chunks(n)
        counts = K.expansion_mean_counts(indptr, indices, ws.knn, k2n, chunks)
        qe_ptr = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=qe_ptr[1:])
        del counts
        qe_idx = np.empty(qe_ptr[-1], np.int64)
        qe_data = np.empty(qe_ptr[-1], np.float32)
        K.expansion_mean_fill(indptr, indices, data, ws.knn, k2n, chunks, qe_ptr, qe_idx, qe_data)
        indptr, indices, data = qe_ptr, qe_idx, qe_data
    inv_ptr, inv_rows, inv_vals = K.gallery_inverted_index(indptr, indices, data, ws.num_query)
    nq = ws.num_query
    step = max(1, -(-nq // JACCARD_BLOCKS))
    for q0 in range(0, nq, step):
        q1 = min(q0 + step, nq)
        K.jaccard_combine(
            indptr, indices, data, inv_ptr, inv_rows, inv_vals, lambda_value, q0, q1,
            K._chunks(q1 - q0), ws.out,
        )
        progress.count("re-ranking: Jaccard distances (queries)", q1, nq)
    return ws.out


def re_rank(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3, *, progress=None):
    """k-reciprocal re-ranking of a query-gallery distance matrix.

    Args:
        q_g: [Q, G] Euclidean distances between queries and gallery items.
        q_q: [Q, Q] distances between queries (symmetric).
        g_g: [G, G] distances between gallery items (symmetric).
        k1: size of the k-reciprocal neighbourhood (k1 + 1 nearest, self
            included); the expansion uses ``round(k1 / 2) + 1``.
        k2: number of neighbours averaged by the local query expansion
            (1 = no expansion).
        lambda_value: weight of the original distance in the final distance.
        progress: an object with ``count(what, done, total)`` (a
            :class:`reid_common.Reporter`), told about the row blocks and the
            Jaccard step; None for silence.

    Returns:
        [Q, G] float32 array: ``(1 - lambda) * jaccard + lambda * C`` with C
        the row-normalised squared distance. Equal distances within a row are
        ranked by item index (queries first, then gallery).

    Example:
        >>> import numpy as np
        >>> from reference.euclidean import pairwise_distance
        >>> rng = np.random.default_rng(0)
        >>> q, g = rng.normal(size=(5, 8)), rng.normal(size=(30, 8))
        >>> d = re_rank(pairwise_distance(q, g), pairwise_distance(q, q),
        ...             pairwise_distance(g, g), k1=6, k2=3)
        >>> d.shape, d.dtype
        ((5, 30), dtype('float32'))
    """
    k1, k2, lambda_value = check_rerank_params(k1, k2, lambda_value)
    q_g = as_float_array("q_g", q_g, ndim=2)
    q_q = as_float_array("q_q", q_q, ndim=2)
    g_g = as_float_array("g_g", g_g, ndim=2)
    nq, ng = q_g.shape
    if q_q.shape != (nq, nq):
        raise ValueError(f"q_q: expected shape ({nq}, {nq}) (Q from q_g), got {q_q.shape}")
    if g_g.shape != (ng, ng):
        raise ValueError(f"g_g: expected shape ({ng}, {ng}) (G from q_g), got {g_g.shape}")
    dtype = np.float64 if np.float64 in (q_g.dtype, q_q.dtype, g_g.dtype) else np.float32
    q_g, q_q, g_g = (a.astype(dtype, copy=False) for a in (q_g, q_q, g_g))

    progress = progress if progress is not None else _Silent()
    ws = _Workspace(nq, ng, k1, k2)
    what = "re-ranking: nearest neighbours (rows)"
    for i0 in range(0, nq, BLOCK_ROWS):
        i1 = min(i0 + BLOCK_ROWS, nq)
        ws.select(q_q[i0:i1], q_g[i0:i1], i0)
        progress.count(what, i1, ws.n)
    buf = np.empty((min(BLOCK_ROWS, ng), nq), dtype)
    for j0 in range(0, ng, BLOCK_ROWS):
        j1 = min(j0 + BLOCK_ROWS, ng)
        left = buf[: j1 - j0]
        K.gather_columns(q_g, j0, j1, left)
        ws.select(left, g_g[j0:j1], nq + j0)
        progress.count(what, nq + j1, ws.n)
    del buf
    ws.check_rowmax("q_q/q_g/g_g")

    def fill_values(indptr, indices, data):
        K.values_from_matrices(indptr, indices, q_q, q_g, g_g, ws.rowmax, data)

    return _finish(ws, k1, k2, lambda_value, fill_values, progress)


def re_rank_features(query_features, gallery_features, k1=20, k2=6, lambda_value=0.3, *,
                     progress=None):
    """k-reciprocal re-ranking computed from features, distances in blocks.

    Equivalent to ``re_rank(pairwise_distance(q, g), pairwise_distance(q, q),
    pairwise_distance(g, g), ...)`` but never holds more than a block of
    [256, Q + G] distances besides the [Q, G] output.

    Args:
        query_features: [Q, C] array.
        gallery_features: [G, C] array.
        k1, k2, lambda_value, progress: as in :func:`re_rank`.

    Returns:
        [Q, G] float32 re-ranked distances.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> re_rank_features(rng.normal(size=(5, 8)), rng.normal(size=(30, 8)),
        ...                  k1=6, k2=3).shape
        (5, 30)
    """
    k1, k2, lambda_value = check_rerank_params(k1, k2, lambda_value)
    xq = as_float_array("query_features", query_features, ndim=2)
    xg = as_float_array("gallery_features", gallery_features, ndim=2)
    if xq.shape[1] != xg.shape[1]:
        raise ValueError(
            f"gallery_features: expected {xq.shape[1]} columns (the feature size of "
            f"query_features), got shape {xg.shape}"
        )
    dtype = np.float64 if np.float64 in (xq.dtype, xg.dtype) else np.float32
    xq, xg = xq.astype(dtype, copy=False), xg.astype(dtype, copy=False)
    nq, ng = xq.shape[0], xg.shape[0]
    xx_q, xx_g = squared_norms(xq), squared_norms(xg)

    progress = progress if progress is not None else _Silent()
    ws = _Workspace(nq, ng, k1, k2)
    rows = min(BLOCK_ROWS, nq + ng)
    left = np.empty((rows, nq), dtype)
    right = np.empty((rows, ng), dtype)
    for x, xx, base in ((xq, xx_q, 0), (xg, xx_g, nq)):
        for i0 in range(0, x.shape[0], rows):
            i1 = min(i0 + rows, x.shape[0])
            b = i1 - i0
            distance_block(x[i0:i1], xx[i0:i1], xq, xx_q, False, left[:b])
            distance_block(x[i0:i1], xx[i0:i1], xg, xx_g, False, right[:b])
            ws.select(left[:b], right[:b], base + i0)
            progress.count("re-ranking: distances (rows)", base + i1, ws.n)
    del left, right
    ws.check_rowmax("query_features/gallery_features")

    def fill_values(indptr, indices, data):
        K.values_from_features(indptr, indices, ws.knn, ws.knn_vals, xq, xg, ws.rowmax, data)

    return _finish(ws, k1, k2, lambda_value, fill_values, progress)
