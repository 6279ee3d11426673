"""reid-evaluate's inputs: run directories, directories of dumps, and every
argument checked before the first evaluation.

Expected metrics come from float64 oracles (tests.scoring_oracles), never from
the scoring engine; "before any scoring" is checked with counters wrapped
around the engine entry points the CLI calls.
"""

import json
import os

import numpy as np
import pytest

import reference.evaluate_cli as cli
from reference import write_dump
from reference.evaluate_cli import main
from tests.scoring_oracles import assert_matches, expected_metrics, make_data, oracle


@pytest.fixture(scope="module")
def datasets():
    return [make_data(seed=21), make_data(seed=22)]


def _write(path, data, **kwargs):
    write_dump(path, data["query"], data["gallery"], protocol="market1501", **kwargs)
    return str(path)


@pytest.fixture
def run_dir(tmp_path, datasets):
    """A run directory laid out as train.py writes it (only the files evaluate reads)."""
    run = tmp_path / "runs" / "20260101-000000"
    (run / "features").mkdir(parents=True)
    (run / "config.json").write_text('{"epochs": 1}\n')
    (run / "status.json").write_text('{"state": "finished"}\n')
    (run / "features" / "notes.txt").write_text("not a dump\n")
    _write(run / "features" / "zeta.h5", datasets[1])
    _write(run / "features" / "alpha.h5", datasets[0])
    return run


@pytest.fixture
def spy(monkeypatch):
    """Counts of the scoring engine's calls made by the CLI."""
    calls = {"score_dump": 0, "from_dump": 0}
    real_score, real_cache = cli.score_dump, cli.DistanceCache

    def score_dump(*args, **kwargs):
        calls["score_dump"] += 1
        return real_score(*args, **kwargs)

    class Cache:
        @staticmethod
        def from_dump(*args, **kwargs):
            calls["from_dump"] += 1
            return real_cache.from_dump(*args, **kwargs)

    monkeypatch.setattr(cli, "score_dump", score_dump)
    monkeypatch.setattr(cli, "DistanceCache", Cache)
    return calls


def _error_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


# ----------------------------------------------------------------------------
# run directories and directories of dumps


def test_run_dir_evaluates_its_feature_dumps_in_name_order(tmp_path, run_dir, datasets):
    j = tmp_path / "r.json"
    assert main([str(run_dir), "--distance", "global", "global+local", "--json", str(j),
                 "--quiet"]) == 0
    results = json.loads(j.read_text())
    features = run_dir / "features"
    assert [(os.path.basename(r["dump"]), r["distance"]) for r in results] == [
        ("alpha.h5", "global"), ("alpha.h5", "global+local"),
        ("zeta.h5", "global"), ("zeta.h5", "global+local")]
    assert {os.path.dirname(r["dump"]) for r in results} == {str(features)}
    for r in results:
        data = datasets[0] if r["dump"].endswith("alpha.h5") else datasets[1]
        assert_matches(r, expected_metrics(data, oracle(data, r["distance"])))


def test_run_dir_equals_its_dumps_given_one_by_one(tmp_path, run_dir):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    dumps = [str(run_dir / "features" / n) for n in ("alpha.h5", "zeta.h5")]
    assert main([str(run_dir), "--json", str(a), "--quiet"]) == 0
    assert main([*dumps, "--json", str(b), "--quiet"]) == 0
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads(a.read_text())]
    want = [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads(b.read_text())]
    assert strip == want


def test_dumps_read_again_when_too_large_to_keep(tmp_path, run_dir, monkeypatch):
    """Dumps beyond KEEP_BYTES are read a second time for scoring: same results."""
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main([str(run_dir), "--json", str(a), "--quiet"]) == 0
    monkeypatch.setattr(cli, "KEEP_BYTES", 0)
    import reference.evaluate_inputs as inputs

    reads = []
    real = inputs.read_checked
    counted = lambda p, args: reads.append(p) or real(p, args)  # noqa: E731
    monkeypatch.setattr(inputs, "read_checked", counted)  # the check before scoring
    monkeypatch.setattr(cli, "read_checked", counted)  # the second reading
    assert main([str(run_dir), "--json", str(b), "--quiet"]) == 0
    assert len(reads) == 4  # each of the two dumps: checked, then read again
    strip = lambda text: [{k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
                          for r in json.loads(text)]
    assert strip(a.read_text()) == strip(b.read_text())


def test_directory_of_dumps(tmp_path, datasets):
    folder = tmp_path / "dumps"
    folder.mkdir()
    _write(folder / "b.h5", datasets[1])
    _write(folder / "a.h5", datasets[0])
    j = tmp_path / "r.json"
    assert main([str(folder), "--json", str(j), "--quiet"]) == 0
    assert [os.path.basename(r["dump"]) for r in json.loads(j.read_text())] == ["a.h5", "b.h5"]


@pytest.mark.parametrize("layout, words", [
    ("empty", ["neither a run directory", "*.h5"]),
    ("run_without_features", ["run directory without feature dumps", "features"]),
])
def test_unusable_directory_is_one_line_exit_2(tmp_path, capsys, spy, layout, words):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "readme.txt").write_text("x")
    if layout == "run_without_features":
        (folder / "config.json").write_text("{}")
    j = tmp_path / "r.json"
    assert main([str(folder), "--json", str(j), "--quiet"]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"reid-evaluate: error: {folder}: ")
    for word in words:
        assert word in line, line
    assert not j.exists() and spy == {"score_dump": 0, "from_dump": 0}


# ----------------------------------------------------------------------------
# report arguments are checked before any scoring


def _global_only(path, data):
    q = {k: v for k, v in data["query"].items() if k != "local"}
    g = {k: v for k, v in data["gallery"].items() if k != "local"}
    write_dump(path, q, g, protocol="market1501")
    return str(path)


def _without_paths(path, data):
    q = {k: v for k, v in data["query"].items() if k != "path"}
    g = {k: v for k, v in data["gallery"].items() if k != "path"}
    write_dump(path, q, g, protocol="market1501")
    return str(path)


def _small(path, data):
    """A second dump with fewer queries than the first."""
    q = {k: v[:5] for k, v in data["query"].items()}
    write_dump(path, q, data["gallery"], protocol="market1501")
    return str(path)


@pytest.mark.parametrize("case, words", [
    ("alignment_gallery_index", ["--alignment", "gallery index 999", "[0, 90)"]),
    ("alignment_query_index_of_second_dump", ["--alignment", "second.h5", "query index 7",
                                              "[0, 5)"]),
    ("alignment_without_local", ["--alignment", "no local features"]),
    ("ranked_list_without_paths", ["--ranked-list", "no image paths"]),
    ("ranked_list_zero", ["--ranked-list", "0"]),
    ("out_is_a_file", ["--out", "not a directory"]),
])
def test_report_arguments_fail_before_scoring(tmp_path, datasets, capsys, spy, case, words):
    first = _write(tmp_path / "first.h5", datasets[0])
    dumps, extra, distances = [first], [], ["global", "global+local"]
    if case == "alignment_gallery_index":
        extra = ["--alignment", "0", "999"]
    elif case == "alignment_query_index_of_second_dump":
        dumps.append(_small(tmp_path / "second.h5", datasets[1]))
        extra = ["--alignment", "7", "0", "--out", str(tmp_path / "reports")]
    elif case == "alignment_without_local":
        dumps = [_global_only(tmp_path / "g.h5", datasets[0])]
        extra, distances = ["--alignment", "0", "0"], ["global"]
    elif case == "ranked_list_without_paths":
        dumps = [_without_paths(tmp_path / "np.h5", datasets[0])]
        extra = ["--ranked-list", "5", "--out", str(tmp_path / "reports")]
    elif case == "ranked_list_zero":
        extra = ["--ranked-list", "0"]
    else:
        (tmp_path / "taken").write_text("a file")
        extra = ["--ranked-list", "5", "--out", str(tmp_path / "taken")]
    j, c = tmp_path / "r.json", tmp_path / "r.csv"
    code = main([*dumps, "--distance", *distances, "--rerank", *extra,
                 "--json", str(j), "--csv", str(c), "--quiet"])
    assert code == 2
    line = _error_line(capsys)
    for word in words:
        assert word in line, line
    assert spy == {"score_dump": 0, "from_dump": 0}
    assert not j.exists() and not c.exists() and not (tmp_path / "reports").exists()


def test_good_arguments_do_reach_the_engine(tmp_path, datasets, spy):
    """The counters above count: the same call with a valid index scores."""
    first = _write(tmp_path / "first.h5", datasets[0])
    out = tmp_path / "align.png"
    assert main([first, "--distance", "global", "global+local", "--rerank", "--alignment",
                 "0", "1", "--out", str(out), "--quiet"]) == 0
    assert spy == {"score_dump": 4, "from_dump": 1}
    assert out.is_file()


def test_rerank_rows_beside_plain_rows_in_table_json_csv(tmp_path, datasets, capsys):
    import csv

    path = _write(tmp_path / "d.h5", datasets[0])
    j, c = tmp_path / "r.json", tmp_path / "r.csv"
    assert main([path, "--distance", "global", "local", "--rerank", "--k1", "6", "--k2", "3",
                 "--json", str(j), "--csv", str(c), "--quiet"]) == 0
    results = json.loads(j.read_text())
    assert [(r["distance"], r["rerank"]) for r in results] == [
        ("global", False), ("global", True), ("local", False), ("local", True)]
    data = datasets[0]
    for r in results[::2]:
        assert_matches(r, expected_metrics(data, oracle(data, r["distance"])))
    with open(c, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(row["distance"], row["rerank"], row["k1"]) for row in rows] == [
        ("global", "False", ""), ("global", "True", "6"),
        ("local", "False", ""), ("local", "True", "6")]
    table = capsys.readouterr().out.splitlines()
    header = table[0].split()
    assert header[:3] == ["dump", "distance", "rerank"]
    body = [line.split() for line in table[1:]]
    assert [(cells[1], cells[2]) for cells in body] == [
        ("global", "no"), ("global", "k1=6"), ("local", "no"), ("local", "k1=6")]
    for cells, r in zip(body, results):
        assert f"{100 * r['mAP']:.2f}" in cells
    assert np.isfinite([r["mAP"] for r in results]).all()
