"""Backbone networks, chosen by name from a registry.

A backbone maps RGB images in ``[0, 1]`` (``[B, H, W, 3]``, float) to a
feature map ``[B, H', W', C]``. It starts with
:func:`~reid_tf.layers.normalize_images` (a ``Normalization`` layer named
``"normalize"``, then for ``resnet50`` a channel reversal to BGR), which
brings the images to the statistics the network expects, so callers feed the
same images to every backbone. Every backbone is made of Keras's own layers
only: it saves and loads without custom objects.

Registered names:

- ``"resnet50"``: ``keras.applications.ResNet50`` without its top, C = 2048,
  total stride 32 (16 with ``last_stride=1``).
- ``"resnet50x"``: "ResNet-50-Xception": the ResNet-50 layout with the 3x3
  convolution of every bottleneck replaced by an Xception cell (3x3 depthwise
  convolution followed by a 1x1 pointwise convolution). C = 2048.
- ``"tiny"``: a small residual network (widths 32/64/128/256, total stride 16,
  C = 256) for tests, demos and CPU-only experiments.

New backbones are added with :func:`register_backbone`.
"""

import contextlib
import os
import warnings

import keras

from reid_tf.keras_files import keras_file_problem
from reid_tf.layers import normalize_images

# Statistics of ImageNet images in [0, 1] (RGB).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# keras.applications.ResNet50 ("caffe" mode): BGR, 0-255 scale, mean removed.
_CAFFE_MEAN = (123.68 / 255.0, 116.779 / 255.0, 103.939 / 255.0)
_CAFFE_STD = (1.0 / 255.0,) * 3

_BACKBONES = {}


def register_backbone(name):
    """Registers a backbone builder under ``name`` (decorator).

    The builder is called as ``builder(input_shape, weights, last_stride)``
    and returns a ``keras.Model`` mapping images to a feature map.

    Args:
        name: registry key, used by :func:`get_backbone` and ``--backbone``.

    Returns:
        The decorator, which returns the builder unchanged.

    Raises:
        ValueError: ``name`` is already registered.

    Example (``@register_backbone("my_net")`` above a builder function adds
    it; a name can be registered once):
        >>> register_backbone("tiny")(build_tiny)
        Traceback (most recent call last):
        ...
        ValueError: backbone 'tiny' is already registered
    """

    def decorator(builder):
        if name in _BACKBONES:
            raise ValueError(f"backbone {name!r} is already registered")
        _BACKBONES[name] = builder
        return builder

    return decorator


def available_backbones():
    """Names accepted by :func:`get_backbone`.

    Returns:
        Sorted list of registered names.

    Example:
        >>> available_backbones()
        ['resnet50', 'resnet50x', 'tiny']
    """
    return sorted(_BACKBONES)


def get_backbone(name, input_shape=(256, 128, 3), weights=None, last_stride=2):
    """Builds the backbone registered as ``name``.

    Args:
        name: one of :func:`available_backbones`.
        input_shape: ``(height, width, 3)`` of the input images.
        weights: ``None`` (random initialisation), ``"imagenet"``
            (``resnet50`` only; downloaded by Keras on first use) or the path
            of a weights file saved from the same architecture.
        last_stride: stride of the last stage, 2 (default, as in the paper)
            or 1 (doubles the height and width of the feature map).

    Returns:
        ``keras.Model`` mapping ``[B, H, W, 3]`` images in ``[0, 1]`` to a
        feature map ``[B, H', W', C]``.

    Example:
        >>> net = get_backbone("tiny", (128, 64, 3))
        >>> net.output_shape
        (None, 8, 4, 256)
    """
    if name not in _BACKBONES:
        raise ValueError(
            f"backbone: unknown name {name!r}; expected one of "
            f"{available_backbones()}"
        )
    input_shape = tuple(int(v) for v in input_shape)
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise ValueError(
            f"input_shape: expected (height, width, 3), got {input_shape}"
        )
    if min(input_shape[:2]) < 32:
        raise ValueError(
            f"input_shape: height and width must be >= 32, got {input_shape}"
        )
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride: expected 1 or 2, got {last_stride!r}")
    if weights is not None and weights != "imagenet":
        weights = os.fspath(weights)
        problem = keras_file_problem(weights, "weights")
        if problem:
            raise ValueError(f"weights: {problem}")
    return _BACKBONES[name](input_shape, weights=weights, last_stride=last_stride)


@contextlib.contextmanager
def _reading_weights(weights):
    """Reports a weights file Keras cannot load as ``ValueError`` naming it.

    Keras warns about every layer it could not match before it gives up;
    those warnings are dropped when the load fails and shown when it
    succeeds.
    """
    if weights in (None, "imagenet"):
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except (OSError, ValueError, KeyError, TypeError) as exc:
            text = str(exc).strip()
            first = text.splitlines()[0].rstrip(":") if text else type(exc).__name__
            raise ValueError(f"weights: {weights}: cannot load: {first}") from None
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _load_weights_file(model, weights, name):
    if weights == "imagenet":
        raise ValueError(
            f"weights: no ImageNet weights are available for backbone {name!r}"
        )
    if weights is not None:
        with _reading_weights(weights):
            model.load_weights(weights)
    return model


# --------------------------------------------------------------------------
# ResNet-50 (keras.applications)
# --------------------------------------------------------------------------

# The two convolutions that carry the stride of the last stage in
# keras.applications.ResNet50 (stride on the first 1x1 conv and on the
# projection shortcut of conv5_block1).
_RESNET50_LAST_STRIDE_LAYERS = ("conv5_block1_0_conv", "conv5_block1_1_conv")


@register_backbone("resnet50")
def build_resnet50(input_shape, weights=None, last_stride=2):
    """``keras.applications.ResNet50`` without its classification top.

    With ``last_stride=1`` the model is cloned with stride 1 in the two
    strided 1x1 convolutions of ``conv5_block1``; layer names and weight
    shapes are unchanged, so the weights (ImageNet or a file) are copied over.

    Args:
        input_shape: ``(height, width, 3)``.
        weights: ``None``, ``"imagenet"`` or a weights file path.
        last_stride: 1 or 2.

    Returns:
        ``keras.Model`` named ``"resnet50"``: images -> ``[B, H/32, W/32,
        2048]`` (``H/16, W/16`` with ``last_stride=1``).

    Example:
        >>> build_resnet50((256, 128, 3)).output_shape
        (None, 8, 4, 2048)
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = normalize_images(inputs, _CAFFE_MEAN, _CAFFE_STD, to_bgr=True)
    with _reading_weights(weights):
        base = keras.applications.ResNet50(
            include_top=False, weights=weights, input_tensor=x
        )
    if last_stride == 1:
        base = _clone_with_stride_one(base, _RESNET50_LAST_STRIDE_LAYERS)
    return keras.Model(base.inputs[0], base.outputs[0], name="resnet50")


def _clone_with_stride_one(model, layer_names):
    def clone_layer(layer):
        config = layer.get_config()
        if layer.name in layer_names:
            config["strides"] = (1, 1)
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    for layer in model.layers:
        if layer.weights:
            clone.get_layer(layer.name).set_weights(layer.get_weights())
    return clone


# --------------------------------------------------------------------------
# Networks built here (resnet50x, tiny)
# --------------------------------------------------------------------------

_BN_EPSILON = 1.001e-5


def _conv_bn(x, filters, kernel_size, strides, name, relu=True):
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        name=name + "_conv",
    )(x)
    x = keras.layers.BatchNormalization(epsilon=_BN_EPSILON, name=name + "_bn")(x)
    if relu:
        x = keras.layers.ReLU(name=name + "_relu")(x)
    return x


def _stem(inputs, filters, name_prefix="conv1"):
    """7x7/2 convolution, BN, ReLU, 3x3/2 max pooling (ResNet stem)."""
    x = _conv_bn(inputs, filters, 7, 2, name_prefix)
    return keras.layers.MaxPooling2D(3, 2, padding="same", name="pool1_pool")(x)


def _xception_bottleneck(x, mid, out, strides, name):
    """1x1 -> (3x3 depthwise, 1x1 pointwise) -> 1x1 bottleneck, residual."""
    if strides != 1 or x.shape[-1] != out:
        shortcut = _conv_bn(x, out, 1, strides, name + "_0", relu=False)
    else:
        shortcut = x
    y = _conv_bn(x, mid, 1, 1, name + "_1")
    y = keras.layers.DepthwiseConv2D(
        3, strides=strides, padding="same", use_bias=False, name=name + "_2_dwconv"
    )(y)
    y = _conv_bn(y, mid, 1, 1, name + "_2")
    y = _conv_bn(y, out, 1, 1, name + "_3", relu=False)
    y = keras.layers.Add(name=name + "_add")([shortcut, y])
    return keras.layers.ReLU(name=name + "_out")(y)


RESNET50X_STAGES = (
    # (bottleneck width, output width, blocks, stride)
    (64, 256, 3, 1),
    (128, 512, 4, 2),
    (256, 1024, 6, 2),
    (512, 2048, 3, 2),
)


@register_backbone("resnet50x")
def build_resnet50x(input_shape, weights=None, last_stride=2):
    """ResNet-50-Xception: ResNet-50 with Xception cells in the bottlenecks.

    Stem as ResNet-50 (7x7/2 convolution, 3x3/2 max pooling). Four stages of
    3/4/6/3 bottlenecks with widths [64, 256], [128, 512], [256, 1024],
    [512, 2048] and strides 1/2/2/``last_stride``. Each bottleneck is
    1x1 conv -> BN -> ReLU -> 3x3 depthwise conv (carries the stride) ->
    1x1 pointwise conv -> BN -> ReLU -> 1x1 conv -> BN, added to the shortcut
    (identity, or 1x1 strided projection + BN in the first block of a stage),
    then ReLU. Convolutions have no bias (batch norm follows).

    Args:
        input_shape: ``(height, width, 3)``.
        weights: ``None`` or a weights file saved from this architecture.
        last_stride: 1 or 2.

    Returns:
        ``keras.Model`` named ``"resnet50x"``: images -> ``[B, H/32, W/32,
        2048]``.

    Example:
        >>> build_resnet50x((224, 224, 3)).output_shape
        (None, 7, 7, 2048)
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = normalize_images(inputs, IMAGENET_MEAN, IMAGENET_STD)
    x = _stem(x, 64)
    for stage, (mid, out, blocks, stride) in enumerate(RESNET50X_STAGES, start=2):
        if stage == 5:
            stride = last_stride
        for block in range(1, blocks + 1):
            x = _xception_bottleneck(
                x,
                mid,
                out,
                stride if block == 1 else 1,
                name=f"conv{stage}_block{block}",
            )
    model = keras.Model(inputs, x, name="resnet50x")
    return _load_weights_file(model, weights, "resnet50x")


def _basic_block(x, filters, strides, name):
    """Two 3x3 conv + BN layers with a residual connection."""
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, strides, name + "_0", relu=False)
    else:
        shortcut = x
    y = _conv_bn(x, filters, 3, strides, name + "_1")
    y = _conv_bn(y, filters, 3, 1, name + "_2", relu=False)
    y = keras.layers.Add(name=name + "_add")([shortcut, y])
    return keras.layers.ReLU(name=name + "_out")(y)


TINY_WIDTHS = (32, 64, 128, 256)


@register_backbone("tiny")
def build_tiny(input_shape, weights=None, last_stride=2):
    """A small residual network for CPU-only runs.

    A 3x3/2 convolution (32 channels) followed by four stages of one basic
    residual block each, widths 32/64/128/256 and strides 1/2/2/
    ``last_stride``: total stride 16, so 128x64 images give an 8x4 map and
    256x128 images a 16x8 map.

    Args:
        input_shape: ``(height, width, 3)``.
        weights: ``None`` or a weights file saved from this architecture.
        last_stride: 1 or 2.

    Returns:
        ``keras.Model`` named ``"tiny"``: images -> ``[B, H/16, W/16, 256]``.

    Example:
        >>> build_tiny((128, 64, 3)).output_shape
        (None, 8, 4, 256)
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = normalize_images(inputs, IMAGENET_MEAN, IMAGENET_STD)
    x = _conv_bn(x, TINY_WIDTHS[0], 3, 2, "conv1")
    strides = (1, 2, 2, last_stride)
    for stage, (width, stride) in enumerate(zip(TINY_WIDTHS, strides), start=2):
        x = _basic_block(x, width, stride, name=f"conv{stage}_block1")
    model = keras.Model(inputs, x, name="tiny")
    return _load_weights_file(model, weights, "tiny")
