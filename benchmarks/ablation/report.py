"""Text, Markdown and JSON renderings of the results."""

import json
import math
from pathlib import Path

from .history import ANALYSIS_BEGIN, ANALYSIS_END, HISTORY_BEGIN, HISTORY_END, format_history
from .settings import BY_KEY, METRIC_NAMES, METRICS, PAPER, PAPER_NOTE
from .stats import fmt_pm, num


def format_table(agg, variants, kind="global", with_paper=True, markdown=False):
    """The results table: mean ± std (percent) of rank-1, rank-5, mAP per variant.

    Args:
        agg: output of :func:`aggregate`.
        variants: row order.
        kind: ranking scored (``"global"`` or ``"global+local"``); variants
            without that kind are left out.
        with_paper: add the paper's rank-1 and mAP columns.
        markdown: a Markdown table instead of aligned text.

    Returns:
        str (no trailing newline).

    Example:
        >>> agg = {"baseline": {"n": 1, "global": {"rank1": (0.5, float("nan"), 1),
        ...        "rank5": (0.7, float("nan"), 1), "mAP": (0.4, float("nan"), 1)}}}
        >>> print(format_table(agg, [BY_KEY["baseline"]], with_paper=False))
        variant  | table | seeds | rank-1 (%) | rank-5 (%) | mAP (%)
        ---------+-------+-------+------------+------------+--------
        Baseline | 1     | 1     | 50.0       | 70.0       | 40.0
    """
    header = ["variant", "table", "seeds"] + [f"{METRIC_NAMES[m]} (%)" for m in METRICS]
    if with_paper:
        header += ["paper rank-1", "paper mAP"]
    rows = []
    for v in variants:
        row = agg.get(v.key)
        if not row or kind not in row:
            continue
        cells = [v.label, str(v.table), str(row["n"])]
        cells += [fmt_pm(*row[kind][m][:2]) for m in METRICS]
        if with_paper:
            for m in ("rank1", "mAP"):
                p = PAPER.get(v.key, {}).get(m)
                cells.append("omitted" if p is None else f"{p:.1f}")
        rows.append(cells)
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    line = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    sep = "-+-".join("-" * w for w in widths)
    return "\n".join([line(header), sep] + [line(r) for r in rows])


def format_comparisons(comparisons, markdown=False):
    """The expected orderings and whether they hold beyond the spread.

    Args:
        comparisons: concatenated outputs of :func:`compare`.
        markdown: Markdown bullet list instead of plain lines.

    Returns:
        str.

    Example:
        >>> format_comparisons([{"a": "alignedreid", "b": "baseline", "relation": ">",
        ...     "metric": "rank1", "diff": 0.1, "spread": 0.01, "verdict": "holds",
        ...     "meaning": "m"}])
        'AlignedReID > Baseline (rank-1): difference +10.0, spread 1.0 -> holds'
    """
    lines = []
    for c in comparisons:
        diff = "n/a" if not math.isfinite(c["diff"]) else f"{100 * c['diff']:+.1f}"
        spread = "n/a" if not math.isfinite(c["spread"]) else f"{100 * c['spread']:.1f}"
        text = (f"{BY_KEY[c['a']].label} {c['relation']} {BY_KEY[c['b']].label} "
                f"({METRIC_NAMES[c['metric']]}): difference {diff}, spread {spread} "
                f"-> {c['verdict']}")
        lines.append(("- " if markdown else "") + text)
    return "\n".join(lines)


def format_diagnostics(agg, variants, markdown=True):
    """Training diagnostics per variant (means over seeds).

    Args:
        agg: output of :func:`aggregate`.
        variants: row order.
        markdown: Markdown table.

    Returns:
        str.

    Example:
        >>> format_diagnostics({}, [])  # doctest: +ELLIPSIS
        '| variant | local loss ...'
    """
    header = ["variant", "local loss (first -> last epoch)", "global loss", "ID loss",
              "ID accuracy (last)", "train s/run"]

    def fl(d, col, digits=3):
        x = d.get(col)
        if not x:
            return "—"
        return f"{x['first']:.{digits}f} -> {x['last']:.{digits}f}"

    rows = []
    for v in variants:
        row = agg.get(v.key)
        if not row or not row["n"]:
            continue
        d = row["diagnostics"]
        acc = d.get("id_accuracy")
        secs = d.get("train_seconds", float("nan"))
        rows.append([v.label, fl(d, "local_loss"), fl(d, "global_loss"), fl(d, "id_loss"),
                     "—" if not acc else f"{acc['last']:.2f}",
                     "—" if not math.isfinite(secs) else f"{secs:.0f}"])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)



def render_doc(*, settings, seeds, command, agg, variants, comparisons, history, plot_name,
               analysis, data_info):
    """The Markdown results page.

    Args:
        settings: :class:`~benchmarks.ablation.settings.Settings`.
        seeds: seeds.
        command: the command line that reproduces the page.
        agg: output of :func:`aggregate`.
        variants: rows.
        comparisons: :func:`compare` items.
        history: configurations tried (entries).
        plot_name: file name of the plot, relative to the page.
        analysis: Markdown text of findings (may be empty).
        data_info: dict with dataset sizes (may be empty).

    Returns:
        str.

    Example:
        >>> from benchmarks.ablation.settings import Settings
        >>> "Ablations" in render_doc(settings=Settings(), seeds=[0], command="c", agg={},
        ...     variants=[], comparisons=[], history=[], plot_name="p.png", analysis="",
        ...     data_info={})
        True
    """
    knobs = settings.data_knobs()
    knob_rows = "\n".join(f"| `{k}` | {v} |" for k, v in sorted(knobs.items()))
    size = ""
    if data_info:
        size = (f"\nPrepared: {data_info.get('train_images', '?')} training images of "
                f"{data_info.get('train_ids', '?')} identities; test: "
                f"{data_info.get('query', '?')} queries, {data_info.get('gallery', '?')} gallery "
                "images (Market-1501 protocol; distractors kept, junk dropped).\n")
    variant_rows = "\n".join(
        f"| {v.label} | {v.table} | `{' '.join(settings.variant_flags(v)) or '(none)'}` | "
        f"{v.description} |" for v in variants)
    schedule = " ".join(settings.schedule_flags())
    return f"""# Ablations: the paper's Tables 1 and 2 on the synthetic misalignment data

`python -m benchmarks.ablation` trains the AlignedReID ablation variants with
`train.py` on the built-in synthetic dataset (`data_prep.synthetic`, see
[synthetic.md](synthetic.md)) and scores them on its test split. Every variant
uses the same prepared data, backbone, schedule and seeds; only the loss (and,
for Table 2, the peer network) differs. As in the paper, the main table uses
the **global feature only** at test time.

```
{command}
```

Runs are resumable: each (variant, seed) is a `train.py` run directory under
`--work-dir` (default `runs/ablation`), a finished one (its `status.json` says
so and `metrics.json` exists) is reused and an interrupted one resumes from its checkpoint. `--report-only`
rebuilds this page from finished runs, `--json PATH` writes the results as JSON (`-`: stdout).

## Settings

Seeds: {", ".join(str(s) for s in seeds)} (weights, batch sampling and augmentation; the data are the same).

Training (every variant): `train.py {schedule}`

| variant | paper table | extra `train.py` flags | what it trains |
|---|---|---|---|
{variant_rows}

Synthetic data (`data_prep.synthetic.generate` knobs; the rest at their defaults):

| knob | value |
|---|---|
{knob_rows}
{size}
## Results (global feature, mean ± std over seeds, %)

{format_table(agg, variants, markdown=True)}

Paper columns: AlignedReID paper (Zhang et al. 2017), Market-1501, for
reference only (ResNet-50 scale networks on real data; not comparable in
absolute terms). {PAPER_NOTE if all(p is None for v in PAPER.values() for p in v.values()) else ""}

With global + aligned local distance at test time (variants trained with the
aligned local branch):

{format_table(agg, [v for v in variants if v.key != "gl_baseline"], kind="global+local", with_paper=False, markdown=True)}

![ablation]({plot_name})

### Expected orderings (paper) against the seed-to-seed spread

A difference "holds" only when it is larger than the larger standard deviation
of the two variants.

{format_comparisons(comparisons, markdown=True)}

### Training diagnostics (means over seeds; per-epoch values from each run's `log.csv`)

For mutual-learning variants the losses are those of the evaluated network
(network 1).

{format_diagnostics(agg, variants)}

{ANALYSIS_BEGIN}
{analysis}{ANALYSIS_END}

## Configurations tried

Every configuration this page has been generated from, in order (global
feature, rank-1 / mAP in %, mean ± std over the seeds).

{format_history(history)}

{HISTORY_BEGIN}
{json.dumps(history, indent=1, sort_keys=True)}
{HISTORY_END}
"""


def dataset_info(prepared):
    """Image and identity counts of a prepared dataset.

    Args:
        prepared: path holding ``manifest.jsonl`` (or None).

    Returns:
        dict (empty when unavailable).

    Example:
        >>> dataset_info(None)
        {}
    """
    if prepared is None or not (Path(prepared) / "manifest.jsonl").is_file():
        return {}
    counts = {"train": 0, "query": 0, "gallery": 0}
    ids = set()
    with open(Path(prepared) / "manifest.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            counts[row["split"]] = counts.get(row["split"], 0) + 1
            if row["split"] == "train":
                ids.add(row["pid"])
    return {"train_images": counts["train"], "train_ids": len(ids), "query": counts["query"],
            "gallery": counts["gallery"]}


def to_json(settings, seeds, agg, comparisons, result):
    """Machine-readable results (``--json``).

    Args:
        settings, seeds, agg, comparisons: as in :func:`render_doc`.
        result: output of :func:`run_benchmark`.

    Returns:
        JSON-compatible dict.

    Example:
        >>> from benchmarks.ablation.settings import Settings
        >>> to_json(Settings(), [0], {}, [], {"config_dir": "x", "runs": {}})["seeds"]
        [0]
    """
    variants = {}
    for key, row in agg.items():
        variants[key] = {"label": BY_KEY[key].label, "table": BY_KEY[key].table,
                         "seeds": row["seeds"], "failed": row["failed"],
                         "diagnostics": {k: v for k, v in row["diagnostics"].items()}}
        for kind in ("global", "global+local"):
            if row.get(kind):
                variants[key][kind] = {m: {"mean": num(row[kind][m][0]),
                                           "std": num(row[kind][m][1]), "n": row[kind][m][2]}
                                       for m in METRICS}
        variants[key]["per_seed"] = {
            str(s): r.get("metrics", {"error": r.get("error")})
            for s, r in result["runs"].get(key, {}).items()}
    return {"settings": settings.to_dict(), "seeds": list(seeds), "config_dir": result["config_dir"],
            "variants": variants, "paper": PAPER,
            "comparisons": [dict(c, diff=num(c["diff"]), spread=num(c["spread"]))
                            for c in comparisons]}
