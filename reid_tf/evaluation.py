"""Features -> ReID metrics with the ``reference`` scoring engine.

Three rankings are scored for every test set, each by :func:`reference.score`
on one shared :class:`reference.DistanceCache`:

- ``global``: Euclidean distance of the global features;
- ``global+local``: global distance plus the aligned local distance
  (shortest path over the stripes). For large test sets (more than
  :data:`DENSE_LOCAL_PAIRS` query-gallery pairs) the local term is computed
  only for the :data:`LOCAL_SHORTLIST` nearest gallery items of each query by
  global distance; the others get its upper bound ``Hq + Hg - 1`` (the number
  of steps of a path, each adding a part distance below 1), so they rank
  behind the shortlist in their global order (as ``evaluate.py --shortlist``);
- ``re-ranked``: k-reciprocal re-ranking (Zhong et al. 2017) of the global
  distance, as the paper keeps only the global feature at test time.

Features are L2-normalised first when the model was trained with
``--normalize-features`` (the distances then match the training loss).

Also here: the before/after table printed by ``train.py`` and the CMC plot.
"""

import math

import numpy as np

KINDS = ("global", "global+local", "re-ranked")
RANKS = (1, 5, 10)
DENSE_LOCAL_PAIRS = 20_000_000
LOCAL_SHORTLIST = 200
_DISTANCE = {"global": "global", "global+local": "global+local", "re-ranked": "global"}


def _shortlist(num_query, num_gallery):
    """None (every local pair) up to :data:`DENSE_LOCAL_PAIRS` pairs, else the shortlist K."""
    return None if num_query * num_gallery <= DENSE_LOCAL_PAIRS else LOCAL_SHORTLIST


def _rerank(rerank, num_query, num_gallery):
    """``(k1, k2, lambda)`` as a ``RerankParams``, k1 at most Q + G - 1 and k2 at most k1."""
    from reference import RerankParams

    k1, k2, lam = rerank
    k1 = min(int(k1), num_query + num_gallery - 1)
    return RerankParams(k1=k1, k2=min(int(k2), k1), lambda_value=float(lam))


def _plan(query, gallery, kinds):
    """The requested kinds that can be scored, in :data:`KINDS` order."""
    has_local = "local" in query and "local" in gallery
    return [kind for kind in KINDS if kind in kinds and (kind != "global+local" or has_local)]


def distance_matrices(query, gallery, *, kinds=KINDS, rerank=(20, 6, 0.3)):
    """Query-gallery distance matrices of the requested kinds.

    Args:
        query: dict with ``"global"`` [Q, C] and optionally ``"local"``
            [Q, H, c] (already normalised if wanted).
        gallery: the same for G gallery items.
        kinds: subset of :data:`KINDS`; ``global+local`` is skipped when
            there are no local features.
        rerank: ``(k1, k2, lambda)`` of the re-ranking.

    Returns:
        dict kind -> [Q, G] float32.

    Example:
        >>> q = {"global": np.eye(2, dtype=np.float32)}
        >>> distance_matrices(q, q, kinds=("global",))["global"].shape
        (2, 2)
    """
    from reference import DistanceCache, ranking_matrix

    num_q, num_g = len(query["global"]), len(gallery["global"])
    cache = DistanceCache(query, gallery, shortlist=_shortlist(num_q, num_g))
    return {
        kind: ranking_matrix(cache, _DISTANCE[kind],
                             rerank=_rerank(rerank, num_q, num_g) if kind == "re-ranked" else None)
        for kind in _plan(query, gallery, kinds)
    }


def _summary(result):
    cmc = np.asarray(result.cmc, np.float64)
    out = {f"rank{r}": float(cmc[min(r, len(cmc)) - 1]) for r in RANKS}
    out["mAP"] = float(result.mAP)
    out["mINP"] = float(result.mINP)
    out["num_valid_queries"] = int(result.num_valid_queries)
    out["cmc"] = [float(x) for x in cmc]
    return out


def evaluate_features(query, gallery, *, protocol, gallery_lists=None, normalize=False,
                      kinds=KINDS, rerank=(20, 6, 0.3), max_rank=50, seed=0):
    """Scores query/gallery features with the reference metrics.

    Args:
        query: dict with ``global``, optional ``local``, ``pid``, ``camid``.
        gallery: the same for the gallery.
        protocol: ``"market1501"``, ``"cuhk03"`` or ``"cuhk-sysu"``.
        gallery_lists: per-query gallery index arrays (CUHK-SYSU) or None.
        normalize: L2-normalise the features first.
        kinds: rankings to score (subset of :data:`KINDS`).
        rerank: ``(k1, k2, lambda)``.
        max_rank: CMC length.
        seed: seed of the CUHK03 single-shot gallery sampling.

    Returns:
        dict kind -> {``rank1``, ``rank5``, ``rank10``, ``mAP``, ``mINP``
        (fractions in [0, 1]), ``num_valid_queries``, ``cmc`` (list)}.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> split = lambda n: {"global": rng.normal(size=(n, 8)).astype(np.float32),
        ...                    "pid": np.arange(n) % 4, "camid": np.arange(n) % 3}
        >>> res = evaluate_features(split(8), split(16), protocol="market1501")
        >>> sorted(res), res["global"]["num_valid_queries"]
        (['global', 're-ranked'], 8)
    """
    from reference import DistanceCache, score

    num_q, num_g = len(query["global"]), len(gallery["global"])
    shortlist = _shortlist(num_q, num_g)
    cache = DistanceCache(query, gallery, normalize=normalize, shortlist=shortlist)
    out = {}
    for kind in _plan(query, gallery, kinds):
        result = score(
            query, gallery, distance=_DISTANCE[kind], protocol=protocol,
            shortlist=shortlist, normalize=normalize,
            rerank=_rerank(rerank, num_q, num_g) if kind == "re-ranked" else None,
            max_rank=max_rank, seed=seed, gallery_lists=gallery_lists, cache=cache,
        )
        out[kind] = _summary(result)
    return out


def flat_metrics(results, prefix=""):
    """Flattens :func:`evaluate_features` output for a CSV row.

    Args:
        results: dict kind -> metrics.
        prefix: prepended to every key (e.g. the dataset name and ``/``).

    Returns:
        dict such as ``{"global/rank1": 0.9, "global/mAP": 0.7, ...}``.

    Example:
        >>> flat_metrics({"global": {"rank1": 0.5, "rank5": 0.9, "rank10": 1.0,
        ...               "mAP": 0.4, "mINP": 0.2, "cmc": []}})["global/mAP"]
        0.4
    """
    out = {}
    for kind, m in results.items():
        for key in ("rank1", "rank5", "mAP", "mINP"):
            out[f"{prefix}{kind}/{key}"] = m[key]
    return out


def _pct(x):
    return "   -  " if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:6.1f}"


def format_table(results):
    """The before/after table of ``train.py``.

    Args:
        results: dict dataset name -> {"info": str, "before": {kind: metrics},
            "after": {kind: metrics}}.

    Returns:
        str (several lines, percentages).

    Example:
        >>> m = {"rank1": 0.1, "rank5": 0.3, "rank10": 0.4, "mAP": 0.1, "mINP": 0.05}
        >>> print(format_table({"toy": {"info": "", "before": {"global": m},
        ...                             "after": {"global": m}}}).splitlines()[3])
        global        |   10.0   30.0   10.0    5.0 |   10.0   30.0   10.0    5.0
    """
    lines = []
    head = "rank-1 rank-5    mAP   mINP"
    for name, res in results.items():
        lines.append(f"{name}{(' (' + res['info'] + ')') if res.get('info') else ''}")
        lines.append(f"{'':<13} | {'untrained (%)':<27} | {'trained (%)':<27}")
        lines.append(f"{'distance':<13} | {head} | {head}")
        for kind in KINDS:
            if kind not in res["after"] and kind not in res["before"]:
                continue
            cells = []
            for when in ("before", "after"):
                m = res[when].get(kind, {})
                cells.append(" ".join(_pct(m.get(k)) for k in ("rank1", "rank5", "mAP", "mINP")))
            lines.append(f"{kind:<13} | {cells[0]} | {cells[1]}")
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def plot_cmc(results, path, max_rank=None):
    """Writes a PNG of CMC curves before and after training (atomic).

    One panel per test set; solid lines after training, dashed before, one
    colour per distance kind, rank-1 and mAP in the legend
    (:func:`reference.write_cmc_figure`).

    Args:
        results: as for :func:`format_table` (metrics with ``cmc`` and ``mAP``).
        path: output ``.png``.
        max_rank: ranks shown (None: every computed rank).

    Returns:
        None.

    Example:
        >>> import os, tempfile
        >>> m = {"cmc": [0.5, 0.75, 1.0]}
        >>> path = os.path.join(tempfile.mkdtemp(), "cmc.png")
        >>> plot_cmc({"toy": {"before": {"global": m}, "after": {"global": m}}}, path)
        >>> os.path.getsize(path) > 0
        True
    """
    from reference import CMCCurve, write_cmc_figure

    colours = {"global": "tab:blue", "global+local": "tab:orange", "re-ranked": "tab:green"}
    panels = []
    for name, res in results.items():
        curves = [
            CMCCurve(m["cmc"], f"{kind} ({'trained' if when == 'after' else 'untrained'})",
                     linestyle=style, color=colours.get(kind), mAP=m.get("mAP"))
            for when, style in (("before", "--"), ("after", "-"))
            for kind, m in res[when].items()
        ]
        panels.append((name, curves))
    write_cmc_figure(path, panels, max_rank=max_rank, panel_size=(5.5, 4.2), ylim=(0, 100),
                     legend_fontsize=7)
