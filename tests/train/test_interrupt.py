"""Interrupting a run and continuing it with the same command.

Ctrl-C (SIGINT) and SIGTERM leave ``status.json`` at ``interrupted``;
running the identical command again (no ``--run-dir``) resumes the newest
interrupted run with the same settings; a changed setting starts a new run;
a usage error leaves an existing run's files as they were. The TensorBoard
logs written across the interruption are read back with TensorFlow's event
reader.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reid_tf.config import TrainConfig
from reid_tf.resumption import choose_run_dir, resumable
from reid_tf.run_dir import RunDir, RunDirError
from reid_tf.train_cli import main, parse_config
from tests.train.conftest import REPO, subprocess_env, tiny_args


def _args(cache_dir, *extra):
    """The tiny configuration without --run-dir (the runs root is runs/ in the cwd)."""
    args = tiny_args(cache_dir, "unused", *extra)
    i = args.index("--run-dir")
    return args[:i] + args[i + 2:]


def _status(run_dir):
    return json.loads((Path(run_dir) / "status.json").read_text())


def _runs(cwd):
    root = Path(cwd) / "runs"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _interrupt(cwd, args, sig, known=()):
    """Starts a slowed-down run, sends ``sig`` once its first checkpoint is saved.

    Returns the new run directory, the exit status and stderr.
    """
    slow = [sys.executable, str(REPO / "tests" / "train" / "hooks.py"),
            json.dumps({"step_delay": 0.75}), *args]
    proc = subprocess.Popen(slow, cwd=cwd, env=subprocess_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 150
    run_dir = None
    while run_dir is None or not RunDir(run_dir).has_checkpoint():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        new = [p for p in _runs(cwd) if p not in known]
        run_dir = new[0] if new else None
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return run_dir, proc.returncode, err


def _scalars(directory):
    """tag -> {step: value} of every event file under ``directory``."""
    import tensorflow as tf

    out = {}
    for path in Path(directory).rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for v in event.summary.value:
                value = float(tf.make_ndarray(v.tensor)) if v.HasField("tensor") \
                    else v.simple_value
                out.setdefault(v.tag, {})[event.step] = value
    return out


def test_interrupted_runs_continue_with_the_same_command(cache_dir, trained_run, tmp_path):
    cwd = tmp_path / "work"
    cwd.mkdir()
    board = tmp_path / "board"
    args = _args(cache_dir, "--tensorboard", str(board), "--eval-every", "1")

    # Ctrl-C after the mid-epoch checkpoint (global step 2)
    first, code, err = _interrupt(cwd, args, signal.SIGINT)
    assert code == 130, err[-3000:]
    status = _status(first)
    assert status["state"] == "interrupted" and status["message"] == "Ctrl-C"
    assert status["checkpoint"] == {"epoch": 0, "step": 2, "global_step": 2}
    last = err.strip().splitlines()[-1]
    assert last == (f"train.py: interrupted (Ctrl-C); runs/{first.name} keeps its checkpoint "
                    "at epoch 1, step 2 (global step 2): run the same command again, in this "
                    "directory, to continue from there")
    kept = (first / "status.json").read_bytes()

    # a changed setting does not pick the interrupted run up; SIGTERM stops cleanly
    other, code, err = _interrupt(cwd, _args(cache_dir, "--seed", "1"), signal.SIGTERM,
                                  known=[first])
    assert other != first and other.parent == first.parent
    assert code == 143, err[-3000:]
    assert _status(other)["state"] == "interrupted" and _status(other)["message"] == "SIGTERM"
    assert "train.py: interrupted (SIGTERM)" in err
    assert (first / "status.json").read_bytes() == kept

    # the identical command resumes the first run and finishes it
    again = subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=cwd,
                           env=subprocess_env(), capture_output=True, text=True, timeout=170)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming the interrupted run runs/{first.name}" in again.stderr
    assert _runs(cwd) == sorted([first, other])
    assert _status(first)["state"] == "finished"
    assert _status(other)["state"] == "interrupted"
    summary = json.loads((first / "metrics.json").read_text())
    assert summary["resumed_from"] == {"epoch": 0, "step": 2, "global_step": 2}
    with open(first / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    reference = list(csv.DictReader(open(trained_run["dir"] / "log.csv", newline="")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for a, b in zip(rows, reference):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-4)

    # TensorBoard: both epochs' losses (the second process wrote them), the
    # learning rate, the periodic metrics, the before/after evaluation
    scalars = _scalars(board)
    for tag in ("epoch_loss", "epoch_global_loss", "epoch_local_loss", "epoch_lr",
                "epoch_synthetic/global/rank1", "epoch_synthetic/global+local/mAP"):
        assert sorted(scalars[tag]) == [0, 1], tag
    for epoch, row in enumerate(rows):
        assert scalars["epoch_loss"][epoch] == pytest.approx(float(row["loss"]), rel=1e-5)
        assert scalars["epoch_synthetic/global/rank1"][epoch] == pytest.approx(
            float(row["synthetic/global/rank1"]), abs=1e-6)
    after = summary["datasets"]["synthetic"]["after"]["re-ranked"]["mAP"]
    before = summary["datasets"]["synthetic"]["before"]["global"]["rank1"]
    assert scalars["after/synthetic/re-ranked/mAP"] == {1: pytest.approx(after, abs=1e-6)}
    assert scalars["before/synthetic/global/rank1"] == {0: pytest.approx(before, abs=1e-6)}

    # a finished run is not resumed: the same command starts a new run (and says so)
    cfg = parse_config(args)
    notes = []
    run, resuming = choose_run_dir(None, cfg.experiment_dict(), root=cwd / "runs",
                                   log=notes.append)
    assert not resuming and run.path not in (first, other)
    assert notes == [f"{cwd / 'runs' / first.name} holds a run with the same settings that "
                     f"is finished; starting a new run in {run.path}"]


def _fake_run(root, name, cfg, state, mtime):
    run = RunDir(Path(root) / name)
    run.path.mkdir(parents=True)
    run.config_path.write_text(json.dumps(cfg.to_dict()))
    run.set_status(state)
    os.utime(run.status_path, (mtime, mtime))
    return run


def test_the_run_directory_rule(tmp_path):
    cfg = TrainConfig().resolved()
    other = TrainConfig(epochs=99).resolved()
    exp = cfg.experiment_dict()
    root = tmp_path / "runs"
    old = _fake_run(root, "a", cfg, "interrupted", 1_000)
    killed = _fake_run(root, "b", cfg, "running", 2_000)          # no live lock holder
    _fake_run(root, "c", other, "interrupted", 3_000)             # other settings
    _fake_run(root, "d", cfg, "finished", 4_000)
    live = _fake_run(root, "e", cfg, "running", 5_000)
    live.lock()
    try:
        assert not resumable(live.path) and resumable(killed.path) and resumable(old.path)
        # the newest resumable run with the same settings: the killed one
        run, resuming = choose_run_dir(None, exp, root=root)
        assert resuming and run.path == killed.path
        # invocation-only settings do not count
        quiet = TrainConfig(quiet=True, json=True, tensorboard="tb", eval_every=3).resolved()
        assert choose_run_dir(None, quiet.experiment_dict(), root=root)[0].path == killed.path
        # a new run on request, and for other settings without an interrupted run
        notes = []
        run, resuming = choose_run_dir(None, exp, new_run=True, root=root, log=notes.append)
        assert not resuming and run.path.parent == root and not run.path.exists()
        assert notes == []
        fresh = TrainConfig(epochs=5).resolved().experiment_dict()
        assert choose_run_dir(None, fresh, root=root)[1] is False
        # only finished, failed or live runs with these settings: a new run, with a note
        killed.set_status("failed", message="TrainingFailed: non-finite")
        old.set_status("finished")
        for run, mtime in ((old, 1_000), (killed, 2_000)):   # "newest": status.json's time
            os.utime(run.status_path, (mtime, mtime))
        notes = []
        run, resuming = choose_run_dir(None, exp, root=root, log=notes.append)
        assert not resuming and run.path.name not in "abcde"
        assert notes == [f"{live.path} holds a run with the same settings that is in use by "
                         f"a running process; starting a new run in {run.path}"]
    finally:
        live.unlock()


def test_a_usage_error_leaves_the_run_it_would_resume_untouched(cache_dir, tmp_path, capsys):
    run_dir = tmp_path / "stopped"
    args = tiny_args(cache_dir, run_dir)
    run = _fake_run(tmp_path, "stopped", parse_config(args), "interrupted", 1_000)
    before = {p.name: p.read_bytes() for p in run.path.iterdir()}
    code = main([*args, "--resume"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"train.py: error: --resume: {run_dir} holds no checkpoint yet"]
    after = {p.name: p.read_bytes() for p in run.path.iterdir() if p.name != "run.lock"}
    assert after == before


def test_new_run_conflicts_are_usage_errors(capsys):
    for extra in (["--resume"], ["--run-dir", "x"]):
        assert main(["--new-run", *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("train.py: error: --new-run:")
    with pytest.raises(RunDirError, match="--resume"):
        choose_run_dir(None, {}, resume=True, root="/nonexistent/runs")


def test_tensorboard_without_its_package_is_a_usage_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboard", None)    # find_spec: not installed
    monkeypatch.chdir(tmp_path)
    assert main(["--tensorboard", str(tmp_path / "tb")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["train.py: error: --tensorboard: Keras writes TensorBoard logs with "
                   "TensorFlow's tf.summary, which needs tensorboard (pip install "
                   "'alignedreid[tensorboard]')"]
    assert not (tmp_path / "runs").exists() and not (tmp_path / "tb").exists()
