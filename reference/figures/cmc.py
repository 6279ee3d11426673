"""CMC figure: matching rate against rank, one or more panels of curves.

Drawn with matplotlib's object API (a ``Figure`` on an Agg canvas, no pyplot
state) and written atomically. ``reid-evaluate --plot`` draws one panel with a
curve per evaluation; ``train.py`` draws one panel per test set with the
curves before and after training.
"""

from dataclasses import dataclass

import numpy as np

from reid_common import atomic_write


@dataclass(frozen=True)
class CMCCurve:
    """One curve of a CMC figure.

    Args:
        cmc: matching rates as fractions in [0, 1], ``cmc[k - 1]`` at rank k.
        label: legend text.
        linestyle: matplotlib line style (``"-"``, ``"--"``, ...).
        color: matplotlib colour, or None for the next colour of the cycle.
        marker: matplotlib marker of the points, or None.
    """

    cmc: object
    label: str
    linestyle: str = "-"
    color: object = None
    marker: object = None


def cmc_figure(panels, *, max_rank=None, panel_size=(7.0, 4.5), ylim=None,
               legend_fontsize="small"):
    """A ``matplotlib.figure.Figure`` of CMC curves, one panel per entry of ``panels``.

    Args:
        panels: list of ``(title, curves)``, ``curves`` a list of :class:`CMCCurve`.
        max_rank: ranks shown (None: the whole curves).
        panel_size: (width, height) of one panel in inches (100 dpi).
        ylim: (low, high) of the y axis in percent, or None for automatic.
        legend_fontsize: font size of the legends.

    Returns:
        the ``Figure`` (on an Agg canvas).

    Example:
        >>> fig = cmc_figure([("toy", [CMCCurve([0.5, 0.75, 1.0], "global")])])
        >>> ax = fig.axes[0]
        >>> ax.get_title(), ax.lines[0].get_ydata().tolist()
        ('toy', [50.0, 75.0, 100.0])
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = max(1, len(panels))
    fig = Figure(figsize=(panel_size[0] * n, panel_size[1]), dpi=100)
    FigureCanvasAgg(fig)
    for k, (title, curves) in enumerate(panels):
        ax = fig.add_subplot(1, n, k + 1)
        for curve in curves:
            cmc = 100.0 * np.asarray(curve.cmc, np.float64)
            if max_rank is not None:
                cmc = cmc[:max_rank]
            ax.plot(np.arange(1, len(cmc) + 1), cmc, curve.linestyle, color=curve.color,
                    marker=curve.marker, label=curve.label)
        ax.set_xlabel("rank")
        ax.set_ylabel("matching rate (%)")
        ax.set_title(title)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.grid(True, alpha=0.3)
        if curves:
            ax.legend(loc="lower right", fontsize=legend_fontsize)
    fig.tight_layout()
    return fig


def write_cmc_figure(path, panels, **kwargs):
    """Draw :func:`cmc_figure` (same keyword arguments) and write it to ``path`` as PNG.

    Returns:
        ``path``.
    """
    fig = cmc_figure(panels, **kwargs)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
