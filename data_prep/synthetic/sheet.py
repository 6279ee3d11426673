"""A PNG contact sheet of sample identities across the cameras."""

import io
from pathlib import Path

import numpy as np

from reid_common import atomic_write_bytes

from .config import SyntheticConfig
from .identities import make_identities
from .render import render_image, render_template
from .scene import make_cameras


def contact_sheet(dst_png, *, rows=6, columns=8, seed=0, scale=2, **knobs):
    """Write a PNG contact sheet of sample images.

    Rows are identities (the first two rows are a look-alike pair, labelled
    with the part they differ in), columns are images of that identity spread
    over the cameras, with the per-image nuisances of the given knobs.

    Args:
        dst_png: output PNG path (written atomically).
        rows: identities shown (>= 2).
        columns: images per identity.
        seed: random seed.
        scale: integer upscaling of each image for viewing.
        **knobs: :class:`SyntheticConfig` fields (height, width, vertical_shift, ...).

    Returns:
        the PNG path.

    Example:
        >>> import os, tempfile
        >>> png = contact_sheet(os.path.join(tempfile.mkdtemp(), "s.png"), rows=2,
        ...                     columns=2, height=32, width=16, scale=1)
        >>> png.endswith("s.png")
        True
    """
    from PIL import Image, ImageDraw

    cfg = SyntheticConfig(seed=seed, **knobs).validate()
    rows = max(2, int(rows))
    rng = np.random.default_rng((seed, 11))
    specs, pairs = make_identities(rows, 2.0 / rows, rng)
    cams = make_cameras(cfg.num_cameras, cfg.camera_strength, np.random.default_rng((seed, 3)))
    label_h = 14
    h, w = cfg.height * scale, cfg.width * scale
    sheet = Image.new("RGB", (columns * (w + 4) + 4, rows * (h + label_h + 4) + 4), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, spec in enumerate(specs):
        template = render_template(spec, 2 * cfg.height)
        y = 4 + i * (h + label_h + 4)
        text = f"identity {i + 1}"
        for a, b, part in pairs:
            if i in (a, b):
                text += f"  (look-alike pair {a + 1}/{b + 1}: differs in {part})"
        draw.text((4, y), text, fill=(0, 0, 0))
        for j in range(columns):
            img, info = render_image(template, cams[j % cfg.num_cameras], cfg,
                                     np.random.default_rng((seed, 12, i, j)))
            tile = Image.fromarray(img).resize((w, h), Image.NEAREST)
            sheet.paste(tile, (4 + j * (w + 4), y + label_h))
            draw.text((6 + j * (w + 4), y + label_h + 1), f"c{j % cfg.num_cameras + 1}",
                      fill=(255, 255, 0))
    dst_png = Path(dst_png)
    buf = io.BytesIO()
    sheet.quantize(colors=256).save(buf, format="PNG", optimize=True)
    atomic_write_bytes(dst_png, buf.getvalue())
    return str(dst_png)
