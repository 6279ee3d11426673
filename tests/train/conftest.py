"""Shared fixtures of the train.py tests: a tiny synthetic configuration.

16 identities x 6 images at 64x32 pixels (8 training identities), P=4, K=4,
2 epochs of 3 steps, a checkpoint every 2 steps.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def tiny_args(cache_dir, run_dir, *extra):
    """train.py arguments of the tiny configuration."""
    return [
        "--cache-dir", str(cache_dir), "--run-dir", str(run_dir),
        "--synthetic-identities", "16", "--synthetic-images", "6",
        "--image-size", "64", "32", "--P", "4", "--K", "4",
        "--epochs", "2", "--steps-per-epoch", "3", "--checkpoint-every", "2",
        "--extract-batch-size", "32", "--quiet", *extra,
    ]


def subprocess_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["CUDA_VISIBLE_DEVICES"] = ""
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_train(args, env=None, timeout=170):
    """Runs train.py in a subprocess; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args], cwd=REPO,
        env=env or subprocess_env(), capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One synthetic-dataset cache for the whole session."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def trained_run(cache_dir, tmp_path_factory):
    """A finished tiny training run (subprocess, --json -, train.py's own
    TF_CPP_MIN_LOG_LEVEL default)."""
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    args = tiny_args(cache_dir, run_dir, "--json", "-")
    env = subprocess_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL")
    proc = run_train(args, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"dir": run_dir, "args": args, "proc": proc}


@pytest.fixture(scope="session")
def jax_trained_run(cache_dir, tmp_path_factory):
    """The tiny training run of :func:`trained_run` under ``KERAS_BACKEND=jax``."""
    run_dir = tmp_path_factory.mktemp("runs-jax") / "tiny"
    args = tiny_args(cache_dir, run_dir, "--json", "-")
    proc = run_train(args, env=subprocess_env(KERAS_BACKEND="jax"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"dir": run_dir, "args": args, "proc": proc}


def model_weights(path):
    """Every weight array of a ``.keras`` file, in file order (read with h5py)."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as z:
        data = z.read("model.weights.h5")
    arrays = []
    with h5py.File(io.BytesIO(data), "r") as f:
        f.visititems(lambda name, obj: arrays.append((name, obj[()]))
                     if isinstance(obj, h5py.Dataset) else None)
    return arrays


def prepared_dir(cache_dir):
    """The prepared synthetic dataset inside the cache."""
    found = sorted(Path(cache_dir).glob("synthetic-*/prepared"))
    assert len(found) == 1, found
    return found[0]
