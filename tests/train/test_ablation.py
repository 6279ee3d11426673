"""The ablation package: its statistics against independent oracles (SciPy's
Student t, a brute-force bootstrap), the misalignment measure against the
rendering geometry, the JSON shape, and an end-to-end run with the training
replaced by a fake that writes what train.py writes (seconds, no TensorFlow
training)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from benchmarks import ablation
from benchmarks.ablation import cli, runner
from benchmarks.ablation.history import read_history
from benchmarks.ablation.stats import bootstrap_draws, identity_sums
from data_prep.synthetic import misalignment_summary, stripe_offsets
from reid_tf.run_dir import RunDir

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


# ------------------------------------------------------------ Student t
@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 12, 30, 200])
def test_t_quantile_and_cdf_match_scipy(df):
    for p in (0.5, 0.6, 0.9, 0.975, 0.995, 0.025):
        assert ablation.t_quantile(p, df) == pytest.approx(sps.t.ppf(p, df), rel=1e-9, abs=1e-9)
    for t in (-3.0, -0.4, 0.0, 0.7, 2.5, 10.0):
        assert ablation.t_cdf(t, df) == pytest.approx(sps.t.cdf(t, df), rel=1e-10, abs=1e-12)


def test_paired_t_interval_matches_scipy():
    rng = np.random.default_rng(1)
    for n in (2, 5, 9):
        a, b = rng.normal(60, 3, n), rng.normal(58, 3, n)
        diff, (lo, hi), count = ablation.paired_t(list(a), list(b))
        d = a - b
        want = sps.t.interval(0.95, n - 1, loc=d.mean(), scale=sps.sem(d))
        assert count == n and diff == pytest.approx(d.mean(), abs=1e-12)
        assert (lo, hi) == pytest.approx(want, abs=1e-9)
    diff, ci, n = ablation.paired_t([1.0], [0.5])
    assert diff == 0.5 and n == 1 and all(math.isnan(x) for x in ci)


# ------------------------------------------------------------ bootstrap
def _brute_bootstrap(a, b, pids, resamples, seed):
    """Resample identities and recompute every metric from the query lists."""
    ids = sorted(set(pids))
    draws = bootstrap_draws(len(ids), resamples, seed)
    values = []
    for row in draws:
        queries = [q for i in row for q in range(len(pids)) if pids[q] == ids[i]]
        per_seed = []
        for sa, sb in zip(a, b):
            xa = [sa[q] for q in queries if not math.isnan(sa[q])]
            xb = [sb[q] for q in queries if not math.isnan(sb[q])]
            if not xa:
                break
            per_seed.append(sum(xa) / len(xa) - sum(xb) / len(xb))
        else:
            values.append(sum(per_seed) / len(per_seed))
    full = []
    for sa, sb in zip(a, b):
        xa = [x for x in sa if not math.isnan(x)]
        xb = [x for x in sb if not math.isnan(x)]
        full.append(sum(xa) / len(xa) - sum(xb) / len(xb))
    return sum(full) / len(full), np.quantile(values, [0.025, 0.975])


def test_paired_bootstrap_matches_brute_force():
    rng = np.random.default_rng(3)
    pids = list(rng.integers(0, 15, 40))
    for metric in ("hits", "ap"):
        shape = (3, 40)
        a = rng.integers(0, 2, shape).astype(float) if metric == "hits" else rng.random(shape)
        b = rng.integers(0, 2, shape).astype(float) if metric == "hits" else rng.random(shape)
        a[:, 5] = b[:, 5] = np.nan  # a query without a true match
        diff, (lo, hi) = ablation.paired_bootstrap(a, b, pids, resamples=300, seed=4)
        want_diff, (wlo, whi) = _brute_bootstrap(a.tolist(), b.tolist(), pids, 300, 4)
        assert diff == pytest.approx(want_diff, abs=1e-12)
        assert (lo, hi) == pytest.approx((wlo, whi), abs=1e-12)
    with pytest.raises(ValueError, match="left out"):
        ablation.paired_bootstrap([[1.0, np.nan]], [[1.0, 0.0]], [1, 2])


def test_identity_sums():
    ids, sums, counts = identity_sums([1.0, 0.5, np.nan, 2.0], [9, 4, 4, 9])
    assert ids.tolist() == [4, 9] and sums.tolist() == [0.5, 3.0] and counts.tolist() == [1, 2]


# ---------------------------------------------------------- misalignment
def _brute_offsets(vertical_shift, scale_jitter, stripes, pairs, seed, height=448):
    """Per pair: the pixel row of body point v in each image, as render_image
    maps rows to person coordinates, turned into stripes."""
    rng = np.random.default_rng(seed)
    dy = rng.uniform(-vertical_shift, vertical_shift, size=(2, pairs))
    scale = np.exp(rng.uniform(-scale_jitter, scale_jitter, size=(2, pairs)))
    v = rng.uniform(0.0, 1.0, size=pairs)
    rows = np.arange(height) + 0.5
    out = []
    for k in range(pairs):
        where = []
        for img in (0, 1):
            box_h = 1.12 * scale[img, k]
            top = 0.5 - box_h / 2.0 + dy[img, k]
            v_rows = top + rows / height * box_h        # render_image: v of each row
            # the fractional row at which v is crossed (outside the image: extrapolated)
            where.append(np.interp(v[k], v_rows, rows, left=np.nan, right=np.nan) / height
                         if v_rows[0] <= v[k] <= v_rows[-1] else (v[k] - top) / box_h)
        out.append(stripes * abs(where[0] - where[1]))
    return np.array(out)


@pytest.mark.parametrize("shift, jitter, stripes", [(0.15, 0.2, 8), (0.35, 0.2, 7), (0.0, 0.3, 6)])
def test_stripe_offsets_match_the_rendering_geometry(shift, jitter, stripes):
    got = stripe_offsets(vertical_shift=shift, scale_jitter=jitter, stripes=stripes, pairs=300,
                         seed=2)
    want = _brute_offsets(shift, jitter, stripes, 300, 2)
    np.testing.assert_allclose(got, want, atol=1e-9)
    s = misalignment_summary(got)
    assert s["share_ge_1_stripe"] == np.mean(want >= 1) and s["mean_offset_stripes"] == \
        pytest.approx(want.mean())


def test_misalignment_of_the_issue_settings():
    # vertical_shift 0.15, scale_jitter 0.2, 8 stripes: 0.77 stripes, 31 % >= 1, 3 % >= 2
    s = misalignment_summary(stripe_offsets(vertical_shift=0.15, scale_jitter=0.2, stripes=8))
    assert s["mean_offset_stripes"] == pytest.approx(0.77, abs=0.01)
    assert s["share_ge_1_stripe"] == pytest.approx(0.31, abs=0.01)
    assert s["share_ge_2_stripes"] == pytest.approx(0.03, abs=0.01)
    chosen = ablation.Settings()
    s = misalignment_summary(stripe_offsets(vertical_shift=chosen.vertical_shift,
                                            scale_jitter=chosen.scale_jitter,
                                            stripes=chosen.stripes))
    assert s["share_ge_1_stripe"] > 0.5  # the documented choice: a majority >= 1 stripe


# --------------------------------------------------------------- fake runs
def _fake_dump(path, variant, seed, local):
    """A feature dump whose global features separate identities by a
    variant- and seed-dependent amount."""
    from reference import write_dump

    rng = np.random.default_rng([ablation.VARIANT_KEYS.index(variant), seed])
    data = np.random.default_rng(99)
    q_pid, g_pid = np.repeat(np.arange(1, 21), 2), np.repeat(np.arange(1, 21), 4)
    centres = data.normal(size=(21, 8))

    def split(pids, cam):
        noise = 1.0 + 0.2 * ablation.VARIANT_KEYS.index(variant) + 0.1 * rng.random()
        out = {"global": (centres[pids] + noise * rng.normal(size=(len(pids), 8))).astype(
            np.float32), "pid": pids, "camid": np.full(len(pids), cam)}
        if local:
            out["local"] = rng.normal(size=(len(pids), 4, 3)).astype(np.float32)
        return out

    write_dump(str(path), split(q_pid, 1), split(g_pid, 2), protocol="market1501")


class FakeTrainer:
    """Replaces runner.train_run: writes a finished run directory (metrics,
    dump, log.csv) like train.py, and records the arguments."""

    def __init__(self):
        self.calls = []

    def __call__(self, args, run_dir, log_path, threads=None):
        self.calls.append((str(run_dir), list(args)))
        run = RunDir(run_dir)
        run.path.mkdir(parents=True, exist_ok=True)
        variant = run.path.parent.name
        seed = int(run.path.name[len("seed"):])
        if variant.startswith("pretrain"):
            variant = "baseline"
        local = "--no-local" not in args
        run.features_dir.mkdir(exist_ok=True)
        _fake_dump(run.dump_path("synthetic"), variant, seed, local)
        ds = {"protocol": "market1501", "num_query": 40, "num_gallery": 80,
              "after": {"global": {"rank1": 0.5, "mAP": 0.4}}, "before": {}}
        if "--mutual" in args:
            ds["peer"] = {"after": {"global": {"rank1": 0.45, "mAP": 0.35}}, "before": {}}
        run.metrics_path.write_text(json.dumps({"datasets": {"synthetic": ds},
                                                "train_seconds": 3.0}))
        run.log_path.write_text("epoch,loss,global_loss,id_loss\n1,3.0,1.0,2.0\n2,2.0,0.5,1.5\n")
        (run.path / "model.keras").write_text("fake")
        run.set_status("finished")
        return 0


@pytest.fixture
def fake(monkeypatch, tmp_path):
    trainer = FakeTrainer()
    monkeypatch.setattr(runner, "train_run", trainer)
    monkeypatch.setattr(runner, "export_backbone",
                        lambda model, out: out.write_bytes(HDF5_SIGNATURE + b"fake"))
    monkeypatch.setattr(runner, "prepare_data",
                        lambda settings, work, log, pretrain=False: tmp_path / (
                            "pre" if pretrain else "data"))
    import benchmarks.ablation.shares as shares

    monkeypatch.setattr(shares, "measure", lambda settings, run, seed: {
        "rescaled_weights": [0.5, 2.0], "paper_weights": [0.01, 0.001], "target_share": 0.075,
        "ratios": {}, "shares": {"paper": {"kl": 0.004, "metric": 1e-5},
                                 "rescaled": {"kl": 0.07, "metric": 0.08}},
        "batches": 4, "seed": seed})
    return trainer


def _argv(tmp_path, *extra):
    return ["--quick", "--seeds", "0", "1", "2", "--work-dir", str(tmp_path / "work"),
            "--json", str(tmp_path / "docs" / "ablation.json"),
            "--doc", str(tmp_path / "docs" / "ablation.md"), "--resamples", "200", *extra]


def test_end_to_end_with_fake_training(fake, tmp_path, capsys):
    assert ablation.main(_argv(tmp_path)) == 0
    data = json.loads((tmp_path / "docs" / "ablation.json").read_text())
    # the contract: exactly these keys, rank-1 and mAP in percent
    assert sorted(data) == ["claims", "misalignment", "test", "variants"]
    assert sorted(data["variants"]) == sorted(v.label for v in ablation.VARIANTS)
    for row in data["variants"].values():
        assert sorted(row) == ["mAP", "rank1", "seeds"] and row["seeds"] == [0, 1, 2]
        assert all(0 <= x <= 100 for x in row["rank1"] + row["mAP"])
    assert data["test"] == {"queries": 40, "gallery": 80}
    assert sorted(data["misalignment"]) == ["mean_offset_stripes", "share_ge_1_stripe",
                                            "share_ge_2_stripes"]
    methods = {c["method"] for c in data["claims"]}
    assert methods == {"paired t over seeds", "paired bootstrap over test identities"}
    for c in data["claims"]:
        assert sorted(c) == ["a", "b", "ci95", "diff", "method", "metric"]
        a, b = data["variants"][c["a"]], data["variants"][c["b"]]
        want = np.mean(np.array(a[c["metric"]]) - np.array(b[c["metric"]]))
        assert c["diff"] == pytest.approx(want, abs=2e-3)
        assert c["ci95"][0] <= c["diff"] <= c["ci95"][1]
    pairs = {(c["a"], c["b"]) for c in data["claims"]}
    assert {("AlignedReID", "Baseline"), ("AlignedReID", "GL-Baseline"),
            ("GL-Baseline", "Baseline"), ("AlignedReID+MM", "AlignedReID")} <= pairs
    runs = [(d, a) for d, a in fake.calls if "/cfg-" in d]
    for d, args in runs:
        # one pretraining is network 1's start in every run (as ImageNet weights would be)
        assert args[args.index("--weights") + 1].endswith("seed0.weights.h5")
        assert args[args.index("--normalize-features") + 1] == "local"
        if "--mutual" in args:
            assert args[args.index("--peer-weights") + 1].endswith("seed1000.weights.h5")
    assert sum("/pretrain-" in d for d, _ in fake.calls) == 2
    rescaled = [a for d, a in runs if "alignedreid_mm_rescaled" in d]
    assert rescaled and all(float(a[a.index("--mutual-kl-weight") + 1]) == 0.5 for a in rescaled)
    page = (tmp_path / "docs" / "ablation.md").read_text()
    assert "Quick run" in page and "NOT evidence" in page and "Not run yet" in page
    assert "| AlignedReID - Baseline | rank-1 |" in page
    stored = [json.loads(f.read_text()) for f in (tmp_path / "work").glob("cfg-*/*/seed*.json")]
    assert len(stored) == 15
    assert f"The 15 stored runs' train.py processes: " \
           f"{sum(r['wall_seconds'] for r in stored) / 60:.1f} min wall" in page
    # resumable: a second invocation trains nothing; its page says where the results came from
    n = len(fake.calls)
    assert ablation.main(_argv(tmp_path)) == 0
    assert len(fake.calls) == n
    assert ablation.main(_argv(tmp_path, "--report-only", "--doc",
                               str(tmp_path / "docs" / "rebuilt.md"))) == 0
    assert "Built from the stored results (`--report-only`)." in \
        (tmp_path / "docs" / "rebuilt.md").read_text()
    # a stored result per (variant, seed) holds the per-query values
    stored = next((tmp_path / "work").glob("cfg-*/alignedreid/seed0.json"))
    result = json.loads(stored.read_text())
    assert len(result["rank1_hit"]) == len(result["AP"]) == len(result["query_pid"]) == 40
    assert result["rank1"] == pytest.approx(100 * np.mean(result["rank1_hit"]))
    assert result["local_check"]["aligned"]["rank1"] >= 0
    assert "wrote" in capsys.readouterr().err


def test_usage_errors(tmp_path, capsys):
    for argv in (["--seeds", "1", "1"], ["--target-share", "2"], ["--knob", "nope=1"],
                 ["--epochs", "0"], ["--resamples", "5"]):
        assert ablation.main(argv + ["--work-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("ablation: error: ")


def test_blocks_and_commands(tmp_path):
    s, seeds, variants = ablation.settings_from_args(
        ablation.build_parser().parse_args(["--block", "table2"]))
    assert seeds == [0, 1, 2, 3, 4]
    assert [v.key for v in variants] == ["alignedreid", "alignedreid_mm",
                                         "alignedreid_mm_rescaled"]
    assert cli.block_commands(["--epochs", "3", "--note", "x", "--work-dir", "/w"], False) == [
        "python -m benchmarks.ablation --epochs 3 --block table1",
        "python -m benchmarks.ablation --epochs 3 --block table2"]
    w = tmp_path / "w.weights.h5"
    w.write_bytes(HDF5_SIGNATURE + b"fake")
    cfg = s.train_config(ablation.BY_KEY["alignedreid_mm"], 2, weights=str(w),
                         peer_weights=str(w))
    assert (cfg.mutual_kl_weight, cfg.mutual_metric_weight) == (0.01, 0.001)
    assert cfg.normalize_features == "local" and not cfg.eval_untrained
    pre = s.pretrain_config(3)
    assert pre.no_local and pre.global_weight == 0.0 and pre.id_weight == 1.0


def test_flags_share_train_py_names_and_old_spellings_still_work(tmp_path, capsys):
    new = ["--synthetic-identities", "30", "--synthetic-images", "5", "--synthetic-cameras", "3",
           "--synthetic-seed", "7", "--mutual-kl-weight", "0.2", "--mutual-metric-weight", "0.03"]
    old = ["--identities", "30", "--images", "5", "--cameras", "3", "--data-seed", "7",
           "--kl-weight", "0.2", "--metric-weight", "0.03"]
    s_new = ablation.settings_from_args(ablation.build_parser().parse_args(new))[0]
    assert capsys.readouterr().err == ""
    s_old = ablation.settings_from_args(ablation.build_parser().parse_args(old))[0]
    warnings = capsys.readouterr().err.strip().splitlines()
    assert s_new == s_old
    assert (s_new.identities, s_new.images, s_new.cameras, s_new.data_seed) == (30, 5, 3, 7)
    assert (s_new.kl_weight, s_new.metric_weight) == (0.2, 0.03)
    assert len(warnings) == 6 and "--images is deprecated; use --synthetic-images" in warnings[1]
    # a range error names the option as it is spelled now
    assert ablation.main(["--synthetic-images", "0", "--work-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == \
        "ablation: error: --synthetic-images: must be >= 1 (got 0)"


def test_the_two_blocks_costs_add_up_a_redo_replaces_them(fake, tmp_path):
    doc = tmp_path / "docs" / "ablation.md"

    def entry():
        (h,) = read_history(str(doc))
        return h

    assert ablation.main(_argv(tmp_path, "--block", "table1")) == 0
    first = entry()
    assert ablation.main(_argv(tmp_path, "--block", "table2")) == 0
    both = entry()
    assert first["trainings"] > 0 and both["trainings"] > first["trainings"]
    assert both["trained"] == sorted(set(first["trained"]) | set(both["trained"]))
    assert len(both["trained"]) == both["trainings"]
    # nothing left to train: the costs stay
    assert ablation.main(_argv(tmp_path)) == 0
    assert entry()["trainings"] == both["trainings"]
    # the same runs again in a fresh work directory: that invocation's costs only
    assert ablation.main(_argv(tmp_path, "--block", "table1", "--work-dir",
                               str(tmp_path / "fresh"))) == 0
    assert entry()["trainings"] == first["trainings"]


def test_the_published_results_hold_the_contract():
    """docs/ablation.json: the issue's shape, the full design's power, and claims
    recomputed here from the per-seed numbers (paired t with scipy's quantile)."""
    root = Path(__file__).resolve().parents[2]
    for name in ("ablation.json", "ablation_replicate.json"):
        data = json.loads((root / "docs" / name).read_text())
        assert sorted(data) == ["claims", "misalignment", "test", "variants"]
        assert {"Baseline", "GL-Baseline", "AlignedReID", "AlignedReID+MM"} <= set(data["variants"])
        for row in data["variants"].values():
            assert row["seeds"] == [0, 1, 2, 3, 4] and len(row["rank1"]) == len(row["mAP"]) == 5
        assert data["test"]["queries"] >= 800
        assert data["misalignment"]["share_ge_1_stripe"] > 0.5
        t_claims = [c for c in data["claims"] if c["method"] == "paired t over seeds"]
        assert {(c["a"], c["b"]) for c in t_claims} >= {
            ("AlignedReID", "Baseline"), ("AlignedReID", "GL-Baseline"),
            ("GL-Baseline", "Baseline"), ("AlignedReID+MM", "AlignedReID")}
        for c in t_claims:
            d = (np.array(data["variants"][c["a"]][c["metric"]])
                 - np.array(data["variants"][c["b"]][c["metric"]]))
            half = sps.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
            assert c["diff"] == pytest.approx(d.mean(), abs=0.01)
            assert c["ci95"] == pytest.approx([d.mean() - half, d.mean() + half], abs=0.01)
