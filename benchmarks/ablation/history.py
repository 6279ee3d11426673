"""The results page's memory: every configuration tried, the findings, and
the sections of the page that a run of the other mode leaves as they are."""

import json
import re
import time
from pathlib import Path

HISTORY_BEGIN = "<!-- ablation-history"
HISTORY_END = "ablation-history -->"
ANALYSIS_BEGIN = "<!-- analysis -->"
ANALYSIS_END = "<!-- /analysis -->"
COST_FIELDS = ("wall_seconds", "trainings", "train_wall_seconds", "train_cpu_seconds")


def _read(doc_path):
    try:
        return Path(doc_path).read_text(encoding="utf-8")
    except OSError:
        return ""


def read_history(doc_path):
    """Configurations recorded in an existing results page (oldest first).

    Example:
        >>> read_history("/nonexistent.md")
        []
    """
    m = re.search(re.escape(HISTORY_BEGIN) + r"\s*(.*?)\s*" + re.escape(HISTORY_END),
                  _read(doc_path), re.DOTALL)
    if not m:
        return []
    try:
        entries = json.loads(m.group(1))
    except ValueError:
        return []
    return entries if isinstance(entries, list) else []


def read_block(doc_path, name):
    """The text between ``<!-- name -->`` and ``<!-- /name -->`` of a page.

    Example:
        >>> read_block("/nonexistent.md", "analysis")
        ''
    """
    m = re.search(re.escape(f"<!-- {name} -->") + r"\n?(.*?)" + re.escape(f"<!-- /{name} -->"),
                  _read(doc_path), re.DOTALL)
    return m.group(1).strip() + "\n" if m and m.group(1).strip() else ""


def read_analysis(doc_path):
    """The findings section of an existing results page (kept on regeneration)."""
    return read_block(doc_path, "analysis")


def history_entry(settings, seeds, data, note, mode, wall_seconds, cost=None):
    """One "configuration tried" record.

    Args:
        settings: :class:`~benchmarks.ablation.settings.Settings`.
        seeds: seeds asked for.
        data: the ``docs/ablation.json`` content of the run.
        note: free text.
        mode: ``"full"``, ``"quick"`` or ``"partial"``.
        wall_seconds: wall time of this invocation.
        cost: ``{(variant, seed): (wall s, CPU s)}`` of the trainings run.

    Returns:
        JSON-compatible dict.

    Example:
        >>> from benchmarks.ablation.settings import Settings
        >>> e = history_entry(Settings(), [0], {"variants": {}, "claims": []}, "", "quick", 1.0)
        >>> e["design"], e["mode"]
        ('v2', 'quick')
    """
    summary = {label: [round(sum(v["rank1"]) / len(v["rank1"]), 2),
                       round(sum(v["mAP"]) / len(v["mAP"]), 2), len(v["seeds"])]
               for label, v in data["variants"].items() if v["rank1"]}
    claims = [f"{c['a']} - {c['b']} {c['metric']}: {c['diff']:+.1f} "
              f"[{c['ci95'][0]:+.1f}, {c['ci95'][1]:+.1f}]"
              for c in data["claims"] if c["method"].startswith("paired t")
              and c["ci95"][0] is not None]
    cost = cost or {}
    return {"key": settings.key(), "design": "v2", "mode": mode,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "note": note or "",
            "settings": settings.to_dict(), "description": settings.describe(),
            "seeds": list(seeds), "summary": summary, "claims_t": claims,
            "misalignment": data.get("misalignment"), "wall_seconds": round(wall_seconds),
            "trainings": len(cost), "train_wall_seconds": round(sum(c[0] for c in cost.values())),
            "train_cpu_seconds": round(sum(c[1] for c in cost.values())),
            "trained": sorted(f"{variant}/{seed}" for variant, seed in cost)}


def merge_history(history, entry):
    """Replaces the entry with the same key and mode (or appends); an empty
    note keeps the earlier one. The costs add up over invocations of one
    configuration that trained other runs (its two blocks, a resumed block);
    an invocation that trained runs trained before (a fresh work directory)
    replaces them; one that trained nothing (``--report-only``, everything
    stored) keeps them.

    Example:
        >>> merge_history([{"key": "a", "x": 1, "note": "why"}], {"key": "a", "x": 2})
        [{'key': 'a', 'x': 2, 'note': 'why'}]
        >>> old = {"key": "a", "trainings": 1, "wall_seconds": 10, "trained": ["x/0"]}
        >>> merge_history([old], {"key": "a", "trainings": 1, "wall_seconds": 5,
        ...                       "trained": ["y/0"]})[0]["wall_seconds"]
        15
        >>> merge_history([old], {"key": "a", "trainings": 1, "wall_seconds": 5,
        ...                       "trained": ["x/0"]})[0]["wall_seconds"]
        5
    """
    same = lambda h: h.get("key") == entry["key"] and h.get("mode") == entry.get("mode")
    earlier = [h for h in history if same(h)]
    if earlier and not entry.get("note") and earlier[-1].get("note"):
        entry = dict(entry, note=earlier[-1]["note"])
    if earlier and earlier[-1].get("trainings"):
        before = earlier[-1]
        if not entry.get("trainings"):
            entry = dict(entry, **{k: before[k] for k in COST_FIELDS + ("trained",)
                                   if k in before})
        elif not set(before.get("trained", ())) & set(entry.get("trained", ())):
            # other runs of the same configuration (the other block, a resumption)
            entry = dict(entry, trained=sorted({*before.get("trained", ()), *entry["trained"]}),
                         **{k: before[k] + entry.get(k, 0) for k in COST_FIELDS if k in before})
        # else: the same runs trained again (a fresh work directory): this
        # invocation's costs replace the earlier ones
    return [h for h in history if not same(h)] + [entry]


def _v1_results(h):
    """The v1 entries' global rank-1 / mAP means (an earlier, unpaired design)."""
    cells = []
    for key, row in sorted(h.get("summary", {}).items()):
        g = row.get("global")
        if g:
            cells.append(f"{key} {100 * g['rank1'][0]:.1f} / {100 * g['mAP'][0]:.1f}")
    return "; ".join(cells)


def format_history(history):
    """The "Configurations tried" table (Markdown).

    Example:
        >>> format_history([]).startswith("| #")
        True
    """
    lines = ["| # | date | design, mode | configuration | seeds | rank-1 / mAP (means, %) | "
             "paired differences, 95 % t CI | note |", "|---|---|---|---|---|---|---|---|"]
    for i, h in enumerate(history, 1):
        design = h.get("design", "v1")
        mode = h.get("mode") or ("quick" if h.get("quick") else "full")
        if design == "v2":
            res = "; ".join(f"{k} {v[0]:.1f} / {v[1]:.1f}" for k, v in h["summary"].items())
            claims = "; ".join(h.get("claims_t", [])) or "—"
        else:
            res, claims = _v1_results(h), "— (v1: mean ± std only)"
        desc = h.get("description", "").replace("|", "/")
        if h.get("trainings"):
            desc += (f" ({h['trainings']} trainings: {h['train_wall_seconds'] / 60:.1f} min "
                     f"wall, {h['train_cpu_seconds'] / 60:.1f} min CPU)")
        cells = [str(i), h.get("date", ""), f"{design}, {mode}", desc,
                 str(len(h.get("seeds", []))),
                 res or "—", claims, h.get("note", "").replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def history_block(history):
    """The hidden JSON block that keeps the history in the page."""
    return f"{HISTORY_BEGIN}\n{json.dumps(history, indent=1, sort_keys=True)}\n{HISTORY_END}"
