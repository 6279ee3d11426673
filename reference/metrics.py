"""ReID metrics (CMC, mAP, mINP) under the Market-1501, CUHK03 and CUHK-SYSU protocols.

For each query the valid gallery is ordered by ascending distance, ties by
gallery index. A match's position is the number of valid gallery items placed
before it, found with one pass over the gallery and a binary search into the
query's sorted matches; the gallery itself is never sorted.
"""

import numbers

import numpy as np

from reference import _metric_kernels as K
from reference._validate import as_float_array, as_int_array, check_length
from reid_common import PROTOCOLS, canonical_protocol


def _as_distmat(value):
    """distmat as a C-contiguous 2-d float32/float64 array, checked finite in one parallel pass."""
    arr = np.asarray(value)
    if arr.dtype in (np.float32, np.float64):
        arr = np.ascontiguousarray(arr)
        if arr.ndim != 2:
            raise ValueError(f"distmat: expected a 2-d array, got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"distmat: expected a non-empty array, got shape {arr.shape}")
        bad = int(K.count_nonfinite(arr))
        if bad:
            raise ValueError(f"distmat: contains {bad} NaN or infinite value(s)")
        return arr
    return as_float_array("distmat", arr, ndim=2)


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value}")
    return int(value)


def _gallery_lists(gallery_lists, num_query, num_gallery):
    """Validate per-query gallery lists; return CSR arrays (ptr [Q + 1], idx)."""
    try:
        lists = list(gallery_lists)
    except TypeError:
        raise TypeError(
            "gallery_lists: expected a sequence of integer arrays, one per query"
        ) from None
    check_length("gallery_lists", lists, num_query, "one list per query")
    arrays = []
    for i, lst in enumerate(lists):
        arr = as_int_array(f"gallery_lists[{i}]", lst, ndim=1, allow_empty=True)
        if arr.size and (arr.min() < 0 or arr.max() >= num_gallery):
            raise ValueError(
                f"gallery_lists[{i}]: gallery indices must lie in [0, {num_gallery}), "
                f"got values in [{arr.min()}, {arr.max()}]"
            )
        if np.unique(arr).size != arr.size:
            raise ValueError(f"gallery_lists[{i}]: contains repeated gallery indices")
        arrays.append(arr)
    ptr = np.zeros(num_query + 1, np.int64)
    np.cumsum([a.size for a in arrays], out=ptr[1:])
    idx = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
    return ptr, np.ascontiguousarray(idx, dtype=np.int64)


def _pid_index(q_pids, g_pids):
    """Gallery items grouped by pid: (q_slot [Q], pid_ptr, pid_items ascending per pid).

    ``q_slot[i]`` is the group of query i's pid, -1 when absent or when the pid is -1.
    """
    order = np.argsort(g_pids, kind="stable")
    pids, counts = np.unique(g_pids[order], return_counts=True)
    pid_ptr = np.zeros(pids.size + 1, np.int64)
    np.cumsum(counts, out=pid_ptr[1:])
    slot = np.searchsorted(pids, q_pids)
    found = (slot < pids.size) & (pids[np.minimum(slot, pids.size - 1)] == q_pids)
    q_slot = np.where(found & (q_pids != -1), slot, -1).astype(np.int64)
    return q_slot, pid_ptr, np.ascontiguousarray(order, dtype=np.int64)


def _cmc_from_positions(positions, max_rank):
    """Mean over the rows of 1[position <= r], r < max_rank; positions >= 0."""
    hist = np.bincount(np.minimum(positions, max_rank), minlength=max_rank + 1)
    return np.cumsum(hist[:max_rank]) / float(positions.size)


def _single_shot_cmc(distmat, q_pids, g_pids, q_camids, g_camids, valid, max_rank, repeats, seed):
    """CMC of the CUHK03 single-shot protocol, averaged over repetitions and valid queries.

    Random draws: ``rng = np.random.default_rng(seed)``; identities are the
    distinct gallery pids other than -1 in ascending order (P of them); for each
    repetition in turn ``U = rng.random((Q, P))`` and query i gets, for identity
    p, the ``floor(U[i, p] * n)``-th of p's n gallery images (gallery order)
    whose camera differs from the query's.
    """
    keep = np.flatnonzero(g_pids != -1)
    ids = np.unique(g_pids[keep])
    order = keep[np.argsort(g_pids[keep], kind="stable")]
    id_ptr = np.zeros(ids.size + 1, np.int64)
    np.cumsum(np.bincount(np.searchsorted(ids, g_pids[order]), minlength=ids.size), out=id_ptr[1:])
    q_id = np.searchsorted(ids, q_pids)
    q_id = np.where((q_id < ids.size) & (ids[np.minimum(q_id, ids.size - 1)] == q_pids), q_id, -1)
    q_id[q_pids == -1] = -1
    rng = np.random.default_rng(seed)
    nq = distmat.shape[0]
    positions = np.empty((repeats, nq), np.int64)
    # repetitions in batches of at most ~32 MB of draws; the stream is the same
    batch = max(1, min(repeats, (4 << 20) // max(1, nq * ids.size)))
    for r0 in range(0, repeats, batch):
        r1 = min(r0 + batch, repeats)
        draws = rng.random((r1 - r0, nq, ids.size))
        K.single_shot_positions(distmat, q_id.astype(np.int64), q_camids, g_camids,
                                id_ptr, order.astype(np.int64), draws, positions[r0:r1])
    positions = positions[:, valid]
    if np.any(positions < 0):  # cannot happen: validity means an eligible own image
        raise RuntimeError("single-shot protocol: a valid query lost its match")
    return _cmc_from_positions(positions.ravel(), max_rank)


def evaluate(distmat, q_pids, g_pids, q_camids, g_camids, protocol="market1501",
             max_rank=50, gallery_lists=None, repeats=10, seed=0):
    """CMC, mAP and mINP of a query-gallery distance matrix.

    Protocols:
        ``market1501`` (aliases ``duke``, ``msmt17``): per query, gallery items
        with the query's pid and camera and items with pid -1 are removed; pid
        0 stays as a negative.
        ``cuhk03``: the single-shot CMC: for each repetition and query, one
        gallery image per identity drawn uniformly among its images from
        cameras other than the query's (pid -1 items never drawn); the CMC is
        averaged over repetitions and queries. AP, INP, mAP and mINP are those
        of the market1501 protocol on the full gallery.
        ``cuhk-sysu``: each query is scored over its own gallery list, with no
        removal at all.

    A gallery item matches a query when their pids are equal and not -1.
    Queries without a match are skipped: their AP and INP are NaN and the
    means are over the other (valid) queries. Ties in distance are ordered by
    gallery index.

    Args:
        distmat: [Q, G] distances (float32 or float64, finite).
        q_pids, g_pids: [Q], [G] integer identities.
        q_camids, g_camids: [Q], [G] integer cameras.
        protocol: one of ``PROTOCOLS`` or an alias (case-insensitive).
        max_rank: length of the CMC curve; padded past the gallery size.
        gallery_lists: for ``cuhk-sysu`` only: Q integer arrays of gallery
            indices.
        repeats: repetitions of the ``cuhk03`` single-shot draw.
        seed: seed of the ``cuhk03`` draws (``numpy.random.default_rng``).

    Returns:
        dict with ``cmc`` [max_rank] float64 (rank-k is ``cmc[k - 1]``),
        ``mAP`` and ``mINP`` floats, ``AP`` and ``INP`` [Q] float64 (NaN for
        skipped queries), ``first_match`` [Q] int64 (0-based rank of each
        query's first true match among its valid gallery items, -1 when it
        has none; the market1501 and cuhk-sysu rank-1 is ``first_match == 0``)
        and ``num_valid_queries`` int.

    Example:
        >>> import numpy as np
        >>> d = np.array([[0.1, 0.5, 0.3]], np.float32)
        >>> r = evaluate(d, [1], [1, 2, 1], [0], [1, 1, 1], max_rank=3)
        >>> r["cmc"].tolist(), round(r["mAP"], 4)
        ([1.0, 1.0, 1.0], 1.0)
    """
    name = canonical_protocol(protocol)
    distmat = _as_distmat(distmat)
    nq, ng = distmat.shape
    q_pids = as_int_array("q_pids", q_pids)
    g_pids = as_int_array("g_pids", g_pids)
    q_camids = as_int_array("q_camids", q_camids)
    g_camids = as_int_array("g_camids", g_camids)
    check_length("q_pids", q_pids, nq, "rows of distmat")
    check_length("q_camids", q_camids, nq, "rows of distmat")
    check_length("g_pids", g_pids, ng, "columns of distmat")
    check_length("g_camids", g_camids, ng, "columns of distmat")
    max_rank = _positive_int("max_rank", max_rank)
    repeats = _positive_int("repeats", repeats)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise TypeError(f"seed: expected a non-negative integer, got {seed!r}")
    if name == "cuhk-sysu":
        if gallery_lists is None:
            raise ValueError("gallery_lists: required by protocol 'cuhk-sysu' (one list per query)")
        list_ptr, list_idx = _gallery_lists(gallery_lists, nq, ng)
    elif gallery_lists is not None:
        raise ValueError(f"gallery_lists: only used by protocol 'cuhk-sysu', not {name!r}")
    else:
        list_ptr, list_idx = np.zeros(1, np.int64), np.zeros(0, np.int64)

    first_pos = np.empty(nq, np.int64)
    ap = np.empty(nq, np.float64)
    inp = np.empty(nq, np.float64)
    sysu = name == "cuhk-sysu"
    q_slot, pid_ptr, pid_items = _pid_index(q_pids, g_pids)
    K.rank_matches(distmat, q_pids, g_pids, q_camids, g_camids, not sysu, not sysu, sysu,
                   list_ptr, list_idx, q_slot, pid_ptr, pid_items, first_pos, ap, inp)
    valid = first_pos >= 0
    num_valid = int(np.count_nonzero(valid))
    if num_valid == 0:
        raise ValueError(
            "q_pids: no query has a matching gallery item under protocol "
            f"{name!r}; nothing to evaluate"
        )
    if name == "cuhk03":
        cmc = _single_shot_cmc(distmat, q_pids, g_pids, q_camids, g_camids, valid,
                               max_rank, repeats, int(seed))
    else:
        cmc = _cmc_from_positions(first_pos[valid], max_rank)
    return {
        "cmc": cmc,
        "mAP": float(np.mean(ap[valid])),
        "mINP": float(np.mean(inp[valid])),
        "AP": ap,
        "INP": inp,
        "first_match": first_pos,
        "num_valid_queries": num_valid,
    }
