"""Tests of the reid-gradcheck command: it passes, and it can fail."""

import inspect
import json
import pkgutil

import numpy as np
import tensorflow as tf

from reid_tf import distances, gradcheck, losses

_EXACT_SHORTEST_PATH = distances.shortest_path


def test_quick_run_passes_and_prints_table(tmp_path, capsys):
    out = tmp_path / "gradcheck.json"
    status = gradcheck.main(["--quick", "--quiet", "--json", str(out)])
    text = capsys.readouterr().out
    assert status == 0, text
    header = text.splitlines()[0].split()
    assert header[:4] == ["quantity", "shape", "dtype", "against"]
    assert "central FD" in text and "reference grad" in text and "FD not valid" in text
    payload = json.loads(out.read_text())
    assert payload["passed"] is True and payload["num_failed"] == 0
    kinds = {row["against"] for row in payload["checks"]}
    assert {"reference grad", "central FD", "analytic", "central FD (ZG frozen)"} <= kinds
    names = " ".join(row["quantity"] for row in payload["checks"])
    for part in ("local dist", "trihard", "metric mutual", "KL mutual", "model", "unaligned",
                 "mine=local", "norm", "duplicates", "rect"):
        assert part in names, part


def _wrong_gradient_shortest_path(d):
    """Correct values, gradient scaled by 1.001: must be caught."""
    exact = _EXACT_SHORTEST_PATH

    @tf.custom_gradient
    def fn(x):
        value = exact(x)

        def grad(upstream):
            with tf.GradientTape() as tape:
                tape.watch(x)
                v = exact(x)
            return 1.001 * tape.gradient(v, x, output_gradients=upstream)

        return value, grad

    return fn(tf.convert_to_tensor(d))


def test_injected_wrong_dp_gradient_fails(monkeypatch, capsys):
    monkeypatch.setattr(distances, "shortest_path", _wrong_gradient_shortest_path)
    status = gradcheck.main(["--quick", "--quiet", "--only", "local"])
    text = capsys.readouterr().out
    assert status == 1
    assert "FAIL" in text
    # values are still right, only gradient rows fail
    for line in text.splitlines():
        if " value " in line:
            assert "FAIL" not in line


def test_injected_missing_stop_gradient_fails(monkeypatch, capsys):
    def no_stop_gradient(dist1, dist2):
        return tf.reduce_mean(2 * tf.square(tf.cast(dist1, tf.float64) - tf.cast(dist2, tf.float64)))

    monkeypatch.setattr(losses, "metric_mutual_loss", no_stop_gradient)
    status = gradcheck.main(["--quick", "--quiet", "--only", "mutual"])
    text = capsys.readouterr().out
    assert status == 1
    assert any("metric mutual" in line and "FAIL" in line for line in text.splitlines())


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert gradcheck.main(["--only", "nonsense"]) == 2
    assert gradcheck.main(["--json", str(tmp_path / "missing" / "x.json")]) == 2
    assert gradcheck.main(["--fd-step", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("reid-gradcheck:") == 3 and "Traceback" not in err
    assert gradcheck.main(["--bogus-flag"]) == 2
    assert gradcheck.main(["--help"]) == 0
    assert "--fd-step" in capsys.readouterr().out


def test_no_exported_name_is_a_submodule_name():
    submodules = {info.name for info in pkgutil.iter_modules(gradcheck.__path__)}
    assert {"checks", "cli", "oracles", "results"} <= submodules
    assert sorted(set(gradcheck.__all__) & submodules) == []
    for name in gradcheck.__all__:
        assert not inspect.ismodule(getattr(gradcheck, name)), name


def test_compare_definition():
    assert gradcheck.compare(np.zeros(3), np.zeros(3)) == (0.0, 0.0)
    assert gradcheck.compare(np.ones(2), np.ones(3))[0] == float("inf")
    assert gradcheck.compare(np.array([np.nan]), np.array([1.0]))[1] == float("inf")
    abs_err, rel_err = gradcheck.compare(np.array([1.0, -4.0]), np.array([1.0, -3.0]))
    assert abs_err == 1.0 and rel_err == 0.25


def _brute_force_gap(features, labels):
    """Smallest gap between each anchor's hardest positive (negative) and the
    runner-up, by Euclidean distances of explicit differences."""
    n = len(labels)
    d = np.array([[np.sqrt(np.sum((features[i] - features[j]) ** 2)) for j in range(n)]
                  for i in range(n)])
    gap = np.inf
    for a in range(n):
        pos = sorted((d[a, j] for j in range(n) if labels[j] == labels[a]), reverse=True)
        neg = sorted(d[a, j] for j in range(n) if labels[j] != labels[a])
        for ranked in (pos, neg):
            if len(ranked) > 1:
                gap = min(gap, abs(ranked[0] - ranked[1]))
    return gap


def test_mining_gaps_find_ties_and_skip_their_central_differences():
    from reid_tf.gradcheck import checks

    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(3), 2)
    g = rng.normal(size=(6, 5))
    loc = rng.normal(size=(6, 3, 4))
    options = {"normalize_features": False, "local_mining": "global", "aligned": True}
    gaps = checks._mining_gaps(g, loc, labels, options)
    assert gaps["global"] == gaps["local"]
    assert np.isclose(gaps["global"], _brute_force_gap(g, labels), rtol=1e-9, atol=0)
    # anchor 0's two nearest negatives at exactly the same distance: a mirror image
    tied = g.copy()
    tied[2] = g[0] + np.array([1.0, 0, 0, 0, 0])
    tied[4] = g[0] - np.array([1.0, 0, 0, 0, 0])
    tied[3], tied[5] = tied[2] + 40, tied[4] - 40  # their partners far away
    tied[1] = g[0] + np.array([0, 0.1, 0, 0, 0])
    assert _brute_force_gap(tied, labels) == 0.0
    assert checks._mining_gaps(tied, loc, labels, options)["global"] < checks.MINING_TIE_TOL

    from reid_tf.gradcheck.results import Checker

    chk = Checker(verbose=False)
    checks._trihard_case(chk, rng, "tie", tied, loc, labels, options, True, "", True, 1e-6)
    fd_rows = [r for r in chk.rows if r.against == "central FD"]
    skipped = [r for r in chk.rows if "mining ties" in r.note]
    assert not fd_rows and skipped and all(r.passed for r in chk.rows)
