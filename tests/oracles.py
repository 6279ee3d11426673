"""Independent oracles shared by the tests: the aligned local distance by brute force.

Every monotone (right/down) path through the part-distance matrix is
enumerated; nothing here calls the code under test.
"""

import itertools
import math


def part_distance(u, v):
    """Eq. 1 in float64: (e^x - 1) / (e^x + 1) = tanh(x / 2), x = ||u - v||."""
    x = math.sqrt(sum((float(a) - float(b)) ** 2 for a, b in zip(u, v)))
    return (math.exp(x) - 1.0) / (math.exp(x) + 1.0)


def part_distances(x, y):
    """The [len(x), len(y)] part-distance matrix as nested lists of floats."""
    return [[part_distance(u, v) for v in y] for u in x]


def monotone_paths(hf, hg):
    """Every right/down path from (0, 0) to (hf - 1, hg - 1), as lists of cells."""
    steps = hf + hg - 2
    for downs in itertools.combinations(range(steps), hf - 1):
        i = j = 0
        path = [(0, 0)]
        for s in range(steps):
            if s in downs:
                i += 1
            else:
                j += 1
            path.append((i, j))
        yield path


def scored_paths(d):
    """(length, path) of every monotone path through matrix ``d`` (indexable as
    ``d[i][j]``, rows x columns given by ``len(d)`` and ``len(d[0])``), sorted."""
    return sorted(
        (sum(float(d[i][j]) for i, j in p), p) for p in monotone_paths(len(d), len(d[0]))
    )


def shortest_path_length(d):
    """The length of the shortest monotone path through ``d``."""
    return scored_paths(d)[0][0]


def brute_force(x, y):
    """(minimum path length, sorted list of (length, path)) of parts ``x`` and ``y``."""
    scored = scored_paths(part_distances(x, y))
    return scored[0][0], scored
