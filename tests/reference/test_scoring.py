"""reference.score / score_dump / DistanceCache against dense float64 transcriptions.

Oracles (tests/scoring_oracles.py): Euclidean distances by
broadcasting, aligned local distances by a brute-force dynamic programme, the
shortlist by a stable sort with the bound Hq + Hg - 1 written elsewhere, all in
float64; the metrics of those matrices by reference.metrics.evaluate.
"""

import numpy as np
import pytest

from reference import (
    DistanceCache,
    RerankParams,
    ScoreResult,
    re_rank,
    read_dump,
    score,
    score_dump,
    write_dump,
)
from tests.scoring_oracles import (
    assert_close_after_rerank,
    assert_matches,
    expected_metrics,
    make_data,
    oracle,
)


@pytest.fixture(scope="module")
def data():
    return make_data(seed=5, query_parts=3, gallery_parts=5)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("shortlist", [None, 6])
@pytest.mark.parametrize("distance", ["global", "local", "global+local"])
def test_score_equals_dense_float64(data, distance, shortlist, normalize):
    r = score(data["query"], data["gallery"], distance=distance, shortlist=shortlist,
              normalize=normalize, keep_distmat=True)
    assert isinstance(r, ScoreResult)
    used = shortlist if distance != "global" else None
    want = oracle(data, distance, shortlist=used, normalize=normalize)
    assert r.distmat.dtype == np.float32 and r.distmat.shape == (20, 90)
    np.testing.assert_allclose(r.distmat, want, rtol=1e-4, atol=2e-3)
    assert_matches(r.to_dict(), expected_metrics(data, want))
    assert r.shortlist == used and r.normalize is normalize and r.rerank is None
    if distance == "local" and shortlist is not None:
        bound = 3 + 5 - 1  # Hq + Hg - 1
        assert np.count_nonzero(want == bound) == 20 * (90 - shortlist)
        np.testing.assert_array_equal(r.distmat == bound, want == bound)
        inside = want != bound
        assert np.all(r.distmat[inside] < bound)


@pytest.mark.parametrize("distance", ["global", "global+local"])
def test_score_rerank_equals_rerank_of_dense_matrices(data, distance):
    params = RerankParams(k1=6, k2=3, lambda_value=0.2)
    r = score(data["query"], data["gallery"], distance=distance, shortlist=8, rerank=params)
    used = 8 if distance != "global" else None
    mats = [oracle(data, distance, shortlist=used, pair=pair)
            for pair in (("query", "gallery"), ("query", "query"), ("gallery", "gallery"))]
    expected = expected_metrics(data, re_rank(*mats, k1=6, k2=3, lambda_value=0.2))
    assert_close_after_rerank(r.to_dict(), expected)
    assert r.name == f"{distance}-rerank"
    d = r.to_dict()
    assert (d["rerank"], d["k1"], d["k2"], d["lambda"]) == (True, 6, 3, 0.2)


def test_score_protocols_and_ranks(data):
    q, g = data["query"], data["gallery"]
    r = score(q, g, protocol="CUHK03", repeats=3, seed=5, max_rank=12)
    assert r.protocol == "cuhk03" and len(r.cmc) == 12
    assert_matches(r.to_dict(), expected_metrics(data, oracle(data, "global"), protocol="cuhk03",
                                                 repeats=3, seed=5, max_rank=12))
    short = score(q, g, max_rank=7)
    assert short.rank(5) == short.cmc[4] and short.rank(10) is None
    assert short.to_dict()["rank10"] is None
    assert score(q, g, protocol="duke").mAP == score(q, g).mAP
    rng = np.random.default_rng(1)
    lists = [rng.choice(90, size=15, replace=False) for _ in range(20)]
    r = score(q, g, protocol="cuhk-sysu", gallery_lists=lists)
    expected = expected_metrics(data, oracle(data, "global"), protocol="cuhk-sysu",
                                gallery_lists=lists)
    assert_matches(r.to_dict(), expected)


def test_shared_cache_computes_each_matrix_once(data):
    calls = []
    cache = DistanceCache(data["query"], data["gallery"], shortlist=6)
    original = cache._global

    def counting(a, b):
        calls.append((a, b))
        return original(a, b)

    cache._global = counting
    first = score(data["query"], data["gallery"], distance="global", cache=cache)
    second = score(data["query"], data["gallery"], distance="global+local", shortlist=6,
                   cache=cache)
    assert calls == [("query", "gallery")]
    assert first.mAP != second.mAP


def test_score_dump_equals_score_and_reads_the_protocol(tmp_path, data):
    rng = np.random.default_rng(2)
    lists = [rng.choice(90, size=20, replace=False) for _ in range(20)]
    path = tmp_path / "d.h5"
    write_dump(path, data["query"], data["gallery"], protocol="cuhk-sysu", gallery_lists=lists)
    dump = read_dump(path)
    r = score_dump(dump, distance="global+local", shortlist=9)
    assert r.source == str(path) and r.protocol == "cuhk-sysu"
    plain = score(data["query"], data["gallery"], distance="global+local", shortlist=9,
                  protocol="cuhk-sysu", gallery_lists=lists)
    a, b = r.to_dict(), plain.to_dict()
    del a["seconds"], b["seconds"]
    assert a == {**b, "dump": str(path)}
    assert score_dump(dump, protocol="market1501").protocol == "market1501"


def _split(data, name, drop=()):
    return {k: v for k, v in data[name].items() if k not in drop}


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"distance": "cosine"}, "distance"),
        ({"protocol": "viper"}, "protocol"),
        ({"distance": "local", "shortlist": 0}, "shortlist"),
        ({"distance": "local", "shortlist": 2.5}, "shortlist"),
        ({"rerank": (0, 6, 0.3)}, "k1"),
        ({"rerank": (20, 0, 0.3)}, "k2"),
        ({"rerank": (20, 6, 1.5)}, "lambda_value"),
        ({"rerank": "yes"}, "rerank"),
        ({"max_rank": 0}, "max_rank"),
        ({"repeats": 0}, "repeats"),
        ({"seed": -1}, "seed"),
        ({"gallery_lists": [[0]] * 20}, "gallery_lists"),
        ({"protocol": "cuhk-sysu"}, "gallery_lists"),
        ({"normalize": "yes"}, "normalize"),
    ],
)
def test_bad_arguments_name_the_argument(data, kwargs, argument):
    with pytest.raises((ValueError, TypeError)) as err:
        score(data["query"], data["gallery"], **kwargs)
    message = str(err.value)
    assert message.startswith(argument + ":"), message
    assert "--" not in message and "\n" not in message


def test_missing_inputs_and_cache_mismatch_name_the_argument(data):
    no_local = _split(data, "query", drop=("local",))
    with pytest.raises(ValueError, match="^query: no 'local' features"):
        score(no_local, data["gallery"], distance="local")
    with pytest.raises(ValueError, match="^gallery: expected a dict with 'pid'"):
        score(data["query"], _split(data, "gallery", drop=("pid",)))
    cache = DistanceCache(data["query"], data["gallery"], shortlist=5)
    with pytest.raises(ValueError, match="^cache: built with shortlist=5"):
        score(data["query"], data["gallery"], distance="local", cache=cache)
    with pytest.raises(ValueError, match="^cache: built with normalize=False"):
        score(data["query"], data["gallery"], normalize=True, cache=cache)
    with pytest.raises(ValueError, match=r"^query\['global'\]"):
        DistanceCache({"global": np.zeros(3)}, data["gallery"])
