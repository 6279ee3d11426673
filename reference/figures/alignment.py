"""Alignment figure: the stripes of two images matched by the shortest path.

The AlignedReID view of one image pair (the paper's Figures 3 and 5), drawn
with matplotlib's object API (a ``Figure`` on an Agg canvas, no pyplot state):
both images cut into horizontal stripes, lines joining the stripes the
shortest path matches (thicker for a larger part distance d_ij), and the
``Hf x Hg`` matrix of part distances with the path drawn over it.
"""

import math
import os
import warnings

import numpy as np

from reid_common import atomic_write
from reference.figures.images import PLACEHOLDER_COLOUR, ReportError, ReportWarning, load_image


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
        >>> import os, tempfile
        >>> rng = np.random.default_rng(0)
        >>> out = os.path.join(tempfile.mkdtemp(), "align.png")
        >>> info = alignment_figure(None, None, rng.normal(size=(8, 16)),
        ...                         rng.normal(size=(8, 16)), out)
        >>> info["path"][0], info["path"][-1]
        ((0, 0), (7, 7))
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
    directory = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(directory):
        raise ReportError(f"out_path: directory {directory} does not exist")
    hf, hg = local_q.shape[0], local_g.shape[0]
    path = local_path(local_q, local_g)
    total = float(local_distance_pairs(local_q[None], local_g[None])[0])
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
        img = load_image(src)
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
