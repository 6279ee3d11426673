"""The exact (Clopper-Pearson) binomial confidence interval of a rank-1 rate."""


def binomial_ci(successes, trials, level=0.95):
    """The exact two-sided Clopper-Pearson interval of a proportion.

    The lower bound is the ``(1 - level) / 2`` quantile of
    Beta(k, n - k + 1) (0 when k = 0), the upper bound the
    ``(1 + level) / 2`` quantile of Beta(k + 1, n - k) (1 when k = n).

    Args:
        successes: k, correct answers (0 <= k <= n).
        trials: n, answers (>= 0; with n = 0 the interval is [0, 1]).
        level: the confidence level, in (0, 1).

    Returns:
        ``[low, high]`` floats in [0, 1].

    Example:
        >>> [round(v, 4) for v in binomial_ci(9, 10)]
        [0.555, 0.9975]
        >>> binomial_ci(0, 0)
        [0.0, 1.0]
    """
    from scipy.stats import beta

    k, n = int(successes), int(trials)
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"successes, trials: expected 0 <= successes <= trials, got {k}, {n}")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level: expected a number in (0, 1), got {level!r}")
    if n == 0:
        return [0.0, 1.0]
    alpha = 1.0 - float(level)
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return [low, high]
