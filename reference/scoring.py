"""Scoring: features (or a feature dump) to distances to ReID metrics.

One path serves ``reid-evaluate``, the in-training evaluation of ``train.py``
and the report figures:

1. distances between query and gallery (:class:`reference.DistanceCache`):
   ``global`` (Euclidean distance of the global features), ``local`` (aligned
   local distance) or ``global+local`` (their sum, the paper's inference
   distance); with a shortlist of K the local term is computed only for each
   query's K nearest gallery items by global distance and is the bound
   ``Hq + Hg - 1`` elsewhere;
2. optionally k-reciprocal re-ranking (:class:`RerankParams`): of the global
   features block by block, or of the Q x G, Q x Q and G x G matrices of the
   other distances (the shortlist applies to each);
3. the metrics (:func:`reference.evaluate`) under a protocol.

:func:`score` takes feature dicts, :func:`score_dump` a
:class:`reference.FeatureDump`; both return a :class:`ScoreResult`.
"""

import math
import numbers
import time
from dataclasses import dataclass, field

import numpy as np

from reid_common import Reporter, canonical_protocol
from reference.distance_cache import DISTANCES, DistanceCache, check_shortlist
from reference.rerank_limits import check_rerank_params

__all__ = [
    "DISTANCES", "RerankParams", "ScoreResult", "as_rerank_params", "ranking_matrix", "score",
    "score_dump",
]


def _int_at_least(name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value}")
    return int(value)


@dataclass(frozen=True)
class RerankParams:
    """Settings of k-reciprocal re-ranking (Zhong et al. 2017).

    Args:
        k1: size of the k-reciprocal neighbourhood, in [1, 200]
            (``reference.rerank.MAX_K1``).
        k2: neighbours averaged by the local query expansion, in [1, 50]
            (``reference.rerank.MAX_K2``).
        lambda_value: weight of the original distance, in [0, 1].

    Example:
        >>> RerankParams(k1=6, k2=3)
        RerankParams(k1=6, k2=3, lambda_value=0.3)
    """

    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3

    def __post_init__(self):
        lam = self.lambda_value
        if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not 0.0 <= lam <= 1.0:
            raise ValueError(f"lambda_value: expected a number in [0, 1], got {lam!r}")
        k1, k2, lam = check_rerank_params(self.k1, self.k2, lam)
        object.__setattr__(self, "k1", k1)
        object.__setattr__(self, "k2", k2)
        object.__setattr__(self, "lambda_value", lam)


def as_rerank_params(rerank):
    """The re-ranking settings ``rerank`` stands for, or None for no re-ranking.

    Args:
        rerank: None or False (no re-ranking), True (the defaults), a
            :class:`RerankParams`, or ``(k1, k2, lambda_value)``.

    Returns:
        :class:`RerankParams` or None.

    Raises:
        TypeError, ValueError: naming ``rerank`` or the bad setting.

    Example:
        >>> as_rerank_params((6, 3, 0.2)), as_rerank_params(False)
        (RerankParams(k1=6, k2=3, lambda_value=0.2), None)
    """
    if rerank is None or rerank is False:
        return None
    if rerank is True:
        return RerankParams()
    if isinstance(rerank, RerankParams):
        return rerank
    if isinstance(rerank, (tuple, list)) and len(rerank) == 3:
        return RerankParams(*rerank)
    raise TypeError(
        f"rerank: expected None, True, a RerankParams or (k1, k2, lambda_value), got {rerank!r}"
    )


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class ScoreResult:
    """The metrics of one ranking.

    Attributes:
        distance: ``global``, ``local`` or ``global+local``.
        protocol: the protocol name as given (lower case).
        shortlist: K of the local term, None for every pair (and for ``global``).
        normalize: features scaled to unit length first.
        rerank: the :class:`RerankParams`, or None.
        num_query, num_gallery: Q and G.
        num_valid_queries: queries with at least one match.
        mAP, mINP: fractions in [0, 1].
        cmc: [max_rank] float64, ``cmc[k - 1]`` is rank-k.
        seconds: time of the distances, re-ranking and metrics.
        source: the dump's path (:func:`score_dump`), else None.
        distmat: the [Q, G] matrix ranked by (with ``keep_distmat=True``), else None.
    """

    distance: str
    protocol: str
    shortlist: object
    normalize: bool
    rerank: object
    num_query: int
    num_gallery: int
    num_valid_queries: int
    mAP: float
    mINP: float
    cmc: np.ndarray
    seconds: float
    source: object = None
    distmat: object = field(default=None, repr=False)

    @property
    def name(self):
        """``global``, ``global+local``, ``local-rerank``, ...: the ranking's name."""
        return self.distance + ("-rerank" if self.rerank is not None else "")

    def rank(self, k):
        """Rank-k matching rate, or None when the CMC is shorter than k."""
        return float(self.cmc[k - 1]) if len(self.cmc) >= k else None

    def to_dict(self):
        """The fields of ``reid-evaluate --json`` (plain Python values)."""
        rr = self.rerank
        return {
            "dump": self.source,
            "distance": self.distance,
            "shortlist": self.shortlist,
            "normalize": bool(self.normalize),
            "rerank": rr is not None,
            "k1": rr.k1 if rr is not None else None,
            "k2": rr.k2 if rr is not None else None,
            "lambda": rr.lambda_value if rr is not None else None,
            "protocol": self.protocol,
            "num_query": int(self.num_query),
            "num_gallery": int(self.num_gallery),
            "num_valid_queries": int(self.num_valid_queries),
            "mAP": _finite_or_none(self.mAP),
            "mINP": _finite_or_none(self.mINP),
            "rank1": self.rank(1),
            "rank5": self.rank(5),
            "rank10": self.rank(10),
            "cmc": [float(v) for v in self.cmc],
            "seconds": round(float(self.seconds), 3),
        }


def _ids(name, split, key):
    if not hasattr(split, "get") or split.get(key) is None:
        raise ValueError(f"{name}: expected a dict with {key!r} labels")
    return split[key]


def ranking_matrix(cache, distance, *, rerank=None, progress=None):
    """The [Q, G] float32 matrix a ranking sorts by: a distance, optionally re-ranked.

    Args:
        cache: the test set's :class:`reference.DistanceCache` (its
            ``normalize`` and ``shortlist`` apply).
        distance: ``global``, ``local`` or ``global+local``.
        rerank: as for :func:`score`. ``global`` is re-ranked from the
            features block by block; the others from their Q x G, Q x Q and
            G x G matrices (the latter two are not kept in the cache).
        progress: a :class:`reid_common.Reporter`, or None for silence.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> cache = DistanceCache({"global": rng.normal(size=(3, 4))},
        ...                       {"global": rng.normal(size=(5, 4))})
        >>> ranking_matrix(cache, "global", rerank=(2, 1, 0.3)).shape
        (3, 5)
    """
    from reference import re_rank, re_rank_features

    if distance not in DISTANCES:
        raise ValueError(f"distance: expected one of {', '.join(DISTANCES)}, got {distance!r}")
    params = as_rerank_params(rerank)
    progress = progress if progress is not None else Reporter(enabled=False)
    if params is None:
        return cache.matrix(distance, "query", "gallery")
    feats = cache.features
    q, g = len(feats["query"]["global"]), len(feats["gallery"]["global"])
    what = (f"re-ranking {distance} (k1={params.k1}, k2={params.k2}, "
            f"lambda={params.lambda_value}")
    if distance == "global":
        progress.say(what + "; Q x Q and G x G distances in blocks)")
        return np.asarray(
            re_rank_features(feats["query"]["global"], feats["gallery"]["global"],
                             k1=params.k1, k2=params.k2, lambda_value=params.lambda_value,
                             progress=progress),
            np.float32,
        )
    gb = 4.0 * (2 * q * g + 2 * q * q + 2 * g * g) / 1e9
    progress.say(what + f"; holds the Q x G, Q x Q and G x G matrices, up to ~{gb:.2g} GB)")
    q_g = cache.matrix(distance, "query", "gallery")
    q_q = cache.matrix(distance, "query", "query", keep=False)
    g_g = cache.matrix(distance, "gallery", "gallery", keep=False)
    return np.asarray(
        re_rank(q_g, q_q, g_g, k1=params.k1, k2=params.k2, lambda_value=params.lambda_value,
                progress=progress),
        np.float32,
    )


def score(query, gallery, *, distance="global", protocol="market1501", shortlist=None,
          normalize=False, rerank=None, max_rank=50, repeats=10, seed=0,
          gallery_lists=None, keep_distmat=False, cache=None, progress=None):
    """Rank the gallery for every query by one distance and compute the metrics.

    Args:
        query: dict with ``global`` [Q, C], optionally ``local`` [Q, Hq, c]
            (float32 features), ``pid`` [Q] and ``camid`` [Q].
        gallery: the same for the G gallery items.
        distance: ``global``, ``local`` or ``global+local``.
        protocol: ``market1501`` (also ``duke``, ``dukemtmc``, ``msmt17``),
            ``cuhk03`` or ``cuhk-sysu`` (case-insensitive).
        shortlist: K >= 1: the local term only for each query's K nearest
            gallery items by global distance, ``Hq + Hg - 1`` elsewhere; None
            (or K >= G): every pair. Not used by ``distance="global"``.
        normalize: scale the features to unit length first.
        rerank: None (no re-ranking), True (the defaults), a
            :class:`RerankParams` or ``(k1, k2, lambda_value)``.
        max_rank: length of the CMC curve (>= 1).
        repeats: ``cuhk03``: number of random single-shot gallery draws.
        seed: seed of the ``cuhk03`` draws (>= 0).
        gallery_lists: ``cuhk-sysu``: Q arrays of gallery indices, else None.
        keep_distmat: keep the [Q, G] matrix ranked by in the result.
        cache: a :class:`reference.DistanceCache` of these features built with
            the same ``normalize`` and ``shortlist``, to share matrices between
            calls (None: a new one).
        progress: a :class:`reid_common.Reporter`, or None for silence.

    Returns:
        :class:`ScoreResult`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> split = lambda n: {"global": rng.normal(size=(n, 8)), "pid": np.arange(n) % 4,
        ...                    "camid": np.arange(n) % 3}
        >>> r = score(split(6), split(12), max_rank=5)
        >>> r.num_valid_queries, len(r.cmc), 0.0 <= r.mAP <= 1.0
        (6, 5, True)
    """
    from reference import evaluate

    if distance not in DISTANCES:
        raise ValueError(f"distance: expected one of {', '.join(DISTANCES)}, got {distance!r}")
    name = canonical_protocol(protocol)
    shortlist = check_shortlist(shortlist)
    params = as_rerank_params(rerank)
    max_rank = _int_at_least("max_rank", max_rank, 1)
    repeats = _int_at_least("repeats", repeats, 1)
    seed = _int_at_least("seed", seed, 0)
    q_pid, g_pid = _ids("query", query, "pid"), _ids("gallery", gallery, "pid")
    q_cam, g_cam = _ids("query", query, "camid"), _ids("gallery", gallery, "camid")
    if name == "cuhk-sysu" and gallery_lists is None:
        raise ValueError("gallery_lists: required by protocol 'cuhk-sysu' (one list per query)")
    if name != "cuhk-sysu" and gallery_lists is not None:
        raise ValueError(f"gallery_lists: only used by protocol 'cuhk-sysu', not {name!r}")
    progress = progress if progress is not None else Reporter(enabled=False)
    if cache is None:
        cache = DistanceCache(query, gallery, normalize=normalize, shortlist=shortlist,
                              progress=progress)
    else:
        if not isinstance(cache, DistanceCache):
            raise TypeError(f"cache: expected a DistanceCache or None, got {type(cache).__name__}")
        if cache.normalize != bool(normalize):
            raise ValueError(f"cache: built with normalize={cache.normalize}, not {normalize}")
        if distance != "global" and cache.shortlist != shortlist:
            raise ValueError(f"cache: built with shortlist={cache.shortlist}, not {shortlist}")
    if distance != "global" and not cache.has_local:
        split = "query" if cache.features["query"]["local"] is None else "gallery"
        raise ValueError(f"{split}: no 'local' features; distance {distance!r} needs them")

    start = time.perf_counter()
    dist = ranking_matrix(cache, distance, rerank=params, progress=progress)
    progress.say(f"metrics ({protocol.lower()})")
    res = evaluate(dist, q_pid, g_pid, q_cam, g_cam, protocol=name, max_rank=max_rank,
                   gallery_lists=gallery_lists,
                   repeats=repeats, seed=seed)
    seconds = time.perf_counter() - start
    return ScoreResult(
        distance=distance,
        protocol=protocol.lower(),
        shortlist=shortlist if distance != "global" else None,
        normalize=bool(normalize),
        rerank=params,
        num_query=len(dist),
        num_gallery=dist.shape[1],
        num_valid_queries=int(res["num_valid_queries"]),
        mAP=float(res["mAP"]),
        mINP=float(res["mINP"]),
        cmc=np.asarray(res["cmc"], np.float64),
        seconds=seconds,
        distmat=dist if keep_distmat else None,
    )


def score_dump(dump, *, distance="global", protocol=None, shortlist=None, normalize=False,
               rerank=None, max_rank=50, repeats=10, seed=0, keep_distmat=False, cache=None,
               progress=None):
    """:func:`score` on a :class:`reference.FeatureDump`.

    Args:
        dump: the dump (``reference.read_dump``).
        protocol: None for the dump's ``protocol`` attribute; ``cuhk-sysu``
            takes the dump's per-query gallery lists.
        cache: a :class:`reference.DistanceCache` of this dump
            (``DistanceCache.from_dump``) or None.
        other arguments: as for :func:`score`.

    Returns:
        :class:`ScoreResult` with ``source`` set to the dump's path.

    Example:
        >>> import os, tempfile
        >>> from reference.synthetic import clustered_features
        >>> from reference import write_dump, read_dump
        >>> data = clustered_features(10, 40, dim=8, num_identities=10, seed=0)
        >>> path = os.path.join(tempfile.mkdtemp(), "d.h5")
        >>> _ = write_dump(path, data["query"], data["gallery"])
        >>> score_dump(read_dump(path), max_rank=5).num_query
        10
    """
    if protocol is None:
        protocol = str(dump.attrs.get("protocol", "market1501"))
    gallery_lists = None
    if canonical_protocol(protocol) == "cuhk-sysu":
        gallery_lists = dump.gallery_lists
        if gallery_lists is None:
            raise ValueError(
                "protocol: 'cuhk-sysu' needs the dump's per-query gallery lists "
                "(protocol/gallery_offsets)"
            )
    result = score(dump.query, dump.gallery, distance=distance, protocol=protocol,
                   shortlist=shortlist, normalize=normalize, rerank=rerank,
                   max_rank=max_rank, repeats=repeats, seed=seed,
                   gallery_lists=gallery_lists, keep_distmat=keep_distmat, cache=cache,
                   progress=progress)
    result.source = dump.path
    return result
