"""Which weights each network of a run starts from, and the networks that
start from random weights although the recipe asks for pretrained ones.

The paper pre-trains both of its backbones (ResNet-50 and ResNet50-X) on
ImageNet, in plain and in mutual training. Keras ships ImageNet weights for
ResNet-50 only, so a ResNet50-X network starts from a weights file or from
random weights; :func:`random_starts` names such networks, the run stores
them in ``config.json`` (``random_init``) and ``train.py`` prints
:func:`random_init_warnings`.
"""

# Backbones the paper always starts from ImageNet weights.
PRETRAINED_BACKBONES = ("resnet50", "resnet50x")


def default_peer_weights(backbone, weights, peer_backbone):
    """The peer's initialisation when ``--peer-weights`` is not given.

    Example:
        >>> default_peer_weights("resnet50", "imagenet", "resnet50x")
        'none'
        >>> default_peer_weights("resnet50x", "w.weights.h5", "resnet50")
        'none'
        >>> default_peer_weights("tiny", "w.weights.h5", "tiny")
        'w.weights.h5'
    """
    if peer_backbone == backbone:
        return weights
    if weights == "imagenet" and peer_backbone == "resnet50":
        return "imagenet"
    return "none"


def random_starts(cfg):
    """The networks of ``cfg`` that start from random weights although the
    recipe asks for pretrained ones: a paper backbone (ResNet-50,
    ResNet50-X), or a network whose partner in mutual learning is pretrained.

    Returns:
        list of ``"network1"`` / ``"peer"``.

    Example:
        >>> from reid_tf.config import TrainConfig
        >>> random_starts(TrainConfig(mutual=True, backbone="tiny", weights="w.h5",
        ...                           peer_weights="none"))
        ['peer']
    """
    out = []
    peer = cfg.peer_weights if cfg.peer_weights is not None else "none"
    if cfg.weights == "none" and (cfg.backbone in PRETRAINED_BACKBONES
                                  or (cfg.mutual and peer != "none")):
        out.append("network1")
    peer_backbone = cfg.peer_backbone or cfg.backbone
    if cfg.mutual and peer == "none" and (peer_backbone in PRETRAINED_BACKBONES
                                          or cfg.weights != "none"):
        out.append("peer")
    return out


def random_init_warnings(cfg):
    """One warning line per network of ``cfg.random_init``.

    Args:
        cfg: resolved ``TrainConfig``.

    Returns:
        list of str.

    Example:
        >>> from reid_tf.config import TrainConfig
        >>> random_init_warnings(TrainConfig(backbone="resnet50").resolved())[0][:40]
        'warning: network 1 (resnet50) starts fro'
    """
    names = {"network1": f"network 1 ({cfg.backbone})",
             "peer": f"the peer network ({cfg.peer_backbone})"}
    backbones = {"network1": cfg.backbone, "peer": cfg.peer_backbone}
    flags = {"network1": "--weights", "peer": "--peer-weights"}
    out = []
    for n in cfg.random_init:
        how = "imagenet or a weights file" if backbones[n] == "resnet50" else "a weights file"
        out.append(f"warning: {names[n]} starts from random weights although the recipe asks "
                   f"for pretrained ones (the paper's networks are pre-trained on ImageNet); "
                   f"pass {flags[n]} with {how}")
    return out
