"""Numba kernels of the ReID metrics (see ``reference.metrics``).

Gallery order is ascending distance, ties by gallery index. A match's position
is the number of valid gallery items before it, so no gallery is ever sorted:
only each query's matches are.
"""

import numba
import numpy as np
from numba import prange


@numba.njit(cache=True)
def _before(d0, k0, d1, k1):
    """True where item (d0, k0) comes before item (d1, k1): smaller distance, then index."""
    return d0 < d1 or (d0 == d1 and k0 < k1)


@numba.njit(cache=True, parallel=True)
def count_nonfinite(a):
    """Number of NaN or infinite entries of a 2-d array."""
    rows = a.shape[0]
    bad = np.zeros(rows, np.int64)
    for i in prange(rows):
        c = 0
        for j in range(a.shape[1]):
            x = a[i, j]
            c += (x - x) != 0
        bad[i] = c
    return bad.sum()


@numba.njit(cache=True)
def _nonmatch_counts(d, k, qp, g_pids, remove_junk, md, mi, dlast, klast, cnt):
    """Count one gallery item (distance d, index k) into cnt if it is a non-match before the last match."""
    if d > dlast or (d == dlast and k > klast):
        return
    gp = g_pids[k]
    if gp == qp and qp != -1:
        return  # a match, or removed with the query's camera
    if remove_junk and gp == -1:
        return
    # branch-free lower bound: the number of matches before (d, k)
    n = md.shape[0]
    base = 0
    size = n
    while size > 1:
        half = size >> 1
        j = base + half
        ahead = (md[j] < d) | ((md[j] == d) & (mi[j] < k))
        base += half * ahead
        size -= half
    base += (md[base] < d) | ((md[base] == d) & (mi[base] < k))
    cnt[base] += 1


# up to this many matches, non-matches are counted against every match
# threshold in a vectorisable loop; beyond it, by binary search per item
_DENSE_MATCHES = 48


@numba.njit(cache=True)
def _nonmatch_counts_dense(row, qp, g_pids, remove_junk, md, mi, dlast, cnt):
    """Same counts as :func:`_nonmatch_counts` over a whole gallery row.

    The valid non-matches not farther than the last match are gathered once;
    then, for every match p (ascending), the number of them that come before
    it (smaller distance, or equal distance and smaller index) is counted in
    a branch-free loop the compiler vectorises. ``cnt`` receives per-interval
    counts, as from the binary-search path.
    """
    ng = row.shape[0]
    buf_d = np.empty(ng, row.dtype)
    buf_k = np.empty(ng, np.int64)
    m = 0
    for k in range(ng):
        d = row[k]
        if d <= dlast:
            gp = g_pids[k]
            if gp == qp and qp != -1:
                continue
            if remove_junk and gp == -1:
                continue
            buf_d[m] = d
            buf_k[m] = k
            m += 1
    prev = 0
    for p in range(md.shape[0]):
        t = md[p]
        lt = 0
        le = 0
        for j in range(m):
            x = buf_d[j]
            lt += x < t
            le += x <= t
        if le != lt:
            # equal distances: those with a smaller gallery index come first
            tk = mi[p]
            for j in range(m):
                if buf_d[j] == t and buf_k[j] < tk:
                    lt += 1
        cnt[p] = lt - prev
        prev = lt


@numba.njit(cache=True, parallel=True)
def rank_matches(distmat, q_pids, g_pids, q_camids, g_camids, remove_junk,
                 remove_same_camera, use_lists, list_ptr, list_idx,
                 q_slot, pid_ptr, pid_items, first_pos, ap, inp):
    """Per query: the position of the first match, AP and INP.

    Args:
        distmat: [Q, G] distances.
        q_pids, g_pids, q_camids, g_camids: int64 labels.
        remove_junk: drop gallery items with pid -1.
        remove_same_camera: drop gallery items with the query's pid and camera.
        use_lists: score each query over ``list_idx[list_ptr[i]:list_ptr[i+1]]``
            instead of the whole gallery.
        q_slot, pid_ptr, pid_items: without lists, the gallery items with query
            i's pid are ``pid_items[pid_ptr[q_slot[i]]:pid_ptr[q_slot[i]+1]]``
            (ascending; q_slot -1: none).
        first_pos: [Q] int64 output (-1 for queries without a match).
        ap, inp: [Q] float64 outputs (NaN for queries without a match).

    An item matches when its pid equals the query's and is not -1.
    """
    nq, ng = distmat.shape
    for i in prange(nq):
        qp = q_pids[i]
        qc = q_camids[i]
        # the query's matches, ascending gallery index
        if use_lists:
            start = list_ptr[i]
            count = list_ptr[i + 1] - start
            cand = np.sort(list_idx[start:start + count])
        else:
            slot = q_slot[i]
            if slot < 0:
                cand = pid_items[0:0]
            else:
                cand = pid_items[pid_ptr[slot]:pid_ptr[slot + 1]]
        mi = np.empty(cand.shape[0], np.int64)
        n = 0
        for k in cand:
            if g_pids[k] == qp and qp != -1:
                if not (remove_same_camera and g_camids[k] == qc):
                    mi[n] = k
                    n += 1
        if n == 0:
            first_pos[i] = -1
            ap[i] = np.nan
            inp[i] = np.nan
            continue
        mi = mi[:n]
        md = np.empty(n, distmat.dtype)
        for m in range(n):
            md[m] = distmat[i, mi[m]]
        order = np.argsort(md, kind="mergesort")
        md = md[order]
        mi = mi[order]
        dlast = md[n - 1]
        klast = mi[n - 1]
        # cnt[p]: non-matches that come before match p but after match p - 1
        cnt = np.zeros(n + 1, np.int64)
        if use_lists:
            for t in range(count):
                k = list_idx[start + t]
                _nonmatch_counts(distmat[i, k], k, qp, g_pids, remove_junk, md, mi, dlast, klast, cnt)
        elif n <= _DENSE_MATCHES:
            _nonmatch_counts_dense(distmat[i], qp, g_pids, remove_junk, md, mi, dlast, cnt)
        else:
            for k in range(ng):
                d = distmat[i, k]
                if d <= dlast:
                    _nonmatch_counts(d, k, qp, g_pids, remove_junk, md, mi, dlast, klast, cnt)
        before = 0
        total = 0.0
        pos = 0
        for p in range(n):
            before += cnt[p]
            pos = p + before
            if p == 0:
                first_pos[i] = pos
            total += (p + 1.0) / (pos + 1.0)
        ap[i] = total / n
        inp[i] = n / (pos + 1.0)


@numba.njit(cache=True, parallel=True)
def single_shot_positions(distmat, q_id, q_camids, g_camids, id_ptr, id_items, draws, pos_out):
    """Repetitions of the single-shot protocol (one gallery image per identity).

    Args:
        distmat: [Q, G] distances.
        q_id: [Q] int64 index of each query's pid among the gallery identities
            (-1 when the pid has no gallery images).
        q_camids, g_camids: int64 cameras.
        id_ptr, id_items: identity p owns gallery items
            ``id_items[id_ptr[p]:id_ptr[p+1]]`` (ascending).
        draws: [R, Q, P] uniform [0, 1) numbers; in repetition r, identity p's
            image for query i is the ``floor(draws[r, i, p] * n)``-th (0-based,
            gallery order) of its n images from cameras other than the query's.
        pos_out: [R, Q] int64 output, the position of the query's match in the
            reduced gallery (-1 when the query's identity has no eligible image).
    """
    reps = draws.shape[0]
    nq = distmat.shape[0]
    num_ids = id_ptr.shape[0] - 1
    for task in prange(reps * nq):
        r = task // nq
        i = task - r * nq
        qc = q_camids[i]
        chosen = np.full(num_ids, -1, np.int64)
        for p in range(num_ids):
            eligible = 0
            for s in range(id_ptr[p], id_ptr[p + 1]):
                if g_camids[id_items[s]] != qc:
                    eligible += 1
            if eligible == 0:
                continue
            target = int(np.floor(draws[r, i, p] * eligible))
            if target >= eligible:
                target = eligible - 1
            seen = 0
            for s in range(id_ptr[p], id_ptr[p + 1]):
                if g_camids[id_items[s]] != qc:
                    if seen == target:
                        chosen[p] = id_items[s]
                        break
                    seen += 1
        own = q_id[i]
        if own < 0 or chosen[own] < 0:
            pos_out[r, i] = -1
            continue
        km = chosen[own]
        dm = distmat[i, km]
        pos = 0
        for p in range(num_ids):
            k = chosen[p]
            if p != own and k >= 0 and _before(distmat[i, k], k, dm, km):
                pos += 1
        pos_out[r, i] = pos
