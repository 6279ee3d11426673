"""reid-gradcheck on the JAX and PyTorch backends (subprocesses with
``KERAS_BACKEND``): each backend's own gradients (``jax.grad``,
``torch.autograd``) against the Numba reference, the NumPy closed forms and
the backend's float64 central differences."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("backend, only", [
    ("jax", "trihard,mutual"),  # JAX runs the checks op by op: the quick subset
    ("torch", "local,trihard,mutual"),
])
def test_quick_gradcheck_passes_on_backend(backend, only, tmp_path):
    out = tmp_path / "gradcheck.json"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "KERAS_BACKEND": backend,
           "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "reid_tf.gradcheck", "--quick", "--only", only,
                           "--json", str(out)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert f"backend {backend}" in proc.stderr
    payload = json.loads(out.read_text())
    assert payload["backend"] == backend and payload["passed"] is True
    assert payload["num_failed"] == 0 and payload["num_checks"] > 30
    kinds = {row["against"] for row in payload["checks"]}
    assert {"reference grad", "central FD", "analytic"} <= kinds
    dtypes = {row["dtype"] for row in payload["checks"]}
    assert dtypes == {"float32", "float64"}
