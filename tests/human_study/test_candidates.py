"""The paper's candidate rule against a brute-force transcription of section 5."""

import sqlite3

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from human_study import candidate_positions, create_study, default_candidates, display_order

from .conftest import build_dump, random_population


def oracle_positions(is_match, k):
    """Section 5 step by step: the top k; each missing true match, best first, takes the
    place of the lowest-ranked non-matching candidate still in the set."""
    ranked = list(range(len(is_match)))
    chosen = ranked[:k]
    for r in ranked[k:]:
        if not is_match[r]:
            continue
        non = [c for c in chosen if not is_match[c]]
        if not non:
            break
        chosen.remove(max(non))
        chosen.append(r)
    return sorted(chosen)


def oracle_query(dist_row, q_pid, q_cam, g_pids, g_cams, k):
    """Candidates of one query from raw labels (market1501 rules), float64 distances.

    Returns {gallery index: (model rank, is_match)}.
    """
    valid = [g for g in range(len(g_pids))
             if g_pids[g] != -1 and not (g_pids[g] == q_pid and g_cams[g] == q_cam)]
    ranked = sorted(valid, key=lambda g: (float(dist_row[g]), g))
    match = [g_pids[g] == q_pid for g in ranked]
    return {ranked[p]: (p + 1, match[p]) for p in oracle_positions(match, k)}


def test_a_match_inside_the_top_k_changes_nothing():
    assert candidate_positions([False, True, False, False, False], 3).tolist() == [0, 1, 2]


def test_a_match_outside_the_top_k_replaces_the_kth():
    # the CUHK03 case of the paper: one true match, not in the top 10
    is_match = [False] * 30
    is_match[17] = True
    assert candidate_positions(is_match, 10).tolist() == list(range(9)) + [17]


def test_several_matches_replace_the_lowest_ranked_non_matches():
    # matches at 1 (inside), 4 and 7 (outside the top 4): non-matches 3 and 2 go, in that order
    is_match = [False, True, False, False, True, False, False, True]
    assert candidate_positions(is_match, 4).tolist() == [0, 1, 4, 7]


def test_more_matches_than_k_keeps_the_best_ranked_matches():
    assert candidate_positions([False, True, True, False, True, True], 2).tolist() == [1, 2]


def test_a_gallery_shorter_than_k_is_shown_whole():
    assert candidate_positions([True, False, False], 10).tolist() == [0, 1, 2]


@given(st.lists(st.booleans(), min_size=1, max_size=60), st.integers(1, 70))
def test_rule_matches_the_step_by_step_oracle(is_match, k):
    got = candidate_positions(is_match, k).tolist()
    assert got == oracle_positions(is_match, k)
    # and the closed form: every match (up to k), then the best-ranked non-matches
    matches = [i for i, m in enumerate(is_match) if m]
    non = [i for i, m in enumerate(is_match) if not m]
    size = min(k, len(is_match))
    keep_m = matches[:size]
    assert got == sorted(keep_m + non[: size - len(keep_m)])


def test_paper_default_k_per_protocol():
    assert default_candidates("cuhk03") == 10
    assert default_candidates("market1501") == 50
    assert default_candidates("msmt17") == 50


def _db_candidates(study):
    con = sqlite3.connect(study)
    rows = con.execute(
        "SELECT q.query_index, c.gallery_index, c.model_rank, c.is_match FROM candidates c "
        "JOIN queries q ON q.id = c.query_id").fetchall()
    con.close()
    out = {}
    for q, g, rank, m in rows:
        out.setdefault(q, {})[g] = (rank, bool(m))
    return out


@pytest.mark.parametrize("seed, k", [(0, 10), (1, 5), (2, 25)])
def test_study_candidates_equal_the_oracle(tmp_path, seed, k):
    pop = random_population(seed)
    q_f, g_f = np.asarray(pop["q_feats"], np.float64), np.asarray(pop["g_feats"], np.float64)
    # a same-camera image of query 0's identity and a junk image, both at distance 0
    pop["g_feats"] = np.vstack([g_f, q_f[0], q_f[0]])
    pop["g_pids"] = pop["g_pids"] + [pop["q_pids"][0], -1]
    pop["g_cams"] = pop["g_cams"] + [pop["q_cams"][0], 2]
    dump, root = build_dump(tmp_path, **pop)
    g_f = np.asarray(pop["g_feats"], np.float32).astype(np.float64)
    q_f = np.asarray(pop["q_feats"], np.float32).astype(np.float64)
    dist = np.sqrt(((q_f[:, None, :] - g_f[None, :, :]) ** 2).sum(-1))
    study = str(tmp_path / "s.sqlite")
    n = len(pop["q_pids"])
    create_study(dump, study, queries=n, seed=seed, candidates=k, image_root=root)
    got = _db_candidates(study)
    assert sorted(got) == list(range(n))
    outside = 0
    for q in range(n):
        want = oracle_query(dist[q], pop["q_pids"][q], pop["q_cams"][q],
                            pop["g_pids"], pop["g_cams"], k)
        assert got[q] == want, q
        outside += sum(1 for rank, m in want.values() if m and rank > k)
    assert len(pop["g_pids"]) - 2 not in got[0]  # the same-camera twin is never shown
    assert len(pop["g_pids"]) - 1 not in got[0]  # nor the junk image
    assert outside > 0  # the replacement rule was exercised


def test_cuhk03_and_market_default_sizes(tmp_path):
    sizes = {}
    for protocol in ("cuhk03", "market1501"):
        pop = random_population(5, per_id=14, distractors=40, protocol=protocol)
        sub = tmp_path / protocol
        sub.mkdir()
        dump, root = build_dump(sub, **pop)
        study = str(sub / "s.sqlite")
        create_study(dump, study, queries=4, seed=0, image_root=root)
        con = sqlite3.connect(study)
        sizes[protocol] = {r[0] for r in con.execute(
            "SELECT COUNT(*) FROM candidates GROUP BY query_id")}
        con.close()
    assert sizes == {"cuhk03": {10}, "market1501": {50}}


def test_shuffling_is_deterministic_by_seed():
    a = display_order(50, 7, 3)
    assert sorted(a.tolist()) == list(range(50))
    assert a.tolist() == display_order(50, 7, 3).tolist()
    assert a.tolist() != display_order(50, 8, 3).tolist()
    assert a.tolist() != display_order(50, 7, 4).tolist()
    assert a.tolist() != list(range(50))


def _shown(study):
    con = sqlite3.connect(study)
    rows = con.execute(
        "SELECT q.position, q.query_index, c.gallery_index FROM candidates c JOIN queries q "
        "ON q.id = c.query_id ORDER BY q.position, c.shown_position").fetchall()
    con.close()
    return rows


def test_same_seed_same_study_other_seed_other_order(tmp_path, population_dump):
    dump, root = population_dump
    paths = [str(tmp_path / f"{name}.sqlite") for name in ("a", "b", "c")]
    for path, seed in zip(paths, (4, 4, 5)):
        create_study(dump, path, queries=6, seed=seed, candidates=10, image_root=root)
    a, b, c = (_shown(p) for p in paths)
    assert a == b
    assert a != c
    # the shown order is not the model's order
    con = sqlite3.connect(paths[0])
    rows = con.execute(
        "SELECT q.position, c.model_rank FROM candidates c JOIN queries q ON q.id = c.query_id "
        "ORDER BY q.position, c.shown_position").fetchall()
    con.close()
    per_query = {}
    for position, rank in rows:
        per_query.setdefault(position, []).append(rank)
    assert len(per_query) == 6
    assert all(sorted(r) != r for r in per_query.values())
