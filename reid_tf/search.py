"""Search: rank a gallery of one's own images for each query image.

The engine of ``reid-search`` (command line in :mod:`reid_tf.search_cli`).
The gallery is a folder of images, whose features are extracted with
:func:`reid_tf.extract_features` and cached as a feature dump (see
:mod:`reid_tf.search_gallery`), or a feature dump (its gallery split). The
queries are extracted the same way. Ranking is the scoring path of
``reid-evaluate``: a :class:`reference.DistanceCache` of the query and gallery
features and :func:`reference.ranking_matrix` (``global`` or
``global+local``, optionally k-reciprocal re-ranked), without the protocol's
removals (a search has no identities). Ties keep gallery order.
"""

import os
import time
from dataclasses import dataclass

import numpy as np

from reid_common import Reporter

SEARCH_DISTANCES = ("global", "global+local")


class SearchError(ValueError):
    """A search that cannot run because of its input; one line naming it.

    Args:
        argument: the keyword argument it concerns (``"model"``,
            ``"gallery"``, ``"queries"``, ``"top"``, ...).
        detail: what is wrong.
    """

    def __init__(self, argument, detail):
        super().__init__(f"{argument}: {' '.join(str(detail).split())}")
        self.argument = argument
        self.detail = " ".join(str(detail).split())


@dataclass
class QueryResult:
    """The top of the ranking of one query.

    Attributes:
        query: the query image's path.
        paths: the gallery paths, best first.
        distances: their distances (float).
        indices: their gallery rows.
    """

    query: str
    paths: list
    distances: list
    indices: list

    def to_dict(self):
        """``{"query": path, "results": [{"path", "distance", "rank"}, ...]}``.

        Example:
            >>> QueryResult("q.jpg", ["b.jpg"], [0.5], [3]).to_dict()
            {'query': 'q.jpg', 'results': [{'path': 'b.jpg', 'distance': 0.5, 'rank': 1}]}
        """
        return {
            "query": self.query,
            "results": [{"path": p, "distance": float(d), "rank": k + 1}
                        for k, (p, d) in enumerate(zip(self.paths, self.distances))],
        }


@dataclass
class SearchResult:
    """What a search found.

    Attributes:
        queries: one :class:`QueryResult` per query, in the order given.
        distance: ``global`` or ``global+local``.
        rerank: the :class:`reference.RerankParams`, or None.
        num_gallery: G.
        gallery: the folder or dump searched.
        cache: the gallery's cache dump (None for a dump gallery or without a cache).
        cache_hit: the gallery features came from the cache.
        seconds: time of the whole search.
    """

    queries: list
    distance: str
    rerank: object
    num_gallery: int
    gallery: str
    cache: object
    cache_hit: bool
    seconds: float

    def to_json(self):
        """The JSON list of ``reid-search``: one ``QueryResult.to_dict()`` per query."""
        return [q.to_dict() for q in self.queries]


def rank_gallery(query, gallery, *, distance="global", top=10, rerank=None, shortlist=None,
                 normalize=False, progress=None):
    """The ``top`` nearest gallery rows of every query, by the scoring engine's distances.

    Args:
        query: dict with ``global`` [Q, C] and maybe ``local`` [Q, H, c].
        gallery: the same for G gallery items.
        distance: ``global`` or ``global+local``.
        top: K >= 1 (K > G gives all G).
        rerank: None, True, a :class:`reference.RerankParams` or ``(k1, k2, lambda)``.
        shortlist: as for :func:`reference.score` (None: every pair).
        normalize: scale the features to unit length first.
        progress: a :class:`reid_common.Reporter`, or None.

    Returns:
        ``(indices, distances)``: [Q, min(K, G)] int64 and float32, best first.

    Example:
        >>> q = {"global": np.array([[0.0, 0.0]])}
        >>> g = {"global": np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])}
        >>> idx, dist = rank_gallery(q, g, top=2)
        >>> idx.tolist(), dist.tolist()
        ([[1, 2]], [[1.0, 2.0]])
    """
    from reference import DistanceCache, ranking_matrix

    cache = DistanceCache(query, gallery, normalize=normalize, shortlist=shortlist,
                          progress=progress)
    matrix = ranking_matrix(cache, distance, rerank=rerank, progress=progress)
    k = min(int(top), matrix.shape[1])
    order = np.argsort(matrix, axis=1, kind="stable")[:, :k]
    return order.astype(np.int64), np.take_along_axis(matrix, order, axis=1)


def _check(model, gallery, queries, top, distance, batch_size):
    if distance not in SEARCH_DISTANCES:
        raise SearchError("distance", f"expected one of {', '.join(SEARCH_DISTANCES)}, "
                                      f"got {distance!r}")
    for name, value in (("top", top), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SearchError(name, f"expected an integer >= 1, got {value!r}")
    if not os.path.isfile(os.fspath(model)):
        raise SearchError("model", f"no such file: {model}")
    if not os.path.exists(os.fspath(gallery)):
        raise SearchError("gallery", f"no such folder or dump: {gallery}")
    queries = [os.fspath(q) for q in queries]
    if not queries:
        raise SearchError("queries", "no query image given")
    for q in queries:
        if not os.path.isfile(q):
            raise SearchError("queries", f"no such image file: {q}")
    return queries


def _extractor(feature_model, batch_size, progress, desc):
    """``paths -> features``, turning an unreadable image into a SearchError."""
    from reid_tf.extract import ExtractError, extract_features

    def extract(paths, argument="gallery"):
        try:
            return extract_features(feature_model, paths, batch_size=batch_size, local=True,
                                    progress=progress, desc=desc(argument))
        except ExtractError as exc:
            raise SearchError(argument, exc.detail) from None

    return extract


def search_images(*, model, gallery, queries, top=10, distance="global", rerank=None,
                  shortlist=None, normalize=False, batch_size=64, cache_dir=None,
                  use_cache=True, progress=True):
    """Rank a gallery (a folder of images or a dump) for each query image.

    Args:
        model: ``.keras`` file of an AlignedReID model (``train.py``'s
            ``model.keras``).
        gallery: a folder of images (recursively; features cached, see
            :mod:`reid_tf.search_gallery`) or a feature dump (its gallery split).
        queries: query image paths.
        top: results per query (K >= 1).
        distance: ``global`` or ``global+local`` (needs local features).
        rerank: None, True (k1=20, k2=6, lambda=0.3), a
            :class:`reference.RerankParams` or ``(k1, k2, lambda)``; the query
            images are the query set of the re-ranking.
        shortlist: K of the local term (``global+local``), None for every pair.
        normalize: scale the features to unit length before the distances.
        batch_size: images per extraction batch.
        cache_dir: where a folder's cache goes when its parent directory is
            not writable (default ``$ALIGNEDREID_CACHE`` or ``~/.cache/alignedreid``).
        use_cache: False: extract the folder every time, write no cache.
        progress: progress lines (with an ETA) on stderr.

    Returns:
        :class:`SearchResult`.

    Raises:
        SearchError: a missing or unreadable input, a model that is not an
            AlignedReID model, an empty folder, features that do not fit.
    """
    from reference import DumpError
    from reid_tf.extract import ExtractError, load_model
    from reid_tf.search_gallery import GalleryError, dump_gallery, folder_gallery
    from reid_tf.train_data import default_cache_root

    start = time.monotonic()
    queries = _check(model, gallery, queries, top, distance, batch_size)
    params = _params(rerank)
    if shortlist is not None and (isinstance(shortlist, bool) or not isinstance(
            shortlist, (int, np.integer)) or shortlist < 1):
        raise SearchError("shortlist", f"expected an integer >= 1 or None, got {shortlist!r}")
    model, gallery = os.fspath(model), os.fspath(gallery)
    reporter = Reporter("", enabled=progress)
    try:
        feature_model = load_model(model)
    except ExtractError as exc:
        raise SearchError("model", exc.detail) from None
    extract = _extractor(feature_model, int(batch_size), progress,
                         lambda arg: "gallery features" if arg == "gallery" else "query features")
    query_feats = extract(queries, "queries")  # first: a bad query fails fast
    try:
        if os.path.isdir(gallery):
            cache_root = cache_dir if cache_dir is not None else default_cache_root()
            found = folder_gallery(
                gallery, extract=extract, model_path=model, cache_root=cache_root,
                model_name=f"{feature_model.name} ({os.path.abspath(model)})",
                use_cache=use_cache, say=reporter.say,
            )
        else:
            found = dump_gallery(gallery)
    except (GalleryError, DumpError) as exc:
        raise SearchError("gallery", str(exc)) from None
    _check_fit(query_feats, found.features, distance, gallery)
    indices, dists = rank_gallery(
        query_feats, found.features, distance=distance, top=top, rerank=params,
        shortlist=shortlist, normalize=normalize, progress=reporter,
    )
    results = [
        QueryResult(query=q, paths=[found.paths[g] for g in row],
                    distances=[float(d) for d in drow], indices=[int(g) for g in row])
        for q, row, drow in zip(queries, indices, dists)
    ]
    return SearchResult(
        queries=results, distance=distance, rerank=params,
        num_gallery=len(found.paths), gallery=gallery, cache=found.cache,
        cache_hit=found.cache_hit, seconds=time.monotonic() - start,
    )


def _params(rerank):
    from reference import as_rerank_params

    try:
        return as_rerank_params(rerank)
    except (TypeError, ValueError) as exc:
        raise SearchError("rerank", str(exc)) from None


def _check_fit(query, gallery, distance, where):
    qc, gc = query["global"].shape[1], gallery["global"].shape[1]
    if qc != gc:
        raise SearchError("gallery", f"{where}: global features have {gc} channels, the "
                                     f"model's have {qc}")
    if distance == "global+local":
        if "local" not in query:
            raise SearchError("distance", "global+local needs local features; the model "
                                          "has no local branch")
        if "local" not in gallery:
            raise SearchError("distance", f"global+local needs local features; {where} "
                                          "has none")
        if query["local"].shape[2] != gallery["local"].shape[2]:
            raise SearchError("gallery", f"{where}: local features have "
                                         f"{gallery['local'].shape[2]} channels per part, "
                                         f"the model's have {query['local'].shape[2]}")


def figure_name(index, query):
    """The PNG name of query ``index``: ``q<index, 3 digits>_<image stem>.png``.

    Example:
        >>> figure_name(4, "photos/front door.jpg")
        'q004_front_door.png'
    """
    stem = os.path.splitext(os.path.basename(query))[0]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
    return f"q{int(index):03d}_{safe}.png"


def write_search_figures(result, out_dir):
    """One ranked-list PNG per query (``reference.ranked_results_figure``) in ``out_dir``.

    A page shows at most the first 100 results of its query.

    Args:
        result: :class:`SearchResult`.
        out_dir: directory for the PNGs (created if missing).

    Returns:
        list of the PNG paths, in query order.
    """
    from reference import ranked_results_figure
    from reference.figures import MAX_TOP_N

    os.makedirs(out_dir, exist_ok=True)
    name = result.distance + ("-rerank" if result.rerank is not None else "")
    files = []
    for k, q in enumerate(result.queries):
        if not q.paths:
            continue
        shown = min(len(q.paths), MAX_TOP_N)
        header = [f"query {os.path.basename(q.query)}",
                  f"{name}, top {shown} of {result.num_gallery}"]
        page = ranked_results_figure(q.query, q.paths[:shown], q.distances[:shown],
                                     os.path.join(out_dir, figure_name(k, q.query)),
                                     header=header)
        files.append(page["file"])
    return files
