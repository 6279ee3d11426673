"""Blocked Euclidean distance matrices.

Distances are computed as ``sqrt(max(||a||^2 + ||b||^2 - 2 a.b, 0))`` with the
inner products from one BLAS matrix product per block of rows and the rest of
the arithmetic in a Numba kernel, in the precision of the input (float32, or
float64 when an input is float64).
"""

import numba
import numpy as np
from numba import prange

from reference._validate import as_float_array

#: Rows of ``x`` handled per matrix product.
BLOCK_ROWS = 512


@numba.njit(cache=True, parallel=True)
def _finish_block(out, xx, yy, squared):
    """In place: ``out[i, j] = xx[i] + yy[j] - 2 * out[i, j]``, clamped at 0, sqrt unless squared."""
    m, n = out.shape
    for i in prange(m):
        xi = xx[i]
        for j in range(n):
            g = out[i, j]
            d = (xi + yy[j]) - (g + g)
            if d <= 0:
                out[i, j] = 0
            elif squared:
                out[i, j] = d
            else:
                out[i, j] = np.sqrt(d)


def squared_norms(x):
    """Row-wise squared norms ``[M]`` of ``x`` [M, C], in ``x``'s dtype."""
    return np.einsum("ij,ij->i", x, x)


def distance_block(x_block, xx_block, y, yy, squared, out):
    """Write the distances between ``x_block`` [b, C] and ``y`` [N, C] into ``out`` [b, N].

    ``xx_block`` and ``yy`` are the squared norms of the rows (see
    :func:`squared_norms`); all arrays share one float dtype and ``out`` is
    C-contiguous. Used by :func:`pairwise_distance` and by the re-ranking
    so that both produce identical values for identical rows.
    """
    np.matmul(x_block, y.T, out=out)
    _finish_block(out, xx_block, yy, squared)
    return out


def pairwise_distance(x, y, squared=False):
    """Euclidean distances between the rows of two matrices.

    Args:
        x: [M, C] array.
        y: [N, C] array.
        squared: return squared distances instead.

    Returns:
        [M, N] array, float32 (float64 when ``x`` or ``y`` is float64), with
        ``||x_i||^2 + ||y_j||^2 - 2 x_i . y_j`` clamped at 0 (and square-rooted
        unless ``squared``).

    Example:
        >>> import numpy as np
        >>> d = pairwise_distance(np.eye(3, dtype=np.float32), np.zeros((2, 3), np.float32))
        >>> d.shape, float(d[0, 0])
        ((3, 2), 1.0)
    """
    x = as_float_array("x", x, ndim=2, allow_empty=True)
    y = as_float_array("y", y, ndim=2, allow_empty=True)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"y: expected {x.shape[1]} columns (the feature size of x), got shape {y.shape}"
        )
    dtype = np.float64 if np.float64 in (x.dtype, y.dtype) else np.float32
    x = x.astype(dtype, copy=False)
    y = y.astype(dtype, copy=False)
    out = np.empty((x.shape[0], y.shape[0]), dtype=dtype)
    if out.size == 0:
        return out
    xx = squared_norms(x)
    yy = squared_norms(y)
    for i0 in range(0, x.shape[0], BLOCK_ROWS):
        i1 = min(i0 + BLOCK_ROWS, x.shape[0])
        distance_block(x[i0:i1], xx[i0:i1], y, yy, bool(squared), out[i0:i1])
    return out
