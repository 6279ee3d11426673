"""The two-branch network, horizontal pooling and the inference views."""

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import keras

from reid_tf.extract import load_model
from reid_tf.layers import HorizontalPooling, ImageNormalization, horizontal_pooling
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
    expected = x.mean(axis=2) if pooling == "mean" else x.max(axis=2)
    fmap = keras.Input((5, 3, 4))
    model = keras.Model(fmap, horizontal_pooling(fmap, pooling))
    assert model.output_shape == (None, 5, 4)
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-6, atol=1e-6)
    # the registered layer of earlier files computes the same
    layer = HorizontalPooling(pooling)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-6, atol=1e-6)
    assert layer.compute_output_shape((None, 5, 3, 4)) == (None, 5, 4)
    assert HorizontalPooling.from_config(layer.get_config()).pooling == pooling


def test_horizontal_pooling_rejects_unknown_mode():
    with pytest.raises(ValueError, match="pooling"):
        HorizontalPooling("sum")
    with pytest.raises(ValueError, match="pooling"):
        horizontal_pooling(keras.Input((5, 3, 4)), "sum")
    with pytest.raises(ValueError, match="local_pooling"):
        build_model("tiny", num_classes=3, input_shape=SHAPE, local_pooling="sum")


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


def test_inference_model_takes_one_image_tensor():
    view = inference_model(build_model("tiny", num_classes=4, input_shape=SHAPE), local=True)
    assert isinstance(view.input, keras.KerasTensor)
    assert len(view.inputs) == 1 and tuple(view.inputs[0].shape) == (None, *SHAPE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = view(_images(2))
    assert set(out) == {"global", "local"}
    assert not [w for w in caught if "structure" in str(w.message)]


# ------------------------------------------------------------- portability
def _layers(model):
    """Every layer of ``model``, nested models included."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)


@pytest.mark.parametrize(
    "backbone, input_shape",
    [("resnet50", (64, 32, 3)), ("resnet50x", (64, 32, 3)), ("tiny", SHAPE)],
)
@pytest.mark.parametrize("last_stride", [1, 2])
def test_network_is_made_of_keras_layers_only(backbone, input_shape, last_stride):
    """No custom object: every layer (backbones included) is a class of Keras itself."""
    model = build_model(backbone, num_classes=3, input_shape=input_shape,
                        local_pooling="max", last_stride=last_stride)
    classes = {type(layer) for layer in _layers(model)} | {type(model)}
    foreign = sorted(f"{c.__module__}.{c.__name__}" for c in classes
                     if not c.__module__.startswith("keras."))
    assert foreign == []
    # and its saved config names no registered (custom) class
    config = json.dumps(keras.saving.serialize_keras_object(inference_model(model, local=True)))
    assert "registered_name" in config and "reid_tf" not in config


_FRESH_PROCESS = textwrap.dedent("""
    import sys

    PROJECT = {"reid_tf", "reference", "data_prep", "reid_common", "tests", "benchmarks"}

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in PROJECT:
                raise ImportError("project module imported: " + name)
            return None

    sys.meta_path.insert(0, Refuse())
    import numpy as np
    import keras

    images = np.load(sys.argv[2])
    out = {}
    for i, path in enumerate(sys.argv[3:]):
        model = keras.saving.load_model(path)
        for key, value in model.predict(images, verbose=0).items():
            out[f"{i}/{key}"] = value
    assert not PROJECT & {name.split(".")[0] for name in sys.modules}
    np.savez(sys.argv[1], **out)
""")


def test_saved_inference_model_loads_in_a_process_without_this_project(tmp_path):
    """model.keras loads with plain keras.saving.load_model where nothing of this project exists."""
    keras.utils.set_random_seed(8)
    models = [
        inference_model(build_model("tiny", num_classes=5, input_shape=SHAPE), local=True),
        inference_model(build_model("tiny", num_classes=5, input_shape=SHAPE,
                                    local_pooling="max", last_stride=1), local=True),
        inference_model(build_model("tiny", num_classes=5, input_shape=SHAPE,
                                    with_local=False)),
    ]
    paths = []
    for i, model in enumerate(models):
        paths.append(str(tmp_path / f"model{i}.keras"))
        model.save(paths[-1])
    images = _images(3, seed=9)
    np.save(tmp_path / "images.npy", images)
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, str(tmp_path / "out.npz"),
         str(tmp_path / "images.npy"), *paths],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    assert sorted(got.files) == ["0/global", "0/local", "1/global", "1/local", "2/global"]
    for i, model in enumerate(models):
        for key, want in model.predict(images, verbose=0).items():
            np.testing.assert_allclose(got[f"{i}/{key}"], want, rtol=1e-6, atol=1e-6)


# Input statistics, written out independently of reid_tf.backbones.
_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), False)
_CAFFE = (tuple(v / 255.0 for v in (123.68, 116.779, 103.939)), (1.0 / 255.0,) * 3, True)


def _earlier_network(network, backbone, pooling):
    """The network as earlier versions built it, sharing ``network``'s weights.

    One ImageNormalization layer in front of the backbone, HorizontalPooling
    for the local branch and a one-element list input: the layout of the
    model.keras files written before.
    """
    mean, std, bgr = _CAFFE if backbone == "resnet50" else _IMAGENET
    net = network.get_layer(backbone)
    trunk = keras.Model(net.get_layer("to_bgr" if bgr else "normalize").output, net.output)
    image = keras.Input(network.inputs[0].shape[1:], name="image")
    fmap = trunk(ImageNormalization(mean, std, reverse_channels=bgr, name="normalize")(image))
    glob = network.get_layer("global")(fmap)
    x = HorizontalPooling(pooling, name="horizontal_pool")(fmap)
    for name in ("local_conv", "local_bn", "local"):
        x = network.get_layer(name)(x)
    return keras.Model([image], {"global": glob, "local": x, "logits": network.get_layer("logits")(glob)})


@pytest.mark.parametrize(
    "backbone, pooling", [("tiny", "mean"), ("tiny", "max"), ("resnet50", "mean")]
)
def test_same_features_as_the_earlier_layout(tmp_path, backbone, pooling):
    """Same weights, earlier layout (custom layers) vs Keras layers only: same outputs."""
    keras.utils.set_random_seed(10)
    network = build_model(backbone, num_classes=6, input_shape=SHAPE, local_channels=16,
                          local_pooling=pooling)
    bn = network.get_layer("local_bn")
    rng = np.random.default_rng(11)
    bn.set_weights([rng.uniform(0.5, 2.0, 16).astype("float32"),
                    rng.normal(size=16).astype("float32"),
                    rng.normal(size=16).astype("float32"),
                    rng.uniform(0.5, 2.0, 16).astype("float32")])
    earlier = _earlier_network(network, backbone, pooling)
    x = _images(4, seed=12)
    new = {k: np.asarray(v) for k, v in network(x, training=False).items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the list input of the earlier layout warns
        old = {k: np.asarray(v) for k, v in earlier(x, training=False).items()}
    assert set(new) == set(old) == {"global", "local", "logits"}
    for key in new:
        scale = float(np.abs(old[key]).max())
        np.testing.assert_allclose(new[key], old[key], rtol=1e-5, atol=1e-5 * max(scale, 1.0))

    # a file written in the earlier layout still loads through reid_tf.extract
    path = str(tmp_path / "earlier.keras")
    keras.Model(earlier.inputs, {"global": earlier.output["global"],
                                 "local": earlier.output["local"]}).save(path)
    loaded = load_model(path)
    assert isinstance(loaded.input, keras.KerasTensor)
    got = loaded.predict(x, verbose=0)
    np.testing.assert_allclose(got["global"], old["global"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got["local"], old["local"], rtol=1e-6, atol=1e-6)
