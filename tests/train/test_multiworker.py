"""tf.distribute: MultiWorkerMirroredStrategy with two local worker processes.

Two ``train.py --strategy multiworker`` processes on 127.0.0.1 (TF_CONFIG
with two free ports) train the tiny configuration together with the custom
loop of ``reid_tf.distributed`` (one CPU replica per worker, so each replica
mines its hard examples among P / 2 identities). Each process runs
``tests/train/hooks.py`` with a test callback that, at the end of training,
writes a SHA-256 of its network weights (trainable and non-trainable
separately) and its last logs: synchronous data-parallel training must leave
bit-identical weights on both workers.

Oracles: alongside, ``fit()`` under MirroredStrategy over two
logical CPU devices (Keras' own distributed step, which splits the batch into
the same contiguous per-replica shares) must log the same first-epoch loss
terms as the two workers' custom loop; and the loop's input, given two
local replicas, must split batches as ``experimental_distribute_dataset``.

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

MIRRORED = r"""
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from reid_tf.distributed import DistributedLoop
from reid_tf.strategy import make_strategy
from reid_tf.train_cli import main

# a worker with two local replicas: the loop's input must split each global
# batch exactly as tf.distribute's own experimental_distribute_dataset does
strategy = make_strategy("mirrored")
ds = tf.data.Dataset.range(3).map(lambda b: (
    tf.zeros([8, 4, 2, 3]) + tf.cast(b, tf.float32),
    tf.range(8, dtype=tf.int32) + 8 * tf.cast(b, tf.int32)))

class Trainer:  # distribute() needs no model
    metrics = []

def shares(dist):
    return [[np.asarray(x).tolist() for x in strategy.experimental_local_results(labels)]
            for _, labels in dist]

loop = DistributedLoop(Trainer(), strategy, global_batch=8)
with open(sys.argv[1], "w") as f:
    json.dump({"loop": shares(loop.distribute(ds)),
               "tf": shares(strategy.experimental_distribute_dataset(ds))}, f)
sys.exit(main(sys.argv[2:]))
"""

TIMEOUT = 150
HOOKS = REPO / "tests" / "train" / "hooks.py"


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
    from reid_tf.train_cli import parse_config
    from reid_tf.train_data import prepare_synthetic

    run_dir, mirrored_dir = tmp_path / "multiworker", tmp_path / "mirrored"
    args = tiny_args(cache_dir, run_dir, "--strategy", "multiworker", "--json", "-")
    prepare_synthetic(parse_config(args), lambda message: None)  # not twice at once
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    commands = [
        ([sys.executable, str(HOOKS), json.dumps({"digest": str(tmp_path / f"worker{index}.json")}),
          *args],
         subprocess_env(TF_CONFIG=json.dumps(
             {"cluster": cluster, "task": {"type": "worker", "index": index}})))
        for index in range(2)
    ]
    # Oracle (run alongside): Keras' own fit() under MirroredStrategy over two CPU
    # devices splits the batch the same way (contiguous halves, per-replica
    # mining, loss / R, summed gradients), so the logged losses must agree.
    commands.append(([sys.executable, "-c", MIRRORED, str(tmp_path / "split.json"), *tiny_args(
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
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("ckpt-*")) == \
        ["ckpt-4.h5", "ckpt-6.h5"]
    # the CSV holds the chief's epoch means, which equal the reduced logs
    assert float(rows[-1]["loss"]) == pytest.approx(records[0]["logs"]["loss"], rel=1e-5)

    split = json.loads((tmp_path / "split.json").read_text())
    assert split["loop"] == split["tf"]
    assert split["loop"][1] == [[8, 9, 10, 11], [12, 13, 14, 15]]

    reference = _csv(mirrored_dir / "log.csv")[0]
    for key in ("loss", "id_loss", "global_loss", "local_loss", "id_accuracy"):
        assert float(rows[0][key]) == pytest.approx(float(reference[key]), rel=1e-4,
                                                    abs=1e-6), key


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_replica_shares_slices_and_errors():
    import tensorflow as tf

    from reid_tf.distributed import replica_shares

    labels = tf.range(12)
    ds = tf.data.Dataset.from_tensors((tf.zeros([12, 2, 2, 3]), labels)).repeat(2)
    got = [lab.numpy().tolist() for _, lab in replica_shares(ds, 12, 3, 1, 2)]
    assert got == [[4, 5, 6, 7], [8, 9, 10, 11]] * 2
    with pytest.raises(ValueError, match="global_batch"):
        replica_shares(ds, 12, 5, 0, 1)
    with pytest.raises(ValueError, match="first_replica"):
        replica_shares(ds, 12, 3, 2, 2)


def test_jit_compile_is_refused(monkeypatch, capsys, tmp_path):
    from reid_tf.train_cli import main

    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
         "task": {"type": "worker", "index": 0}}))
    code = main(["--strategy", "multiworker", "--jit-compile",
                 "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("train.py: error: --jit-compile")
    assert not (tmp_path / "r").exists()
