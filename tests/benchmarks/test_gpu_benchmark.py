"""benchmarks/gpu: the plain-PyTorch losses against the Numba reference (in a
process of their own, ``torch_checks.py``), and the whole benchmark at its CPU
size (``--tiny``)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_plain_torch_checks_pass_in_their_own_process():
    """torch_checks.py: 7 tests (losses and gradients in 4 cases, mining,
    the aligned distance, the network's outputs)."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(Path(__file__).with_name("torch_checks.py"))],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "7 passed" in result.stdout, result.stdout[-2000:]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The whole benchmark at its CPU size, once (the training part on TensorFlow)."""
    out = tmp_path_factory.mktemp("gpu_bench")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "--tiny", "--train-backend", "tensorflow",
         "--json", str(out / "r.json"), "--markdown", str(out / "r.md")],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    return result, json.loads((out / "r.json").read_text()), (out / "r.md").read_text()


def test_tiny_benchmark_measures_every_framework(tiny_run):
    result, data, md = tiny_run
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["part"]: row for row in data["steps"]}
    assert set(rows) == {"keras-jax", "keras-torch", "torch"}
    for part, row in rows.items():
        assert "error" not in row, row
        assert row["images_per_s"] > 0, row
        assert np.isfinite(row["first_loss"]) and np.isfinite(row["last_loss"])
        assert f"| {part} | 64x32 | 8 |" in md
    assert rows["keras-jax"]["backend"] == "jax" and rows["keras-jax"]["jit"] is True
    assert rows["keras-torch"]["backend"] == "torch"
    assert md in result.stdout


def test_tiny_benchmark_training_curve(tiny_run):
    _, data, md = tiny_run
    training = data["training"]
    assert "error" not in training, training
    curve = training["curve"]
    assert [row["epoch"] for row in curve] == [0, 1, 2]
    assert curve[0]["loss"] is None
    for row in curve:
        assert 0 <= row["rank1_global"] <= 1 and 0 <= row["rank1_global_local"] <= 1
    assert all(np.isfinite(row["loss"]) and row["loss"] > 0 for row in curve[1:])
    assert "| epoch | loss | rank-1 global | rank-1 global+local |" in md


def test_a_part_that_runs_out_of_time_is_a_row_saying_so():
    from benchmarks.gpu import run

    args = run.build_parser().parse_args(["--tiny"])
    run._tiny(args)
    row = run.run_step("torch", 64, 32, args, timeout=0.01)
    assert row["error"] == "timed out after 0 s" and "images_per_s" not in row
    md = run.markdown({"steps": [row]})
    assert "| torch | 64x32 | - | - | - | - | - | - | timed out after 0 s |" in md


def test_training_curve_is_read_from_the_run(tmp_path):
    from benchmarks.gpu import run

    (tmp_path / "log.csv").write_text(
        "epoch,loss,syn/global/rank1,syn/global+local/rank1\n1,4.5,0.25,0.5\n2,3.5,0.5,0.75\n")
    summary = {"datasets": {"syn": {"before": {"global": {"rank1": 0.125},
                                               "global+local": {"rank1": 0.0}}}}}
    assert run.read_training(tmp_path, summary) == [
        {"epoch": 0, "loss": None, "rank1_global": 0.125, "rank1_global_local": 0.0},
        {"epoch": 1, "loss": 4.5, "rank1_global": 0.25, "rank1_global_local": 0.5},
        {"epoch": 2, "loss": 3.5, "rank1_global": 0.5, "rank1_global_local": 0.75},
    ]
