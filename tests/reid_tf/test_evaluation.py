"""reid_tf.evaluation (the in-training evaluation) against dense float64 transcriptions.

The rule under test: every local pair up to DENSE_LOCAL_PAIRS query-gallery
pairs, else the local term only for each query's LOCAL_SHORTLIST nearest
gallery items by global distance and Hq + Hg - 1 elsewhere.
"""

import os

import numpy as np
import pytest
from PIL import Image

from reference import re_rank
from reid_tf import evaluation
from tests.scoring_oracles import (
    assert_close_after_rerank,
    assert_matches,
    expected_metrics,
    make_data,
    oracle,
)


@pytest.fixture(scope="module")
def data():
    return make_data(seed=6, query_parts=4, gallery_parts=6)


def _oracle_rerank(data, k1, k2, lam, normalize):
    mats = [oracle(data, "global", normalize=normalize, pair=pair)
            for pair in (("query", "gallery"), ("query", "query"), ("gallery", "gallery"))]
    return expected_metrics(data, re_rank(*mats, k1=k1, k2=k2, lambda_value=lam))


@pytest.mark.parametrize("normalize", [False, True])
def test_evaluate_features_dense(data, normalize):
    res = evaluation.evaluate_features(data["query"], data["gallery"], protocol="market1501",
                                       normalize=normalize, rerank=(5, 2, 0.3))
    assert list(res) == list(evaluation.KINDS)
    for kind, distance in (("global", "global"), ("global+local", "global+local")):
        want = expected_metrics(data, oracle(data, distance, normalize=normalize))
        assert_matches(res[kind], want)
    assert_close_after_rerank(res["re-ranked"], _oracle_rerank(data, 5, 2, 0.3, normalize))


def test_evaluate_features_shortlist_above_the_dense_limit(data, monkeypatch):
    monkeypatch.setattr(evaluation, "DENSE_LOCAL_PAIRS", 20 * 90 - 1)
    monkeypatch.setattr(evaluation, "LOCAL_SHORTLIST", 7)
    res = evaluation.evaluate_features(data["query"], data["gallery"], protocol="market1501",
                                       kinds=("global+local",))
    want = expected_metrics(data, oracle(data, "global+local", shortlist=7))
    assert_matches(res["global+local"], want)
    dense = expected_metrics(data, oracle(data, "global+local"))
    assert want["mAP"] != pytest.approx(dense["mAP"], abs=1e-9)  # the shortlist mattered
    mats = evaluation.distance_matrices(data["query"], data["gallery"], kinds=("global+local",))
    np.testing.assert_allclose(mats["global+local"], oracle(data, "global+local", shortlist=7),
                               rtol=1e-4, atol=2e-3)


def test_rerank_parameters_are_clamped_to_the_test_set():
    rng = np.random.default_rng(0)
    split = lambda n: {"global": rng.normal(size=(n, 6)).astype(np.float32),  # noqa: E731
                       "pid": np.arange(n) % 3, "camid": np.arange(n) % 2 + 2 * (np.arange(n) > 2)}
    res = evaluation.evaluate_features(split(4), split(6), protocol="market1501",
                                       kinds=("re-ranked",), rerank=(20, 6, 0.3))
    assert set(res) == {"re-ranked"} and res["re-ranked"]["num_valid_queries"] >= 1


def test_plot_cmc_one_panel_per_test_set(tmp_path):
    m = {"cmc": [0.2, 0.5, 0.9] + [1.0] * 30, "rank1": 0.2, "rank5": 1.0, "mAP": 0.3,
         "mINP": 0.1}
    results = {"a": {"before": {"global": m}, "after": {"global": m, "re-ranked": m}},
               "b": {"before": {"global": m}, "after": {"global": m}}}
    path = tmp_path / "cmc.png"
    evaluation.plot_cmc(results, str(path))
    with Image.open(path) as img:
        # 5.5 x 4.2 inches per panel, plus 0.22 inches per legend row (3 rows below "a")
        assert img.format == "PNG" and img.size == (2 * 550, 420 + 66)
    assert os.listdir(tmp_path) == ["cmc.png"]
