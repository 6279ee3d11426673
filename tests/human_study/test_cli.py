"""``reid-human``: subcommands, one-line errors, JSON shapes, the demo without a server."""

import json
import os
import sqlite3

import pytest

from human_study.cli import main

from .conftest import build_dump, random_population


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_help_and_version(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0 and "create" in out and "demo" in out
    for sub in ("create", "add-annotator", "serve", "report", "export", "demo"):
        status, out, _ = run(capsys, sub, "--help")
        assert status == 0 and "usage:" in out
    status, out, _ = run(capsys, "--version")
    assert status == 0 and "alignedreid" in out


def test_create_errors_are_one_line(capsys, tmp_path, population_dump):
    dump, root = population_dump
    out = str(tmp_path / "s.sqlite")
    status, _, err = run(capsys, "create", dump, "--out", out, "--queries", "999", "--seed", "0",
                         "--image-root", root)
    assert status == 2 and err.count("\n") == 1 and "queries" in err
    assert not os.path.exists(out)
    status, _, err = run(capsys, "create", dump, "--out", dump, "--queries", "3", "--seed", "0")
    assert status == 2 and "exists" in err and err.count("\n") == 1
    status, _, err = run(capsys, "create", dump, "--out", out, "--queries", "3", "--seed", "0",
                         "--distance", "global+local")
    assert status == 2 and "local" in err
    status, _, err = run(capsys, "create", dump, "--out", out, "--queries", "3")
    assert status == 2 and "--seed" in err


def test_a_missing_image_is_named(capsys, tmp_path):
    dump, root = build_dump(tmp_path, **random_population(1))
    victim = sorted(os.listdir(os.path.join(root, "query")))[0]
    os.remove(os.path.join(root, "query", victim))
    status, _, err = run(capsys, "create", dump, "--out", str(tmp_path / "s.sqlite"),
                         "--queries", "12", "--seed", "0", "--image-root", root, "--quiet")
    assert status == 2 and f"image not found: query/{victim}" in err
    assert err.count("\n") == 1 and not (tmp_path / "s.sqlite").exists()


def test_create_add_annotator_report_export(capsys, tmp_path, population_dump):
    dump, root = population_dump
    study = str(tmp_path / "s.sqlite")
    status, out, _ = run(capsys, "create", dump, "--out", study, "--queries", "5", "--seed", "1",
                         "--candidates", "8", "--image-root", root, "--quiet",
                         "--json", str(tmp_path / "c.json"))
    assert status == 0 and "5 queries, 8 candidates" in out
    assert json.loads((tmp_path / "c.json").read_text())["num_queries"] == 5
    status, out, _ = run(capsys, "add-annotator", study, "alice", "--json", "-", "--port", "8123")
    info = json.loads(out)
    assert list(info) == ["name", "token", "url"] and info["name"] == "alice"
    assert info["url"] == f"http://127.0.0.1:8123/annotate?token={info['token']}"
    assert len(info["token"]) >= 32
    status, _, err = run(capsys, "add-annotator", study, "alice")
    assert status == 2 and "already exists" in err
    con = sqlite3.connect(study)
    assert info["token"] not in str(con.execute("SELECT * FROM annotators").fetchall())
    con.close()

    exp = tmp_path / "e.json"
    status, out, _ = run(capsys, "export", study, "--json", str(exp))
    data = json.loads(exp.read_text())
    assert status == 0 and len(data["queries"]) == 5
    q = data["queries"][0]
    assert list(q) == ["query_id", "query_index", "candidates", "shown_order"]
    assert list(q["candidates"][0]) == ["candidate_id", "gallery_index", "is_match", "model_rank"]
    assert sorted(q["shown_order"]) == sorted(c["candidate_id"] for c in q["candidates"])
    assert [c["model_rank"] for c in q["candidates"]] == sorted(c["model_rank"] for c in q["candidates"])
    assert any(c["is_match"] for c in q["candidates"])

    status, out, _ = run(capsys, "report", study, "--json", str(tmp_path / "r.json"),
                         "--plot", str(tmp_path / "r.png"))
    rep = json.loads((tmp_path / "r.json").read_text())
    assert status == 0 and rep["annotators"][0]["name"] == "alice"
    assert rep["annotators"][0]["answered"] == 0 and "rank1_full_gallery" in rep["model"]
    assert (tmp_path / "r.png").stat().st_size > 1000
    status, _, err = run(capsys, "report", study, "--json", study)
    assert status == 2 and "study file itself" in err
    status, _, err = run(capsys, "report", str(tmp_path / "none.sqlite"))
    assert status == 2 and "no such study" in err


def test_demo_without_server_makes_a_synthetic_study(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, "demo", "--no-serve", "--dir", "demo", "--queries", "5",
                           "--json", "demo.json", "--port", "8765")
    assert status == 0, err
    info = json.loads((tmp_path / "demo.json").read_text())
    assert info["source"] == "synthetic" and info["annotator"] == "demo"
    assert info["url"].startswith("http://127.0.0.1:8765/annotate?token=")
    status, out, _ = run(capsys, "report", "demo/study.sqlite")
    assert "synthetic features" in out and "5 queries" in out
    # a second demo reuses the study with a new annotator
    status, out, _ = run(capsys, "demo", "--no-serve", "--dir", "demo")
    assert status == 0 and "demo-2" in out and "existing" in out


def test_demo_prefers_the_newest_run_dump(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "runs" / "r1" / "features"
    run_dir.mkdir(parents=True)
    pop = random_population(2)
    dump, root = build_dump(tmp_path / "runs" / "r1", **pop)
    os.replace(dump, run_dir / "test.h5")
    # the images sit beside the dump's run folder; point the run's config at them
    (tmp_path / "runs" / "r1" / "config.json").write_text(json.dumps({"data": [root]}))
    status, out, err = run(capsys, "demo", "--no-serve", "--dir", "d", "--queries", "4")
    assert status == 0, err
    assert "(run: runs/r1/features/test.h5)" in out
