"""The training input pipeline without TensorFlow: a ``keras.utils.PyDataset``
of P x K batches, for the JAX and PyTorch backends (any backend takes it).

:func:`make_train_pydataset` takes the arguments of
:func:`reid_tf.data.make_train_dataset` and gives the same batches: what
batch ``b`` holds comes from the same :class:`reid_tf.pk_sampler.PKSampler`,
and the images are decoded and resampled by :mod:`reid_tf.image_io` to the
pixels the tf.data pipeline gives (same JPEG decoder settings, the same
bilinear resampling written out in NumPy). Keras loads batches ahead in
``workers`` threads (or processes with ``use_multiprocessing=True``) and
hands them to ``fit()`` in order.
"""

import sys

import keras
import numpy as np

from reid_tf.image_io import DEFAULT_WORKERS, UnreadableImage, load_image, scan_images
from reid_tf.pk_sampler import PKSampler, SkipReport, check_train_args


class PKBatches(keras.utils.PyDataset):
    """Batch ``i`` is training batch ``first_batch + i`` of the sampler.

    Args:
        paths: [N] image paths (object array of str).
        sampler: :class:`reid_tf.pk_sampler.PKSampler` over their labels.
        normalize: None or ``"imagenet"``.
        first_batch: the sampler's batch number of item 0.
        num_batches: items (None: infinite).
        counter: runtime-skip counter with ``add(n)`` (from
            :meth:`reid_tf.pk_sampler.SkipReport.add_counter`), or None.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``
            of ``keras.utils.PyDataset``.
    """

    def __init__(self, paths, sampler, *, normalize=None, first_batch=0, num_batches=None,
                 counter=None, **kwargs):
        super().__init__(**kwargs)
        self.paths = paths
        self.sampler = sampler
        self.normalize = normalize
        self.first_batch = int(first_batch)
        self._num_batches = None if num_batches is None else int(num_batches)
        self.counter = counter

    @property
    def num_batches(self):
        """Items in the dataset (None: infinite)."""
        return self._num_batches

    def __getitem__(self, index):
        """``(images [P*K, H, W, 3] float32, labels [P*K] int32)`` of item ``index``;
        an image that cannot be read is left out with its label."""
        if self._num_batches is not None and not 0 <= index < self._num_batches:
            raise IndexError(f"batch {index} of {self._num_batches}")
        rows, labels, boxes = self.sampler.batch(self.first_batch + int(index))
        images = np.empty((len(rows),) + self.sampler.size + (3,), np.float32)
        kept = []
        for j, (row, box) in enumerate(zip(rows, boxes)):
            try:
                load_image(self.paths[row], self.sampler.size, box, self.normalize, images[j])
            except UnreadableImage:
                continue
            kept.append(j)
        if len(kept) < len(rows):
            if self.counter is not None:
                self.counter.add(len(rows) - len(kept))
            return images[kept], labels[kept]
        return images, labels


def make_train_pydataset(paths, labels, *, P=40, K=4, image_size=(256, 128), flip=True,
                         crop="pad", pad=10, crop_fraction=0.8, seed=0, remainder="pad",
                         scan=True, report=None, first_batch=0, num_batches=None,
                         normalize=None, workers=DEFAULT_WORKERS, use_multiprocessing=False,
                         max_queue_size=10):
    """P x K batches for metric learning as a ``keras.utils.PyDataset``.

    The sampling, augmentation, unreadable-file handling and the meaning of
    ``seed``, ``first_batch`` and the other shared arguments are those of
    :func:`reid_tf.data.make_train_dataset`, and so are the batches: item
    ``i`` equals batch ``first_batch + i`` there (same rows, labels and
    order; pixels equal to float rounding). The batches always come in order.

    Args:
        paths, labels, P, K, image_size, flip, crop, pad, crop_fraction, seed,
            remainder, scan, report, first_batch, normalize: as in
            :func:`reid_tf.data.make_train_dataset` (the pre-scan decodes
            with Pillow).
        num_batches: batches in the dataset; None: infinite (``fit()`` then
            needs ``steps_per_epoch``).
        workers: threads (or processes) loading batches ahead for ``fit()``;
            0 or 1 loads each batch when it is asked for.
        use_multiprocessing: load in processes instead of threads.
        max_queue_size: batches loaded ahead.

    Returns:
        :class:`PKBatches`; ``dataset.skip_report`` is the :class:`SkipReport`.

    Raises:
        ValueError: bad argument (the message names it).

    Example:
        >>> from PIL import Image
        >>> for i in range(8):
        ...     Image.new("RGB", (32, 64), (30 * i, 0, 0)).save(f"{i}.jpg")
        >>> paths, labels = [f"{i}.jpg" for i in range(8)], [i // 2 for i in range(8)]
        >>> ds = make_train_pydataset(paths, labels, P=4, K=2, image_size=(64, 32),
        ...                           num_batches=3)
        >>> images, batch_labels = ds[0]
        >>> images.shape, batch_labels.shape, ds.num_batches
        ((8, 64, 32, 3), (8,), 3)
    """
    paths, labels, size, crop, normalize = check_train_args(
        paths, labels, P=P, K=K, image_size=image_size, crop=crop, pad=pad,
        crop_fraction=crop_fraction, remainder=remainder, first_batch=first_batch,
        normalize=normalize)
    if num_batches is not None and int(num_batches) < 0:
        raise ValueError(f"num_batches: must be >= 0 or None, got {num_batches}")
    if int(workers) < 0:
        raise ValueError(f"workers: must be >= 0, got {workers}")
    report = SkipReport() if report is None else report
    if scan and len(paths):
        ok = scan_images(paths, max(int(workers), 1))
        if not ok.all():
            report.scanned.extend(str(p) for p in paths[~ok])
            print(f"make_train_pydataset: {report.summary()}", file=sys.stderr)
            paths, labels = paths[ok], labels[ok]
    sampler = PKSampler(labels, P=P, K=K, image_size=size, flip=flip,
                        crop=crop, pad=pad, crop_fraction=crop_fraction, seed=seed,
                        remainder=remainder)
    dataset = PKBatches(paths, sampler, normalize=normalize, first_batch=first_batch,
                        num_batches=num_batches, counter=report.add_counter(),
                        workers=int(workers), use_multiprocessing=bool(use_multiprocessing),
                        max_queue_size=int(max_queue_size))
    dataset.skip_report = report
    return dataset
