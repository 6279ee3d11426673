"""Paired statistics of the ablation: Student-t confidence intervals of the
per-seed differences, and a paired bootstrap over test identities.

Both compare two variants trained from the same seeds (the same data,
batches and initialisation), so the unit of pairing is the seed; the
bootstrap resamples test identities (with all their queries) and applies the
same resample to both variants and every seed.
"""

import math

import numpy as np

CONFIDENCE = 0.95


def _betacf(a, b, x):
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a, b, x):
    """Regularised incomplete beta function I_x(a, b), 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t, df):
    """P(T <= t) of Student's t distribution with ``df`` degrees of freedom.

    Example:
        >>> round(t_cdf(0.0, 4), 12), round(t_cdf(2.776445105, 4), 6)
        (0.5, 0.975)
    """
    if df <= 0:
        raise ValueError(f"df: must be > 0 (got {df})")
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p, df):
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom
    (bisection on :func:`t_cdf`, to about 1e-12).

    Example:
        >>> round(t_quantile(0.975, 4), 6)
        2.776445
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p: must be in (0, 1) (got {p})")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def paired_t(a, b, confidence=CONFIDENCE):
    """Mean of the per-seed differences ``a - b`` and its t confidence interval.

    Args:
        a, b: per-seed values of two variants, in the same seed order.
        confidence: coverage of the interval.

    Returns:
        ``(diff, (lo, hi), n)``; the interval is NaN with fewer than two seeds.

    Example:
        >>> diff, (lo, hi), n = paired_t([3.0, 4.0, 5.0], [1.0, 1.0, 1.0])
        >>> diff, n, round(hi - diff, 4)
        (3.0, 3, 2.4841)
    """
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if d.ndim != 1 or len(d) == 0:
        raise ValueError("a, b: expected two equally long non-empty sequences")
    n = len(d)
    diff = float(d.mean())
    if n < 2:
        return diff, (float("nan"), float("nan")), n
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * float(d.std(ddof=1)) / math.sqrt(n)
    return diff, (diff - half, diff + half), n


def identity_sums(values, pids):
    """Per-identity sums and counts of per-query values.

    Args:
        values: [Q] per-query values (NaN: a query left out, e.g. no match).
        pids: [Q] query identities.

    Returns:
        ``(ids, sums, counts)``: sorted identities, [I] sums and [I] counts of
        the finite values.

    Example:
        >>> identity_sums([1.0, 0.0, 1.0, float("nan")], [7, 7, 3, 3])
        (array([3, 7]), array([1., 1.]), array([1, 2]))
    """
    values = np.asarray(values, np.float64)
    pids = np.asarray(pids)
    ok = np.isfinite(values)
    ids, inverse = np.unique(pids, return_inverse=True)
    sums = np.bincount(inverse[ok], weights=values[ok], minlength=len(ids))
    counts = np.bincount(inverse[ok], minlength=len(ids))
    return ids, sums, counts


def bootstrap_draws(num_ids, resamples, seed):
    """The identity resamples: [resamples, num_ids] indices drawn with replacement.

    Example:
        >>> bootstrap_draws(3, 2, seed=0).shape
        (2, 3)
    """
    return np.random.default_rng(seed).integers(0, num_ids, size=(resamples, num_ids))


def paired_bootstrap(a, b, pids, *, resamples=2000, seed=0, confidence=CONFIDENCE):
    """Percentile bootstrap over test identities of the mean per-seed difference.

    Each resample draws test identities with replacement (every query of a
    drawn identity comes along, as often as it is drawn); the metric of a
    variant on a resample is the mean of its per-query values over the
    drawn queries, the statistic the mean over seeds of ``a - b``. The same
    draws are applied to both variants and every seed (paired).

    Args:
        a, b: [S, Q] per-query values (rows: seeds in the same order; NaN
            for a query without a true match, left out).
        pids: [Q] query identities (the same test set for every run).
        resamples: bootstrap resamples.
        seed: seed of the draws.
        confidence: coverage of the interval.

    Returns:
        ``(diff, (lo, hi))``: the full-sample statistic and the interval.

    Example:
        >>> a = [[1.0, 1.0, 0.0, 1.0]]; b = [[0.0, 1.0, 0.0, 0.0]]
        >>> diff, (lo, hi) = paired_bootstrap(a, b, [1, 1, 2, 3], resamples=200)
        >>> diff, lo <= diff <= hi
        (0.5, True)
    """
    a = np.atleast_2d(np.asarray(a, np.float64))
    b = np.atleast_2d(np.asarray(b, np.float64))
    if a.shape != b.shape or a.shape[1] != len(pids):
        raise ValueError(f"a, b: expected equal [seeds, {len(pids)}] arrays, got "
                         f"{a.shape} and {b.shape}")
    sums, counts = [], None
    for row_a, row_b in zip(a, b):
        if not np.array_equal(np.isfinite(row_a), np.isfinite(row_b)):
            raise ValueError("a, b: the queries left out (NaN) differ between the variants")
        _, sa, ca = identity_sums(row_a, pids)
        _, sb, _ = identity_sums(row_b, pids)
        sums.append(sa - sb)
        counts = ca if counts is None else counts
        if not np.array_equal(counts, ca):
            raise ValueError("a: the queries left out (NaN) differ between the seeds")
    diff_sums = np.mean(sums, axis=0)                      # [I]
    diff = float(diff_sums.sum() / counts.sum())
    draws = bootstrap_draws(len(counts), resamples, seed)  # [B, I]
    num = diff_sums[draws].sum(axis=1)
    den = counts[draws].sum(axis=1)
    stats = num[den > 0] / den[den > 0]
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(stats, [tail, 1.0 - tail])
    return diff, (float(lo), float(hi))
