"""Building blocks of the AlignedReID network, made of Keras's own layers.

:func:`normalize_images` (the input stage of every backbone) and
:func:`horizontal_pooling` (the first step of the local branch) compose
built-in layers only (``Normalization``, ``Cropping2D``, ``Concatenate``,
``AveragePooling2D``/``MaxPooling2D``, ``Reshape``), so a model built from
them saves to ``.keras`` and loads with plain ``keras.saving.load_model`` in a
process that imports nothing of this project.

:class:`ImageNormalization` and :class:`HorizontalPooling` are the registered
custom layers of ``.keras`` files written by earlier versions; they compute
the same values and are kept so that those files still load (after
``import reid_tf.layers``, as :func:`reid_tf.extract.load_model` does). New
models do not use them.
"""

import keras
from keras import ops

_POOLINGS = ("mean", "max")


def normalize_images(images, mean, std, *, to_bgr=False, name="normalize"):
    """Maps RGB images in ``[0, 1]`` to the input statistics of a backbone.

    ``(x - mean) / std`` per channel (a ``keras.layers.Normalization`` with
    fixed mean and variance ``std**2``, named ``name``); with ``to_bgr`` the
    channel order is then reversed (RGB to BGR, the layout of
    Caffe-converted ImageNet weights such as ``keras.applications.ResNet50``)
    by :func:`reverse_channels`, whose last layer is named ``"to_bgr"``.
    No layer has weights.

    Args:
        images: Keras tensor ``[B, H, W, 3]``.
        mean: per-channel means (3 floats, in the ``[0, 1]`` input scale).
        std: per-channel standard deviations (3 positive floats).
        to_bgr: reverse the channel order after normalising.
        name: name of the normalisation layer.

    Returns:
        Keras tensor ``[B, H, W, 3]``.

    Example:
        >>> import numpy as np
        >>> images = keras.Input((2, 2, 3))
        >>> model = keras.Model(images, normalize_images(images, (0.5,) * 3, (0.25,) * 3))
        >>> float(model(np.ones((1, 2, 2, 3), "float32"))[0, 0, 0, 0])
        2.0
    """
    mean = [float(v) for v in mean]
    std = [float(v) for v in std]
    if len(mean) != 3 or len(std) != 3:
        raise ValueError("mean, std: expected 3 values each")
    if min(std) <= 0:
        raise ValueError(f"std: expected positive values, got {std}")
    x = keras.layers.Normalization(
        axis=-1, mean=mean, variance=[s * s for s in std], name=name
    )(images)
    return reverse_channels(x, name="to_bgr") if to_bgr else x


def reverse_channels(x, name="reverse_channels"):
    """Reverses the channel (last) axis of ``[B, H, W, C]`` with built-in layers.

    Each channel is cut out by a ``Cropping2D`` in ``channels_first`` mode
    (which crops the last two axes, here W and C, of a channels-last tensor);
    a ``Concatenate`` joins them in reverse order. Pure data movement: exact,
    no weights.

    Args:
        x: Keras tensor ``[B, H, W, C]`` with a known ``C``.
        name: name of the final ``Concatenate`` layer (the croppings are
            ``name + "_<channel>"``).

    Returns:
        Keras tensor ``[B, H, W, C]``, channels in reverse order.

    Example:
        >>> import numpy as np
        >>> images = keras.Input((1, 1, 3))
        >>> model = keras.Model(images, reverse_channels(images))
        >>> np.asarray(model(np.arange(3.0, dtype="float32").reshape(1, 1, 1, 3))).ravel()
        array([2., 1., 0.], dtype=float32)
    """
    channels = int(x.shape[-1])
    parts = [
        keras.layers.Cropping2D(
            ((0, 0), (c, channels - 1 - c)),
            data_format="channels_first",
            name=f"{name}_{c}",
        )(x)
        for c in reversed(range(channels))
    ]
    return keras.layers.Concatenate(axis=-1, name=name)(parts)


def horizontal_pooling(feature_map, pooling="mean", name="horizontal_pool"):
    """Pools a feature map over its width, one vector per horizontal stripe.

    The first step of the AlignedReID local branch: every row of the backbone
    feature map becomes one local (part) feature. Built as
    ``AveragePooling2D((1, W))`` (``MaxPooling2D`` for ``"max"``), named
    ``name``, followed by a ``Reshape`` to ``[B, H, C]`` named
    ``name + "_rows"``.

    Args:
        feature_map: Keras tensor ``[B, H, W, C]`` with static ``H, W, C``.
        pooling: ``"mean"`` (average over the width) or ``"max"``.
        name: name of the pooling layer.

    Returns:
        Keras tensor ``[B, H, C]``.

    Example:
        >>> fmap = keras.Input((8, 4, 16))
        >>> horizontal_pooling(fmap, "max").shape
        (None, 8, 16)
    """
    if pooling not in _POOLINGS:
        raise ValueError(f"pooling: expected one of {_POOLINGS}, got {pooling!r}")
    _, height, width, channels = (int(v) if v is not None else None for v in feature_map.shape)
    if None in (height, width, channels):
        raise ValueError(
            f"feature_map: expected a static [B, H, W, C] shape, got {feature_map.shape}"
        )
    pool = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
    x = pool(pool_size=(1, width), name=name)(feature_map)
    return keras.layers.Reshape((height, channels), name=name + "_rows")(x)


# --------------------------------------------------------------------------
# Registered layers of files written by earlier versions
# --------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="reid_tf")
class HorizontalPooling(keras.layers.Layer):
    """Mean or max over the width of a feature map, as a single layer.

    The layer of ``.keras`` files written by earlier versions; it computes
    what :func:`horizontal_pooling` computes.

    Args:
        pooling: ``"mean"`` (average over the width) or ``"max"``.
        **kwargs: standard ``keras.layers.Layer`` arguments (``name``, ...).

    Input: ``[B, H, W, C]``. Returns: ``[B, H, C]``.

    Example:
        >>> import numpy as np
        >>> layer = HorizontalPooling("max")
        >>> layer(np.ones((2, 8, 4, 16), "float32")).shape
        TensorShape([2, 8, 16])
    """

    def __init__(self, pooling="mean", **kwargs):
        super().__init__(**kwargs)
        if pooling not in _POOLINGS:
            raise ValueError(
                f"pooling: expected one of {_POOLINGS}, got {pooling!r}"
            )
        self.pooling = pooling

    def call(self, inputs):
        if self.pooling == "max":
            return ops.max(inputs, axis=2)
        return ops.mean(inputs, axis=2)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], input_shape[3])

    def get_config(self):
        config = super().get_config()
        config["pooling"] = self.pooling
        return config


@keras.saving.register_keras_serializable(package="reid_tf")
class ImageNormalization(keras.layers.Layer):
    """``(x - mean) / std`` per channel, then optionally RGB to BGR, as one layer.

    The layer of ``.keras`` files written by earlier versions; it computes
    what :func:`normalize_images` computes.

    Args:
        mean: per-channel means (3 floats, in the ``[0, 1]`` input scale).
        std: per-channel standard deviations (3 floats).
        reverse_channels: reverse the channel order after normalising.
        **kwargs: standard ``keras.layers.Layer`` arguments.

    Input: ``[B, H, W, 3]`` float. Returns: ``[B, H, W, 3]``.

    Example:
        >>> import numpy as np
        >>> layer = ImageNormalization(mean=(0.5,) * 3, std=(0.25,) * 3)
        >>> float(layer(np.ones((1, 2, 2, 3), "float32"))[0, 0, 0, 0])
        2.0
    """

    def __init__(self, mean, std, reverse_channels=False, **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean, std: expected 3 values each")
        if min(self.std) <= 0:
            raise ValueError(f"std: expected positive values, got {self.std}")
        self.reverse_channels = bool(reverse_channels)

    def call(self, inputs):
        mean = ops.convert_to_tensor(self.mean, dtype=inputs.dtype)
        scale = ops.convert_to_tensor(
            [1.0 / s for s in self.std], dtype=inputs.dtype
        )
        outputs = (inputs - mean) * scale
        if self.reverse_channels:
            outputs = ops.flip(outputs, axis=-1)
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            mean=self.mean,
            std=self.std,
            reverse_channels=self.reverse_channels,
        )
        return config
