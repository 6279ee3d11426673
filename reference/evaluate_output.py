"""The outputs of ``reid-evaluate``: the results table, JSON, CSV and the CMC plot.

Each writer takes the list of result dicts (:meth:`reference.ScoreResult.to_dict`)
and writes its file atomically.
"""

import csv
import io
import json
import os

from reid_common import atomic_write, atomic_write_text

CSV_FIELDS = (
    "dump",
    "distance",
    "shortlist",
    "normalize",
    "rerank",
    "k1",
    "k2",
    "lambda",
    "protocol",
    "num_query",
    "num_gallery",
    "num_valid_queries",
    "mAP",
    "mINP",
    "rank1",
    "rank5",
    "rank10",
    "seconds",
)


def format_table(results):
    """The results as a plain-text table, metrics in percent.

    Args:
        results: list of result dicts (:meth:`reference.ScoreResult.to_dict`).

    Returns:
        str (no trailing newline).

    Example:
        >>> print(format_table([]))  # doctest: +NORMALIZE_WHITESPACE
        dump  distance  rerank  protocol  query  gallery  valid  mAP  mINP  R1  R5  R10  s
    """
    header = ("dump", "distance", "rerank", "protocol", "query", "gallery", "valid",
              "mAP", "mINP", "R1", "R5", "R10", "s")
    rows = [header]
    for r in results:
        label = r["distance"]
        if r.get("shortlist") is not None:
            label += f" K={r['shortlist']}"
        if r.get("normalize"):
            label += " norm"
        rows.append(
            (
                r["dump"],
                label,
                rerank_label(r),
                r["protocol"],
                str(r["num_query"]),
                str(r["num_gallery"]),
                str(r["num_valid_queries"]),
                format_pct(r["mAP"]),
                format_pct(r["mINP"]),
                format_pct(r["rank1"]),
                format_pct(r["rank5"]),
                format_pct(r["rank10"]),
                f"{r['seconds']:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = set(range(4, len(header)))
    lines = []
    for row in rows:
        cells = [
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def rerank_label(r):
    """The table's ``rerank`` cell of a result: ``no``, or the re-ranking settings.

    Example:
        >>> rerank_label({"rerank": True, "k1": 20, "k2": 6, "lambda": 0.3})
        'k1=20 k2=6 lambda=0.3'
        >>> rerank_label({"rerank": False})
        'no'
    """
    if not r["rerank"]:
        return "no"
    return f"k1={r['k1']} k2={r['k2']} lambda={r['lambda']:g}"


def format_pct(value):
    """A fraction as a percentage with two decimals, ``-`` for None.

    Example:
        >>> format_pct(0.12345), format_pct(None)
        ('12.35', '-')
    """
    return "-" if value is None else f"{100.0 * value:.2f}"


def write_json(path, results):
    """Write the result list as JSON (atomically, fields in their order)."""
    atomic_write_text(path, json.dumps(results, indent=2) + "\n")


def write_csv(path, results):
    """Write the results as CSV, one row per evaluation, without the CMC list."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in results:
        writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in CSV_FIELDS})
    atomic_write_text(path, buf.getvalue(), newline="")


def _label(r):
    label = r["distance"]
    if r.get("shortlist") is not None:
        label += f" K={r['shortlist']}"
    if r["rerank"]:
        label += " +rerank"
    return label


def results_figure(results):
    """The CMC figure of ``--plot``: one panel, a curve per result (solid plain,
    dashed re-ranked), each legend entry with its rank-1 and mAP.

    Args:
        results: list of result dicts (:meth:`reference.ScoreResult.to_dict`).

    Returns:
        ``matplotlib.figure.Figure`` (:func:`reference.cmc_figure`).
    """
    from reference import CMCCurve, cmc_figure

    names = {r["dump"]: os.path.basename(r["dump"]) for r in results}
    if len(set(names.values())) < len(names):
        names = {d: d for d in names}
    colours = {}
    for r in results:  # a re-ranked curve in the colour of its plain twin
        colours.setdefault((r["dump"], r["distance"], r.get("shortlist")), f"C{len(colours) % 10}")
    curves = [
        CMCCurve(r["cmc"], f"{names[r['dump']]} {_label(r)}",
                 linestyle="--" if r["rerank"] else "-",
                 color=colours[(r["dump"], r["distance"], r.get("shortlist"))],
                 marker="." if len(r["cmc"]) <= 20 else None, mAP=r["mAP"])
        for r in results
    ]
    return cmc_figure([("CMC", curves)], panel_size=(7.0, 4.5))


def write_plot(path, results):
    """Plot the CMC curves of all results (:func:`results_figure`) and write it as PNG."""
    fig = results_figure(results)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
