"""The two-branch AlignedReID network and its inference views.

``build_model`` returns a functional ``keras.Model``::

    image [B, H, W, 3] -> backbone -> feature map [B, h, w, C]
        global branch: global average pooling          -> "global" [B, C]
        local branch:  horizontal pooling (over w)      -> [B, h, C]
                       1x1 conv C -> c, batch norm, ReLU -> "local"  [B, h, c]
        ID classifier: Dense on the global feature      -> "logits" [B, num_classes]

Every layer is one of Keras's own (horizontal pooling is
``AveragePooling2D((1, w))`` or ``MaxPooling2D((1, w))`` + ``Reshape``, see
:func:`reid_tf.layers.horizontal_pooling`), and the model has one image
input, so the network and its :func:`inference_model` save to ``.keras`` and
load with plain ``keras.saving.load_model`` in a process that imports nothing
of this project.
"""

import keras

from reid_tf.backbones import get_backbone
from reid_tf.layers import horizontal_pooling

# Names of the layers whose outputs are the model outputs.
GLOBAL_LAYER = "global"
LOCAL_LAYER = "local"
LOGITS_LAYER = "logits"


def build_model(
    backbone="resnet50",
    num_classes=None,
    input_shape=(256, 128, 3),
    local_channels=128,
    local_pooling="mean",
    weights=None,
    last_stride=2,
    with_local=True,
):
    """Builds the AlignedReID network.

    Args:
        backbone: registered backbone name (see
            :func:`reid_tf.backbones.available_backbones`).
        num_classes: number of training identities (size of the ID
            classifier), >= 2.
        input_shape: ``(height, width, 3)``; images are RGB floats in
            ``[0, 1]``.
        local_channels: c, the channels of each local feature.
        local_pooling: ``"mean"`` or ``"max"`` horizontal pooling.
        weights: backbone weights: ``None``, ``"imagenet"`` (``resnet50``) or
            a weights-file path (see :func:`reid_tf.backbones.get_backbone`).
        last_stride: stride of the backbone's last stage (2 or 1).
        with_local: build the local branch; ``False`` gives the paper's
            Baseline (global feature and classifier only).

    Returns:
        ``keras.Model`` named ``"alignedreid_<backbone>"`` with dict output
        ``{"global": [B, C], "local": [B, h, c], "logits": [B, num_classes]}``
        (no ``"local"`` key when ``with_local=False``).

    Example:
        >>> model = build_model("tiny", num_classes=10, input_shape=(128, 64, 3))
        >>> dict(zip(model.output_names, model.output_shape))
        {'global': (None, 256), 'local': (None, 8, 128), 'logits': (None, 10)}
    """
    if num_classes is None or int(num_classes) < 2:
        raise ValueError(f"num_classes: expected an integer >= 2, got {num_classes!r}")
    if local_pooling not in ("mean", "max"):
        raise ValueError(f"local_pooling: expected 'mean' or 'max', got {local_pooling!r}")
    if int(local_channels) < 1:
        raise ValueError(f"local_channels: expected >= 1, got {local_channels!r}")
    net = get_backbone(
        backbone, input_shape=input_shape, weights=weights, last_stride=last_stride
    )
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    feature_map = net(inputs)
    outputs = {
        "global": keras.layers.GlobalAveragePooling2D(name=GLOBAL_LAYER)(feature_map)
    }
    if with_local:
        x = horizontal_pooling(feature_map, local_pooling, name="horizontal_pool")
        x = keras.layers.Dense(int(local_channels), use_bias=False, name="local_conv")(x)
        x = keras.layers.BatchNormalization(name="local_bn")(x)
        outputs["local"] = keras.layers.ReLU(name=LOCAL_LAYER)(x)
    outputs["logits"] = keras.layers.Dense(int(num_classes), name=LOGITS_LAYER)(
        outputs["global"]
    )
    return keras.Model(inputs, outputs, name=f"alignedreid_{backbone}")


def has_local_branch(network):
    """Whether ``network`` (from :func:`build_model`) has a local branch.

    Args:
        network: a model from :func:`build_model` (or a loaded copy).

    Returns:
        bool.

    Example:
        >>> has_local_branch(build_model("tiny", 5, (64, 32, 3), with_local=False))
        False
    """
    return any(layer.name == LOCAL_LAYER for layer in network.layers)


def inference_model(model, local=False):
    """The feature extractor view of a trained network.

    Shares the layers (and weights) of ``model``; the ID classifier is left
    out. The view has one image input ``[B, H, W, 3]`` (a tensor, not a
    list), as the network it comes from.

    Args:
        model: a network from :func:`build_model`, or a training model
            (:class:`reid_tf.training.AlignedReIDModel`) whose ``network`` is
            used.
        local: keep the local features too.

    Returns:
        ``keras.Model`` with dict output ``{"global": [B, C]}`` or, with
        ``local=True``, ``{"global": [B, C], "local": [B, h, c]}``.

    Example:
        >>> net = build_model("tiny", num_classes=10, input_shape=(128, 64, 3))
        >>> inference_model(net, local=True).output_names
        ['global', 'local']
    """
    network = getattr(model, "network", model)
    if local and not has_local_branch(network):
        raise ValueError("local: the model has no local branch (built with with_local=False)")
    outputs = {"global": network.get_layer(GLOBAL_LAYER).output}
    if local:
        outputs["local"] = network.get_layer(LOCAL_LAYER).output
    name = network.name + ("_global_local" if local else "_global")
    return keras.Model(network.inputs[0], outputs, name=name)
