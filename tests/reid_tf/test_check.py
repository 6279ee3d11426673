"""Tests of reid_tf.check: the TF-versus-reference cross-check must pass on
consistent implementations and fail when the reference is made wrong."""

import importlib
import json

import numpy as np
import pytest

from reference.dump import read_dump, write_dump
from reference.synthetic import clustered_features
from reid_tf.check import check_against_reference, format_check

ref_euclidean = importlib.import_module("reference.euclidean")
ref_local = importlib.import_module("reference.aligned")


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    data = clustered_features(24, 90, dim=64, num_identities=20, parts=6, part_dim=16, seed=1)
    path = tmp_path_factory.mktemp("check") / "feats.h5"
    write_dump(path, data["query"], data["gallery"], protocol="market1501")
    return read_dump(path)


def _scaled(fn, factor):
    def wrong(*args, **kwargs):
        return np.asarray(fn(*args, **kwargs)) * factor

    return wrong


def test_check_passes_on_consistent_dump(dump):
    result = check_against_reference(dump, samples=60, seed=0)
    assert result["passed"], format_check(result)
    assert set(result["kinds"]) == {"global", "local", "local_matrix"}
    assert result["kinds"]["global"]["pairs"] == 60 * 60
    assert result["kinds"]["local"]["pairs"] == 60
    assert result["kinds"]["local_matrix"]["pairs"] == 16 * 16
    for kind in result["kinds"].values():
        assert kind["max_rel"] < 1e-5 and kind["failed_pairs"] == 0
    assert format_check(result).endswith("passed")


def test_check_global_only_without_local_features(dump):
    dump = read_dump(dump.path)
    del dump.query["local"], dump.gallery["local"]
    result = check_against_reference(dump, samples=10, seed=3)
    assert set(result["kinds"]) == {"global"} and result["passed"]


def test_check_fails_when_reference_euclidean_is_scaled(dump, monkeypatch):
    monkeypatch.setattr(ref_euclidean, "pairwise_distance",
                        _scaled(ref_euclidean.pairwise_distance, 1.01))
    result = check_against_reference(dump, samples=40, seed=0)
    assert not result["passed"]
    assert not result["kinds"]["global"]["passed"]
    assert result["kinds"]["global"]["max_rel"] == pytest.approx(0.01 / 1.01, rel=1e-3)
    assert result["kinds"]["local"]["passed"]  # only the broken kind fails
    assert "FAILED" in format_check(result)


def test_check_fails_when_reference_local_distance_is_scaled(dump, monkeypatch):
    monkeypatch.setattr(ref_local, "local_distance_pairs",
                        _scaled(ref_local.local_distance_pairs, 1.01))
    result = check_against_reference(dump, samples=40, seed=0)
    assert not result["passed"] and not result["kinds"]["local"]["passed"]
    assert result["kinds"]["global"]["passed"] and result["kinds"]["local_matrix"]["passed"]


def test_check_finds_one_wrong_pair(dump, monkeypatch):
    """A reference wrong by 1e-3 relative in a single pair fails, and names that pair."""
    original = ref_local.local_distance_pairs
    target = {}

    def one_wrong(X, Y):
        out = np.array(original(X, Y))
        target["k"] = k = len(out) // 2
        out[k] *= 1.001
        return out

    monkeypatch.setattr(ref_local, "local_distance_pairs", one_wrong)
    result = check_against_reference(dump, samples=30, seed=5)
    local = result["kinds"]["local"]
    assert not local["passed"] and local["failed_pairs"] == 1
    # recover the sampled pair independently: the same seeded draw as the check
    from reid_tf.check import _sample_pairs

    q_idx, g_idx = _sample_pairs(dump, 30, 5)
    assert local["worst"] == [int(q_idx[target["k"]]), int(g_idx[target["k"]])]


def test_gradcheck_dump_mode(dump, monkeypatch, tmp_path, capsys):
    from reid_tf import gradcheck

    out = tmp_path / "check.json"
    status = gradcheck.main(["--dump", dump.path, "--samples", "20", "--seed", "2",
                             "--json", str(out), "--quiet"])
    text = capsys.readouterr().out
    assert status == 0, text
    assert text.splitlines()[0].split()[:3] == ["kind", "pairs", "max"]
    assert "check-tf: " in text and text.rstrip().endswith(f"({dump.path}, seed 2)")
    payload = json.loads(out.read_text())
    assert payload["passed"] is True and payload["dump"] == dump.path
    assert payload["samples"] == 20 and payload["seed"] == 2
    assert payload["kinds"]["global"]["pairs"] == 20 * 20

    monkeypatch.setattr(ref_euclidean, "pairwise_distance",
                        _scaled(ref_euclidean.pairwise_distance, 1.01))
    assert gradcheck.main(["--dump", dump.path, "--samples", "20", "--quiet"]) == 1
    text = capsys.readouterr().out
    assert any(line.startswith("global") and line.endswith("FAIL") for line in text.splitlines())


def test_gradcheck_dump_bad_input_exits_2(dump, tmp_path, capsys):
    from reid_tf import gradcheck

    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    assert gradcheck.main(["--dump", str(bad), "--quiet"]) == 2
    assert gradcheck.main(["--dump", str(tmp_path / "missing.h5"), "--quiet"]) == 2
    assert gradcheck.main(["--dump", dump.path, "--samples", "0", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("reid-gradcheck:") == 3 and "Traceback" not in err
    assert "--samples" in err and str(bad) in err
