"""Statistics over seeds: mean ± std, and the paper's orderings against the spread."""

import math

import numpy as np

from .settings import EXPECTED, METRICS


def mean_std(values):
    """Mean and sample standard deviation (ddof=1) of finite values.

    Args:
        values: sequence of floats (NaN and None are left out).

    Returns:
        ``(mean, std, n)``; std is NaN when fewer than two values, both NaN
        when none.

    Example:
        >>> mean_std([1.0, 2.0, 3.0])
        (2.0, 1.0, 3)
    """
    x = np.array([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if len(x) == 0:
        return float("nan"), float("nan"), 0
    std = float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")
    return float(np.mean(x)), std, len(x)



def aggregate(runs, variants):
    """Mean ± std over seeds of every metric, kind and diagnostic.

    Args:
        runs: ``{variant key: {seed: read_run(...) or {"error": ...}}}``.
        variants: list of :class:`Variant` (row order).

    Returns:
        dict variant key -> {"n": seeds with results, "seeds": [...],
        "failed": [...], kind -> {metric -> (mean, std, n)},
        "diagnostics": {...}}.

    Example:
        >>> from benchmarks.ablation.settings import BY_KEY
        >>> runs = {"baseline": {0: {"metrics": {"global": {"rank1": 0.5, "rank5": 0.8,
        ...     "mAP": 0.4}}, "curves": {}, "train_seconds": 1.0}}}
        >>> aggregate(runs, [BY_KEY["baseline"]])["baseline"]["global"]["rank1"]
        (0.5, nan, 1)
    """
    out = {}
    for v in variants:
        per_seed = runs.get(v.key, {})
        ok = {s: r for s, r in per_seed.items() if "error" not in r}
        row = {"n": len(ok), "seeds": sorted(ok), "failed": sorted(s for s in per_seed
                                                                     if s not in ok)}
        for kind in ("global", "global+local"):
            vals = [r["metrics"].get(kind) for r in ok.values()]
            if not any(vals):
                continue
            row[kind] = {m: mean_std([x.get(m) if x else None for x in vals]) for m in METRICS}
            row.setdefault("values", {})[kind] = {
                m: [x.get(m) if x else None for x in vals] for m in METRICS}
        diag = {}
        for col in ("local_loss", "global_loss", "id_loss", "id_accuracy", "kl_loss",
                    "metric_mutual_loss"):
            firsts = [r["curves"][col][0] for r in ok.values() if r["curves"].get(col)]
            lasts = [r["curves"][col][-1] for r in ok.values() if r["curves"].get(col)]
            if firsts:
                diag[col] = {"first": mean_std(firsts)[0], "last": mean_std(lasts)[0]}
        diag["train_seconds"] = mean_std([r.get("train_seconds") for r in ok.values()])[0]
        row["diagnostics"] = diag
        out[v.key] = row
    return out


def compare(agg, metric="rank1", kind="global"):
    """Checks the orderings the paper reports against the seed-to-seed spread.

    A difference counts only when it is larger than the larger of the two
    variants' standard deviations.

    Args:
        agg: output of :func:`aggregate`.
        metric: ``"rank1"``, ``"rank5"`` or ``"mAP"``.
        kind: ``"global"`` or ``"global+local"``.

    Returns:
        list of dicts with ``a``, ``b``, ``relation``, ``meaning``, ``diff``,
        ``spread`` and ``verdict`` (one of ``"holds"``, ``"within spread"``,
        ``"reversed"``, ``"no spread (1 seed)"``, ``"missing"``).

    Example:
        >>> agg = {"alignedreid": {"global": {"rank1": (0.6, 0.01, 3)}},
        ...        "baseline": {"global": {"rank1": (0.5, 0.02, 3)}}}
        >>> compare(agg)[0]["verdict"]
        'holds'
    """
    out = []
    for a, b, rel, meaning in EXPECTED:
        item = {"a": a, "b": b, "relation": rel, "meaning": meaning, "metric": metric,
                "diff": float("nan"), "spread": float("nan")}
        ra, rb = agg.get(a, {}).get(kind), agg.get(b, {}).get(kind)
        if not ra or not rb or not math.isfinite(ra[metric][0]) or not math.isfinite(rb[metric][0]):
            item["verdict"] = "missing"
            out.append(item)
            continue
        diff = ra[metric][0] - rb[metric][0]
        spread = max(ra[metric][1], rb[metric][1])
        item["diff"], item["spread"] = diff, spread
        if not math.isfinite(spread):
            item["verdict"] = "no spread (1 seed)"
        elif diff > spread:
            item["verdict"] = "holds"
        elif diff < -spread:
            item["verdict"] = "reversed"
        else:
            item["verdict"] = "within spread"
        out.append(item)
    return out


def fmt_pm(mean, std, scale=100.0, digits=1):
    """``"mean ± std"`` in percent (``"n/a"`` for a missing mean).

    Args:
        mean, std: floats (fractions); std NaN prints the mean alone.
        scale: multiplier (100 for percent).
        digits: decimals.

    Returns:
        str.

    Example:
        >>> fmt_pm(0.5, 0.012)
        '50.0 ± 1.2'
    """
    if mean is None or not math.isfinite(mean):
        return "n/a"
    if std is None or not math.isfinite(std):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def num(x):
    """``x`` rounded to 5 decimals for JSON (None when missing or not finite)."""
    return None if x is None or not math.isfinite(x) else round(float(x), 5)
