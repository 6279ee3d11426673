"""The limits of k-reciprocal re-ranking's settings, checked before any work.

Kept apart from :mod:`reference.rerank` so that command lines can validate
their flags without loading Numba.
"""

import numbers

#: Largest k1 accepted (the neighbourhood cost grows like N * k1^2 and the
#: Jaccard step like Q * (k2 * k1)^2).
MAX_K1 = 200
#: Largest k2 accepted.
MAX_K2 = 50


def check_rerank_params(k1, k2, lambda_value):
    """Validate re-ranking settings; return ``(k1, k2, lambda_value)`` as int, int, float.

    Raises:
        TypeError: a value of the wrong type (the message names it).
        ValueError: k1 outside [1, MAX_K1], k2 outside [1, MAX_K2], lambda
            outside [0, 1].

    Example:
        >>> check_rerank_params(20, 6, 0.3)
        (20, 6, 0.3)
        >>> check_rerank_params(100000, 6, 0.3)
        Traceback (most recent call last):
        ...
        ValueError: k1: expected an integer in [1, 200], got 100000 (re-ranking's cost grows like N * k1^2)
    """
    for name, value, limit in (("k1", k1, MAX_K1), ("k2", k2, MAX_K2)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name}: expected an integer, got {value!r}")
        if value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value}")
        if value > limit:
            growth = "N * k1^2" if name == "k1" else "Q * (k2 * k1)^2"
            raise ValueError(f"{name}: expected an integer in [1, {limit}], got {value} "
                             f"(re-ranking's cost grows like {growth})")
    if isinstance(lambda_value, bool) or not isinstance(lambda_value, numbers.Real):
        raise TypeError(f"lambda_value: expected a number, got {lambda_value!r}")
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ValueError(f"lambda_value: expected a value in [0, 1], got {lambda_value}")
    return int(k1), int(k2), float(lambda_value)
