"""The tf.data input pipeline: PK-sampled training batches and ordered
evaluation batches.

Training (:func:`make_train_dataset`) yields batches of P identities x K images
(the batch layout TriHard mining needs), forever, with random horizontal flips
and a random crop. What each batch holds (rows, labels, the resampling box of
every sample) comes from :class:`reid_tf.pk_sampler.PKSampler`, which depends
only on ``(seed, b)`` for batch ``b``; the PyDataset pipeline of
:mod:`reid_tf.pydataset` asks the same sampler and gives the same batches.

Evaluation (:func:`make_eval_dataset`) yields the images in the given order,
without augmentation, resized exactly like training images
(:func:`reid_tf.image_io.eval_batches` is its TF-free twin).

Images: JPEG/PNG/BMP/GIF files decoded to RGB (JPEG with
``tf.io.decode_jpeg(dct_method="INTEGER_ACCURATE")``, the bytes Pillow
decodes; others with ``tf.io.decode_image(expand_animations=False)``),
scaled to [0, 1] and resized bilinearly to ``image_size`` with
``tf.image.crop_and_resize`` (corner pixels aligned). Flip and crop are part of
the same resampling box, so augmentation costs no extra pass over the image.
The models of :mod:`reid_tf.model` take images in [0, 1] and standardise them
inside (each backbone with the statistics its weights expect), so the
pipeline does not normalise by default; ``normalize="imagenet"`` subtracts
the ImageNet mean and divides by its standard deviation for models that
expect standardised input.

Unreadable images: training drops them together with their labels and
counts them (:class:`SkipReport`); evaluation stops with an error naming the
file (an ``tf.errors.InvalidArgumentError`` whose message contains
``unreadable or corrupt image: PATH``).
"""

import re
import sys

import numpy as np
import tensorflow as tf

from reid_tf.pk_sampler import (CROPS, IMAGENET_MEAN, IMAGENET_STD, NORMALIZATIONS, REMAINDERS,
                                PKSampler, SkipReport, check_eval_args, check_paths,
                                check_train_args, steps_per_epoch)

__all__ = ["AUTOTUNE", "CROPS", "IMAGENET_MEAN", "IMAGENET_STD", "NORMALIZATIONS", "REMAINDERS",
           "SkipReport", "image_error_path", "make_eval_dataset", "make_train_dataset",
           "scan_images", "steps_per_epoch"]

AUTOTUNE = tf.data.AUTOTUNE


# ----------------------------------------------------------------- images
def _normalize(image_uint8, normalize=None):
    image = tf.cast(image_uint8, tf.float32) / 255.0
    if normalize is None:
        return image
    mean = tf.constant(IMAGENET_MEAN, tf.float32)
    std = tf.constant(IMAGENET_STD, tf.float32)
    return (image - mean) / std


def _decode(path):
    contents = tf.io.read_file(path)
    image = tf.cond(
        tf.io.is_jpeg(contents),
        lambda: tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(contents, channels=3, expand_animations=False))
    image.set_shape([None, None, 3])
    return image


def _resample(image, box, size):
    """Bilinear resampling of ``image`` [h, w, 3] inside ``box``
    (y1, x1, y2, x2 normalised; x1 > x2 flips) to ``size``; outside = 0."""
    out = tf.image.crop_and_resize(image[None], box[None], tf.zeros([1], tf.int32), size,
                                   extrapolation_value=0.0)
    return out[0]


def scan_images(paths, num_parallel_calls=AUTOTUNE):
    """Decode every image once and report which ones fail.

    Args:
        paths: N file paths.
        num_parallel_calls: parallel decoders.

    Returns:
        [N] bool numpy array, True where the file was read and decoded.

    Example:
        >>> from PIL import Image
        >>> for i in range(8):
        ...     Image.new("RGB", (32, 64), (30 * i, 0, 0)).save(f"{i}.jpg")
        >>> _ = open("broken.jpg", "wb").write(b"not a jpeg")
        >>> paths, labels = [f"{i}.jpg" for i in range(8)], [i // 2 for i in range(8)]
        >>> scan_images(["0.jpg", "broken.jpg"])
        array([ True, False])
    """
    paths = check_paths(paths)
    n = len(paths)
    ok = np.zeros(n, bool)
    if n == 0:
        return ok
    table = tf.constant(paths.astype(str))

    def load(i):
        image = _decode(table[i])
        return i, tf.shape(image)[0]

    ds = (tf.data.Dataset.range(n)
          .map(load, num_parallel_calls=num_parallel_calls, deterministic=False)
          .ignore_errors()
          .batch(4096))
    for idx, _ in ds:
        ok[idx.numpy()] = True
    return ok


# ----------------------------------------------------------------- training
def make_train_dataset(paths, labels, *, P=40, K=4, image_size=(256, 128), flip=True,
                       crop="pad", pad=10, crop_fraction=0.8, seed=0, deterministic=False,
                       remainder="pad", scan=True, report=None, first_batch=0,
                       normalize=None, num_parallel_calls=AUTOTUNE, prefetch=AUTOTUNE):
    """An infinite dataset of PK batches for metric learning.

    Sampling (see :class:`reid_tf.pk_sampler.PKSampler`): the identities are
    shuffled at the start of every pass and taken P at a time; each batch
    holds K images of each of its P identities, grouped identity by identity
    ([id0 x K, id1 x K, ...]); an identity with fewer than K images gives all
    of them, then repeats. With ``remainder="pad"`` the last incomplete
    group of a pass is filled with identities from the start of the pass;
    with ``"drop"`` it is left out. :func:`steps_per_epoch` gives the batches
    per pass.

    Augmentation (see :func:`reid_tf.pk_sampler.augment_boxes`): optional
    horizontal flip (probability 0.5) and a random crop: ``"pad"`` pads
    ``pad`` pixels (zeros of the output scale: black, or the ImageNet mean
    colour with ``normalize="imagenet"``) on every side and crops back to
    ``image_size``; ``"resize"`` crops a random window of ``f`` times the
    height and width, ``f ~ U(crop_fraction, 1)``, and resizes it back;
    ``None`` (or ``"none"``) does not crop.

    Unreadable files: with ``scan=True`` every file is decoded once up front
    and the unreadable ones are left out with their labels (listed in
    ``report.scanned``). A file that fails later is dropped with its label
    (that batch then has P*K - 1 rows) and counted in
    ``report.runtime_skipped``. Labels never shift to other images.

    Determinism: the content of batch ``b`` depends only on ``seed`` and
    ``b`` (and equals batch ``b`` of :func:`reid_tf.pydataset.make_train_pydataset`
    with the same arguments). ``deterministic=True`` also makes tf.data emit
    batches in order (``options.deterministic``), so the same seed gives the
    same sequence of batches; with False a ready batch may overtake a slower one.

    Args:
        paths: [N] image file paths.
        labels: [N] integer identity labels (any values; returned as given).
        P: identities per batch (<= number of identities).
        K: images per identity in a batch (>= 1).
        image_size: (height, width) of the output images.
        flip: random horizontal flips.
        crop: "pad", "resize" or None.
        pad: padding in pixels for ``crop="pad"``.
        crop_fraction: smallest window fraction for ``crop="resize"``.
        seed: integer seed of the sampler and the augmentation.
        deterministic: emit batches in order (for tests and reproducible runs).
        remainder: "pad" or "drop" (see above).
        scan: decode every file once before training (about N / 5000 s).
        report: a :class:`SkipReport` to fill (one is created otherwise and
            attached to the returned dataset as ``dataset.skip_report``).
        first_batch: start at batch number ``first_batch`` (to resume: the
            same batches as ``.skip(first_batch)`` without loading the
            skipped images).
        normalize: None (images in [0, 1]) or "imagenet" (ImageNet mean/std).
        num_parallel_calls: parallel image loaders.
        prefetch: batches to prefetch.

    Returns:
        ``tf.data.Dataset`` of (images [P*K, H, W, 3] float32, labels [P*K]
        int32); infinite (use ``take`` or ``steps_per_epoch``).

    Raises:
        ValueError: bad argument (the message names it).

    Example:
        >>> from PIL import Image
        >>> for i in range(8):
        ...     Image.new("RGB", (32, 64), (30 * i, 0, 0)).save(f"{i}.jpg")
        >>> paths, labels = [f"{i}.jpg" for i in range(8)], [i // 2 for i in range(8)]
        >>> ds = make_train_dataset(paths, labels, P=4, K=2, image_size=(64, 32))
        >>> images, batch_labels = next(iter(ds))
        >>> images.shape, batch_labels.shape
        (TensorShape([8, 64, 32, 3]), TensorShape([8]))
    """
    paths, labels, size, crop, normalize = check_train_args(
        paths, labels, P=P, K=K, image_size=image_size, crop=crop, pad=pad,
        crop_fraction=crop_fraction, remainder=remainder, first_batch=first_batch,
        normalize=normalize)
    report = SkipReport() if report is None else report

    if scan and len(paths):
        ok = scan_images(paths, num_parallel_calls)
        if not ok.all():
            report.scanned.extend(str(p) for p in paths[~ok])
            print(f"make_train_dataset: {report.summary()}", file=sys.stderr)
            paths, labels = paths[ok], labels[ok]

    sampler = PKSampler(labels, P=P, K=K, image_size=size, flip=flip, crop=crop, pad=pad,
                        crop_fraction=crop_fraction, seed=seed, remainder=remainder)
    batch = sampler.P * sampler.K
    paths_t = tf.constant(paths.astype(str))
    counter = report.add_counter(_VariableCount())

    def plan(b):
        return tuple(sampler.batch(int(b)))

    def sample(b):
        """Row indices [P*K], labels [P*K] and boxes [P*K, 4] of batch b."""
        rows, lab, boxes = tf.numpy_function(plan, [b], [tf.int64, tf.int32, tf.float32],
                                             stateful=False)
        return (tf.ensure_shape(rows, [batch]), tf.ensure_shape(lab, [batch]),
                tf.ensure_shape(boxes, [batch, 4]))

    def load(row, label, box):
        return _resample(_normalize(_decode(paths_t[row]), normalize), box, size), label

    def load_batch(rows, lab, boxes):
        # one inner dataset per batch: a failing image is dropped with its label
        # without shifting rows into the next batch; up to 4 batches load at a
        # time and the images of a batch in parallel (order kept)
        return (tf.data.Dataset.from_tensor_slices((rows, lab, boxes))
                .map(load, num_parallel_calls=num_parallel_calls, deterministic=True)
                .ignore_errors()
                .batch(batch))

    def count(images, lab):
        missing = batch - tf.shape(lab, out_type=tf.int64)[0]
        with tf.control_dependencies([counter.variable.assign_add(missing)]):
            return tf.identity(images), tf.identity(lab)

    ds = (tf.data.Dataset.counter(start=int(first_batch), dtype=tf.int64)
          .map(sample)
          .interleave(load_batch, cycle_length=4, block_length=1,
                      num_parallel_calls=num_parallel_calls, deterministic=bool(deterministic))
          .map(count)
          .prefetch(prefetch))
    options = tf.data.Options()
    options.deterministic = bool(deterministic)
    ds = ds.with_options(options)
    try:
        ds.skip_report = report
    except AttributeError:  # pragma: no cover - a dataset class without __dict__
        pass
    return ds


class _VariableCount:
    """The runtime-skip counter of one tf.data pipeline (a TF variable)."""

    def __init__(self):
        self.variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_images")

    def __int__(self):
        return int(self.variable.numpy())


# ----------------------------------------------------------------- evaluation
_EVAL_ERROR = re.compile(r"unreadable or corrupt image:\]? \[(.*?)\]")


def image_error_path(error):
    """The file named by an evaluation dataset's error, or None.

    Args:
        error: an exception raised while iterating :func:`make_eval_dataset`.

    Returns:
        str path, or None when the error is not about an unreadable image.

    Example:
        >>> _ = open("broken.jpg", "wb").write(b"not a jpeg")
        >>> try:
        ...     list(make_eval_dataset(["broken.jpg"]))
        ... except tf.errors.InvalidArgumentError as exc:
        ...     print(image_error_path(exc))
        broken.jpg
    """
    match = _EVAL_ERROR.search(getattr(error, "message", None) or str(error))
    return match.group(1) if match else None


def make_eval_dataset(paths, *, image_size=(256, 128), batch_size=128, with_index=False,
                      normalize=None, num_parallel_calls=AUTOTUNE, prefetch=AUTOTUNE):
    """Images in the given order, resized like training images, no augmentation.

    Args:
        paths: [N] image file paths.
        image_size: (height, width).
        batch_size: images per batch (the last batch may be smaller).
        with_index: yield (images, indices) where indices [B] int64 are the
            positions in ``paths`` (to carry pid/camid/path along).
        normalize: None (images in [0, 1]) or "imagenet" (ImageNet mean/std).
        num_parallel_calls: parallel decoders (the order is kept).
        prefetch: batches to prefetch.

    Returns:
        ``tf.data.Dataset`` of images [B, H, W, 3] float32 (or (images,
        indices)); finite, one pass.

    Raises:
        ValueError: bad argument.
        tf.errors.InvalidArgumentError (while iterating): a file could not be
            read or decoded; the message contains
            ``unreadable or corrupt image: PATH``.

    Example:
        >>> from PIL import Image
        >>> for name in ("a.jpg", "b.jpg"):
        ...     Image.new("RGB", (32, 64)).save(name)
        >>> ds = make_eval_dataset(["a.jpg", "b.jpg"], image_size=(128, 64))
        >>> [b.shape for b in ds]
        [TensorShape([2, 128, 64, 3])]
    """
    paths, size, batch_size, normalize = check_eval_args(paths, image_size, batch_size,
                                                         normalize)
    n = len(paths)
    paths_t = tf.constant(paths.astype(str) if n else np.zeros([0], str), tf.string)
    box = tf.constant([0.0, 0.0, 1.0, 1.0])

    def load(i):
        return _resample(_normalize(_decode(paths_t[i]), normalize), box, size), i

    def check(expected, element):
        image, i = element
        # an index skipped by ignore_errors means its file failed
        name = paths_t[tf.minimum(expected, max(n - 1, 0))] if n else tf.constant("")
        ok = tf.debugging.Assert(tf.equal(i, expected), ["unreadable or corrupt image:", name])
        with tf.control_dependencies([ok]):
            i = tf.identity(i)
        return i + 1, (image, i)

    sentinel = tf.data.Dataset.from_tensors((tf.zeros(size + (3,), tf.float32),
                                             tf.constant(n, tf.int64)))
    ds = (tf.data.Dataset.range(n)
          .map(load, num_parallel_calls=num_parallel_calls, deterministic=True)
          .ignore_errors()
          .concatenate(sentinel)
          .scan(tf.constant(0, tf.int64), check)
          .filter(lambda image, i: i < n)
          .batch(batch_size))
    if not with_index:
        ds = ds.map(lambda image, i: image)
    return ds.prefetch(prefetch)
