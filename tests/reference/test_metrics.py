"""reference.metrics against sort-everything oracles written from the definitions."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.metrics import PROTOCOLS, evaluate


def oracle_query(dist_row, cand, g_pids, q_pid, max_rank):
    """Literal definitions over the candidate gallery items (any order)."""
    cand = np.asarray(cand, np.int64)
    order = cand[np.lexsort((cand, dist_row[cand]))]  # distance, then gallery index
    match = (g_pids[order] == q_pid) & (q_pid != -1)
    n = int(match.sum())
    if n == 0:
        return None
    cmc = np.array([1.0 if match[: r + 1].any() else 0.0 for r in range(max_rank)])
    if max_rank > match.size:  # padded with its last value
        cmc[match.size:] = cmc[match.size - 1]
    positions = np.flatnonzero(match)
    ap = np.mean([(k + 1) / (p + 1) for k, p in enumerate(positions)])
    inp = n / (positions[-1] + 1)
    return cmc, ap, inp


def oracle(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, lists=None):
    nq, ng = distmat.shape
    cmcs, aps, inps = [], np.full(nq, np.nan), np.full(nq, np.nan)
    for i in range(nq):
        if lists is None:
            keep = (g_pids != -1) & ~((g_pids == q_pids[i]) & (g_camids == q_camids[i]))
            cand = np.flatnonzero(keep)
        else:
            cand = lists[i]
        res = oracle_query(distmat[i], cand, g_pids, q_pids[i], max_rank)
        if res is not None:
            cmcs.append(res[0])
            aps[i], inps[i] = res[1], res[2]
    return cmcs, aps, inps


@st.composite
def problems(draw, float_dist=None):
    nq = draw(st.integers(1, 12))
    ng = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**31 - 1))
    num_ids = draw(st.integers(1, 5))
    rng = np.random.default_rng(seed)
    tied = draw(st.booleans()) if float_dist is None else not float_dist
    if tied:
        distmat = rng.integers(0, 4, (nq, ng)).astype(np.float32)
    else:
        distmat = rng.random((nq, ng))
    q_pids = rng.integers(-1, num_ids, nq)  # -1 junk, 0 distractor-like
    g_pids = rng.integers(-1, num_ids, ng)
    q_camids = rng.integers(0, 3, nq)
    g_camids = rng.integers(0, 3, ng)
    max_rank = draw(st.integers(1, 60))
    return distmat, q_pids, g_pids, q_camids, g_camids, max_rank


def check_against(result, cmcs, aps, inps):
    if not cmcs:
        raise AssertionError("oracle found no valid query")
    assert result["num_valid_queries"] == len(cmcs)
    np.testing.assert_allclose(result["cmc"], np.mean(cmcs, axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(result["AP"], aps, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result["INP"], inps, rtol=0, atol=1e-12)
    assert result["mAP"] == pytest.approx(np.nanmean(aps), abs=1e-12)
    assert result["mINP"] == pytest.approx(np.nanmean(inps), abs=1e-12)


@given(problems(), st.sampled_from(["market1501", "duke", "msmt17", "Market1501"]))
def test_market_protocol(problem, protocol):
    distmat, q_pids, g_pids, q_camids, g_camids, max_rank = problem
    cmcs, aps, inps = oracle(distmat, q_pids, g_pids, q_camids, g_camids, max_rank)
    if not cmcs:
        with pytest.raises(ValueError, match="no query"):
            evaluate(distmat, q_pids, g_pids, q_camids, g_camids, protocol, max_rank)
        return
    result = evaluate(distmat, q_pids, g_pids, q_camids, g_camids, protocol, max_rank)
    assert result["cmc"].shape == (max_rank,)
    check_against(result, cmcs, aps, inps)


@given(problems(), st.integers(0, 2**31 - 1))
def test_cuhk_sysu_lists(problem, seed):
    distmat, q_pids, g_pids, q_camids, g_camids, max_rank = problem
    rng = np.random.default_rng(seed)
    ng = distmat.shape[1]
    lists = [rng.permutation(ng)[: rng.integers(0, ng + 1)] for _ in range(len(q_pids))]
    cmcs, aps, inps = oracle(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, lists)
    if not cmcs:
        with pytest.raises(ValueError, match="no query"):
            evaluate(distmat, q_pids, g_pids, q_camids, g_camids, "cuhk-sysu", max_rank,
                     gallery_lists=lists)
        return
    result = evaluate(distmat, q_pids, g_pids, q_camids, g_camids, "cuhk-sysu", max_rank,
                      gallery_lists=lists)
    check_against(result, cmcs, aps, inps)


def single_shot_oracle(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, repeats, seed):
    """Brute force with the documented draws of reference.metrics (cuhk03)."""
    ids = np.unique(g_pids[g_pids != -1])
    rng = np.random.default_rng(seed)
    nq = len(q_pids)
    curves = [[] for _ in range(nq)]
    for _ in range(repeats):
        u = rng.random((nq, ids.size))
        for i in range(nq):
            chosen = []
            for p, pid in enumerate(ids):
                eligible = [k for k in range(len(g_pids))
                            if g_pids[k] == pid and g_camids[k] != q_camids[i]]
                if eligible:
                    chosen.append(eligible[int(np.floor(u[i, p] * len(eligible)))])
            res = oracle_query(distmat[i], chosen, g_pids, q_pids[i], max_rank)
            if res is not None:
                curves[i].append(res[0])
    return [np.mean(c, axis=0) for c in curves if c]


@given(problems(), st.integers(1, 4), st.integers(0, 1000))
def test_cuhk03_single_shot(problem, repeats, seed):
    distmat, q_pids, g_pids, q_camids, g_camids, max_rank = problem
    cmcs, aps, inps = oracle(distmat, q_pids, g_pids, q_camids, g_camids, max_rank)
    if not cmcs:
        return
    result = evaluate(distmat, q_pids, g_pids, q_camids, g_camids, "cuhk03", max_rank,
                      repeats=repeats, seed=seed)
    want = single_shot_oracle(distmat, q_pids, g_pids, q_camids, g_camids, max_rank,
                              repeats, seed)
    np.testing.assert_allclose(result["cmc"], np.mean(want, axis=0), rtol=0, atol=1e-12)
    # AP / INP / mAP / mINP: the market1501 protocol on the full gallery
    market = evaluate(distmat, q_pids, g_pids, q_camids, g_camids, "market1501", max_rank)
    for key in ("mAP", "mINP", "num_valid_queries"):
        assert result[key] == market[key]


def test_cuhk03_statistics_and_seed():
    # own identity: two images on camera 1 (distances 0.1 and 0.9); another
    # identity: one image at 0.5. Rank-1 is hit with probability 1/2.
    distmat = np.array([[0.1, 0.9, 0.5]])
    args = (distmat, [7], [7, 7, 8], [0], [1, 1, 1], "cuhk03", 3)
    result = evaluate(*args, repeats=4000, seed=3)
    assert abs(result["cmc"][0] - 0.5) < 0.03
    assert result["cmc"][1] == 1.0
    again = evaluate(*args, repeats=4000, seed=3)
    np.testing.assert_array_equal(result["cmc"], again["cmc"])
    rank1 = {evaluate(*args, repeats=4000, seed=s)["cmc"][0] for s in range(4)}
    assert len(rank1) > 1  # the seed changes the draws
    # images on the query's own camera are never drawn
    same_cam = evaluate(distmat, [7], [7, 7, 8], [0], [0, 1, 1], "cuhk03", 3, repeats=50)
    assert same_cam["cmc"][0] == 1.0 - (distmat[0, 1] > 0.5)


def test_known_values():
    # gallery order: g1 (0.1, pid 2), g0 (0.2, pid 1), g3 (0.3, pid 1, same cam: removed),
    # g2 (0.4, pid 1), g4 (0.5, pid -1: removed)
    distmat = np.array([[0.2, 0.1, 0.4, 0.3, 0.5]], np.float32)
    r = evaluate(distmat, [1], [1, 2, 1, 1, -1], [0], [1, 1, 2, 0, 1], max_rank=5)
    np.testing.assert_array_equal(r["cmc"], [0, 1, 1, 1, 1])
    assert r["mAP"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert r["mINP"] == pytest.approx(2 / 3)
    # ties: equal distances ordered by gallery index
    tie = evaluate(np.zeros((1, 3)), [1], [2, 1, 2], [0], [1, 1, 1], max_rank=2)
    np.testing.assert_array_equal(tie["cmc"], [0, 1])


def test_validation():
    d = np.zeros((2, 3))
    ok = dict(q_pids=[1, 2], g_pids=[1, 2, 3], q_camids=[0, 0], g_camids=[1, 1, 1])
    cases = [
        ({"protocol": "viper"}, ValueError, "protocol"),
        ({"protocol": 3}, TypeError, "protocol"),
        ({"q_pids": [1]}, ValueError, "q_pids"),
        ({"g_camids": [1, 1]}, ValueError, "g_camids"),
        ({"q_pids": [1.5, 2]}, TypeError, "q_pids"),
        ({"max_rank": 0}, ValueError, "max_rank"),
        ({"repeats": 0, "protocol": "cuhk03"}, ValueError, "repeats"),
        ({"seed": -1}, TypeError, "seed"),
        ({"protocol": "cuhk-sysu"}, ValueError, "gallery_lists"),
        ({"gallery_lists": [[0], [1]]}, ValueError, "gallery_lists"),
        ({"protocol": "cuhk-sysu", "gallery_lists": [[0]]}, ValueError, "gallery_lists"),
        ({"protocol": "cuhk-sysu", "gallery_lists": [[0], [3]]}, ValueError, r"gallery_lists\[1\]"),
        ({"protocol": "cuhk-sysu", "gallery_lists": [[0, 0], [1]]}, ValueError, r"gallery_lists\[0\]"),
        ({"q_pids": [5, 6]}, ValueError, "no query"),
    ]
    for change, err, name in cases:
        kwargs = {**ok, **change}
        with pytest.raises(err, match=name):
            evaluate(d, **kwargs)
    bad = d.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="distmat"):
        evaluate(bad, **ok)
    with pytest.raises(ValueError, match="distmat"):
        evaluate(np.zeros(3), **ok)
    assert PROTOCOLS == ("market1501", "cuhk03", "cuhk-sysu")


@pytest.mark.parametrize("tied", [False, True])
def test_market_protocol_many_matches(tied):
    # Queries with more matches than the vectorised counting handles go through
    # the per-item binary search; both paths must agree with the oracle.
    from reference import _metric_kernels

    rng = np.random.default_rng(7 + tied)
    nq, ng = 6, 400
    distmat = (rng.integers(0, 6, (nq, ng)).astype(np.float32) if tied
               else rng.random((nq, ng)).astype(np.float32))
    q_pids = np.array([1, 1, 2, 2, 0, 1])
    g_pids = rng.choice([-1, 0, 1, 2], ng, p=[0.1, 0.1, 0.5, 0.3])
    q_camids = rng.integers(0, 3, nq)
    g_camids = rng.integers(0, 3, ng)
    matches = [int(((g_pids == p) & (g_camids != c)).sum()) for p, c in zip(q_pids, q_camids)]
    assert max(matches) > _metric_kernels._DENSE_MATCHES  # the binary-search path runs
    assert min(m for m in matches if m) <= _metric_kernels._DENSE_MATCHES  # and the dense one
    cmcs, aps, inps = oracle(distmat, q_pids, g_pids, q_camids, g_camids, 50)
    result = evaluate(distmat, q_pids, g_pids, q_camids, g_camids, "market1501", 50)
    check_against(result, cmcs, aps, inps)


def test_first_match_gives_the_rank1_of_the_cmc():
    rng = np.random.default_rng(8)
    q_pid, g_pid = rng.integers(0, 6, 30), rng.integers(0, 6, 90)
    q_cam, g_cam = rng.integers(0, 3, 30), rng.integers(0, 3, 90)
    d = rng.random((30, 90))
    res = evaluate(d, q_pid, g_pid, q_cam, g_cam, protocol="market1501", max_rank=5)
    first = res["first_match"]
    for q in range(30):  # brute force: rank of the first valid true match
        keep = ~((g_pid == q_pid[q]) & (g_cam == q_cam[q]))
        order = np.argsort(d[q][keep], kind="stable")
        hits = np.flatnonzero(g_pid[keep][order] == q_pid[q])
        assert first[q] == (hits[0] if len(hits) else -1)
    valid = first >= 0
    assert res["cmc"][0] == pytest.approx(np.mean(first[valid] == 0))
