"""Numba kernels of the sparse k-reciprocal re-ranking (see ``reference.rerank``).

Item order everywhere: the Q queries first, then the G gallery items (N = Q + G).
"C" is the squared distance matrix with every row divided by its maximum, in
float32; "V" is the sparse matrix of k-reciprocal weights, held as CSR arrays
``(indptr [N + 1], indices [nnz], data [nnz])`` with sorted column indices.
"""

import numba
import numpy as np
from numba import prange


@numba.njit(cache=True)
def _sq(x):
    """float32 of x squared (exactly NumPy's float32 squaring of a float32 or float64 value)."""
    return np.float32(np.float64(x) * np.float64(x))


@numba.njit(cache=True)
def _offer(a, c, m, k, vals, raw, idx, filled):
    """Offer column ``c`` with squared distance ``a`` to the running k smallest.

    ``vals`` holds C = a / m ascending, ties by column (columns arrive in
    increasing order, so a later column never overtakes an equal value).
    Returns the new number of filled slots.
    """
    if filled == k and a >= raw[k - 1]:
        # a / m is monotone in a, so it cannot be strictly below vals[k - 1]
        return filled
    v = a / m
    if filled == k:
        if v >= vals[k - 1]:
            return filled
        p = k - 1
    else:
        p = filled
        filled += 1
    while p > 0 and vals[p - 1] > v:
        vals[p] = vals[p - 1]
        raw[p] = raw[p - 1]
        idx[p] = idx[p - 1]
        p -= 1
    vals[p] = v
    raw[p] = a
    idx[p] = c
    return filled


@numba.njit(cache=True, parallel=True)
def select_block(left, right, row0, k, knn, knn_vals, rowmax, out):
    """Row maxima and the k nearest columns of a block of rows of the distance matrix.

    Args:
        left: [b, Q] distances of rows ``row0 .. row0 + b - 1`` to the queries.
        right: [b, G] distances of the same rows to the gallery.
        row0: index (in 0..N-1) of the block's first row.
        k: neighbours kept per row (k <= N).
        knn: [N, k] int64 output; row i = the k smallest columns of C[i], by
            (value, column).
        rowmax: [N] float32 output, the maximum of the squared row.
        out: [Q, G] float32 output; for query rows, receives C[i, Q:].
    """
    b = left.shape[0]
    nq = left.shape[1]
    ng = right.shape[1]
    num_query = out.shape[0]
    for t in prange(b):
        i = row0 + t
        m = np.float32(0)
        for c in range(nq):
            a = _sq(left[t, c])
            if a > m:
                m = a
        for c in range(ng):
            a = _sq(right[t, c])
            if a > m:
                m = a
        rowmax[i] = m
        if m == 0:
            continue
        vals = np.empty(k, np.float32)
        raw = np.empty(k, np.float32)
        idx = np.empty(k, np.int64)
        filled = 0
        thr = np.float32(np.inf)  # raw value of the current k-th entry once full
        for c in range(nq):
            a = _sq(left[t, c])
            if a < thr:
                filled = _offer(a, c, m, k, vals, raw, idx, filled)
                if filled == k:
                    thr = raw[k - 1]
        for c in range(ng):
            a = _sq(right[t, c])
            if a < thr:
                filled = _offer(a, nq + c, m, k, vals, raw, idx, filled)
                if filled == k:
                    thr = raw[k - 1]
        for s in range(k):
            knn[i, s] = idx[s]
            knn_vals[i, s] = vals[s]
        if i < num_query:
            for c in range(ng):
                out[i, c] = _sq(right[t, c]) / m


@numba.njit(cache=True, parallel=True)
def gather_columns(src, j0, j1, dst):
    """dst[t, r] = src[r, j0 + t] for t < j1 - j0 (a transposed block of columns), in tiles."""
    w = j1 - j0
    rows = src.shape[0]
    tile = 32
    for b in prange((rows + tile - 1) // tile):
        r0 = b * tile
        r1 = min(r0 + tile, rows)
        for t0 in range(0, w, tile):
            t1 = min(t0 + tile, w)
            for r in range(r0, r1):
                for t in range(t0, t1):
                    dst[t, r] = src[r, j0 + t]


@numba.njit(cache=True, parallel=True)
def reciprocal_sets(knn, h):
    """For every item c: the members f of knn[c, :h] with c in knn[f, :h], in knn order.

    Returns (rc [N, h] int64, rc_len [N] int64).
    """
    n = knn.shape[0]
    rc = np.empty((n, h), np.int64)
    rc_len = np.zeros(n, np.int64)
    for c in prange(n):
        cnt = 0
        for s in range(h):
            f = knn[c, s]
            for u in range(h):
                if knn[f, u] == c:
                    rc[c, cnt] = f
                    cnt += 1
                    break
        rc_len[c] = cnt
    return rc, rc_len


@numba.njit(cache=True)
def _expand_row(i, knn, k1p, sorted_knn, rc, rc_len, rbuf, ebuf, mark):
    """Expansion set E of row i into ebuf (sorted, unique); returns |E|.

    ``sorted_knn[f]`` is ``knn[f, :k1p]`` sorted (membership by binary
    search); ``mark`` is an [N] scratch array of this thread, its entries
    never equal to ``-(i + 1)`` or ``-(i + 1) - n`` on entry for this ``i``.
    Cost O(k1 * h + |E| log |E|) per row.
    """
    n = knn.shape[0]
    stamp = -(i + 1)  # marks members of R(i)
    stamp_e = stamp - n  # marks members of E(i)
    nr = 0
    for s in range(k1p):
        f = knn[i, s]
        lo = 0
        hi = k1p
        while lo < hi:
            mid = (lo + hi) // 2
            if sorted_knn[f, mid] < i:
                lo = mid + 1
            else:
                hi = mid
        if lo < k1p and sorted_knn[f, lo] == i:
            rbuf[nr] = f
            nr += 1
    for s in range(nr):
        mark[rbuf[s]] = stamp
    ne = 0
    for s in range(nr):
        c = rbuf[s]
        size = rc_len[c]
        common = 0
        for u in range(size):
            if mark[rc[c, u]] == stamp:
                common += 1
        if common > (2.0 / 3.0) * size:
            for u in range(size):
                x = rc[c, u]
                if mark[x] != stamp and mark[x] != stamp_e:
                    mark[x] = stamp_e
                    ebuf[nr + ne] = x
                    ne += 1
    for s in range(nr):
        ebuf[s] = rbuf[s]
    total = nr + ne
    ebuf[:total].sort()
    return total


@numba.njit(cache=True, parallel=True)
def sorted_prefix(knn, k1p):
    """[N, k1p] int64: each row's first k1p neighbours, sorted by index."""
    n = knn.shape[0]
    out = np.empty((n, k1p), np.int64)
    for i in prange(n):
        out[i] = np.sort(knn[i, :k1p])
    return out


@numba.njit(cache=True, parallel=True)
def expansion_counts(knn, k1p, sorted_knn, rc, rc_len, nchunks):
    """|E| of every row (see :func:`_expand_row`)."""
    n = knn.shape[0]
    h = rc.shape[1]
    counts = np.empty(n, np.int64)
    for ch in prange(nchunks):
        rbuf = np.empty(k1p, np.int64)
        ebuf = np.empty(k1p + k1p * h, np.int64)
        mark = np.zeros(n, np.int64)
        for i in range(ch * n // nchunks, (ch + 1) * n // nchunks):
            counts[i] = _expand_row(i, knn, k1p, sorted_knn, rc, rc_len, rbuf, ebuf, mark)
    return counts


@numba.njit(cache=True, parallel=True)
def expansion_fill(knn, k1p, sorted_knn, rc, rc_len, nchunks, indptr, indices):
    """Write every row's E into the CSR column array ``indices``."""
    n = knn.shape[0]
    h = rc.shape[1]
    for ch in prange(nchunks):
        rbuf = np.empty(k1p, np.int64)
        ebuf = np.empty(k1p + k1p * h, np.int64)
        mark = np.zeros(n, np.int64)
        for i in range(ch * n // nchunks, (ch + 1) * n // nchunks):
            ne = _expand_row(i, knn, k1p, sorted_knn, rc, rc_len, rbuf, ebuf, mark)
            p0 = indptr[i]
            for s in range(ne):
                indices[p0 + s] = ebuf[s]


@numba.njit(cache=True, parallel=True)
def values_from_matrices(indptr, indices, q_q, q_g, g_g, rowmax, data):
    """data[p] = C[i, indices[p]] read from the three distance matrices."""
    nq = q_q.shape[0]
    n = indptr.shape[0] - 1
    for i in prange(n):
        m = rowmax[i]
        for p in range(indptr[i], indptr[i + 1]):
            e = indices[p]
            if i < nq:
                if e < nq:
                    a = _sq(q_q[i, e])
                else:
                    a = _sq(q_g[i, e - nq])
            else:
                if e < nq:
                    a = _sq(q_g[e, i - nq])
                else:
                    a = _sq(g_g[i - nq, e - nq])
            data[p] = a / m


@numba.njit(cache=True, parallel=True)
def values_from_features(indptr, indices, knn, knn_vals, xq, xg, rowmax, data):
    """data[p] = C[i, indices[p]] for features.

    Columns among row i's kept neighbours take the value computed in the first
    pass; the others are recomputed from the features (float64 sums).
    """
    nq = xq.shape[0]
    dim = xq.shape[1]
    n = indptr.shape[0] - 1
    k = knn.shape[1]
    for i in prange(n):
        m = rowmax[i]
        u = xq[i] if i < nq else xg[i - nq]
        for p in range(indptr[i], indptr[i + 1]):
            e = indices[p]
            found = -1
            for s in range(k):
                if knn[i, s] == e:
                    found = s
                    break
            if found >= 0:
                data[p] = knn_vals[i, found]
                continue
            v = xq[e] if e < nq else xg[e - nq]
            d2 = 0.0
            for c in range(dim):
                diff = np.float64(u[c]) - np.float64(v[c])
                d2 += diff * diff
            dist = np.float32(np.sqrt(d2))
            data[p] = _sq(dist) / m


@numba.njit(cache=True, parallel=True)
def normalise_weights(indptr, data):
    """Row-wise: data <- exp(-data) / sum(exp(-data)) (float32)."""
    n = indptr.shape[0] - 1
    for i in prange(n):
        total = np.float32(0)
        for p in range(indptr[i], indptr[i + 1]):
            w = np.exp(-data[p])
            data[p] = w
            total += w
        for p in range(indptr[i], indptr[i + 1]):
            data[p] = data[p] / total


def _chunks(n, per_thread=4):
    """Number of work chunks for a chunked prange."""
    return max(1, min(n, numba.get_num_threads() * per_thread))


@numba.njit(cache=True, parallel=True)
def expansion_mean_counts(indptr, indices, knn, k2, nchunks):
    """Nonzeros of every row of the query-expanded V (mean of the rows knn[i, :k2])."""
    n = indptr.shape[0] - 1
    counts = np.empty(n, np.int64)
    for ch in prange(nchunks):
        lo = ch * n // nchunks
        hi = (ch + 1) * n // nchunks
        mark = np.full(n, -1, np.int64)
        for i in range(lo, hi):
            cnt = 0
            for s in range(k2):
                r = knn[i, s]
                for p in range(indptr[r], indptr[r + 1]):
                    col = indices[p]
                    if mark[col] != i:
                        mark[col] = i
                        cnt += 1
            counts[i] = cnt
    return counts


@numba.njit(cache=True, parallel=True)
def expansion_mean_fill(indptr, indices, data, knn, k2, nchunks, out_ptr, out_idx, out_data):
    """Rows of the query-expanded V: float32 sums over knn[i, :k2] in that order, / k2."""
    n = indptr.shape[0] - 1
    denom = np.float32(k2)
    for ch in prange(nchunks):
        lo = ch * n // nchunks
        hi = (ch + 1) * n // nchunks
        mark = np.full(n, -1, np.int64)
        acc = np.zeros(n, np.float32)
        for i in range(lo, hi):
            p0 = out_ptr[i]
            cnt = 0
            for s in range(k2):
                r = knn[i, s]
                for p in range(indptr[r], indptr[r + 1]):
                    col = indices[p]
                    if mark[col] != i:
                        mark[col] = i
                        acc[col] = data[p]
                        out_idx[p0 + cnt] = col
                        cnt += 1
                    else:
                        acc[col] += data[p]
            cols = np.sort(out_idx[p0:p0 + cnt])
            for s in range(cnt):
                out_idx[p0 + s] = cols[s]
                out_data[p0 + s] = acc[cols[s]] / denom


@numba.njit(cache=True)
def gallery_inverted_index(indptr, indices, data, num_query):
    """Column -> (gallery row, value) lists over the rows num_query..N-1 of V.

    Returns (inv_ptr [N + 1], inv_rows [nnz] (row - num_query, ascending per
    column), inv_vals [nnz] float32).
    """
    n = indptr.shape[0] - 1
    inv_ptr = np.zeros(n + 1, np.int64)
    for p in range(indptr[num_query], indptr[n]):
        inv_ptr[indices[p] + 1] += 1
    for c in range(n):
        inv_ptr[c + 1] += inv_ptr[c]
    nnz = inv_ptr[n]
    inv_rows = np.empty(nnz, np.int64)
    inv_vals = np.empty(nnz, np.float32)
    pos = inv_ptr[:n].copy()
    for i in range(num_query, n):
        for p in range(indptr[i], indptr[i + 1]):
            c = indices[p]
            inv_rows[pos[c]] = i - num_query
            inv_vals[pos[c]] = data[p]
            pos[c] += 1
    return inv_ptr, inv_rows, inv_vals


@numba.njit(cache=True, parallel=True)
def jaccard_combine(indptr, indices, data, inv_ptr, inv_rows, inv_vals, lambda_value, q0, q1,
                    nchunks, out):
    """out[i, j] <- (1 - lambda) * jaccard(i, Q + j) + lambda * out[i, j] for queries q0..q1-1.

    ``out`` holds C[i, Q + j] on entry. The shared mass of query i and gallery
    item j is accumulated over the columns of V[i] in increasing order.
    """
    nq = q1 - q0
    ng = out.shape[1]
    w_jac = np.float32(1.0 - lambda_value)
    w_dist = np.float32(lambda_value)
    one = np.float32(1)
    two = np.float32(2)
    for ch in prange(nchunks):
        lo = q0 + ch * nq // nchunks
        hi = q0 + (ch + 1) * nq // nchunks
        shared = np.zeros(ng, np.float32)
        for i in range(lo, hi):
            for p in range(indptr[i], indptr[i + 1]):
                col = indices[p]
                v = data[p]
                for s in range(inv_ptr[col], inv_ptr[col + 1]):
                    j = inv_rows[s]
                    w = inv_vals[s]
                    shared[j] += v if v < w else w
            for j in range(ng):
                t = shared[j]
                jac = one - t / (two - t)
                out[i, j] = jac * w_jac + out[i, j] * w_dist
                shared[j] = 0
