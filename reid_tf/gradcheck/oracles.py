"""Numerical oracles: central finite differences and the mutual losses in NumPy.

:func:`central_differences` differentiates a NumPy function in float64
(:func:`reid_tf.gradcheck.autodiff.backend_central_differences` does it for a
loss on the Keras backend). The mutual losses (metric and classification) and
their gradients are written here in NumPy, with the stop-gradient operands
given separately: the finite differences are taken of the loss with those
operands frozen at their current values (the function whose gradient the
stop-gradient defines).
"""

import numpy as np

from reid_tf.gradcheck.results import FD_STEP


def central_differences(func, x, step=FD_STEP, coords=None):
    """Central finite differences of a scalar function at ``x`` (float64).

    Args:
        func: maps a float64 array shaped like ``x`` to a float.
        x: float64 array.
        step: difference step.
        coords: flat indices to differentiate (default: all).

    Returns:
        ``(coords, derivatives)``: int array and float64 array of the same
        length.

    Example:
        >>> c, g = central_differences(lambda v: float((v ** 2).sum()), np.ones(3))
        >>> bool(np.allclose(g, 2.0))
        True
    """
    x = np.array(x, dtype=np.float64)
    coords = np.arange(x.size) if coords is None else np.asarray(coords)
    out = np.empty(len(coords))
    flat = x.reshape(-1)
    for k, c in enumerate(coords):
        old = flat[c]
        flat[c] = old + step
        up = func(x)
        flat[c] = old - step
        down = func(x)
        flat[c] = old
        out[k] = (up - down) / (2 * step)
    return coords, out


def fd_coords(rng, size, limit):
    """Sorted flat indices to differentiate: all ``size``, or ``limit`` drawn by ``rng``.

    Example:
        >>> fd_coords(np.random.default_rng(0), 4, None).tolist()
        [0, 1, 2, 3]
        >>> len(fd_coords(np.random.default_rng(0), 100, 5))
        5
    """
    if limit is None or size <= limit:
        return np.arange(size)
    return np.sort(rng.choice(size, size=limit, replace=False))


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def metric_mutual_numpy(m1_live, m1_frozen, m2_live, m2_frozen):
    """Eq. 3 with the stop-gradient operands given separately (float64).

    Example:
        >>> m = np.zeros((2, 2))
        >>> metric_mutual_numpy(m, m, m + 1, m + 1)
        2.0
    """
    return float(np.mean((m1_frozen - m2_live) ** 2 + (m1_live - m2_frozen) ** 2))


def metric_mutual_grads(m1, m2):
    """Analytic ``(dL/dM1, dL/dM2)`` of the metric mutual loss."""
    return 2 * (m1 - m2) / m1.size, 2 * (m2 - m1) / m1.size


def kl_mutual_numpy(z1_live, z1_frozen, z2_live, z2_frozen):
    """Symmetric KL mutual loss with the stop-gradient operands given separately.

    Example:
        >>> z = np.array([[1.0, 2.0, 3.0]])
        >>> kl_mutual_numpy(z, z, z, z)
        0.0
    """
    lf1, lf2 = _log_softmax(z1_frozen), _log_softmax(z2_frozen)
    l1, l2 = _log_softmax(z1_live), _log_softmax(z2_live)
    kl21 = np.sum(np.exp(lf2) * (lf2 - l1), axis=1)
    kl12 = np.sum(np.exp(lf1) * (lf1 - l2), axis=1)
    return float(np.mean(kl21 + kl12))


def kl_mutual_grads(z1, z2):
    """Analytic ``(dL/dz1, dL/dz2)`` of the classification mutual loss."""
    p1, p2 = np.exp(_log_softmax(z1)), np.exp(_log_softmax(z2))
    b = z1.shape[0]
    return (p1 - p2) / b, (p2 - p1) / b
