"""The CMC figures read through matplotlib's Figure API: integer rank ticks over
the whole computed range, the legend outside the axes, rank-1 and mAP in every
legend entry.

Rank-1 and mAP are computed here by a brute-force float64 transcription of the
Market-1501 protocol (same identity and same camera removed, AP as the mean of
precision at each true match), on distances computed by broadcasting, never by
the scoring engine or reference.evaluate.
"""

import json
import re

import numpy as np
import pytest

import reference
from reference import figures
from reference.evaluate_cli import main
from reference.evaluate_output import results_figure
from reference.figures.cmc import rank_ticks
from reference.dump import write_dump
from tests.scoring_oracles import euclidean64, make_data


def brute_force_rank1_map(data):
    """Rank-1 and mAP of the global Euclidean distance under market1501 (float64)."""
    q, g = data["query"], data["gallery"]
    dist = euclidean64(q["global"], g["global"])
    hits, aps = [], []
    for i in range(len(q["pid"])):
        keep = [j for j in range(len(g["pid"]))
                if not (g["pid"][j] == q["pid"][i] and g["camid"][j] == q["camid"][i])]
        order = sorted(keep, key=lambda j: (dist[i, j], j))
        match = [g["pid"][j] == q["pid"][i] for j in order]
        if not any(match):
            continue
        hits.append(1.0 if match[0] else 0.0)
        found, precisions = 0, []
        for rank, m in enumerate(match, 1):
            if m:
                found += 1
                precisions.append(found / rank)
        aps.append(sum(precisions) / len(precisions))
    return float(np.mean(hits)), float(np.mean(aps))


def _percent(text, key):
    return float(re.search(rf"{key} ([0-9.]+)%", text).group(1))


def _legend_outside(fig, ax):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    axes = ax.get_window_extent(renderer)
    page = fig.bbox
    inside_page = (page.x0 <= legend.x0 and legend.x1 <= page.x1 and page.y0 <= legend.y0
                   and legend.y1 <= page.y1)
    return not legend.overlaps(axes) and inside_page, legend, axes


def _check_rank_axis(ax, longest):
    ticks = ax.get_xticks()
    assert np.array_equal(ticks, np.round(ticks)) and ticks[0] == 1 and ticks[-1] <= longest
    assert len(ticks) <= 11 and ticks[-1] > longest - (ticks[-1] - ticks[-2])
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [str(int(t)) for t in ticks]
    lo, hi = ax.get_xlim()
    assert lo <= 1 and hi >= longest


@pytest.mark.parametrize("max_rank", [7, 50, 130])
def test_evaluate_plot_ticks_range_legend(tmp_path, max_rank):
    data = make_data(seed=5, g=140)
    path = tmp_path / "d.h5"
    write_dump(path, data["query"], data["gallery"], protocol="market1501")
    j = tmp_path / "r.json"
    assert main([str(path), "--max-rank", str(max_rank), "--rerank", "--k1", "6", "--k2", "3",
                 "--json", str(j), "--quiet"]) == 0
    results = json.loads(j.read_text())
    fig = results_figure(results)
    (ax,) = fig.axes
    plain, reranked = ax.lines
    assert plain.get_xdata()[-1] == max_rank == len(plain.get_xdata())
    assert plain.get_linestyle() == "-" and reranked.get_linestyle() == "--"
    _check_rank_axis(ax, max_rank)
    outside, legend, axes = _legend_outside(fig, ax)
    assert outside, (legend, axes)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    rank1, m_ap = brute_force_rank1_map(data)
    assert "+rerank" not in texts[0] and "+rerank" in texts[1]
    assert _percent(texts[0], "R1") == pytest.approx(100 * rank1, abs=0.051)
    assert _percent(texts[0], "mAP") == pytest.approx(100 * m_ap, abs=0.051)
    assert _percent(texts[1], "mAP") == pytest.approx(100 * results[1]["mAP"], abs=0.051)
    assert _percent(texts[1], "mAP") != pytest.approx(100 * m_ap, abs=0.051)


def test_rank_ticks_are_integers_and_few():
    for n in (1, 2, 9, 10, 11, 19, 20, 37, 50, 99, 100, 101, 750, 19732):
        ticks = rank_ticks(n)
        assert ticks[0] == 1 and all(isinstance(t, int) for t in ticks)
        assert ticks == sorted(set(ticks)) and ticks[-1] <= n and len(ticks) <= 11
        steps = {b - a for a, b in zip(ticks[1:], ticks[2:])}
        assert len(steps) <= 1
        step = steps.pop() if steps else 1
        assert n - ticks[-1] < step
    assert rank_ticks(300, log=True) == [1, 2, 5, 10, 20, 50, 100, 200]


def test_log_rank_axis():
    curve = figures.CMCCurve(np.linspace(0.2, 1.0, 300), "g", mAP=0.1)
    ax = figures.cmc_figure([("long", [curve])], log_rank=True).axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_xticks().tolist() == [1, 2, 5, 10, 20, 50, 100, 200]
    assert len(ax.lines[0].get_xdata()) == 300


def test_train_cmc_png_uses_the_same_figure(monkeypatch, tmp_path):
    """train.py's cmc.png: every computed rank, the legend outside, mAP in each entry."""
    evaluation = pytest.importorskip("reid_tf.evaluation")
    drawn = {}

    def capture(path, panels, **kwargs):
        drawn["fig"] = reference.cmc_figure(panels, **kwargs)
        drawn["panels"] = panels

    monkeypatch.setattr(reference, "write_cmc_figure", capture)
    rng = np.random.default_rng(0)
    metrics = {}
    for when in ("before", "after"):
        metrics[when] = {}
        for kind in ("global", "global+local"):
            cmc = np.sort(rng.uniform(0.2, 1.0, 50)).tolist()
            metrics[when][kind] = {"cmc": cmc, "mAP": float(rng.uniform(0.1, 0.6)),
                                   "rank1": cmc[0]}
    results = {"synthetic": metrics, "second": metrics}
    evaluation.plot_cmc(results, str(tmp_path / "cmc.png"))
    fig = drawn["fig"]
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert all(len(line.get_xdata()) == 50 for line in ax.lines)
        _check_rank_axis(ax, 50)
        assert _legend_outside(fig, ax)[0]
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        want = [(m["cmc"][0], m["mAP"]) for when in ("before", "after")
                for m in metrics[when].values()]
        for text, (r1, m_ap) in zip(texts, want):
            assert _percent(text, "R1") == pytest.approx(100 * r1, abs=0.051)
            assert _percent(text, "mAP") == pytest.approx(100 * m_ap, abs=0.051)
    boxes = [ax.get_legend().get_window_extent(fig.canvas.get_renderer()) for ax in fig.axes]
    for ax in fig.axes:
        for box in boxes:
            assert not box.overlaps(ax.get_window_extent(fig.canvas.get_renderer()))
