"""The report's numbers against a hand computation and independent oracles."""

import json
import math
import sqlite3

import numpy as np
import pytest

from human_study import Store, binomial_ci, format_report, study_report, write_report_plot
from reference import evaluate, read_dump
from tests.reference.rerank_oracle import dense_re_rank
from tests.scoring_oracles import euclidean64


def exact_ci(k, n, level=0.95):
    """Clopper-Pearson by bisection on the binomial tails (math.comb, float64)."""
    alpha = 1 - level

    def tail_ge(p):  # P(X >= k)
        return sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(k, n + 1))

    def tail_le(p):  # P(X <= k)
        return sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(0, k + 1))

    def solve(f, increasing):
        lo, hi = 0.0, 1.0
        for _ in range(200):
            mid = (lo + hi) / 2
            if (f(mid) < alpha / 2) == increasing:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    low = 0.0 if k == 0 else solve(tail_ge, True)
    high = 1.0 if k == n else solve(tail_le, False)
    return low, high


@pytest.mark.parametrize("k, n", [(0, 5), (3, 6), (5, 6), (6, 6), (47, 50), (1, 1)])
def test_binomial_ci_against_the_exact_tails(k, n):
    got = binomial_ci(k, n)
    want = exact_ci(k, n)
    assert got == pytest.approx(list(want), abs=1e-9)
    assert got[0] <= k / n <= got[1]


def _answer(store, name, correct_positions, total_answers):
    """Answer the first ``total_answers`` queries; correct at the given study positions."""
    aid = store.annotator(store.add_annotator(name)[1])[0]
    con = sqlite3.connect(store.path)
    queries = [q for (q,) in con.execute("SELECT id FROM queries ORDER BY position")]
    for pos, qid in enumerate(queries[:total_answers]):
        want = pos in correct_positions
        cid = con.execute("SELECT id FROM candidates WHERE query_id = ? AND is_match = ? "
                          "ORDER BY shown_position LIMIT 1", (qid, int(want))).fetchone()[0]
        store.answer(aid, qid, cid)
    con.close()


def test_report_against_a_hand_computation(small_study, population_dump, tmp_path):
    store = Store(small_study)
    _answer(store, "alice", {0, 1, 2, 3, 4}, 6)   # 5 of 6
    _answer(store, "bob", {0, 1, 2, 3}, 4)        # 4 of 4, unfinished
    _answer(store, "carol", {1, 3, 5}, 6)         # 3 of 6
    store.add_annotator("dave")                   # nothing yet
    store.close()
    rep = study_report(small_study)
    got = [(a.name, a.answered, a.correct, a.rank1) for a in rep.annotators]
    assert got == [("bob", 4, 4, 1.0), ("alice", 6, 5, 5 / 6), ("carol", 6, 3, 0.5),
                   ("dave", 0, 0, None)]
    assert rep.annotators[1].ci95 == pytest.approx(list(exact_ci(5, 6)), abs=1e-9)
    assert rep.human.name == "alice"  # the best annotator who answered every query

    # the model, by brute force: float64 Euclidean distances, market1501 removals
    dump = read_dump(population_dump[0])
    dist = euclidean64(dump.query["global"], dump.gallery["global"])
    rr = dense_re_rank(dist, euclidean64(dump.query["global"], dump.query["global"]),
                       euclidean64(dump.gallery["global"], dump.gallery["global"]))
    con = sqlite3.connect(small_study)
    qs = con.execute("SELECT id, query_index FROM queries ORDER BY position").fetchall()
    g_pid, g_cam = dump.gallery["pid"], dump.gallery["camid"]
    full, full_rr, in_c, in_c_rr = [], [], [], []
    for qid, q in qs:
        q_pid, q_cam = dump.query["pid"][q], dump.query["camid"][q]
        valid = [g for g in range(len(g_pid))
                 if g_pid[g] != -1 and not (g_pid[g] == q_pid and g_cam[g] == q_cam)]
        for d, out in ((dist, full), (rr, full_rr)):
            best = min(valid, key=lambda g: (d[q, g], g))
            out.append(g_pid[best] == q_pid)
        cands = [g for (g,) in con.execute(
            "SELECT gallery_index FROM candidates WHERE query_id = ?", (qid,))]
        for d, out in ((dist, in_c), (rr, in_c_rr)):
            best = min(cands, key=lambda g: (d[q, g], g))
            out.append(g_pid[best] == q_pid)
    con.close()
    m = rep.model
    assert m["queries"] == 6
    assert m["rank1_full_gallery"] == pytest.approx(np.mean(full))
    assert m["rank1_full_gallery_rerank"] == pytest.approx(np.mean(full_rr))
    assert m["rank1_candidates"] == pytest.approx(np.mean(in_c))
    assert m["rank1_candidates_rerank"] == pytest.approx(np.mean(in_c_rr))
    # the full-gallery number is evaluate()'s rank-1 on the same queries
    idx = [q for _, q in qs]
    ev = evaluate(dist[idx], dump.query["pid"][idx], g_pid, dump.query["camid"][idx], g_cam,
                  protocol="market1501", max_rank=1)
    assert m["rank1_full_gallery"] == pytest.approx(ev["cmc"][0])

    d = rep.to_dict()
    assert [a["name"] for a in d["annotators"]] == ["bob", "alice", "carol", "dave"]
    assert set(d["annotators"][0]) == {"name", "answered", "correct", "rank1", "ci95"}
    assert d["human_performance"]["name"] == "alice"
    json.dumps(d)  # plain JSON values
    text = format_report(rep)
    assert "alice" in text and "83.3%" in text and "(unfinished)" in text
    png = tmp_path / "t6.png"
    write_report_plot(rep, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
