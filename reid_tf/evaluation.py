"""Features -> ReID metrics with the ``reference`` implementation.

Three rankings are scored for every test set:

- ``global``: Euclidean distance of the global features;
- ``global+local``: global distance plus the aligned local distance
  (shortest path over the stripes, ``reference.local_distance_matrix``). For
  large test sets (more than :data:`DENSE_LOCAL_PAIRS` query-gallery pairs)
  the local distance is added for the :data:`LOCAL_SHORTLIST` nearest gallery
  items of each query by global distance only; the others get the largest
  local distance of the query's shortlist, so they stay behind it;
- ``re-ranked``: k-reciprocal re-ranking (Zhong et al. 2017;
  ``reference.re_rank_features``) of the global distance, as the paper keeps
  only the global feature at test time.

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


def _local_distances(q_local, g_local, d_global):
    """Aligned local distances; on large problems only for each query's global
    top-``LOCAL_SHORTLIST``, with the upper bound Hq + Hg - 1 elsewhere (the
    semantics of ``evaluate.py --shortlist``)."""
    from reference import global_topk, local_distance_matrix

    q_local = np.ascontiguousarray(q_local, np.float32)
    g_local = np.ascontiguousarray(g_local, np.float32)
    num_q, num_g = d_global.shape
    if num_q * num_g <= DENSE_LOCAL_PAIRS or num_g <= LOCAL_SHORTLIST:
        return np.asarray(local_distance_matrix(q_local, g_local), np.float32)
    shortlist = global_topk(d_global, LOCAL_SHORTLIST)
    near = np.asarray(local_distance_matrix(q_local, g_local, shortlist=shortlist), np.float32)
    out = np.full((num_q, num_g), q_local.shape[1] + g_local.shape[1] - 1, np.float32)
    np.put_along_axis(out, shortlist, near, axis=1)
    return out


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
    from reference import pairwise_distance, re_rank_features

    qg = np.ascontiguousarray(query["global"], np.float32)
    gg = np.ascontiguousarray(gallery["global"], np.float32)
    d_global = np.asarray(pairwise_distance(qg, gg), np.float32)
    out = {}
    if "global" in kinds:
        out["global"] = d_global
    if "global+local" in kinds and "local" in query and "local" in gallery:
        out["global+local"] = d_global + _local_distances(query["local"], gallery["local"], d_global)
    if "re-ranked" in kinds:
        k1, k2, lam = rerank
        k1 = min(int(k1), len(qg) + len(gg) - 1)
        out["re-ranked"] = np.asarray(
            re_rank_features(qg, gg, k1=k1, k2=min(int(k2), k1), lambda_value=float(lam)),
            np.float32,
        )
    return out


def _summary(result):
    cmc = np.asarray(result["cmc"], np.float64)
    out = {f"rank{r}": float(cmc[min(r, len(cmc)) - 1]) for r in RANKS}
    out["mAP"] = float(result["mAP"])
    out["mINP"] = float(result["mINP"])
    out["num_valid_queries"] = int(result["num_valid_queries"])
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
        >>> res = evaluate_features(q, g, protocol="market1501")  # doctest: +SKIP
        >>> res["global"]["rank1"]                               # doctest: +SKIP
        0.93
    """
    from reference import evaluate
    from reference.vectors import normalize_rows

    if normalize:
        query = {**query, **{k: normalize_rows(query[k]) for k in ("global", "local") if k in query}}
        gallery = {**gallery, **{k: normalize_rows(gallery[k]) for k in ("global", "local")
                                 if k in gallery}}
    dists = distance_matrices(query, gallery, kinds=kinds, rerank=rerank)
    out = {}
    for kind, distmat in dists.items():
        result = evaluate(
            distmat, query["pid"], gallery["pid"], query["camid"], gallery["camid"],
            protocol=protocol, max_rank=max_rank, gallery_lists=gallery_lists, seed=seed,
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


def plot_cmc(results, path, max_rank=20):
    """Writes a PNG of CMC curves before and after training (atomic).

    One panel per test set; solid lines after training, dashed before, one
    colour per distance kind.

    Args:
        results: as for :func:`format_table` (metrics with ``cmc``).
        path: output ``.png``.
        max_rank: ranks shown.

    Returns:
        None.

    Example:
        >>> plot_cmc(results, "runs/x/cmc.png")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reid_common import atomic_path

    names = list(results)
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.2), squeeze=False)
    colours = {"global": "tab:blue", "global+local": "tab:orange", "re-ranked": "tab:green"}
    for ax, name in zip(axes[0], names):
        for when, style in (("before", "--"), ("after", "-")):
            for kind, m in results[name][when].items():
                cmc = np.asarray(m["cmc"][:max_rank]) * 100
                ax.plot(np.arange(1, len(cmc) + 1), cmc, style, color=colours.get(kind),
                        label=f"{kind} ({'trained' if when == 'after' else 'untrained'})")
        ax.set_title(name)
        ax.set_xlabel("rank")
        ax.set_ylabel("matching rate (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
