"""Global and local (part) distances of AlignedReID, in ``keras.ops``.

Every function here traces into a static-shape graph: it runs eagerly, inside
``tf.function`` and under XLA (``jit_compile=True``).

Conventions shared with the Numba reference (``reference.aligned``):

* Euclidean norms use a *safe* square root: the value is the exact norm and
  the gradient at a zero distance is defined as 0 (instead of NaN/inf).
* Part distances are ``d_ij = tanh(||x_i - y_j||_2 / 2)``.
* The aligned local distance is the shortest monotone (right/down) path from
  ``(0, 0)`` to ``(Hf - 1, Hg - 1)`` through ``d`` (AlignedReID, Eq. 2):
  ``S[i, j] = d[i, j] + min(S[i - 1, j], S[i, j - 1])``.
* Tie rule: when both predecessors are equal, ``(i - 1, j)`` wins. The DP
  writes ``minimum(up, left)`` with ``up = S[i - 1, j]`` first, and the
  TensorFlow gradient of ``minimum(a, b)`` flows to ``a`` when ``a <= b``.
"""

import keras
import numpy as np
from keras import ops


def safe_sqrt(sq):
    """Square root with a zero gradient at 0.

    Args:
        sq: non-negative tensor (squared norms).

    Returns:
        ``sqrt(sq)`` (exactly 0 where ``sq <= 0``); its gradient is
        ``1 / (2 sqrt(sq))`` where ``sq > 0`` and 0 elsewhere.

    Example:
        >>> float(safe_sqrt(ops.convert_to_tensor(4.0)))
        2.0
    """
    positive = ops.greater(sq, 0)
    return ops.where(positive, ops.sqrt(ops.where(positive, sq, 1)), 0)


def safe_norm(x, axis=-1):
    """Euclidean norm along ``axis`` with a zero gradient at the origin.

    Args:
        x: tensor ``[..., c]``.
        axis: axis to reduce.

    Returns:
        ``||x||_2`` along ``axis``.

    Example:
        >>> float(safe_norm(ops.convert_to_tensor([3.0, 4.0])))
        5.0
    """
    return safe_sqrt(ops.sum(ops.square(x), axis=axis))


def pairwise_distance(a, b, squared=False):
    """All-pairs Euclidean distances between the rows of two matrices.

    Uses ``|a|^2 + |b|^2 - 2 a b^T`` (one matrix product, memory ``[M, N]``),
    clipped at 0. The gradient is finite everywhere; at a zero distance it
    is 0. Where single distances must be exact to the last bit (for
    instance the mined pairs of a loss), compute them as
    ``safe_norm(a_i - b_j)`` instead.

    Args:
        a: ``[M, C]`` features.
        b: ``[N, C]`` features (same dtype as ``a``).
        squared: return squared distances instead.

    Returns:
        ``[M, N]`` distances in the dtype of ``a``.

    Example:
        >>> import numpy as np
        >>> d = pairwise_distance(np.eye(2, dtype="float32"),
        ...                       np.zeros((3, 2), "float32"))
        >>> tuple(d.shape)
        (2, 3)
    """
    a = ops.convert_to_tensor(a)
    b = ops.convert_to_tensor(b, dtype=a.dtype)
    sq = (
        ops.sum(ops.square(a), axis=1)[:, None]
        + ops.sum(ops.square(b), axis=1)[None, :]
        - 2 * ops.matmul(a, ops.transpose(b))
    )
    sq = ops.where(ops.greater_equal(sq, 0), sq, ops.zeros_like(sq))  # max(sq, 0), dtype kept
    if squared:
        return sq
    return safe_sqrt(sq)


def _tanh_half(norm):
    # tanh(n / 2) = (1 - e^-n) / (1 + e^-n) for the norms n >= 0 here: no
    # overflow, and the dtype is kept on every backend (Keras' JAX tanh
    # computes float64 in float32)
    e = ops.exp(-norm)
    return (1 - e) / (1 + e)


def local_part_distances(x, y):
    """Part-to-part distances of paired local features.

    Args:
        x: ``[N, Hf, c]`` local features of the first sample of each pair.
        y: ``[N, Hg, c]`` local features of the second sample of each pair.

    Returns:
        ``[N, Hf, Hg]`` with ``d[n, i, j] = tanh(||x[n, i] - y[n, j]||_2 / 2)``
        (computed from explicit differences, so exact zeros stay exact and
        their gradient is 0).

    Example:
        >>> import numpy as np
        >>> d = local_part_distances(np.zeros((2, 3, 4), "float32"),
        ...                          np.zeros((2, 5, 4), "float32"))
        >>> tuple(d.shape)
        (2, 3, 5)
    """
    x = ops.convert_to_tensor(x)
    y = ops.convert_to_tensor(y, dtype=x.dtype)
    diff = x[:, :, None, :] - y[:, None, :, :]
    return _tanh_half(safe_norm(diff, axis=-1))


def _antidiagonal_index(hf, hg):
    """Index table ``[K, Hf]`` into ``d`` flattened to ``[Hf * Hg + 1]``.

    Row ``k`` lists the cells ``(i, k - i)`` of anti-diagonal ``k`` by their
    row ``i``; cells outside the grid point at the padding slot
    ``Hf * Hg``.
    """
    k = np.arange(hf + hg - 1)[:, None]
    i = np.arange(hf)[None, :]
    j = k - i
    valid = (j >= 0) & (j < hg)
    return np.where(valid, i * hg + j, hf * hg).astype("int32")


def shortest_path(d):
    """Shortest monotone path through a batch of distance grids (Eq. 2).

    Computes ``S[i, j] = d[i, j] + min(S[i - 1, j], S[i, j - 1])`` and returns
    ``S[Hf - 1, Hg - 1]``. The recursion runs along anti-diagonals
    (``Hf + Hg - 1`` sequential steps, each vectorised over the batch and
    the diagonal), with static shapes only, so it compiles under XLA.
    Rectangular grids are allowed. On ties the predecessor ``(i - 1, j)``
    receives the gradient (see the module docstring).

    Args:
        d: ``[N, Hf, Hg]`` non-negative part distances (static ``Hf``,
            ``Hg``).

    Returns:
        ``[N]`` path lengths.

    Example:
        >>> import numpy as np
        >>> float(shortest_path(np.ones((1, 3, 3), "float32"))[0])
        5.0
    """
    d = ops.convert_to_tensor(d)
    if len(d.shape) != 3 or d.shape[1] is None or d.shape[2] is None:
        raise ValueError(
            f"d: expected [N, Hf, Hg] with static Hf and Hg, got shape {tuple(d.shape)}"
        )
    hf, hg = int(d.shape[1]), int(d.shape[2])
    steps = hf + hg - 1
    n = ops.shape(d)[0]
    # Out-of-grid cells hold `big`; a valid cell always has at least one
    # valid predecessor, so no out-of-grid value is ever selected. `big` stays
    # finite (no inf arithmetic) and far from overflow after `steps` additions.
    big = float(np.finfo(keras.backend.standardize_dtype(d.dtype)).max) / (4.0 * (steps + 1))
    # Grid cells first, batch last: every DP step then works on whole rows.
    flat = ops.reshape(ops.transpose(d, (1, 2, 0)), (hf * hg, n))
    flat = ops.concatenate([flat, ops.full((1, n), big, dtype=d.dtype)], axis=0)
    # diagonals[k][i, :] = d[:, i, k - i]  (or `big` outside the grid)
    index = ops.convert_to_tensor(_antidiagonal_index(hf, hg))
    diagonals = ops.unstack(ops.take(flat, index, axis=0), axis=0)
    pad = ops.full((1, n), big, dtype=d.dtype)
    prev = diagonals[0]  # diagonal 0: only (0, 0) is valid
    for k in range(1, steps):
        # On diagonal k, row i: up = S[i-1, j] sits at row i-1 of diagonal
        # k-1; left = S[i, j-1] sits at row i of diagonal k-1.
        up = ops.concatenate([pad, prev[:-1]], axis=0)
        # min(up, prev) with TensorFlow's subgradient on every backend (a tie
        # goes to `up`); also keeps the dtype (Keras' torch minimum computes
        # float64 inputs in float32)
        prev = diagonals[k] + ops.where(ops.less_equal(up, prev), up, prev)
    return prev[hf - 1]


def aligned_local_distance(x, y):
    """Aligned local distance of paired samples (AlignedReID).

    Args:
        x: ``[N, Hf, c]`` local features.
        y: ``[N, Hg, c]`` local features.

    Returns:
        ``[N]``: shortest-path length through ``local_part_distances(x, y)``.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(4, 8, 16)).astype("float32")
        >>> tuple(aligned_local_distance(x, x[::-1]).shape)
        (4,)
    """
    return shortest_path(local_part_distances(x, y))


def unaligned_local_distance(x, y):
    """Local distance without alignment (GL-Baseline): ``sum_i d_ii``.

    Args:
        x: ``[N, H, c]`` local features.
        y: ``[N, H, c]`` local features (same ``H``).

    Returns:
        ``[N]``: the sum over parts of ``tanh(||x_i - y_i||_2 / 2)``.

    Example:
        >>> import numpy as np
        >>> z = np.zeros((2, 4, 3), "float32")
        >>> [float(v) for v in unaligned_local_distance(z, z)]
        [0.0, 0.0]
    """
    x = ops.convert_to_tensor(x)
    y = ops.convert_to_tensor(y, dtype=x.dtype)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"y: expected {x.shape[1]} parts like x for the unaligned distance, "
            f"got shape {tuple(y.shape)}"
        )
    return ops.sum(_tanh_half(safe_norm(x - y, axis=-1)), axis=1)


def local_distance_matrix(x, y, aligned=True):
    """Local distances between all pairs of two sets of samples.

    Part distances come from one matrix product over all parts
    (``|x|^2 + |y|^2 - 2 x y^T``), so memory is ``[M, N, Hf, Hg]``; the
    shortest paths run batched over the ``M * N`` pairs.

    Args:
        x: ``[M, Hf, c]`` local features.
        y: ``[N, Hg, c]`` local features.
        aligned: shortest-path distance (True) or ``sum_i d_ii`` (False,
            needs ``Hf == Hg``).

    Returns:
        ``[M, N]`` local distances.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(3, 4, 8)).astype("float32")
        >>> tuple(local_distance_matrix(x, x[:2]).shape)
        (3, 2)
    """
    x = ops.convert_to_tensor(x)
    y = ops.convert_to_tensor(y, dtype=x.dtype)
    m, hf, c = ops.shape(x)[0], int(x.shape[1]), int(x.shape[2])
    n, hg = ops.shape(y)[0], int(y.shape[1])
    if not aligned and hf != hg:
        raise ValueError(
            f"y: expected {hf} parts like x for the unaligned distance, "
            f"got shape {tuple(y.shape)}"
        )
    dist = pairwise_distance(
        ops.reshape(x, (m * hf, c)), ops.reshape(y, (n * hg, c))
    )
    d = _tanh_half(ops.reshape(dist, (m, hf, n, hg)))
    d = ops.transpose(d, (0, 2, 1, 3))  # [M, N, Hf, Hg]
    if not aligned:
        eye = ops.convert_to_tensor(np.eye(hf), dtype=d.dtype)
        return ops.sum(d * eye, axis=(2, 3))
    return ops.reshape(shortest_path(ops.reshape(d, (m * n, hf, hg))), (m, n))
