"""Fault tolerance: SIGKILL mid-epoch and resume; NaN guard."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.train.conftest import REPO, subprocess_env, tiny_args


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _latest_checkpoint(run_dir):
    text = (run_dir / "checkpoints" / "checkpoint").read_text()
    return re.search(r'model_checkpoint_path: "ckpt-(\d+)"', text).group(1)


def test_sigkill_mid_epoch_then_rerun_resumes(cache_dir, trained_run, tmp_path):
    run_dir = tmp_path / "killed"
    args = tiny_args(cache_dir, run_dir)
    cmd = [sys.executable, str(REPO / "train.py"), *args]
    # A test callback slows every step down so that the kill lands between
    # the mid-epoch checkpoint (global step 2) and the end of the epoch.
    slow = [sys.executable, str(REPO / "tests" / "train" / "hooks.py"),
            json.dumps({"step_delay": 0.75}), *args]
    proc = subprocess.Popen(slow, cwd=REPO, env=subprocess_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    index = run_dir / "checkpoints" / "checkpoint"
    deadline = time.monotonic() + 150
    while not index.exists():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    saved = _latest_checkpoint(run_dir)
    assert saved == "2"  # mid-epoch: epoch 1, step 2 of 3
    assert not (run_dir / "metrics.json").exists()
    assert json.loads((run_dir / "status.json").read_text())["state"] == "running"

    # the same command again continues from the checkpoint
    again = subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True,
                           text=True, timeout=170)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed from checkpoint ckpt-2 at epoch 1, step 2 (global step 2)" in again.stderr
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    assert (run_dir / "metrics.json").is_file() and (run_dir / "model.keras").is_file()
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["resumed_from"] == {"epoch": 0, "step": 2, "global_step": 2}

    # the epochs of the CSV continue, and the numbers equal the uninterrupted run
    resumed = _rows(run_dir / "log.csv")
    reference = _rows(trained_run["dir"] / "log.csv")
    assert [r["epoch"] for r in resumed] == ["1", "2"]
    for a, b in zip(resumed, reference):
        for key in ("loss", "id_loss", "global_loss", "local_loss", "lr"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-4), key


def test_nan_stops_with_message_and_keeps_last_good_checkpoint(cache_dir, tmp_path, capsys):
    import tensorflow as tf

    from reid_tf.train_cli import main
    from tests.train.hooks import InjectNaN

    run_dir = tmp_path / "nan"
    # weights become NaN before global step 3, after the checkpoint of step 2
    code = main(tiny_args(cache_dir, run_dir), callbacks=[InjectNaN(3)])
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 1
    assert len(err) == 1 and err[0].startswith("train.py: error: non-finite")
    assert "ckpt-2" in err[0]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "non-finite" in status["message"]
    assert _latest_checkpoint(run_dir) == "2"
    reader = tf.train.load_checkpoint(str(run_dir / "checkpoints" / "ckpt-2"))
    floats = [reader.get_tensor(name) for name in reader.get_variable_to_shape_map()]
    floats = [t for t in floats if isinstance(t, np.ndarray) and t.dtype.kind == "f"]
    assert floats and all(np.isfinite(t).all() for t in floats)
    assert not (run_dir / "model.keras").exists()
    assert not (run_dir / "metrics.json").exists()
    assert not (run_dir / "log.csv").exists()  # epoch 1 never finished
