"""Ranked-list figure: a query and its top-N gallery images by a distance.

One PNG per query, composed with Pillow (exact pixel layout, documented in
:func:`ranked_list_layout`): the query in a blue frame, then its nearest
gallery images after the protocol's removals, framed green (same identity)
or red (different identity), with the rank and distance underneath.
:func:`ranked_results_figure` draws the same page for results without
identities (a search of one's own images).
"""

import os
import warnings

import numpy as np

from reid_common import atomic_write, canonical_protocol
from reference.figures.images import (
    EMPTY_TILE,
    ReportError,
    ReportWarning,
    fit_image,
    image_roots,
    label_font,
    load_image,
    locate_image,
    placeholder_image,
)

# layout (pixels); documented in ranked_list_layout
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
BACKGROUND = (255, 255, 255)
TEXT_COLOUR = (0, 0, 0)


def protocol_rules(protocol):
    """``cuhk-sysu`` or ``market1501``: the removal rules a protocol ranks under.

    Raises:
        ReportError: an unknown protocol.

    Example:
        >>> protocol_rules("cuhk03"), protocol_rules("CUHK-SYSU")
        ('market1501', 'cuhk-sysu')
    """
    try:
        name = canonical_protocol(str(protocol))
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    return "cuhk-sysu" if name == "cuhk-sysu" else "market1501"



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


def valid_gallery(dump, query_index, protocol=None):
    """The gallery items a query is ranked against under a protocol, in gallery order.

    Market-1501 protocol (also duke/msmt17, and cuhk03 for display): gallery
    items with the query's pid and camera, and items with pid -1, are
    removed (as :func:`reference.evaluate` removes them). CUHK-SYSU: the
    query's own gallery list, nothing removed.

    Args:
        dump: a :class:`reference.dump.FeatureDump` (or an object with the
            same ``attrs``, ``query``, ``gallery`` and ``gallery_lists``).
        query_index: the query's row.
        protocol: protocol name (default: the dump's ``protocol`` attribute).

    Returns:
        int64 array of gallery indices, ascending.

    Example:
        >>> from types import SimpleNamespace
        >>> dump = SimpleNamespace(
        ...     attrs={"protocol": "market1501"}, gallery_lists=None,
        ...     query={"pid": np.array([1]), "camid": np.array([0])},
        ...     gallery={"pid": np.array([1, 1, 2, -1]), "camid": np.array([0, 1, 1, 1])})
        >>> valid_gallery(dump, 0).tolist()
        [1, 2]
    """
    protocol = protocol_rules(protocol or dump.attrs.get("protocol", "market1501"))
    q = int(query_index)
    if protocol == "cuhk-sysu":
        if dump.gallery_lists is None:
            raise ReportError(
                f"{getattr(dump, 'path', 'dump')}: protocol/gallery_offsets: missing; protocol "
                "cuhk-sysu needs the per-query gallery lists"
            )
        return np.unique(np.asarray(dump.gallery_lists[q], np.int64))
    g_pid = np.asarray(dump.gallery["pid"])
    g_cam = np.asarray(dump.gallery["camid"])
    q_pid = dump.query["pid"][q]
    q_cam = dump.query["camid"][q]
    junk = ((g_pid == q_pid) & (g_cam == q_cam)) | (g_pid == -1)
    return np.flatnonzero(~junk).astype(np.int64)


def true_matches(dump, query_index, gallery_indices):
    """Which of ``gallery_indices`` show the query's identity (equal pid, not -1).

    Args:
        dump: as for :func:`valid_gallery`.
        query_index: the query's row.
        gallery_indices: gallery indices (for example from :func:`ranked_gallery`).

    Returns:
        bool array, one entry per index.

    Example:
        >>> from types import SimpleNamespace
        >>> dump = SimpleNamespace(query={"pid": np.array([1])},
        ...                        gallery={"pid": np.array([1, 1, 2, -1])})
        >>> true_matches(dump, 0, [2, 1, 0]).tolist()
        [False, True, True]
    """
    q_pid = int(dump.query["pid"][int(query_index)])
    idx = np.asarray(gallery_indices, np.int64)
    if q_pid == -1:
        return np.zeros(idx.shape, bool)
    return np.asarray(dump.gallery["pid"])[idx] == q_pid


def ranked_gallery(dump, distmat, query_index, protocol=None):
    """The gallery of one query after the protocol's removals, best first.

    The items are those of :func:`valid_gallery`; ties in distance are
    ordered by gallery index (as in :func:`reference.evaluate`).

    Args:
        dump: a :class:`reference.dump.FeatureDump`.
        distmat: [Q, G] distances.
        query_index: the query's row.
        protocol: protocol name (default: the dump's ``protocol`` attribute).

    Returns:
        int64 array of gallery indices sorted by ascending distance.

    Example:
        >>> from types import SimpleNamespace
        >>> dump = SimpleNamespace(
        ...     attrs={"protocol": "market1501"}, gallery_lists=None,
        ...     query={"pid": np.array([1]), "camid": np.array([0])},
        ...     gallery={"pid": np.array([1, 1, 2, -1]), "camid": np.array([0, 1, 1, 1])})
        >>> ranked_gallery(dump, np.array([[0.1, 0.5, 0.3, 0.0]]), 0).tolist()
        [2, 1]
    """
    candidates = valid_gallery(dump, query_index, protocol)
    row = np.asarray(distmat[int(query_index)], np.float64)[candidates]
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


def _write_page(target, layout, header, query_tile, tiles, font):
    """Compose one ranked-list page and write it atomically as a PNG.

    ``query_tile`` and each of ``tiles`` are ``(image, frame colour, label
    lines)``; the gallery slots past ``len(tiles)`` are drawn empty.
    """
    from PIL import Image, ImageDraw

    canvas = Image.new("RGB", layout["size"], BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for k, text in enumerate(header):
        draw.text((MARGIN, MARGIN + 13 * k), text, fill=TEXT_COLOUR, font=font)
    _paste_tile(canvas, draw, layout["query_box"], *query_tile, font)
    for k, box in enumerate(layout["gallery_boxes"]):
        if k >= len(tiles):
            draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=EMPTY_TILE)
            continue
        _paste_tile(canvas, draw, box, *tiles[k], font)
    atomic_write(target, lambda tmp: canvas.save(tmp, format="PNG"))


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
            (default: the dump's ``image_root`` attribute when that directory
            exists, else the current directory, then the dump's directory).
            Only files inside the root are drawn (after resolving ``..`` and
            symbolic links); a path that leads outside it, absolute or not, is
            drawn as a grey placeholder and reported through ``warn``.
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
    """
    if "path" not in dump.query or "path" not in dump.gallery:
        raise ReportError(
            f"dump: {dump.path} has no image paths (query/path, "
            "gallery/path); write it with paths to draw ranked lists"
        )
    top_n = int(top_n)
    if not 1 <= top_n <= MAX_TOP_N:
        raise ReportError(f"top_n: expected an integer in [1, {MAX_TOP_N}], got {top_n}")
    distmat = np.asarray(distmat)
    if distmat.shape != (dump.num_query, dump.num_gallery):
        raise ReportError(
            f"distmat: expected shape {(dump.num_query, dump.num_gallery)} (Q, G), "
            f"got {distmat.shape}"
        )
    if not os.path.isdir(out_dir):
        raise ReportError(f"out_dir: directory {out_dir} does not exist")
    if warn is None:
        warn = lambda message: warnings.warn(message, ReportWarning, stacklevel=3)  # noqa: E731
    protocol = protocol or dump.attrs.get("protocol", "market1501")
    layout = ranked_list_layout(top_n, tile_size)
    h, w = (int(v) for v in tile_size)
    font = label_font()
    missing_paths = []
    refused_paths = []
    roots = image_roots(image_root, dump)

    def tile(split, index):
        name = getattr(dump, split)["path"][index]
        resolved, why = locate_image(name, roots)
        img = load_image(resolved) if resolved is not None else None
        if img is None:
            (refused_paths if why == "outside" else missing_paths).append(name)
            return placeholder_image((w, h))
        return fit_image(img, w, h)

    pages = []
    for q in query_indices:
        q = int(q)
        if not 0 <= q < dump.num_query:
            raise ReportError(f"query index {q} is out of range [0, {dump.num_query})")
        before = len(missing_paths) + len(refused_paths)
        ranked = ranked_gallery(dump, distmat, q, protocol)
        order = ranked[:top_n]
        q_pid = int(dump.query["pid"][q])
        matches = [bool(m) for m in true_matches(dump, q, order)]
        valid = len(ranked)
        header = [
            f"query {q}  pid {q_pid}  cam {int(dump.query['camid'][q])}",
            (f"{distance_name}, " if distance_name else "")
            + f"{protocol}, top {top_n} of {valid}",
        ]
        query_tile = (tile("query", q), QUERY_COLOUR,
                      ["query", f"pid {q_pid} c{int(dump.query['camid'][q])}"])
        tiles = []
        for k, g in enumerate(int(g) for g in order):
            colour = MATCH_COLOUR if matches[k] else NON_MATCH_COLOUR
            lines = [
                f"#{k + 1}  {float(distmat[q, g]):.3f}",
                f"pid {int(dump.gallery['pid'][g])} c{int(dump.gallery['camid'][g])}",
            ]
            tiles.append((tile("gallery", g), colour, lines))
        target = os.path.join(out_dir, f"{prefix}q{q:05d}.png")
        _write_page(target, layout, header, query_tile, tiles, font)
        pages.append(
            {
                "file": target,
                "query": q,
                "gallery": [int(g) for g in order],
                "distances": [float(distmat[q, g]) for g in order],
                "matches": matches,
                "boxes": [layout["query_box"]] + layout["gallery_boxes"][: len(order)],
                "missing_images": len(missing_paths) + len(refused_paths) - before,
            }
        )
    if refused_paths:
        warn(
            f"{len(refused_paths)} image path(s) lead outside the image root "
            f"({', '.join(roots)}), drawn as grey placeholders (first: {refused_paths[0]})"
        )
    if missing_paths:
        warn(
            f"{len(missing_paths)} image(s) not found or unreadable, drawn as grey "
            f"placeholders (first: {missing_paths[0]})"
        )
    return pages



RESULT_COLOUR = (90, 90, 90)


def ranked_results_figure(query_image, result_images, distances, target, *, header=(),
                          tile_size=(TILE_HEIGHT, TILE_WIDTH)):
    """Write the ranked-list PNG of one query whose results carry no identities.

    The page of :func:`ranked_list_figure` (same layout,
    :func:`ranked_list_layout`) for a search of unlabeled images: the query in
    a blue frame, its results best first in grey frames (nothing says which
    are the same person), with the rank and distance under each tile and the
    file name below that. Images that cannot be read are drawn as grey
    placeholders. The file is written atomically.

    Args:
        query_image: path (or PIL image / array) of the query.
        result_images: the result images, best first (paths, PIL images or
            arrays), 1 to 100 of them.
        distances: one distance per result.
        target: the PNG file to write (its directory is created if missing).
        header: up to two lines of text at the top.
        tile_size: (h, w) of a tile's image area in pixels.

    Returns:
        dict with ``file``, ``boxes`` (framed tile boxes, query first) and
        ``missing_images`` (how many images were drawn as placeholders).

    Raises:
        ReportError: no results, more than 100, or as many distances as results.

    Example:
        >>> import numpy as np
        >>> red, blue = np.zeros((8, 4, 3)), np.zeros((8, 4, 3))
        >>> red[..., 0], blue[..., 2] = 1.0, 1.0
        >>> page = ranked_results_figure(red, [red, blue], [0.0, 1.5], "search.png")
        >>> page["file"], len(page["boxes"]), page["missing_images"]
        ('search.png', 3, 0)
    """
    results = list(result_images)
    values = [float(d) for d in np.asarray(distances, np.float64).reshape(-1)]
    if not 1 <= len(results) <= MAX_TOP_N:
        raise ReportError(f"result_images: expected 1 to {MAX_TOP_N} images, got {len(results)}")
    if len(values) != len(results):
        raise ReportError(
            f"distances: expected {len(results)} values (one per result), got {len(values)}"
        )
    header = [str(line) for line in header][:2]
    layout = ranked_list_layout(len(results), tile_size)
    h, w = (int(v) for v in tile_size)
    missing = []

    def tile(source):
        img = load_image(source)
        if img is None:
            missing.append(source)
            return placeholder_image((w, h))
        return fit_image(img, w, h)

    def label(source):
        name = os.path.basename(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else ""
        return name if len(name) <= 12 else name[:11] + "~"

    query_tile = (tile(query_image), QUERY_COLOUR, ["query", label(query_image)])
    tiles = [(tile(src), RESULT_COLOUR, [f"#{k + 1}  {values[k]:.3f}", label(src)])
             for k, src in enumerate(results)]
    _write_page(os.fspath(target), layout, header, query_tile, tiles, label_font())
    return {
        "file": os.fspath(target),
        "boxes": [layout["query_box"]] + layout["gallery_boxes"],
        "missing_images": len(missing),
    }
