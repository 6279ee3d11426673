"""A study's queries and candidates as plain data, for audit and re-analysis."""

from human_study.store import Store


def export_study(path):
    """The queries of a study with their candidates and shown order.

    ``query_index`` and ``gallery_index`` index the dump's query and gallery
    groups; ``model_rank`` is the 1-based rank in the query's full valid
    gallery by the ranking the candidates were built from.

    Args:
        path: the study's ``.sqlite`` file.

    Returns:
        dict ``{"queries": [{"query_id", "query_index", "candidates":
        [{"candidate_id", "gallery_index", "is_match", "model_rank"}, ...]
        (by model rank), "shown_order": [candidate_id, ...]}, ...]}``, the
        queries in the order annotators see them.
    """
    store = Store(path)
    try:
        out = []
        for query_id, query_index, _, _ in store.query_rows():
            rows = store.candidate_rows(query_id)
            by_rank = sorted(rows, key=lambda r: r["model_rank"])
            out.append({
                "query_id": query_id,
                "query_index": int(query_index),
                "candidates": [{"candidate_id": r["id"], "gallery_index": int(r["gallery_index"]),
                                "is_match": bool(r["is_match"]), "model_rank": int(r["model_rank"])}
                               for r in by_rank],
                "shown_order": [r["id"] for r in rows],
            })
        return {"queries": out}
    finally:
        store.close()
