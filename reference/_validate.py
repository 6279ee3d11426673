"""Input validation shared by the reference's public functions.

Each check raises ``ValueError`` (or ``TypeError``) with a message that names
the argument and what was expected, in the scikit-learn manner.
"""

import numpy as np


def as_float_array(name, value, ndim=None, dtype=None, allow_empty=False):
    """Return ``value`` as a C-contiguous float32 or float64 array.

    Args:
        name: the argument's name, used in error messages.
        value: array-like input.
        ndim: required number of dimensions (int or tuple of ints), or None.
        dtype: force this dtype; by default float64 input stays float64 and
            anything else becomes float32.
        allow_empty: accept arrays with a zero-length axis.
    """
    arr = np.asarray(value)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
    ):
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name}: expected a real array, got dtype {arr.dtype}")
    if dtype is None:
        dtype = np.float64 if arr.dtype == np.float64 else np.float32
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(
                f"{name}: expected a {want}-d array, got shape {arr.shape}"
            )
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: contains {bad} NaN or infinite value(s)")
    return arr


def as_int_array(name, value, ndim=1, allow_empty=False):
    """Return ``value`` as a C-contiguous int64 array (integers only)."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or arr.size == 0
    ):
        if np.issubdtype(arr.dtype, np.floating) and arr.size and np.all(
            np.isfinite(arr)
        ) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name}: expected an integer array, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    return arr


def check_length(name, arr, length, what):
    """Raise if ``len(arr) != length``; ``what`` says where the length comes from."""
    if len(arr) != length:
        raise ValueError(f"{name}: expected length {length} ({what}), got {len(arr)}")
