"""benchmarks/gpu: the plain-PyTorch losses against the Numba reference, and
the whole benchmark at its CPU size (``--tiny``)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.gpu import torch_reid
from reference import local_distance, trihard_reference

ROOT = Path(__file__).resolve().parents[2]


def _losses_and_grads(g, loc, labels):
    gt = torch.tensor(g, dtype=torch.float64, requires_grad=True)
    lt = torch.tensor(loc, dtype=torch.float64, requires_grad=True)
    global_loss, local_loss = torch_reid.trihard_losses(gt, lt, torch.tensor(labels))
    (grad_g,) = torch.autograd.grad(global_loss, gt, retain_graph=True)
    (grad_l,) = torch.autograd.grad(local_loss, lt)
    return float(global_loss.detach()), float(local_loss.detach()), grad_g.numpy(), grad_l.numpy()


CASES = {
    # name: (global features, local features, labels)
    "random": lambda rng: (rng.normal(size=(16, 12)), rng.normal(size=(16, 6, 5)),
                           np.repeat(np.arange(4), 4)),
    # small integers: many exactly equal distances, so the tie rules decide
    "ties": lambda rng: (rng.integers(0, 2, size=(12, 3)).astype(float),
                         rng.integers(0, 2, size=(12, 4, 2)).astype(float),
                         np.repeat(np.arange(4), 3)),
    "uneven": lambda rng: (rng.normal(size=(7, 8)), rng.normal(size=(7, 5, 3)),
                           np.array([0, 0, 0, 1, 2, 2, 3])),
    "one_identity": lambda rng: (rng.normal(size=(4, 8)), rng.normal(size=(4, 3, 2)),
                                 np.zeros(4, int)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_plain_torch_losses_match_the_reference(case):
    g, loc, labels = CASES[case](np.random.default_rng(7))
    ref = trihard_reference(g, loc, labels)
    global_loss, local_loss, grad_g, grad_l = _losses_and_grads(g, loc, labels)
    assert global_loss == pytest.approx(ref["global_loss"], rel=1e-10, abs=1e-12)
    assert local_loss == pytest.approx(ref["local_loss"], rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(grad_g, ref["grad_global"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grad_l, ref["grad_local"], rtol=1e-9, atol=1e-12)
    if case == "one_identity":
        assert global_loss == 0 and local_loss == 0
    else:
        assert global_loss > 0 and local_loss > 0


def test_plain_torch_mining_matches_the_reference():
    g, loc, labels = CASES["ties"](np.random.default_rng(3))
    ref = trihard_reference(g, loc, labels)
    positive, negative, has_negative = torch_reid.hard_example_mining(
        torch_reid.pairwise_distance(torch.tensor(g)), torch.tensor(labels))
    np.testing.assert_array_equal(positive.numpy(), ref["positive"])
    np.testing.assert_array_equal(np.where(has_negative.numpy(), negative.numpy(), -1),
                                  ref["negative"])


def test_plain_torch_aligned_distance_matches_the_reference():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 7, 4)), rng.normal(size=(5, 3, 4))
    got = torch_reid.shortest_path(torch_reid.part_distances(torch.tensor(x), torch.tensor(y)))
    np.testing.assert_allclose(got.numpy(), [local_distance(a, b) for a, b in zip(x, y)],
                               rtol=1e-6)


def test_plain_torch_network_outputs():
    torch.manual_seed(0)
    net = torch_reid.AlignedReIDNet(num_classes=5).eval()
    with torch.no_grad():
        global_features, local, logits = net(torch.rand(2, 3, 64, 32))
    assert global_features.shape == (2, 2048)
    assert local.shape == (2, 2, 128) and bool((local >= 0).all())
    assert logits.shape == (2, 5)
    loss = torch_reid.alignedreid_loss((global_features, local, logits), torch.tensor([0, 1]))
    assert torch.isfinite(loss)


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
