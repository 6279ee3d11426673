"""The backend-agnostic tests of the model and the loss settings, run again
under ``KERAS_BACKEND=jax`` in a child pytest (the parent runs them under
TensorFlow). The losses are checked under JAX by
``test_gradcheck_backends.py``; a short fit, checkpoint and resume under JAX
by ``tests/train/test_backends.py`` and ``tests/train/test_resume.py``."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AGNOSTIC = ["tests/reid_tf/test_model.py", "tests/reid_tf/test_loss_settings.py"]


def test_backend_agnostic_tests_pass_under_jax():
    env = dict(os.environ, KERAS_BACKEND="jax", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *AGNOSTIC],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary
