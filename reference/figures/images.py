"""Images of a report: errors, colours, loading image files, fitting them into tiles.

Pillow is imported on first use, so importing this module stays fast.
"""

import os

import numpy as np

from reid_common import is_inside

PLACEHOLDER_COLOUR = (150, 150, 150)
EMPTY_TILE = (235, 235, 235)


class ReportError(ValueError):
    """A report that cannot be made; the message is one line naming the argument."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


class ReportWarning(UserWarning):
    """Something a report could only draw approximately (a missing image file)."""


def image_roots(image_root=None, dump=None):
    """The directories a dump's image paths may resolve in, in the order tried.

    ``image_root`` (``--image-root``) when given; else the dump's recorded
    ``image_root`` attribute when that directory exists; else the current
    directory and the dump's directory.

    Args:
        image_root: a directory chosen by the user, or None.
        dump: the :class:`reference.FeatureDump` (or None).

    Example:
        >>> image_roots("/data/market")
        ['/data/market']
    """
    if image_root is not None:
        return [os.fspath(image_root)]
    attrs = getattr(dump, "attrs", None) or {}
    recorded = attrs.get("image_root") or ""
    if recorded and os.path.isdir(recorded):
        return [recorded]
    roots = [os.getcwd()]
    path = getattr(dump, "path", None)
    if path:
        roots.append(os.path.dirname(os.path.abspath(path)))
    return roots


def locate_image(path, roots):
    """Where an image named in a dump lies: ``(file, None)`` or ``(None, why)``.

    A relative path is joined to each root in turn, an absolute one is taken
    as it is; either way the file must lie inside that root after resolving
    ``..`` and symbolic links. ``why`` is ``"outside"`` when every candidate
    lies outside its root and ``"missing"`` otherwise.

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> locate_image("/etc/passwd", [root]), locate_image("a.jpg", [root])
        ((None, 'outside'), (None, 'missing'))
    """
    outside = bool(roots)
    for root in roots:
        candidate = path if os.path.isabs(path) else os.path.join(root, path)
        if not is_inside(candidate, root):
            continue
        outside = False
        if os.path.isfile(candidate):
            return candidate, None
    return None, "outside" if outside else "missing"


def resolve_image(path, image_root=None, dump=None):
    """The file of an image named in a dump, or None when it is missing or outside its root.

    The roots are :func:`image_roots` of ``image_root`` and ``dump``, the rules
    those of :func:`locate_image`.

    Args:
        path: the image path as the dump stores it.
        image_root: a directory chosen by the user, or None.
        dump: the :class:`reference.FeatureDump`, or None.

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> _ = open(os.path.join(root, "a.jpg"), "wb").write(b"x")
        >>> resolve_image("a.jpg", root) == os.path.join(root, "a.jpg")
        True
        >>> resolve_image("../a.jpg", root) is None
        True
    """
    found, _ = locate_image(path, image_roots(image_root, dump))
    return found


def load_image(source):
    """An RGB PIL image from a path, a PIL image or an array [H, W] / [H, W, 3].

    Returns None when the file cannot be read.
    """
    from PIL import Image

    if source is None:
        return None
    if isinstance(source, Image.Image):
        return source.convert("RGB")
    if isinstance(source, np.ndarray):
        arr = source
        if arr.dtype != np.uint8:
            arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr).convert("RGB")
    try:
        with Image.open(os.fspath(source)) as img:
            return img.convert("RGB")
    except (OSError, ValueError):
        return None


def placeholder_image(size):
    """A grey RGB image of ``size`` (width, height), drawn for a missing image."""
    from PIL import Image

    width, height = size
    return Image.new("RGB", (width, height), PLACEHOLDER_COLOUR)


def fit_image(img, width, height):
    """``img`` scaled to fit ``width x height`` (aspect kept), centred on the tile colour."""
    from PIL import Image, ImageOps

    tile = Image.new("RGB", (width, height), EMPTY_TILE)
    fitted = ImageOps.contain(img, (width, height))
    tile.paste(fitted, ((width - fitted.width) // 2, (height - fitted.height) // 2))
    return tile


def label_font(size=11):
    """Pillow's default font at ``size`` points (the bitmap font on old Pillow)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()

