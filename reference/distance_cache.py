"""Distance matrices between the query and gallery features of one test set.

:class:`DistanceCache` computes each matrix at most once: the Euclidean
distance of the global features and the aligned local distance of the local
features, between any two of the splits ``query`` and ``gallery``. With a
shortlist of K, the local term of a row is computed only for its K nearest
columns by global distance (of the same pair of splits); elsewhere it is the
upper bound ``Ha + Hb - 1`` of an aligned distance between Ha and Hb stripes
(each of the ``Ha + Hb - 1`` steps of a path adds a part distance below 1), so
those columns rank behind the shortlist.
"""

import numbers

import numpy as np

from reid_common import Reporter

#: The distances :meth:`DistanceCache.matrix` returns.
DISTANCES = ("global", "local", "global+local")
SPLITS = ("query", "gallery")
_KINDS = ("global", "local")


def local_bound(parts_a, parts_b):
    """The value of the local term outside the shortlist: ``Ha + Hb - 1``.

    Example:
        >>> local_bound(8, 6)
        13.0
    """
    return float(parts_a + parts_b - 1)


def _row_blocks(m, n):
    """Row ranges for progress reports: about 50 blocks, at least 64 rows each."""
    del n
    step = max(64, -(-m // 50))
    for lo in range(0, m, step):
        yield lo, min(m, lo + step)


def _features(name, split, normalize):
    """The global [N, C] and local [N, H, c] (or None) features of one split, float32."""
    from reference import normalize_rows

    if not hasattr(split, "get") or "global" not in split:
        raise TypeError(f"{name}: expected a dict with 'global' features (and optionally 'local')")
    g = np.ascontiguousarray(split["global"], np.float32)
    if g.ndim != 2:
        raise ValueError(f"{name}['global']: expected a [N, C] array, got shape {g.shape}")
    loc = split.get("local")
    if loc is not None:
        loc = np.ascontiguousarray(loc, np.float32)
        if loc.ndim != 3 or len(loc) != len(g):
            raise ValueError(
                f"{name}['local']: expected a [{len(g)}, H, c] array, got shape {loc.shape}"
            )
    if normalize:
        g = normalize_rows(g)
        loc = normalize_rows(loc) if loc is not None else None
    return {"global": g, "local": loc}


class DistanceCache:
    """Distance matrices of one test set, each computed at most once.

    Args:
        query: dict with ``global`` [Q, C] and optionally ``local`` [Q, Hq, c]
            features (other keys are ignored).
        gallery: the same for the G gallery items.
        normalize: scale the features to unit length first (global rows;
            local features per part).
        shortlist: K >= 1, or None for the local term of every pair. K >= the
            number of columns also means every pair.
        progress: a :class:`reid_common.Reporter` (or anything with
            ``say(str)`` and ``count(str, done, total)``), or None for silence.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> q = {"global": rng.normal(size=(3, 4)), "local": rng.normal(size=(3, 2, 4))}
        >>> g = {"global": rng.normal(size=(5, 4)), "local": rng.normal(size=(5, 3, 4))}
        >>> cache = DistanceCache(q, g, shortlist=2)
        >>> d = cache.matrix("local", "query", "gallery")
        >>> d.shape, int((d == 4.0).sum(axis=1).min())
        ((3, 5), 3)
    """

    def __init__(self, query, gallery, *, normalize=False, shortlist=None, progress=None):
        if not isinstance(normalize, (bool, np.bool_)):
            raise TypeError(f"normalize: expected a bool, got {normalize!r}")
        self.shortlist = check_shortlist(shortlist)
        self.normalize = bool(normalize)
        self.progress = progress if progress is not None else Reporter(enabled=False)
        self.features = {
            "query": _features("query", query, self.normalize),
            "gallery": _features("gallery", gallery, self.normalize),
        }
        if self.features["query"]["global"].shape[1] != self.features["gallery"]["global"].shape[1]:
            raise ValueError(
                "gallery['global']: expected as many channels as query['global'], got "
                f"{self.features['gallery']['global'].shape[1]} and "
                f"{self.features['query']['global'].shape[1]}"
            )
        self.cache = {}

    @classmethod
    def from_dump(cls, dump, *, normalize=False, shortlist=None, progress=None):
        """The cache of a :class:`reference.FeatureDump`'s query and gallery."""
        return cls(dump.query, dump.gallery, normalize=normalize, shortlist=shortlist,
                   progress=progress)

    @property
    def has_local(self):
        """True when both splits have local features."""
        return all(self.features[s]["local"] is not None for s in SPLITS)

    def get(self, kind, a, b):
        """The ``global`` or ``local`` matrix between splits ``a`` and ``b`` (cached)."""
        if kind not in _KINDS:
            raise ValueError(f"kind: expected one of {', '.join(_KINDS)}, got {kind!r}")
        for name, split in (("a", a), ("b", b)):
            if split not in SPLITS:
                raise ValueError(f"{name}: expected one of {', '.join(SPLITS)}, got {split!r}")
        key = (kind, a, b)
        if key not in self.cache:
            self.cache[key] = self._global(a, b) if kind == "global" else self._local(a, b)
        return self.cache[key]

    def _global(self, a, b):
        from reference import pairwise_distance

        x = self.features[a]["global"]
        y = self.features[b]["global"]
        self.progress.say(f"global distances {a} x {b} [{len(x)}, {len(y)}]")
        return np.asarray(pairwise_distance(x, y), np.float32)

    def _local(self, a, b):
        from reference import global_topk, local_distance_matrix

        x = self.features[a]["local"]
        y = self.features[b]["local"]
        if x is None or y is None:
            missing = a if x is None else b
            raise ValueError(f"{missing}: no 'local' features; the local term needs them")
        if x.shape[2] != y.shape[2]:
            raise ValueError(
                f"{b}['local']: expected {x.shape[2]} channels per part like {a}['local'], "
                f"got shape {y.shape}"
            )
        m, n = len(x), len(y)
        k = self.shortlist
        what = f"local distances {a} x {b}"
        if k is None or k >= n:
            self.progress.say(f"{what} [{m}, {n}] (all pairs)")
            out = np.empty((m, n), np.float32)
            for lo, hi in _row_blocks(m, n):
                out[lo:hi] = local_distance_matrix(x[lo:hi], y)
                self.progress.count(what + ": rows", hi, m)
            return out
        self.progress.say(f"{what} [{m}, {n}] (shortlist K={k})")
        short = global_topk(self.get("global", a, b), k)
        out = np.full((m, n), local_bound(x.shape[1], y.shape[1]), np.float32)
        for lo, hi in _row_blocks(m, k):
            values = local_distance_matrix(x[lo:hi], y, shortlist=short[lo:hi])
            np.put_along_axis(out[lo:hi], short[lo:hi], np.asarray(values, np.float32), axis=1)
            self.progress.count(what + ": rows", hi, m)
        return out

    def matrix(self, distance, a, b, keep=True):
        """The chosen distance between two splits, [len(a), len(b)] float32.

        Args:
            distance: ``global``, ``local`` or ``global+local`` (their sum).
            a, b: ``query`` or ``gallery``.
            keep: False drops the matrices used from the cache (and forms the
                sum of ``global+local`` in place), so that large query-query /
                gallery-gallery matrices are not held twice.
        """
        if distance not in DISTANCES:
            raise ValueError(
                f"distance: expected one of {', '.join(DISTANCES)}, got {distance!r}"
            )
        kinds = ("global", "local") if distance == "global+local" else (distance,)
        parts = [self.get(kind, a, b) for kind in kinds]
        if not keep:  # the global matrix may also have been cached for a shortlist
            for kind in _KINDS:
                self.cache.pop((kind, a, b), None)
        if len(parts) == 1:
            return parts[0]
        if keep:
            return parts[0] + parts[1]
        total = parts[1]
        total += parts[0]
        return total


def check_shortlist(shortlist):
    """``shortlist`` as an int >= 1 or None; raise naming the argument otherwise."""
    if shortlist is None:
        return None
    if isinstance(shortlist, bool) or not isinstance(shortlist, numbers.Integral):
        raise TypeError(f"shortlist: expected an integer >= 1 or None, got {shortlist!r}")
    if shortlist < 1:
        raise ValueError(f"shortlist: expected an integer >= 1, got {shortlist}")
    return int(shortlist)
