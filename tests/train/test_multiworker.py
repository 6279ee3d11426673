"""tf.distribute: MultiWorkerMirroredStrategy with two local worker processes.

Two ``train.py --strategy multiworker`` processes on 127.0.0.1 (TF_CONFIG
with two free ports) train the tiny configuration together with the custom
loop of ``reid_tf.distributed`` (one CPU replica per worker, so each replica
mines its hard examples among P / 2 identities). Each process runs through a
small wrapper that, after training, writes a SHA-256 of its network weights
(trainable and non-trainable separately) and its last logs: synchronous
data-parallel training must leave bit-identical weights on both workers.

Oracle for the losses: alongside, ``fit()`` under MirroredStrategy over two
logical CPU devices (Keras' own distributed step, which splits the batch into
the same contiguous per-replica shares) must log the same first-epoch loss
terms as the two workers' custom loop.

All processes are killed if the test fails or times out.
"""

import contextlib
import csv
import json
import socket
import subprocess
import sys
import time

import pytest

from tests.train.conftest import REPO, subprocess_env, tiny_args

WRAPPER = r"""
import hashlib, json, sys
import numpy as np
from reid_tf import train_cli

out_path = sys.argv[1]
original = train_cli.train_epochs

def train_epochs(cfg, trainer, *args, **kwargs):
    result = original(cfg, trainer, *args, **kwargs)
    digests = {}
    for kind, weights in (("trainable", trainer.trainable_weights),
                          ("non_trainable", trainer.non_trainable_weights)):
        h = hashlib.sha256()
        for v in weights:
            h.update(np.ascontiguousarray(v.numpy()).tobytes())
        digests[kind] = h.hexdigest()
    record = {"digests": digests, "count": len(trainer.weights),
              "logs": result["last_logs"],
              "iterations": int(trainer.optimizer.iterations.numpy())}
    with open(out_path, "w") as f:
        json.dump(record, f)
    return result

train_cli.train_epochs = train_epochs
sys.exit(train_cli.main(sys.argv[2:]))
"""

MIRRORED = r"""
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from reid_tf.train_cli import main
sys.exit(main(sys.argv[1:]))
"""

TIMEOUT = 150


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def test_two_workers_train_synchronously(cache_dir, tmp_path):
    from reid_tf.train_cli import parse_config, prepare_synthetic

    run_dir, mirrored_dir = tmp_path / "multiworker", tmp_path / "mirrored"
    args = tiny_args(cache_dir, run_dir, "--strategy", "multiworker", "--json")
    prepare_synthetic(parse_config(args), lambda message: None)  # not twice at once
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    commands = [
        ([sys.executable, "-c", WRAPPER, str(tmp_path / f"worker{index}.json"), *args],
         subprocess_env(TF_CONFIG=json.dumps(
             {"cluster": cluster, "task": {"type": "worker", "index": index}})))
        for index in range(2)
    ]
    # Oracle (run alongside): Keras' own fit() under MirroredStrategy over two CPU
    # devices splits the batch the same way (contiguous halves, per-replica
    # mining, loss / R, summed gradients), so the logged losses must agree.
    commands.append(([sys.executable, "-c", MIRRORED, *tiny_args(
        cache_dir, mirrored_dir, "--strategy", "mirrored", "--epochs", "1")], subprocess_env()))
    procs = []
    with contextlib.ExitStack() as files:
        try:
            for index, (command, env) in enumerate(commands):
                log = files.enter_context(open(tmp_path / f"process{index}.log", "w"))
                procs.append(subprocess.Popen(
                    command, cwd=REPO, env=env, stderr=log, text=True,
                    stdout=subprocess.PIPE if index == 0 else subprocess.DEVNULL))
            deadline = time.monotonic() + TIMEOUT
            stdout = procs[0].communicate(timeout=TIMEOUT)[0]
            for proc in procs[1:]:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail("the training processes did not finish in time")
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=30)
    for index, proc in enumerate(procs):
        text = (tmp_path / f"process{index}.log").read_text()
        assert proc.returncode == 0, text[-3000:]
    records = [json.loads((tmp_path / f"worker{i}.json").read_text()) for i in range(2)]

    # synchronous training: the same weights on both workers, bit for bit
    # (batch-norm moving statistics are averaged over the replicas each epoch)
    assert records[0]["digests"] == records[1]["digests"]
    assert records[0]["count"] == records[1]["count"] > 0
    assert records[0]["iterations"] == records[1]["iterations"] == 2 * 3
    # logged terms are reduced over both replicas: the same on both workers
    assert records[0]["logs"] == records[1]["logs"]
    for key in ("loss", "id_loss", "global_loss", "local_loss"):
        assert key in records[0]["logs"]

    # the chief (worker 0) owns the run directory
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["replicas"] == 2 and summary["status"] == "finished"
    assert (run_dir / "model.keras").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["datasets"]["synthetic"]["after"]["global"]["num_valid_queries"] > 0
    assert (run_dir / "features" / "synthetic.h5").is_file()
    rows = _csv(run_dir / "log.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("ckpt-*.index")) == \
        ["ckpt-4.index", "ckpt-6.index"]
    # the CSV holds the chief's epoch means, which equal the reduced logs
    assert float(rows[-1]["loss"]) == pytest.approx(records[0]["logs"]["loss"], rel=1e-5)

    reference = _csv(mirrored_dir / "log.csv")[0]
    for key in ("loss", "id_loss", "global_loss", "local_loss", "id_accuracy"):
        assert float(rows[0][key]) == pytest.approx(float(reference[key]), rel=1e-4,
                                                    abs=1e-6), key


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
