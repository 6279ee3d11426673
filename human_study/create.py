"""Building a study from a feature dump: queries, candidates, shown orders, images.

The ranking is the scoring engine's (:class:`reference.DistanceCache` and
:func:`reference.ranking_matrix`, the path of ``evaluate.py``); which gallery
items a query is ranked against and which of them are true matches are
:func:`reference.valid_gallery` and :func:`reference.true_matches` (the rules
of :func:`reference.evaluate`: under market1501-like protocols, and cuhk03,
an image of the query's identity from the query's camera is no valid match
and is never shown, nor are junk images of pid -1).
"""

import datetime
import os
import secrets
import sqlite3
from dataclasses import dataclass

import numpy as np

from human_study.candidates import (
    candidate_positions,
    default_candidates,
    display_order,
    sample_study_queries,
)
from human_study.schema import connect
from reid_common import Reporter, atomic_path, canonical_protocol

DISTANCE_CHOICES = ("global", "global+local")


class CreateError(ValueError):
    """A study that cannot be built as asked; one line naming the argument or file."""


@dataclass
class QueryPlan:
    """One query of a study before it is written.

    Attributes:
        query_index: the query's row in the dump.
        gallery: [n] gallery indices of the candidates, best-ranked first.
        model_rank: [n] their 1-based ranks in the full valid gallery.
        is_match: [n] bool.
        distance, distance_rerank: [n] their plain and re-ranked distances.
        shown: [n] permutation: entry j is the candidate shown j-th.
        first_match_rank, first_match_rank_rerank: 1-based rank of the best
            true match in the full valid gallery, plain and re-ranked.
    """

    query_index: int
    gallery: np.ndarray
    model_rank: np.ndarray
    is_match: np.ndarray
    distance: np.ndarray
    distance_rerank: np.ndarray
    shown: np.ndarray
    first_match_rank: int
    first_match_rank_rerank: int


@dataclass
class StudyInfo:
    """What :func:`create_study` wrote."""

    path: str
    num_queries: int
    num_candidates: int
    protocol: str
    distance: str
    rerank: bool
    num_images: int


def eligible_queries(dump, protocol):
    """Query indices with at least one valid true match in the gallery.

    Example:
        >>> from types import SimpleNamespace
        >>> dump = SimpleNamespace(attrs={}, gallery_lists=None,
        ...     query={"pid": np.array([1, 2, 3]), "camid": np.array([0, 0, 0])},
        ...     gallery={"pid": np.array([1, 2, 3]), "camid": np.array([1, 0, 1])})
        >>> eligible_queries(dump, "market1501").tolist()
        [0, 2]
    """
    from reference import true_matches, valid_gallery

    out = [q for q in range(len(dump.query["pid"]))
           if true_matches(dump, q, valid_gallery(dump, q, protocol)).any()]
    return np.asarray(out, np.int64)


def plan_query(dump, plain, reranked, query_index, *, protocol, k, seed, by_rerank):
    """The candidates of one query by the paper's rule (see :mod:`human_study.candidates`).

    Args:
        dump: the feature dump.
        plain, reranked: [Q, G] distance matrices without and with re-ranking.
        query_index: the query's row.
        protocol: the protocol whose removal rules apply.
        k: the number of candidates.
        seed: the study's seed (shown order).
        by_rerank: rank the candidates by ``reranked`` instead of ``plain``.

    Returns:
        :class:`QueryPlan`.
    """
    from reference import ranked_gallery, true_matches

    q = int(query_index)
    ranked_plain = ranked_gallery(dump, plain, q, protocol)
    ranked_rerank = ranked_gallery(dump, reranked, q, protocol)
    ranked = ranked_rerank if by_rerank else ranked_plain
    match = true_matches(dump, q, ranked)
    pos = candidate_positions(match, k)
    gallery = ranked[pos]
    first = int(np.argmax(true_matches(dump, q, ranked_plain))) + 1
    first_rr = int(np.argmax(true_matches(dump, q, ranked_rerank))) + 1
    return QueryPlan(
        query_index=q,
        gallery=gallery,
        model_rank=pos + 1,
        is_match=match[pos],
        distance=np.asarray(plain[q], np.float64)[gallery],
        distance_rerank=np.asarray(reranked[q], np.float64)[gallery],
        shown=display_order(len(pos), seed, q),
        first_match_rank=first,
        first_match_rank_rerank=first_rr,
    )


def _new_id(taken, nbytes=9):
    while True:
        value = secrets.token_urlsafe(nbytes)
        if value not in taken:
            taken.add(value)
            return value


def _resolve_images(dump, plans, image_root):
    """{(split, index): absolute path}; CreateError naming the first missing image."""
    from reference import resolve_image

    wanted = []
    for plan in plans:
        wanted.append(("query", plan.query_index))
        wanted += [("gallery", int(g)) for g in plan.gallery]
    out = {}
    for split, index in wanted:
        if (split, index) in out:
            continue
        name = getattr(dump, split)["path"][index]
        found = resolve_image(name, image_root, dump)
        if found is None:
            where = (f"under --image-root {image_root}" if image_root is not None
                     else "relative to the current directory or the dump's directory")
            raise CreateError(
                f"image not found: {name} ({split} item {index} of {dump.path}; looked {where})"
            )
        out[(split, index)] = os.path.abspath(found)
    return out


def create_study(dump_path, out, *, queries, seed, candidates=None, distance="global",
                 rerank=False, image_root=None, shortlist=None, normalize=False,
                 k1=20, k2=6, lambda_value=0.3, progress=None):
    """Build a study from a feature dump and write it to a new SQLite file.

    Args:
        dump_path: the ``.h5`` feature dump (with image paths).
        out: the study file to create (must not exist).
        queries: N, the number of queries (drawn among those with a valid
            true match).
        seed: seed of the query draw and of the shown orders (>= 0).
        candidates: K (default: 10 for cuhk03, 50 otherwise).
        distance: ``global`` or ``global+local``.
        rerank: build the candidates from the re-ranked distance.
        image_root: directory the dump's relative image paths are under
            (default: the current directory, then the dump's directory).
        shortlist, normalize: as for :func:`reference.score`.
        k1, k2, lambda_value: the re-ranking settings (both rankings are
            stored, so the report can compare them).
        progress: a :class:`reid_common.Reporter` or None.

    Returns:
        :class:`StudyInfo`.

    Raises:
        CreateError: a bad argument, dump or image (nothing is written).
    """
    from reference import DistanceCache, DumpError, RerankParams, ranking_matrix, read_dump

    progress = progress if progress is not None else Reporter(enabled=False)
    if distance not in DISTANCE_CHOICES:
        raise CreateError(f"distance: expected one of {', '.join(DISTANCE_CHOICES)}, got {distance!r}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise CreateError(f"seed: expected an integer >= 0, got {seed!r}")
    if image_root is not None and not os.path.isdir(image_root):
        raise CreateError(f"image_root: {image_root} is not a directory")
    if os.path.exists(out):
        raise CreateError(f"out: {out} exists; a study file is never overwritten")
    if not os.path.isfile(dump_path):
        raise CreateError(f"dump: {dump_path}: no such file")
    try:
        dump = read_dump(dump_path)
        params = RerankParams(k1=k1, k2=k2, lambda_value=lambda_value)
    except (DumpError, TypeError, ValueError) as exc:
        raise CreateError(str(exc)) from None
    if "path" not in dump.query or "path" not in dump.gallery:
        raise CreateError(f"dump: {dump_path} has no image paths (query/path, gallery/path)")
    if distance == "global+local" and not dump.has_local:
        raise CreateError(f"distance: {dump_path} has no local features; use global")
    protocol = canonical_protocol(str(dump.attrs.get("protocol", "market1501")))
    if protocol == "cuhk-sysu" and dump.gallery_lists is None:
        raise CreateError(f"dump: {dump_path} has no per-query gallery lists, which protocol "
                          "cuhk-sysu needs")
    k = default_candidates(protocol) if candidates is None else int(candidates)
    if k < 2:
        raise CreateError(f"candidates: expected an integer >= 2, got {k}")
    eligible = eligible_queries(dump, protocol)
    try:
        chosen = sample_study_queries(eligible, queries, seed)
    except ValueError as exc:
        raise CreateError(str(exc).replace("num_queries", "queries", 1)) from None

    progress.say(f"ranking {dump.num_gallery} gallery items by {distance} for "
                 f"{dump.num_query} queries (with and without re-ranking)")
    try:
        cache = DistanceCache.from_dump(dump, normalize=normalize, shortlist=shortlist,
                                        progress=progress)
        plain = ranking_matrix(cache, distance, progress=progress)
        reranked = ranking_matrix(cache, distance, rerank=params, progress=progress)
    except (TypeError, ValueError) as exc:
        raise CreateError(str(exc)) from None
    plans = []
    for i, q in enumerate(chosen):
        plans.append(plan_query(dump, plain, reranked, q, protocol=protocol, k=k, seed=seed,
                                by_rerank=bool(rerank)))
        progress.count("candidate sets", i + 1, len(chosen))
    images = _resolve_images(dump, plans, image_root)
    meta = {
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dump": os.path.abspath(dump_path),
        "protocol": protocol,
        "dataset": str(dump.attrs.get("dataset", "")),
        "features": str(dump.attrs.get("model", "")),
        "distance": distance,
        "rerank": "1" if rerank else "0",
        "k1": str(params.k1), "k2": str(params.k2), "lambda": str(params.lambda_value),
        "shortlist": "" if shortlist is None else str(int(shortlist)),
        "normalize": "1" if normalize else "0",
        "candidates": str(k),
        "seed": str(int(seed)),
        "num_queries": str(len(plans)),
    }
    progress.say(f"writing {out}: {len(plans)} queries, {k} candidates each")
    with atomic_path(out) as tmp:
        _write(tmp, meta, plans, images)
    return StudyInfo(path=str(out), num_queries=len(plans), num_candidates=k,
                     protocol=protocol, distance=distance, rerank=bool(rerank),
                     num_images=len(set(images.values())))


def _write(path, meta, plans, images):
    con = connect(path, create=True)
    try:
        taken = set()
        image_ids = {}
        for item_path in images.values():
            if item_path not in image_ids:
                image_ids[item_path] = _new_id(taken, 12)
        con.executemany("INSERT INTO images (id, path) VALUES (?, ?)",
                        [(i, p) for p, i in image_ids.items()])
        con.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
        for position, plan in enumerate(plans):
            qid = _new_id(taken)
            con.execute(
                "INSERT INTO queries VALUES (?, ?, ?, ?, ?, ?)",
                (qid, position, plan.query_index,
                 image_ids[images[("query", plan.query_index)]],
                 plan.first_match_rank, plan.first_match_rank_rerank))
            shown_at = np.empty(len(plan.shown), np.int64)
            shown_at[plan.shown] = np.arange(len(plan.shown))
            con.executemany(
                "INSERT INTO candidates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(_new_id(taken), qid, int(shown_at[j]), int(g), int(plan.model_rank[j]),
                  int(bool(plan.is_match[j])), image_ids[images[("gallery", int(g))]],
                  float(plan.distance[j]), float(plan.distance_rerank[j]))
                 for j, g in enumerate(plan.gallery)])
        con.commit()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise CreateError(f"out: cannot write the study: {exc}") from None
    finally:
        con.close()
