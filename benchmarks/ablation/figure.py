"""The results plot, drawn on matplotlib's object API (``Figure``)."""

import numpy as np

from reid_common import atomic_path

from .settings import METRIC_NAMES


def plot(agg, variants, path):
    """Bar chart of global rank-1 and mAP (mean ± std, seeds as dots).

    Args:
        agg: output of :func:`aggregate`.
        variants: bar order.
        path: PNG path (written atomically).

    Returns:
        None.

    Example:
        >>> import os, tempfile
        >>> from benchmarks.ablation.settings import BY_KEY
        >>> row = {"global": {"rank1": (0.5, 0.1, 2), "mAP": (0.4, 0.1, 2)},
        ...        "values": {"global": {"rank1": [0.4, 0.6], "mAP": [0.3, 0.5]}}}
        >>> path = os.path.join(tempfile.mkdtemp(), "a.png")
        >>> plot({"baseline": row}, [BY_KEY["baseline"]], path)
        >>> open(path, "rb").read(4) == b"\\x89PNG"
        True
    """
    from matplotlib.figure import Figure

    shown = [v for v in variants if agg.get(v.key, {}).get("global")]
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2)
    x = np.arange(len(shown))
    for ax, metric in zip(axes, ("rank1", "mAP")):
        means = [100 * agg[v.key]["global"][metric][0] for v in shown]
        stds = [100 * np.nan_to_num(agg[v.key]["global"][metric][1]) for v in shown]
        colors = ["#8c8c8c" if v.table == 1 and not v.local else
                  "#4c72b0" if v.table == 1 else "#dd8452" for v in shown]
        ax.bar(x, means, yerr=stds, capsize=4, color=colors, alpha=0.85, label="global")
        for i, v in enumerate(shown):
            seeds = [100 * y for y in agg[v.key].get("values", {}).get("global", {})
                     .get(metric, []) if y is not None]
            ax.scatter([i + 0.25] * len(seeds), seeds, s=12, color="white", edgecolor="black",
                       linewidth=0.6, zorder=3, label="seeds" if i == 0 else None)
        gl = [(i, 100 * agg[v.key]["global+local"][metric][0]) for i, v in enumerate(shown)
              if agg[v.key].get("global+local") and v.key != "gl_baseline"]
        if gl:
            ax.scatter([i for i, _ in gl], [y for _, y in gl], marker="D", color="black",
                       zorder=3, label="global+local (mean)")
        ax.set_xticks(x, [v.label.replace(" + ", "\n+ ") for v in shown], fontsize=8)
        ax.set_ylabel(f"{METRIC_NAMES[metric]} (%)")
        ax.set_title(f"{METRIC_NAMES[metric]}, global feature (mean ± std over seeds)",
                     fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        tops = [m + e for m, e in zip(means, stds)] + [y for _, y in gl]
        ax.set_ylim(0, 1.25 * max(tops + [1.0]))
        ax.legend(fontsize=7, loc="upper left", ncol=3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
