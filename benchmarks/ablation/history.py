"""The results page's memory: configurations tried and the findings section."""

import json
import re
import time
from pathlib import Path

from .settings import BY_KEY, VARIANT_KEYS
from .stats import fmt_pm, num

HISTORY_BEGIN = "<!-- ablation-history"
HISTORY_END = "ablation-history -->"
ANALYSIS_BEGIN = "<!-- analysis -->"
ANALYSIS_END = "<!-- /analysis -->"


def read_history(doc_path):
    """Configurations recorded in an existing results page.

    The page keeps them in a JSON block inside an HTML comment, so that a
    regenerated page still lists every configuration tried.

    Args:
        doc_path: path of ``docs/ablation.md`` (may not exist).

    Returns:
        list of dicts (oldest first).

    Example:
        >>> read_history("/nonexistent.md")
        []
    """
    try:
        text = Path(doc_path).read_text(encoding="utf-8")
    except OSError:
        return []
    m = re.search(re.escape(HISTORY_BEGIN) + r"\s*(.*?)\s*" + re.escape(HISTORY_END), text, re.DOTALL)
    if not m:
        return []
    try:
        entries = json.loads(m.group(1))
    except ValueError:
        return []
    return entries if isinstance(entries, list) else []


def read_analysis(doc_path):
    """The findings section of an existing results page (kept on regeneration).

    Args:
        doc_path: path of the page (may not exist).

    Returns:
        str (empty when there is none).

    Example:
        >>> read_analysis("/nonexistent.md")
        ''
    """
    try:
        text = Path(doc_path).read_text(encoding="utf-8")
    except OSError:
        return ""
    m = re.search(re.escape(ANALYSIS_BEGIN) + r"\n?(.*?)" + re.escape(ANALYSIS_END), text, re.DOTALL)
    return m.group(1).strip() + "\n" if m and m.group(1).strip() else ""


def history_entry(settings, seeds, agg, comparisons, note, quick):
    """One "configuration tried" record.

    Args:
        settings: :class:`~benchmarks.ablation.settings.Settings`.
        seeds: seeds asked for.
        agg: output of :func:`aggregate`.
        comparisons: list of :func:`compare` items.
        note: free text (why this configuration was tried).
        quick: whether this was a ``--quick`` run.

    Returns:
        JSON-compatible dict.

    Example:
        >>> from benchmarks.ablation.settings import Settings
        >>> history_entry(Settings(), [0], {}, [], "", True)["key"] == Settings().key()
        True
    """
    summary = {}
    for key, row in agg.items():
        if not row.get("global"):
            continue
        summary[key] = {"n": row["n"]}
        for kind in ("global", "global+local"):
            if row.get(kind):
                summary[key][kind] = {m: [num(row[kind][m][0]), num(row[kind][m][1])]
                                      for m in ("rank1", "mAP")}
        loc = row["diagnostics"].get("local_loss")
        if loc:
            summary[key]["local_loss"] = [num(loc["first"]), num(loc["last"])]
    return {
        "key": settings.key(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": bool(quick),
        "note": note or "",
        "settings": settings.to_dict(),
        "description": settings.describe(),
        "seeds": list(seeds),
        "summary": summary,
        "verdicts": [{"a": c["a"], "b": c["b"], "metric": c["metric"], "verdict": c["verdict"],
                      "diff": num(c["diff"]), "spread": num(c["spread"])} for c in comparisons],
    }


def merge_history(history, entry):
    """Replaces the entry with the same key (or appends).

    Args:
        history: list of entries.
        entry: new entry.

    Returns:
        new list.

    Example:
        >>> merge_history([{"key": "a", "x": 1}], {"key": "a", "x": 2})
        [{'key': 'a', 'x': 2}]
    """
    out = [h for h in history if h.get("key") != entry["key"]]
    keep_note = [h.get("note") for h in history if h.get("key") == entry["key"] and h.get("note")]
    if keep_note and not entry.get("note"):
        entry = dict(entry, note=keep_note[0])
    return out + [entry]


def format_history(history):
    """The "Configurations tried" table.

    Args:
        history: list of entries.

    Returns:
        str (Markdown).

    Example:
        >>> format_history([]).startswith("| #")
        True
    """
    header = ["#", "date", "mode", "configuration", "seeds"] + \
        [f"{BY_KEY[k].label} r1 / mAP" for k in VARIANT_KEYS] + \
        ["local loss, first -> last epoch (GL-Baseline; AlignedReID)", "orderings (rank-1)",
         "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for i, h in enumerate(history, 1):
        cells = [str(i), h.get("date", ""), "quick" if h.get("quick") else "full",
                 h.get("description", "").replace("|", "/"), str(len(h.get("seeds", [])))]
        for k in VARIANT_KEYS:
            s = h.get("summary", {}).get(k, {}).get("global")
            if not s:
                cells.append("—")
                continue
            r1, mp = s["rank1"], s["mAP"]
            cells.append(f"{fmt_pm(r1[0], r1[1] if r1[1] is not None else float('nan'))} / "
                         f"{fmt_pm(mp[0], mp[1] if mp[1] is not None else float('nan'))}")
        losses = []
        for k in ("gl_baseline", "alignedreid"):
            loc = h.get("summary", {}).get(k, {}).get("local_loss")
            losses.append("—" if not loc else f"{loc[0]:.3f} -> {loc[1]:.3f}")
        cells.append("; ".join(losses))
        verdicts = [f"{BY_KEY[v['a']].label} vs {BY_KEY[v['b']].label}: {v['verdict']}"
                    for v in h.get("verdicts", []) if v.get("metric") == "rank1"]
        cells.append("; ".join(verdicts) or "—")
        cells.append(h.get("note", "").replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
