"""Backbone registry, output shapes, last stride, parameter counts, weights."""

import numpy as np
import pytest

import keras

from reid_tf import backbones
from reid_tf.backbones import available_backbones, get_backbone
from reid_tf.layers import ImageNormalization, normalize_images


def test_registry_names():
    assert available_backbones() == ["resnet50", "resnet50x", "tiny"]


def test_unknown_backbone_names_the_choices():
    with pytest.raises(ValueError, match="backbone: unknown name 'vgg'.*resnet50x"):
        get_backbone("vgg", (128, 64, 3))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_shape": (128, 64, 1)}, "input_shape"),
        ({"input_shape": (16, 16, 3)}, "input_shape"),
        ({"last_stride": 3}, "last_stride"),
        ({"weights": "/nonexistent/w.weights.h5"}, "weights: /nonexistent/w.weights.h5: no such file"),
        ({"weights": "imagenet"}, "no ImageNet weights"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"input_shape": (128, 64, 3), **kwargs}
    with pytest.raises(ValueError, match=message):
        get_backbone("tiny", **args)


@pytest.mark.parametrize("name", ["tiny", "resnet50"])
def test_a_weights_file_keras_cannot_load_is_a_value_error_naming_it(name, tmp_path):
    """Random bytes are refused before Keras reads them; a valid file of
    another network is refused when Keras loads it. Both name the file."""
    noise = tmp_path / "noise.weights.h5"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 999, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=f"weights: {noise}: not an HDF5 file"):
        get_backbone(name, (64, 32, 3), weights=noise)
    other = tmp_path / "dense.weights.h5"
    dense = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    dense.save_weights(other)
    with pytest.raises(ValueError, match=f"weights: {other}: cannot load: "):
        get_backbone(name, (64, 32, 3), weights=other)


def test_register_backbone_rejects_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        backbones.register_backbone("tiny")(lambda *a, **k: None)


@pytest.mark.parametrize("name", ["resnet50", "resnet50x"])
@pytest.mark.parametrize(
    "input_shape, last_stride, expected",
    [
        ((256, 128, 3), 2, (8, 4)),
        ((224, 224, 3), 2, (7, 7)),
        ((256, 128, 3), 1, (16, 8)),
    ],
)
def test_large_backbone_feature_map(name, input_shape, last_stride, expected):
    model = get_backbone(name, input_shape, last_stride=last_stride)
    assert model.output_shape == (None, *expected, 2048)
    assert model.name == name


@pytest.mark.parametrize(
    "input_shape, last_stride, expected",
    [
        ((128, 64, 3), 2, (8, 4)),
        ((256, 128, 3), 2, (16, 8)),
        ((224, 224, 3), 2, (14, 14)),
        ((128, 64, 3), 1, (16, 8)),
    ],
)
def test_tiny_feature_map(input_shape, last_stride, expected):
    model = get_backbone("tiny", input_shape, last_stride=last_stride)
    assert model.output_shape == (None, *expected, 256)
    out = model(np.random.default_rng(0).uniform(size=(2, *input_shape)).astype("float32"))
    assert tuple(out.shape) == (2, *expected, 256)


def test_resnet50_last_stride_one_keeps_names_and_weights(tmp_path):
    """A stride-2 weights file loads into the stride-1 network by layer name."""
    shape = (64, 32, 3)
    keras.utils.set_random_seed(1)
    source = get_backbone("resnet50", shape)
    path = str(tmp_path / "r50.weights.h5")
    source.save_weights(path)
    target = get_backbone("resnet50", shape, weights=path, last_stride=1)
    assert [l.name for l in target.layers] == [l.name for l in source.layers]
    for name in ("conv5_block1_0_conv", "conv5_block1_1_conv"):
        assert target.get_layer(name).strides == (1, 1)
        assert source.get_layer(name).strides == (2, 2)
    for layer in source.layers:
        for a, b in zip(layer.get_weights(), target.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).uniform(size=(1, *shape)).astype("float32")
    assert tuple(source(x).shape) == (1, 2, 1, 2048)
    assert tuple(target(x).shape) == (1, 4, 2, 2048)


def _bn(channels):
    return 4 * channels  # gamma, beta, moving mean, moving variance


def _resnet50x_expected_params():
    """Parameter count of ResNet-50-X from its layer shapes (no conv biases)."""
    total = 7 * 7 * 3 * 64 + _bn(64)  # stem
    bn_channels = 64
    stages = [(64, 256, 3), (128, 512, 4), (256, 1024, 6), (512, 2048, 3)]
    width = 64
    for mid, out, blocks in stages:
        for block in range(blocks):
            total += width * mid + _bn(mid)  # 1x1 reduce
            total += 3 * 3 * mid  # depthwise 3x3
            total += mid * mid + _bn(mid)  # pointwise 1x1
            total += mid * out + _bn(out)  # 1x1 expand
            bn_channels += 2 * mid + out
            if block == 0:
                total += width * out + _bn(out)  # projection shortcut
                bn_channels += out
            width = out
    return total, bn_channels


def test_resnet50x_parameter_count():
    expected, bn_channels = _resnet50x_expected_params()
    model = get_backbone("resnet50x", (256, 128, 3))
    assert model.count_params() == expected == 13_535_360
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == expected - 2 * bn_channels


def test_resnet50x_uses_xception_cells():
    model = get_backbone("resnet50x", (64, 32, 3))
    depthwise = [l for l in model.layers if isinstance(l, keras.layers.DepthwiseConv2D)]
    assert len(depthwise) == 3 + 4 + 6 + 3
    assert all(l.kernel_size == (3, 3) for l in depthwise)
    convs = [l for l in model.layers if type(l) is keras.layers.Conv2D]
    assert sorted({l.kernel_size for l in convs}) == [(1, 1), (7, 7)]
    strided = sorted(l.name for l in depthwise if l.strides == (2, 2))
    assert strided == ["conv3_block1_2_dwconv", "conv4_block1_2_dwconv", "conv5_block1_2_dwconv"]


def test_resnet50_parameter_count():
    # keras.applications.ResNet50(include_top=False): 23,587,712 parameters;
    # the normalisation and the channel reversal add none.
    assert get_backbone("resnet50", (64, 32, 3)).count_params() == 23_587_712


def test_resnet50_normalization_matches_keras_preprocessing():
    x = np.random.default_rng(0).uniform(size=(2, 64, 32, 3)).astype("float32")
    model = get_backbone("resnet50", (64, 32, 3))
    input_stage = keras.Model(model.input, model.get_layer("to_bgr").output)
    expected = keras.applications.resnet50.preprocess_input(x * 255.0)
    np.testing.assert_allclose(np.asarray(input_stage(x)), expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("to_bgr", [False, True])
def test_normalize_images_formula(to_bgr):
    x = np.random.default_rng(1).uniform(size=(2, 4, 4, 3)).astype("float32")
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    images = keras.Input((4, 4, 3))
    model = keras.Model(images, normalize_images(images, mean, std, to_bgr=to_bgr))
    expected = (x.astype(np.float64) - np.array(mean)) / np.array(std)
    if to_bgr:
        expected = expected[..., ::-1]
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-6, atol=1e-6)
    assert model.count_params() == 0
    # the registered layer of earlier files computes the same
    legacy = ImageNormalization(mean, std, reverse_channels=to_bgr)
    np.testing.assert_allclose(np.asarray(legacy(x)), np.asarray(model(x)), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="std"):
        normalize_images(images, mean, (1.0, 0.0, 1.0))


def test_image_normalization_formula_and_config():
    x = np.random.default_rng(1).uniform(size=(2, 4, 4, 3)).astype("float32")
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    layer = ImageNormalization(mean, std, reverse_channels=True)
    expected = ((x - np.array(mean)) / np.array(std))[..., ::-1]
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-6)
    clone = ImageNormalization.from_config(layer.get_config())
    np.testing.assert_array_equal(np.asarray(clone(x)), np.asarray(layer(x)))
    with pytest.raises(ValueError, match="std"):
        ImageNormalization(mean, (1.0, 0.0, 1.0))


def test_weights_file_round_trip(tmp_path):
    keras.utils.set_random_seed(2)
    source = get_backbone("tiny", (64, 32, 3))
    path = str(tmp_path / "tiny.weights.h5")
    source.save_weights(path)
    loaded = get_backbone("tiny", (64, 32, 3), weights=path)
    x = np.random.default_rng(0).uniform(size=(2, 64, 32, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(source(x)))
