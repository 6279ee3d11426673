"""Fault tolerance: SIGKILL mid-epoch and resume (TensorFlow and JAX); NaN
guard; checkpoints of an earlier release."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from tests.train.conftest import REPO, model_weights, subprocess_env, tiny_args


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _latest_checkpoint(run_dir):
    index = json.loads((run_dir / "checkpoints" / "index.json").read_text())
    return index["latest"]


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_sigkill_mid_epoch_then_rerun_resumes(backend, cache_dir, request, tmp_path):
    reference = request.getfixturevalue(
        "trained_run" if backend == "tensorflow" else "jax_trained_run")["dir"]
    env = subprocess_env(KERAS_BACKEND=backend)
    run_dir = tmp_path / "killed"
    args = tiny_args(cache_dir, run_dir)
    cmd = [sys.executable, str(REPO / "train.py"), *args]
    # A test callback slows every step down so that the kill lands between
    # the mid-epoch checkpoint (global step 2) and the end of the epoch.
    slow = [sys.executable, str(REPO / "tests" / "train" / "hooks.py"),
            json.dumps({"step_delay": 0.75}), *args]
    proc = subprocess.Popen(slow, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    index = run_dir / "checkpoints" / "index.json"
    deadline = time.monotonic() + 150
    while not index.exists():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert _latest_checkpoint(run_dir) == "ckpt-2.h5"  # mid-epoch: epoch 1, step 2 of 3
    assert not (run_dir / "metrics.json").exists()
    assert json.loads((run_dir / "status.json").read_text())["state"] == "running"

    # the same command again continues from the checkpoint
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=170)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed from checkpoint ckpt-2.h5 at epoch 1, step 2 (global step 2)" in again.stderr
    assert f"backend: {backend} " in (run_dir / "train.log").read_text()
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    assert (run_dir / "metrics.json").is_file() and (run_dir / "model.keras").is_file()
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["resumed_from"] == {"epoch": 0, "step": 2, "global_step": 2}
    assert summary["backend"] == backend

    # the epochs of the CSV continue, and the numbers equal the uninterrupted run
    resumed = _rows(run_dir / "log.csv")
    uninterrupted = _rows(reference / "log.csv")
    assert [r["epoch"] for r in resumed] == ["1", "2"]
    for a, b in zip(resumed, uninterrupted):
        for key in ("loss", "id_loss", "global_loss", "local_loss", "lr"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-4), key
    # and so do the final weights
    got, want = model_weights(run_dir / "model.keras"), model_weights(reference / "model.keras")
    assert [name for name, _ in got] == [name for name, _ in want] and got
    for (name, a), (_, b) in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)


def test_nan_stops_with_message_and_keeps_last_good_checkpoint(cache_dir, tmp_path, capsys):
    from reid_tf.train_cli import main
    from tests.train.hooks import InjectNaN

    run_dir = tmp_path / "nan"
    # weights become NaN before global step 3, after the checkpoint of step 2
    code = main(tiny_args(cache_dir, run_dir), callbacks=[InjectNaN(3)])
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 1
    assert len(err) == 1 and err[0].startswith("train.py: error: non-finite")
    assert "ckpt-2.h5" in err[0]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "non-finite" in status["message"]
    assert _latest_checkpoint(run_dir) == "ckpt-2.h5"
    floats = []
    with h5py.File(run_dir / "checkpoints" / "ckpt-2.h5", "r") as f:
        f.visititems(lambda name, obj: floats.append(obj[()])
                     if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "f" else None)
    assert floats and all(np.isfinite(t).all() for t in floats)
    assert not (run_dir / "model.keras").exists()
    assert not (run_dir / "metrics.json").exists()
    assert not (run_dir / "log.csv").exists()  # epoch 1 never finished


def test_tf_train_checkpoint_of_an_earlier_release_is_refused(trained_run, cache_dir,
                                                              tmp_path, capsys):
    from reid_tf.train_cli import main

    run_dir = tmp_path / "old"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(trained_run["dir"] / "config.json", run_dir / "config.json")
    (run_dir / "status.json").write_text(json.dumps({"state": "running"}))
    legacy = 'model_checkpoint_path: "ckpt-2"\nall_model_checkpoint_paths: "ckpt-2"\n'
    (run_dir / "checkpoints" / "checkpoint").write_text(legacy)
    code = main(tiny_args(cache_dir, run_dir))
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 2
    assert len(err) == 1 and "tf.train checkpoint of an earlier release" in err[0]
    assert "--overwrite" in err[0]
    assert (run_dir / "checkpoints" / "checkpoint").read_text() == legacy
