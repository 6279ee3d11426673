"""Tests of reference.trihard against a dense brute-force transcription.

The oracle loops over anchors in float64, mines with explicit comparisons
(lowest index on ties), and computes local distances by enumerating every
monotone path; gradients are checked against central finite differences of
that oracle.
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from reference.trihard import trihard_reference
from tests.oracles import part_distance, part_distances, scored_paths

OPTIONS = [
    dict(normalize_features=nf, local_mining=lm, aligned=al)
    for nf in (False, True)
    for lm in ("global", "local")
    for al in (True, False)
]


# ----------------------------------------------------------------- oracle
def normalise(v):
    return v / math.sqrt(max(float(np.sum(v * v)), 1e-12))


def euclid(u, v):
    return math.sqrt(sum((float(a) - float(b)) ** 2 for a, b in zip(u, v)))


def path_lengths(x, y):
    """Lengths of every monotone path, sorted."""
    return [length for length, _ in scored_paths(part_distances(x, y))]


def local_dist(x, y, aligned):
    if aligned:
        return path_lengths(x, y)[0]
    return sum(part_distance(x[i], y[i]) for i in range(len(x)))


def mine(dist_row, labels, a):
    pos = neg = None
    for j in range(len(labels)):
        if labels[j] == labels[a]:
            if pos is None or dist_row[j] > dist_row[pos]:
                pos = j
        elif neg is None or dist_row[j] < dist_row[neg]:
            neg = j
    return pos, neg


def brute_loss(G, L, labels, gm, lm, normalize_features, local_mining, aligned, detail=False):
    n = len(labels)
    G = np.array(G, dtype=np.float64)
    if normalize_features:
        G = np.array([normalise(r) for r in G])
    gdist = [[euclid(G[a], G[b]) for b in range(n)] for a in range(n)]
    if L is not None:
        L = np.array(L, dtype=np.float64)
        if normalize_features:
            L = np.array([[normalise(p) for p in img] for img in L])
    glosses, llosses, info = [], [], []
    for a in range(n):
        p, q = mine(gdist[a], labels, a)
        if q is None:
            info.append((p, -1, None, None))
            continue
        glosses.append(max(gdist[a][p] - gdist[a][q] + gm, 0.0))
        if L is None:
            info.append((p, q, None, None))
            continue
        if local_mining == "local":
            lrow = [local_dist(L[a], L[b], aligned) for b in range(n)]
            lp, lq = mine(lrow, labels, a)
        else:
            lp, lq = p, q
        lap = local_dist(L[a], L[lp], aligned)
        lan = local_dist(L[a], L[lq], aligned)
        llosses.append(max(lap - lan + lm, 0.0))
        info.append((p, q, lap, lan))
    gl = sum(glosses) / len(glosses) if glosses else 0.0
    ll = sum(llosses) / len(llosses) if llosses else 0.0
    if detail:
        return gl, ll, info, gdist
    return gl, ll


def batch(seed, n=6, C=4, H=3, c=3, ids=3):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % ids
    rng.shuffle(labels)
    return rng.normal(size=(n, C)), rng.normal(size=(n, H, c)), labels


# ---------------------------------------------------------------- values
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(str(v) for v in o.values()))
@given(seed=st.integers(0, 2**32 - 1), gm=st.sampled_from([0.0, 0.3, 2.0]))
@settings(max_examples=8)
def test_losses_and_mining_match_brute_force(opts, seed, gm):
    G, L, labels = batch(seed)
    out = trihard_reference(G, L, labels, global_margin=gm, local_margin=gm + 0.1, **opts)
    gl, ll, info, gdist = brute_loss(G, L, labels, gm, gm + 0.1, detail=True, **opts)
    assert out["global_loss"] == pytest.approx(gl, rel=1e-12, abs=1e-12)
    assert out["local_loss"] == pytest.approx(ll, rel=1e-12, abs=1e-12)
    assert out["positive"].tolist() == [p for p, _, _, _ in info]
    assert out["negative"].tolist() == [q for _, q, _, _ in info]
    n = len(labels)
    np.testing.assert_allclose(out["dist_ap"], [gdist[a][info[a][0]] for a in range(n)], rtol=1e-12)
    np.testing.assert_allclose(out["dist_an"], [gdist[a][info[a][1]] for a in range(n)], rtol=1e-12)
    np.testing.assert_allclose(out["local_ap"], [i[2] for i in info], rtol=1e-12)
    np.testing.assert_allclose(out["local_an"], [i[3] for i in info], rtol=1e-12)
    assert out["grad_global"].shape == G.shape and out["grad_local"].shape == L.shape


def test_without_local_features():
    G, _, labels = batch(3)
    out = trihard_reference(G, None, labels)
    assert out["local_loss"] == 0.0 and out["grad_local"] is None and out["local_ap"] is None
    assert out["global_loss"] == pytest.approx(brute_loss(G, None, labels, 0.5, 0.5, False, "global", True)[0])


# ------------------------------------------------------------- gradients
def central_differences(f, arr, eps=1e-6):
    grad = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        up = f()
        arr[idx] = old - eps
        down = f()
        arr[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad


def well_conditioned(G, L, labels, gm, lm, opts, gap=1e-3):
    """No near-ties in mining or paths, no hinge near its kink."""
    n = len(labels)
    Gn = np.array([normalise(r) for r in G]) if opts["normalize_features"] else G
    Ln = np.array([[normalise(p) for p in img] for img in L]) if opts["normalize_features"] else L
    gd = np.array([[euclid(Gn[a], Gn[b]) for b in range(n)] for a in range(n)])
    ld = np.array([[local_dist(Ln[a], Ln[b], opts["aligned"]) for b in range(n)] for a in range(n)])
    for a in range(n):
        for dist in (gd[a], ld[a]):
            others = np.delete(dist, a)
            if np.min(np.abs(others[:, None] - others[None, :]) + np.eye(n - 1) * 9) < gap:
                return False
            if np.min(others) < gap:
                return False
        if opts["aligned"]:
            for b in range(n):
                if b == a:  # a path and its transpose tie; both give one gradient
                    continue
                lengths = path_lengths(Ln[a], Ln[b])
                if len(lengths) > 1 and lengths[1] - lengths[0] < gap:
                    return False
    _, _, info, _ = brute_loss(G, L, labels, gm, lm, detail=True, **opts)
    for a, (p, q, lap, lan) in enumerate(info):
        if abs(gd[a][p] - gd[a][q] + gm) < gap:
            return False
        if opts["local_mining"] == "local":
            lp, lq = mine(ld[a], labels, a)
            lap, lan = ld[a][lp], ld[a][lq]
        if abs(lap - lan + lm) < gap:
            return False
    return True


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(str(v) for v in o.values()))
@given(seed=st.integers(0, 2**32 - 1), gm=st.sampled_from([0.2, 1.0, 3.0]))
@settings(max_examples=4)
def test_gradients_match_central_differences(opts, seed, gm):
    G, L, labels = batch(seed, n=5, C=3, H=3, c=2, ids=2)
    lm = gm * 0.5
    assume(well_conditioned(G, L, labels, gm, lm, opts))
    out = trihard_reference(G, L, labels, global_margin=gm, local_margin=lm, **opts)
    fd_g = central_differences(lambda: brute_loss(G, L, labels, gm, lm, **opts)[0], G)
    fd_l = central_differences(lambda: brute_loss(G, L, labels, gm, lm, **opts)[1], L)
    np.testing.assert_allclose(out["grad_global"], fd_g, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out["grad_local"], fd_l, rtol=1e-5, atol=1e-7)
    assert out["global_loss"] == 0.0 or np.any(fd_g != 0)


def test_gradients_include_self_pair_and_shared_rows():
    # labels with a singleton identity: its anchor's hardest positive is itself
    G = np.array([[0.0, 0.0], [3.0, 0.5], [0.4, -2.1], [1.7, 1.1]])
    L = np.random.default_rng(1).normal(size=(4, 2, 2))
    labels = [0, 0, 1, 2]
    out = trihard_reference(G, L, labels, global_margin=2.5, local_margin=3.0)
    assert out["positive"][2] == 2 and out["positive"][3] == 3
    fd_g = central_differences(lambda: brute_loss(G, L, labels, 2.5, 3.0, False, "global", True)[0], G)
    fd_l = central_differences(lambda: brute_loss(G, L, labels, 2.5, 3.0, False, "global", True)[1], L)
    np.testing.assert_allclose(out["grad_global"], fd_g, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out["grad_local"], fd_l, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------ constructed cases
def test_lowest_index_wins_ties():
    # anchor 0 at 0: positives 1, 2 both at distance 2, negatives 3, 4 both at 1
    G = np.array([[0.0], [2.0], [-2.0], [1.0], [-1.0]])
    out = trihard_reference(G, None, [0, 0, 0, 1, 1])
    assert out["positive"][0] == 1 and out["negative"][0] == 3
    # duplicated rows: exact ties
    G = np.array([[1.0, 2.0], [1.0, 2.0], [5.0, 5.0], [5.0, 5.0]])
    out = trihard_reference(G, None, [0, 1, 0, 1])
    assert out["negative"].tolist() == [1, 0, 3, 2]
    assert out["positive"].tolist() == [2, 3, 0, 1]


def test_relu_at_zero_and_zero_distance_have_zero_gradient():
    # anchor 0: d_ap = d_an = 1 -> hinge exactly 0 with margin 0; others < 0;
    # anchor 2's positive is itself (distance 0)
    G = np.array([[0.0], [1.0], [-1.0]])
    L = np.zeros((3, 2, 1))
    out = trihard_reference(G, L, [0, 0, 1], global_margin=0.0, local_margin=0.0)
    assert out["global_loss"] == 0.0 and out["local_loss"] == 0.0
    assert np.all(out["grad_global"] == 0) and np.all(out["grad_local"] == 0)
    assert out["dist_ap"][2] == 0.0


def test_anchors_without_negative_are_left_out():
    G, L, _ = batch(0, n=4)
    out = trihard_reference(G, L, [7, 7, 7, 7])
    assert out["global_loss"] == 0.0 and out["local_loss"] == 0.0
    assert out["negative"].tolist() == [-1] * 4
    assert np.all(np.isnan(out["dist_an"]))
    assert np.all(out["grad_global"] == 0) and np.all(out["grad_local"] == 0)


def test_normalised_zero_row_is_finite():
    G = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    L = np.zeros((4, 2, 3))
    L[1:] = np.random.default_rng(0).normal(size=(3, 2, 3))
    out = trihard_reference(G, L, [0, 0, 1, 1], normalize_features=True, global_margin=1.5)
    assert np.all(np.isfinite(out["grad_global"])) and np.all(np.isfinite(out["grad_local"]))


@pytest.mark.parametrize("opts", OPTIONS[:4], ids=lambda o: "-".join(str(v) for v in o.values()))
def test_float32_agrees_with_float64(opts):
    G, L, labels = batch(11, n=10, C=8, H=4, c=5, ids=3)
    o64 = trihard_reference(G, L, labels, global_margin=1.0, local_margin=1.0, **opts)
    o32 = trihard_reference(G.astype(np.float32), L.astype(np.float32), labels,
                            global_margin=1.0, local_margin=1.0, **opts)
    assert o32["grad_global"].dtype == np.float32 and o32["grad_local"].dtype == np.float32
    assert o32["positive"].tolist() == o64["positive"].tolist()
    assert o32["global_loss"] == pytest.approx(o64["global_loss"], rel=1e-5)
    assert o32["local_loss"] == pytest.approx(o64["local_loss"], rel=1e-5)
    np.testing.assert_allclose(o32["grad_global"], o64["grad_global"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(o32["grad_local"], o64["grad_local"], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        (dict(global_features=np.zeros(4)), ValueError, "global_features"),
        (dict(global_features=np.full((4, 2), np.nan)), ValueError, "global_features"),
        (dict(labels=[0, 1, 1]), ValueError, "labels"),
        (dict(labels=[0.5, 1, 1, 0]), TypeError, "labels"),
        (dict(local_features=np.zeros((4, 3))), ValueError, "local_features"),
        (dict(local_features=np.zeros((3, 2, 3))), ValueError, "local_features"),
        (dict(local_features=np.full((4, 2, 3), np.inf)), ValueError, "local_features"),
        (dict(local_mining="both"), ValueError, "local_mining"),
        (dict(global_margin=float("nan")), ValueError, "global_margin"),
    ],
)
def test_invalid_input_names_the_argument(kwargs, exc, name):
    args = dict(global_features=np.ones((4, 2)), local_features=np.ones((4, 2, 3)), labels=[0, 0, 1, 1])
    args.update(kwargs)
    with pytest.raises(exc) as info:
        trihard_reference(**args)
    assert str(info.value).startswith(f"{name}:")


@pytest.mark.parametrize("mining", ["global", "local"])
def test_local_only_normalisation_equals_prescaled_local_parts(mining):
    # "local": the global rows stay as they are, every local part is divided
    # by its norm; the same as scaling the parts by hand (float64, NumPy)
    rng = np.random.default_rng(11)
    labels = np.repeat(np.arange(4), 3)
    g = rng.normal(size=(12, 10)) * 3.0
    loc = rng.normal(size=(12, 5, 6)) * 2.0
    scaled = loc / np.sqrt(np.maximum((loc ** 2).sum(axis=-1, keepdims=True), 1e-12))
    got = trihard_reference(g, loc, labels, normalize_features="local", local_mining=mining)
    want = trihard_reference(g, scaled, labels, normalize_features=False, local_mining=mining)
    unscaled = trihard_reference(g, loc, labels, normalize_features=False, local_mining=mining)
    both = trihard_reference(g, loc, labels, normalize_features="both", local_mining=mining)
    assert got["global_loss"] == pytest.approx(want["global_loss"], abs=1e-12)
    assert got["local_loss"] == pytest.approx(want["local_loss"], abs=1e-12)
    np.testing.assert_allclose(got["grad_global"], unscaled["grad_global"], atol=1e-12)
    assert got["local_loss"] != pytest.approx(unscaled["local_loss"], abs=1e-6)
    assert got["global_loss"] != pytest.approx(both["global_loss"], abs=1e-6)


def test_unaligned_local_distance_matrix_matches_brute_force():
    from reference import unaligned_local_distance_matrix

    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(5, 4, 3)), rng.normal(size=(7, 4, 3))
    got = unaligned_local_distance_matrix(X, Y)
    want = np.array([[sum(math.tanh(math.sqrt(((x[i] - y[i]) ** 2).sum()) / 2) for i in range(4))
                      for y in Y] for x in X])
    np.testing.assert_allclose(got, want, atol=1e-9)
    np.testing.assert_allclose(unaligned_local_distance_matrix(X.astype(np.float32),
                                                               Y.astype(np.float32)), want,
                               atol=1e-5)
    with pytest.raises(ValueError, match="parts"):
        unaligned_local_distance_matrix(X, Y[:, :3])
