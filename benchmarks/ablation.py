"""Ablations of the AlignedReID paper (Tables 1 and 2) on the synthetic data.

Trains, with the same prepared synthetic dataset, backbone, schedule and
seeds, five variants through ``train.py``:

================  ==========================================================
Baseline          global TriHard + ID loss, no local branch (``--no-local``)
GL-Baseline       + local branch, TriHard on the *unaligned* local distance
                  (``--unaligned-local``)
AlignedReID       + local branch, TriHard on the aligned local distance
AlignedReID + MC  AlignedReID trained with a peer network and the
                  classification mutual loss only (metric-mutual weight 0)
AlignedReID + MM  AlignedReID with both the classification and the metric
                  mutual losses
================  ==========================================================

Every variant is evaluated with the global feature only (as the paper
does); variants with a local branch are also scored with global + aligned
local distance. The script prints a table of mean ± standard deviation over
the seeds (rank-1, rank-5, mAP), writes it with the settings, the paper's
numbers, the training diagnostics and every configuration tried so far to
``docs/ablation.md``, and draws ``docs/ablation.png``.

Each run lives in its own ``train.py`` run directory::

    WORK_DIR/data-<hash>/prepared/        the synthetic dataset (one per data knobs)
    WORK_DIR/cfg-<hash>/settings.json     the benchmark settings of these runs
    WORK_DIR/cfg-<hash>/<variant>/seed<N>/  one train.py run directory

A run whose ``metrics.json`` exists is not trained again, and an unfinished
run resumes from its last checkpoint (``train.py`` does that), so running the
same command again continues an interrupted benchmark.

Usage::

    python -m benchmarks.ablation                 # 3 seeds x 5 variants
    python -m benchmarks.ablation --quick         # 1 seed, fewer steps
    python -m benchmarks.ablation --report-only   # tables from finished runs
    python -m benchmarks.ablation --help          # every option
"""

import argparse
import csv
import dataclasses
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from reid_common import atomic_path, atomic_write_text

REPO = Path(__file__).resolve().parents[1]
EXIT_USAGE = 2
METRICS = ("rank1", "rank5", "mAP")
METRIC_NAMES = {"rank1": "rank-1", "rank5": "rank-5", "mAP": "mAP"}
HISTORY_BEGIN = "<!-- ablation-history"
HISTORY_END = "ablation-history -->"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the ablation tables.

    Attributes:
        key: directory name and JSON key.
        label: name in the tables (the paper's name).
        table: the paper's table (1: local branch ablation, 2: mutual learning).
        flags: ``train.py`` flags that make this variant (besides the common
            ones).
        local: whether the network has a local branch (scored also with
            global + local distance).
        mutual: ``None`` or ``"mc"``/``"mm"`` (which mutual losses are on).
        description: one line for the results page.
    """

    key: str
    label: str
    table: int
    flags: tuple
    local: bool
    mutual: str
    description: str


VARIANTS = (
    Variant("baseline", "Baseline", 1, ("--no-local",), False, None,
            "global TriHard + ID loss; no local branch"),
    Variant("gl_baseline", "GL-Baseline", 1, ("--unaligned-local",), True, None,
            "+ local branch trained with the unaligned local distance (stripe i vs stripe i)"),
    Variant("alignedreid", "AlignedReID", 1, (), True, None,
            "+ local branch trained with the aligned (shortest-path) local distance"),
    Variant("alignedreid_mc", "AlignedReID + MC", 2, ("--mutual",), True, "mc",
            "AlignedReID + peer network, classification mutual loss only (metric-mutual weight 0)"),
    Variant("alignedreid_mm", "AlignedReID + MM", 2, ("--mutual",), True, "mm",
            "AlignedReID + peer network, classification and metric mutual losses"),
)
VARIANT_KEYS = tuple(v.key for v in VARIANTS)
BY_KEY = {v.key: v for v in VARIANTS}

# Pairs whose ordering the paper reports: (better, worse, relation, what it tests).
EXPECTED = (
    ("alignedreid", "baseline", ">", "aligned local learning helps the global feature"),
    ("alignedreid", "gl_baseline", ">=", "alignment matters (unaligned local no better)"),
    ("alignedreid_mm", "alignedreid", ">=", "mutual learning (both losses) helps"),
)

# The paper's Market-1501 numbers for the corresponding rows (percent),
# single query, without re-ranking, global feature. ``None``: not found in a
# source this project could check; shown as "omitted" rather than guessed.
PAPER = {key: {"rank1": None, "rank5": None, "mAP": None} for key in VARIANT_KEYS}
PAPER_NOTE = (
    "The paper's per-row Market-1501 figures of Tables 1 and 2 could not be "
    "retrieved from a source that could be checked when this page was written, "
    "so they are marked \"omitted\" instead of quoted from memory. For scale only "
    "(different rows, not comparable with these columns): the abstract reports "
    "rank-1 94.4 % on Market-1501 for the full method, and the authors' code "
    "repository (michuanhaohao/AlignedReID, issue 4) quotes the paper's "
    "Market-1501 result without re-ranking as 91.8 rank-1 / 79.3 mAP; both come "
    "from training on several datasets combined."
)
ANALYSIS_BEGIN = "<!-- analysis -->"
ANALYSIS_END = "<!-- /analysis -->"


# ----------------------------------------------------------------- settings
@dataclasses.dataclass
class Settings:
    """Everything that defines one benchmark configuration (see ``--help``).

    Example:
        >>> s = Settings()
        >>> s.train_flags(seed=1)[:2]
        ['--backbone', 'tiny']
    """

    identities: int = 200
    images: int = 12
    cameras: int = 4
    data_seed: int = 0
    vertical_shift: float = 0.15
    scale_jitter: float = 0.2
    knobs: dict = dataclasses.field(default_factory=dict)
    image_size: tuple = (128, 64)
    backbone: str = "tiny"
    P: int = 8
    K: int = 4
    epochs: int = 8
    steps_per_epoch: int = 40
    lr: float = 1e-3
    decay_epoch: int = 6
    global_margin: float = 0.5
    local_margin: float = 0.5
    normalize_features: bool = True
    kl_weight: float = 0.01
    metric_weight: float = 0.001
    extra_train_args: tuple = ()

    def data_knobs(self):
        """Keyword arguments of ``data_prep.synthetic.generate``.

        Returns:
            dict.

        Example:
            >>> Settings(identities=10).data_knobs()["num_identities"]
            10
        """
        knobs = {"num_identities": self.identities, "images_per_identity": self.images,
                 "num_cameras": self.cameras, "height": int(self.image_size[0]),
                 "width": int(self.image_size[1]), "seed": self.data_seed,
                 "vertical_shift": self.vertical_shift, "scale_jitter": self.scale_jitter}
        knobs.update(self.knobs)
        return knobs

    def to_dict(self):
        """JSON-compatible dict of the settings.

        Returns:
            dict.

        Example:
            >>> Settings().to_dict()["backbone"]
            'tiny'
        """
        d = dataclasses.asdict(self)
        d["image_size"] = list(self.image_size)
        d["extra_train_args"] = list(self.extra_train_args)
        d["knobs"] = dict(sorted(self.knobs.items()))
        return d

    def key(self):
        """Short hash of the settings (names the configuration's directory).

        Returns:
            str of 10 hex digits.

        Example:
            >>> Settings().key() == Settings().key()
            True
        """
        return _digest(self.to_dict())

    def data_key(self):
        """The synthetic-data cache key of these settings (``data_prep.synthetic.cache_key``).

        Returns:
            str of 12 hex digits.
        """
        from data_prep import synthetic

        return synthetic.cache_key(self.data_knobs())

    def train_flags(self, seed):
        """``train.py`` flags shared by every variant (data excluded).

        Args:
            seed: training seed.

        Returns:
            list of str.

        Example:
            >>> "--seed" in Settings().train_flags(seed=0)
            True
        """
        milestones, values = [], [self.lr]
        if 0 < self.decay_epoch < self.epochs:
            milestones, values = [self.decay_epoch], [self.lr, self.lr * 0.1]
        flags = [
            "--backbone", self.backbone,
            "--image-size", str(self.image_size[0]), str(self.image_size[1]),
            "--P", str(self.P), "--K", str(self.K),
            "--epochs", str(self.epochs), "--steps-per-epoch", str(self.steps_per_epoch),
            "--lr", repr(float(self.lr)),
            "--lr-milestones", *[str(m) for m in milestones],
            "--lr-values", *[repr(float(v)) for v in values],
            "--global-margin", repr(float(self.global_margin)),
            "--local-margin", repr(float(self.local_margin)),
            "--seed", str(seed),
        ]
        if self.normalize_features:
            flags.append("--normalize-features")
        return flags + list(self.extra_train_args)

    def variant_flags(self, variant):
        """The flags that make ``variant`` (mutual-loss weights included).

        Args:
            variant: :class:`Variant`.

        Returns:
            list of str.

        Example:
            >>> Settings().variant_flags(BY_KEY["alignedreid_mc"])[-1]
            '0.0'
        """
        flags = list(variant.flags)
        if variant.mutual:
            metric = self.metric_weight if variant.mutual == "mm" else 0.0
            flags += ["--mutual-kl-weight", repr(float(self.kl_weight)),
                      "--mutual-metric-weight", repr(float(metric))]
        return flags

    def describe(self):
        """One-line description of the data knobs and the schedule.

        Returns:
            str.

        Example:
            >>> "tiny" in Settings().describe()
            True
        """
        knobs = ", ".join(f"{k}={v}" for k, v in sorted(self.knobs.items()))
        data = (f"{self.identities} ids x {self.images} imgs, {self.cameras} cams, "
                f"vertical_shift={self.vertical_shift}, scale_jitter={self.scale_jitter}"
                + (f", {knobs}" if knobs else ""))
        sched = (f"{self.backbone}, {self.image_size[0]}x{self.image_size[1]}, P={self.P} K={self.K}, "
                 f"{self.epochs}x{self.steps_per_epoch} steps, lr {self.lr:g}"
                 + (f" (/10 at epoch {self.decay_epoch})" if 0 < self.decay_epoch < self.epochs
                    else "")
                 + f", margins {self.global_margin:g}/{self.local_margin:g}"
                 + (", L2-normalised features" if self.normalize_features else
                    ", unnormalised features")
                 + f", mutual weights {self.kl_weight:g}/{self.metric_weight:g}")
        extra = " ".join(self.extra_train_args)
        return f"data: {data}; training: {sched}" + (f"; extra: {extra}" if extra else "")


def _digest(obj):
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:10]


class UsageError(ValueError):
    """A bad option or an unusable path (one-line message, exit code 2)."""


# ------------------------------------------------------------------ helpers
def mean_std(values):
    """Mean and sample standard deviation (ddof=1) of finite values.

    Args:
        values: sequence of floats (NaN and None are left out).

    Returns:
        ``(mean, std, n)``; std is NaN when fewer than two values, both NaN
        when none.

    Example:
        >>> mean_std([1.0, 2.0, 3.0])
        (2.0, 1.0, 3)
    """
    x = np.array([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if len(x) == 0:
        return float("nan"), float("nan"), 0
    std = float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")
    return float(np.mean(x)), std, len(x)


def fmt_pm(mean, std, scale=100.0, digits=1):
    """``"mean ± std"`` in percent (``"n/a"`` for a missing mean).

    Args:
        mean, std: floats (fractions); std NaN prints the mean alone.
        scale: multiplier (100 for percent).
        digits: decimals.

    Returns:
        str.

    Example:
        >>> fmt_pm(0.5, 0.012)
        '50.0 ± 1.2'
    """
    if mean is None or not math.isfinite(mean):
        return "n/a"
    if std is None or not math.isfinite(std):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


# ---------------------------------------------------------------- the data
def prepare_data(settings, work_dir, log):
    """Generates (once) the synthetic dataset and prepares its manifest.

    Args:
        settings: :class:`Settings`.
        work_dir: the benchmark's work directory.
        log: callable taking a message.

    Returns:
        ``Path`` of the prepared dataset (holds ``manifest.jsonl``).

    Raises:
        UsageError: a generator knob is invalid.

    Example:
        >>> prepare_data(Settings(), Path("runs/ablation"), print)  # doctest: +SKIP
    """
    from data_prep import synthetic
    from data_prep import PrepError

    knobs = settings.data_knobs()
    final = Path(work_dir) / f"synthetic-{settings.data_key()}"
    if not (final / "prepared" / "manifest.jsonl").is_file():
        log(f"generating the synthetic dataset ({settings.describe().split(';')[0]}) into {final}")
    try:
        return synthetic.prepare_cached(work_dir, **knobs)
    except PrepError as exc:
        raise UsageError(f"--knob: {exc}") from None


# ---------------------------------------------------------------- training
def run_dir_of(config_dir, variant_key, seed):
    """The ``train.py`` run directory of one (variant, seed).

    Args:
        config_dir: ``WORK_DIR/cfg-<hash>``.
        variant_key: :attr:`Variant.key`.
        seed: training seed.

    Returns:
        ``Path``.

    Example:
        >>> run_dir_of(Path("w/cfg-x"), "baseline", 2).as_posix()
        'w/cfg-x/baseline/seed2'
    """
    return Path(config_dir) / variant_key / f"seed{seed}"


def is_finished(run_dir):
    """Whether ``run_dir`` holds a finished run (``metrics.json`` exists).

    Args:
        run_dir: path.

    Returns:
        bool.

    Example:
        >>> is_finished("/nonexistent")
        False
    """
    return (Path(run_dir) / "metrics.json").is_file()


def train_run(args, run_dir, log_path, threads=None):
    """Runs ``train.py ARGS`` in a subprocess (the training call; tests replace it).

    Args:
        args: ``train.py`` arguments (``--run-dir`` included).
        run_dir: the run directory (unused here; for replacements in tests).
        log_path: file that receives the subprocess's stderr.
        threads: CPU threads of the subprocess's TensorFlow (intra-op and
            OpenMP), or None for TensorFlow's default (all cores).

    Returns:
        int exit status of ``train.py``.

    Example:
        >>> train_run(["--epochs", "1"], "runs/x", "runs/x.log")  # doctest: +SKIP
        0
    """
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if threads:
        env["TF_NUM_INTRAOP_THREADS"] = str(threads)
        env["TF_NUM_INTEROP_THREADS"] = "1"
        env["OMP_NUM_THREADS"] = str(threads)
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as err:
        proc = subprocess.run([sys.executable, str(REPO / "train.py"), *args],
                              stdout=subprocess.DEVNULL, stderr=err, cwd=str(REPO), env=env,
                              check=False)
    return proc.returncode


def read_run(run_dir):
    """Metrics and training diagnostics of a finished run directory.

    Args:
        run_dir: a ``train.py`` run directory with ``metrics.json``.

    Returns:
        dict with ``"metrics"`` {kind: {rank1, rank5, mAP}} (after training),
        ``"untrained"`` (the same before training), ``"train_seconds"``,
        ``"total_seconds"`` and ``"curves"`` {column: [per-epoch values]} from
        ``log.csv`` (loss columns of network 1 without the ``net1_`` prefix).

    Example:
        >>> read_run("runs/ablation/cfg-x/baseline/seed0")  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    with open(run_dir / "metrics.json", encoding="utf-8") as f:
        summary = json.load(f)
    datasets = summary.get("datasets", {})
    name = min(datasets)
    pick = lambda d: {kind: {m: float(v[m]) for m in METRICS if m in v}
                      for kind, v in d.items()}
    curves = {}
    log_csv = run_dir / "log.csv"
    if log_csv.is_file():
        with open(log_csv, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        for row in rows:
            for col, value in row.items():
                if col in ("epoch", "global_step", "lr", "time_s") or value in ("", None):
                    continue
                key = col.removeprefix("net1_")
                if col.startswith("net2_"):
                    key = "peer_" + col[5:]
                try:
                    curves.setdefault(key, []).append(float(value))
                except ValueError:
                    pass
    return {
        "dataset": name,
        "metrics": pick(datasets[name].get("after", {})),
        "untrained": pick(datasets[name].get("before", {})),
        "train_seconds": float(summary.get("train_seconds", float("nan"))),
        "total_seconds": float(summary.get("total_seconds", float("nan"))),
        "curves": curves,
    }


def run_benchmark(settings, *, work_dir, seeds, variants, log, report_only=False, workers=1):
    """Trains (or reuses) every (variant, seed) run and collects the results.

    Args:
        settings: :class:`Settings`.
        work_dir: work directory.
        seeds: list of training seeds.
        variants: list of :class:`Variant`.
        log: callable for progress messages.
        report_only: do not train; collect the finished runs only.
        workers: trainings run at the same time (each with cores / workers
            CPU threads).

    Returns:
        dict with ``"runs"`` {variant key: {seed: read_run(...) or
        {"error": str}}}, ``"config_dir"`` and ``"data"`` (prepared path or
        None).

    Raises:
        UsageError: the work directory holds other settings under the same key.

    Example:
        >>> run_benchmark(Settings(), work_dir="runs/ablation", seeds=[0],
        ...               variants=VARIANTS, log=print)  # doctest: +SKIP
    """
    work_dir = Path(work_dir)
    config_dir = work_dir / f"cfg-{settings.key()}"
    settings_path = config_dir / "settings.json"
    if settings_path.is_file():
        stored = json.loads(settings_path.read_text(encoding="utf-8"))
        if stored != settings.to_dict():
            raise UsageError(f"--work-dir: {settings_path} holds different settings")
    data = None
    todo = [(v, s) for v in variants for s in seeds
            if not is_finished(run_dir_of(config_dir, v.key, s))]
    if todo and not report_only:
        config_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(settings_path, json.dumps(settings.to_dict(), indent=2,
                                                    sort_keys=True) + "\n")
        data = prepare_data(settings, work_dir, log)
    runs = {v.key: {} for v in variants}
    # seed-major order: an interrupted benchmark has every variant at its first seeds
    jobs = [(v, s) for s in seeds for v in variants]
    total = len(jobs)
    t0 = time.monotonic()
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None

    def one(index, v, s):
        run_dir = run_dir_of(config_dir, v.key, s)
        tag = f"[{index}/{total}] {v.label}, seed {s}"
        if is_finished(run_dir) or report_only:
            return read_run(run_dir) if is_finished(run_dir) else None
        args = ["--data", str(data), *settings.train_flags(s), *settings.variant_flags(v),
                "--run-dir", str(run_dir), "--quiet", "--json",
                "--checkpoint-every", str(max(settings.steps_per_epoch, 1)),
                "--keep-checkpoints", "1"]
        log(f"{tag}: training (elapsed {time.monotonic() - t0:.0f} s)")
        t = time.monotonic()
        log_path = run_dir.parent / f"seed{s}.stderr.log"
        code = train_run(args, run_dir, log_path, threads) if threads else \
            train_run(args, run_dir, log_path)
        if code != 0 or not is_finished(run_dir):
            error = f"train.py exited with status {code} (see {log_path})"
            log(f"{tag}: FAILED ({error})")
            return {"error": error}
        r = read_run(run_dir)
        g = r["metrics"].get("global", {})
        log(f"{tag}: done in {time.monotonic() - t:.0f} s; global rank-1 "
            f"{100 * g.get('rank1', float('nan')):.1f}, mAP {100 * g.get('mAP', float('nan')):.1f}")
        return r

    if workers > 1 and not report_only:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(one, i, v, s) for i, (v, s) in enumerate(jobs, 1)]
            results = [f.result() for f in futures]
    else:
        results = [one(i, v, s) for i, (v, s) in enumerate(jobs, 1)]
    for (v, s), r in zip(jobs, results):
        if r is not None:
            runs[v.key][s] = r
    return {"runs": runs, "config_dir": str(config_dir), "data": None if data is None else str(data)}


# ------------------------------------------------------------- aggregation
def aggregate(runs, variants):
    """Mean ± std over seeds of every metric, kind and diagnostic.

    Args:
        runs: ``{variant key: {seed: read_run(...) or {"error": ...}}}``.
        variants: list of :class:`Variant` (row order).

    Returns:
        dict variant key -> {"n": seeds with results, "seeds": [...],
        "failed": [...], kind -> {metric -> (mean, std, n)},
        "diagnostics": {...}}.

    Example:
        >>> runs = {"baseline": {0: {"metrics": {"global": {"rank1": 0.5, "rank5": 0.8,
        ...     "mAP": 0.4}}, "curves": {}, "train_seconds": 1.0}}}
        >>> aggregate(runs, [BY_KEY["baseline"]])["baseline"]["global"]["rank1"]
        (0.5, nan, 1)
    """
    out = {}
    for v in variants:
        per_seed = runs.get(v.key, {})
        ok = {s: r for s, r in per_seed.items() if "error" not in r}
        row = {"n": len(ok), "seeds": sorted(ok), "failed": sorted(s for s in per_seed
                                                                     if s not in ok)}
        for kind in ("global", "global+local"):
            vals = [r["metrics"].get(kind) for r in ok.values()]
            if not any(vals):
                continue
            row[kind] = {m: mean_std([x.get(m) if x else None for x in vals]) for m in METRICS}
            row.setdefault("values", {})[kind] = {
                m: [x.get(m) if x else None for x in vals] for m in METRICS}
        diag = {}
        for col in ("local_loss", "global_loss", "id_loss", "id_accuracy", "kl_loss",
                    "metric_mutual_loss"):
            firsts = [r["curves"][col][0] for r in ok.values() if r["curves"].get(col)]
            lasts = [r["curves"][col][-1] for r in ok.values() if r["curves"].get(col)]
            if firsts:
                diag[col] = {"first": mean_std(firsts)[0], "last": mean_std(lasts)[0]}
        diag["train_seconds"] = mean_std([r.get("train_seconds") for r in ok.values()])[0]
        row["diagnostics"] = diag
        out[v.key] = row
    return out


def compare(agg, metric="rank1", kind="global"):
    """Checks the orderings the paper reports against the seed-to-seed spread.

    A difference counts only when it is larger than the larger of the two
    variants' standard deviations.

    Args:
        agg: output of :func:`aggregate`.
        metric: ``"rank1"``, ``"rank5"`` or ``"mAP"``.
        kind: ``"global"`` or ``"global+local"``.

    Returns:
        list of dicts with ``a``, ``b``, ``relation``, ``meaning``, ``diff``,
        ``spread`` and ``verdict`` (one of ``"holds"``, ``"within spread"``,
        ``"reversed"``, ``"no spread (1 seed)"``, ``"missing"``).

    Example:
        >>> agg = {"alignedreid": {"global": {"rank1": (0.6, 0.01, 3)}},
        ...        "baseline": {"global": {"rank1": (0.5, 0.02, 3)}}}
        >>> compare(agg)[0]["verdict"]
        'holds'
    """
    out = []
    for a, b, rel, meaning in EXPECTED:
        item = {"a": a, "b": b, "relation": rel, "meaning": meaning, "metric": metric,
                "diff": float("nan"), "spread": float("nan")}
        ra, rb = agg.get(a, {}).get(kind), agg.get(b, {}).get(kind)
        if not ra or not rb or not math.isfinite(ra[metric][0]) or not math.isfinite(rb[metric][0]):
            item["verdict"] = "missing"
            out.append(item)
            continue
        diff = ra[metric][0] - rb[metric][0]
        spread = max(ra[metric][1], rb[metric][1])
        item["diff"], item["spread"] = diff, spread
        if not math.isfinite(spread):
            item["verdict"] = "no spread (1 seed)"
        elif diff > spread:
            item["verdict"] = "holds"
        elif diff < -spread:
            item["verdict"] = "reversed"
        else:
            item["verdict"] = "within spread"
        out.append(item)
    return out


# ------------------------------------------------------------------ output
def format_table(agg, variants, kind="global", with_paper=True, markdown=False):
    """The results table: mean ± std (percent) of rank-1, rank-5, mAP per variant.

    Args:
        agg: output of :func:`aggregate`.
        variants: row order.
        kind: ranking scored (``"global"`` or ``"global+local"``); variants
            without that kind are left out.
        with_paper: add the paper's rank-1 and mAP columns.
        markdown: a Markdown table instead of aligned text.

    Returns:
        str (no trailing newline).

    Example:
        >>> agg = {"baseline": {"n": 1, "global": {"rank1": (0.5, float("nan"), 1),
        ...        "rank5": (0.7, float("nan"), 1), "mAP": (0.4, float("nan"), 1)}}}
        >>> print(format_table(agg, [BY_KEY["baseline"]], with_paper=False))
        variant  | table | seeds | rank-1 (%) | rank-5 (%) | mAP (%)
        ---------+-------+-------+------------+------------+--------
        Baseline | 1     | 1     | 50.0       | 70.0       | 40.0
    """
    header = ["variant", "table", "seeds"] + [f"{METRIC_NAMES[m]} (%)" for m in METRICS]
    if with_paper:
        header += ["paper rank-1", "paper mAP"]
    rows = []
    for v in variants:
        row = agg.get(v.key)
        if not row or kind not in row:
            continue
        cells = [v.label, str(v.table), str(row["n"])]
        cells += [fmt_pm(*row[kind][m][:2]) for m in METRICS]
        if with_paper:
            for m in ("rank1", "mAP"):
                p = PAPER.get(v.key, {}).get(m)
                cells.append("omitted" if p is None else f"{p:.1f}")
        rows.append(cells)
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    line = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    sep = "-+-".join("-" * w for w in widths)
    return "\n".join([line(header), sep] + [line(r) for r in rows])


def format_comparisons(comparisons, markdown=False):
    """The expected orderings and whether they hold beyond the spread.

    Args:
        comparisons: concatenated outputs of :func:`compare`.
        markdown: Markdown bullet list instead of plain lines.

    Returns:
        str.

    Example:
        >>> format_comparisons([{"a": "alignedreid", "b": "baseline", "relation": ">",
        ...     "metric": "rank1", "diff": 0.1, "spread": 0.01, "verdict": "holds",
        ...     "meaning": "m"}])
        'AlignedReID > Baseline (rank-1): difference +10.0, spread 1.0 -> holds'
    """
    lines = []
    for c in comparisons:
        diff = "n/a" if not math.isfinite(c["diff"]) else f"{100 * c['diff']:+.1f}"
        spread = "n/a" if not math.isfinite(c["spread"]) else f"{100 * c['spread']:.1f}"
        text = (f"{BY_KEY[c['a']].label} {c['relation']} {BY_KEY[c['b']].label} "
                f"({METRIC_NAMES[c['metric']]}): difference {diff}, spread {spread} "
                f"-> {c['verdict']}")
        lines.append(("- " if markdown else "") + text)
    return "\n".join(lines)


def format_diagnostics(agg, variants, markdown=True):
    """Training diagnostics per variant (means over seeds).

    Args:
        agg: output of :func:`aggregate`.
        variants: row order.
        markdown: Markdown table.

    Returns:
        str.

    Example:
        >>> format_diagnostics({}, [])  # doctest: +ELLIPSIS
        '| variant | local loss ...'
    """
    header = ["variant", "local loss (first -> last epoch)", "global loss", "ID loss",
              "ID accuracy (last)", "train s/run"]

    def fl(d, col, digits=3):
        x = d.get(col)
        if not x:
            return "—"
        return f"{x['first']:.{digits}f} -> {x['last']:.{digits}f}"

    rows = []
    for v in variants:
        row = agg.get(v.key)
        if not row or not row["n"]:
            continue
        d = row["diagnostics"]
        acc = d.get("id_accuracy")
        secs = d.get("train_seconds", float("nan"))
        rows.append([v.label, fl(d, "local_loss"), fl(d, "global_loss"), fl(d, "id_loss"),
                     "—" if not acc else f"{acc['last']:.2f}",
                     "—" if not math.isfinite(secs) else f"{secs:.0f}"])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def plot(agg, variants, path):
    """Bar chart of global rank-1 and mAP (mean ± std, seeds as dots).

    Args:
        agg: output of :func:`aggregate`.
        variants: bar order.
        path: PNG path (written atomically).

    Returns:
        None.

    Example:
        >>> plot(agg, VARIANTS, "docs/ablation.png")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [v for v in variants if agg.get(v.key, {}).get("global")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    x = np.arange(len(shown))
    for ax, metric in zip(axes, ("rank1", "mAP")):
        means = [100 * agg[v.key]["global"][metric][0] for v in shown]
        stds = [100 * np.nan_to_num(agg[v.key]["global"][metric][1]) for v in shown]
        colors = ["#8c8c8c" if v.table == 1 and not v.local else
                  "#4c72b0" if v.table == 1 else "#dd8452" for v in shown]
        ax.bar(x, means, yerr=stds, capsize=4, color=colors, alpha=0.85, label="global")
        for i, v in enumerate(shown):
            seeds = [100 * y for y in agg[v.key].get("values", {}).get("global", {})
                     .get(metric, []) if y is not None]
            ax.scatter([i + 0.25] * len(seeds), seeds, s=12, color="white", edgecolor="black",
                       linewidth=0.6, zorder=3, label="seeds" if i == 0 else None)
        gl = [(i, 100 * agg[v.key]["global+local"][metric][0]) for i, v in enumerate(shown)
              if agg[v.key].get("global+local") and v.key != "gl_baseline"]
        if gl:
            ax.scatter([i for i, _ in gl], [y for _, y in gl], marker="D", color="black",
                       zorder=3, label="global+local (mean)")
        ax.set_xticks(x, [v.label.replace(" + ", "\n+ ") for v in shown], fontsize=8)
        ax.set_ylabel(f"{METRIC_NAMES[metric]} (%)")
        ax.set_title(f"{METRIC_NAMES[metric]}, global feature (mean ± std over seeds)",
                     fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        tops = [m + e for m, e in zip(means, stds)] + [y for _, y in gl]
        ax.set_ylim(0, 1.25 * max(tops + [1.0]))
        ax.legend(fontsize=7, loc="upper left", ncol=3)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- history
def read_history(doc_path):
    """Configurations recorded in an existing results page.

    The page keeps them in a JSON block inside an HTML comment, so that a
    regenerated page still lists every configuration tried.

    Args:
        doc_path: path of ``docs/ablation.md`` (may not exist).

    Returns:
        list of dicts (oldest first).

    Example:
        >>> read_history("/nonexistent.md")
        []
    """
    try:
        text = Path(doc_path).read_text(encoding="utf-8")
    except OSError:
        return []
    m = re.search(re.escape(HISTORY_BEGIN) + r"\s*(.*?)\s*" + re.escape(HISTORY_END), text, re.DOTALL)
    if not m:
        return []
    try:
        entries = json.loads(m.group(1))
    except ValueError:
        return []
    return entries if isinstance(entries, list) else []


def read_analysis(doc_path):
    """The findings section of an existing results page (kept on regeneration).

    Args:
        doc_path: path of the page (may not exist).

    Returns:
        str (empty when there is none).

    Example:
        >>> read_analysis("/nonexistent.md")
        ''
    """
    try:
        text = Path(doc_path).read_text(encoding="utf-8")
    except OSError:
        return ""
    m = re.search(re.escape(ANALYSIS_BEGIN) + r"\n?(.*?)" + re.escape(ANALYSIS_END), text, re.DOTALL)
    return m.group(1).strip() + "\n" if m and m.group(1).strip() else ""


def history_entry(settings, seeds, agg, comparisons, note, quick):
    """One "configuration tried" record.

    Args:
        settings: :class:`Settings`.
        seeds: seeds asked for.
        agg: output of :func:`aggregate`.
        comparisons: list of :func:`compare` items.
        note: free text (why this configuration was tried).
        quick: whether this was a ``--quick`` run.

    Returns:
        JSON-compatible dict.

    Example:
        >>> history_entry(Settings(), [0], {}, [], "", True)["key"] == Settings().key()
        True
    """
    summary = {}
    for key, row in agg.items():
        if not row.get("global"):
            continue
        summary[key] = {"n": row["n"]}
        for kind in ("global", "global+local"):
            if row.get(kind):
                summary[key][kind] = {m: [_num(row[kind][m][0]), _num(row[kind][m][1])]
                                      for m in ("rank1", "mAP")}
        loc = row["diagnostics"].get("local_loss")
        if loc:
            summary[key]["local_loss"] = [_num(loc["first"]), _num(loc["last"])]
    return {
        "key": settings.key(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": bool(quick),
        "note": note or "",
        "settings": settings.to_dict(),
        "description": settings.describe(),
        "seeds": list(seeds),
        "summary": summary,
        "verdicts": [{"a": c["a"], "b": c["b"], "metric": c["metric"], "verdict": c["verdict"],
                      "diff": _num(c["diff"]), "spread": _num(c["spread"])} for c in comparisons],
    }


def _num(x):
    return None if x is None or not math.isfinite(x) else round(float(x), 5)


def merge_history(history, entry):
    """Replaces the entry with the same key (or appends).

    Args:
        history: list of entries.
        entry: new entry.

    Returns:
        new list.

    Example:
        >>> merge_history([{"key": "a", "x": 1}], {"key": "a", "x": 2})
        [{'key': 'a', 'x': 2}]
    """
    out = [h for h in history if h.get("key") != entry["key"]]
    keep_note = [h.get("note") for h in history if h.get("key") == entry["key"] and h.get("note")]
    if keep_note and not entry.get("note"):
        entry = dict(entry, note=keep_note[0])
    return out + [entry]


def format_history(history):
    """The "Configurations tried" table.

    Args:
        history: list of entries.

    Returns:
        str (Markdown).

    Example:
        >>> format_history([]).startswith("| #")
        True
    """
    header = ["#", "date", "mode", "configuration", "seeds"] + \
        [f"{BY_KEY[k].label} r1 / mAP" for k in VARIANT_KEYS] + \
        ["local loss, first -> last epoch (GL-Baseline; AlignedReID)", "orderings (rank-1)",
         "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for i, h in enumerate(history, 1):
        cells = [str(i), h.get("date", ""), "quick" if h.get("quick") else "full",
                 h.get("description", "").replace("|", "/"), str(len(h.get("seeds", [])))]
        for k in VARIANT_KEYS:
            s = h.get("summary", {}).get(k, {}).get("global")
            if not s:
                cells.append("—")
                continue
            r1, mp = s["rank1"], s["mAP"]
            cells.append(f"{fmt_pm(r1[0], r1[1] if r1[1] is not None else float('nan'))} / "
                         f"{fmt_pm(mp[0], mp[1] if mp[1] is not None else float('nan'))}")
        losses = []
        for k in ("gl_baseline", "alignedreid"):
            loc = h.get("summary", {}).get(k, {}).get("local_loss")
            losses.append("—" if not loc else f"{loc[0]:.3f} -> {loc[1]:.3f}")
        cells.append("; ".join(losses))
        verdicts = [f"{BY_KEY[v['a']].label} vs {BY_KEY[v['b']].label}: {v['verdict']}"
                    for v in h.get("verdicts", []) if v.get("metric") == "rank1"]
        cells.append("; ".join(verdicts) or "—")
        cells.append(h.get("note", "").replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_doc(*, settings, seeds, command, agg, variants, comparisons, history, plot_name,
               analysis, data_info):
    """The Markdown results page.

    Args:
        settings: :class:`Settings`.
        seeds: seeds.
        command: the command line that reproduces the page.
        agg: output of :func:`aggregate`.
        variants: rows.
        comparisons: :func:`compare` items.
        history: configurations tried (entries).
        plot_name: file name of the plot, relative to the page.
        analysis: Markdown text of findings (may be empty).
        data_info: dict with dataset sizes (may be empty).

    Returns:
        str.

    Example:
        >>> "Ablations" in render_doc(settings=Settings(), seeds=[0], command="c", agg={},
        ...     variants=[], comparisons=[], history=[], plot_name="p.png", analysis="",
        ...     data_info={})
        True
    """
    knobs = settings.data_knobs()
    knob_rows = "\n".join(f"| `{k}` | {v} |" for k, v in sorted(knobs.items()))
    size = ""
    if data_info:
        size = (f"\nPrepared: {data_info.get('train_images', '?')} training images of "
                f"{data_info.get('train_ids', '?')} identities; test: "
                f"{data_info.get('query', '?')} queries, {data_info.get('gallery', '?')} gallery "
                "images (Market-1501 protocol; distractors kept, junk dropped).\n")
    variant_rows = "\n".join(
        f"| {v.label} | {v.table} | `{' '.join(settings.variant_flags(v)) or '(none)'}` | "
        f"{v.description} |" for v in variants)
    schedule = " ".join(settings.train_flags(seed=0)).replace("--seed 0", "--seed SEED")
    return f"""# Ablations: the paper's Tables 1 and 2 on the synthetic misalignment data

`benchmarks/ablation.py` trains the AlignedReID ablation variants with
`train.py` on the built-in synthetic dataset (`data_prep.synthetic`, see
[synthetic.md](synthetic.md)) and scores them on its test split. Every variant
uses the same prepared data, backbone, schedule and seeds; only the loss (and,
for Table 2, the peer network) differs. As in the paper, the main table uses
the **global feature only** at test time.

```
{command}
```

Runs are resumable: each (variant, seed) is a `train.py` run directory under
`--work-dir` (default `runs/ablation`), a finished one (with `metrics.json`) is
reused and an interrupted one resumes from its checkpoint. `--report-only`
rebuilds this page from finished runs, `--json` prints the results as JSON.

## Settings

Seeds: {", ".join(str(s) for s in seeds)} (weights, batch sampling and augmentation; the data are the same).

Training (every variant): `train.py {schedule}`

| variant | paper table | extra `train.py` flags | what it trains |
|---|---|---|---|
{variant_rows}

Synthetic data (`data_prep.synthetic.generate` knobs; the rest at their defaults):

| knob | value |
|---|---|
{knob_rows}
{size}
## Results (global feature, mean ± std over seeds, %)

{format_table(agg, variants, markdown=True)}

Paper columns: AlignedReID paper (Zhang et al. 2017), Market-1501, for
reference only (ResNet-50 scale networks on real data; not comparable in
absolute terms). {PAPER_NOTE if all(p is None for v in PAPER.values() for p in v.values()) else ""}

With global + aligned local distance at test time (variants trained with the
aligned local branch):

{format_table(agg, [v for v in variants if v.key != "gl_baseline"], kind="global+local", with_paper=False, markdown=True)}

![ablation]({plot_name})

### Expected orderings (paper) against the seed-to-seed spread

A difference "holds" only when it is larger than the larger standard deviation
of the two variants.

{format_comparisons(comparisons, markdown=True)}

### Training diagnostics (means over seeds; per-epoch values from each run's `log.csv`)

For mutual-learning variants the losses are those of the evaluated network
(network 1).

{format_diagnostics(agg, variants)}

{ANALYSIS_BEGIN}
{analysis}{ANALYSIS_END}

## Configurations tried

Every configuration this page has been generated from, in order (global
feature, rank-1 / mAP in %, mean ± std over the seeds).

{format_history(history)}

{HISTORY_BEGIN}
{json.dumps(history, indent=1, sort_keys=True)}
{HISTORY_END}
"""


def dataset_info(prepared):
    """Image and identity counts of a prepared dataset.

    Args:
        prepared: path holding ``manifest.jsonl`` (or None).

    Returns:
        dict (empty when unavailable).

    Example:
        >>> dataset_info(None)
        {}
    """
    if prepared is None or not (Path(prepared) / "manifest.jsonl").is_file():
        return {}
    counts = {"train": 0, "query": 0, "gallery": 0}
    ids = set()
    with open(Path(prepared) / "manifest.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            counts[row["split"]] = counts.get(row["split"], 0) + 1
            if row["split"] == "train":
                ids.add(row["pid"])
    return {"train_images": counts["train"], "train_ids": len(ids), "query": counts["query"],
            "gallery": counts["gallery"]}


def to_json(settings, seeds, agg, comparisons, result):
    """Machine-readable results (``--json``).

    Args:
        settings, seeds, agg, comparisons: as in :func:`render_doc`.
        result: output of :func:`run_benchmark`.

    Returns:
        JSON-compatible dict.

    Example:
        >>> to_json(Settings(), [0], {}, [], {"config_dir": "x", "runs": {}})["seeds"]
        [0]
    """
    variants = {}
    for key, row in agg.items():
        variants[key] = {"label": BY_KEY[key].label, "table": BY_KEY[key].table,
                         "seeds": row["seeds"], "failed": row["failed"],
                         "diagnostics": {k: v for k, v in row["diagnostics"].items()}}
        for kind in ("global", "global+local"):
            if row.get(kind):
                variants[key][kind] = {m: {"mean": _num(row[kind][m][0]),
                                           "std": _num(row[kind][m][1]), "n": row[kind][m][2]}
                                       for m in METRICS}
        variants[key]["per_seed"] = {
            str(s): r.get("metrics", {"error": r.get("error")})
            for s, r in result["runs"].get(key, {}).items()}
    return {"settings": settings.to_dict(), "seeds": list(seeds), "config_dir": result["config_dir"],
            "variants": variants, "paper": PAPER,
            "comparisons": [dict(c, diff=_num(c["diff"]), spread=_num(c["spread"]))
                            for c in comparisons]}


# -------------------------------------------------------------------- CLI
QUICK = {"epochs": 3, "steps_per_epoch": 25, "decay_epoch": 2}


def build_parser():
    """The command-line parser.

    Returns:
        ``argparse.ArgumentParser``.

    Example:
        >>> build_parser().parse_args(["--quick"]).quick
        True
    """
    d = Settings()
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.ablation",
        description="Reproduce the AlignedReID paper's ablations (Table 1: Baseline, "
                    "GL-Baseline, AlignedReID; Table 2: mutual learning MC / MM) on the "
                    "synthetic misalignment dataset with train.py, and write docs/ablation.md "
                    "and docs/ablation.png.",
        epilog="Exit status: 0 done (also when some runs failed: they are listed), "
               "2 usage error.")
    g = p.add_argument_group("runs")
    g.add_argument("--quick", action="store_true",
                   help=f"one seed and a short schedule ({QUICK['epochs']} epochs x "
                        f"{QUICK['steps_per_epoch']} steps) unless given explicitly")
    g.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                   help="training seeds (default 0 1 2; --quick: 0)")
    g.add_argument("--variants", nargs="+", choices=VARIANT_KEYS, metavar="VARIANT",
                   help="variants to run, among " + ", ".join(VARIANT_KEYS) + " (default: all)")
    g.add_argument("--work-dir", default="runs/ablation", metavar="DIR",
                   help="where the dataset and the run directories go (default runs/ablation)")
    g.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train N runs at the same time, each with (cores / N) CPU threads "
                        "(default 1)")
    g.add_argument("--report-only", action="store_true",
                   help="train nothing; build the tables from the finished runs")
    g = p.add_argument_group("synthetic data (data_prep.synthetic knobs; see docs/synthetic.md)")
    g.add_argument("--identities", type=int, default=d.identities, metavar="N",
                   help=f"identities, half train half test (default {d.identities})")
    g.add_argument("--images", type=int, default=d.images, metavar="N",
                   help=f"images per identity (default {d.images})")
    g.add_argument("--cameras", type=int, default=d.cameras, metavar="N",
                   help=f"cameras (default {d.cameras})")
    g.add_argument("--data-seed", type=int, default=d.data_seed, metavar="SEED",
                   help=f"generator seed (default {d.data_seed})")
    g.add_argument("--vertical-shift", type=float, default=d.vertical_shift, metavar="S",
                   help=f"misalignment: box top moves by U(-S, S) of the person height "
                        f"(default {d.vertical_shift})")
    g.add_argument("--scale-jitter", type=float, default=d.scale_jitter, metavar="S",
                   help=f"misalignment: box size times exp(U(-S, S)) (default {d.scale_jitter})")
    g.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE",
                   help="any other generator knob, e.g. --knob occlusion_prob=0.5 (repeatable)")
    g = p.add_argument_group("training (passed to train.py, identical for every variant)")
    g.add_argument("--image-size", type=int, nargs=2, default=list(d.image_size),
                   metavar=("H", "W"), help="image height and width (default 128 64)")
    g.add_argument("--backbone", default=d.backbone, help="backbone (default tiny)")
    g.add_argument("--P", type=int, default=d.P, help=f"identities per batch (default {d.P})")
    g.add_argument("--K", type=int, default=d.K, help=f"images per identity (default {d.K})")
    g.add_argument("--epochs", type=int, metavar="N",
                   help=f"epochs (default {d.epochs}; --quick {QUICK['epochs']})")
    g.add_argument("--steps-per-epoch", type=int, metavar="N",
                   help=f"steps per epoch (default {d.steps_per_epoch}; --quick "
                        f"{QUICK['steps_per_epoch']})")
    g.add_argument("--lr", type=float, default=d.lr, help=f"initial Adam learning rate "
                                                          f"(default {d.lr:g})")
    g.add_argument("--decay-epoch", type=int, metavar="E",
                   help=f"epoch at which the learning rate drops 10x; 0: never (default "
                        f"{d.decay_epoch}; --quick {QUICK['decay_epoch']})")
    g.add_argument("--global-margin", type=float, default=d.global_margin, metavar="M",
                   help=f"global TriHard margin (default {d.global_margin:g})")
    g.add_argument("--local-margin", type=float, default=d.local_margin, metavar="M",
                   help=f"local TriHard margin (default {d.local_margin:g})")
    g.add_argument("--normalize-features", action=argparse.BooleanOptionalAction,
                   default=d.normalize_features,
                   help="train.py --normalize-features: L2-normalise the global and local "
                        "features before the distances (default: on; without it the local "
                        "part distances of the tiny network saturate the tanh and the local "
                        "loss barely moves, see docs/ablation.md)")
    g.add_argument("--kl-weight", type=float, default=d.kl_weight, metavar="W",
                   help=f"classification mutual loss weight of MC and MM (default {d.kl_weight:g}, "
                        "the paper's)")
    g.add_argument("--metric-weight", type=float, default=d.metric_weight, metavar="W",
                   help=f"metric mutual loss weight of MM (default {d.metric_weight:g}, the "
                        "paper's; MC uses 0)")
    g.add_argument("--train-arg", action="append", default=[], metavar="ARG",
                   help="one more train.py argument for every variant (repeatable, e.g. "
                        "--train-arg=--normalize-features)")
    g = p.add_argument_group("output")
    g.add_argument("--doc", default="docs/ablation.md", metavar="PATH",
                   help="results page to write (default docs/ablation.md); '' for none")
    g.add_argument("--plot", default="docs/ablation.png", metavar="PATH",
                   help="plot to write (default docs/ablation.png); '' for none")
    g.add_argument("--note", default="", metavar="TEXT",
                   help="why this configuration was tried (kept in 'Configurations tried')")
    g.add_argument("--analysis", metavar="FILE",
                   help="Markdown file with findings to put in the page (default: keep the "
                        "findings already in the page)")
    g.add_argument("--json", action="store_true",
                   help="print the results as JSON on stdout instead of the table")
    return p


def settings_from_args(args):
    """Builds :class:`Settings`, seeds and variants from parsed options.

    Args:
        args: ``argparse.Namespace``.

    Returns:
        ``(settings, seeds, variants)``.

    Raises:
        UsageError: an invalid option (the message names it).

    Example:
        >>> s, seeds, v = settings_from_args(build_parser().parse_args(["--quick"]))
        >>> seeds, s.epochs
        ([0], 3)
    """
    knobs = {}
    for item in args.knob:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--knob: expected NAME=VALUE, got {item!r}")
        name = name.strip().replace("-", "_")
        if name in ("num_identities", "images_per_identity", "num_cameras", "height", "width",
                    "seed", "vertical_shift", "scale_jitter"):
            raise UsageError(f"--knob: {name} has its own option")
        try:
            knobs[name] = int(value) if re.fullmatch(r"-?\d+", value.strip()) else float(value)
        except ValueError:
            raise UsageError(f"--knob: {name}: not a number: {value!r}") from None
    from data_prep.synthetic import SyntheticConfig

    names = {f.name for f in dataclasses.fields(SyntheticConfig)}
    unknown = sorted(set(knobs) - names)
    if unknown:
        raise UsageError(f"--knob: unknown generator knob {unknown[0]!r}")
    pick = lambda value, quick_key: value if value is not None else (
        QUICK[quick_key] if args.quick else getattr(Settings(), quick_key))
    s = Settings(
        identities=args.identities, images=args.images, cameras=args.cameras,
        data_seed=args.data_seed, vertical_shift=args.vertical_shift,
        scale_jitter=args.scale_jitter, knobs=knobs, image_size=tuple(args.image_size),
        backbone=args.backbone, P=args.P, K=args.K, epochs=pick(args.epochs, "epochs"),
        steps_per_epoch=pick(args.steps_per_epoch, "steps_per_epoch"), lr=args.lr,
        decay_epoch=pick(args.decay_epoch, "decay_epoch"), global_margin=args.global_margin,
        local_margin=args.local_margin, normalize_features=args.normalize_features,
        kl_weight=args.kl_weight,
        metric_weight=args.metric_weight, extra_train_args=tuple(args.train_arg))
    for name in ("identities", "images", "cameras", "P", "K", "epochs", "steps_per_epoch"):
        if getattr(s, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')}: must be >= 1 (got {getattr(s, name)})")
    if s.decay_epoch < 0:
        raise UsageError(f"--decay-epoch: must be >= 0 (got {s.decay_epoch})")
    if not (s.lr > 0 and math.isfinite(s.lr)):
        raise UsageError(f"--lr: must be > 0 (got {s.lr})")
    for name in ("global_margin", "local_margin", "kl_weight", "metric_weight"):
        if not (getattr(s, name) >= 0 and math.isfinite(getattr(s, name))):
            raise UsageError(f"--{name.replace('_', '-')}: must be >= 0")
    if args.jobs < 1:
        raise UsageError(f"--jobs: must be >= 1 (got {args.jobs})")
    seeds = args.seeds if args.seeds else ([0] if args.quick else [0, 1, 2])
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UsageError(f"--seeds: expected distinct non-negative seeds (got {seeds})")
    variants = [BY_KEY[k] for k in VARIANT_KEYS if not args.variants or k in args.variants]
    return s, list(seeds), variants


def _command_line(argv):
    """The command that reproduces the results (bookkeeping options left out)."""
    keep, skip = [], 0
    for i, a in enumerate(argv):
        if skip:
            skip -= 1
            continue
        name = a.split("=", 1)[0]
        if name in ("--note", "--analysis", "--jobs", "--doc", "--plot") and "=" not in a:
            skip = 1
            continue
        if name in ("--note", "--analysis", "--jobs", "--doc", "--plot", "--report-only",
                    "--json"):
            continue
        keep.append(a if re.fullmatch(r"[\w@%+=:,./-]+", a) else repr(a))
    return " ".join(["python -m benchmarks.ablation"] + keep)


def main(argv=None):
    """``python -m benchmarks.ablation``.

    Args:
        argv: argument list (default ``sys.argv[1:]``).

    Returns:
        Exit status (0 done, 2 usage error).

    Example:
        >>> main(["--quick"])  # doctest: +SKIP
        0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)

    def log(message):
        print(f"ablation: {message}", file=sys.stderr, flush=True)

    try:
        settings, seeds, variants = settings_from_args(args)
        analysis = ""
        if args.analysis:
            try:
                analysis = Path(args.analysis).read_text(encoding="utf-8").strip() + "\n"
            except OSError as exc:
                raise UsageError(f"--analysis: cannot read {args.analysis}: {exc.strerror}") \
                    from None
        elif args.doc:
            analysis = read_analysis(args.doc)
        result = run_benchmark(settings, work_dir=args.work_dir, seeds=seeds, variants=variants,
                               log=log, report_only=args.report_only, workers=args.jobs)
    except UsageError as exc:
        print(f"ablation: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log("interrupted; run the same command again to resume")
        return 130
    agg = aggregate(result["runs"], variants)
    comparisons = compare(agg, "rank1") + compare(agg, "mAP")
    if args.doc:
        history = merge_history(read_history(args.doc),
                                history_entry(settings, seeds, agg, comparisons, args.note,
                                              args.quick))
        data = result["data"] or str(Path(args.work_dir) / f"synthetic-{settings.data_key()}" /
                                     "prepared")
        plot_name = os.path.relpath(args.plot, Path(args.doc).parent) if args.plot else ""
        text = render_doc(settings=settings, seeds=seeds, command=_command_line(argv), agg=agg,
                          variants=variants, comparisons=comparisons, history=history,
                          plot_name=plot_name, analysis=analysis, data_info=dataset_info(data))
        atomic_write_text(args.doc, text)
        log(f"wrote {args.doc}")
    if args.plot and any(agg.get(v.key, {}).get("global") for v in variants):
        plot(agg, variants, args.plot)
        log(f"wrote {args.plot}")
    if args.json:
        print(json.dumps(to_json(settings, seeds, agg, comparisons, result), sort_keys=True))
    else:
        print(f"global feature, mean ± std over seeds {seeds} ({settings.describe()})")
        print(format_table(agg, variants))
        gl = format_table(agg, [v for v in variants if v.key != "gl_baseline"],
                          kind="global+local", with_paper=False)
        print("\nglobal + aligned local distance")
        print(gl)
        print()
        print(format_comparisons(comparisons))
        failed = [(v.label, s) for v in variants for s in agg[v.key]["failed"]]
        if failed:
            print("\nfailed runs: " + ", ".join(f"{lab} seed {s}" for lab, s in failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
