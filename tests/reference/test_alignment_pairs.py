"""Picking alignment examples: same identity, other camera, the largest gain of
the shortest path S over the best path without shift D.

Oracle: every monotone path enumerated (tests.oracles); D is the shortest of
those that keep |i - j| <= 1, U the sum of the diagonal, all in float64 from
the Eq. 1 transcription; the candidates are ranked here by a plain sort.
"""

import numpy as np
import pytest

from reference import read_dump, write_dump
from reference.evaluate_cli import main
from reference.figures import alignment_candidates, draw_alignment
from reference.figures.pairs import unshifted_paths
from tests.oracles import part_distances, scored_paths

H = 5


def _oracle(x, y):
    d = part_distances(x, y)
    scored = scored_paths(d)
    band = [(length, p) for length, p in scored if all(abs(i - j) <= 1 for i, j in p)]
    return scored[0][0], band[0][0], sum(d[i][i] for i in range(len(d))), band[0][1], d


def _dump(tmp_path, seed=0):
    """Query/gallery features of 6 identities on 3 cameras; some gallery images of
    identity 2 show the query's stripes shifted down by one or two stripes."""
    rng = np.random.default_rng(seed)
    looks = rng.normal(size=(6, H + 2, 4))
    q_pid = np.repeat(np.arange(1, 7), 2)
    q_cam = np.tile([1, 2], 6)
    g_pid = np.repeat(np.arange(1, 7), 4)
    g_cam = np.tile([1, 2, 3, 3], 6)
    noise = 0.3
    q_local = np.stack([looks[p - 1, 2:] for p in q_pid]) + noise * rng.normal(size=(12, H, 4))
    g_local = np.stack([looks[p - 1, 2:] for p in g_pid]) + noise * rng.normal(size=(24, H, 4))
    g_local[6, 1:] = looks[1, 2:H + 1] + 0.05 * rng.normal(size=(H - 1, 4))  # pid 2, shift 1
    g_local[7, 2:] = looks[1, 2:H] + 0.05 * rng.normal(size=(H - 2, 4))      # pid 2, shift 2
    split = lambda pid, cam, loc: {  # noqa: E731
        "global": rng.normal(size=(len(pid), 8)).astype(np.float32), "pid": pid,
        "camid": cam, "local": loc.astype(np.float32)}
    path = tmp_path / "pairs.h5"
    write_dump(path, split(q_pid, q_cam, q_local), split(g_pid, g_cam, g_local),
               protocol="market1501")
    return str(path)


def test_candidates_equal_the_brute_force_ranking(tmp_path):
    dump = read_dump(_dump(tmp_path))
    q, g = dump.query, dump.gallery
    want = []
    for qi in range(dump.num_query):
        for gi in range(dump.num_gallery):
            if q["pid"][qi] == g["pid"][gi] and q["camid"][qi] != g["camid"][gi]:
                s, d_band, u, _, _ = _oracle(q["local"][qi], g["local"][gi])
                want.append((-round(d_band - s, 9), qi, gi, s, d_band, u))
    want.sort()
    got = alignment_candidates(dump, top=6)
    assert [(c.query, c.gallery) for c in got] == [(w[1], w[2]) for w in want[:6]]
    for c, w in zip(got, want):
        assert c.pid == q["pid"][c.query] == dump.gallery["pid"][c.gallery]
        assert c.aligned == pytest.approx(w[3], rel=1e-5)
        assert c.unshifted == pytest.approx(w[4], rel=1e-9)
        assert c.unaligned == pytest.approx(w[5], rel=1e-5)
    # the planted shift of two stripes comes first
    assert (got[0].gallery, q["pid"][got[0].query]) == (7, 2) and got[0].gain > 0.5


def test_unshifted_path_equals_the_banded_brute_force():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(2, 6, 3))
    _, length, _, band, d = _oracle(x, y)
    got, path = unshifted_paths(np.array(d)[None])
    assert got[0] == pytest.approx(length, rel=1e-12) and path == band


def test_figure_draws_the_unshifted_path_and_its_length(tmp_path):
    dump = read_dump(_dump(tmp_path))
    best = alignment_candidates(dump, top=1)[0]
    x, y = dump.query["local"][best.query], dump.gallery["local"][best.gallery]
    fig, info = draw_alignment(None, None, x, y)
    s, d_band, u, band, _ = _oracle(x, y)
    (line,) = [ln for ln in fig.axes[1].lines if ln.get_gid() == "unshifted"]
    assert [(int(round(yy)), int(round(xx))) for xx, yy in line.get_xydata()] == band
    assert info["unshifted"] == pytest.approx(d_band, rel=1e-6)
    head = fig._suptitle.get_text()
    for value in (s, d_band, u):
        assert f"{value:.3f}" in head


def test_pick_alignment_flag_prints_the_pairs(tmp_path, capsys):
    path = _dump(tmp_path)
    assert main([path, "--pick-alignment", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    best = alignment_candidates(read_dump(path), top=2)
    lines = [line.split() for line in out.splitlines() if line.strip().startswith("--alignment")]
    assert [(int(cells[1]), int(cells[2])) for cells in lines] == [
        (c.query, c.gallery) for c in best]


def test_pick_alignment_needs_local_features_before_scoring(tmp_path, capsys, monkeypatch):
    import reference.evaluate_cli as cli

    calls = []
    monkeypatch.setattr(cli, "score_dump", lambda *a, **k: calls.append(1))
    path = tmp_path / "g.h5"
    split = {"global": np.zeros((3, 4), np.float32), "pid": [1, 2, 3], "camid": [1, 1, 2]}
    write_dump(path, split, split, protocol="market1501")
    assert main([str(path), "--pick-alignment", "3", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--pick-alignment" in err and "no local features" in err
    assert calls == []
    assert main([str(path), "--pick-alignment", "0", "--quiet"]) == 2
    assert "--pick-alignment: K must be >= 1" in capsys.readouterr().err


def test_pick_alignment_follows_normalize(tmp_path, capsys):
    path = _dump(tmp_path, seed=4)
    dump = read_dump(path)
    plain = alignment_candidates(dump, top=3)
    unit = alignment_candidates(dump, top=3, normalize=True)
    assert [c.unshifted for c in unit] != pytest.approx([c.unshifted for c in plain])
    assert main([path, "--pick-alignment", "3", "--normalize", "--quiet"]) == 0
    out = capsys.readouterr().out
    printed = [float(line.split(" D ")[1].split()[0]) for line in out.splitlines()
               if line.strip().startswith("--alignment")]
    assert printed == pytest.approx([c.unshifted for c in unit], abs=6e-4)
