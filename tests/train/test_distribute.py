"""tf.distribute: MirroredStrategy over two logical CPU devices.

Hard mining runs per replica (see docs/training.md): a P x K batch is split
into contiguous per-replica shares, so with P divisible by the number of
replicas each replica holds whole identities (all K images of P / R
identities). The subprocess checks that split on the real input pipeline
and trains the tiny configuration with ``--strategy mirrored``.

MultiWorkerMirroredStrategy runs through the custom loop of
``reid_tf.distributed`` and is tested with two worker processes in
``test_multiworker.py``.
"""

import json
import subprocess
import sys

from tests.train.conftest import REPO, prepared_dir, subprocess_env, tiny_args

SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from data_prep.manifest import load_manifest
from reid_tf.data import make_train_dataset
from reid_tf.strategy import make_strategy
from reid_tf.train_cli import main

strategy = make_strategy("mirrored")
train = load_manifest(sys.argv[1]).split("train")
ds = make_train_dataset(train.paths, train.labels, P=4, K=4, image_size=(64, 32),
                        seed=0, deterministic=True, scan=False).take(2)
shares = []
for images, labels in strategy.experimental_distribute_dataset(ds):
    shares.append([np.asarray(x).tolist() for x in strategy.experimental_local_results(labels)])
code = main(sys.argv[2:])
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "shares": shares, "code": code}))
"""


def test_mirrored_two_cpu_replicas(trained_run, cache_dir, tmp_path):
    run_dir = tmp_path / "mirrored"
    args = tiny_args(cache_dir, run_dir, "--strategy", "mirrored", "--epochs", "1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(prepared_dir(cache_dir)), *args],
                          cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                          timeout=170)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2 and out["code"] == 0
    for share0, share1 in out["shares"]:
        assert len(share0) == len(share1) == 8
        for share in (share0, share1):
            labels, counts = set(share), [share.count(x) for x in set(share)]
            assert len(labels) == 2 and counts == [4, 4]  # whole identities
        assert not set(share0) & set(share1)
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["replicas"] == 2
    assert summary["datasets"]["synthetic"]["after"]["global"]["num_valid_queries"] > 0


def test_multiworker_needs_tf_config(monkeypatch, capsys, tmp_path):
    from reid_tf.train_cli import main

    monkeypatch.setenv("TF_CONFIG", "not json")
    assert main(["--strategy", "multiworker", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "TF_CONFIG" in err[0]
    assert not (tmp_path / "r").exists()
