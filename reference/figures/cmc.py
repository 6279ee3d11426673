"""CMC figure: matching rate against rank, one or more panels of curves.

The one CMC style of the project: ``reid-evaluate --plot`` draws one panel
with a curve per evaluation, ``train.py``'s ``cmc.png`` one panel per test set
with the curves before and after training. Every curve is drawn over its whole
length (the ranks that were computed), ranks are integer ticks (1, then
multiples of 1, 2, 5, 10, ... so that about ten are shown; or 1, 2, 5, 10, 20,
... on a logarithmic rank axis), and the legend sits below the panel, outside
the curves, each entry ending with the curve's rank-1 and, when known, mAP.

Drawn with matplotlib's object API (a ``Figure`` on an Agg canvas, no pyplot
state) and written atomically.
"""

import math
from dataclasses import dataclass

import numpy as np

from reid_common import atomic_write

MAX_TICKS = 10


@dataclass(frozen=True)
class CMCCurve:
    """One curve of a CMC figure.

    Args:
        cmc: matching rates as fractions in [0, 1], ``cmc[k - 1]`` at rank k.
        label: legend text (rank-1 and mAP are appended, :func:`legend_label`).
        linestyle: matplotlib line style (``"-"``, ``"--"``, ...).
        color: matplotlib colour, or None for the next colour of the cycle.
        marker: matplotlib marker of the points, or None.
        mAP: the ranking's mean average precision as a fraction, or None.
    """

    cmc: object
    label: str
    linestyle: str = "-"
    color: object = None
    marker: object = None
    mAP: object = None


def legend_label(curve):
    """The legend entry of a curve: its label, rank-1 and mAP in percent.

    Example:
        >>> legend_label(CMCCurve([0.5, 1.0], "global", mAP=0.41234))
        'global: R1 50.0%, mAP 41.2%'
        >>> legend_label(CMCCurve([0.25], "local"))
        'local: R1 25.0%'
    """
    cmc = np.asarray(curve.cmc, np.float64)
    parts = [f"R1 {100.0 * cmc[0]:.1f}%"] if cmc.size else []
    if curve.mAP is not None and math.isfinite(curve.mAP):
        parts.append(f"mAP {100.0 * curve.mAP:.1f}%")
    return f"{curve.label}: {', '.join(parts)}" if parts else curve.label


def rank_ticks(max_rank, *, log=False):
    """Integer rank ticks for ranks 1..``max_rank``.

    Linear: 1 and the multiples of the smallest step in 1, 2, 5, 10, 20, 25,
    50, 100, ... that keeps at most ``MAX_TICKS`` + 1 ticks. Logarithmic: 1,
    2, 5, 10, 20, 50, ... up to ``max_rank``.

    Example:
        >>> rank_ticks(8)
        [1, 2, 3, 4, 5, 6, 7, 8]
        >>> rank_ticks(50)
        [1, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
        >>> rank_ticks(1000, log=True)
        [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    """
    max_rank = max(1, int(max_rank))
    if log:
        ticks = [m * 10 ** e for e in range(len(str(max_rank))) for m in (1, 2, 5)]
        return [t for t in ticks if t <= max_rank]
    step = 1
    while max_rank / step > MAX_TICKS:
        step = next(s * 10 ** e for e in range(12) for s in (1, 2, 2.5, 5)
                    if s * 10 ** e > step and float(s * 10 ** e).is_integer())
    step = int(step)
    return sorted({1, *range(step, max_rank + 1, step)})


def cmc_figure(panels, *, max_rank=None, panel_size=(7.0, 4.5), ylim=None,
               legend_fontsize="small", log_rank=False):
    """A ``matplotlib.figure.Figure`` of CMC curves, one panel per entry of ``panels``.

    Args:
        panels: list of ``(title, curves)``, ``curves`` a list of :class:`CMCCurve`.
        max_rank: ranks shown (None: the whole curves).
        panel_size: (width, height) of one panel's plotting area and legend
            in inches (100 dpi); the figure grows by the legend's rows.
        ylim: (low, high) of the y axis in percent, or None for automatic.
        legend_fontsize: font size of the legends.
        log_rank: a logarithmic rank axis (for long curves).

    Returns:
        the ``Figure`` (on an Agg canvas, laid out with constrained layout).

    Example:
        >>> fig = cmc_figure([("toy", [CMCCurve([0.5, 0.75, 1.0], "global")])])
        >>> ax = fig.axes[0]
        >>> ax.get_title(), ax.lines[0].get_ydata().tolist(), ax.get_xticks().tolist()
        ('toy', [50.0, 75.0, 100.0], [1, 2, 3])
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = max(1, len(panels))
    longest_text = max((len(legend_label(c)) for _, cs in panels for c in cs), default=0)
    fits_two = 2 * (0.07 * longest_text + 0.6) <= panel_size[0]
    ncol = 2 if fits_two and max((len(c) for _, c in panels), default=0) > 3 else 1
    rows = max((math.ceil(len(c) / ncol) for _, c in panels), default=0)
    fig = Figure(figsize=(panel_size[0] * n, panel_size[1] + 0.22 * rows), dpi=100,
                 layout="constrained")
    FigureCanvasAgg(fig)
    for k, (title, curves) in enumerate(panels):
        ax = fig.add_subplot(1, n, k + 1)
        longest = 1
        for curve in curves:
            cmc = 100.0 * np.asarray(curve.cmc, np.float64)
            if max_rank is not None:
                cmc = cmc[:max_rank]
            longest = max(longest, len(cmc))
            ax.plot(np.arange(1, len(cmc) + 1), cmc, curve.linestyle, color=curve.color,
                    marker=curve.marker, label=legend_label(curve))
        _rank_axis(ax, longest, log_rank)
        ax.set_ylabel("matching rate (%)")
        ax.set_title(title)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.grid(True, alpha=0.3)
        if curves:
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=ncol,
                      fontsize=legend_fontsize, frameon=False)
    return fig


def _rank_axis(ax, longest, log_rank):
    """Integer rank ticks over the whole computed range."""
    ticks = rank_ticks(longest, log=log_rank)
    if log_rank:
        ax.set_xscale("log")
        ax.set_xlim(0.9, longest * 1.1)
    else:
        ax.set_xlim(0.5, longest + 0.5)
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("rank" + (" (log scale)" if log_rank else ""))


def write_cmc_figure(path, panels, **kwargs):
    """Draw :func:`cmc_figure` (same keyword arguments) and write it to ``path`` as PNG.

    Returns:
        ``path``.
    """
    fig = cmc_figure(panels, **kwargs)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
