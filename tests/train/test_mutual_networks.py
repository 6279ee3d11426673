"""Mutual learning: per-network initial weights, the random-start warning,
and a mutual run that evaluates and reports both networks.

No test downloads anything: ImageNet loading is replaced by a recording
fake, and pretrained weights come from a local weights file.
"""

import csv
import json

import numpy as np
import pytest

from reid_tf import model as model_module
from reid_tf.config import ConfigError, TrainConfig
from reid_tf.pretrained import random_init_warnings
from tests.train.conftest import run_train, tiny_args


def _backbone_weights_file(tmp_path, backbone="tiny", seed=5):
    import keras

    from reid_tf.backbones import get_backbone

    keras.utils.set_random_seed(seed)
    net = get_backbone(backbone, input_shape=(64, 32, 3))
    path = tmp_path / f"{backbone}-{seed}.weights.h5"
    net.save_weights(str(path))
    return path, [w.copy() for w in net.get_weights()]


def _backbone(network):
    import keras

    (inner,) = [layer for layer in network.layers if isinstance(layer, keras.Model)]
    return inner


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """Every test here names ImageNet weights; none may fetch them."""
    from keras.src.utils import file_utils

    def refuse(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args} {kwargs}")

    monkeypatch.setattr(file_utils, "get_file", refuse)


def test_peer_weights_default_and_random_start_field():
    # the paper's pair, ResNet-50 (ImageNet) + ResNet50-X: no ImageNet weights
    # exist for ResNet50-X, so its default is random and that is flagged
    cfg = TrainConfig(mutual=True, backbone="resnet50", weights="imagenet",
                      peer_backbone="resnet50x").resolved()
    assert cfg.peer_weights == "none" and cfg.random_init == ["peer"]
    assert cfg.to_dict()["random_init"] == ["peer"]
    (line,) = random_init_warnings(cfg)
    assert line.startswith("warning: the peer network (resnet50x) starts from random weights")
    # same backbone: the peer gets --weights; a resnet50 peer of an ImageNet run: ImageNet
    assert TrainConfig(mutual=True, backbone="resnet50", weights="imagenet").resolved() \
        .peer_weights == "imagenet"
    assert TrainConfig(mutual=True, backbone="resnet50x", weights="none",
                       peer_backbone="resnet50").resolved().random_init == ["network1", "peer"]
    # the tiny CPU network from scratch asks for nothing pretrained
    assert TrainConfig(mutual=True).resolved().random_init == []
    assert TrainConfig().resolved().random_init == []
    assert "--random-init" not in " ".join(cfg.to_argv())
    with pytest.raises(ConfigError, match="^--peer-weights: ImageNet weights exist only"):
        TrainConfig(mutual=True, peer_backbone="tiny", peer_weights="imagenet").resolved()
    with pytest.raises(ConfigError, match="^--peer-weights: "):
        TrainConfig(mutual=True, peer_weights="/nonexistent/w.weights.h5").resolved()


def test_build_trainer_passes_each_network_its_weights(monkeypatch, tmp_path):
    # ImageNet is replaced by a recording fake: which weights reach which builder
    real = model_module.build_model
    calls = []

    def fake(backbone, *args, weights=None, **kwargs):
        calls.append((backbone, weights))
        return real("tiny", *args, weights=None, **kwargs)

    monkeypatch.setattr(model_module, "build_model", fake)
    from reid_tf.fit_loop import build_trainer

    path, _ = _backbone_weights_file(tmp_path, "tiny")
    for peer_backbone, peer_weights, want in (
            ("resnet50", None, "imagenet"),       # default: ImageNet for a resnet50 peer
            ("resnet50x", str(path), str(path)),  # the paper's pair, both pretrained
            ("resnet50x", None, None)):           # default: random (flagged)
        calls.clear()
        cfg = TrainConfig(mutual=True, backbone="resnet50", weights="imagenet",
                          peer_backbone=peer_backbone, peer_weights=peer_weights,
                          image_size=[64, 32], local_channels=8, steps_per_epoch=2)
        monkeypatch.setattr("reid_tf.config_checks.keras_file_problem", lambda *a: None)
        cfg = cfg.resolved()
        build_trainer(cfg, 4)
        assert calls == [("resnet50", "imagenet"), (peer_backbone, want)]


def test_peer_starts_from_its_weights_file(tmp_path):
    from reid_tf.fit_loop import build_trainer

    path, want = _backbone_weights_file(tmp_path, "tiny", seed=5)
    cfg = TrainConfig(mutual=True, peer_weights=str(path), image_size=[64, 32],
                      local_channels=8, steps_per_epoch=2).resolved()
    assert cfg.weights == "none" and cfg.random_init == ["network1"]
    trainer, net = build_trainer(cfg, 4)
    got = _backbone(trainer.network2).get_weights()
    assert len(got) == len(want)
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    own = _backbone(net).get_weights()
    assert not all(np.array_equal(a, b) for a, b in zip(own, want))


def test_mutual_run_reports_both_networks(cache_dir, tmp_path):
    path, _ = _backbone_weights_file(tmp_path, "tiny", seed=3)
    run_dir = tmp_path / "mutual"
    proc = run_train(tiny_args(cache_dir, run_dir, "--mutual", "--weights", str(path),
                               "--peer-weights", "none", "--eval-every", "1",
                               "--local-channels", "8"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the peer starts from random weights although network 1 is pretrained
    assert "warning: the peer network (tiny) starts from random weights" in proc.stderr
    config = json.loads((run_dir / "config.json").read_text())
    assert config["random_init"] == ["peer"] and config["peer_weights"] == "none"
    summary = json.loads((run_dir / "metrics.json").read_text())
    (name,) = summary["datasets"]
    ds = summary["datasets"][name]
    for net in (ds, ds["peer"]):
        for when in ("before", "after"):
            assert 0 <= net[when]["global"]["rank1"] <= 1
    assert ds["peer"]["after"] != ds["after"]
    assert (run_dir / "features" / f"{name}-peer.h5").is_file()
    assert (run_dir / "features" / f"{name}.h5").is_file()
    # the final table has rows for both networks
    assert f"\n{name}-peer (" in proc.stdout and proc.stdout.startswith(name)
    with open(run_dir / "log.csv", newline="") as f:
        cols = next(csv.reader(f))
    assert f"{name}/global/rank1" in cols and f"{name}-peer/global/rank1" in cols
