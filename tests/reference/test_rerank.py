"""reference.rerank against the dense N x N transcription in rerank_oracle."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import rerank
from reference.euclidean import pairwise_distance
from reference.rerank import re_rank, re_rank_features
from tests.reference.rerank_oracle import dense_re_rank


def matrices(q, g):
    return pairwise_distance(q, g), pairwise_distance(q, q), pairwise_distance(g, g)


def features(seed, nq, ng, dim=6, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(nq, dim)).astype(dtype), rng.normal(size=(ng, dim)).astype(dtype))


@given(
    nq=st.integers(1, 8), ng=st.integers(1, 30), k1=st.integers(1, 25), k2=st.integers(1, 8),
    lam=st.sampled_from([0.0, 0.3, 0.5, 1.0]), seed=st.integers(0, 2**31 - 1),
    f32=st.booleans(),
)
def test_matches_dense_oracle(nq, ng, k1, k2, lam, seed, f32):
    q, g = features(seed, nq, ng, dtype=np.float32 if f32 else np.float64)
    mats = matrices(q, g)
    got = re_rank(*mats, k1=k1, k2=k2, lambda_value=lam)
    want = dense_re_rank(*mats, k1=k1, k2=k2, lambda_value=lam)
    assert got.shape == (nq, ng) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "nq, ng, k1, k2, lam",
    [
        (10, 60, 20, 6, 0.3),   # the paper's setting
        (9, 50, 21, 6, 0.3),    # odd k1: round(10.5) = 10 (half to even)
        (8, 40, 3, 1, 0.3),     # k2 = 1: no query expansion; round(1.5) = 2
        (6, 40, 5, 12, 0.7),    # k2 > k1 + 1
        (3, 4, 20, 6, 0.3),     # k1 + 1 > N
    ],
)
def test_named_settings(nq, ng, k1, k2, lam):
    q, g = features(nq * 100 + ng, nq, ng)
    mats = matrices(q, g)
    want = dense_re_rank(*mats, k1=k1, k2=k2, lambda_value=lam)
    np.testing.assert_allclose(re_rank(*mats, k1, k2, lam), want, atol=1e-5, rtol=0)


@given(seed=st.integers(0, 2**31 - 1), levels=st.integers(2, 6))
def test_ties_follow_index_order(seed, levels):
    # few distinct distance values: many ties, resolved by index in both
    rng = np.random.default_rng(seed)
    nq, ng = 5, 25
    n = nq + ng
    a = rng.integers(1, levels + 1, (n, n)).astype(np.float32)
    a = np.triu(a, 1)
    a = a + a.T
    q_q, q_g, g_g = a[:nq, :nq], a[:nq, nq:], a[nq:, nq:]
    got = re_rank(q_g, q_q, g_g, k1=6, k2=3)
    np.testing.assert_allclose(got, dense_re_rank(q_g, q_q, g_g, k1=6, k2=3), atol=1e-5, rtol=0)


@given(
    nq=st.integers(1, 10), ng=st.integers(2, 40), k1=st.integers(1, 22), k2=st.integers(1, 7),
    seed=st.integers(0, 2**31 - 1), f32=st.booleans(),
)
def test_features_equal_matrices(nq, ng, k1, k2, seed, f32):
    q, g = features(seed, nq, ng, dim=12, dtype=np.float32 if f32 else np.float64)
    got = re_rank_features(q, g, k1=k1, k2=k2)
    want = re_rank(*matrices(q, g), k1=k1, k2=k2)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_features_in_several_blocks(monkeypatch):
    monkeypatch.setattr(rerank, "BLOCK_ROWS", 7)
    q, g = features(3, 11, 45, dim=8)
    mats = matrices(q, g)
    want = dense_re_rank(*mats)
    np.testing.assert_allclose(re_rank_features(q, g), want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(re_rank(*mats), want, atol=1e-5, rtol=0)


def test_reranking_changes_the_ranking():
    # not a no-op: the result differs from lambda * C alone
    q, g = features(5, 6, 40)
    mats = matrices(q, g)
    only_dist = re_rank(*mats, lambda_value=1.0)
    c = mats[0].astype(np.float64) ** 2
    full = np.block([[mats[1], mats[0]], [mats[0].T, mats[2]]]) ** 2
    np.testing.assert_allclose(only_dist, c / full.max(axis=1)[:6, None], atol=1e-6)
    assert np.abs(re_rank(*mats) - only_dist).max() > 1e-3


@pytest.mark.parametrize(
    "kwargs, err, name",
    [
        ({"k1": 0}, ValueError, "k1"),
        ({"k1": 2.5}, TypeError, "k1"),
        ({"k2": 0}, ValueError, "k2"),
        ({"k2": True}, TypeError, "k2"),
        ({"lambda_value": 1.5}, ValueError, "lambda_value"),
        ({"lambda_value": "x"}, TypeError, "lambda_value"),
    ],
)
def test_parameter_validation(kwargs, err, name):
    q, g = features(0, 3, 5)
    with pytest.raises(err, match=name):
        re_rank(*matrices(q, g), **kwargs)
    with pytest.raises(err, match=name):
        re_rank_features(q, g, **kwargs)


def test_input_validation():
    q, g = features(0, 3, 5)
    q_g, q_q, g_g = matrices(q, g)
    with pytest.raises(ValueError, match="q_q"):
        re_rank(q_g, g_g, g_g)
    with pytest.raises(ValueError, match="g_g"):
        re_rank(q_g, q_q, q_q)
    bad = q_g.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="q_g"):
        re_rank(bad, q_q, g_g)
    with pytest.raises(ValueError, match="q_g"):
        re_rank(q_g[0], q_q, g_g)
    with pytest.raises(ValueError, match="gallery_features"):
        re_rank_features(q, g[:, :2])
    with pytest.raises(ValueError, match="all distances"):
        re_rank_features(np.zeros((2, 3)), np.zeros((3, 3)))
