"""AlignedReID written as plain PyTorch: the baseline of the GPU benchmark.

The same network and loss as ``reid_tf`` (``build_model`` + ``AlignedReIDModel``
with the default ``LossSettings``), in PyTorch without Keras:

    image [B, 3, H, W] -> torchvision ResNet-50 trunk -> [B, 2048, h, w]
        global: mean over (h, w)                          -> [B, 2048]
        local:  mean over w, then 1x1 (Linear, no bias), BatchNorm, ReLU
                                                           -> [B, h, c]
        logits: Linear on the global feature               -> [B, classes]

    loss = ID cross-entropy + TriHard(global) + TriHard(aligned local)

with batch-hard mining on the global distance (lowest index on ties, the
anchor counted among its positives), the mined pairs' distances from explicit
differences, local part distances ``tanh(||x_i - y_j|| / 2)`` and the aligned
local distance the shortest monotone path through them (AlignedReID, Eq. 2).
``tests/benchmarks/test_gpu_benchmark.py`` checks the losses and their
gradients against ``reference.trihard_reference``.
"""

import torch
import torch.nn.functional as F
from torch import nn


def safe_norm(x, dim=-1):
    """Euclidean norm along ``dim`` whose gradient is 0 at the origin."""
    sq = (x * x).sum(dim)
    positive = sq > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, sq, torch.ones_like(sq))),
                       torch.zeros_like(sq))


def pairwise_distance(a):
    """``[N, N]`` Euclidean distances between the rows of ``a`` (for mining)."""
    sq = (a * a).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2 * a @ a.T).clamp_min(0)
    return torch.sqrt(d2)


def hard_example_mining(dist, labels):
    """Hardest positive (largest distance) and negative (smallest) per anchor.

    Ties go to the lowest index. Returns ``(positive, negative,
    has_negative)``; ``negative`` is 0 where an anchor has no negative.
    """
    dist = dist.detach()
    same = labels[:, None] == labels[None, :]
    low, high = dist.min() - 1, dist.max() + 1
    ap = torch.where(same, dist, low).max(1, keepdim=True).values
    an = torch.where(~same, dist, high).min(1, keepdim=True).values
    n = dist.shape[0]
    index = torch.arange(n, device=dist.device)[None, :].expand(n, n)
    positive = torch.where(same & (dist == ap), index, n).min(1).values
    negative = torch.where(~same & (dist == an), index, n).min(1).values
    has_negative = (~same).any(1)
    return positive, torch.where(has_negative, negative, 0), has_negative


def part_distances(x, y):
    """``[N, Hf, Hg]``: ``tanh(||x[n, i] - y[n, j]|| / 2)``."""
    return torch.tanh(safe_norm(x[:, :, None, :] - y[:, None, :, :]) / 2)


def shortest_path(d):
    """``[N]``: the shortest right/down path from (0, 0) to (Hf-1, Hg-1).

    ``S[i, j] = d[i, j] + min(S[i-1, j], S[i, j-1])``; on a tie the
    gradient flows to ``S[i-1, j]`` (the first argument of ``minimum``).
    """
    hf, hg = d.shape[1], d.shape[2]
    rows = [None] * hg
    for i in range(hf):
        for j in range(hg):
            if i == 0 and j == 0:
                rows[j] = d[:, 0, 0]
            elif i == 0:
                rows[j] = d[:, 0, j] + rows[j - 1]
            elif j == 0:
                rows[j] = d[:, i, 0] + rows[0]
            else:
                rows[j] = d[:, i, j] + _minimum_first_on_ties(rows[j], rows[j - 1])
    return rows[hg - 1]


def _minimum_first_on_ties(up, left):
    # torch.minimum splits the gradient on ties; the convention gives it to `up`.
    return torch.where(up <= left, up, left)


def trihard_losses(global_features, local_features, labels, global_margin=0.5,
                   local_margin=0.5):
    """TriHard losses on the global features and on the aligned local distance.

    Args:
        global_features: ``[N, C]``.
        local_features: ``[N, H, c]``.
        labels: ``[N]`` integer labels.
        global_margin, local_margin: the triplet margins.

    Returns:
        ``(global_loss, local_loss)`` scalars; anchors without a negative are
        left out of both means.
    """
    g = global_features
    positive, negative, has_negative = hard_example_mining(pairwise_distance(g), labels)
    n = g.shape[0]
    partners = torch.cat([positive, negative])
    pair = safe_norm(torch.cat([g, g]) - g[partners])
    mask = has_negative.to(g.dtype)
    count = mask.sum().clamp_min(1)
    global_loss = (F.relu(pair[:n] - pair[n:] + global_margin) * mask).sum() / count
    loc = local_features
    local = shortest_path(part_distances(torch.cat([loc, loc]), loc[partners]))
    local_loss = (F.relu(local[:n] - local[n:] + local_margin) * mask).sum() / count
    return global_loss, local_loss


class AlignedReIDNet(nn.Module):
    """ResNet-50 trunk with the global, local and ID heads (see the module doc).

    Args:
        num_classes: training identities.
        local_channels: c.
        trunk: ``"resnet50"`` (torchvision, random weights) or ``"small"``
            (a few convolutions, for CPU tests).
    """

    def __init__(self, num_classes, local_channels=128, trunk="resnet50"):
        super().__init__()
        if trunk == "resnet50":
            import torchvision

            net = torchvision.models.resnet50(weights=None)
            self.trunk = nn.Sequential(*list(net.children())[:-2])
            width = 2048
        elif trunk == "small":
            width = 64
            self.trunk = nn.Sequential(
                nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                nn.Conv2d(32, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        else:
            raise ValueError(f"trunk: expected 'resnet50' or 'small', got {trunk!r}")
        self.local_conv = nn.Linear(width, local_channels, bias=False)
        self.local_bn = nn.BatchNorm1d(local_channels)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, images):
        fmap = self.trunk(images)                      # [B, C, h, w]
        global_features = fmap.mean((2, 3))            # [B, C]
        stripes = fmap.mean(3).transpose(1, 2)         # [B, h, C]
        local = self.local_conv(stripes)               # [B, h, c]
        local = F.relu(self.local_bn(local.transpose(1, 2)).transpose(1, 2))
        return global_features, local, self.classifier(global_features)


def alignedreid_loss(outputs, labels):
    """ID + global TriHard + local TriHard, each computed in float32."""
    global_features, local, logits = (t.float() for t in outputs)
    global_loss, local_loss = trihard_losses(global_features, local, labels)
    return F.cross_entropy(logits, labels) + global_loss + local_loss
