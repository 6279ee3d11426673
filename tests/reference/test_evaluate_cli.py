"""reid-evaluate end to end: a dump goes in, the metrics come out.

The expected numbers come from reference.metrics.evaluate applied to distances
computed here independently in float64 NumPy: Euclidean distances by
broadcasting, aligned local distances by a brute-force dynamic programme, the
shortlist by a stable sort.
"""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from reference.dump import read_dump, write_dump
from reference import DistanceCache, global_topk
from reference.evaluate_cli import main
from reid_common import atomic_write
from reference.rerank import re_rank
from tests.scoring_oracles import (
    assert_close_after_rerank,
    assert_matches,
    expected_metrics,
    make_data,
    oracle,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIELDS = {
    "dump", "distance", "rerank", "protocol", "num_query", "num_gallery",
    "num_valid_queries", "mAP", "mINP", "rank1", "rank5", "rank10", "cmc", "seconds",
}


# ----------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def dump_path(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("dumps") / "market.h5"
    write_dump(path, data["query"], data["gallery"], protocol="market1501", model="m")
    return str(path)


def run_cli(tmp_path, args, capsys=None):
    out = tmp_path / "results.json"
    code = main([*args, "--json", str(out), "--quiet"])
    results = json.loads(out.read_text()) if out.exists() else None
    return code, results


def one_line_error(capsys, *words):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) >= 1
    assert "Traceback" not in err
    error_lines = [line for line in lines if ": error: " in line]
    assert len(error_lines) == 1, err
    for word in words:
        assert word in error_lines[0], error_lines[0]
    return error_lines[0]


# ----------------------------------------------------------------------------
# numbers: the CLI equals reference.evaluate on independently computed distances


@pytest.mark.parametrize("distance", ["global", "local", "global+local"])
def test_distances_match_independent_computation(tmp_path, data, dump_path, distance):
    code, results = run_cli(tmp_path, [dump_path, "--distance", distance])
    assert code == 0
    assert len(results) == 1
    r = results[0]
    assert r["distance"] == distance and r["rerank"] is False
    assert r["protocol"] == "market1501"
    assert (r["num_query"], r["num_gallery"]) == (20, 90)
    assert len(r["cmc"]) == 50
    assert_matches(r, expected_metrics(data, oracle(data, distance)))


def test_several_distances_in_one_call_and_table(tmp_path, data, dump_path, capsys):
    code, results = run_cli(tmp_path, [dump_path, "--distance", "global", "local", "global+local"])
    assert code == 0
    assert [r["distance"] for r in results] == ["global", "local", "global+local"]
    table = capsys.readouterr().out
    for r in results:
        assert f"{100 * r['mAP']:.2f}" in table
        assert f"{100 * r['rank1']:.2f}" in table
    # the three distances rank differently on this data (the comparison above is not vacuous)
    assert len({round(r["mAP"], 12) for r in results}) == 3


@pytest.mark.parametrize("distance", ["local", "global+local"])
def test_shortlist_semantics(tmp_path, distance):
    """Local term only inside the global top-K; H_f + H_g - 1 elsewhere (here H_f != H_g)."""
    data = make_data(seed=3, query_parts=4, gallery_parts=6)
    path = tmp_path / "d.h5"
    write_dump(path, data["query"], data["gallery"])
    k = 7
    code, results = run_cli(tmp_path, [str(path), "--distance", distance, "--shortlist", str(k)])
    assert code == 0
    assert results[0]["shortlist"] == k
    expected = expected_metrics(data, oracle(data, distance, shortlist=k))
    assert_matches(results[0], expected)
    full = expected_metrics(data, oracle(data, distance))
    assert expected["mAP"] != pytest.approx(full["mAP"], abs=1e-9)


def test_shortlist_covering_the_gallery_is_the_full_computation(tmp_path, data, dump_path):
    code, results = run_cli(
        tmp_path, [dump_path, "--distance", "global+local", "--shortlist", "1000"]
    )
    assert code == 0
    assert_matches(results[0], expected_metrics(data, oracle(data, "global+local")))


@pytest.mark.parametrize("shortlist", [None, 7])
@pytest.mark.parametrize("normalize", [False, True])
def test_distance_matrices_equal_the_oracle(tmp_path, shortlist, normalize):
    """The matrices themselves, so that the value of the bound H_f + H_g - 1 is checked."""
    data = make_data(seed=4, query_parts=3, gallery_parts=5)
    path = tmp_path / "d.h5"
    write_dump(path, data["query"], data["gallery"])
    cache = DistanceCache.from_dump(read_dump(path), normalize=normalize, shortlist=shortlist)
    for pair in (("query", "gallery"), ("query", "query"), ("gallery", "gallery")):
        for distance in ("global", "local", "global+local"):
            want = oracle(data, distance, shortlist=shortlist, normalize=normalize, pair=pair)
            for keep in (True, False):
                got = cache.matrix(distance, *pair, keep=keep)
                assert got.dtype == np.float32 and got.shape == want.shape
                # float32 distances from inner products lose ~1e-3 near zero distance
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-3)
    if shortlist is not None:
        bound = 3 + 5 - 1
        want = oracle(data, "local", shortlist=shortlist, normalize=normalize)
        got = cache.matrix("local", "query", "gallery")
        assert np.count_nonzero(want == bound) == 20 * (90 - shortlist)
        np.testing.assert_array_equal(got == bound, want == bound)


def test_global_topk_breaks_ties_by_index():
    dist = np.array([[1.0, 0.5, 0.5, 0.5, 0.2], [0.0, 0.0, 0.0, 0.0, 0.0]], np.float32)
    top = global_topk(dist, 3)
    assert sorted(top[0].tolist()) == [1, 2, 4]
    assert sorted(top[1].tolist()) == [0, 1, 2]
    assert global_topk(dist, 9).shape == (2, 5)


@pytest.mark.parametrize("distance", ["global", "local", "global+local"])
def test_rerank_matches_rerank_of_independent_matrices(tmp_path, data, dump_path, distance):
    params = ["--k1", "6", "--k2", "3", "--lambda", "0.2"]
    code, results = run_cli(tmp_path, [dump_path, "--distance", distance, "--rerank", *params])
    assert code == 0
    assert [(p["distance"], p["rerank"]) for p in results] == [(distance, False),
                                                               (distance, True)]
    plain_row, r = results
    assert r["rerank"] is True and (r["k1"], r["k2"], r["lambda"]) == (6, 3, 0.2)
    assert (plain_row["k1"], plain_row["k2"], plain_row["lambda"]) == (None, None, None)
    q_g = oracle(data, distance)
    assert_matches(plain_row, expected_metrics(data, q_g))
    q_q = oracle(data, distance, pair=("query", "query"))
    g_g = oracle(data, distance, pair=("gallery", "gallery"))
    reranked = re_rank(q_g, q_q, g_g, k1=6, k2=3, lambda_value=0.2)
    expected = expected_metrics(data, reranked)
    assert_close_after_rerank(r, expected)
    plain = expected_metrics(data, q_g)
    assert expected["mAP"] != pytest.approx(plain["mAP"], abs=1e-9)


def test_rerank_with_shortlist_uses_the_shortlisted_matrices(tmp_path, data, dump_path):
    code, results = run_cli(
        tmp_path,
        [dump_path, "--distance", "global+local", "--shortlist", "8", "--rerank",
         "--k1", "5", "--k2", "2"],
    )
    assert code == 0
    mats = [
        oracle(data, "global+local", shortlist=8, pair=pair)
        for pair in (("query", "gallery"), ("query", "query"), ("gallery", "gallery"))
    ]
    expected = expected_metrics(data, re_rank(*mats, k1=5, k2=2, lambda_value=0.3))
    assert [r["rerank"] for r in results] == [False, True]
    assert_matches(results[0], expected_metrics(data, mats[0]))
    assert_close_after_rerank(results[1], expected)


def test_normalize(tmp_path, data, dump_path):
    code, results = run_cli(
        tmp_path, [dump_path, "--distance", "global", "global+local", "--normalize"]
    )
    assert code == 0
    for r in results:
        assert r["normalize"] is True
        assert_matches(r, expected_metrics(data, oracle(data, r["distance"], normalize=True)))


def test_cuhk_sysu_protocol_from_the_protocol_group(tmp_path, data):
    rng = np.random.default_rng(11)
    lists = [rng.choice(90, size=int(rng.integers(10, 40)), replace=False) for _ in range(20)]
    path = tmp_path / "sysu.h5"
    write_dump(path, data["query"], data["gallery"], protocol="cuhk-sysu", gallery_lists=lists)
    code, results = run_cli(tmp_path, [str(path), "--distance", "global", "global+local"])
    assert code == 0
    for r in results:
        assert r["protocol"] == "cuhk-sysu"
        dist = oracle(data, r["distance"])
        expected = expected_metrics(data, dist, protocol="cuhk-sysu", gallery_lists=lists)
        assert_matches(r, expected)
        market = expected_metrics(data, dist)
        assert expected["mAP"] != pytest.approx(market["mAP"], abs=1e-9)


def test_protocol_override_cuhk03_with_repeats_and_seed(tmp_path, data, dump_path):
    code, results = run_cli(
        tmp_path,
        [dump_path, "--protocol", "cuhk03", "--repeats", "3", "--seed", "5", "--max-rank", "12"],
    )
    assert code == 0
    r = results[0]
    assert r["protocol"] == "cuhk03" and len(r["cmc"]) == 12
    expected = expected_metrics(
        data, oracle(data, "global"), protocol="cuhk03", repeats=3, seed=5, max_rank=12
    )
    assert_matches(r, expected)


def test_max_rank_below_ten(tmp_path, dump_path):
    code, results = run_cli(tmp_path, [dump_path, "--max-rank", "3"])
    assert code == 0
    assert len(results[0]["cmc"]) == 3 and results[0]["rank5"] is None


# ----------------------------------------------------------------------------
# outputs


def test_json_csv_plot_and_progress(tmp_path, dump_path, capsys):
    j, c, p = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "cmc.png"
    code = main([dump_path, dump_path, "--distance", "global", "local",
                 "--json", str(j), "--csv", str(c), "--plot", str(p)])
    assert code == 0
    captured = capsys.readouterr()
    assert "[1/2]" in captured.err and "[2/2]" in captured.err and "reading" in captured.err
    results = json.loads(j.read_text())
    assert len(results) == 4
    for r in results:
        assert FIELDS <= set(r)
        for key in ("mAP", "mINP", "rank1", "rank5", "rank10"):
            assert 0.0 <= r[key] <= 1.0
        assert all(0.0 <= v <= 1.0 for v in r["cmc"])
        assert np.all(np.diff(r["cmc"]) >= 0)
    with open(c, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    assert FIELDS - {"cmc"} <= set(rows[0]) and "cmc" not in rows[0]
    for row, r in zip(rows, results):
        assert row["distance"] == r["distance"]
        assert float(row["mAP"]) == pytest.approx(r["mAP"], abs=1e-12)
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(p) as img:
        img.verify()
    assert sorted(os.listdir(tmp_path)) == ["cmc.png", "r.csv", "r.json"]


def test_atomic_output_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")

    def failing(tmp):
        with open(tmp, "w") as f:
            f.write("partial")
        raise RuntimeError("injected")

    with pytest.raises(RuntimeError):
        atomic_write(str(target), failing)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["r.json"]


def test_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    j = tmp_path / "demo.json"
    code = main(["--demo", str(out), "--json", str(j)])
    assert code == 0
    d = read_dump(out / "demo.h5")
    assert d.has_local and d.attrs["dataset"] == "synthetic" and len(d.query["path"]) == d.num_query
    results = json.loads(j.read_text())
    assert [r["distance"] for r in results] == ["global", "local", "global+local"]
    assert all(0.0 < r["mAP"] < 1.0 for r in results)
    table = capsys.readouterr().out
    assert "mAP" in table and "global+local" in table


# ----------------------------------------------------------------------------
# bad input: one line, exit 2


@pytest.mark.parametrize(
    "args, words",
    [
        (["--distance", "cosine"], ["--distance", "cosine"]),
        (["--distance", "local", "--shortlist", "0"], ["--shortlist", "0"]),
        (["--distance", "local", "--shortlist", "-4"], ["--shortlist"]),
        (["--shortlist", "5"], ["--shortlist", "global+local"]),
        (["--protocol", "viper"], ["--protocol", "viper"]),
        (["--max-rank", "0"], ["--max-rank"]),
        (["--lambda", "1.5", "--rerank"], ["--lambda"]),
        (["--json", "/nonexistent-dir/r.json"], ["--json", "does not exist"]),
        (["--frobnicate"], ["--frobnicate"]),
        (["--shortlist", "many"], ["--shortlist"]),
    ],
)
def test_bad_arguments(dump_path, capsys, args, words):
    assert main([dump_path, *args]) == 2
    one_line_error(capsys, *words)


def test_no_dump(capsys):
    assert main([]) == 2
    one_line_error(capsys, "DUMP")


def test_missing_dump(tmp_path, capsys):
    missing = tmp_path / "missing.h5"
    assert main([str(missing), "--quiet"]) == 2
    one_line_error(capsys, f"{missing}: /: no such file")


@pytest.mark.parametrize(
    "args", [["--distance", "local"], ["--distance", "global+local", "--shortlist", "5"]]
)
def test_local_without_local_features(tmp_path, data, capsys, args):
    path = tmp_path / "global_only.h5"
    q = {k: v for k, v in data["query"].items() if k != "local"}
    g = {k: v for k, v in data["gallery"].items() if k != "local"}
    write_dump(path, q, g)
    assert main([str(path), *args, "--quiet"]) == 2
    one_line_error(capsys, f"{path}: query/local: missing", "local features")


def test_one_bad_dump_among_many(tmp_path, data, dump_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    j = tmp_path / "r.json"
    code = main([dump_path, str(bad), dump_path, "--json", str(j), "--quiet"])
    assert code == 2
    captured = capsys.readouterr()
    one_line = [line for line in captured.err.splitlines() if "error" in line]
    assert one_line == [f"reid-evaluate: error: {bad}: /: not an HDF5 file"]
    assert "Traceback" not in captured.err
    results = json.loads(j.read_text())
    assert [r["dump"] for r in results] == [dump_path, dump_path]
    assert results[0]["mAP"] == results[1]["mAP"]


def test_help_explains_every_flag(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--distance", "--shortlist", "--rerank", "--k1", "--k2", "--lambda",
                 "--protocol", "--max-rank", "--normalize", "--json", "--csv", "--plot",
                 "--demo", "--repeats", "--seed", "--quiet"):
        assert flag in text
    assert "Q x Q" in text and "G x G" in text


# ----------------------------------------------------------------------------
# the script itself


def test_evaluate_py_subprocess(tmp_path, dump_path):
    j, c, p = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "cmc.png"
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, "evaluate.py", dump_path, "--distance", "global", "global+local",
         "--json", str(j), "--csv", str(c), "--plot", str(p)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "global+local" in proc.stdout and "mAP" in proc.stdout
    results = json.loads(j.read_text())
    assert [r["distance"] for r in results] == ["global", "global+local"]
    assert all(FIELDS <= set(r) for r in results)
    assert len(c.read_text().strip().splitlines()) == 3
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x00" * 64)
    proc = subprocess.run(
        [sys.executable, "evaluate.py", dump_path, str(bad), "--quiet"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"reid-evaluate: error: {bad}: /: not an HDF5 file"
    assert "mAP" in proc.stdout  # the good dump was still evaluated


def test_import_reference_does_not_load_heavy_modules():
    code = (
        "import sys, reference, reference.evaluate_cli, reference.dump; "
        "bad = [m for m in ('h5py', 'matplotlib', 'tensorflow', 'keras', 'numba') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


# ----------------------------------------------------------------------------
# the report flags of reference.reports (figures are tested with that module)


def test_report_flags_are_wired_in(tmp_path, dump_path, capsys):
    reports = pytest.importorskip("reference.reports")
    assert reports is not None
    out = tmp_path / "align.png"
    code = main([dump_path, "--distance", "global+local", "--alignment", "1", "2",
                 "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}" in capsys.readouterr().err

    assert main([dump_path, "--alignment", "0", "999", "--out", str(out), "--quiet"]) == 2
    one_line_error(capsys, "--alignment", "999")
    assert main([dump_path, "--ranked-list", "0"]) == 2
    one_line_error(capsys, "--ranked-list")
