"""Images in NumPy and Pillow (no TensorFlow): decoding, the resampling of
the pipelines, the pre-scan, and the test images in order.

The functions here give the same pixels as the tf.data pipeline of
:mod:`reid_tf.data`:

- decoding: Pillow, converted to RGB (``Image.convert("RGB")``: alpha
  dropped, grey and palette expanded, the first frame of an animation);
  JPEG with libjpeg's accurate integer DCT, which the tf.data pipeline asks
  for too (``dct_method="INTEGER_ACCURATE"``), so both decode a JPEG to the
  same bytes;
- scaling to [0, 1] (and the optional ImageNet standardisation) before
  resampling, as there;
- resampling: :func:`crop_and_resize` is ``tf.image.crop_and_resize``
  (bilinear, corners aligned, zeros outside the image) written out in
  float32 (a Numba kernel, :mod:`reid_tf._resample_kernel`), operation for
  operation.
"""

import collections
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from reid_tf.pk_sampler import IMAGENET_MEAN, IMAGENET_STD, check_eval_args, check_paths

#: decoding and resampling threads when none are given (Pillow and NumPy
#: release the GIL while they work)
DEFAULT_WORKERS = min(8, os.cpu_count() or 1)


class UnreadableImage(ValueError):
    """An image file that cannot be read or decoded.

    Args:
        path: the file.

    Example:
        >>> str(UnreadableImage("q/0001_c1_000.jpg"))
        'unreadable or corrupt image: q/0001_c1_000.jpg'
    """

    def __init__(self, path):
        super().__init__(f"unreadable or corrupt image: {path}")
        self.path = str(path)


def decode_image(path):
    """An image file as RGB bytes.

    Args:
        path: image file (JPEG, PNG, BMP, GIF or any other format Pillow reads).

    Returns:
        [H, W, 3] uint8.

    Raises:
        UnreadableImage: missing, truncated or corrupt file.

    Example:
        >>> from PIL import Image
        >>> Image.new("L", (4, 6), 200).save("grey.png")
        >>> image = decode_image("grey.png")
        >>> image.shape, image.dtype, int(image[0, 0, 2])
        ((6, 4, 3), dtype('uint8'), 200)
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            rgb = image.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise UnreadableImage(path) from None
    return np.asarray(rgb, np.uint8)


def to_float(image_uint8, normalize=None):
    """Bytes to float32 in [0, 1], or ImageNet-standardised.

    Args:
        image_uint8: [..., 3] uint8.
        normalize: None or ``"imagenet"``.

    Returns:
        [..., 3] float32.

    Example:
        >>> to_float(np.array([[255, 0, 51]], np.uint8)).tolist()
        [[1.0, 0.0, 0.20000000298023224]]
    """
    image = image_uint8.astype(np.float32) / np.float32(255.0)
    if normalize is None:
        return image
    return (image - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)


def _coords(a, b, n_in, n_out):
    """Sample positions of ``tf.image.crop_and_resize`` along one axis (float32)."""
    a, b = np.float32(a), np.float32(b)
    if n_out > 1:
        scale = (b - a) * np.float32(n_in - 1) / np.float32(n_out - 1)
        return a * np.float32(n_in - 1) + np.arange(n_out, dtype=np.float32) * scale
    return np.full(1, np.float32(0.5 * (float(a) + float(b)) * (n_in - 1)), np.float32)


def crop_and_resize(image, box, size, out=None):
    """Bilinear resampling of ``image`` inside ``box``, as ``tf.image.crop_and_resize``.

    Args:
        image: [H, W, C] float32.
        box: ``(y1, x1, y2, x2)`` in normalised coordinates (0 and 1 are the
            centres of the first and last pixel); ``x1 > x2`` flips.
        size: output ``(height, width)``.
        out: a C-contiguous [height, width, C] float32 array to fill, or None.

    Returns:
        [height, width, C] float32 (``out`` when given); samples outside the
        image are 0.

    Example:
        >>> image = np.arange(6, dtype=np.float32).reshape(2, 3, 1)
        >>> crop_and_resize(image, (0, 1, 1, 0), (2, 3))[..., 0].tolist()   # flipped
        [[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]
        >>> crop_and_resize(image, (0, 0, 1, 1), (3, 3))[1, :, 0].tolist()  # between the rows
        [1.5, 2.5, 3.5]
    """
    from reid_tf._resample_kernel import resample_bilinear

    image = np.ascontiguousarray(image, np.float32)
    H, W, C = image.shape
    h, w = size
    out = np.empty((h, w, C), np.float32) if out is None else out
    resample_bilinear(image, _coords(box[0], box[2], H, h), _coords(box[1], box[3], W, w), out)
    return out


def load_image(path, size, box=(0.0, 0.0, 1.0, 1.0), normalize=None, out=None):
    """One file decoded, scaled and resampled inside ``box`` to ``size``.

    Args:
        path: image file.
        size: ``(height, width)``.
        box: resampling box (the whole image by default).
        normalize: None or ``"imagenet"``.
        out: a C-contiguous [height, width, 3] float32 array to fill, or None.

    Returns:
        [height, width, 3] float32 (``out`` when given).

    Raises:
        UnreadableImage: the file cannot be read or decoded.
    """
    return crop_and_resize(to_float(decode_image(path), normalize), box, size, out)


def _readable(path):
    try:
        decode_image(path)
    except UnreadableImage:
        return False
    return True


def scan_images(paths, workers=None):
    """Decode every image once (Pillow, in threads) and report which ones fail.

    Args:
        paths: N file paths.
        workers: decoding threads (default :data:`DEFAULT_WORKERS`).

    Returns:
        [N] bool numpy array, True where the file was read and decoded.

    Example:
        >>> from PIL import Image
        >>> Image.new("RGB", (4, 6)).save("ok.png")
        >>> _ = open("broken.jpg", "wb").write(b"not a jpeg")
        >>> scan_images(["ok.png", "broken.jpg", "missing.png"])
        array([ True, False, False])
    """
    paths = check_paths(paths)
    if not len(paths):
        return np.zeros(0, bool)
    with ThreadPoolExecutor(workers or DEFAULT_WORKERS) as pool:
        return np.fromiter(pool.map(_readable, paths, chunksize=64), bool, count=len(paths))


def eval_batches(paths, *, image_size=(256, 128), batch_size=128, normalize=None,
                 workers=None):
    """Images in the given order, resized like training images, no augmentation:
    the TF-free twin of :func:`reid_tf.data.make_eval_dataset`.

    Files are decoded in ``workers`` threads, at most two batches ahead of
    the one being consumed.

    Args:
        paths: [N] image file paths.
        image_size: (height, width).
        batch_size: images per batch (the last batch may be smaller).
        normalize: None (images in [0, 1]) or "imagenet".
        workers: decoding threads (default :data:`DEFAULT_WORKERS`).

    Yields:
        ``(images [B, H, W, 3] float32, indices [B] int64)``, indices being the
        positions in ``paths``.

    Raises:
        ValueError: bad argument.
        UnreadableImage (while iterating): a file could not be read or decoded.

    Example:
        >>> from PIL import Image
        >>> for name in ("a.jpg", "b.jpg", "c.jpg"):
        ...     Image.new("RGB", (32, 64)).save(name)
        >>> [(x.shape, i.tolist()) for x, i in eval_batches(["a.jpg", "b.jpg", "c.jpg"],
        ...                                                 image_size=(128, 64), batch_size=2)]
        [((2, 128, 64, 3), [0, 1]), ((1, 128, 64, 3), [2])]
    """
    paths, size, batch_size, normalize = check_eval_args(paths, image_size, batch_size,
                                                         normalize)
    starts = list(range(0, len(paths), batch_size))

    def submit(k):
        idx = np.arange(starts[k], min(starts[k] + batch_size, len(paths)), dtype=np.int64)
        pending.append((idx, [pool.submit(load_image, paths[i], size, normalize=normalize)
                              for i in idx]))

    pending = collections.deque()
    with ThreadPoolExecutor(workers or DEFAULT_WORKERS) as pool:
        try:
            ahead = min(2, len(starts))
            for k in range(ahead):
                submit(k)
            while pending:
                idx, futures = pending.popleft()
                images = np.stack([f.result() for f in futures])
                if ahead < len(starts):
                    submit(ahead)
                    ahead += 1
                yield images, idx
        finally:
            for _, futures in pending:
                for f in futures:
                    f.cancel()
