"""Numba kernels for the aligned local distance (values, paths, gradients).

Every kernel takes and returns plain NumPy arrays; validation and dtype
conversion happen once, in :mod:`reference.aligned`. The kernels are
compiled lazily on first call (``cache=True``, no eager signatures) for each
dtype they meet: float32 arrays are computed in float32, float64 arrays in
float64.

The shortest-path recurrence is written once, in :func:`dp_row`, and works on
a block of independent problems at a time ("lanes"): ``L`` pairs, or one query
against ``L`` gallery items. The lane axis is the innermost, contiguous axis,
so the compiler vectorises the recurrence across lanes.
"""

import math

import numba
import numpy as np
from numba import prange, types
from numba.extending import overload

# Number of pairs handled together by the pair kernels (the lane width).
PAIR_LANES = 64

# Options of every kernel: cached on disk, compiled lazily per dtype; fastmath
# is safe because inputs are validated finite, and error_model="numpy" drops
# the division-by-zero checks that would stop vectorisation (no division in
# these kernels can have a zero divisor).
_FLAGS = dict(cache=True, fastmath=True, error_model="numpy")

# tanh(z) for float32 is evaluated as z * P(u) / Q(u) with u = (z / 9)^2 and z
# clamped to [0, 9] (tanh(9) rounds to within half an ulp of 1 in float32).
# The coefficients were fitted for this module (weighted least-squares
# rational fit on [0, 9]); the rational has a maximum error of 1.2e-9 in exact
# arithmetic and about 4e-7 once evaluated in float32 (3e-8 is the float32
# rounding of tanh itself).
_TANH_CLAMP = 9.0
_P0, _P1, _P2, _P3, _P4, _P5 = (
    0.9999999938765884,
    11.07786244970503,
    25.351485568472153,
    14.839984670180291,
    1.3087301011472972,
    -0.04213519575040431,
)
_Q1, _Q2, _Q3, _Q4 = (
    38.07786029999766,
    178.65393341489252,
    208.91508747753178,
    55.17648233161628,
)


def tanh_half(x):
    """Return tanh(x / 2) = (e^x - 1) / (e^x + 1) for x >= 0 (Eq. 1)."""
    return math.tanh(0.5 * x)


@overload(tanh_half, inline="always")
def _tanh_half_impl(x):
    if x == types.float32:
        clamp = np.float32(_TANH_CLAMP)
        scale = np.float32(1.0 / (_TANH_CLAMP * _TANH_CLAMP))
        half = np.float32(0.5)
        p0, p1, p2, p3, p4, p5 = (np.float32(v) for v in (_P0, _P1, _P2, _P3, _P4, _P5))
        q1, q2, q3, q4 = (np.float32(v) for v in (_Q1, _Q2, _Q3, _Q4))
        one = np.float32(1.0)

        def impl(x):
            z = min(half * x, clamp)
            u = z * z * scale
            p = ((((p5 * u + p4) * u + p3) * u + p2) * u + p1) * u + p0
            q = (((q4 * u + q3) * u + q2) * u + q1) * u + one
            return z * p / q

        return impl

    def impl(x):
        return math.tanh(0.5 * x)

    return impl


def cast_like(value, like):
    """Return ``value`` converted to the scalar type of ``like``."""
    return type(like)(value)


@overload(cast_like, inline="always")
def _cast_like_impl(value, like):
    scalar = numba.np.numpy_support.as_dtype(like).type

    def impl(value, like):
        return scalar(value)

    return impl


@numba.njit(**_FLAGS)
def dp_row(i, drow, prev, cur):
    """Advance the shortest-path table by grid row ``i`` for every lane.

    ``cur[j, l]`` becomes the length of the shortest right/down path from
    (0, 0) to (i, j) of lane ``l``; ``prev`` holds row ``i - 1`` (ignored for
    ``i == 0``) and ``drow[j, l]`` the part distance d_ij. For ``i > 0``,
    ``prev`` and ``cur`` must be different arrays (two distinct buffers let
    the compiler vectorise). All three are [Hg, L].
    """
    hg = drow.shape[0]
    lanes = drow.shape[1]
    c0 = cur[0]
    d0 = drow[0]
    if i == 0:
        for g in range(lanes):
            c0[g] = d0[g]
        for j in range(1, hg):
            c = cur[j]
            left = cur[j - 1]
            d = drow[j]
            for g in range(lanes):
                c[g] = left[g] + d[g]
    else:
        p0 = prev[0]
        for g in range(lanes):
            c0[g] = p0[g] + d0[g]
        for j in range(1, hg):
            c = cur[j]
            up = prev[j]
            left = cur[j - 1]
            d = drow[j]
            for g in range(lanes):
                c[g] = min(up[g], left[g]) + d[g]


@numba.njit(**_FLAGS)
def part_row(A, ia, B, ib, i, drow):
    """drow[j, l] = d(A[ia[l], i], B[ib[l], j]) by direct differences.

    A: [*, Hf, c]; B: [*, Hg, c]; ia, ib: [L] int64; drow: [Hg, L].
    """
    hg = B.shape[1]
    c = A.shape[2]
    for l in range(ia.shape[0]):
        a = A[ia[l], i]
        for j in range(hg):
            b = B[ib[l], j]
            acc = cast_like(0.0, a[0])
            for t in range(c):
                diff = a[t] - b[t]
                acc += diff * diff
            drow[j, l] = tanh_half(math.sqrt(acc))


@numba.njit(**_FLAGS)
def _lane_distances(A, ia, B, ib, buf, drow):
    """Shortest-path lengths for lanes (A[ia[l]], B[ib[l]]); returns [L]."""
    hf = A.shape[1]
    for i in range(hf):
        part_row(A, ia, B, ib, i, drow)
        dp_row(i, drow, buf[(i + 1) & 1], buf[i & 1])
    return buf[(hf - 1) & 1, B.shape[1] - 1].copy()


@numba.njit(**_FLAGS)
def _lane_table(A, ia, B, ib, table, drow):
    """Fill the full table [Hf, Hg, L] of shortest-path lengths."""
    for i in range(A.shape[1]):
        part_row(A, ia, B, ib, i, drow)
        dp_row(i, drow, table[max(i - 1, 0)], table[i])


@numba.njit(cache=True)
def walk_path(table, lane, path):
    """Write the optimal path of ``lane`` into ``path`` [Hf + Hg - 1, 2].

    The path is written from (0, 0) to (Hf - 1, Hg - 1). Going backwards from
    the last cell, the predecessor (i - 1, j) is taken whenever
    table[i - 1, j] <= table[i, j - 1] (tie rule: (i - 1, j) wins).
    """
    i = table.shape[0] - 1
    j = table.shape[1] - 1
    k = path.shape[0] - 1
    while True:
        path[k, 0] = i
        path[k, 1] = j
        if i == 0 and j == 0:
            break
        k -= 1
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        elif table[i - 1, j, lane] <= table[i, j - 1, lane]:
            i -= 1
        else:
            j -= 1


@numba.njit(**_FLAGS)
def _accumulate_cell(A, a, i, B, b, j, w, dA, da, dB, db):
    """Add w * grad of d(A[a, i], B[b, j]) to dA[da, i] and dB[db, j].

    d = tanh(x / 2), x = ||A[a, i] - B[b, j]||; dd/dx = (1 - d^2) / 2 and
    dx/dA = (A - B) / x, defined as 0 when x == 0.
    """
    u = A[a, i]
    v = B[b, j]
    c = u.shape[0]
    acc = cast_like(0.0, u[0])
    for t in range(c):
        diff = u[t] - v[t]
        acc += diff * diff
    if acc > 0:
        x = math.sqrt(acc)
        d = tanh_half(x)
        one = cast_like(1.0, x)
        coef = w * (one - d * d) / (x + x)
        ga = dA[da, i]
        gb = dB[db, j]
        for t in range(c):
            g = coef * (u[t] - v[t])
            ga[t] += g
            gb[t] -= g


@numba.njit(**_FLAGS)
def _distance_chunk(A, ia, B, ib, s, e, out):
    hg = B.shape[1]
    buf = np.empty((2, hg, e - s), dtype=out.dtype)
    drow = np.empty((hg, e - s), dtype=out.dtype)
    out[s:e] = _lane_distances(A, ia[s:e], B, ib[s:e], buf, drow)


@numba.njit(parallel=True, **_FLAGS)
def pair_distances(A, ia, B, ib, out, parallel):
    """out[n] = aligned local distance of (A[ia[n]], B[ib[n]]).

    ``parallel`` False runs in the calling thread (small inputs).
    """
    n = ia.shape[0]
    chunks = (n + PAIR_LANES - 1) // PAIR_LANES
    if parallel:
        for t in prange(chunks):
            _distance_chunk(A, ia, B, ib, t * PAIR_LANES, min((t + 1) * PAIR_LANES, n), out)
    else:
        for t in range(chunks):
            _distance_chunk(A, ia, B, ib, t * PAIR_LANES, min((t + 1) * PAIR_LANES, n), out)


@numba.njit(**_FLAGS)
def _unaligned_one(A, a, B, b):
    total = cast_like(0.0, A[0, 0, 0])
    for i in range(A.shape[1]):
        u = A[a, i]
        v = B[b, i]
        acc = cast_like(0.0, u[0])
        for t in range(u.shape[0]):
            diff = u[t] - v[t]
            acc += diff * diff
        total += tanh_half(math.sqrt(acc))
    return total


@numba.njit(parallel=True, **_FLAGS)
def unaligned_pair_distances(A, ia, B, ib, out, parallel):
    """out[n] = sum_i d(A[ia[n], i], B[ib[n], i]) (no alignment)."""
    if parallel:
        for n in prange(ia.shape[0]):
            out[n] = _unaligned_one(A, ia[n], B, ib[n])
    else:
        for n in range(ia.shape[0]):
            out[n] = _unaligned_one(A, ia[n], B, ib[n])


@numba.njit(**_FLAGS)
def _path_chunk(A, ia, B, ib, s, e, paths):
    table = np.empty((A.shape[1], B.shape[1], e - s), dtype=A.dtype)
    drow = np.empty((B.shape[1], e - s), dtype=A.dtype)
    _lane_table(A, ia[s:e], B, ib[s:e], table, drow)
    for l in range(e - s):
        walk_path(table, l, paths[s + l])


@numba.njit(parallel=True, **_FLAGS)
def pair_paths(A, ia, B, ib, paths, parallel):
    """paths[n] = optimal path [Hf + Hg - 1, 2] of (A[ia[n]], B[ib[n]])."""
    n = ia.shape[0]
    chunks = (n + PAIR_LANES - 1) // PAIR_LANES
    if parallel:
        for t in prange(chunks):
            _path_chunk(A, ia, B, ib, t * PAIR_LANES, min((t + 1) * PAIR_LANES, n), paths)
    else:
        for t in range(chunks):
            _path_chunk(A, ia, B, ib, t * PAIR_LANES, min((t + 1) * PAIR_LANES, n), paths)


@numba.njit(**_FLAGS)
def _gradient_chunk(A, ia, B, ib, s, e, weights, aligned, dA, dB):
    hf = A.shape[1]
    hg = B.shape[1]
    if aligned:
        table = np.empty((hf, hg, e - s), dtype=A.dtype)
        drow = np.empty((hg, e - s), dtype=A.dtype)
        path = np.empty((hf + hg - 1, 2), dtype=np.int64)
        _lane_table(A, ia[s:e], B, ib[s:e], table, drow)
        for l in range(e - s):
            m = s + l
            if weights[m] == 0:
                continue
            walk_path(table, l, path)
            for k in range(path.shape[0]):
                _accumulate_cell(
                    A, ia[m], path[k, 0], B, ib[m], path[k, 1], weights[m], dA, m, dB, m
                )
    else:
        for m in range(s, e):
            if weights[m] == 0:
                continue
            for k in range(hf):
                _accumulate_cell(A, ia[m], k, B, ib[m], k, weights[m], dA, m, dB, m)


@numba.njit(parallel=True, **_FLAGS)
def pair_gradients(A, ia, B, ib, weights, aligned, dA, dB, parallel):
    """Per-pair gradients of sum_n weights[n] * l(A[ia[n]], B[ib[n]]).

    l is the aligned local distance (``aligned``) or the unaligned sum of
    d_ii. dA[n] and dB[n] [*, H, c] receive the gradient with respect to
    A[ia[n]] and B[ib[n]] (zero-initialised by the caller); the caller
    scatters them when indices repeat.
    """
    n = ia.shape[0]
    chunks = (n + PAIR_LANES - 1) // PAIR_LANES
    if parallel:
        for t in prange(chunks):
            e = min((t + 1) * PAIR_LANES, n)
            _gradient_chunk(A, ia, B, ib, t * PAIR_LANES, e, weights, aligned, dA, dB)
    else:
        for t in range(chunks):
            e = min((t + 1) * PAIR_LANES, n)
            _gradient_chunk(A, ia, B, ib, t * PAIR_LANES, e, weights, aligned, dA, dB)


@numba.njit(**_FLAGS)
def _query_against_block(G, r0, qn, q0, gn, hf, hg, ng, buf, drow, out_row, g0):
    """Distances of one query against ``ng`` gallery items from inner products.

    G[r0 + i, j * ng + g] = <part i of the query, part j of gallery item g>,
    qn[q0 + i] and gn[j * ng + g] the squared norms. The squared part
    distance is qn + gn - 2 G, clamped at 0. Writes out_row[g0 + g].
    buf: [2, Hg, ng] and drow: [Hg, ng] scratch.
    """
    zero = cast_like(0.0, qn[0])
    for i in range(hf):
        a = qn[q0 + i]
        grow = G[r0 + i]
        for j in range(hg):
            d = drow[j]
            base = j * ng
            for g in range(ng):
                s = a + gn[base + g] - (grow[base + g] + grow[base + g])
                d[g] = tanh_half(math.sqrt(max(s, zero)))
        dp_row(i, drow, buf[(i + 1) & 1], buf[i & 1])
    last = buf[(hf - 1) & 1, hg - 1]
    for g in range(ng):
        out_row[g0 + g] = last[g]


@numba.njit(**_FLAGS)
def _shortlist_row(X2, qn, Y, ynorm, shortlist, q, out):
    hf = X2.shape[0] // shortlist.shape[0]
    hg = Y.shape[1]
    kk = shortlist.shape[1]
    # gathered gallery parts in part-major order: row j * K + k
    yb = np.empty((hg * kk, Y.shape[2]), dtype=Y.dtype)
    gn = np.empty(hg * kk, dtype=Y.dtype)
    for k in range(kk):
        src = Y[shortlist[q, k]]
        for j in range(hg):
            dst = yb[j * kk + k]
            part = src[j]
            for t in range(part.shape[0]):  # explicit copy: faster than slice assignment
                dst[t] = part[t]
            gn[j * kk + k] = ynorm[shortlist[q, k], j]
    # [Hg * K, c] @ [c, Hf] is the fast orientation for BLAS here
    xt = np.ascontiguousarray(X2[q * hf:(q + 1) * hf].T)
    G = np.ascontiguousarray(np.dot(yb, xt).T)
    buf = np.empty((2, hg, kk), dtype=out.dtype)
    drow = np.empty((hg, kk), dtype=out.dtype)
    _query_against_block(G, 0, qn, q * hf, gn, hf, hg, kk, buf, drow, out[q], 0)


@numba.njit(parallel=True, **_FLAGS)
def shortlist_distances(X2, qn, Y, ynorm, shortlist, out, parallel):
    """out[q, k] = aligned local distance of (query q, Y[shortlist[q, k]]).

    X2: [M * Hf, c] query parts, qn: [M * Hf] their squared norms,
    Y: [N, Hg, c], ynorm: [N, Hg] squared part norms. Per query, the listed
    gallery parts are gathered, one matrix product gives the inner
    products, and the shortest path runs with the K items as lanes.
    """
    if parallel:
        for q in prange(shortlist.shape[0]):
            _shortlist_row(X2, qn, Y, ynorm, shortlist, q, out)
    else:
        for q in range(shortlist.shape[0]):
            _shortlist_row(X2, qn, Y, ynorm, shortlist, q, out)


@numba.njit(parallel=True, **_FLAGS)
def matrix_block(X2, qn, ybt, gn, hf, hg, out, g0, ng, qchunk):
    """Aligned distances of every query against one gallery block.

    X2: [M * Hf, c] query parts (row q * Hf + i = part i of query q) and
    qn: [M * Hf] their squared norms. ybt: [c, Hg * ng] gallery parts of the
    block in part-major order (column j * ng + g = part j of gallery item
    g0 + g) and gn: [Hg * ng] their squared norms. Writes out[q, g0 + g].

    Queries are processed ``qchunk`` at a time per thread: one matrix
    product G = X2[rows] @ ybt gives the inner products of the chunk (a
    [qchunk * Hf, Hg * ng] block that stays in cache), then the shortest
    path runs for all ``ng`` gallery items at once (lanes).
    """
    m = out.shape[0]
    nchunks = (m + qchunk - 1) // qchunk
    for t in prange(nchunks):
        q0 = t * qchunk
        nq = min(qchunk, m - q0)
        G = np.dot(X2[q0 * hf:(q0 + nq) * hf], ybt)
        buf = np.empty((2, hg, ng), dtype=out.dtype)
        drow = np.empty((hg, ng), dtype=out.dtype)
        for q in range(nq):
            _query_against_block(
                G, q * hf, qn, (q0 + q) * hf, gn, hf, hg, ng, buf, drow, out[q0 + q], g0
            )
