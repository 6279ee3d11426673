"""Custom Keras layers of the AlignedReID network.

All layers are registered serializables (package ``reid_tf``), so a saved
``.keras`` model that contains them loads with plain
``keras.saving.load_model``.
"""

import keras
from keras import ops

_POOLINGS = ("mean", "max")


@keras.saving.register_keras_serializable(package="reid_tf")
class HorizontalPooling(keras.layers.Layer):
    """Pools a feature map over its width, one vector per horizontal stripe.

    This is the first step of the AlignedReID local branch: every row of the
    backbone feature map becomes one local (part) feature.

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
    """Maps RGB images in ``[0, 1]`` to the input statistics of a backbone.

    Computes ``(x - mean) / std`` per channel and, with ``reverse_channels``,
    turns RGB into BGR afterwards (the layout of Caffe-converted ImageNet
    weights such as ``keras.applications.ResNet50``).

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
