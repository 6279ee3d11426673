"""The plain-PyTorch network and losses of benchmarks/gpu against the Numba
reference. Run by ``test_gpu_benchmark.py`` in a process of their own: PyTorch
loaded next to TensorFlow in one process can crash while loading its compiler
extensions, so the main test process never imports torch."""

import numpy as np
import pytest
import torch

from benchmarks.gpu import torch_reid
from reference import local_distance, trihard_reference


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
