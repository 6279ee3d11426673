"""Tests of reid_tf.distances against independent oracles.

Oracles: brute force over all monotone paths, a NumPy DP table with explicit
backtracking (tie rule), scipy's cdist, and the Numba reference.
"""


import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.distance import cdist

import reference
from tests.oracles import shortest_path_length
from reid_tf import distances

RNG = np.random.default_rng(20240601)


def _tie_rule_path_mask(d):
    """Cells of the path chosen by the tie rule, from a full NumPy DP table."""
    hf, hg = d.shape
    s = np.zeros_like(d)
    for i in range(hf):
        for j in range(hg):
            if i == 0 and j == 0:
                s[i, j] = d[i, j]
            elif i == 0:
                s[i, j] = s[i, j - 1] + d[i, j]
            elif j == 0:
                s[i, j] = s[i - 1, j] + d[i, j]
            else:
                s[i, j] = min(s[i - 1, j], s[i, j - 1]) + d[i, j]
    mask = np.zeros_like(d)
    i, j = hf - 1, hg - 1
    mask[i, j] = 1
    while (i, j) != (0, 0):
        if j == 0 or (i > 0 and s[i - 1, j] <= s[i, j - 1]):
            i -= 1
        else:
            j -= 1
        mask[i, j] = 1
    return mask


def _grad(fn, *arrays):
    tensors = [tf.constant(a) for a in arrays]
    with tf.GradientTape() as tape:
        for t in tensors:
            tape.watch(t)
        value = tf.reduce_sum(fn(*tensors))
    return value.numpy(), [g.numpy() for g in tape.gradient(value, tensors)]


@pytest.mark.parametrize("hf,hg", [(1, 1), (1, 5), (5, 1), (2, 2), (3, 4), (4, 3), (5, 5)])
def test_shortest_path_equals_brute_force(hf, hg):
    d = RNG.random((6, hf, hg))
    out = distances.shortest_path(d).numpy()
    expected = [shortest_path_length(x) for x in d]
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("hf,hg", [(3, 3), (4, 5), (5, 2)])
def test_shortest_path_gradient_follows_tie_rule(hf, hg):
    # values in {0, 1, 2}: many ties between predecessors
    d = RNG.integers(0, 3, size=(20, hf, hg)).astype(np.float64)
    _, (grad,) = _grad(distances.shortest_path, d)
    expected = np.stack([_tie_rule_path_mask(x) for x in d])
    np.testing.assert_array_equal(grad, expected)


def test_shortest_path_tie_prefers_upper_predecessor():
    # all cells equal: every path ties; backtracking from the end always
    # steps up, so the path is the first row and then the last column.
    d = np.ones((1, 3, 3))
    _, (grad,) = _grad(distances.shortest_path, d)
    expected = np.array([[1, 1, 1], [0, 0, 1], [0, 0, 1]], dtype=float)
    np.testing.assert_array_equal(grad[0], expected)


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 2e-6)])
@pytest.mark.parametrize("hf,hg", [(8, 8), (6, 9), (7, 3), (1, 4)])
def test_aligned_local_distance_matches_reference(dtype, rtol, hf, hg):
    x = RNG.normal(size=(10, hf, 16)).astype(dtype)
    y = RNG.normal(size=(10, hg, 16)).astype(dtype)
    out = distances.aligned_local_distance(x, y).numpy()
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out, reference.local_distance_pairs(x, y), rtol=rtol)


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-11), ("float32", 1e-4)])
def test_local_distance_gradient_matches_reference(dtype, rtol):
    x = RNG.normal(size=(6, 6, 8)).astype(dtype)
    y = RNG.normal(size=(6, 9, 8)).astype(dtype)
    y[:, 2] = x[:, 3]  # exact zero part distances: gradient 0 by convention
    _, (gx, gy) = _grad(distances.aligned_local_distance, x, y)
    rx, ry = reference.local_distance_grad(x, y)
    scale = max(np.abs(rx).max(), np.abs(ry).max())
    np.testing.assert_allclose(gx, rx, rtol=0, atol=rtol * scale)
    np.testing.assert_allclose(gy, ry, rtol=0, atol=rtol * scale)


def test_local_part_distances_definition():
    x = RNG.normal(size=(3, 4, 5))
    y = RNG.normal(size=(3, 6, 5))
    out = distances.local_part_distances(x, y).numpy()
    expected = np.stack([np.tanh(cdist(a, b) / 2) for a, b in zip(x, y)])
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_unaligned_local_distance_matches_reference():
    x = RNG.normal(size=(7, 8, 16))
    y = RNG.normal(size=(7, 8, 16))
    out = distances.unaligned_local_distance(x, y).numpy()
    np.testing.assert_allclose(out, reference.unaligned_local_distance_pairs(x, y), rtol=1e-12)
    with pytest.raises(ValueError, match="parts"):
        distances.unaligned_local_distance(x, y[:, :5])


@pytest.mark.parametrize("dtype,atol", [("float64", 1e-9), ("float32", 5e-3)])
def test_local_distance_matrix_matches_reference(dtype, atol):
    x = RNG.normal(size=(5, 6, 8)).astype(dtype)
    y = RNG.normal(size=(7, 6, 8)).astype(dtype)
    out = distances.local_distance_matrix(x, y).numpy()
    np.testing.assert_allclose(out, reference.local_distance_matrix(x, y), rtol=0, atol=atol)
    # the all-pairs matrix agrees with the paired function row by row
    pairs = distances.aligned_local_distance(np.repeat(x, 7, axis=0), np.tile(y, (5, 1, 1)))
    np.testing.assert_allclose(out.reshape(-1), pairs.numpy(), rtol=0, atol=atol)
    unaligned = distances.local_distance_matrix(x, y, aligned=False).numpy()
    expected = np.array([[reference.unaligned_local_distance_pairs(a[None], b[None])[0]
                          for b in y] for a in x])
    np.testing.assert_allclose(unaligned, expected, rtol=0, atol=atol)


def test_pairwise_distance_matches_cdist_and_zero_gradient():
    a = RNG.normal(size=(9, 12))
    b = RNG.normal(size=(5, 12))
    np.testing.assert_allclose(distances.pairwise_distance(a, b).numpy(), cdist(a, b),
                               rtol=1e-10)
    np.testing.assert_allclose(distances.pairwise_distance(a, b, squared=True).numpy(),
                               cdist(a, b) ** 2, rtol=1e-10)
    # self-distances: finite gradient everywhere
    _, (ga,) = _grad(lambda t: distances.pairwise_distance(t, t), a.astype("float32"))
    assert np.all(np.isfinite(ga))
    # a single zero distance has gradient exactly 0 (the convention)
    _, (gx, gy) = _grad(distances.pairwise_distance, a[:1], a[:1].copy())
    assert np.all(gx == 0) and np.all(gy == 0)


def test_safe_norm_value_and_zero_gradient():
    _, (g,) = _grad(distances.safe_norm, np.zeros((2, 3)))
    assert np.all(g == 0)
    value, (g,) = _grad(distances.safe_norm, np.array([[3.0, 4.0]]))
    assert value == 5.0
    np.testing.assert_allclose(g, [[0.6, 0.8]])


def test_xla_compiled_equals_eager():
    x = RNG.normal(size=(6, 8, 16)).astype("float32")
    y = RNG.normal(size=(6, 5, 16)).astype("float32")
    y[:, 1] = x[:, 1]

    def value_and_grads(a, b):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            v = tf.reduce_sum(distances.aligned_local_distance(a, b))
        return (v, *tape.gradient(v, [a, b]),
                distances.local_distance_matrix(a, b + 0.5),  # no zero parts
                distances.pairwise_distance(a[:, 0], b[:, 0]))

    eager = value_and_grads(tf.constant(x), tf.constant(y))
    xla = tf.function(value_and_grads, jit_compile=True)(tf.constant(x), tf.constant(y))
    for e, c in zip(eager, xla):
        np.testing.assert_allclose(c.numpy(), e.numpy(), rtol=2e-6, atol=2e-6)


def test_shortest_path_needs_static_part_axes():
    fn = tf.function(distances.shortest_path,
                     input_signature=[tf.TensorSpec([None, None, 4], tf.float32)])
    with pytest.raises(ValueError, match="static"):
        fn.get_concrete_function()
