"""reference.euclidean against a float64 brute force over explicit differences."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import euclidean
from reference.euclidean import pairwise_distance


def brute_force(x, y):
    diff = np.asarray(x, np.float64)[:, None, :] - np.asarray(y, np.float64)[None, :, :]
    return np.sqrt(np.sum(diff * diff, axis=-1))


@given(
    m=st.integers(1, 12), n=st.integers(1, 12), c=st.integers(1, 9),
    seed=st.integers(0, 2**31 - 1), squared=st.booleans(), f64=st.booleans(),
)
def test_matches_brute_force(m, n, c, seed, squared, f64):
    rng = np.random.default_rng(seed)
    dtype = np.float64 if f64 else np.float32
    x = rng.normal(size=(m, c)).astype(dtype)
    y = rng.normal(size=(n, c)).astype(dtype)
    got = pairwise_distance(x, y, squared=squared)
    want = brute_force(x, y) ** 2
    assert got.shape == (m, n)
    assert got.dtype == dtype
    if not squared:
        assert np.all(got >= 0)
        # compare squares: the square root amplifies the expansion's rounding
        # error near zero distance (sqrt(eps * ||x||^2)), as documented
        got = got.astype(np.float64) ** 2
    tol = 1e-12 if f64 else 2e-5
    np.testing.assert_allclose(got, want, atol=tol * max(1.0, want.max()), rtol=0)


def test_blocks_and_zero_distance(monkeypatch):
    monkeypatch.setattr(euclidean, "BLOCK_ROWS", 3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 4)).astype(np.float32)
    got = pairwise_distance(x, x, squared=True)
    # squared: no square root amplifying the cancellation near zero distance
    np.testing.assert_allclose(got, brute_force(x, x) ** 2, atol=1e-5)
    assert np.all(got >= 0)
    # the clamp at 0: identical rows never give NaN
    big = np.full((2, 3), 1e3, np.float32)
    assert np.all(np.isfinite(pairwise_distance(big, big)))
    assert pairwise_distance(big, big, squared=True).min() == 0


def test_mixed_dtypes_and_lists():
    out = pairwise_distance([[0, 0], [3, 4]], np.zeros((1, 2), np.float64))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out[:, 0], [0.0, 5.0])
    assert pairwise_distance([[1, 2]], [[1, 2]]).dtype == np.float32


def test_empty():
    assert pairwise_distance(np.zeros((0, 3)), np.zeros((2, 3))).shape == (0, 2)


@pytest.mark.parametrize(
    "x, y, err, name",
    [
        (np.zeros((2, 3)), np.zeros((2, 4)), ValueError, "y:"),
        (np.zeros(3), np.zeros((2, 3)), ValueError, "x:"),
        (np.zeros((2, 3)), np.full((2, 3), np.nan), ValueError, "y:"),
        (np.array([["a"]]), np.zeros((1, 1)), TypeError, "x:"),
    ],
)
def test_validation(x, y, err, name):
    with pytest.raises(err, match=name):
        pairwise_distance(x, y)
