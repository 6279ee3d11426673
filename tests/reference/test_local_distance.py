"""Tests of reference.aligned against independent oracles.

Oracles: the shortest path by enumerating every monotone path in plain
Python, part distances from Eq. 1 written as (e^x - 1) / (e^x + 1) in
float64, and float64 central finite differences of that brute force.
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from reference import (
    local_distance,
    local_distance_grad,
    local_distance_matrix,
    local_distance_pairs,
    local_path,
    unaligned_local_distance_pairs,
)
from tests.oracles import brute_force, monotone_paths, part_distance


# ----------------------------------------------------------------- oracles
def features(seed, shape, dtype=np.float64, scale=1.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(dtype)


grid = st.integers(min_value=1, max_value=5)
channels = st.integers(min_value=1, max_value=4)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


# ------------------------------------------------------------ values, paths
@given(hf=grid, hg=grid, c=channels, seed=seeds, scale=st.sampled_from([0.1, 1.0, 3.0]))
def test_distance_equals_brute_force_over_all_paths(hf, hg, c, seed, scale):
    x = features(seed, (hf, c), scale=scale)
    y = features(seed + 1, (hg, c), scale=scale)
    best, _ = brute_force(x, y)
    assert local_distance(x, y) == pytest.approx(best, rel=1e-12, abs=1e-12)


@given(
    hf=grid,
    hg=grid,
    c=channels,
    data=st.data(),
)
def test_distance_with_repeated_values(hf, hg, c, data):
    # small integer features: many exact ties and zero distances
    vals = st.integers(min_value=-1, max_value=1)
    x = np.array(data.draw(st.lists(st.lists(vals, min_size=c, max_size=c), min_size=hf, max_size=hf)), float)
    y = np.array(data.draw(st.lists(st.lists(vals, min_size=c, max_size=c), min_size=hg, max_size=hg)), float)
    best, _ = brute_force(x, y)
    assert local_distance(x, y) == pytest.approx(best, rel=1e-12, abs=1e-12)
    path = local_path(x, y)
    assert sum(part_distance(x[i], y[j]) for i, j in path) == pytest.approx(best, abs=1e-12)


@given(hf=grid, hg=grid, c=channels, seed=seeds)
def test_path_is_monotone_and_optimal(hf, hg, c, seed):
    x = features(seed, (hf, c))
    y = features(seed + 7, (hg, c))
    path = local_path(x, y)
    assert path[0] == (0, 0)
    assert path[-1] == (hf - 1, hg - 1)
    assert len(path) == hf + hg - 1
    for (i0, j0), (i1, j1) in zip(path, path[1:]):
        assert (i1 - i0, j1 - j0) in ((1, 0), (0, 1))
    assert all(isinstance(v, int) for cell in path for v in cell)
    total = sum(part_distance(x[i], y[j]) for i, j in path)
    assert total == pytest.approx(local_distance(x, y), rel=1e-12, abs=1e-12)


@given(h=grid, c=channels, seed=seeds)
def test_symmetric_for_square_grids(h, c, seed):
    x = features(seed, (h, c))
    y = features(seed + 3, (h, c))
    assert local_distance(x, y) == pytest.approx(local_distance(y, x), rel=1e-12, abs=1e-14)


@given(n=st.integers(1, 70), hf=grid, hg=grid, c=channels, seed=seeds)
def test_pairs_equal_loop_of_local_distance(n, hf, hg, c, seed):
    X = features(seed, (n, hf, c))
    Y = features(seed + 1, (n, hg, c))
    got = local_distance_pairs(X, Y)
    want = [local_distance(X[k], Y[k]) for k in range(n)]
    assert got.shape == (n,)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@given(n=st.integers(1, 12), h=grid, c=channels, seed=seeds)
def test_unaligned_pairs_sum_diagonal(n, h, c, seed):
    X = features(seed, (n, h, c))
    Y = features(seed + 1, (n, h, c))
    want = [sum(part_distance(X[k, i], Y[k, i]) for i in range(h)) for k in range(n)]
    np.testing.assert_allclose(unaligned_local_distance_pairs(X, Y), want, rtol=1e-12)


@given(
    m=st.integers(1, 9),
    n=st.integers(1, 13),
    hf=grid,
    hg=grid,
    c=channels,
    seed=seeds,
    block=st.sampled_from([None, (1, 1), (5, 7), (16, 30)]),
)
def test_matrix_equals_pairs_on_all_combinations(m, n, hf, hg, c, seed, block):
    X = features(seed, (m, hf, c))
    Y = features(seed + 1, (n, hg, c))
    got = local_distance_matrix(X, Y, block=block)
    qi, gi = np.meshgrid(np.arange(m), np.arange(n), indexing="ij")
    want = local_distance_pairs(X[qi.ravel()], Y[gi.ravel()]).reshape(m, n)
    assert got.shape == (m, n) and got.dtype == np.float64
    # the matrix mode uses ||a||^2 + ||b||^2 - 2ab: float64 rounding only
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-7)


@given(m=st.integers(1, 6), n=st.integers(1, 10), k=st.integers(1, 12), h=grid, seed=seeds)
def test_shortlist_equals_gathered_matrix(m, n, k, h, seed):
    X = features(seed, (m, h, 3))
    Y = features(seed + 1, (n, h + 1, 3))
    shortlist = np.random.default_rng(seed).integers(0, n, size=(m, k))
    got = local_distance_matrix(X, Y, shortlist=shortlist)
    full = local_distance_matrix(X, Y)
    assert got.shape == (m, k)
    np.testing.assert_allclose(got, np.take_along_axis(full, shortlist, axis=1), rtol=1e-9, atol=1e-7)


@given(m=st.integers(1, 5), n=st.integers(1, 40), h=st.integers(1, 8), seed=seeds)
@settings(max_examples=20)
def test_float32_agrees_with_float64(m, n, h, seed):
    X = features(seed, (m, h, 16), scale=0.3)
    Y = features(seed + 1, (n, h, 16), scale=0.3)
    x32, y32 = X.astype(np.float32), Y.astype(np.float32)
    x64, y64 = x32.astype(np.float64), y32.astype(np.float64)
    d32 = local_distance_matrix(x32, y32)
    d64 = local_distance_matrix(x64, y64)
    assert d32.dtype == np.float32 and d64.dtype == np.float64
    np.testing.assert_allclose(d32, d64, rtol=2e-6, atol=2e-6)
    k = min(m, n)
    p32 = local_distance_pairs(x32[:k], y32[:k])
    assert p32.dtype == np.float32
    np.testing.assert_allclose(p32, local_distance_pairs(x64[:k], y64[:k]), rtol=2e-6, atol=2e-6)
    s32 = local_distance_matrix(x32, y32, shortlist=np.zeros((m, 2), int))
    np.testing.assert_allclose(s32, d64[:, [0, 0]], rtol=2e-6, atol=2e-6)


def test_mixed_precision_computes_in_float64():
    X = features(0, (2, 3, 4))
    assert local_distance_pairs(X.astype(np.float32), X).dtype == np.float64


def test_float32_matrix_mode_per_cell_accuracy():
    # H = 1: the distance is a single part distance tanh(x / 2); float32
    # (rational tanh, expansion of the squared norm) within 1e-6 of float64
    rng = np.random.default_rng(5)
    X = (rng.normal(size=(40, 1, 32)) * 0.4).astype(np.float32)
    Y = (rng.normal(size=(300, 1, 32)) * 0.4).astype(np.float32)
    got = local_distance_matrix(X, Y).astype(np.float64)
    x = np.sqrt((((X[:, None, 0].astype(np.float64) - Y[None, :, 0]) ** 2)).sum(-1))
    assert np.abs(got - np.tanh(x / 2)).max() < 1e-6


# --------------------------------------------------------------- gradients
def brute_sum(X, Y):
    return sum(brute_force(X[k], Y[k])[0] for k in range(len(X)))


@given(n=st.integers(1, 2), hf=st.integers(1, 4), hg=st.integers(1, 4), c=st.integers(1, 3), seed=seeds)
@settings(max_examples=25)
def test_gradient_matches_central_differences(n, hf, hg, c, seed):
    X = features(seed, (n, hf, c))
    Y = features(seed + 1, (n, hg, c))
    for k in range(n):
        _, scored = brute_force(X[k], Y[k])
        # no near-tie between the best two paths, no near-zero part distance
        assume(len(scored) == 1 or scored[1][0] - scored[0][0] > 1e-3)
        assume(min(np.linalg.norm(X[k][:, None] - Y[k][None], axis=-1).ravel()) > 1e-3)
    dX, dY = local_distance_grad(X, Y)
    eps = 1e-6
    for arr, grad in ((X, dX), (Y, dY)):
        fd = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            up = brute_sum(X, Y)
            arr[idx] = old - eps
            down = brute_sum(X, Y)
            arr[idx] = old
            fd[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7)


def test_tie_rule_predecessor_above_wins():
    # d = [[0, t], [t, 0]] with t = tanh(1/2): both predecessors of (1, 1)
    # have length t; the path must come from (0, 1) = (i - 1, j).
    x = np.array([[0.0], [1.0]])
    y = np.array([[0.0], [1.0]])
    assert local_path(x, y) == [(0, 0), (0, 1), (1, 1)]
    t = math.tanh(0.5)
    assert local_distance(x, y) == pytest.approx(t, rel=1e-14)
    dX, dY = local_distance_grad(x[None], y[None])
    coef = (1 - t * t) / 2  # only cell (0, 1) contributes: x_0 - y_1 = -1
    np.testing.assert_allclose(dX[0], [[-coef], [0.0]], rtol=1e-14, atol=0)
    np.testing.assert_allclose(dY[0], [[0.0], [coef]], rtol=1e-14, atol=0)


def test_tie_rule_all_equal_goes_right_first():
    x = np.ones((3, 2))
    assert local_path(x, np.ones((4, 2))) == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 3), (2, 3)]


def test_zero_distance_has_zero_gradient():
    x = np.array([[0.3, -1.2, 2.0]])
    assert local_distance(x, x) == 0.0
    dX, dY = local_distance_grad(x[None], x[None].copy())
    assert np.all(dX == 0) and np.all(dY == 0)
    # zero cells on the path contribute nothing, non-zero cells do
    X = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    Y = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    dX, dY = local_distance_grad(X, Y)
    path = local_path(X[0], Y[0])
    assert path == [(0, 0), (0, 1), (1, 1)]
    t = math.tanh(0.5)
    coef = (1 - t * t) / 2  # cell (0, 1): x_0 - y_1 = (1, 0), norm 1
    np.testing.assert_allclose(dX[0], [[coef, 0.0], [0.0, 0.0]], atol=1e-15)
    np.testing.assert_allclose(dY[0], [[0.0, 0.0], [-coef, 0.0]], atol=1e-15)


def test_gradient_float32():
    X = features(1, (3, 4, 5))
    Y = features(2, (3, 6, 5))
    g64 = local_distance_grad(X, Y)
    g32 = local_distance_grad(X.astype(np.float32), Y.astype(np.float32))
    for a, b in zip(g32, g64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# -------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "call, exc, name",
    [
        (lambda: local_distance(np.zeros((2, 3, 4)), np.zeros((2, 4))), ValueError, "x"),
        (lambda: local_distance(np.zeros((2, 4)), np.zeros((2, 5))), ValueError, "y"),
        (lambda: local_path(np.zeros((2, 4)), np.zeros(4)), ValueError, "y"),
        (lambda: local_distance_pairs(np.zeros((2, 4)), np.zeros((2, 3, 4))), ValueError, "X"),
        (lambda: local_distance_pairs(np.zeros((2, 3, 4)), np.zeros((3, 3, 4))), ValueError, "Y"),
        (lambda: local_distance_pairs(np.full((1, 2, 2), np.nan), np.zeros((1, 2, 2))), ValueError, "X"),
        (lambda: local_distance_pairs(np.zeros((1, 2, 2)), np.full((1, 2, 2), np.inf)), ValueError, "Y"),
        (lambda: local_distance_pairs(np.array([[["a"]]]), np.zeros((1, 1, 1))), TypeError, "X"),
        (lambda: unaligned_local_distance_pairs(np.zeros((2, 3, 4)), np.zeros((2, 4, 4))), ValueError, "Y"),
        (lambda: local_distance_matrix(np.zeros((2, 3, 4)), np.zeros((5, 3, 3))), ValueError, "Y"),
        (lambda: local_distance_matrix(np.zeros((2, 3, 4)), np.zeros((5, 3, 4)), shortlist=[[0], [5]]), ValueError, "shortlist"),
        (lambda: local_distance_matrix(np.zeros((2, 3, 4)), np.zeros((5, 3, 4)), shortlist=[[0], [-1]]), ValueError, "shortlist"),
        (lambda: local_distance_matrix(np.zeros((2, 3, 4)), np.zeros((5, 3, 4)), shortlist=[[0]]), ValueError, "shortlist"),
        (lambda: local_distance_matrix(np.zeros((2, 3, 4)), np.zeros((5, 3, 4)), shortlist=[0, 1]), ValueError, "shortlist"),
        (lambda: local_distance_matrix(np.zeros((2, 3, 4)), np.zeros((5, 3, 4)), shortlist=[[0.5], [1]]), TypeError, "shortlist"),
        (lambda: local_distance_matrix(np.zeros((2, 3, 4)), np.zeros((5, 3, 4)), block=(0, 4)), ValueError, "block"),
        (lambda: local_distance_grad(np.zeros((2, 3, 4)), np.zeros((2, 3, 5))), ValueError, "Y"),
        (lambda: local_distance_grad(np.zeros((0, 3, 4)), np.zeros((0, 3, 4))), ValueError, "X"),
    ],
)
def test_invalid_input_names_the_argument(call, exc, name):
    with pytest.raises(exc) as info:
        call()
    assert str(info.value).startswith(f"{name}:")


def test_import_does_not_compile():
    import subprocess
    import sys

    code = (
        "import reference, reference.aligned, reference.trihard; "
        "from reference import _local_kernels as k; "
        "print(sum(len(getattr(k, n).signatures) for n in dir(k) "
        "if hasattr(getattr(k, n), 'signatures')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
