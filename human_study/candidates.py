"""The paper's candidate rule and the seeded random orders of a study (pure functions).

Section 5 of the paper: the candidates of a query are the model's top K
(K = 10 for CUHK03, 50 for Market-1501); every true match missing from them
replaces the lowest-ranked non-matching candidate, so that all true matches
are shown; the candidates are shuffled before they are shown.
"""

import numpy as np

from reid_common import canonical_protocol

#: K of the paper: 10 candidates for the cuhk03 protocol, 50 for the others.
DEFAULT_CANDIDATES = {"cuhk03": 10}
DEFAULT_K = 50


def default_candidates(protocol):
    """The paper's number of candidates for a protocol.

    Example:
        >>> default_candidates("cuhk03"), default_candidates("market1501"), default_candidates("duke")
        (10, 50, 50)
    """
    return DEFAULT_CANDIDATES.get(canonical_protocol(protocol), DEFAULT_K)


def candidate_positions(is_match, k):
    """The candidates of one query by the paper's rule, as positions in the model's ranking.

    Start from the model's top ``k``; each true match ranked below them, best
    first, replaces the lowest-ranked non-matching candidate still in the set.
    The result holds every true match and the best-ranked non-matches (when a
    query has more than ``k`` true matches, its ``k`` best-ranked ones).

    Args:
        is_match: [V] bool, the query's valid gallery in the model's order
            (best first): True where the item shows the query's identity.
        k: the number of candidates (>= 1); fewer when V < k.

    Returns:
        int64 array of 0-based positions in the ranking (model rank - 1),
        ascending.

    Example:
        >>> candidate_positions([False, False, True, False, False, True], 3).tolist()
        [0, 2, 5]
    """
    is_match = np.asarray(is_match, bool).reshape(-1)
    k = int(k)
    if k < 1:
        raise ValueError(f"k: expected an integer >= 1, got {k}")
    k = min(k, is_match.size)
    top = np.arange(k)
    missing = np.flatnonzero(is_match[k:]) + k
    non_matches = top[~is_match[:k]]
    n = min(missing.size, non_matches.size)
    if n == 0:
        return top.astype(np.int64)
    keep = np.setdiff1d(top, non_matches[non_matches.size - n:])
    return np.sort(np.concatenate([keep, missing[:n]])).astype(np.int64)


def display_order(num_candidates, seed, query_index):
    """The shown order of a query's candidates: a permutation seeded by (seed, query).

    Args:
        num_candidates: the number of candidates n.
        seed: the study's seed (>= 0).
        query_index: the query's row in the dump (>= 0), so that each query
            gets its own order whatever else the study holds.

    Returns:
        int64 permutation of range(n): entry j is the candidate shown j-th.

    Example:
        >>> sorted(display_order(5, 0, 3).tolist())
        [0, 1, 2, 3, 4]
        >>> display_order(5, 0, 3).tolist() == display_order(5, 0, 3).tolist()
        True
    """
    rng = np.random.default_rng([int(seed), int(query_index)])
    return rng.permutation(int(num_candidates)).astype(np.int64)


def sample_study_queries(eligible, num_queries, seed):
    """Draw the study's queries among the eligible ones, in the order they are shown.

    Args:
        eligible: query indices with at least one valid true match.
        num_queries: how many to draw (<= the number eligible).
        seed: the study's seed (>= 0).

    Returns:
        int64 array of distinct query indices, in the random order annotators
        see them.

    Example:
        >>> q = sample_study_queries([1, 4, 6, 9], 3, seed=0)
        >>> len(q), set(q.tolist()) <= {1, 4, 6, 9}
        (3, True)
    """
    eligible = np.asarray(eligible, np.int64).reshape(-1)
    num_queries = int(num_queries)
    if not 1 <= num_queries <= eligible.size:
        raise ValueError(
            f"num_queries: expected 1 to {eligible.size} (the queries with a valid true "
            f"match), got {num_queries}"
        )
    rng = np.random.default_rng(int(seed))
    return rng.choice(eligible, size=num_queries, replace=False).astype(np.int64)
