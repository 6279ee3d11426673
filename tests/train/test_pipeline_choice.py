"""train.py with --pipeline pydataset on the TensorFlow backend trains on the
batches tf.data gives: the same losses, epoch by epoch, as the tiny run of
the session (the default pipeline there, tf.data)."""

import csv

import numpy as np

from tests.train.conftest import run_train, tiny_args


def _losses(run_dir):
    with open(run_dir / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in rows[0] if k not in ("time_s",)}


def test_pydataset_run_matches_the_tfdata_run(trained_run, cache_dir, tmp_path):
    run_dir = tmp_path / "pydataset"
    proc = run_train(tiny_args(cache_dir, run_dir, "--json", "--pipeline", "pydataset"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ours, theirs = _losses(run_dir), _losses(trained_run["dir"])
    assert set(ours) == set(theirs) and len(ours["loss"]) == 2
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, err_msg=key)
