"""``docs/ablation.json`` and the Markdown results page."""

import json
import math

import numpy as np

from .settings import BY_KEY, CLAIMS, METRIC_NAMES, METRICS, PAPER
from .stats import paired_bootstrap, paired_t

T_METHOD = "paired t over seeds"
BOOT_METHOD = "paired bootstrap over test identities"


def _r(x, digits=3):
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def _per_query(run, metric):
    key = "rank1_hit" if metric == "rank1" else "AP"
    return [np.nan if v is None else float(v) for v in run[key]]


def claims(runs, *, resamples=2000, seed=0):
    """The paired differences of :data:`CLAIMS` with both confidence intervals.

    Args:
        runs: ``{variant key: {seed: run results}}`` (see ``results.run_results``).
        resamples: bootstrap resamples.
        seed: seed of the bootstrap draws.

    Returns:
        list of dicts ``a``, ``b`` (labels), ``metric``, ``diff``, ``ci95``
        (percent points), ``method``, ``seeds``; claims whose two variants
        share fewer than two seeds are left out.
    """
    out = []
    for a, b, _ in CLAIMS:
        ra, rb = runs.get(a, {}), runs.get(b, {})
        seeds = sorted(set(ra) & set(rb))
        if len(seeds) < 2:
            continue
        for metric in METRICS:
            diff, ci, n = paired_t([ra[s][metric] for s in seeds], [rb[s][metric] for s in seeds])
            item = {"a": BY_KEY[a].label, "b": BY_KEY[b].label, "metric": metric}
            out.append(dict(item, diff=_r(diff), ci95=[_r(ci[0]), _r(ci[1])], method=T_METHOD,
                            seeds=seeds))
            pids = ra[seeds[0]]["query_pid"]
            qa = [_per_query(ra[s], metric) for s in seeds]
            qb = [_per_query(rb[s], metric) for s in seeds]
            bdiff, bci = paired_bootstrap(qa, qb, pids, resamples=resamples, seed=seed)
            out.append(dict(item, diff=_r(100 * bdiff), ci95=[_r(100 * bci[0]), _r(100 * bci[1])],
                            method=BOOT_METHOD, seeds=seeds))
    return out


def ablation_json(runs, variants, misalignment, resamples=2000):
    """``docs/ablation.json``: per-seed results, the test set, the
    misalignment and the claims (rank-1 and mAP in percent).

    Example:
        >>> d = ablation_json({}, [], {"mean_offset_stripes": 1.0, "share_ge_1_stripe": 0.5,
        ...                           "share_ge_2_stripes": 0.1})
        >>> sorted(d)
        ['claims', 'misalignment', 'test', 'variants']
    """
    out = {}
    test = {"queries": None, "gallery": None}
    for v in variants:
        per = runs.get(v.key, {})
        if not per:
            continue
        seeds = sorted(per)
        out[v.label] = {"seeds": seeds, "rank1": [_r(per[s]["rank1"]) for s in seeds],
                        "mAP": [_r(per[s]["mAP"]) for s in seeds]}
        first = per[seeds[0]]
        test = {"queries": first["num_query"], "gallery": first["num_gallery"]}
    items = [{k: c[k] for k in ("a", "b", "metric", "diff", "ci95", "method")}
             for c in claims(runs, resamples=resamples)]
    return {"variants": out, "test": test,
            "misalignment": {k: _r(v, 4) for k, v in misalignment.items()}, "claims": items}


def _mean_sd(values):
    x = np.asarray([v for v in values if v is not None], np.float64)
    if len(x) == 0:
        return "—"
    if len(x) == 1:
        return f"{x[0]:.1f}"
    return f"{x.mean():.1f} ± {x.std(ddof=1):.1f}"


def results_table(data, variants):
    """Markdown: mean ± sd over seeds and the per-seed values, the paper beside."""
    lines = ["| variant | seeds | rank-1 (%) | mAP (%) | per seed rank-1 | per seed mAP | "
             "paper Market-1501 rank-1 / mAP (ResNet-50; ResNet50-X) |",
             "|---|---:|---:|---:|---|---|---|"]
    for v in variants:
        row = data["variants"].get(v.label)
        if not row:
            continue
        paper = PAPER.get(v.label.split(" (")[0]) if v.mutual != "rescaled" else None
        ptext = "—" if not paper else "; ".join(
            f"{r1:.1f} / {mp:.1f}" for mp, r1 in paper.values())
        lines.append(f"| {v.label} | {len(row['seeds'])} | {_mean_sd(row['rank1'])} | "
                     f"{_mean_sd(row['mAP'])} | {', '.join(f'{x:.1f}' for x in row['rank1'])} | "
                     f"{', '.join(f'{x:.1f}' for x in row['mAP'])} | {ptext} |")
    return "\n".join(lines)


def paper_diff(a, b, metric):
    """The paper's difference a - b on Market-1501 (ResNet-50; ResNet50-X)."""
    pa, pb = PAPER.get(a), PAPER.get(b)
    if not pa or not pb:
        return "—"
    i = 1 if metric == "rank1" else 0
    return "; ".join(f"{pa[k][i] - pb[k][i]:+.1f}" for k in pa)


def claims_table(items):
    """Markdown: each claim with its two 95 % intervals and the paper's difference."""
    lines = ["| a - b | metric | diff (points) | 95 % CI, paired t over seeds | "
             "95 % CI, paired bootstrap over test identities | paper (ResNet-50; ResNet50-X) |",
             "|---|---|---:|---|---|---|"]
    grouped = {}
    for c in items:
        grouped.setdefault((c["a"], c["b"], c["metric"]), {})[c["method"]] = c
    for (a, b, metric), by in grouped.items():
        t, boot = by.get(T_METHOD), by.get(BOOT_METHOD)
        ci = lambda c: "—" if not c or c["ci95"][0] is None else \
            f"[{c['ci95'][0]:+.1f}, {c['ci95'][1]:+.1f}]"
        diff = (t or boot)["diff"]
        lines.append(f"| {a} - {b} | {METRIC_NAMES[metric]} | {diff:+.1f} | {ci(t)} | "
                     f"{ci(boot)} | {paper_diff(a, b, metric)} |")
    return "\n".join(lines)


def checks_table(runs, variants):
    """Markdown: the no-training check (local-only ranking of the saved
    features, aligned against unaligned distance) and global + local."""
    lines = ["| variant | local only, aligned: rank-1 / mAP | local only, unaligned: rank-1 / "
             "mAP | aligned - unaligned rank-1 | global + aligned local: rank-1 / mAP |",
             "|---|---|---|---:|---|"]
    for v in variants:
        per = [r for r in runs.get(v.key, {}).values() if r.get("local_check")]
        if not per:
            continue
        m = lambda kind, k: float(np.mean([r["local_check"][kind][k] for r in per]))
        gl = [r["global_local"] for r in per if r.get("global_local")]
        gtext = "—" if not gl else (f"{np.mean([g['rank1'] for g in gl]):.1f} / "
                                    f"{np.mean([g['mAP'] for g in gl]):.1f}")
        lines.append(f"| {v.label} | {m('aligned', 'rank1'):.1f} / {m('aligned', 'mAP'):.1f} | "
                     f"{m('unaligned', 'rank1'):.1f} / {m('unaligned', 'mAP'):.1f} | "
                     f"{m('aligned', 'rank1') - m('unaligned', 'rank1'):+.1f} | {gtext} |")
    return "\n".join(lines)


def diagnostics_table(runs, variants):
    """Markdown: loss curves (first -> last epoch), peer results, the median
    training time (robust to a run slowed down by other jobs)."""
    lines = ["| variant | local loss | global loss | ID loss | KL / metric mutual loss | "
             "peer rank-1 / mAP | train s/run (median) |", "|---|---|---|---|---|---|---:|"]
    for v in variants:
        per = list(runs.get(v.key, {}).values())
        if not per:
            continue

        def curve(*cols):
            for col in cols:
                vals = [r["curves"][col] for r in per if col in r.get("curves", {})]
                if vals:
                    a, b = np.mean(vals, axis=0)
                    return f"{a:.3f} -> {b:.3f}"
            return "—"

        peers = [r["peer"] for r in per if r.get("peer")]
        ptext = "—" if not peers else (f"{np.mean([p['rank1'] for p in peers]):.1f} / "
                                       f"{np.mean([p['mAP'] for p in peers]):.1f}")
        mutual = "—" if not v.mutual else f"{curve('kl_loss')}; {curve('metric_mutual_loss')}"
        lines.append(f"| {v.label} | {curve('local_loss', 'net1_local_loss')} | "
                     f"{curve('global_loss', 'net1_global_loss')} | "
                     f"{curve('id_loss', 'net1_id_loss')} | {mutual} | {ptext} | "
                     f"{np.median([r['train_seconds'] for r in per]):.0f} |")
    return "\n".join(lines)


def shares_text(shares):
    """Markdown lines on the measured gradient shares (or a note when not measured)."""
    if not shares:
        return "Not measured in these runs (no rescaled arm)."
    p, r = shares["shares"]["paper"], shares["shares"]["rescaled"]
    w = shares["rescaled_weights"]
    return (f"Measured on network 1 at its pretrained start (seed {shares['seed']}), "
            f"{shares['batches']} training batches; share = weight x |gradient of the mutual "
            f"term| / |gradient of the own loss beside it| (KL vs ID loss, metric mutual vs "
            f"global TriHard), over all of network 1's trainable variables.\n\n"
            f"| arm | KL weight | metric weight | KL share of the ID-loss gradient | "
            f"metric-mutual share of the TriHard gradient |\n|---|---:|---:|---:|---:|\n"
            f"| paper's weights | {shares['paper_weights'][0]:g} | "
            f"{shares['paper_weights'][1]:g} | {100 * p['kl']:.3g} % | "
            f"{100 * p['metric']:.3g} % |\n"
            f"| rescaled (target {100 * shares['target_share']:g} %) | {w[0]:.4g} | {w[1]:.4g} | "
            f"{100 * r['kl']:.3g} % | {100 * r['metric']:.3g} % |\n\n"
            f"The rescaled weights are calibrated on other batches than those the shares are "
            f"measured on.")


def to_markdown_json(data):
    """``docs/ablation.json``'s text."""
    return json.dumps(data, indent=1, sort_keys=True) + "\n"
