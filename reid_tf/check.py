"""Cross-check of the TensorFlow distances against the Numba reference on a dump.

``reid-gradcheck --dump DUMP`` calls :func:`check_against_reference`: a seeded
sample of query-gallery pairs of a feature dump is scored twice, with the
``keras.ops`` implementation used in training (:mod:`reid_tf.distances`) and
with the reference used in evaluation (:mod:`reference`), and the largest
differences are reported per kind of distance:

* ``global``: Euclidean distances between the S sampled query rows and the
  S sampled gallery rows (an [S, S] matrix), ``reid_tf.distances.
  pairwise_distance`` against ``reference.pairwise_distance``;
* ``local`` (dumps with local features): aligned local distances of the S
  sampled pairs, ``reid_tf.distances.aligned_local_distance`` against
  ``reference.local_distance_pairs``;
* ``local_matrix`` (same): all pairs of the first min(S, 16) sampled
  queries and gallery items, ``reid_tf.distances.local_distance_matrix``
  against ``reference.local_distance_matrix`` (the blocked path evaluation
  uses).

Half of the sampled pairs (where the gallery holds one) share the query's
identity, so that small distances, where float32 rounding matters most, are
represented.

Pass rule, for each pair: ``|tf - ref| <= rtol * |ref| + atol`` with
``rtol = 1e-4`` (float32). ``atol`` is 0 for ``local`` (both sides use
explicit differences) and covers the cancellation of the
``|a|^2 + |b|^2 - 2 a.b`` form both sides use for ``global`` and
``local_matrix``: near a zero distance that form is only accurate to about
``sqrt(eps) * |a|``, so ``atol = 4 sqrt(eps32) * max |row|`` for ``global``
and ``(Hq + Hg - 1) * 4 sqrt(eps32) * max |part|`` for ``local_matrix``.
Relative differences are reported as ``|tf - ref| / max(|ref|, atol, 1e-12)``.
"""

import numpy as np

__all__ = ["check_against_reference", "format_check", "format_check_table", "RTOL",
           "MATRIX_SIDE"]

#: Relative tolerance of a float32 comparison.
RTOL = 1e-4
#: Queries and gallery items of the ``local_matrix`` comparison (at most).
MATRIX_SIDE = 16
_SQRT_EPS32 = float(np.sqrt(np.finfo(np.float32).eps))


def _sample_pairs(dump, samples, seed):
    """S (query, gallery) index pairs; about half share the query's pid when possible."""
    rng = np.random.default_rng(seed)
    q_idx = rng.integers(0, dump.num_query, size=samples)
    g_idx = rng.integers(0, dump.num_gallery, size=samples)
    same = rng.random(samples) < 0.5
    g_pid = dump.gallery["pid"]
    by_pid = {}
    for g, pid in enumerate(g_pid):
        by_pid.setdefault(int(pid), []).append(g)
    for k in np.flatnonzero(same):
        items = by_pid.get(int(dump.query["pid"][q_idx[k]]))
        if items:
            g_idx[k] = items[int(rng.integers(0, len(items)))]
    return q_idx.astype(np.int64), g_idx.astype(np.int64)


def _compare(tf_values, ref_values, atol, rtol, index):
    """Summary of one kind: max abs/rel difference, worst pair, pass flag."""
    a = np.asarray(tf_values, np.float64)
    b = np.asarray(ref_values, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"check: TF gave shape {a.shape}, the reference {b.shape}")
    diff = np.abs(a - b)
    diff = np.where(np.isfinite(diff), diff, np.inf)
    rel = diff / np.maximum(np.maximum(np.abs(b), atol), 1e-12)
    ok = diff <= rtol * np.abs(b) + atol
    worst = int(np.argmax(diff)) if diff.size else 0
    return {
        "pairs": int(diff.size),
        "max_abs": float(diff.max()) if diff.size else 0.0,
        "max_rel": float(rel.max()) if diff.size else 0.0,
        "atol": float(atol),
        "rtol": float(rtol),
        "worst": [int(v) for v in index(worst)] if diff.size else None,
        "failed_pairs": int(diff.size - np.count_nonzero(ok)),
        "passed": bool(ok.all()),
    }


def check_against_reference(dump, samples=200, seed=0, rtol=RTOL):
    """Compare the TF distance ops with the reference on a sample of a dump's pairs.

    Args:
        dump: a :class:`reference.dump.FeatureDump` (features float32).
        samples: S, the number of sampled query-gallery pairs (>= 1).
        seed: seed of the sample (``numpy.random.default_rng``).
        rtol: relative tolerance (default 1e-4, float32).

    Returns:
        dict with ``samples``, ``seed``, ``kinds`` (``global`` and, with local
        features, ``local`` and ``local_matrix``; each a dict with ``pairs``,
        ``max_abs``, ``max_rel``, ``atol``, ``rtol``, ``worst`` (the [query,
        gallery] indices of the largest difference), ``failed_pairs`` and
        ``passed``) and ``passed`` (all kinds passed).

    Example:
        >>> import os, tempfile
        >>> from reference import read_dump, write_dump
        >>> from reference.synthetic import clustered_features
        >>> data = clustered_features(8, 30, dim=16, num_identities=8, parts=4, part_dim=8)
        >>> path = write_dump(os.path.join(tempfile.mkdtemp(), "d.h5"), data["query"],
        ...                   data["gallery"])
        >>> result = check_against_reference(read_dump(path), samples=20)
        >>> result["passed"], sorted(result["kinds"])
        (True, ['global', 'local', 'local_matrix'])
    """
    import importlib

    from reid_tf.backend import backend_name

    backend_name()  # loads Keras (TensorFlow with its start-up lines filtered)
    from keras import ops

    from reid_tf import distances as tf_dist

    # modules looked up at call time (the package root exports functions with
    # the same names as some modules)
    ref_euclidean = importlib.import_module("reference.euclidean")
    ref_local = importlib.import_module("reference.aligned")

    samples = int(samples)
    if samples < 1:
        raise ValueError(f"samples: must be >= 1, got {samples}")
    q_idx, g_idx = _sample_pairs(dump, samples, seed)
    kinds = {}

    xq = np.ascontiguousarray(dump.query["global"][q_idx], np.float32)
    xg = np.ascontiguousarray(dump.gallery["global"][g_idx], np.float32)
    tf_global = ops.convert_to_numpy(tf_dist.pairwise_distance(xq, xg))
    ref_global = ref_euclidean.pairwise_distance(xq, xg)
    max_norm = float(max(np.linalg.norm(xq, axis=1).max(), np.linalg.norm(xg, axis=1).max()))
    kinds["global"] = _compare(
        tf_global, ref_global, 4 * _SQRT_EPS32 * max_norm, rtol,
        lambda k: (q_idx[k // samples], g_idx[k % samples]),
    )

    if dump.has_local:
        lq = np.ascontiguousarray(dump.query["local"][q_idx], np.float32)
        lg = np.ascontiguousarray(dump.gallery["local"][g_idx], np.float32)
        tf_local = ops.convert_to_numpy(tf_dist.aligned_local_distance(lq, lg))
        ref_pairs = ref_local.local_distance_pairs(lq, lg)
        kinds["local"] = _compare(tf_local, ref_pairs, 0.0, rtol,
                                  lambda k: (q_idx[k], g_idx[k]))

        side = min(samples, MATRIX_SIDE)
        mq, mg = lq[:side], lg[:side]
        tf_matrix = ops.convert_to_numpy(tf_dist.local_distance_matrix(mq, mg))
        ref_matrix = ref_local.local_distance_matrix(mq, mg)
        max_part = float(max(np.linalg.norm(mq, axis=2).max(), np.linalg.norm(mg, axis=2).max()))
        steps = mq.shape[1] + mg.shape[1] - 1
        kinds["local_matrix"] = _compare(
            tf_matrix, ref_matrix, steps * 4 * _SQRT_EPS32 * max_part, rtol,
            lambda k: (q_idx[k // side], g_idx[k % side]),
        )

    return {
        "samples": samples,
        "seed": int(seed),
        "kinds": kinds,
        "passed": all(k["passed"] for k in kinds.values()),
    }


def format_check(result):
    """One line summarising :func:`check_against_reference`'s result.

    Args:
        result: the dict it returned.

    Returns:
        str, for example ``"check-tf: global 40000 pairs max abs 1.9e-06 max
        rel 3.1e-07 ok; ...; passed"``.

    Example:
        >>> format_check({"kinds": {}, "passed": True})
        'check-tf: passed'
    """
    parts = []
    for name, k in result["kinds"].items():
        verdict = "ok" if k["passed"] else (
            f"FAILED ({k['failed_pairs']} pairs; worst query {k['worst'][0]}, "
            f"gallery {k['worst'][1]})"
        )
        parts.append(
            f"{name} {k['pairs']} pairs max abs {k['max_abs']:.2g} max rel "
            f"{k['max_rel']:.2g} {verdict}"
        )
    parts.append("passed" if result["passed"] else "FAILED")
    return "check-tf: " + "; ".join(parts)


def format_check_table(result):
    """:func:`check_against_reference`'s result as a table, one row per kind.

    Args:
        result: the dict it returned.

    Returns:
        str (no trailing newline).

    Example:
        >>> row = {"pairs": 4, "max_abs": 1e-7, "max_rel": 2e-7, "atol": 0.0, "rtol": 1e-4,
        ...        "worst": [0, 1], "failed_pairs": 0, "passed": True}
        >>> print(format_check_table({"kinds": {"local": row}, "passed": True}))
        kind          pairs  max abs  max rel  atol    rtol  failed  worst (q, g)  verdict
        local             4    1e-07    2e-07     0  0.0001       0  0, 1          ok
    """
    header = ("kind", "pairs", "max abs", "max rel", "atol", "rtol", "failed", "worst (q, g)",
              "verdict")
    rows = [header]
    for name, k in result["kinds"].items():
        worst = ", ".join(str(v) for v in k["worst"]) if k["worst"] is not None else "-"
        rows.append((name, str(k["pairs"]), f"{k['max_abs']:.2g}", f"{k['max_rel']:.2g}",
                     f"{k['atol']:.2g}", f"{k['rtol']:.2g}", str(k["failed_pairs"]), worst,
                     "ok" if k["passed"] else "FAIL"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    widths[0] = max(widths[0], 12)
    left = {0, 7, 8}
    lines = []
    for r in rows:
        cells = [c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
