"""tf.distribute: MultiWorkerMirroredStrategy with two local worker processes.

Two ``train.py --strategy multiworker`` processes on 127.0.0.1 (TF_CONFIG
with two free ports) train the tiny configuration together with the custom
loop of ``reid_tf.distributed`` (one CPU replica per worker, so each replica
mines its hard examples among P / 2 identities). Each process runs through a
small wrapper that, after training, writes a SHA-256 of its network weights
(trainable and non-trainable separately) and its last logs: synchronous
data-parallel training must leave bit-identical weights on both workers.
Both processes are killed if the test fails or times out.
"""

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

    run_dir = tmp_path / "multiworker"
    args = tiny_args(cache_dir, run_dir, "--strategy", "multiworker", "--json")
    prepare_synthetic(parse_config(args), lambda message: None)  # not twice at once
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    try:
        for index in range(2):
            env = subprocess_env(TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}))
            out = tmp_path / f"worker{index}.json"
            log = open(tmp_path / f"worker{index}.log", "w")
            procs.append((subprocess.Popen(
                [sys.executable, "-c", WRAPPER, str(out), *args], cwd=REPO, env=env,
                stdout=subprocess.PIPE if index == 0 else subprocess.DEVNULL,
                stderr=log, text=True), out, log))
        deadline = time.monotonic() + TIMEOUT
        stdout = procs[0][0].communicate(timeout=TIMEOUT)[0]
        procs[1][0].wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pytest.fail("the workers did not finish in time")
    finally:
        for proc, _, log in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
            log.close()

    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    for (proc, _, _), text in zip(procs, logs):
        assert proc.returncode == 0, text[-3000:]
    records = [json.loads(out.read_text()) for _, out, _ in procs]

    # synchronous training: the same weights on both workers, bit for bit
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
    rows = (run_dir / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and rows[0].startswith("epoch,global_step,lr,loss")
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("ckpt-*.index")) == \
        ["ckpt-4.index", "ckpt-6.index"]
    # the CSV holds the chief's epoch means, which equal the reduced logs
    last = dict(zip(rows[0].split(","), rows[-1].split(",")))
    assert float(last["loss"]) == pytest.approx(records[0]["logs"]["loss"], rel=1e-5)
