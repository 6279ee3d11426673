"""Visual reports on a feature dump: ranked lists and part alignments.

Two figures help to see what a model does beyond its mAP:

* :func:`ranked_list_figure` writes one PNG per query: the query image and its
  top-N gallery images by a given distance matrix, after the protocol's
  removals, each with a green (same identity) or red (different identity)
  border and its rank and distance underneath.
* :func:`alignment_figure` writes the AlignedReID view of one image pair:
  both images side by side cut into horizontal stripes, lines joining the
  stripes matched by the shortest path (thicker for a larger part distance
  d_ij, i.e. a larger share of the total), and the ``Hf x Hg`` matrix of part
  distances with the path drawn over it.

:func:`add_report_arguments` and :func:`run_reports` expose both (and the
TensorFlow cross-check of :mod:`reid_tf.check`) as ``reid-evaluate`` flags.
Pillow composes the ranked lists (exact pixel layout); matplotlib (Agg
canvas, no pyplot state) draws the alignment figure. Both are imported on
first use, so importing this module stays fast; TensorFlow is imported only
by ``--check-tf``. ``docs/evaluate_reports.md`` shows examples.
"""

import math
import os
import warnings

import numpy as np

from reid_common import atomic_write

__all__ = [
    "ReportError",
    "ReportWarning",
    "ranked_list_figure",
    "ranked_list_layout",
    "ranked_gallery",
    "sample_queries",
    "alignment_figure",
    "part_distance_matrix",
    "add_report_arguments",
    "check_report_arguments",
    "reports_requested",
    "run_reports",
]

# ----------------------------------------------------------------------------
# ranked-list layout (pixels); documented in ranked_list_layout

TILE_HEIGHT = 128
TILE_WIDTH = 64
BORDER = 4
GAP = 6
SEPARATOR = 18
MARGIN = 8
HEADER = 32
LABEL = 30
PER_ROW = 10
MAX_TOP_N = 100

MATCH_COLOUR = (0, 170, 0)
NON_MATCH_COLOUR = (220, 0, 0)
QUERY_COLOUR = (40, 90, 220)
PLACEHOLDER_COLOUR = (150, 150, 150)
BACKGROUND = (255, 255, 255)
EMPTY_TILE = (235, 235, 235)
TEXT_COLOUR = (0, 0, 0)

_MARKET_LIKE = ("market1501", "cuhk03", "duke", "dukemtmc", "msmt17")
_PROTOCOLS = _MARKET_LIKE + ("cuhk-sysu",)


class ReportError(ValueError):
    """A report that cannot be made; the message is one line naming the argument."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


class ReportWarning(UserWarning):
    """Something a report could only draw approximately (a missing image file)."""


# ----------------------------------------------------------------------------
# small helpers


def _protocol_name(protocol):
    name = str(protocol).lower()
    if name not in _PROTOCOLS:
        raise ReportError(
            f"protocol: unknown protocol {protocol!r} (choose from {', '.join(_PROTOCOLS)})"
        )
    return "cuhk-sysu" if name == "cuhk-sysu" else "market1501"


def _resolve_image(path, image_root=None, dump_path=None):
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


def _load_image(source):
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


def _placeholder(size):
    from PIL import Image

    width, height = size
    return Image.new("RGB", (width, height), PLACEHOLDER_COLOUR)


def _fit(img, width, height):
    """``img`` scaled to fit ``width x height`` (aspect kept), centred on the tile colour."""
    from PIL import Image, ImageOps

    tile = Image.new("RGB", (width, height), EMPTY_TILE)
    fitted = ImageOps.contain(img, (width, height))
    tile.paste(fitted, ((width - fitted.width) // 2, (height - fitted.height) // 2))
    return tile


def _font(size=11):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


# ----------------------------------------------------------------------------
# ranked lists


def sample_queries(num_query, num_queries, seed=0):
    """A reproducible sample of query indices, in ascending order.

    Args:
        num_query: Q, the number of queries in the dump.
        num_queries: how many to draw (all Q when it is >= Q).
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        int64 array of distinct indices in [0, Q), sorted.

    Example:
        >>> sample_queries(5, 10).tolist()
        [0, 1, 2, 3, 4]
        >>> len(sample_queries(100, 8, seed=1))
        8
    """
    num_query = int(num_query)
    if num_queries >= num_query:
        return np.arange(num_query, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_query, size=int(num_queries), replace=False)).astype(np.int64)


def ranked_gallery(dump, distmat, query_index, protocol=None):
    """The gallery of one query after the protocol's removals, best first.

    Market-1501 protocol (also duke/msmt17, and cuhk03 for display): gallery
    items with the query's pid and camera, and items with pid -1, are
    removed. CUHK-SYSU: only the query's own gallery list is ranked. Ties in
    distance are ordered by gallery index (as in :func:`reference.evaluate`).

    Args:
        dump: a :class:`reference.dump.FeatureDump`.
        distmat: [Q, G] distances.
        query_index: the query's row.
        protocol: protocol name (default: the dump's ``protocol`` attribute).

    Returns:
        int64 array of gallery indices sorted by ascending distance.

    Example:
        >>> order = ranked_gallery(dump, distmat, 0)  # doctest: +SKIP
        >>> distmat[0, order[:3]]  # doctest: +SKIP
        array([0.41, 0.52, 0.77], dtype=float32)
    """
    protocol = _protocol_name(protocol or dump.attrs.get("protocol", "market1501"))
    q = int(query_index)
    if protocol == "cuhk-sysu":
        if dump.gallery_lists is None:
            raise ReportError(
                f"{dump.path}: protocol/gallery_offsets: missing; protocol cuhk-sysu needs "
                "the per-query gallery lists"
            )
        candidates = np.unique(np.asarray(dump.gallery_lists[q], np.int64))
    else:
        g_pid = dump.gallery["pid"]
        g_cam = dump.gallery["camid"]
        q_pid = dump.query["pid"][q]
        q_cam = dump.query["camid"][q]
        junk = ((g_pid == q_pid) & (g_cam == q_cam)) | (g_pid == -1)
        candidates = np.flatnonzero(~junk).astype(np.int64)
    row = np.asarray(distmat[q], np.float64)[candidates]
    return candidates[np.argsort(row, kind="stable")]


def ranked_list_layout(top_n, tile_size=(TILE_HEIGHT, TILE_WIDTH)):
    """Pixel geometry of a ranked-list PNG.

    The query tile sits at the left of the first row, followed by a
    ``SEPARATOR`` gap and the gallery tiles, ``PER_ROW`` (10) per row, ``GAP``
    pixels apart. Every tile is the image fitted into ``tile_size`` inside a
    ``BORDER``-pixel frame, with ``LABEL`` pixels of text below; a ``HEADER``
    (two lines of text) and a ``MARGIN`` surround everything. With ``cols =
    min(top_n, PER_ROW)`` and ``rows = ceil(top_n / PER_ROW)``:

        width  = 2 MARGIN + (cols + 1) (w + 2 BORDER) + (cols - 1) GAP + SEPARATOR
        height = 2 MARGIN + HEADER + rows (h + 2 BORDER + LABEL) + (rows - 1) GAP

    Args:
        top_n: number of gallery tiles.
        tile_size: (h, w) of the image area of a tile.

    Returns:
        dict with ``size`` (width, height), ``query_box`` and ``gallery_boxes``
        (top_n boxes), each box (x0, y0, x1, y1) of a framed tile, x1/y1
        exclusive.

    Example:
        >>> ranked_list_layout(3)["size"]
        (334, 214)
    """
    h, w = (int(v) for v in tile_size)
    cols = min(int(top_n), PER_ROW)
    rows = -(-int(top_n) // PER_ROW)
    tw, th = w + 2 * BORDER, h + 2 * BORDER
    width = 2 * MARGIN + (cols + 1) * tw + (cols - 1) * GAP + SEPARATOR
    height = 2 * MARGIN + HEADER + rows * (th + LABEL) + (rows - 1) * GAP
    top = MARGIN + HEADER
    query_box = (MARGIN, top, MARGIN + tw, top + th)
    boxes = []
    left = MARGIN + tw + SEPARATOR
    for k in range(int(top_n)):
        r, c = divmod(k, PER_ROW)
        x0 = left + c * (tw + GAP)
        y0 = top + r * (th + LABEL + GAP)
        boxes.append((x0, y0, x0 + tw, y0 + th))
    return {"size": (width, height), "query_box": query_box, "gallery_boxes": boxes}


def _paste_tile(canvas, draw, box, img, colour, lines, font):
    x0, y0, x1, y1 = box
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=colour)
    canvas.paste(img, (x0 + BORDER, y0 + BORDER))
    for k, text in enumerate(lines):
        draw.text((x0, y1 + 2 + 13 * k), text, fill=TEXT_COLOUR, font=font)


def ranked_list_figure(
    dump,
    distmat,
    query_indices,
    top_n,
    out_dir,
    *,
    protocol=None,
    distance_name="",
    image_root=None,
    prefix="",
    tile_size=(TILE_HEIGHT, TILE_WIDTH),
    warn=None,
):
    """Write one ranked-list PNG per query.

    Each PNG shows the query (blue frame) and its ``top_n`` nearest gallery
    images after the protocol's removals (see :func:`ranked_gallery`), in
    rows of 10, framed green where the gallery item has the query's identity
    and red where it does not, with the rank, distance, pid and camera under
    each tile. The layout is :func:`ranked_list_layout`; a query with fewer
    than ``top_n`` valid gallery items leaves the remaining slots empty.
    Images that cannot be found or read are drawn as grey placeholders and
    reported once through ``warn``. Each file is written atomically.

    Args:
        dump: a :class:`reference.dump.FeatureDump` with image paths.
        distmat: [Q, G] distances used for the ranking.
        query_indices: query rows to draw (see :func:`sample_queries`).
        top_n: gallery tiles per query (1 to 100).
        out_dir: existing directory for the PNGs; file names are
            ``{prefix}q{index:05d}.png``.
        protocol: protocol name (default: the dump's attribute).
        distance_name: shown in the header (for example ``global+local``).
        image_root: directory that relative image paths are relative to
            (default: the current directory, then the dump's directory).
        prefix: file-name prefix.
        tile_size: (h, w) of a tile's image area in pixels.
        warn: callable taking one message (default ``warnings.warn`` with
            :class:`ReportWarning`).

    Returns:
        list with one dict per query: ``file`` (PNG path), ``query`` (index),
        ``gallery`` (the gallery indices shown, best first), ``distances``,
        ``matches`` (bool per tile), ``boxes`` (framed tile boxes, query
        first) and ``missing_images`` (count).

    Raises:
        ReportError: the dump has no image paths, or an argument is invalid.

    Example:
        >>> pages = ranked_list_figure(dump, distmat, [0, 5], 10, "reports")  # doctest: +SKIP
        >>> pages[0]["file"]  # doctest: +SKIP
        'reports/q00000.png'
    """
    from PIL import Image, ImageDraw

    if "path" not in dump.query or "path" not in dump.gallery:
        raise ReportError(
            f"--ranked-list: {dump.path}: the dump has no image paths (query/path, "
            "gallery/path); write it with paths to draw ranked lists"
        )
    top_n = int(top_n)
    if not 1 <= top_n <= MAX_TOP_N:
        raise ReportError(f"--ranked-list: N must be in [1, {MAX_TOP_N}], got {top_n}")
    distmat = np.asarray(distmat)
    if distmat.shape != (dump.num_query, dump.num_gallery):
        raise ReportError(
            f"distmat: expected shape {(dump.num_query, dump.num_gallery)} (Q, G), "
            f"got {distmat.shape}"
        )
    if not os.path.isdir(out_dir):
        raise ReportError(f"--out: directory {out_dir} does not exist")
    if warn is None:
        warn = lambda message: warnings.warn(message, ReportWarning, stacklevel=3)  # noqa: E731
    protocol = protocol or dump.attrs.get("protocol", "market1501")
    layout = ranked_list_layout(top_n, tile_size)
    h, w = (int(v) for v in tile_size)
    font = _font()
    missing_paths = []

    def tile(split, index):
        name = getattr(dump, split)["path"][index]
        resolved = _resolve_image(name, image_root, dump.path)
        img = _load_image(resolved) if resolved is not None else None
        if img is None:
            missing_paths.append(name)
            return _placeholder((w, h))
        return _fit(img, w, h)

    pages = []
    for q in query_indices:
        q = int(q)
        if not 0 <= q < dump.num_query:
            raise ReportError(f"query index {q} is out of range [0, {dump.num_query})")
        before = len(missing_paths)
        ranked = ranked_gallery(dump, distmat, q, protocol)
        order = ranked[:top_n]
        q_pid = int(dump.query["pid"][q])
        matches = [bool(dump.gallery["pid"][g] == q_pid and q_pid != -1) for g in order]
        canvas = Image.new("RGB", layout["size"], BACKGROUND)
        draw = ImageDraw.Draw(canvas)
        valid = len(ranked)
        header = [
            f"query {q}  pid {q_pid}  cam {int(dump.query['camid'][q])}",
            (f"{distance_name}, " if distance_name else "")
            + f"{protocol}, top {top_n} of {valid}",
        ]
        for k, text in enumerate(header):
            draw.text((MARGIN, MARGIN + 13 * k), text, fill=TEXT_COLOUR, font=font)
        _paste_tile(
            canvas, draw, layout["query_box"], tile("query", q), QUERY_COLOUR,
            ["query", f"pid {q_pid} c{int(dump.query['camid'][q])}"], font,
        )
        for k, box in enumerate(layout["gallery_boxes"]):
            if k >= len(order):
                draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=EMPTY_TILE)
                continue
            g = int(order[k])
            colour = MATCH_COLOUR if matches[k] else NON_MATCH_COLOUR
            lines = [
                f"#{k + 1}  {float(distmat[q, g]):.3f}",
                f"pid {int(dump.gallery['pid'][g])} c{int(dump.gallery['camid'][g])}",
            ]
            _paste_tile(canvas, draw, box, tile("gallery", g), colour, lines, font)
        target = os.path.join(out_dir, f"{prefix}q{q:05d}.png")
        atomic_write(target, lambda tmp: canvas.save(tmp, format="PNG"))
        pages.append(
            {
                "file": target,
                "query": q,
                "gallery": [int(g) for g in order],
                "distances": [float(distmat[q, g]) for g in order],
                "matches": matches,
                "boxes": [layout["query_box"]] + layout["gallery_boxes"][: len(order)],
                "missing_images": len(missing_paths) - before,
            }
        )
    if missing_paths:
        warn(
            f"--ranked-list: {len(missing_paths)} image(s) not found or unreadable, drawn "
            f"as grey placeholders (first: {missing_paths[0]}; see --image-root)"
        )
    return pages


# ----------------------------------------------------------------------------
# alignment figure


def part_distance_matrix(local_q, local_g):
    """Part distances d_ij = tanh(||q_i - g_j|| / 2), computed in float64.

    Args:
        local_q: [Hf, c] local features.
        local_g: [Hg, c] local features.

    Returns:
        [Hf, Hg] float64 array.

    Example:
        >>> part_distance_matrix(np.zeros((2, 3)), np.ones((4, 3))).shape
        (2, 4)
    """
    q = np.asarray(local_q, np.float64)
    g = np.asarray(local_g, np.float64)
    return np.tanh(np.linalg.norm(q[:, None, :] - g[None, :, :], axis=-1) / 2.0)


def _line_width(d):
    """Line width (points) of a matched pair with part distance ``d`` in [0, 1)."""
    return 0.75 + 4.25 * float(d)


def alignment_figure(image_q, image_g, local_q, local_g, out_path, title=None, *,
                     labels=("query", "gallery")):
    """Draw the alignment of two images' stripes (the paper's Figures 3 and 5).

    Left panel: the two images side by side, each cut into its number of
    horizontal stripes (parts); a line joins stripe i of the first image to
    stripe j of the second for every cell (i, j) of the shortest path
    (:func:`reference.local_path`), its width growing with d_ij (0.75 pt at
    d = 0 to 5 pt at d = 1) so the pairs that add most to the distance stand
    out. Right panel: the ``Hf x Hg`` matrix of part distances with the path
    drawn over it; the title gives the total aligned distance
    (:func:`reference.local_distance`). Written atomically.

    Args:
        image_q: the first image: a file path, a PIL image, an array
            [H, W] / [H, W, 3], or None (a grey placeholder).
        image_g: the second image, the same.
        local_q: [Hf, c] local features of the first image.
        local_g: [Hg, c] local features of the second image.
        out_path: the PNG to write (its directory must exist).
        title: figure title (the distance is appended).
        labels: captions of the two images.

    Returns:
        dict with ``file``, ``distance`` (the aligned distance S), ``path``
        (list of (i, j) from :func:`reference.local_path`),
        ``part_distances`` [Hf, Hg], and what was actually drawn, read back
        from the figure: ``lines`` (list of (i, j, width) of the joining
        lines) and ``overlay`` (the (i, j) cells of the path over the matrix).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> info = alignment_figure(None, None, rng.normal(size=(8, 16)),
        ...                         rng.normal(size=(8, 16)), "align.png")  # doctest: +SKIP
        >>> info["path"][0], info["path"][-1]  # doctest: +SKIP
        ((0, 0), (7, 7))
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from reference.aligned import local_distance, local_path

    local_q = np.asarray(local_q)
    local_g = np.asarray(local_g)
    for name, arr in (("local_q", local_q), ("local_g", local_g)):
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ReportError(f"{name}: expected a non-empty [H, c] array, got shape {arr.shape}")
    if local_q.shape[1] != local_g.shape[1]:
        raise ReportError(
            f"local_g: expected {local_q.shape[1]} channels like local_q, got shape "
            f"{local_g.shape}"
        )
    directory = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(directory):
        raise ReportError(f"--out: directory {directory} does not exist")
    hf, hg = local_q.shape[0], local_g.shape[0]
    path = local_path(local_q, local_g)
    total = local_distance(local_q, local_g)
    dmat = part_distance_matrix(local_q, local_g)

    fig = Figure(figsize=(10.0, 5.0), dpi=100)
    FigureCanvasAgg(fig)
    ax_img = fig.add_axes((0.02, 0.06, 0.50, 0.80))
    ax_mat = fig.add_axes((0.58, 0.10, 0.34, 0.72))
    ax_bar = fig.add_axes((0.93, 0.10, 0.015, 0.72))

    # left panel: images in data units, height 2, widths by aspect ratio
    height = 2.0
    imgs = []
    for name, src in (("image_q", image_q), ("image_g", image_g)):
        img = _load_image(src)
        if img is None and src is not None:
            warnings.warn(f"{name}: cannot read {src}; drawn as a grey placeholder",
                          ReportWarning, stacklevel=2)
        imgs.append(np.asarray(img) if img is not None else None)
    widths = [height * (a.shape[1] / a.shape[0]) if a is not None else 1.0 for a in imgs]
    gap = 0.9 * max(widths)
    x_left = [0.0, widths[0] + gap]
    for k, (arr, x0, wk, parts) in enumerate(zip(imgs, x_left, widths, (hf, hg))):
        if arr is None:
            arr = np.full((2, 1, 3), PLACEHOLDER_COLOUR, np.uint8)
        ax_img.imshow(arr, extent=(x0, x0 + wk, height, 0.0), aspect="auto",
                      interpolation="bilinear")
        step = height / parts
        for p in range(1, parts):
            ax_img.plot([x0, x0 + wk], [p * step, p * step], color="white", lw=1.0,
                        ls="--", alpha=0.9)
        for p in range(parts):
            ax_img.text(x0 - 0.04 * wk if k == 0 else x0 + wk + 0.04 * wk, (p + 0.5) * step,
                        str(p), ha="right" if k == 0 else "left", va="center", fontsize=7)
        ax_img.text(x0 + wk / 2, height + 0.06, labels[k], ha="center", va="top", fontsize=9)
    step_q, step_g = height / hf, height / hg
    cmap = _colormap("viridis")  # the colours of the matrix panel
    connectors = []
    for i, j in path:
        d = dmat[i, j]
        (line,) = ax_img.plot(
            [x_left[0] + widths[0] + 0.03 * gap, x_left[1] - 0.03 * gap],
            [(i + 0.5) * step_q, (j + 0.5) * step_g],
            color=cmap(float(d)), lw=_line_width(d), solid_capstyle="round",
        )
        connectors.append(line)
    ax_img.set_xlim(-0.25 * widths[0], x_left[1] + 1.25 * widths[1])
    ax_img.set_ylim(height + 0.2, -0.02)
    ax_img.set_axis_off()

    # right panel: the part-distance matrix with the path
    im = ax_mat.imshow(dmat, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest",
                       aspect="auto")
    (overlay,) = ax_mat.plot([j for _, j in path], [i for i, _ in path], color="red",
                             marker="o", markersize=4, lw=1.5)
    if hf * hg <= 100:
        for i in range(hf):
            for j in range(hg):
                ax_mat.text(j, i, f"{dmat[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if dmat[i, j] < 0.6 else "black")
    ax_mat.set_xlabel(f"{labels[1]} part j")
    ax_mat.set_ylabel(f"{labels[0]} part i")
    ax_mat.set_title(f"d_ij = tanh(|q_i - g_j| / 2), path sum S = {total:.4f}", fontsize=9)
    fig.colorbar(im, cax=ax_bar)
    head = f"{title}   " if title else ""
    fig.suptitle(f"{head}aligned local distance S = {total:.4f}", fontsize=11)

    lines = []
    for line in connectors:
        (_, y0), (_, y1) = line.get_xydata()
        lines.append((int(math.floor(y0 / step_q)), int(math.floor(y1 / step_g)),
                      float(line.get_linewidth())))
    drawn = [(int(round(y)), int(round(x))) for x, y in overlay.get_xydata()]
    target = os.fspath(out_path)
    atomic_write(target, lambda tmp: fig.savefig(tmp, format="png"))
    return {
        "file": target,
        "distance": float(total),
        "path": path,
        "part_distances": dmat,
        "lines": lines,
        "overlay": drawn,
    }


def _colormap(name):
    import matplotlib

    return matplotlib.colormaps[name]


# ----------------------------------------------------------------------------
# command line


def add_report_arguments(parser):
    """Add the report flags to an ``argparse`` parser (an argument group "reports").

    Flags: ``--ranked-list N``, ``--num-queries``, ``--alignment Q G``,
    ``--out``, ``--image-root``, ``--check-tf``, ``--check-samples``. The
    query sample of ``--ranked-list`` uses ``args.seed`` when the parser has
    a ``--seed`` flag (else 0).

    Args:
        parser: an ``argparse.ArgumentParser``.

    Returns:
        The argument group.

    Example:
        >>> import argparse
        >>> p = argparse.ArgumentParser()
        >>> _ = add_report_arguments(p)
        >>> p.parse_args(["--ranked-list", "10"]).num_queries
        8
    """
    group = parser.add_argument_group(
        "reports", "figures and checks of one dump (docs/evaluate_reports.md)"
    )
    group.add_argument(
        "--ranked-list",
        type=int,
        metavar="N",
        default=None,
        help=(
            "for a seeded sample of queries (--num-queries; the sample uses --seed), "
            "write one PNG per query to --out showing the query and its top-N gallery "
            "images by each evaluated distance, after the protocol's removals; green "
            "frame = same identity, red = different, distance under each image. Needs "
            f"image paths in the dump. N in [1, {MAX_TOP_N}]"
        ),
    )
    group.add_argument(
        "--num-queries",
        type=int,
        default=8,
        metavar="M",
        help="number of queries drawn for --ranked-list (default 8; all if M >= Q)",
    )
    group.add_argument(
        "--alignment",
        type=int,
        nargs=2,
        metavar=("Q", "G"),
        default=None,
        help=(
            "draw the part alignment of query Q and gallery item G (indices in the "
            "dump): both images cut into stripes, lines between the stripes the "
            "shortest path matches (thicker = larger part distance), and the part "
            "distance matrix with the path. Needs local features"
        ),
    )
    group.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help=(
            "directory for the report PNGs (created if missing; default: reports). "
            "With only --alignment and one dump it may name the PNG itself (ends in .png)"
        ),
    )
    group.add_argument(
        "--image-root",
        metavar="DIR",
        default=None,
        help=(
            "directory the dump's relative image paths start from (the prepared "
            "dataset's directory); default: the current directory, then the dump's"
        ),
    )
    group.add_argument(
        "--check-tf",
        action="store_true",
        help=(
            "recompute a sample of the distances with the TensorFlow ops (reid_tf) and "
            "the reference and report the largest absolute and relative differences; "
            "a difference above the float32 tolerance is an error. Needs TensorFlow"
        ),
    )
    group.add_argument(
        "--check-samples",
        type=int,
        default=200,
        metavar="S",
        help="number of query-gallery pairs sampled by --check-tf (default 200)",
    )
    return group


def reports_requested(args):
    """True when any report flag is set (so the caller can skip building distance matrices)."""
    return bool(
        getattr(args, "ranked_list", None) is not None
        or getattr(args, "alignment", None) is not None
        or getattr(args, "check_tf", False)
    )


def _out_is_png(args):
    out = getattr(args, "out", None)
    return out is not None and out.lower().endswith(".png")


def _made_by_demo(args, directory):
    """True when ``directory`` is the ``--demo`` directory, which the CLI creates first."""
    demo = getattr(args, "demo", None)
    return demo is not None and os.path.abspath(demo) == directory


def check_report_arguments(args):
    """Validate the report flags alone (no dump needed).

    Args:
        args: parsed arguments with the attributes :func:`add_report_arguments` adds.

    Raises:
        ReportError: one line naming the flag.

    Example:
        >>> import argparse
        >>> p = argparse.ArgumentParser(); _ = add_report_arguments(p)
        >>> check_report_arguments(p.parse_args(["--ranked-list", "0"]))
        Traceback (most recent call last):
        ...
        reference.reports.ReportError: --ranked-list: N must be in [1, 100], got 0
    """
    n = getattr(args, "ranked_list", None)
    if n is not None and not 1 <= n <= MAX_TOP_N:
        raise ReportError(f"--ranked-list: N must be in [1, {MAX_TOP_N}], got {n}")
    if args.num_queries < 1:
        raise ReportError(f"--num-queries: must be >= 1, got {args.num_queries}")
    if args.check_samples < 1:
        raise ReportError(f"--check-samples: must be >= 1, got {args.check_samples}")
    if args.alignment is not None and min(args.alignment) < 0:
        raise ReportError(f"--alignment: indices must be >= 0, got {args.alignment}")
    if args.image_root is not None and not os.path.isdir(args.image_root):
        raise ReportError(f"--image-root: {args.image_root} is not a directory")
    out = args.out
    if out is None:
        return
    if _out_is_png(args):
        if args.alignment is None or n is not None:
            raise ReportError(
                f"--out: {out} names a PNG; that is only allowed with --alignment alone "
                "(give a directory for --ranked-list)"
            )
        num_dumps = len(getattr(args, "dumps", None) or []) + (
            1 if getattr(args, "demo", None) else 0
        )
        if num_dumps > 1:
            raise ReportError(
                f"--out: {out} names one PNG but {num_dumps} dumps are evaluated; give a "
                "directory"
            )
        directory = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(directory) and not _made_by_demo(args, directory):
            raise ReportError(f"--out: directory {directory} does not exist")
        if os.path.isdir(out):
            raise ReportError(f"--out: {out} is a directory")
    else:
        if os.path.exists(out) and not os.path.isdir(out):
            raise ReportError(f"--out: {out} exists and is not a directory")
        parent = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(parent) and not _made_by_demo(args, parent):
            raise ReportError(f"--out: parent directory {parent} does not exist")


def _normalize(x):
    x = np.asarray(x, np.float32)
    norm = np.sqrt(np.maximum(np.sum(np.square(x), axis=-1, keepdims=True), 1e-12))
    return (x / norm).astype(np.float32)


def run_reports(args, dump, distmat, dump_path=None, *, say=None):
    """Make the reports the flags ask for, for one dump.

    Args:
        args: parsed arguments (:func:`add_report_arguments`; ``protocol``,
            ``seed``, ``normalize``, ``quiet`` are used when present).
        dump: the :class:`reference.dump.FeatureDump`.
        distmat: the [Q, G] distance matrix to rank by, or a dict
            {distance name: [Q, G]} (one set of ranked lists per entry), or
            None (then ``--ranked-list`` ranks by the global Euclidean
            distance).
        dump_path: the dump's file (names the outputs; default ``dump.path``).
        say: optional progress callable taking one line.

    Returns:
        list of one-line messages: the files written, warnings (missing
        images) and the ``--check-tf`` summary.

    Raises:
        ReportError: a bad flag value for this dump, a dump lacking what a
            report needs, TensorFlow missing for ``--check-tf``, or a failed
            ``--check-tf`` (after the figures are written; the exception's
            ``messages`` attribute then holds the messages so far).

    Example:
        >>> msgs = run_reports(args, dump, {"global": d}, "feats.h5")  # doctest: +SKIP
        >>> msgs[0]  # doctest: +SKIP
        'wrote reports/feats_global_q00003.png'
    """
    check_report_arguments(args)
    say = say or (lambda line: None)
    dump_path = os.fspath(dump_path or dump.path)
    stem = os.path.splitext(os.path.basename(dump_path))[0]
    messages = []
    protocol = getattr(args, "protocol", None) or dump.attrs.get("protocol", "market1501")
    _protocol_name(protocol)
    if not reports_requested(args):
        return messages
    out = args.out if args.out is not None else "reports"
    if args.ranked_list is not None or (args.alignment is not None and not _out_is_png(args)):
        os.makedirs(out, exist_ok=True)

    if args.alignment is not None:
        qi, gi = args.alignment
        if not dump.has_local:
            raise ReportError(f"--alignment: {dump_path}: the dump has no local features")
        if qi >= dump.num_query:
            raise ReportError(
                f"--alignment: query index {qi} is out of range [0, {dump.num_query})"
            )
        if gi >= dump.num_gallery:
            raise ReportError(
                f"--alignment: gallery index {gi} is out of range [0, {dump.num_gallery})"
            )
        local_q = dump.query["local"][qi]
        local_g = dump.gallery["local"][gi]
        if getattr(args, "normalize", False):
            local_q, local_g = _normalize(local_q), _normalize(local_g)
        images = []
        for split, index in (("query", qi), ("gallery", gi)):
            paths = getattr(dump, split).get("path")
            resolved = None
            if paths is not None:
                resolved = _resolve_image(paths[index], args.image_root, dump_path)
            if resolved is None:
                what = f"{paths[index]} not found" if paths is not None else "no image paths"
                messages.append(f"--alignment: {split} {index}: {what}; grey placeholder drawn")
            images.append(resolved)
        q_pid, g_pid = int(dump.query["pid"][qi]), int(dump.gallery["pid"][gi])
        title = (
            f"query {qi} (pid {q_pid}) vs gallery {gi} (pid {g_pid}, "
            f"{'same' if q_pid == g_pid and q_pid != -1 else 'different'} identity)"
        )
        target = out if _out_is_png(args) else os.path.join(out, f"{stem}_align_q{qi}_g{gi}.png")
        info = alignment_figure(images[0], images[1], local_q, local_g, target, title=title)
        messages.append(f"wrote {info['file']} (S = {info['distance']:.4f})")

    if args.ranked_list is not None:
        if distmat is None:
            from reference.euclidean import pairwise_distance

            q_feat, g_feat = dump.query["global"], dump.gallery["global"]
            if getattr(args, "normalize", False):
                q_feat, g_feat = _normalize(q_feat), _normalize(g_feat)
            distmat = {"global": pairwise_distance(q_feat, g_feat)}
        elif not isinstance(distmat, dict):
            distmat = {"distance": distmat}
        queries = sample_queries(dump.num_query, args.num_queries, getattr(args, "seed", 0) or 0)
        for name, mat in distmat.items():
            say(f"ranked lists ({name}): {len(queries)} queries, top {args.ranked_list}")
            pages = ranked_list_figure(
                dump, mat, queries, args.ranked_list, out, protocol=protocol,
                distance_name=name, image_root=args.image_root, prefix=f"{stem}_{name}_",
                warn=messages.append,
            )
            messages.append(
                f"wrote {len(pages)} ranked list(s) ({name}) to {out}"
                + (f" ({pages[0]['file']}, ...)" if pages else "")
            )

    if args.check_tf:
        say(f"--check-tf: {args.check_samples} sampled pairs (imports TensorFlow)")
        try:
            from reid_tf.check import check_against_reference, format_check
        except ImportError as exc:
            raise ReportError(
                f"--check-tf: needs TensorFlow and the reid_tf package ({exc})"
            ) from None
        result = check_against_reference(
            dump, samples=args.check_samples, seed=getattr(args, "seed", 0) or 0
        )
        summary = format_check(result)
        messages.append(summary)
        if not result["passed"]:
            err = ReportError(f"--check-tf: FAILED: {summary}")
            err.messages = messages
            raise err
    return messages
