"""The tf.data input pipeline: PK-sampled training batches and ordered
evaluation batches.

Training (:func:`make_train_dataset`) yields batches of P identities x K images
(the batch layout TriHard mining needs), forever, with random horizontal flips
and a random crop. The sampler runs inside the graph with stateless random
ops, so the batches depend only on ``seed``: every batch ``b`` is drawn from
seeds derived from ``(seed, b)``, and the augmentation of every sample from
``(seed, b, position)``.

Evaluation (:func:`make_eval_dataset`) yields the images in the given order,
without augmentation, resized exactly like training images.

Images: JPEG/PNG/BMP/GIF files decoded to RGB (``tf.io.decode_image`` with
``expand_animations=False``), scaled to [0, 1] and resized bilinearly to ``image_size`` with
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

import math
import re
import sys

import numpy as np
import tensorflow as tf

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROPS = ("pad", "resize", None)
REMAINDERS = ("pad", "drop")
AUTOTUNE = tf.data.AUTOTUNE

# salts of the stateless seeds: one stream per use
_SALT_PERM, _SALT_PICK, _SALT_AUG = 1, 2, 3


class SkipReport:
    """Training images skipped because they could not be read or decoded.

    ``scanned`` lists the files the pre-scan found unreadable (they are left
    out of sampling with their labels). ``runtime_skipped`` counts samples
    whose file failed later, while training (each dropped together with its
    label; that batch is short by one image).

    Example:
        >>> from PIL import Image
        >>> for i in range(8):
        ...     Image.new("RGB", (32, 64), (30 * i, 0, 0)).save(f"{i}.jpg")
        >>> _ = open("broken.jpg", "wb").write(b"not a jpeg")
        >>> paths, labels = [f"{i}.jpg" for i in range(8)], [i // 2 for i in range(8)]
        >>> report = SkipReport()
        >>> ds = make_train_dataset(paths + ["broken.jpg"], labels + [3], P=4, K=2,
        ...                         image_size=(64, 32), report=report)
        >>> report.count, report.summary()
        (1, 'skipped 1 unreadable training image(s): 1 found by the pre-scan (first: broken.jpg)')
    """

    def __init__(self):
        self.scanned = []
        self._runtime = None

    def _counter(self):
        if self._runtime is None:
            self._runtime = tf.Variable(0, dtype=tf.int64, trainable=False,
                                        name="skipped_images")
        return self._runtime

    @property
    def runtime_skipped(self):
        """Samples dropped while iterating (int)."""
        return 0 if self._runtime is None else int(self._runtime.numpy())

    @property
    def count(self):
        """All skipped images: pre-scan plus while iterating (int)."""
        return len(self.scanned) + self.runtime_skipped

    def summary(self):
        """A one-line human-readable account (str)."""
        text = f"skipped {self.count} unreadable training image(s)"
        if self.scanned:
            text += f": {len(self.scanned)} found by the pre-scan (first: {self.scanned[0]})"
        if self.runtime_skipped:
            text += f"; {self.runtime_skipped} while training"
        return text

    def callback(self, stream=None):
        """A Keras callback printing :meth:`summary` at the end of ``fit()``
        when anything was skipped.

        Args:
            stream: where to print (default ``sys.stderr``).

        Returns:
            ``keras.callbacks.Callback``.
        """
        import keras

        report = self

        class _SkipReportCallback(keras.callbacks.Callback):
            def on_train_end(self, logs=None):
                if report.count:
                    print(report.summary(), file=stream or sys.stderr)

        return _SkipReportCallback()


# ----------------------------------------------------------------- checks
def _check_paths(paths, what="paths"):
    if isinstance(paths, (str, bytes)):
        raise ValueError(f"{what}: expected a sequence of file paths, got one string")
    out = np.asarray([str(p) for p in paths], dtype=object)
    return out


def _check_size(image_size):
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size: expected (height, width), got {image_size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"image_size: expected positive values, got {image_size!r}")
    return h, w


def _group_by_label(labels):
    """Sorted distinct labels, and per label the row indices (as order/offset/count)."""
    values, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return values, order, offsets, counts


def steps_per_epoch(labels, P=40, remainder="pad"):
    """Batches in one pass over the identities.

    Args:
        labels: [N] identity labels of the training images.
        P: identities per batch.
        remainder: "pad" (the last incomplete group is filled up, so every
            identity appears in each pass: ceil(L / P) batches) or "drop"
            (L // P batches), with L the number of distinct labels.

    Returns:
        int.

    Example:
        >>> steps_per_epoch([0, 0, 1, 1, 2, 2], P=2)
        2
        >>> steps_per_epoch([0, 0, 1, 1, 2, 2], P=2, remainder="drop")
        1
    """
    if remainder not in REMAINDERS:
        raise ValueError(f"remainder: expected one of {REMAINDERS}, got {remainder!r}")
    num = len(np.unique(np.asarray(labels)))
    return math.ceil(num / P) if remainder == "pad" else num // P


# ----------------------------------------------------------------- images
NORMALIZATIONS = (None, "imagenet")


def _check_normalize(normalize):
    if normalize == "none":
        normalize = None
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize: expected None or 'imagenet', got {normalize!r}")
    return normalize


def _normalize(image_uint8, normalize=None):
    image = tf.cast(image_uint8, tf.float32) / 255.0
    if normalize is None:
        return image
    mean = tf.constant(IMAGENET_MEAN, tf.float32)
    std = tf.constant(IMAGENET_STD, tf.float32)
    return (image - mean) / std


def _decode(path):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def _resample(image, box, size):
    """Bilinear resampling of ``image`` [h, w, 3] inside ``box``
    (y1, x1, y2, x2 normalised; x1 > x2 flips) to ``size``; outside = 0."""
    out = tf.image.crop_and_resize(image[None], box[None], tf.zeros([1], tf.int32), size,
                                   extrapolation_value=0.0)
    return out[0]


def _augment_box(seed, size, flip, crop, pad, crop_fraction):
    """The resampling box of one training sample (stateless, from ``seed`` [2])."""
    h, w = size
    r = tf.random.stateless_uniform([5], seed=seed)
    y1, x1 = tf.constant(0.0), tf.constant(0.0)
    y2, x2 = tf.constant(1.0), tf.constant(1.0)
    if crop == "pad":
        # pad by `pad` output pixels and crop back: a shift of the box by an
        # integer number of output pixels in [-pad, pad]
        dy = tf.floor(r[0] * (2 * pad + 1)) - pad
        dx = tf.floor(r[1] * (2 * pad + 1)) - pad
        y1, y2 = dy / max(h - 1, 1), 1.0 + dy / max(h - 1, 1)
        x1, x2 = dx / max(w - 1, 1), 1.0 + dx / max(w - 1, 1)
    elif crop == "resize":
        f = crop_fraction + (1.0 - crop_fraction) * r[2]
        y1 = r[0] * (1.0 - f)
        x1 = r[1] * (1.0 - f)
        y2, x2 = y1 + f, x1 + f
    if flip:
        do = r[3] < 0.5
        x1, x2 = tf.where(do, x2, x1), tf.where(do, x1, x2)
    return tf.stack([y1, x1, y2, x2])


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
    paths = _check_paths(paths)
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

    Sampling: the identities (distinct labels) are shuffled at the start of
    every pass and taken P at a time; each batch holds K images of each of its
    P identities, so every batch has exactly P distinct labels, K rows each,
    grouped identity by identity ([id0 x K, id1 x K, ...]). An identity with
    at least K images gives K distinct images; one with n < K images gives all
    n, and the other K - n are drawn from them with replacement. With
    ``remainder="pad"`` the last incomplete group of a pass is filled with
    identities from the start of the same pass's order (every identity
    appears in every pass; a few twice); with ``"drop"`` it is left out (in
    each pass, L mod P identities are skipped). :func:`steps_per_epoch` gives
    the batches per pass.

    Augmentation: optional horizontal flip (probability 0.5) and a random
    crop: ``"pad"`` pads ``pad`` pixels (zeros of the output scale: black, or
    the ImageNet mean colour with ``normalize="imagenet"``) on every side and crops back to ``image_size``;
    ``"resize"`` crops a random window of ``f`` times the height and width,
    ``f ~ U(crop_fraction, 1)``, and resizes it back (the same as resizing to
    ``1/f`` times the size and cropping); ``None`` (or ``"none"``) does not crop.

    Unreadable files: with ``scan=True`` every file is decoded once up front
    and the unreadable ones are left out with their labels (listed in
    ``report.scanned``). A file that fails later is dropped with its label
    (that batch then has P*K - 1 rows) and counted in
    ``report.runtime_skipped``. Labels never shift to other images.

    Determinism: the content of batch ``b`` depends only on ``seed`` and
    ``b``. ``deterministic=True`` also makes tf.data emit batches in order
    (``options.deterministic``), so the same seed gives the same sequence of
    batches; with False a ready batch may overtake a slower one.

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
        >>> _ = open("broken.jpg", "wb").write(b"not a jpeg")
        >>> paths, labels = [f"{i}.jpg" for i in range(8)], [i // 2 for i in range(8)]
        >>> ds = make_train_dataset(paths, labels, P=4, K=2, image_size=(64, 32))
        >>> images, batch_labels = next(iter(ds))
        >>> images.shape, batch_labels.shape
        (TensorShape([8, 64, 32, 3]), TensorShape([8]))
    """
    paths = _check_paths(paths)
    normalize = _check_normalize(normalize)
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(paths):
        raise ValueError(f"labels: expected {len(paths)} labels (one per path), "
                         f"got shape {labels.shape}")
    if len(labels) and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels: expected integers, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if crop == "none":
        crop = None
    if crop not in CROPS:
        raise ValueError(f"crop: expected 'pad', 'resize' or None, got {crop!r}")
    if remainder not in REMAINDERS:
        raise ValueError(f"remainder: expected one of {REMAINDERS}, got {remainder!r}")
    if int(K) < 1:
        raise ValueError(f"K: must be >= 1, got {K}")
    if int(P) < 1:
        raise ValueError(f"P: must be >= 1, got {P}")
    if not 0.0 < float(crop_fraction) <= 1.0:
        raise ValueError(f"crop_fraction: must be in (0, 1], got {crop_fraction}")
    if int(pad) < 0:
        raise ValueError(f"pad: must be >= 0, got {pad}")
    if int(first_batch) < 0:
        raise ValueError(f"first_batch: must be >= 0, got {first_batch}")
    P, K, pad = int(P), int(K), int(pad)
    size = _check_size(image_size)
    report = SkipReport() if report is None else report

    if scan and len(paths):
        ok = scan_images(paths, num_parallel_calls)
        if not ok.all():
            report.scanned.extend(str(p) for p in paths[~ok])
            print(f"make_train_dataset: {report.summary()}", file=sys.stderr)
            paths, labels = paths[ok], labels[ok]

    values, order, offsets, counts = _group_by_label(labels)
    num_ids = len(values)
    if num_ids < P:
        raise ValueError(f"P: a batch needs P={P} identities but the data has {num_ids}")
    groups = math.ceil(num_ids / P) if remainder == "pad" else num_ids // P
    max_count = max(int(counts.max()), K)
    batch = P * K

    paths_t = tf.constant(paths.astype(str))
    values_t = tf.constant(values.astype(np.int32))
    order_t = tf.constant(order.astype(np.int64))
    offsets_t = tf.constant(offsets.astype(np.int64))
    counts_t = tf.constant(counts.astype(np.int64))
    base = tf.constant([int(seed) % (2 ** 63), 0], tf.int64)
    counter = report._counter()

    def sample(b):
        """Row indices [P*K], labels [P*K] and first sample number of batch b."""
        epoch, g = b // groups, b % groups
        perm_seed = tf.random.experimental.stateless_fold_in(
            tf.random.experimental.stateless_fold_in(base, _SALT_PERM), epoch)
        perm = tf.random.experimental.stateless_shuffle(tf.range(num_ids, dtype=tf.int64),
                                                        seed=perm_seed)
        perm = tf.concat([perm, perm[:P]], axis=0)
        ids = perm[g * P:g * P + P]                                   # [P]
        n = tf.gather(counts_t, ids)                                  # [P]
        pick_seed = tf.random.experimental.stateless_fold_in(
            tf.random.experimental.stateless_fold_in(base, _SALT_PICK), b)
        keys = tf.random.stateless_uniform([P, max_count], seed=pick_seed)
        valid = tf.range(max_count, dtype=tf.int64)[None, :] < n[:, None]
        keys = tf.where(valid, keys, 2.0)
        distinct = tf.argsort(keys, axis=1, stable=True)[:, :K]      # a random order of the n
        extra_seed = tf.random.experimental.stateless_fold_in(pick_seed, 1)
        u = tf.random.stateless_uniform([P, K], seed=extra_seed)
        extra = tf.minimum(tf.cast(tf.floor(u * tf.cast(n[:, None], tf.float32)), tf.int64),
                           n[:, None] - 1)
        first = tf.range(K, dtype=tf.int64)[None, :] < n[:, None]
        pos = tf.where(first, tf.cast(distinct, tf.int64), extra)    # [P, K]
        rows = tf.gather(order_t, tf.gather(offsets_t, ids)[:, None] + pos)
        lab = tf.repeat(tf.gather(values_t, ids), K)
        return tf.reshape(rows, [-1]), lab, b * batch

    aug_base = tf.random.experimental.stateless_fold_in(base, _SALT_AUG)

    def load(row, label, sample_id):
        image = _normalize(_decode(paths_t[row]), normalize)
        seed_ = tf.random.experimental.stateless_fold_in(aug_base, sample_id)
        box = _augment_box(seed_, size, flip, crop, pad, float(crop_fraction))
        return _resample(image, box, size), label

    def load_batch(rows, lab, first):
        # one inner dataset per batch: a failing image is dropped with its label
        # without shifting rows into the next batch; up to 4 batches load at a
        # time and the images of a batch in parallel (order kept)
        ids = first + tf.range(batch, dtype=tf.int64)
        return (tf.data.Dataset.from_tensor_slices((rows, lab, ids))
                .map(load, num_parallel_calls=num_parallel_calls, deterministic=True)
                .ignore_errors()
                .batch(batch))

    def count(images, lab):
        missing = batch - tf.shape(lab, out_type=tf.int64)[0]
        with tf.control_dependencies([counter.assign_add(missing)]):
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
    paths = _check_paths(paths)
    normalize = _check_normalize(normalize)
    size = _check_size(image_size)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
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
          .batch(int(batch_size)))
    if not with_index:
        ds = ds.map(lambda image, i: image)
    return ds.prefetch(prefetch)
