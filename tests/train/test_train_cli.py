"""train.py end to end on a tiny synthetic configuration, and its CLI rules."""

import json
import subprocess
import sys

import numpy as np
import pytest

from reid_tf.config import TrainConfig
from reid_tf.run_dir import RunDirError, open_run_dir
from reid_tf.train_cli import build_parser, main, parse_config
from tests.train.conftest import REPO, prepared_dir, subprocess_env, tiny_args


def _market_metrics(q, g):
    """Brute-force rank-1 and mAP (Market-1501 protocol) in float64."""
    d = np.sqrt(((q["global"][:, None, :].astype(np.float64)
                  - g["global"][None, :, :].astype(np.float64)) ** 2).sum(-1))
    hits, aps = [], []
    for i in range(len(q["pid"])):
        keep = ~((g["pid"] == q["pid"][i]) & (g["camid"] == q["camid"][i])) & (g["pid"] != -1)
        order = np.argsort(d[i, keep], kind="stable")
        match = g["pid"][keep][order] == q["pid"][i]
        if not match.any():
            continue
        hits.append(float(match[0]))
        pos = np.flatnonzero(match)
        aps.append(np.mean((np.arange(len(pos)) + 1) / (pos + 1)))
    return float(np.mean(hits)), float(np.mean(aps))


def test_run_directory_contents(trained_run):
    run = trained_run["dir"]
    for name in ("config.json", "status.json", "log.csv", "train.log", "model.keras",
                 "metrics.json", "metrics_untrained.json", "cmc.png",
                 "features/synthetic.h5", "checkpoints/index.json", "checkpoints/ckpt-6.h5",
                 "provenance.json"):
        assert (run / name).is_file(), name
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert (run / "cmc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (run / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[:4] == ["epoch", "global_step", "lr", "loss"]
    assert [int(r.split(",")[0]) for r in rows[1:]] == [1, 2]
    assert [int(r.split(",")[1]) for r in rows[1:]] == [3, 6]
    # no temporary files left behind by the atomic writes
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]


def test_config_json_round_trip(trained_run):
    run = trained_run["dir"]
    stored = TrainConfig.from_json(run / "config.json")
    expected = parse_config(trained_run["args"])
    assert stored.experiment_dict() == expected.experiment_dict()
    assert stored.run_dir == str(run)
    # every field is present in the file, defaults included
    on_disk = json.loads((run / "config.json").read_text())
    assert set(on_disk) == set(TrainConfig().to_dict())
    assert on_disk["lr_values"] == [1e-3, 1e-4, 1e-5] and on_disk["lr_milestones"] == [80, 160]
    assert TrainConfig.from_dict(stored.to_dict()) == stored


def test_metrics_json_and_stdout(trained_run):
    metrics = json.loads((trained_run["dir"] / "metrics.json").read_text())
    summary = json.loads(trained_run["proc"].stdout)
    ds = metrics["datasets"]["synthetic"]
    assert ds["protocol"] == "market1501" and ds["num_query"] > 0 and ds["num_gallery"] > 0
    for when in ("before", "after"):
        assert set(ds[when]) == {"global", "global+local", "re-ranked"}
        for m in ds[when].values():
            for key in ("rank1", "rank5", "rank10", "mAP", "mINP"):
                assert 0.0 <= m[key] <= 1.0
            assert m["rank1"] <= m["rank5"] <= m["rank10"]
            assert len(m["cmc"]) == 50
    assert summary["status"] == "finished" and summary["run_dir"] == str(trained_run["dir"])
    assert summary["datasets"]["synthetic"]["after"]["global"]["rank1"] == \
        ds["after"]["global"]["rank1"]
    assert set(summary["final_logs"]) >= {"loss", "id_loss", "global_loss", "local_loss"}


def test_dump_is_readable_and_metrics_match_brute_force(trained_run, cache_dir):
    from data_prep.manifest import load_manifest
    from reference import read_dump

    dump = read_dump(trained_run["dir"] / "features" / "synthetic.h5")
    manifest = load_manifest(prepared_dir(cache_dir))
    query, gallery = manifest.split("query"), manifest.split("gallery")
    assert dump.attrs["protocol"] == "market1501" and dump.attrs["dataset"] == "synthetic"
    assert dump.query["global"].shape == (len(query), 256)
    assert dump.query["local"].shape == (len(query), 4, 128)  # 64x32 input, stride 16
    assert dump.gallery["global"].shape == (len(gallery), 256)
    np.testing.assert_array_equal(dump.query["pid"], query.pids)
    np.testing.assert_array_equal(dump.gallery["camid"], gallery.camids)
    assert list(dump.query["path"])[0].startswith("images/query/")
    rank1, mean_ap = _market_metrics(dump.query, dump.gallery)
    after = json.loads((trained_run["dir"] / "metrics.json").read_text())
    after = after["datasets"]["synthetic"]["after"]["global"]
    assert after["rank1"] == pytest.approx(rank1, abs=1e-6)
    assert after["mAP"] == pytest.approx(mean_ap, abs=1e-5)


def test_refuses_to_overwrite_a_finished_run(trained_run, capsys):
    before = (trained_run["dir"] / "metrics.json").stat().st_mtime_ns
    code = main(trained_run["args"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "--overwrite" in err[0] and "finished run" in err[0]
    assert (trained_run["dir"] / "metrics.json").stat().st_mtime_ns == before


def test_run_dir_rules(tmp_path):
    exp = TrainConfig().resolved().experiment_dict()
    run, resuming = open_run_dir(tmp_path / "new", exp)
    assert not resuming
    # a foreign non-empty directory is refused and never deleted, even with --overwrite
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    for overwrite in (False, True):
        with pytest.raises(RunDirError, match="not a run directory"):
            open_run_dir(foreign, exp, overwrite=overwrite)
    assert (foreign / "keep.txt").exists()
    # an unfinished run with the same settings resumes; other settings are refused
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text(json.dumps(TrainConfig().resolved().to_dict()))
    assert open_run_dir(old, exp)[1] is True
    other = TrainConfig(epochs=99).resolved().experiment_dict()
    with pytest.raises(RunDirError, match="--epochs"):
        open_run_dir(old, other)
    run, resuming = open_run_dir(old, other, overwrite=True)
    assert not resuming and not (old / "config.json").exists()
    with pytest.raises(RunDirError, match="--resume"):
        open_run_dir(tmp_path / "empty", exp, resume=True)


@pytest.mark.parametrize("argv, needle", [
    (["--epochs", "0"], "--epochs"),
    (["--P", "x"], "--P"),
    (["--image-size", "16", "16"], "--image-size"),
    (["--no-local", "--unaligned-local"], "--unaligned-local"),
    (["--lr-milestones", "10", "5"], "--lr-milestones"),
    (["--lr-milestones", "10", "--lr-values", "1e-3"], "--lr-values"),
    (["--weights", "/nonexistent/weights.h5"], "--weights"),
    (["--backbone", "vgg"], "--backbone"),
    (["--overwrite", "--resume"], "--resume"),
    (["--data", "/nonexistent/prepared"], "--data"),
    (["--strategy", "multiworker"], "TF_CONFIG"),
])
def test_bad_arguments_give_one_line_errors(argv, needle, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2
    assert len(err) == 1 and needle in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_cli_subprocess_error_and_help():
    env = subprocess_env()
    proc = subprocess.run([sys.executable, "train.py", "--K", "1"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "train.py: error: --K: must be >= 2 (got 1)"]
    text = build_parser().format_help()
    for f in TrainConfig.__dataclass_fields__.values():
        if f.metadata["group"] == "derived":  # filled in by resolved(), not a flag
            assert f.metadata["flag"] is None
            continue
        assert f.metadata["flag"] in text


def test_lr_schedule_matches_paper_recipes():
    plain = TrainConfig().resolved()
    dense = [1e-3] * 80 + [1e-4] * 80 + [1e-5] * 40
    assert [plain.lr_at_epoch(e) for e in range(200)] == pytest.approx(dense)
    mutual = TrainConfig(mutual=True).resolved()
    assert mutual.lr_values == pytest.approx([3e-4, 1e-4, 1e-5])
    assert mutual.lr_milestones == [60, 120]
    assert [mutual.lr_at_epoch(e) for e in (0, 59, 60, 119, 120)] == pytest.approx(
        [3e-4, 3e-4, 1e-4, 1e-4, 1e-5])
    custom = TrainConfig(lr=2e-3, lr_milestones=[5]).resolved()
    assert custom.lr_values == pytest.approx([2e-3, 2e-4])


def test_tiny_args_are_valid(tmp_path):
    cfg = parse_config(tiny_args(tmp_path, tmp_path / "r"))
    assert cfg.image_size == [64, 32] and cfg.P == 4
