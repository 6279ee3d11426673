"""The tf.data pipeline: PK batches, labels, augmentation, determinism and
unreadable files.

Every test image is a solid colour that encodes its identity label (red) and
its index inside the identity (green), so a label that travels with the wrong
image is visible in the pixels.
"""

from collections import Counter

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import functools

from reid_tf import data as reid_data
from reid_tf.data import (IMAGENET_MEAN, IMAGENET_STD, SkipReport, image_error_path,
                          scan_images, steps_per_epoch)

# Most tests read pixel values back through the ImageNet standardisation.
make_train_dataset = functools.partial(reid_data.make_train_dataset, normalize="imagenet")
make_eval_dataset = functools.partial(reid_data.make_eval_dataset, normalize="imagenet")

SIZE = (16, 8)
MEAN = np.array(IMAGENET_MEAN)
STD = np.array(IMAGENET_STD)


def _colour(label, k):
    return (label * 12 + 6, k * 20 + 10, 128)


def _write(tmp_path, counts, fmt="png"):
    """counts: {label: number of images}. Returns paths, labels, image index."""
    paths, labels, index = [], [], []
    for label, n in counts.items():
        for k in range(n):
            p = tmp_path / f"{label}_{k}.{fmt}"
            Image.fromarray(np.full(SIZE + (3,), _colour(label, k), np.uint8)).save(p)
            paths.append(str(p))
            labels.append(label)
            index.append(k)
    return paths, np.array(labels), np.array(index)


def _decode(images):
    """(label, k) per image from the centre pixel of normalised images."""
    px = np.asarray(images)[:, SIZE[0] // 2, SIZE[1] // 2, :]
    rgb = (px * STD + MEAN) * 255.0
    return np.rint((rgb[:, 0] - 6) / 12).astype(int), np.rint((rgb[:, 1] - 10) / 20).astype(int)


def _batches(ds, n):
    return [(x.numpy(), y.numpy()) for x, y in ds.take(n)]


@pytest.fixture(scope="module")
def data10(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pk")
    # identity 7 has 2 images (< K), identity 3 has 9
    counts = {i: 5 for i in range(10)}
    counts[7], counts[3] = 2, 9
    return _write(tmp, counts)


def test_pk_structure_and_labels_match_images(data10):
    paths, labels, _ = data10
    ds = make_train_dataset(paths, labels, P=4, K=4, image_size=SIZE, crop=None, flip=False,
                            deterministic=True)
    for images, y in _batches(ds, 6):
        assert images.shape == (16,) + SIZE + (3,) and images.dtype == np.float32
        assert y.dtype == np.int32
        counts = Counter(y.tolist())
        assert len(counts) == 4 and set(counts.values()) == {4}
        # grouped identity by identity
        assert all(len(set(y[i * 4:(i + 1) * 4])) == 1 for i in range(4))
        decoded, k = _decode(images)
        np.testing.assert_array_equal(decoded, y)


def test_every_identity_once_per_pass_and_reshuffled(data10):
    paths, labels, _ = data10
    steps = steps_per_epoch(labels, P=4)
    assert steps == 3
    ds = make_train_dataset(paths, labels, P=4, K=2, image_size=SIZE, crop=None,
                            deterministic=True)
    batches = _batches(ds, 2 * steps)
    for p in range(2):
        seen = [list(dict.fromkeys(y.tolist())) for _, y in batches[p * steps:(p + 1) * steps]]
        flat = [i for ids in seen for i in ids]
        assert set(flat) == set(range(10))
        # only the padded last group repeats identities (2 of them here)
        assert len(flat) == 12 and len(set(flat[:10])) == 10
    order = [[i for _, y in batches[p * steps:(p + 1) * steps] for i in dict.fromkeys(y.tolist())]
             for p in range(2)]
    assert order[0] != order[1]


def test_remainder_drop(data10):
    paths, labels, _ = data10
    assert steps_per_epoch(labels, P=4, remainder="drop") == 2
    ds = make_train_dataset(paths, labels, P=4, K=2, image_size=SIZE, crop=None,
                            remainder="drop", deterministic=True)
    batches = _batches(ds, 4)
    for p in range(2):
        ids = [i for _, y in batches[2 * p:2 * p + 2] for i in dict.fromkeys(y.tolist())]
        assert len(ids) == 8 and len(set(ids)) == 8


def test_small_identity_with_replacement_large_identity_distinct(data10):
    paths, labels, _ = data10
    ds = make_train_dataset(paths, labels, P=10, K=4, image_size=SIZE, crop=None, flip=False,
                            deterministic=True)
    for images, y in _batches(ds, 3):
        label, k = _decode(images)
        small = k[y == 7]
        assert len(small) == 4 and set(small) == {0, 1}   # both images, then repeats
        big = k[y == 3]
        assert len(big) == 4 and len(set(big)) == 4        # 9 images: K distinct
        for ident in range(10):
            if ident != 7:
                assert len(set(k[y == ident])) == 4


def test_normalisation_values(tmp_path):
    colour = (200, 100, 30)
    p = tmp_path / "c.png"
    Image.fromarray(np.full((12, 6, 3), colour, np.uint8)).save(p)
    expected = (np.array(colour) / 255.0 - MEAN) / STD
    ds = make_train_dataset([str(p)] * 2, [0, 1], P=2, K=1, image_size=(24, 10), crop=None)
    images, _ = next(iter(ds))
    np.testing.assert_allclose(images.numpy(), np.broadcast_to(expected, images.shape), atol=1e-5)
    (ev,) = list(make_eval_dataset([str(p)], image_size=(24, 10)))
    np.testing.assert_allclose(ev.numpy()[0], np.broadcast_to(expected, (24, 10, 3)), atol=1e-5)


def test_default_output_is_unit_range(tmp_path):
    colour = (200, 100, 30)
    p = tmp_path / "c.png"
    Image.fromarray(np.full((12, 6, 3), colour, np.uint8)).save(p)
    expected = np.array(colour) / 255.0
    ds = reid_data.make_train_dataset([str(p)] * 2, [0, 1], P=2, K=1, image_size=(24, 10),
                                      crop=None)
    images, _ = next(iter(ds))
    np.testing.assert_allclose(images.numpy(), np.broadcast_to(expected, images.shape), atol=1e-5)
    (ev,) = list(reid_data.make_eval_dataset([str(p)], image_size=(24, 10)))
    np.testing.assert_allclose(ev.numpy()[0], np.broadcast_to(expected, (24, 10, 3)), atol=1e-5)
    with pytest.raises(ValueError, match="normalize"):
        reid_data.make_eval_dataset([str(p)], normalize="caffe")


def test_deterministic_repeatability(data10):
    paths, labels, _ = data10

    def run(seed):
        ds = make_train_dataset(paths, labels, P=3, K=2, image_size=SIZE, crop="pad", pad=3,
                                seed=seed, deterministic=True)
        return _batches(ds, 4)

    a, b, c = run(5), run(5), run(6)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)
    assert any(not np.array_equal(ya, yc) for (_, ya), (_, yc) in zip(a, c))


def test_nondeterministic_mode_keeps_batch_structure(data10):
    paths, labels, _ = data10
    ds = make_train_dataset(paths, labels, P=4, K=3, image_size=SIZE, crop=None, seed=1)
    for images, y in _batches(ds, 5):
        assert sorted(Counter(y.tolist()).values()) == [3, 3, 3, 3]
        np.testing.assert_array_equal(_decode(images)[0], y)


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    """Images whose left half is red and right half blue."""
    tmp = tmp_path_factory.mktemp("halves")
    img = np.zeros((32, 16, 3), np.uint8)
    img[:, :8] = (255, 0, 0)
    img[:, 8:] = (0, 0, 255)
    paths = []
    for i in range(8):
        p = tmp / f"{i}.png"
        Image.fromarray(img).save(p)
        paths.append(str(p))
    return paths, np.arange(8) // 2


def _red_left(images):
    """Per image: is the red channel larger on the left than on the right?"""
    red = (images[..., 0] * STD[0] + MEAN[0])
    return red[:, 16, 2] > red[:, 16, -3]


@pytest.mark.parametrize("crop", ["pad", "resize", None])
def test_flip_and_crop(halves, crop):
    paths, labels = halves
    size = (32, 16)
    flipped = make_train_dataset(paths, labels, P=4, K=2, image_size=size, crop=crop, pad=3,
                                 flip=True, deterministic=True)
    fixed = make_train_dataset(paths, labels, P=4, K=2, image_size=size, crop=crop, pad=3,
                               flip=False, deterministic=True)
    left_flip = np.concatenate([_red_left(x) for x, _ in _batches(flipped, 4)])
    left_fixed = np.concatenate([_red_left(x) for x, _ in _batches(fixed, 4)])
    assert left_fixed.all()
    assert 0 < left_flip.sum() < len(left_flip)         # some flipped, some not
    images = np.concatenate([x for x, _ in _batches(fixed, 4)])
    assert images.shape[1:] == size + (3,)
    # zero (= mean colour) borders exist only with pad-and-crop
    zero_cols = np.all(images == 0.0, axis=(1, 3))      # [N, W]
    zero_rows = np.all(images == 0.0, axis=(2, 3))      # [N, H]
    has_pad = zero_cols.any(axis=1) | zero_rows.any(axis=1)
    if crop == "pad":
        assert has_pad.any()
    else:
        assert not has_pad.any()
    if crop is None:
        # no crop: every image equals the plain resize of the source
        np.testing.assert_allclose(images, np.broadcast_to(images[0], images.shape), atol=1e-6)
    else:
        assert not np.allclose(images, images[0])


def test_pad_crop_is_a_pixel_shift(tmp_path):
    """Pad-and-crop at the source size is an integer shift of the source."""
    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, (20, 10, 3)).astype(np.uint8)
    p = tmp_path / "r.png"
    Image.fromarray(src).save(p)
    norm = (src / 255.0 - MEAN) / STD
    ds = make_train_dataset([str(p)], [0], P=1, K=1, image_size=(20, 10), crop="pad", pad=2,
                            flip=False, deterministic=True)
    found = set()
    for images, _ in _batches(ds, 12):
        out = images[0]
        match = None
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                ref = np.zeros_like(norm)
                ys, yd = slice(max(dy, 0), 20 + min(dy, 0)), slice(max(-dy, 0), 20 + min(-dy, 0))
                xs, xd = slice(max(dx, 0), 10 + min(dx, 0)), slice(max(-dx, 0), 10 + min(-dx, 0))
                ref[yd, xd] = norm[ys, xs]
                if np.allclose(out, ref, atol=1e-4):
                    match = (dy, dx)
        assert match is not None
        found.add(match)
    assert len(found) > 3


def test_corrupt_image_scanned_out_with_its_label(data10, tmp_path):
    paths, labels, index = data10
    paths = list(paths)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    # the corrupt file is labelled 3 with green index 8: it must never appear
    paths[labels.tolist().index(3) + 8] = str(bad)
    report = SkipReport()
    ds = make_train_dataset(paths, labels, P=10, K=4, image_size=SIZE, crop=None,
                            deterministic=True, report=report)
    assert report.scanned == [str(bad)] and report.count == 1
    assert ds.skip_report is report
    assert "1 unreadable" in report.summary()
    for images, y in _batches(ds, 4):
        assert len(y) == 40
        decoded, k = _decode(images)
        np.testing.assert_array_equal(decoded, y)
        assert set(k[y == 3]) <= set(range(8))


def test_corrupt_image_at_runtime_dropped_with_label(data10, tmp_path):
    paths, labels, _ = data10
    paths = list(paths)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    paths[labels.tolist().index(7)] = str(bad)          # identity 7: 1 good + 1 bad
    report = SkipReport()
    ds = make_train_dataset(paths, labels, P=10, K=4, image_size=SIZE, crop=None, scan=False,
                            deterministic=True, report=report, prefetch=0)
    total = 0
    for images, y in _batches(ds, 3):
        decoded, _ = _decode(images)
        np.testing.assert_array_equal(decoded, y)        # labels never shift
        counts = Counter(y.tolist())
        assert all(counts[i] == 4 for i in range(10) if i != 7)
        assert len(y) == 36 + counts[7]                  # only identity 7 loses rows
        total += 40 - len(y)
    assert total > 0
    assert report.runtime_skipped >= total and report.count == report.runtime_skipped


def test_scan_images(data10, tmp_path):
    paths, _, _ = data10
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"")
    ok = scan_images([paths[0], str(bad), paths[1], str(tmp_path / "missing.png")])
    np.testing.assert_array_equal(ok, [True, False, True, False])


def test_eval_dataset_order_and_index(data10):
    paths, labels, index = data10
    batches = list(make_eval_dataset(paths, image_size=SIZE, batch_size=7, with_index=True))
    assert [len(i) for _, i in batches] == [7] * (len(paths) // 7) + [len(paths) % 7]
    images = np.concatenate([x.numpy() for x, _ in batches])
    idx = np.concatenate([i.numpy() for _, i in batches])
    np.testing.assert_array_equal(idx, np.arange(len(paths)))
    decoded, k = _decode(images)
    np.testing.assert_array_equal(decoded, labels)
    np.testing.assert_array_equal(k, index)
    plain = np.concatenate([x.numpy() for x in make_eval_dataset(paths, image_size=SIZE,
                                                                   batch_size=5)])
    np.testing.assert_array_equal(plain, images)


@pytest.mark.parametrize("where", [0, 5, -1])
def test_eval_dataset_error_names_the_file(data10, tmp_path, where):
    paths, _, _ = data10
    paths = list(paths)
    bad = tmp_path / f"corrupt_{where}.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    paths[where] = str(bad)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        for _ in make_eval_dataset(paths, image_size=SIZE, batch_size=4):
            pass
    assert str(bad) in info.value.message
    assert image_error_path(info.value) == str(bad)


def test_bad_arguments(data10):
    paths, labels, _ = data10
    with pytest.raises(ValueError, match="^P:"):
        make_train_dataset(paths, labels, P=11, image_size=SIZE, scan=False)
    with pytest.raises(ValueError, match="^crop:"):
        make_train_dataset(paths, labels, P=2, crop="zoom", scan=False)
    with pytest.raises(ValueError, match="^labels:"):
        make_train_dataset(paths, labels[:-1], P=2, scan=False)
    with pytest.raises(ValueError, match="^image_size:"):
        make_eval_dataset(paths, image_size=(0, 8))
    with pytest.raises(ValueError, match="^remainder:"):
        steps_per_epoch(labels, P=2, remainder="wrap")


def test_eval_matches_unaugmented_training_and_identity_resize(tmp_path):
    rng = np.random.default_rng(1)
    src = rng.integers(0, 256, (24, 12, 3)).astype(np.uint8)
    p = tmp_path / "r.png"
    Image.fromarray(src).save(p)
    (same_size,) = list(make_eval_dataset([str(p)], image_size=(24, 12)))
    np.testing.assert_allclose(same_size.numpy()[0], (src / 255.0 - MEAN) / STD, atol=1e-5)
    (ev,) = list(make_eval_dataset([str(p)], image_size=(48, 20)))
    train = make_train_dataset([str(p)], [3], P=1, K=1, image_size=(48, 20), crop=None,
                               flip=False)
    images, y = next(iter(train))
    assert y.numpy().tolist() == [3]
    np.testing.assert_array_equal(images.numpy(), ev.numpy())
    # the corner pixels are kept by the corner-aligned bilinear resize
    np.testing.assert_allclose(ev.numpy()[0, 0, 0], (src[0, 0] / 255.0 - MEAN) / STD, atol=1e-5)
    np.testing.assert_allclose(ev.numpy()[0, -1, -1], (src[-1, -1] / 255.0 - MEAN) / STD,
                               atol=1e-5)


def test_skip_report_callback(capsys):
    report = SkipReport()
    report.callback().on_train_end()
    assert capsys.readouterr().err == ""
    report.scanned.append("broken.jpg")
    report.callback().on_train_end()
    assert "1 unreadable" in capsys.readouterr().err


def test_first_batch_resumes_like_skip(data10):
    paths, labels, _ = data10
    kw = dict(P=4, K=2, image_size=SIZE, crop="pad", pad=2, seed=7, deterministic=True)
    skipped = _batches(make_train_dataset(paths, labels, **kw).skip(4), 3)
    resumed = _batches(make_train_dataset(paths, labels, first_batch=4, **kw), 3)
    for (xa, ya), (xb, yb) in zip(skipped, resumed):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)
