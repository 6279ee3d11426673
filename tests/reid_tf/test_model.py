"""The two-branch network, horizontal pooling and the inference views."""

import numpy as np
import pytest

import keras

from reid_tf.layers import HorizontalPooling
from reid_tf.model import build_model, has_local_branch, inference_model
from reid_tf.training import AlignedReIDModel

SHAPE = (64, 32, 3)


def _images(n, seed=0, shape=SHAPE):
    return np.random.default_rng(seed).uniform(size=(n, *shape)).astype("float32")


def _output_shapes(model):
    return dict(zip(model.output_names, model.output_shape))


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_horizontal_pooling_matches_numpy(pooling):
    x = np.random.default_rng(0).normal(size=(2, 5, 3, 4)).astype("float32")
    layer = HorizontalPooling(pooling)
    expected = x.mean(axis=2) if pooling == "mean" else x.max(axis=2)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-6, atol=1e-6)
    assert layer.compute_output_shape((None, 5, 3, 4)) == (None, 5, 4)
    assert HorizontalPooling.from_config(layer.get_config()).pooling == pooling


def test_horizontal_pooling_rejects_unknown_mode():
    with pytest.raises(ValueError, match="pooling"):
        HorizontalPooling("sum")


@pytest.mark.parametrize(
    "backbone, input_shape, height, channels",
    [
        ("resnet50", (256, 128, 3), 8, 2048),
        ("resnet50x", (224, 224, 3), 7, 2048),
        ("tiny", (128, 64, 3), 8, 256),
    ],
)
def test_output_shapes(backbone, input_shape, height, channels):
    model = build_model(backbone, num_classes=11, input_shape=input_shape)
    assert model.output_names == ["global", "local", "logits"]
    assert _output_shapes(model) == {
        "global": (None, channels),
        "local": (None, height, 128),
        "logits": (None, 11),
    }


def test_baseline_has_no_local_branch():
    model = build_model("tiny", num_classes=5, input_shape=SHAPE, with_local=False)
    assert not has_local_branch(model)
    assert set(_output_shapes(model)) == {"global", "logits"}
    with pytest.raises(ValueError, match="no local branch"):
        inference_model(model, local=True)


@pytest.mark.parametrize("bad", [None, 1])
def test_num_classes_is_checked(bad):
    with pytest.raises(ValueError, match="num_classes"):
        build_model("tiny", num_classes=bad, input_shape=SHAPE)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_branches_match_a_numpy_transcription(pooling):
    """global = mean over (H, W); local = ReLU(BN(pool_W(F) @ W)); logits = g @ V + b."""
    keras.utils.set_random_seed(3)
    model = build_model(
        "tiny", num_classes=6, input_shape=SHAPE, local_channels=16, local_pooling=pooling
    )
    bn = model.get_layer("local_bn")
    rng = np.random.default_rng(4)
    # Non-trivial batch-norm statistics so the test sees them.
    bn.set_weights([rng.uniform(0.5, 2.0, 16).astype("float32"),
                    rng.normal(size=16).astype("float32"),
                    rng.normal(size=16).astype("float32"),
                    rng.uniform(0.5, 2.0, 16).astype("float32")])
    x = _images(3)
    fmap = np.asarray(model.get_layer("tiny")(x, training=False), dtype=np.float64)
    out = {k: np.asarray(v, dtype=np.float64) for k, v in model(x, training=False).items()}

    glob = fmap.mean(axis=(1, 2))
    np.testing.assert_allclose(out["global"], glob, rtol=1e-4, atol=1e-5)

    pooled = fmap.mean(axis=2) if pooling == "mean" else fmap.max(axis=2)
    (kernel,) = model.get_layer("local_conv").get_weights()
    gamma, beta, mean, var = bn.get_weights()
    z = pooled @ kernel
    local = np.maximum(gamma * (z - mean) / np.sqrt(var + bn.epsilon) + beta, 0.0)
    assert local.shape == (3, 4, 16)
    np.testing.assert_allclose(out["local"], local, rtol=1e-4, atol=1e-4)

    w, b = model.get_layer("logits").get_weights()
    np.testing.assert_allclose(out["logits"], glob @ w + b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("local", [False, True])
def test_inference_model_save_load_round_trip(tmp_path, local):
    keras.utils.set_random_seed(5)
    model = build_model("tiny", num_classes=7, input_shape=SHAPE, local_pooling="max")
    view = inference_model(model, local=local)
    expected_keys = {"global", "local"} if local else {"global"}
    x = _images(4, seed=6)
    before = view.predict(x, verbose=0)
    assert set(before) == expected_keys
    path = str(tmp_path / "inference.keras")
    view.save(path)
    loaded = keras.saving.load_model(path)
    after = loaded.predict(x, verbose=0)
    assert set(after) == expected_keys
    for key in expected_keys:
        np.testing.assert_array_equal(after[key], before[key])
    # the view shares the network's weights
    full = model.predict(x, verbose=0)
    np.testing.assert_array_equal(before["global"], full["global"])


def test_inference_model_unwraps_a_training_model():
    model = build_model("tiny", num_classes=4, input_shape=SHAPE)
    view = inference_model(AlignedReIDModel(model), local=True)
    assert _output_shapes(view) == {"global": (None, 256), "local": (None, 4, 128)}
