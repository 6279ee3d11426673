"""The P x K sampler and the augmentation draws of the training pipelines,
in NumPy (no TensorFlow, no Keras).

Both training pipelines, the tf.data one (:func:`reid_tf.data.make_train_dataset`)
and the ``keras.utils.PyDataset`` one (:mod:`reid_tf.pydataset`), ask
:meth:`PKSampler.batch` what batch ``b`` holds: the rows of the training
images, their labels and the resampling box of every sample. The answer
depends only on ``(seed, b)``: every draw comes from a NumPy generator seeded
with ``(seed, salt, key)`` (the salt names the use: identity order, image
pick, augmentation; the key is the pass or the batch), so the two pipelines
give the same batches, in the same order, and a resumed run can start at any
batch.

The resampling box ``(y1, x1, y2, x2)`` is in normalised image coordinates
(``tf.image.crop_and_resize`` convention, corners aligned); ``x1 > x2`` flips
horizontally and a box reaching outside ``[0, 1]`` pads with zeros.
"""

import math
import threading
from typing import NamedTuple

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROPS = ("pad", "resize", None)
REMAINDERS = ("pad", "drop")
NORMALIZATIONS = (None, "imagenet")

# salts of the seeds: one stream per use
_SALT_PERM, _SALT_PICK, _SALT_AUG = 1, 2, 3


class BatchPlan(NamedTuple):
    """What one training batch holds (from :meth:`PKSampler.batch`).

    Attributes:
        rows: [P*K] int64 indices into the training paths.
        labels: [P*K] int32 identity labels, grouped identity by identity.
        boxes: [P*K, 4] float32 resampling boxes ``(y1, x1, y2, x2)``.
    """

    rows: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray


# ----------------------------------------------------------------- checks
def check_paths(paths, what="paths"):
    """File paths as a NumPy object array of str (one string is an error)."""
    if isinstance(paths, (str, bytes)):
        raise ValueError(f"{what}: expected a sequence of file paths, got one string")
    return np.asarray([str(p) for p in paths], dtype=object)


def check_size(image_size):
    """``(height, width)`` as positive ints, or a ValueError naming ``image_size``."""
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size: expected (height, width), got {image_size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"image_size: expected positive values, got {image_size!r}")
    return h, w


def check_normalize(normalize):
    """``None`` (also for ``"none"``) or ``"imagenet"``; anything else is a ValueError."""
    if normalize == "none":
        normalize = None
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize: expected None or 'imagenet', got {normalize!r}")
    return normalize


def check_labels(labels, n):
    """[n] integer labels as int64, or a ValueError naming ``labels``."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(f"labels: expected {n} labels (one per path), got shape {labels.shape}")
    if len(labels) and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels: expected integers, got dtype {labels.dtype}")
    return labels.astype(np.int64)


def check_eval_args(paths, image_size, batch_size, normalize):
    """Validates the arguments of both test-image loaders.

    Returns:
        ``(paths, (height, width), batch_size, normalize)``.

    Raises:
        ValueError: the message names the argument.
    """
    paths = check_paths(paths)
    normalize = check_normalize(normalize)
    size = check_size(image_size)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    return paths, size, int(batch_size), normalize


def _batches_per_pass(num_ids, P, remainder):
    """Batches that show every one of ``num_ids`` identities once (``"pad"``)
    or as many full groups of ``P`` as there are (``"drop"``)."""
    return math.ceil(num_ids / P) if remainder == "pad" else num_ids // P


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
    return _batches_per_pass(num, P, remainder)


# ----------------------------------------------------------------- skips
class _Count:
    """A count that worker processes of a ``PyDataset`` add to (shared memory
    when the platform allows it, else a locked int of this process)."""

    def __init__(self):
        try:
            import multiprocessing

            self._value = multiprocessing.Value("q", 0)
        except (OSError, ImportError):  # pragma: no cover - no shared memory
            self._value = None
            self._int, self._lock = 0, threading.Lock()

    def add(self, n):
        if self._value is not None:
            with self._value.get_lock():
                self._value.value += int(n)
        else:  # pragma: no cover
            with self._lock:
                self._int += int(n)

    def __int__(self):
        return int(self._value.value) if self._value is not None else self._int


class SkipReport:
    """Training images skipped because they could not be read or decoded.

    ``scanned`` lists the files the pre-scan found unreadable (they are left
    out of sampling with their labels). ``runtime_skipped`` counts samples
    whose file failed later, while training (each dropped together with its
    label; that batch is short by one image). Each pipeline built with the
    report adds its own counter (:meth:`add_counter`).

    Example:
        >>> report = SkipReport()
        >>> report.scanned.append("broken.jpg")
        >>> count = report.add_counter()
        >>> count.add(2)
        >>> report.count, report.summary()
        (3, 'skipped 3 unreadable training image(s): 1 found by the pre-scan (first: broken.jpg); 2 while training')
    """

    def __init__(self):
        self.scanned = []
        self._counters = []

    def add_counter(self, counter=None):
        """Registers a runtime counter (anything ``int()`` reads) and returns it.

        Args:
            counter: the counter; None creates one with an ``add(n)`` method
                that worker processes can update.

        Returns:
            the counter.
        """
        counter = _Count() if counter is None else counter
        self._counters.append(counter)
        return counter

    @property
    def runtime_skipped(self):
        """Samples dropped while iterating (int)."""
        return sum(int(c) for c in self._counters)

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
        import sys

        import keras

        report = self

        class _SkipReportCallback(keras.callbacks.Callback):
            def on_train_end(self, logs=None):
                if report.count:
                    print(report.summary(), file=stream or sys.stderr)

        return _SkipReportCallback()


# ----------------------------------------------------------------- boxes
def augment_boxes(r, size, *, flip=True, crop="pad", pad=10, crop_fraction=0.8):
    """Resampling boxes of training samples from uniform draws.

    Args:
        r: [n, 4] float32 uniforms in [0, 1): vertical and horizontal offset,
            window size, flip.
        size: output ``(height, width)``.
        flip: flip where ``r[:, 3] < 0.5``.
        crop: ``"pad"`` (a shift by an integer number of output pixels in
            ``[-pad, pad]``: padding by ``pad`` pixels, then a crop),
            ``"resize"`` (a window of ``f`` times the height and width,
            ``f = crop_fraction + (1 - crop_fraction) * r[:, 2]``) or None.
        pad: padding in output pixels for ``crop="pad"``.
        crop_fraction: smallest window fraction for ``crop="resize"``.

    Returns:
        [n, 4] float32 boxes ``(y1, x1, y2, x2)``.

    Example:
        >>> r = np.array([[0.0, 0.99, 0.0, 0.2]], np.float32)
        >>> augment_boxes(r, (11, 5), crop="pad", pad=1).astype(float).round(3).tolist()  # flipped
        [[-0.1, 1.25, 0.9, 0.25]]
    """
    h, w = size
    r = np.asarray(r, np.float32)
    n = len(r)
    one = np.float32(1.0)
    y1 = np.zeros(n, np.float32)
    x1 = np.zeros(n, np.float32)
    y2 = np.ones(n, np.float32)
    x2 = np.ones(n, np.float32)
    if crop == "pad":
        dy = np.floor(r[:, 0] * np.float32(2 * pad + 1)) - np.float32(pad)
        dx = np.floor(r[:, 1] * np.float32(2 * pad + 1)) - np.float32(pad)
        y1 = dy / np.float32(max(h - 1, 1))
        x1 = dx / np.float32(max(w - 1, 1))
        y2, x2 = one + y1, one + x1
    elif crop == "resize":
        f = np.float32(crop_fraction) + (one - np.float32(crop_fraction)) * r[:, 2]
        y1 = r[:, 0] * (one - f)
        x1 = r[:, 1] * (one - f)
        y2, x2 = y1 + f, x1 + f
    if flip:
        do = r[:, 3] < 0.5
        x1, x2 = np.where(do, x2, x1), np.where(do, x1, x2)
    return np.stack([y1, x1, y2, x2], axis=1).astype(np.float32)


# ----------------------------------------------------------------- sampler
class PKSampler:
    """The batches of P identities x K images, as a function of the batch number.

    Sampling: the identities (distinct labels) are shuffled at the start of
    every pass and taken P at a time; each batch holds K images of each of its
    P identities, grouped identity by identity ([id0 x K, id1 x K, ...]). An
    identity with at least K images gives K distinct images; one with n < K
    images gives all n, and the other K - n are drawn from them with
    replacement. With ``remainder="pad"`` the last incomplete group of a pass
    is filled with identities from the start of the same pass's order (every
    identity appears in every pass; a few twice); with ``"drop"`` it is left
    out.

    Args:
        labels: [N] integer identity labels.
        P, K: identities per batch and images per identity.
        image_size: output ``(height, width)`` (for the boxes).
        flip, crop, pad, crop_fraction: augmentation (see :func:`augment_boxes`).
        seed: integer seed.
        remainder: ``"pad"`` or ``"drop"``.

    Raises:
        ValueError: fewer identities than P, or a bad argument.

    Example:
        >>> sampler = PKSampler([0, 0, 1, 1, 2, 2], P=2, K=2, image_size=(8, 4), seed=3)
        >>> plan = sampler.batch(0)
        >>> plan.rows.shape, plan.labels.shape, plan.boxes.shape
        ((4,), (4,), (4, 4))
        >>> bool((sampler.batch(0).rows == plan.rows).all())
        True
    """

    def __init__(self, labels, *, P, K, image_size, flip=True, crop="pad", pad=10,
                 crop_fraction=0.8, seed=0, remainder="pad"):
        labels = np.asarray(labels, np.int64)
        self.P, self.K, self.size = int(P), int(K), check_size(image_size)
        self.aug = {"flip": bool(flip), "crop": crop, "pad": int(pad),
                    "crop_fraction": float(crop_fraction)}
        self.seed = int(seed) % (2 ** 63)
        values, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        self.values = values.astype(np.int32)
        self.order = np.argsort(inverse, kind="stable").astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.counts = counts.astype(np.int64)
        self.num_ids = len(values)
        if self.num_ids < self.P:
            raise ValueError(f"P: a batch needs P={self.P} identities but the data has "
                             f"{self.num_ids}")
        self.groups = _batches_per_pass(self.num_ids, self.P, remainder)
        self.max_count = max(int(counts.max()), self.K)

    def _rng(self, salt, key):
        return np.random.default_rng([self.seed, salt, int(key)])

    def identities(self, b):
        """[P] indices (into the sorted distinct labels) of batch ``b``'s identities."""
        epoch, g = divmod(int(b), self.groups)
        perm = self._rng(_SALT_PERM, epoch).permutation(self.num_ids)
        perm = np.concatenate([perm, perm[:self.P]])
        return perm[g * self.P:g * self.P + self.P]

    def batch(self, b):
        """The rows, labels and boxes of batch ``b`` (a :class:`BatchPlan`)."""
        P, K = self.P, self.K
        ids = self.identities(b)
        n = self.counts[ids][:, None]                                     # [P, 1]
        rng = self._rng(_SALT_PICK, b)
        keys = rng.random((P, self.max_count), dtype=np.float32)
        keys[np.arange(self.max_count)[None, :] >= n] = 2.0
        distinct = np.argsort(keys, axis=1, kind="stable")[:, :K]        # a random order of the n
        u = rng.random((P, K), dtype=np.float32)
        extra = np.minimum(np.floor(u * n.astype(np.float32)).astype(np.int64), n - 1)
        pos = np.where(np.arange(K)[None, :] < n, distinct, extra)         # [P, K]
        rows = self.order[self.offsets[ids][:, None] + pos].reshape(-1)
        labels = np.repeat(self.values[ids], K)
        r = self._rng(_SALT_AUG, b).random((P * K, 4), dtype=np.float32)
        return BatchPlan(rows, labels, augment_boxes(r, self.size, **self.aug))


def check_train_args(paths, labels, *, P, K, image_size, crop, pad, crop_fraction, remainder,
                     first_batch, normalize):
    """Validates the arguments shared by both training pipelines.

    Returns:
        ``(paths, labels, size, crop, normalize)``: object array of str,
        int64 labels, the checked ``(height, width)``, the crop (None for
        ``"none"``), the normalisation.

    Raises:
        ValueError: the message names the argument.
    """
    paths = check_paths(paths)
    normalize = check_normalize(normalize)
    labels = check_labels(labels, len(paths))
    if crop == "none":
        crop = None
    if crop not in CROPS:
        raise ValueError(f"crop: expected 'pad', 'resize' or None, got {crop!r}")
    if remainder not in REMAINDERS:
        raise ValueError(f"remainder: expected one of {REMAINDERS}, got {remainder!r}")
    checks = (("K", int(K) >= 1, K, ">= 1"), ("P", int(P) >= 1, P, ">= 1"),
              ("crop_fraction", 0.0 < float(crop_fraction) <= 1.0, crop_fraction, "in (0, 1]"),
              ("pad", int(pad) >= 0, pad, ">= 0"),
              ("first_batch", int(first_batch) >= 0, first_batch, ">= 0"))
    for name, ok, value, rule in checks:
        if not ok:
            raise ValueError(f"{name}: must be {rule}, got {value}")
    return paths, labels, check_size(image_size), crop, normalize
