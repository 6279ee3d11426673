"""The two training pipelines give the same batches; the TF-free image code
gives TensorFlow's pixels; the pipeline and extraction run under JAX without
TensorFlow.

Oracles: the tf.data pipeline of ``reid_tf.data`` and TensorFlow's own ops
(``tf.image.crop_and_resize``, ``tf.io.decode_jpeg``), run in this process on
the TensorFlow backend.
"""

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from reid_tf.config import SettingError, TrainConfig
from reid_tf.data import make_eval_dataset, make_train_dataset
from reid_tf.image_io import (UnreadableImage, crop_and_resize, decode_image, eval_batches,
                              scan_images)
from reid_tf.pk_sampler import SkipReport
from reid_tf.pydataset import make_train_pydataset
from reid_tf.train_data import training_pipeline

REPO = Path(__file__).resolve().parents[2]
SIZE = (32, 16)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Random-noise JPEGs and PNGs of several sizes; 11 identities of 1 to 6 images."""
    tmp = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for ident in range(11):
        for k in range(1 + (ident * 5) % 6):
            pixels = rng.integers(0, 256, (30 + 3 * k, 14 + ident % 4, 3)).astype(np.uint8)
            path = tmp / f"{ident}_{k}.{'jpg' if (ident + k) % 2 else 'png'}"
            Image.fromarray(pixels).save(path, quality=90)
            paths.append(str(path))
            labels.append(100 + 7 * ident)
    return paths, np.array(labels)


def _tf_batches(paths, labels, n, **kw):
    ds = make_train_dataset(paths, labels, deterministic=True, **kw).take(n)
    return [(x.numpy(), y.numpy()) for x, y in ds]


@pytest.mark.parametrize("kw", [
    dict(crop="pad", pad=3, flip=True, seed=5),
    dict(crop="resize", crop_fraction=0.7, flip=True, seed=6, normalize="imagenet"),
    dict(crop=None, flip=False, seed=7, remainder="drop", first_batch=3),
])
def test_pydataset_gives_the_tfdata_batches(mixed, kw):
    paths, labels = mixed
    kw = dict(P=4, K=3, image_size=SIZE, **kw)
    n = 10  # several passes over the identities (3 or 2 batches each)
    expected = _tf_batches(paths, labels, n, **kw)
    ds = make_train_pydataset(paths, labels, num_batches=n, workers=0, **kw)
    assert ds.num_batches == n
    for i, (x_tf, y_tf) in enumerate(expected):
        x, y = ds[i]
        np.testing.assert_array_equal(y, y_tf)
        assert y.dtype == np.int32 and x.dtype == np.float32 and x.shape == x_tf.shape
        # the same decoder settings and the same bilinear arithmetic
        np.testing.assert_allclose(x, x_tf, rtol=0, atol=1e-6)


def test_batches_depend_on_seed_only(mixed):
    paths, labels = mixed
    a = make_train_pydataset(paths, labels, P=4, K=2, image_size=SIZE, seed=1, workers=0)
    b = make_train_pydataset(paths, labels, P=4, K=2, image_size=SIZE, seed=1, workers=0,
                             first_batch=5)
    c = make_train_pydataset(paths, labels, P=4, K=2, image_size=SIZE, seed=2, workers=0)
    assert a.num_batches is None                            # infinite
    for i in range(3):
        np.testing.assert_array_equal(a[5 + i][0], b[i][0])
        np.testing.assert_array_equal(a[5 + i][1], b[i][1])
    assert any(not np.array_equal(a[i][1], c[i][1]) for i in range(3))


def test_crop_and_resize_is_tensorflows():
    rng = np.random.default_rng(3)
    image = rng.random((13, 7, 3)).astype(np.float32)
    boxes = np.concatenate([
        rng.uniform(-0.4, 1.4, (40, 4)),                     # outside, flipped, upside down
        [[0, 1, 1, 0], [0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5]],
    ]).astype(np.float32)
    for size in [(13, 7), (29, 11), (1, 1), (1, 5), (6, 1)]:
        ref = tf.image.crop_and_resize(image[None].repeat(len(boxes), 0), boxes,
                                       np.arange(len(boxes), dtype=np.int32), size).numpy()
        mine = np.stack([crop_and_resize(image, box, size) for box in boxes])
        np.testing.assert_allclose(mine, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode, fmt", [("RGB", "JPEG"), ("L", "JPEG"), ("RGBA", "PNG"),
                                       ("P", "PNG"), ("RGB", "BMP"), ("P", "GIF")])
def test_decode_is_tensorflows(tmp_path, mode, fmt):
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, (23, 17, 4)).astype(np.uint8)
    image = Image.fromarray(pixels, "RGBA")
    image = image.convert("RGB").convert("P") if mode == "P" else image.convert(mode)
    path = tmp_path / f"x.{fmt.lower()}"
    image.save(path, fmt)
    (batch,) = list(make_eval_dataset([str(path)], image_size=(23, 17)))
    np.testing.assert_array_equal(np.rint(batch.numpy()[0] * 255).astype(np.uint8),
                                  decode_image(str(path)))


def test_eval_batches_match_make_eval_dataset(mixed):
    paths, _ = mixed
    ref = [x.numpy() for x in make_eval_dataset(paths, image_size=SIZE, batch_size=7,
                                                normalize="imagenet")]
    got = list(eval_batches(paths, image_size=SIZE, batch_size=7, normalize="imagenet",
                            workers=3))
    assert [len(i) for _, i in got] == [len(x) for x in ref]
    np.testing.assert_array_equal(np.concatenate([i for _, i in got]), np.arange(len(paths)))
    np.testing.assert_allclose(np.concatenate([x for x, _ in got]), np.concatenate(ref),
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("where", [0, 8, -1])
def test_eval_batches_name_the_unreadable_file(mixed, tmp_path, where):
    paths = list(mixed[0])
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    paths[where] = str(bad)
    with pytest.raises(UnreadableImage) as info:
        for _ in eval_batches(paths, image_size=SIZE, batch_size=4):
            pass
    assert info.value.path == str(bad)
    np.testing.assert_array_equal(scan_images(paths), [p != str(bad) for p in paths])


def test_unreadable_training_images(mixed, tmp_path):
    paths, labels = list(mixed[0]), mixed[1]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    first_of_4 = labels.tolist().index(100 + 7 * 4)
    paths[first_of_4] = str(bad)
    scanned = make_train_pydataset(paths, labels, P=11, K=2, image_size=SIZE, workers=0)
    assert scanned.skip_report.scanned == [str(bad)]
    assert all(len(scanned[i][1]) == 22 for i in range(3))
    report = SkipReport()
    lazy = make_train_pydataset(paths, labels, P=11, K=2, image_size=SIZE, workers=0,
                                scan=False, report=report)
    ref = _tf_batches(paths, labels, 3, P=11, K=2, image_size=SIZE, scan=False)
    for i, (x_tf, y_tf) in enumerate(ref):
        x, y = lazy[i]
        np.testing.assert_array_equal(y, y_tf)          # the same rows dropped, labels kept
        np.testing.assert_allclose(x, x_tf, rtol=0, atol=1e-6)
    assert report.runtime_skipped == 3 * 22 - sum(len(y) for _, y in ref) > 0


def _add_from_child(counter):
    counter.add(4)


def test_skip_count_crosses_processes():
    """Keras' worker processes come from the default context (``multiprocessing.Pool``)."""
    report = SkipReport()
    counter = report.add_counter()
    child = multiprocessing.Process(target=_add_from_child, args=(counter,))
    child.start()
    child.join(60)
    counter.add(1)
    assert child.exitcode == 0 and report.runtime_skipped == 5


def test_pipeline_setting():
    assert training_pipeline(TrainConfig()) == "tfdata"          # this process: TensorFlow
    assert training_pipeline(TrainConfig(pipeline="pydataset")) == "pydataset"
    with pytest.raises(SettingError) as info:
        training_pipeline(TrainConfig(pipeline="pydataset", strategy="multiworker"))
    assert info.value.for_cli().startswith("--pipeline pydataset: not available with "
                                           "--strategy multiworker")


def test_pipeline_and_extraction_under_jax_without_tensorflow(mixed, tmp_path):
    """One JAX subprocess with TensorFlow unimportable: the PyDataset's batches
    through Keras' threaded loader, the setting's resolution, and reid-extract,
    against the tf.data batches and the TensorFlow extraction here."""
    import keras

    from data_prep.synthetic import prepare_cached
    from reference import read_dump
    from reid_tf import build_model, inference_model
    from reid_tf.extract import extract_dump

    paths, labels = mixed
    kw = dict(P=4, K=3, image_size=SIZE, crop="pad", pad=2, seed=9)
    data = prepare_cached(tmp_path / "cache", num_identities=6, images_per_identity=4,
                          num_cameras=2, height=64, width=32, seed=1)
    keras.utils.set_random_seed(2)
    net = build_model("tiny", num_classes=3, input_shape=(64, 32, 3))
    model = tmp_path / "model.keras"
    inference_model(net, local=True).save(model)
    spec = {"paths": list(paths), "labels": labels.tolist(), "kwargs": kw, "batches": 7,
            "model": str(model), "data": str(data), "dump": str(tmp_path / "jax.h5"),
            "out": str(tmp_path / "out.npz")}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "reid_tf" / "backend_worker.py"),
                           str(tmp_path / "spec.json")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    assert str(out["backend"]) == "jax" and not bool(out["tensorflow"])
    assert str(out["auto"]) == "pydataset" and int(out["extract_code"]) == 0
    assert str(out["tfdata_error"]).startswith("--pipeline tfdata: TensorFlow is not installed")
    expected = _tf_batches(paths, labels, 7, **kw)
    np.testing.assert_array_equal(out["labels"], np.stack([y for _, y in expected]))
    np.testing.assert_allclose(out["images"], np.concatenate([x for x, _ in expected]),
                               rtol=0, atol=1e-6)
    extract_dump(model, data, tmp_path / "tf.h5", batch_size=4, progress=False)
    jax_dump, tf_dump = read_dump(tmp_path / "jax.h5"), read_dump(tmp_path / "tf.h5")
    for split in ("query", "gallery"):
        a, b = getattr(jax_dump, split), getattr(tf_dump, split)
        assert len(a["pid"]) > 0 and set(a) >= {"global", "local"}
        np.testing.assert_allclose(a["global"], b["global"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(a["local"], b["local"], rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(a["pid"], b["pid"])
        assert list(a["path"]) == list(b["path"])
