"""Runs: the prepared data, one ``train.py`` subprocess per (variant, seed), and
reading finished run directories through :class:`reid_tf.run_dir.RunDir`."""

import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from data_prep import PrepError
from data_prep.synthetic import prepare_cached
from reid_common import UsageError, atomic_write_json, format_duration
from reid_tf.run_dir import RunDir

from .settings import METRICS

REPO = Path(__file__).resolve().parents[2]


def prepare_data(settings, work_dir, log):
    """Generates (once) the synthetic dataset and prepares its manifest.

    Args:
        settings: :class:`~benchmarks.ablation.settings.Settings`.
        work_dir: the benchmark's work directory (the synthetic-data cache).
        log: callable taking a message.

    Returns:
        ``Path`` of the prepared dataset (holds ``manifest.jsonl``).

    Raises:
        UsageError: a generator knob is invalid.
    """
    final = Path(work_dir) / f"synthetic-{settings.data_key()}"
    if not (final / "prepared" / "manifest.jsonl").is_file():
        log(f"generating the synthetic dataset ({settings.describe().split(';')[0]}) into {final}")
    try:
        return prepare_cached(work_dir, **settings.data_knobs())
    except PrepError as exc:
        raise UsageError(f"--knob: {exc}") from None


def run_dir_of(config_dir, variant_key, seed):
    """The ``train.py`` run directory of one (variant, seed).

    Args:
        config_dir: ``WORK_DIR/cfg-<hash>``.
        variant_key: ``Variant.key``.
        seed: training seed.

    Returns:
        ``Path``.

    Example:
        >>> run_dir_of(Path("w/cfg-x"), "baseline", 2).as_posix()
        'w/cfg-x/baseline/seed2'
    """
    return Path(config_dir) / variant_key / f"seed{seed}"


def is_finished(run_dir):
    """Whether ``run_dir`` holds a finished run: its status says so and its
    metrics exist.

    Args:
        run_dir: path.

    Returns:
        bool.

    Example:
        >>> is_finished("/nonexistent")
        False
    """
    run = RunDir(run_dir)
    return run.is_finished() and run.metrics_path.is_file()


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


def _curves(log_csv):
    """Per-epoch columns of ``log.csv`` (network 1 unprefixed, the peer as ``peer_``)."""
    curves = {}
    if not log_csv.is_file():
        return curves
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
    return curves


def read_run(run_dir):
    """Metrics and training diagnostics of a finished run directory.

    Args:
        run_dir: a finished ``train.py`` run directory.

    Returns:
        dict with ``"metrics"`` {kind: {rank1, rank5, mAP}} (after training),
        ``"untrained"`` (the same before training), ``"train_seconds"``,
        ``"total_seconds"`` and ``"curves"`` {column: [per-epoch values]} from
        ``log.csv`` (loss columns of network 1 without the ``net1_`` prefix).

    Example:
        >>> import tempfile
        >>> run = RunDir(tempfile.mkdtemp())
        >>> _ = run.metrics_path.write_text(json.dumps({"datasets": {"market1501": {
        ...     "after": {"global": {"rank1": 0.5, "mAP": 0.25, "cmc": [0.5]}}}}}))
        >>> read_run(run.path)["metrics"]
        {'global': {'rank1': 0.5, 'mAP': 0.25}}
    """
    run = RunDir(run_dir)
    with open(run.metrics_path, encoding="utf-8") as f:
        summary = json.load(f)
    datasets = summary.get("datasets", {})
    name = min(datasets)

    def pick(d):
        return {kind: {m: float(v[m]) for m in METRICS if m in v} for kind, v in d.items()}

    return {
        "dataset": name,
        "metrics": pick(datasets[name].get("after", {})),
        "untrained": pick(datasets[name].get("before", {})),
        "train_seconds": float(summary.get("train_seconds", float("nan"))),
        "total_seconds": float(summary.get("total_seconds", float("nan"))),
        "curves": _curves(run.log_path),
    }


def run_benchmark(settings, *, work_dir, seeds, variants, reporter, report_only=False,
                  workers=1):
    """Trains (or reuses) every (variant, seed) run and collects the results.

    Args:
        settings: :class:`~benchmarks.ablation.settings.Settings`.
        work_dir: work directory.
        seeds: list of training seeds.
        variants: list of ``Variant``.
        reporter: ``reid_common.Reporter`` for progress messages (with an ETA).
        report_only: do not train; collect the finished runs only.
        workers: trainings run at the same time (each with cores / workers
            CPU threads).

    Returns:
        dict with ``"runs"`` {variant key: {seed: read_run(...) or
        {"error": str}}}, ``"config_dir"`` and ``"data"`` (prepared path or
        None).

    Raises:
        UsageError: the work directory holds other settings under the same key.
    """
    log = reporter.say
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
        atomic_write_json(settings_path, settings.to_dict())
        data = prepare_data(settings, work_dir, log)
    runs = {v.key: {} for v in variants}
    # seed-major order: an interrupted benchmark has every variant at its first seeds
    jobs = [(v, s) for s in seeds for v in variants]
    total = len(jobs)
    t0 = time.monotonic()
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None
    trained = [0]
    lock = threading.Lock()

    def one(index, v, s):
        run_dir = run_dir_of(config_dir, v.key, s)
        tag = f"[{index}/{total}] {v.label}, seed {s}"
        if is_finished(run_dir) or report_only:
            return read_run(run_dir) if is_finished(run_dir) else None
        args = settings.train_argv(
            v, s, data=[str(data)], run_dir=str(run_dir), quiet=True, json="-",
            checkpoint_every=max(settings.steps_per_epoch, 1), keep_checkpoints=1,
            # finished without metrics: a broken run, trained afresh
            overwrite=RunDir(run_dir).is_finished())
        log(f"{tag}: training (elapsed {time.monotonic() - t0:.0f} s)")
        t = time.monotonic()
        log_path = run_dir.parent / f"seed{s}.stderr.log"
        code = train_run(args, run_dir, log_path, threads) if threads else \
            train_run(args, run_dir, log_path)
        with lock:
            trained[0] += 1
            done = trained[0]
        left = len(todo) - done
        eta = f", ETA {format_duration((time.monotonic() - t0) / done * left)}" \
            if left else ""
        progress = f" [{done}/{len(todo)} trained{eta}]"
        if code != 0 or not is_finished(run_dir):
            error = f"train.py exited with status {code} (see {log_path})"
            log(f"{tag}: FAILED ({error}){progress}")
            return {"error": error}
        r = read_run(run_dir)
        g = r["metrics"].get("global", {})
        log(f"{tag}: done in {time.monotonic() - t:.0f} s; global rank-1 "
            f"{100 * g.get('rank1', float('nan')):.1f}, mAP {100 * g.get('mAP', float('nan')):.1f}"
            f"{progress}")
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
