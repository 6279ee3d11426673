"""train.py on the JAX and PyTorch backends (subprocesses with ``KERAS_BACKEND``).

- the training state of :mod:`reid_tf.checkpoint` round-trips exactly on
  JAX and PyTorch: a short ``fit``, a save, a new trainer, a restore, the
  same variables bit for bit, and the same next training step;
- under JAX, ``--strategy mirrored`` is ``keras.distribution.DataParallel``
  over two virtual CPU devices (XLA flags) and its first epoch logs the
  losses of the one-device JAX run (one program over the whole batch);
- what a backend cannot run is refused at start in one line, exit 2;
- under JAX, ``train.py`` runs with TensorFlow unimportable (a JAX-only
  installation).

The SIGKILL-then-resume test on JAX is in ``test_resume.py``.
"""

import csv
import json
import subprocess
import sys

import pytest

from tests.train.conftest import REPO, run_train, subprocess_env, tiny_args

ROUND_TRIP = r"""
import json, sys, tempfile
import keras
import numpy as np
from reid_tf.checkpoint import TrainingState
from reid_tf.model import build_model
from reid_tf.training import AlignedReIDModel

def trainer(seed):
    keras.utils.set_random_seed(seed)
    t = AlignedReIDModel(build_model("tiny", 4, (64, 32, 3), local_channels=8))
    t.compile(optimizer=keras.optimizers.Adam(1e-3))
    t.optimizer.build(t.trainable_variables)
    return t

rng = np.random.default_rng(0)
x = rng.uniform(0, 1, (16, 64, 32, 3)).astype("float32")
y = np.repeat(np.arange(4), 4).astype("int32")
a = trainer(1)
a.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
state = TrainingState(a, tempfile.mkdtemp())
path = state.save(epoch=1, step=0, global_step=2)
b = trainer(2)  # other initial weights
position = TrainingState(b, state.directory).restore()
iterations = int(keras.ops.convert_to_numpy(b.optimizer.iterations))
same = all(np.array_equal(keras.ops.convert_to_numpy(u), keras.ops.convert_to_numpy(v))
           for u, v in zip(a.variables + a.optimizer.variables,
                           b.variables + b.optimizer.variables))
la = a.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0).history["loss"][-1]
lb = b.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0).history["loss"][-1]
print(json.dumps({"backend": keras.backend.backend(), "same": same,
                  "count": len(a.variables) + len(a.optimizer.variables),
                  "iterations": iterations,
                  "position": [position["epoch"], position["step"], position["global_step"]],
                  "losses": [float(la), float(lb)]}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_training_state_round_trip(backend):
    proc = subprocess.run([sys.executable, "-c", ROUND_TRIP], cwd=REPO,
                          env=subprocess_env(KERAS_BACKEND=backend), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == backend
    assert out["same"] and out["count"] > 20
    assert out["iterations"] == 2 and out["position"] == [1, 0, 2]
    assert out["losses"][0] == pytest.approx(out["losses"][1], rel=1e-6)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_jax_data_parallel_on_two_cpu_devices(jax_trained_run, cache_dir, tmp_path):
    run_dir = tmp_path / "data-parallel"
    env = subprocess_env(KERAS_BACKEND="jax",
                         XLA_FLAGS="--xla_force_host_platform_device_count=2")
    proc = run_train(tiny_args(cache_dir, run_dir, "--strategy", "mirrored", "--epochs", "1"),
                     env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["replicas"] == 2 and summary["backend"] == "jax"
    assert "2 CPU devices" in (run_dir / "train.log").read_text()
    got, want = _rows(run_dir / "log.csv"), _rows(jax_trained_run["dir"] / "log.csv")
    assert [r["epoch"] for r in got] == ["1"]
    # the sharded step sums in another order (batch-norm moments, the
    # gradient all-reduce): equal to rounding, not bit for bit; mining per
    # device would change the TriHard terms by far more
    for key in ("loss", "id_loss", "global_loss", "local_loss", "id_accuracy"):
        assert float(got[0][key]) == pytest.approx(float(want[0][key]), rel=1e-3,
                                                   abs=1e-6), key


@pytest.mark.parametrize("backend, strategy, needle", [
    ("jax", "multiworker", "needs the TensorFlow backend"),
    ("torch", "mirrored", "trains on one device"),
])
def test_what_a_backend_cannot_run_is_refused_at_start(backend, strategy, needle, tmp_path):
    run_dir = tmp_path / "refused"
    proc = run_train(["--strategy", strategy, "--run-dir", str(run_dir)],
                     env=subprocess_env(KERAS_BACKEND=backend), timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error: --strategy")
    assert needle in lines[0] and f"KERAS_BACKEND={backend}" in lines[0]
    assert not run_dir.exists()


NO_TENSORFLOW = r"""
import json, sys
class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NoTensorFlow())
from reid_tf.train_cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "tensorflow": "tensorflow" in sys.modules}))
"""


def test_jax_trains_without_tensorflow(cache_dir, tmp_path):
    """A JAX-only installation: TensorFlow unimportable, a whole run."""
    run_dir = tmp_path / "no-tf"
    args = tiny_args(cache_dir, run_dir, "--epochs", "1", "--steps-per-epoch", "2",
                     "--checkpoint-every", "1")
    env = subprocess_env(KERAS_BACKEND="jax")
    proc = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"code": 0, "tensorflow": False}
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["backend"] == "jax" and summary["status"] == "finished"
    index = json.loads((run_dir / "checkpoints" / "index.json").read_text())
    assert index["latest"] == "ckpt-2.h5" and (run_dir / "model.keras").is_file()
