"""Re-ranking's parameter limits, large k1 near N, and its progress reports."""

import io

import numpy as np
import pytest

from reference import RerankParams
from reference.rerank import (MAX_K1, MAX_K2, check_rerank_params, re_rank,
                              re_rank_features)
from reid_common import Reporter
from tests.reference.rerank_oracle import dense_re_rank
from tests.reference.test_rerank import features, matrices


@pytest.mark.parametrize("kwargs, name", [
    ({"k1": MAX_K1 + 1}, "k1"),
    ({"k1": 100000}, "k1"),
    ({"k2": MAX_K2 + 1}, "k2"),
])
def test_limits_raise_naming_the_parameter(kwargs, name):
    params = {"k1": 20, "k2": 6, "lambda_value": 0.3, **kwargs}
    for call in (lambda: check_rerank_params(**params), lambda: RerankParams(**params),
                 lambda: re_rank_features(*features(0, 3, 9), **params)):
        with pytest.raises(ValueError, match=rf"^{name}: expected an integer in \[1, "):
            call()


@pytest.mark.parametrize("nq, ng, k1, k2", [
    (5, 60, MAX_K1, MAX_K2),    # k1 + 1 > N: every item is a neighbour
    (7, 90, 60, 9),             # k1 close to N
    (4, 120, 119, 3),
])
def test_large_k1_matches_the_dense_oracle(nq, ng, k1, k2):
    q, g = features(3, nq, ng)
    want = dense_re_rank(*matrices(q, g), k1=k1, k2=k2, lambda_value=0.3)
    np.testing.assert_allclose(re_rank_features(q, g, k1=k1, k2=k2), want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(re_rank(*matrices(q, g), k1=k1, k2=k2), want, atol=1e-5, rtol=0)


class Recorder:
    def __init__(self):
        self.calls = []

    def count(self, what, done, total):
        self.calls.append((what, done, total))


@pytest.mark.parametrize("engine", ["features", "matrices"])
def test_progress_reports_every_stage_to_the_end(engine):
    nq, ng = 40, 600  # three blocks of 256 rows
    q, g = features(1, nq, ng, dtype=np.float32)
    rec = Recorder()
    if engine == "features":
        out, silent = re_rank_features(q, g, progress=rec), re_rank_features(q, g)
    else:
        out, silent = re_rank(*matrices(q, g), progress=rec), re_rank(*matrices(q, g))
    np.testing.assert_array_equal(out, silent)
    stages = {}
    for what, done, total in rec.calls:
        stages.setdefault(what, []).append((done, total))
    assert len(stages) == 2
    for what, steps in stages.items():
        done = [d for d, _ in steps]
        assert done == sorted(done) and len(done) >= 3, (what, steps)
        assert steps[-1][0] == steps[-1][1]
    totals = sorted(steps[-1][1] for steps in stages.values())
    assert totals == [nq, nq + ng]


def test_progress_lines_carry_an_eta():
    stream = io.StringIO()
    q, g = features(2, 40, 600, dtype=np.float32)
    re_rank_features(q, g, progress=Reporter("t", stream=stream, interval=0.0))
    text = stream.getvalue()
    assert "t: re-ranking: distances (rows): " in text
    assert "ETA" in text
