"""The study's result: each annotator's rank-1 against the model's, as in the paper's Table 6.

An annotator's rank-1 is the fraction of their answers that picked a true
match, with an exact binomial 95 % interval; annotators are ranked by it, and
the best one who answered every query is "human performance" (section 5 of the
paper). The model's rank-1 on the same queries is given over the full valid
gallery and within the candidate sets (its pick there is the candidate at the
smallest distance), without and with re-ranking.
"""

from dataclasses import asdict, dataclass

import numpy as np

from human_study.stats import binomial_ci
from human_study.store import Store


@dataclass
class AnnotatorResult:
    """One annotator's score."""

    name: str
    answered: int
    correct: int
    rank1: object  # float in [0, 1], None without answers
    ci95: list
    complete: bool


@dataclass
class StudyReport:
    """Every number of a study's report (see :func:`study_report`)."""

    study: dict
    total: int
    annotators: list
    human: object
    model: dict

    def to_dict(self):
        """The JSON of ``reid-human report --json``."""
        fields = ("name", "answered", "correct", "rank1", "ci95")
        return {
            "annotators": [{k: getattr(a, k) for k in fields} for a in self.annotators],
            "model": dict(self.model),
            "human_performance": None if self.human is None else asdict(self.human),
            "study": dict(self.study),
        }


def _model_pick_correct(rows, key):
    """Whether the candidate at the smallest ``key`` distance (ties: gallery index) matches."""
    best = min(rows, key=lambda r: (r[key], r["gallery_index"]))
    return bool(best["is_match"])


def study_report(path):
    """Compute the report of a study file.

    Args:
        path: the study's ``.sqlite`` file.

    Returns:
        :class:`StudyReport`.
    """
    store = Store(path)
    try:
        queries = store.query_rows()
        total = len(queries)
        per_name = {name: [0, 0] for _, name in store.annotators()}
        for name, _, is_match in store.answer_table():
            per_name[name][0] += 1
            per_name[name][1] += int(is_match)
        results = [
            AnnotatorResult(name=name, answered=n, correct=c,
                            rank1=(c / n) if n else None, ci95=binomial_ci(c, n),
                            complete=n == total)
            for name, (n, c) in per_name.items()
        ]
        results.sort(key=lambda a: (a.rank1 is None, -(a.rank1 or 0.0), -a.answered, a.name))
        answered = [a for a in results if a.answered]
        complete = [a for a in answered if a.complete]
        human = (complete or answered or [None])[0]
        in_plain = [_model_pick_correct(store.candidate_rows(q[0]), "distance") for q in queries]
        in_rerank = [_model_pick_correct(store.candidate_rows(q[0]), "distance_rerank")
                     for q in queries]
        first = np.array([q[2] for q in queries])
        first_rr = np.array([q[3] for q in queries])
        meta = store.meta
    finally:
        store.close()
    mean = lambda v: float(np.mean(v)) if len(v) else None  # noqa: E731
    model = {
        "features": meta.get("features", ""),
        "distance": meta.get("distance"),
        "candidates_ranked_by": "re-ranked" if meta.get("rerank") == "1" else "plain",
        "queries": total,
        "rank1_full_gallery": mean(first == 1),
        "rank1_full_gallery_rerank": mean(first_rr == 1),
        "rank1_candidates": mean(in_plain),
        "rank1_candidates_rerank": mean(in_rerank),
    }
    study = {k: meta.get(k) for k in ("protocol", "dataset", "candidates", "seed", "created")}
    study["queries"] = total
    return StudyReport(study=study, total=total, annotators=results, human=human, model=model)


def _pct(value):
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def format_report(report):
    """The report as text (percent), annotators ranked as in Table 6."""
    s, m = report.study, report.model
    lines = [
        f"study: {s['queries']} queries, {s['candidates']} candidates each, protocol "
        f"{s['protocol']}, dataset {s['dataset'] or '-'}",
        f"model: {m['features'] or '-'} ({m['distance']}; candidates from the "
        f"{m['candidates_ranked_by']} ranking)",
        "",
        f"{'rank':>4}  {'annotator':<20} {'answered':>8} {'correct':>7} {'rank-1':>7}  95% CI",
    ]
    for i, a in enumerate(report.annotators, 1):
        ci = f"[{100 * a.ci95[0]:.1f}, {100 * a.ci95[1]:.1f}]" if a.answered else "-"
        flag = "" if a.complete else "  (unfinished)"
        lines.append(f"{i:>4}  {a.name[:20]:<20} {a.answered:>8} {a.correct:>7} "
                     f"{_pct(a.rank1):>7}  {ci}{flag}")
    if not report.annotators:
        lines.append("      (no annotators)")
    h = report.human
    lines.append("")
    lines.append("human performance (best annotator): "
                 + ("-" if h is None else f"{_pct(h.rank1).strip()} ({h.name}"
                    + ("" if h.complete else ", unfinished") + ")"))
    lines.append(f"model rank-1, full gallery:    {_pct(m['rank1_full_gallery']).strip()}"
                 f"   re-ranked: {_pct(m['rank1_full_gallery_rerank']).strip()}")
    lines.append(f"model rank-1, candidate sets:  {_pct(m['rank1_candidates']).strip()}"
                 f"   re-ranked: {_pct(m['rank1_candidates_rerank']).strip()}")
    return "\n".join(lines)


def report_figure(report):
    """Table 6 as a bar plot: each annotator's rank-1 with its 95 % interval, the model as lines.

    Returns:
        ``matplotlib.figure.Figure`` (object API, no pyplot).
    """
    from matplotlib.figure import Figure

    people = [a for a in report.annotators if a.answered]
    fig = Figure(figsize=(max(4.5, 1.0 + 0.8 * len(people)), 3.6), dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(people))
    heights = [100 * a.rank1 for a in people]
    err = np.array([[100 * (a.rank1 - a.ci95[0]), 100 * (a.ci95[1] - a.rank1)] for a in people]).T
    if people:
        ax.bar(x, heights, color="#7f9cd9", edgecolor="#2f5bd3", width=0.6,
               yerr=err, capsize=4, ecolor="#333333", label="annotators (95 % CI)")
    styles = (("rank1_full_gallery_rerank", "model, re-ranked", "#c0392b", "-"),
              ("rank1_full_gallery", "model", "#c0392b", "--"))
    for key, label, colour, style in styles:
        value = report.model.get(key)
        if value is not None:
            ax.axhline(100 * value, color=colour, linestyle=style, linewidth=1.5,
                       label=f"{label} ({100 * value:.1f}%)")
    ax.set_xticks(x)
    ax.set_xticklabels([a.name for a in people], rotation=30 if len(people) > 5 else 0,
                       ha="right" if len(people) > 5 else "center")
    ax.set_ylabel("rank-1 (%)")
    low = min([h for h in heights] + [100 * (report.model.get("rank1_full_gallery") or 1)])
    ax.set_ylim(max(0.0, min(low - 15, 80.0)), 100.5)
    ax.set_title(f"Human vs model rank-1 ({report.total} queries)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def write_report_plot(report, path):
    """Write :func:`report_figure` to a PNG atomically; return ``path``."""
    from reid_common import atomic_write

    fig = report_figure(report)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
