"""Image pairs worth an alignment figure: same person, other camera, misaligned.

Alignment matters where the same body parts sit at different heights in the
two boxes. The shortest path S (``Hf + Hg - 1`` cells) is then much shorter
than the best path that stays within one cell of the diagonal (the same number
of cells, stripe i matched with stripes i - 1 .. i + 1 only: no shift), called
D here. :func:`alignment_candidates` ranks a dump's same-identity cross-camera
pairs by D - S; ``reid-evaluate --pick-alignment K`` prints them. The
stripe-by-stripe sum of d_ii (the paper's GL-Baseline distance, H cells) is
reported beside them.
"""

from dataclasses import dataclass

import numpy as np

from reference.figures.images import ReportError

__all__ = ["AlignmentCandidate", "alignment_candidates", "format_candidates", "part_distances",
           "unshifted_paths"]


@dataclass(frozen=True)
class AlignmentCandidate:
    """One query/gallery pair of a dump and its local distances.

    Attributes:
        query: row of the query in the dump.
        gallery: row of the gallery item.
        pid: their identity.
        aligned: the aligned local distance S (shortest path).
        unshifted: D, the shortest path within one cell of the diagonal.
        unaligned: the sum of d_ii, stripe i against stripe i.
    """

    query: int
    gallery: int
    pid: int
    aligned: float
    unshifted: float
    unaligned: float

    @property
    def gain(self):
        """How much the shift found by the alignment lowers the distance: ``D - S``."""
        return self.unshifted - self.aligned


def part_distances(X, Y):
    """Part distances d_ij = tanh(||x_i - y_j|| / 2) of N pairs, float64, from the
    differences themselves (exact near zero; memory N * H * H' * c).

    Args:
        X: [N, H, c]; Y: [N, H', c].

    Returns:
        [N, H, H'] float64.

    Example:
        >>> part_distances(np.zeros((1, 2, 3)), np.ones((1, 4, 3))).shape
        (1, 2, 4)
    """
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    return np.tanh(np.linalg.norm(X[:, :, None, :] - Y[:, None, :, :], axis=-1) / 2.0)


def unshifted_paths(d):
    """The shortest monotone paths within one cell of the diagonal (no shift).

    Args:
        d: [N, H, H] part distances (square).

    Returns:
        ``(lengths, paths)``: [N] float64 sums of d_ij over each path, and
        the path of the first pair as a list of (i, j) (2H - 1 cells, each
        step one row down or one column right, |i - j| <= 1; between equal
        predecessors it comes from (i - 1, j), as :func:`reference.local_path`).

    Example:
        >>> d = np.array([[[0.1, 0.9], [0.2, 0.3]]])
        >>> lengths, path = unshifted_paths(d)
        >>> round(float(lengths[0]), 6), path
        (0.6, [(0, 0), (1, 0), (1, 1)])
    """
    d = np.asarray(d, np.float64)
    n, h = d.shape[0], d.shape[1]
    dp = np.full((n, h, h), np.inf)
    for i in range(h):
        for j in range(max(0, i - 1), min(h, i + 2)):
            if i == 0 and j == 0:
                best = np.zeros(n)
            else:
                up = dp[:, i - 1, j] if i > 0 else np.full(n, np.inf)
                left = dp[:, i, j - 1] if j > 0 else np.full(n, np.inf)
                best = np.minimum(up, left)
            dp[:, i, j] = best + d[:, i, j]
    path, i, j = [(h - 1, h - 1)], h - 1, h - 1
    while (i, j) != (0, 0):
        up = dp[0, i - 1, j] if i > 0 else np.inf
        left = dp[0, i, j - 1] if j > 0 else np.inf
        i, j = (i - 1, j) if up <= left else (i, j - 1)
        path.append((i, j))
    return dp[:, -1, -1], path[::-1]


def alignment_candidates(dump, *, top=5, normalize=False):
    """The same-identity cross-camera pairs with the largest alignment gain.

    Args:
        dump: a :class:`reference.FeatureDump` with local features of equal
            part counts in query and gallery.
        top: how many pairs to return (>= 1).
        normalize: scale each stripe's features to unit length first (as
            ``--normalize``).

    Returns:
        list of :class:`AlignmentCandidate`, largest gain first (gains equal
        to 9 decimals tie; then the lower query, then gallery row first).
        Pairs with pid -1 (junk) and, under the market1501 protocol, pid 0
        (distractors) are left out.

    Raises:
        ReportError: no local features, or different part counts.

    Example:
        >>> from reference.synthetic import write_demo_dump
        >>> from reference import read_dump
        >>> best = alignment_candidates(read_dump(write_demo_dump("demo")), top=1)[0]
        >>> best.gain >= 0, best.aligned <= best.unshifted
        (True, True)
    """
    from reference import local_distance_pairs, normalize_rows, unaligned_local_distance_pairs

    if top < 1:
        raise ReportError(f"top: must be >= 1, got {top}")
    if not dump.has_local:
        raise ReportError(f"{dump.path}: the dump has no local features")
    lq, lg = dump.query["local"], dump.gallery["local"]
    if lq.shape[1] != lg.shape[1]:
        raise ReportError(f"{dump.path}: query and gallery have {lq.shape[1]} and "
                          f"{lg.shape[1]} parts; the unaligned sum needs equal counts")
    if normalize:
        lq, lg = normalize_rows(lq), normalize_rows(lg)
    lq, lg = np.asarray(lq, np.float64), np.asarray(lg, np.float64)
    q_pid, g_pid = np.asarray(dump.query["pid"]), np.asarray(dump.gallery["pid"])
    q_cam, g_cam = np.asarray(dump.query["camid"]), np.asarray(dump.gallery["camid"])
    ignored = {-1, 0} if dump.attrs.get("protocol", "").lower() == "market1501" else {-1}
    qi, gi = np.nonzero((q_pid[:, None] == g_pid[None, :]) & (q_cam[:, None] != g_cam[None, :])
                        & ~np.isin(q_pid, list(ignored))[:, None])
    if qi.size == 0:
        return []
    aligned = local_distance_pairs(lq[qi], lg[gi]).astype(np.float64)
    unaligned = unaligned_local_distance_pairs(lq[qi], lg[gi]).astype(np.float64)
    unshifted = np.concatenate([  # blocks of 256 pairs: [256, H, H, c] differences
        unshifted_paths(part_distances(lq[qi[a:a + 256]], lg[gi[a:a + 256]]))[0]
        for a in range(0, qi.size, 256)])
    gain = np.round(unshifted - aligned, 9)  # equal within rounding: a tie
    order = np.lexsort((gi, qi, -gain))[:top]
    return [AlignmentCandidate(int(qi[k]), int(gi[k]), int(q_pid[qi[k]]), float(aligned[k]),
                               float(unshifted[k]), float(unaligned[k])) for k in order]


def format_candidates(candidates, dump_path):
    """The candidates as text lines, with the ``--alignment`` flag of each.

    Example:
        >>> print(format_candidates([AlignmentCandidate(3, 17, 5, 1.25, 2.5, 1.5)], "d.h5"))
        d.h5: same-identity cross-camera pairs by alignment gain D - S
        (S: shortest path; D: shortest path without shift; U: sum of d_ii)
          --alignment 3 17   pid 5   S 1.250   D 2.500   gain 1.250   U 1.500
    """
    lines = [f"{dump_path}: same-identity cross-camera pairs by alignment gain D - S",
             "(S: shortest path; D: shortest path without shift; U: sum of d_ii)"]
    if not candidates:
        lines.append("  (none: no identity is seen by two cameras)")
    width = max((len(f"{c.query} {c.gallery}") for c in candidates), default=0)
    for c in candidates:
        lines.append(f"  --alignment {f'{c.query} {c.gallery}':<{width}}   pid {c.pid}   "
                     f"S {c.aligned:.3f}   D {c.unshifted:.3f}   gain {c.gain:.3f}   "
                     f"U {c.unaligned:.3f}")
    return "\n".join(lines)
