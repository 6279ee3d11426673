"""Alignment figure: the stripes of two images matched by the shortest path.

The AlignedReID view of one image pair (the paper's Figures 3 and 5), drawn
with matplotlib's object API (a ``Figure`` on an Agg canvas, no pyplot state):
both images cut into horizontal stripes, one line for each pair of stripes
the shortest path matches, weighted by that pair's part distance d_ij (its
share of the total), and the ``Hf x Hg`` matrix of part distances with the
path drawn over it; the aligned distance is compared with the best path
without a shift and with the sum of stripe i against stripe i.
"""

import math
import os
import warnings

import numpy as np

from reid_common import atomic_write
from reference.figures.images import PLACEHOLDER_COLOUR, ReportError, ReportWarning, load_image
from reference.figures.pairs import part_distances, unshifted_paths


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
    return part_distances(np.asarray(local_q)[None], np.asarray(local_g)[None])[0]


WIDTH_RANGE = (0.6, 6.0)   # line width (points) of the smallest and largest d_ij on the path
ALPHA_RANGE = (0.3, 1.0)   # its opacity


def _weight(d, low, high):
    """Where ``d`` lies between the smallest and largest d_ij of the path, in [0, 1]."""
    return 1.0 if high - low <= 1e-12 else float((d - low) / (high - low))


def alignment_figure(image_q, image_g, local_q, local_g, out_path, title=None, *,
                     labels=("query", "gallery")):
    """Draw the alignment of two images' stripes (the paper's Figures 3 and 5) to a PNG.

    :func:`draw_alignment` (same arguments) written atomically to ``out_path``.

    Returns:
        the info dict of :func:`draw_alignment` with ``file`` added.

    Example:
        >>> import os, tempfile
        >>> rng = np.random.default_rng(0)
        >>> out = os.path.join(tempfile.mkdtemp(), "align.png")
        >>> info = alignment_figure(None, None, rng.normal(size=(8, 16)),
        ...                         rng.normal(size=(8, 16)), out)
        >>> info["path"][0], info["path"][-1]
        ((0, 0), (7, 7))
    """
    directory = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(directory):
        raise ReportError(f"out_path: directory {directory} does not exist")
    fig, info = draw_alignment(image_q, image_g, local_q, local_g, title=title, labels=labels)
    target = os.fspath(out_path)
    atomic_write(target, lambda tmp: fig.savefig(tmp, format="png"))
    return {"file": target, **info}


def draw_alignment(image_q, image_g, local_q, local_g, *, title=None,
                   labels=("query", "gallery")):
    """The alignment figure of two images (the paper's Figures 3 and 5).

    Left panel: the two images side by side, each cut into its number of
    horizontal stripes (parts), and one line for each cell (i, j) of the
    shortest path (:func:`reference.local_path`): the pairs of stripes the
    aligned distance matches, and nothing else. Each line is weighted by its
    contribution d_ij to the total S: from thin and faint at the smallest d_ij
    of the path to thick and opaque at the largest (``WIDTH_RANGE``,
    ``ALPHA_RANGE``), in the matrix's colour for d_ij, with d_ij written on
    it. Right panel: the ``Hf x Hg`` matrix of part distances, the path
    over it and, when ``Hf == Hg``, the shortest path that keeps within one
    cell of the diagonal (no shift) dashed. The title compares S with that
    path's length D and with the stripe-by-stripe sum of d_ii (the paper's
    GL-Baseline distance).

    Args:
        image_q: the first image: a file path, a PIL image, an array
            [H, W] / [H, W, 3], or None (a grey placeholder).
        image_g: the second image, the same.
        local_q: [Hf, c] local features of the first image.
        local_g: [Hg, c] local features of the second image.
        title: figure title (the distances are appended).
        labels: captions of the two images.

    Returns:
        ``(figure, info)``: the ``matplotlib.figure.Figure`` and a dict with
        ``distance`` (the aligned distance S), ``unaligned`` (sum of d_ii, or
        None when Hf != Hg), ``unshifted`` (the shortest path within one cell
        of the diagonal, :func:`reference.figures.pairs.unshifted_paths`, or
        None when Hf != Hg), ``path`` (list of (i, j)), ``part_distances``
        [Hf, Hg], and what was drawn, read back from the figure: ``lines``
        (list of (i, j, width)), ``alphas`` (their opacity) and ``overlay``
        (the (i, j) cells of the path over the matrix).

    Example:
        >>> x = np.eye(3)
        >>> fig, info = draw_alignment(None, None, x, x[[1, 0, 2]])
        >>> info["path"], round(info["distance"], 3), round(info["unaligned"], 3)
        ([(0, 0), (0, 1), (0, 2), (1, 2), (2, 2)], 1.827, 1.218)
        >>> [width for _, _, width in info["lines"]]  # d_ij: 0.61, 0, 0.61, 0.61, 0
        [6.0, 0.6, 6.0, 6.0, 0.6]
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from reference import local_distance_pairs, local_path

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
    hf, hg = local_q.shape[0], local_g.shape[0]
    path = local_path(local_q, local_g)
    total = float(local_distance_pairs(local_q[None], local_g[None])[0])
    dmat = part_distance_matrix(local_q, local_g)
    unaligned = float(np.trace(dmat)) if hf == hg else None
    unshifted, band = (None, None)
    if hf == hg:
        lengths, band = unshifted_paths(dmat[None])
        unshifted = float(lengths[0])

    fig = Figure(figsize=(10.0, 5.0), dpi=100)
    FigureCanvasAgg(fig)
    ax_img = fig.add_axes((0.02, 0.10, 0.50, 0.74))
    ax_mat = fig.add_axes((0.58, 0.12, 0.34, 0.70))
    ax_bar = fig.add_axes((0.93, 0.12, 0.015, 0.70))
    x_left, widths, height = _draw_images(ax_img, image_q, image_g, (hf, hg), labels)
    step_q, step_g = height / hf, height / hg
    on_path = [dmat[i, j] for i, j in path]
    low, high = min(on_path), max(on_path)
    cmap = _colormap("viridis")  # the colours of the matrix panel
    gap = x_left[1] - x_left[0] - widths[0]
    x0, x1 = x_left[0] + widths[0] + 0.03 * gap, x_left[1] - 0.03 * gap
    connectors = []
    for i, j in sorted(path, key=lambda c: dmat[c]):  # the heaviest lines on top
        d = float(dmat[i, j])
        t = _weight(d, low, high)
        y0, y1 = (i + 0.5) * step_q, (j + 0.5) * step_g
        (line,) = ax_img.plot([x0, x1], [y0, y1], color=cmap(d), solid_capstyle="round",
                              lw=WIDTH_RANGE[0] + t * (WIDTH_RANGE[1] - WIDTH_RANGE[0]),
                              alpha=ALPHA_RANGE[0] + t * (ALPHA_RANGE[1] - ALPHA_RANGE[0]),
                              gid=f"match {i} {j}")
        connectors.append((i, j, line))
        if len(path) <= 24:
            ax_img.text(x0 + 0.5 * (x1 - x0), 0.5 * (y0 + y1), f"{d:.2f}", ha="center",
                        va="center", fontsize=7, gid=f"value {i} {j}",
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                              "alpha": 0.8})
    ax_img.set_xlim(-0.25 * widths[0], x_left[1] + 1.25 * widths[1])
    ax_img.set_ylim(height + 0.2, -0.02)
    ax_img.set_axis_off()
    ax_img.set_title(f"line width and opacity: d_ij from {low:.2f} (thin) to {high:.2f} "
                     "(thick) on the path", fontsize=8)

    # right panel: the part-distance matrix with the path (and the diagonal)
    im = ax_mat.imshow(dmat, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest",
                       aspect="auto")
    (overlay,) = ax_mat.plot([j for _, j in path], [i for i, _ in path], color="red",
                             marker="o", markersize=4, lw=1.5,
                             label=f"shortest path S = {total:.3f}")
    if band is not None:
        ax_mat.plot([j for _, j in band], [i for i, _ in band], color="deepskyblue", ls="--",
                    lw=1.8, label=f"without shift D = {unshifted:.3f}", gid="unshifted")
    if hf * hg <= 100:
        for i in range(hf):
            for j in range(hg):
                ax_mat.text(j, i, f"{dmat[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if dmat[i, j] < 0.6 else "black")
    ax_mat.set_xlabel(f"{labels[1]} part j")
    ax_mat.set_ylabel(f"{labels[0]} part i")
    ax_mat.set_title("d_ij = tanh(|q_i - g_j| / 2)", fontsize=9)
    ax_mat.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=7,
                  frameon=False)
    fig.colorbar(im, cax=ax_bar)
    head = f"{title}\n" if title else ""
    summary = f"aligned local distance S = {total:.3f} (sum of d_ij on the path)"
    if unaligned is not None:
        summary += (f";  without shift (|i - j| <= 1) D = {unshifted:.3f};  stripe by stripe "
                    f"(sum of d_ii) U = {unaligned:.3f}")
    fig.suptitle(head + summary, fontsize=9, wrap=True)

    lines, alphas = [], []
    for i, j, line in sorted(connectors, key=lambda c: c[:2]):
        (_, y0), (_, y1) = line.get_xydata()
        lines.append((int(math.floor(y0 / step_q)), int(math.floor(y1 / step_g)),
                      float(line.get_linewidth())))
        alphas.append(float(line.get_alpha()))
    drawn = [(int(round(y)), int(round(x))) for x, y in overlay.get_xydata()]
    return fig, {
        "distance": float(total),
        "unaligned": unaligned,
        "unshifted": unshifted,
        "path": path,
        "part_distances": dmat,
        "lines": lines,
        "alphas": alphas,
        "overlay": drawn,
    }


def _draw_images(ax_img, image_q, image_g, parts, labels):
    """The two images, their stripes and numbers; returns (x_left, widths, height)."""
    height = 2.0
    imgs = []
    for name, src in (("image_q", image_q), ("image_g", image_g)):
        img = load_image(src)
        if img is None and src is not None:
            warnings.warn(f"{name}: cannot read {src}; drawn as a grey placeholder",
                          ReportWarning, stacklevel=3)
        imgs.append(np.asarray(img) if img is not None else None)
    widths = [height * (a.shape[1] / a.shape[0]) if a is not None else 1.0 for a in imgs]
    gap = 0.9 * max(widths)
    x_left = [0.0, widths[0] + gap]
    for k, (arr, x0, wk, count) in enumerate(zip(imgs, x_left, widths, parts)):
        if arr is None:
            arr = np.full((2, 1, 3), PLACEHOLDER_COLOUR, np.uint8)
        ax_img.imshow(arr, extent=(x0, x0 + wk, height, 0.0), aspect="auto",
                      interpolation="bilinear")
        step = height / count
        for p in range(1, count):
            ax_img.plot([x0, x0 + wk], [p * step, p * step], color="white", lw=1.0,
                        ls="--", alpha=0.9)
        for p in range(count):
            ax_img.text(x0 - 0.04 * wk if k == 0 else x0 + wk + 0.04 * wk, (p + 0.5) * step,
                        str(p), ha="right" if k == 0 else "left", va="center", fontsize=7)
        ax_img.text(x0 + wk / 2, height + 0.06, labels[k], ha="center", va="top", fontsize=9)
    return x_left, widths, height


def _colormap(name):
    import matplotlib

    return matplotlib.colormaps[name]
