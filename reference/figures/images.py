"""Images of a report: errors, colours, loading image files, fitting them into tiles.

Pillow is imported on first use, so importing this module stays fast.
"""

import os

import numpy as np

PLACEHOLDER_COLOUR = (150, 150, 150)
EMPTY_TILE = (235, 235, 235)


class ReportError(ValueError):
    """A report that cannot be made; the message is one line naming the argument."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


class ReportWarning(UserWarning):
    """Something a report could only draw approximately (a missing image file)."""


def resolve_image(path, image_root=None, dump_path=None):
    """Absolute path of an image named in a dump, or None when no file exists.

    Relative paths are tried against ``image_root`` when given, otherwise
    against the current directory and then the dump's directory.
    """
    if os.path.isabs(path):
        return path if os.path.isfile(path) else None
    if image_root is not None:
        candidates = [os.path.join(image_root, path)]
    else:
        candidates = [path]
        if dump_path is not None:
            candidates.append(os.path.join(os.path.dirname(os.path.abspath(dump_path)), path))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    return None


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

