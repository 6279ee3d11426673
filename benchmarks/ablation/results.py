"""One run's results, per query, from its feature dump; and the no-training
check of alignment on the same features.

Scores with ``reference``'s scoring engine (``score``: the global distance,
the aligned local distance) and its metrics (``evaluate``: per-query first
match and AP), so the per-query values add up to the run's rank-1 and mAP.
"""

import csv
import json
from pathlib import Path

import numpy as np

from reid_tf.engine import PEER_SUFFIX
from reid_tf.run_dir import RunDir


def per_query(distmat, query, gallery, protocol, gallery_lists=None):
    """Per-query rank-1 hit and AP of a distance matrix.

    Args:
        distmat: [Q, G] distances.
        query, gallery: dicts with ``pid`` and ``camid``.
        protocol: evaluation protocol.
        gallery_lists: CUHK-SYSU gallery lists, or None.

    Returns:
        ``(hits, ap)``: [Q] float64 arrays, 1.0 / 0.0 and the AP in [0, 1],
        NaN for a query without a true match (left out of the means).

    Example:
        >>> d = np.array([[0.1, 0.5], [0.9, 0.2]])
        >>> q = {"pid": np.array([1, 2]), "camid": np.array([0, 0])}
        >>> g = {"pid": np.array([2, 2]), "camid": np.array([1, 1])}
        >>> hits, ap = per_query(d, q, g, "market1501")
        >>> hits.tolist(), ap.tolist()
        ([nan, 1.0], [nan, 1.0])
    """
    from reference import evaluate

    res = evaluate(distmat, query["pid"], gallery["pid"], query["camid"], gallery["camid"],
                   protocol=protocol, gallery_lists=gallery_lists, max_rank=1)
    first = np.asarray(res["first_match"])
    hits = np.where(first < 0, np.nan, (first == 0).astype(np.float64))
    return hits, np.asarray(res["AP"], np.float64)


def _mean_pct(values):
    values = np.asarray(values, np.float64)
    return float(100.0 * np.nanmean(values))


def _score(dump, distance, protocol):
    from reference import score

    res = score(dump.query, dump.gallery, distance=distance, protocol=protocol,
                gallery_lists=dump.gallery_lists, keep_distmat=True, max_rank=1)
    return res.distmat


def local_check(dump):
    """Aligned against unaligned local distance on the same local features:
    rank-1 and mAP (percent) of each, no training involved.

    Returns:
        ``{"aligned": {"rank1", "mAP"}, "unaligned": {...}}``, or None
        without local features.
    """
    from reference import unaligned_local_distance_matrix

    if dump.query.get("local") is None or dump.gallery.get("local") is None:
        return None
    protocol = dump.attrs["protocol"]
    out = {}
    for name, dist in (("aligned", _score(dump, "local", protocol)),
                       ("unaligned", unaligned_local_distance_matrix(
                           dump.query["local"], dump.gallery["local"]))):
        hits, ap = per_query(dist, dump.query, dump.gallery, protocol, dump.gallery_lists)
        out[name] = {"rank1": _mean_pct(hits), "mAP": _mean_pct(ap)}
    return out


def _curves(log_csv):
    """First and last epoch value of every loss column of ``log.csv``."""
    if not Path(log_csv).is_file():
        return {}
    with open(log_csv, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for col in (rows[0] if rows else {}):
        vals = []
        for row in rows:
            try:
                vals.append(float(row[col]))
            except (TypeError, ValueError):
                pass
        if vals and col not in ("epoch", "global_step", "lr", "time_s") and "/" not in col:
            out[col] = [vals[0], vals[-1]]
    return out


def run_results(run_dir, *, variant, seed):
    """The results of a finished ``train.py`` run (network 1, global feature).

    Returns:
        JSON-compatible dict: ``variant``, ``seed``, ``dataset``,
        ``num_query``, ``num_gallery``, ``query_pid`` [Q], ``rank1_hit`` [Q]
        (1 / 0 / None), ``AP`` [Q] (None: no true match), ``rank1`` and
        ``mAP`` (percent), ``global_local`` (train.py's global + local
        metrics, percent), ``peer`` (the peer's global rank-1 / mAP of a
        mutual run), ``local_check`` (:func:`local_check`), ``curves`` and
        ``train_seconds``.
    """
    from reference import read_dump

    run = RunDir(run_dir)
    summary = json.loads(run.metrics_path.read_text(encoding="utf-8"))
    name = min(summary["datasets"])
    ds = summary["datasets"][name]
    dump = read_dump(str(run.dump_path(name)))
    protocol = dump.attrs["protocol"]
    hits, ap = per_query(_score(dump, "global", protocol), dump.query, dump.gallery, protocol,
                         dump.gallery_lists)

    def pct(metrics):
        return {m: 100.0 * float(metrics[m]) for m in ("rank1", "mAP") if m in metrics}

    listed = lambda a: [None if not np.isfinite(x) else round(float(x), 6) for x in a]
    return {
        "variant": variant, "seed": int(seed), "dataset": name,
        "num_query": int(dump.num_query), "num_gallery": int(dump.num_gallery),
        "query_pid": [int(p) for p in dump.query["pid"]],
        "rank1_hit": listed(hits), "AP": listed(ap),
        "rank1": _mean_pct(hits), "mAP": _mean_pct(ap),
        "global_local": pct(ds["after"].get("global+local", {})),
        "peer": pct(ds["peer"]["after"].get("global", {})) if "peer" in ds else None,
        "peer_dump": str(run.dump_path(name + PEER_SUFFIX)) if "peer" in ds else None,
        "local_check": local_check(dump),
        "curves": _curves(run.log_path),
        "train_seconds": float(summary.get("train_seconds", float("nan"))),
    }
