"""Plumbing of benchmarks/ablation.py with the training call replaced by a fake.

The fake writes a ``metrics.json`` and a ``log.csv`` like ``train.py`` does, with
metrics drawn from a seeded generator, so the aggregation can be checked
against NumPy and the resumability by counting calls. No TensorFlow, no images.
"""

import json
import math

import numpy as np
import pytest

from benchmarks import ablation
from benchmarks.ablation import runner
from reid_tf.run_dir import RunDir

SEEDS = [0, 1, 2]


def fake_metrics(variant, seed):
    """Deterministic fake metrics of one (variant, seed)."""
    rng = np.random.default_rng([ablation.VARIANT_KEYS.index(variant), seed])
    out = {"global": {m: float(rng.uniform(0.1, 0.9)) for m in ablation.METRICS}}
    if ablation.BY_KEY[variant].local:
        out["global+local"] = {m: float(rng.uniform(0.1, 0.9)) for m in ablation.METRICS}
    return out


class FakeTrainer:
    """Replaces ``runner.train_run``: records calls, writes a finished run."""

    def __init__(self, fail=()):
        self.calls = []
        self.fail = set(fail)

    def __call__(self, args, run_dir, log_path, threads=None):
        self.threads = threads
        variant = run_dir.parent.name
        seed = int(run_dir.name[len("seed"):])
        self.calls.append((variant, seed, list(args)))
        if (variant, seed) in self.fail:
            return 1
        run_dir.mkdir(parents=True, exist_ok=True)
        after = fake_metrics(variant, seed)
        summary = {"datasets": {"market1501": {"after": {k: dict(v, cmc=[0.0] * 50)
                                                         for k, v in after.items()},
                                               "before": after}},
                   "train_seconds": 10.0 + seed, "total_seconds": 20.0}
        (run_dir / "metrics.json").write_text(json.dumps(summary))
        local = ablation.BY_KEY[variant].local
        cols = ["epoch", "global_step", "lr", "loss", "global_loss", "id_loss", "id_accuracy"]
        cols += ["local_loss"] if local else []
        rows = [[1, 5, 0.001, 3.0, 1.0, 2.0, 0.1] + ([0.5] if local else []),
                [2, 10, 0.001, 2.0, 0.6, 1.4, 0.4] + ([0.3] if local else [])]
        if ablation.BY_KEY[variant].mutual:  # train.py's mutual columns
            cols = [c if c in ("epoch", "global_step", "lr", "loss") else f"net1_{c}"
                    for c in cols]
        text = ",".join(cols) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n"
        (run_dir / "log.csv").write_text(text)
        RunDir(run_dir).set_status("finished")
        return 0


@pytest.fixture
def fake(monkeypatch, tmp_path):
    trainer = FakeTrainer()
    monkeypatch.setattr(runner, "train_run", trainer)
    monkeypatch.setattr(runner, "prepare_data",
                        lambda settings, work_dir, log: tmp_path / "data" / "prepared")
    return trainer


def _argv(tmp_path, *extra):
    return ["--seeds", *map(str, SEEDS), "--epochs", "2", "--steps-per-epoch", "5",
            "--work-dir", str(tmp_path / "work"), "--doc", str(tmp_path / "docs" / "ablation.md"),
            "--plot", str(tmp_path / "docs" / "ablation.png"), *extra]


# ------------------------------------------------------------ aggregation
def test_mean_std_matches_numpy():
    rng = np.random.default_rng(5)
    for n in (2, 3, 7):
        x = rng.uniform(size=n)
        mean, std, count = ablation.mean_std(list(x))
        assert count == n
        assert mean == pytest.approx(np.mean(x), abs=1e-12)
        assert std == pytest.approx(np.std(x, ddof=1), abs=1e-12)
    mean, std, count = ablation.mean_std([0.25])
    assert (mean, count) == (0.25, 1) and math.isnan(std)
    mean, std, count = ablation.mean_std([0.2, float("nan"), None, 0.4])
    assert count == 2 and mean == pytest.approx(0.3)
    assert all(math.isnan(v) for v in ablation.mean_std([])[:2])


def test_aggregate_matches_numpy_on_fake_runs():
    runs = {v: {s: {"metrics": fake_metrics(v, s), "curves": {}, "train_seconds": 1.0}
                for s in SEEDS} for v in ablation.VARIANT_KEYS}
    runs["baseline"][3] = {"error": "train.py exited with status 1"}
    agg = ablation.aggregate(runs, ablation.VARIANTS)
    for v in ablation.VARIANTS:
        row = agg[v.key]
        assert row["n"] == 3 and row["seeds"] == SEEDS
        assert row["failed"] == ([3] if v.key == "baseline" else [])
        kinds = ("global", "global+local") if v.local else ("global",)
        assert ("global+local" in row) == v.local
        for kind in kinds:
            for m in ablation.METRICS:
                x = np.array([fake_metrics(v.key, s)[kind][m] for s in SEEDS])
                mean, std, n = row[kind][m]
                assert n == 3
                assert mean == pytest.approx(x.mean(), abs=1e-12)
                assert std == pytest.approx(x.std(ddof=1), abs=1e-12)


def test_compare_verdicts():
    def agg(a, b):
        return {"alignedreid": {"global": {"rank1": a}}, "baseline": {"global": {"rank1": b}},
                "gl_baseline": {"global": {"rank1": b}}, "alignedreid_mm": {"global": {"rank1": a}}}

    nan = float("nan")
    first = lambda a, b: ablation.compare(agg(a, b))[0]
    assert first((0.60, 0.01, 3), (0.50, 0.02, 3))["verdict"] == "holds"
    assert first((0.51, 0.02, 3), (0.50, 0.02, 3))["verdict"] == "within spread"
    assert first((0.40, 0.02, 3), (0.50, 0.03, 3))["verdict"] == "reversed"
    assert first((0.60, nan, 1), (0.50, nan, 1))["verdict"] == "no spread (1 seed)"
    c = first((0.60, 0.01, 3), (0.50, 0.04, 3))
    assert c["diff"] == pytest.approx(0.10) and c["spread"] == pytest.approx(0.04)
    assert ablation.compare({})[0]["verdict"] == "missing"


# ----------------------------------------------------------------- tables
def test_format_table_rows_and_cells():
    agg = {"baseline": {"n": 3, "global": {"rank1": (0.5, 0.0123, 3), "rank5": (0.7, 0.01, 3),
                                           "mAP": (0.4, 0.02, 3)}},
           "alignedreid": {"n": 1, "global": {"rank1": (0.61, float("nan"), 1),
                                              "rank5": (0.8, float("nan"), 1),
                                              "mAP": (0.45, float("nan"), 1)}}}
    text = ablation.format_table(agg, ablation.VARIANTS)
    lines = text.splitlines()
    assert lines[0].split(" | ")[0].strip() == "variant"
    assert len(lines) == 4  # header, rule, two variants (missing ones are left out)
    assert "50.0 ± 1.2" in lines[2] and "40.0 ± 2.0" in lines[2]
    assert "61.0" in lines[3] and "±" not in lines[3]
    assert lines[2].count("omitted") == 2  # paper columns: not found, not guessed
    md = ablation.format_table(agg, ablation.VARIANTS, markdown=True).splitlines()
    assert all(line.count("|") == md[0].count("|") for line in md)
    assert md[0].count("|") == 9  # 8 columns
    assert "global+local" not in ablation.format_table(agg, ablation.VARIANTS,
                                                       kind="global+local")


def test_fmt_pm():
    assert ablation.fmt_pm(0.123456, 0.0049) == "12.3 ± 0.5"
    assert ablation.fmt_pm(float("nan"), 0.1) == "n/a"
    assert ablation.fmt_pm(0.5, float("nan")) == "50.0"


# ------------------------------------------------------- end-to-end plumbing
def test_runs_flags_resume_and_doc(fake, tmp_path, capsys):
    assert ablation.main(_argv(tmp_path, "--note", "first")) == 0
    assert len(fake.calls) == len(ablation.VARIANTS) * len(SEEDS)
    out = capsys.readouterr().out
    assert "Baseline" in out and "AlignedReID + MM" in out and "±" in out

    # identical data, schedule and seed flags; variants differ only by their flags
    def options(args):
        """{flag: tuple of its values}; every flag given once."""
        out, flag = {}, None
        for a in args:
            if a.startswith("--"):
                assert a not in out, (a, args)
                flag, out[a] = a, ()
            else:
                out[flag] += (a,)
        return out

    own = {"--no-local", "--unaligned-local", "--mutual", "--mutual-kl-weight",
           "--mutual-metric-weight", "--run-dir"}
    by_seed = {}
    for variant, seed, args in fake.calls:
        opts = options(args)
        by_seed.setdefault(seed, set()).add(
            tuple(sorted((k, v) for k, v in opts.items() if k not in own)))
        assert opts["--seed"] == (str(seed),) and opts["--epochs"] == ("2",)
        assert opts["--steps-per-epoch"] == ("5",) and opts["--data"] == (
            str(tmp_path / "data" / "prepared"),)
        assert opts["--run-dir"] == (str(ablation.run_dir_of(
            next((tmp_path / "work").glob("cfg-*")), variant, seed)),)
    assert all(len(v) == 1 for v in by_seed.values())
    flags = {v: a for v, s, a in fake.calls if s == 0}
    assert "--no-local" in flags["baseline"] and "--mutual" not in flags["baseline"]
    assert "--unaligned-local" in flags["gl_baseline"]
    assert "--no-local" not in flags["alignedreid"] and "--unaligned-local" not in \
        flags["alignedreid"] and "--mutual" not in flags["alignedreid"]
    mc, mm = flags["alignedreid_mc"], flags["alignedreid_mm"]
    assert float(mc[mc.index("--mutual-metric-weight") + 1]) == 0.0
    assert float(mm[mm.index("--mutual-metric-weight") + 1]) > 0.0
    assert float(mc[mc.index("--mutual-kl-weight") + 1]) == \
        float(mm[mm.index("--mutual-kl-weight") + 1]) > 0.0

    # resumable: nothing is trained again; a removed run is retrained alone
    assert ablation.main(_argv(tmp_path)) == 0
    assert len(fake.calls) == 15
    run = ablation.run_dir_of(next((tmp_path / "work").glob("cfg-*")), "gl_baseline", 1)
    (run / "metrics.json").unlink()
    assert ablation.main(_argv(tmp_path)) == 0
    assert [(v, s) for v, s, _ in fake.calls[15:]] == [("gl_baseline", 1)]
    # finished without metrics: trained afresh (train.py refuses a finished run otherwise)
    assert "--overwrite" in fake.calls[15][2]
    assert not any("--overwrite" in args for _, _, args in fake.calls[:15])

    # the page: table with the numpy means, the plot, one history entry (same key)
    doc = (tmp_path / "docs" / "ablation.md").read_text()
    x = np.array([fake_metrics("alignedreid", s)["global"]["rank1"] for s in SEEDS])
    assert f"{100 * x.mean():.1f} ± {100 * x.std(ddof=1):.1f}" in doc
    assert "## Configurations tried" in doc and "python -m benchmarks.ablation" in doc
    assert (tmp_path / "docs" / "ablation.png").read_bytes()[:4] == b"\x89PNG"
    history = ablation.read_history(tmp_path / "docs" / "ablation.md")
    assert len(history) == 1 and history[0]["note"] == "first"
    assert history[0]["summary"]["alignedreid"]["local_loss"] == [0.5, 0.3]

    # another configuration is added to the history, in its own run directories
    assert ablation.main(_argv(tmp_path, "--vertical-shift", "0.3", "--note", "stronger")) == 0
    assert len(fake.calls) == 16 + 15
    history = ablation.read_history(tmp_path / "docs" / "ablation.md")
    assert [h["note"] for h in history] == ["first", "stronger"]
    assert len(list((tmp_path / "work").glob("cfg-*"))) == 2


def test_quiet_and_json_path(fake, tmp_path, capsys):
    assert ablation.main(_argv(tmp_path, "--variants", "baseline", "--quiet",
                               "--json", str(tmp_path / "r.json"))) == 0
    out, err = capsys.readouterr()
    assert err == "" and "Baseline" in out
    assert (tmp_path / "docs" / "ablation.md").is_file()
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["variants"]["baseline"]["global"]["mAP"]["n"] == 3
    assert ablation.main(_argv(tmp_path, "--variants", "baseline", "--report-only")) == 0
    assert "wrote" in capsys.readouterr().err


def test_report_only_and_json(fake, tmp_path, capsys):
    assert ablation.main(_argv(tmp_path, "--report-only", "--json", "-")) == 0
    assert fake.calls == []
    assert ablation.main(_argv(tmp_path, "--variants", "baseline", "alignedreid")) == 0
    capsys.readouterr()
    assert ablation.main(_argv(tmp_path, "--report-only", "--json", "-", "--variants", "baseline",
                               "alignedreid")) == 0
    assert len(fake.calls) == 6
    data = json.loads(capsys.readouterr().out)
    g = data["variants"]["alignedreid"]["global"]["mAP"]
    x = np.array([fake_metrics("alignedreid", s)["global"]["mAP"] for s in SEEDS])
    assert g["mean"] == pytest.approx(x.mean(), abs=1e-5) and g["n"] == 3
    assert data["variants"]["baseline"]["diagnostics"]["train_seconds"] == pytest.approx(11.0)


def test_failed_run_is_reported_not_fatal(monkeypatch, tmp_path, capsys):
    trainer = FakeTrainer(fail={("alignedreid", 1)})
    monkeypatch.setattr(runner, "train_run", trainer)
    monkeypatch.setattr(runner, "prepare_data", lambda s, w, log: tmp_path / "d")
    assert ablation.main(_argv(tmp_path, "--variants", "alignedreid")) == 0
    out = capsys.readouterr().out
    assert "failed runs: AlignedReID seed 1" in out
    agg_line = next(ln for ln in out.splitlines() if ln.startswith("AlignedReID "))
    assert agg_line.split("|")[2].strip() == "2"  # two seeds with results


@pytest.mark.parametrize("extra, message", [
    (["--knob", "vertical_shift=0.3"], "--knob: vertical_shift has its own option"),
    (["--knob", "nonsense=1"], "--knob: unknown generator knob 'nonsense'"),
    (["--knob", "noise"], "--knob: expected NAME=VALUE"),
    (["--seeds", "1", "1"], "--seeds: expected distinct"),
    (["--epochs", "0"], "--epochs: must be >= 1"),
])
def test_usage_errors_are_one_line(fake, tmp_path, capsys, extra, message):
    assert ablation.main(_argv(tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert fake.calls == []


def test_parallel_jobs_give_the_same_table(fake, tmp_path, capsys):
    assert ablation.main(_argv(tmp_path, "--jobs", "2", "--json", "-")) == 0
    assert len(fake.calls) == 15 and fake.threads >= 1
    parallel = json.loads(capsys.readouterr().out)["variants"]
    expected = ablation.aggregate(
        {v: {s: {"metrics": fake_metrics(v, s), "curves": {}} for s in SEEDS}
         for v in ablation.VARIANT_KEYS}, ablation.VARIANTS)
    for key, row in expected.items():
        for m in ablation.METRICS:
            assert parallel[key]["global"][m]["mean"] == pytest.approx(row["global"][m][0],
                                                                       abs=1e-5)


def test_analysis_is_kept_when_the_page_is_regenerated(fake, tmp_path):
    notes = tmp_path / "findings.md"
    notes.write_text("## Findings\n\nThe local loss decreases.\n")
    assert ablation.main(_argv(tmp_path, "--variants", "baseline", "--analysis",
                               str(notes))) == 0
    doc = tmp_path / "docs" / "ablation.md"
    assert "The local loss decreases." in doc.read_text()
    assert ablation.main(_argv(tmp_path, "--variants", "baseline", "--report-only")) == 0
    assert doc.read_text().count("The local loss decreases.") == 1
    assert ablation.read_analysis(doc).startswith("## Findings")


@pytest.mark.parametrize("variant", ablation.VARIANT_KEYS)
def test_train_argv_parses_back_to_the_run_config(variant, tmp_path):
    """train.py's own parser turns the rendered arguments into the same TrainConfig."""
    from reid_tf.train_cli import parse_config

    settings = ablation.Settings(decay_epoch=3, epochs=5, lr=2e-3, P=6,
                                 normalize_features=variant != "baseline")
    v = ablation.BY_KEY[variant]
    extra = dict(data=[str(tmp_path / "prepared")], run_dir=str(tmp_path / "run"),
                 quiet=True, json="-", checkpoint_every=7, keep_checkpoints=1)
    cfg = settings.train_config(v, 4, **extra)
    assert parse_config(settings.train_argv(v, 4, **extra)) == cfg
    assert (cfg.seed, cfg.P, cfg.lr_milestones, cfg.lr_values) == (4, 6, [3], [2e-3, 2e-4])
    assert cfg.no_local == (variant == "baseline")
    assert cfg.unaligned_local == (variant == "gl_baseline")
    assert cfg.mutual == (v.mutual is not None)
    if v.mutual:
        assert cfg.mutual_metric_weight == (settings.metric_weight if v.mutual == "mm" else 0.0)


def test_train_py_refusals_are_usage_errors(fake, tmp_path, capsys):
    assert ablation.main(_argv(tmp_path, "--P", "1")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--P: must be >= 2" in err[0]
    assert fake.calls == []


def test_import_does_not_load_tensorflow():
    import subprocess
    import sys

    code = "import benchmarks.ablation, sys; print('tensorflow' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=str(runner.REPO))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
