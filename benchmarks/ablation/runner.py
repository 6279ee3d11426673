"""Runs: the data, the shared pretrained starts, one ``train.py`` subprocess
per (variant, seed), and each run's per-query results, stored as it finishes.

Layout under the work directory::

    synthetic-<hash>/prepared/            the test data and the pretraining data
    pretrain-<hash>/seed0/                the ID-only pretraining run (train.py)
    pretrain-<hash>/seed0.weights.h5      its backbone: network 1's start in every run
    pretrain-<hash>/seed1000.weights.h5   the peers' start (a second pretraining)
    cfg-<hash>/settings.json              the settings of these runs
    cfg-<hash>/shares.json                mutual-loss gradient shares (Table 2)
    cfg-<hash>/<variant>/seed<N>/         one train.py run directory
    cfg-<hash>/<variant>/seed<N>.json     its results, per query (see results.py)

A run whose results file exists is not trained or scored again; a
``train.py`` run directory that did not finish resumes from its checkpoint.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from data_prep import PrepError
from data_prep.synthetic import prepare_cached
from reid_common import UsageError, atomic_write_json, format_duration
from reid_tf.run_dir import RunDir

from .results import run_results
from .settings import PEER_SEED_OFFSET, PRETRAIN_SEED

REPO = Path(__file__).resolve().parents[2]


def prepare_data(settings, work_dir, log, pretrain=False):
    """Generates (once) a synthetic dataset and prepares its manifest.

    Returns:
        ``Path`` of the prepared dataset (holds ``manifest.jsonl``).

    Raises:
        UsageError: a generator knob is invalid.
    """
    what = "pretraining" if pretrain else "test"
    final = Path(work_dir) / f"synthetic-{settings.data_key(pretrain)}"
    if not (final / "prepared" / "manifest.jsonl").is_file():
        log(f"generating the synthetic {what} dataset into {final}")
    try:
        return prepare_cached(work_dir, **settings.data_knobs(pretrain))
    except PrepError as exc:
        raise UsageError(f"--knob: {exc}") from None


def is_finished(run_dir):
    """Whether ``run_dir`` holds a finished ``train.py`` run with its metrics.

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
        run_dir: the run directory (for replacements in tests).
        log_path: file that receives the subprocess's stderr.
        threads: CPU threads of the subprocess's TensorFlow, or None.

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


def export_backbone(model_path, out):
    """Saves the backbone of a ``train.py`` model file as a weights file
    (``--weights PATH`` of a later run).

    Args:
        model_path: ``model.keras`` of a finished run.
        out: ``*.weights.h5`` path (written atomically).
    """
    import keras

    from reid_common import atomic_path
    from reid_tf.extract import load_model

    model = load_model(str(model_path))
    (backbone,) = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    with atomic_path(out) as tmp:
        backbone.save_weights(str(tmp))


def children_cpu_seconds():
    """User + system CPU seconds of the finished child processes so far.

    Example:
        >>> children_cpu_seconds() >= 0
        True
    """
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Runner:
    """Trains (or reuses) the runs of one configuration.

    Args:
        settings: :class:`~benchmarks.ablation.settings.Settings`.
        work_dir: work directory.
        reporter: ``reid_common.Reporter`` (progress on stderr).
        train: the training call (``train_run``; tests replace it).
        export: the backbone export (``export_backbone``; tests replace it).
        shares: callable ``(settings, runner, seed) -> dict`` measuring the
            mutual gradient shares (:func:`benchmarks.ablation.shares.measure`).
    """

    def __init__(self, settings, work_dir, reporter, *, train=None, export=None, shares=None):
        self.settings = settings
        self.work_dir = Path(work_dir)
        self.log = reporter.say
        self.train = train or train_run
        self.export = export or export_backbone
        self.shares_fn = shares
        self.config_dir = self.work_dir / f"cfg-{settings.key()}"
        self.pretrain_dir = self.work_dir / f"pretrain-{settings.pretrain_key()}"
        self._data = {}
        self.t0 = time.monotonic()
        # (variant key or "pretrain", seed) -> (wall s, CPU s) of the trainings run here
        self.cost = {}

    # ------------------------------------------------------------- data
    def data(self, pretrain=False):
        """The prepared test (or pretraining) dataset, generated once."""
        if pretrain not in self._data:
            self._data[pretrain] = prepare_data(self.settings, self.work_dir, self.log,
                                                pretrain)
        return self._data[pretrain]

    def check_settings(self):
        """Refuses a work directory that holds other settings under the same key."""
        path = self.config_dir / "settings.json"
        if path.is_file():
            if json.loads(path.read_text(encoding="utf-8")) != self.settings.to_dict():
                raise UsageError(f"--work-dir: {path} holds different settings")
        else:
            self.config_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, self.settings.to_dict())

    # ------------------------------------------------------ pretraining
    def pretrained(self, seed):
        """A pretrained start: the backbone weights file of an ID-only run
        (seed ``seed``) on the disjoint pretraining set (cached)."""
        out = self.pretrain_dir / f"seed{seed}.weights.h5"
        if out.is_file():
            return out
        run_dir = self.pretrain_dir / f"seed{seed}"
        if not is_finished(run_dir):
            cfg = self.settings.pretrain_config(
                seed, data=[str(self.data(pretrain=True))], run_dir=str(run_dir), quiet=True,
                json="-", checkpoint_every=self.settings.pretrain_steps, keep_checkpoints=1,
                overwrite=RunDir(run_dir).is_finished())
            self.log(f"pretraining a shared start (seed {seed}, ID loss only, "
                     f"{self.elapsed()})")
            t, cpu = time.monotonic(), children_cpu_seconds()
            code = self.train(cfg.to_argv(), run_dir, self.pretrain_dir / f"seed{seed}.log")
            self.cost[("pretrain", seed)] = (time.monotonic() - t, children_cpu_seconds() - cpu)
            if code != 0 or not is_finished(run_dir):
                raise RuntimeError(f"pretraining of seed {seed} failed (train.py status "
                                   f"{code}; see {self.pretrain_dir / f'seed{seed}.log'})")
        self.export(RunDir(run_dir).model_path, out)
        return out

    # ------------------------------------------------------------ shares
    def rescaled_weights(self):
        """``(kl, metric)`` weights of the rescaled arm and the measured
        gradient shares (``shares.json``, measured once)."""
        path = self.config_dir / "shares.json"
        if not path.is_file():
            self.log(f"measuring the mutual-loss gradient shares ({self.elapsed()})")
            atomic_write_json(path, self.shares_fn(self.settings, self, PRETRAIN_SEED))
        shares = json.loads(path.read_text(encoding="utf-8"))
        return tuple(shares["rescaled_weights"]), shares

    # -------------------------------------------------------------- runs
    def result_path(self, variant, seed):
        return self.config_dir / variant.key / f"seed{seed}.json"

    def run_config(self, variant, seed, **invocation):
        """The ``TrainConfig`` of one (variant, seed), pretrained starts included."""
        peer = self.pretrained(PRETRAIN_SEED + PEER_SEED_OFFSET) if variant.mutual else None
        rescaled = self.rescaled_weights()[0] if variant.mutual == "rescaled" else None
        return self.settings.train_config(
            variant, seed, weights=str(self.pretrained(PRETRAIN_SEED)),
            peer_weights=None if peer is None else str(peer), rescaled=rescaled, **invocation)

    def run(self, variant, seed, tag=""):
        """Trains and scores one (variant, seed) unless its results exist.

        Returns:
            the results dict (see :func:`benchmarks.ablation.results.run_results`),
            or ``{"error": str}``.
        """
        out = self.result_path(variant, seed)
        if out.is_file():
            return json.loads(out.read_text(encoding="utf-8"))
        run_dir = out.parent / f"seed{seed}"
        if not is_finished(run_dir):
            cfg = self.run_config(
                variant, seed, data=[str(self.data())], run_dir=str(run_dir), quiet=True,
                json="-", checkpoint_every=self.settings.steps_per_epoch, keep_checkpoints=1,
                overwrite=RunDir(run_dir).is_finished())
            self.log(f"{tag}{variant.label}, seed {seed}: training ({self.elapsed()})")
            log_path = out.parent / f"seed{seed}.stderr.log"
            t = time.monotonic()
            cpu = children_cpu_seconds()
            code = self.train(cfg.to_argv() + list(self.settings.extra_train_args), run_dir,
                              log_path)
            self.cost[(variant.key, seed)] = (time.monotonic() - t,
                                              children_cpu_seconds() - cpu)
            if code != 0 or not is_finished(run_dir):
                error = f"train.py exited with status {code} (see {log_path})"
                self.log(f"{tag}{variant.label}, seed {seed}: FAILED ({error})")
                return {"error": error}
            self.log(f"{tag}{variant.label}, seed {seed}: trained in "
                     f"{time.monotonic() - t:.0f} s")
        result = run_results(run_dir, variant=variant.key, seed=seed)
        if (variant.key, seed) in self.cost:  # wall and CPU seconds of train.py
            result["wall_seconds"], result["cpu_seconds"] = self.cost[(variant.key, seed)]
        atomic_write_json(out, result)
        self.log(f"{tag}{variant.label}, seed {seed}: rank-1 {result['rank1']:.1f}, "
                 f"mAP {result['mAP']:.1f} (global feature)")
        return result

    def run_all(self, variants, seeds, report_only=False):
        """Every (variant, seed), seed-major (an interrupted benchmark has all
        variants at its first seeds).

        Returns:
            ``{variant key: {seed: results}}`` of the runs with results.
        """
        if not report_only:
            self.check_settings()
        jobs = [(v, s) for s in seeds for v in variants]
        todo = [(v, s) for v, s in jobs if not self.result_path(v, s).is_file()]
        runs = {v.key: {} for v in variants}
        done = 0
        for i, (v, s) in enumerate(jobs, 1):
            if report_only or not (v, s) in todo:
                path = self.result_path(v, s)
                if path.is_file():
                    runs[v.key][s] = json.loads(path.read_text(encoding="utf-8"))
                continue
            t = time.monotonic()
            runs[v.key][s] = self.run(v, s, tag=f"[{i}/{len(jobs)}] ")
            done += 1
            left = len(todo) - done
            if left:
                rate = (time.monotonic() - self.t0) / done
                self.log(f"{done}/{len(todo)} runs done, ETA {format_duration(rate * left)} "
                         f"(last {time.monotonic() - t:.0f} s)")
        return {k: {s: r for s, r in v.items() if "error" not in r} for k, v in runs.items()}

    def elapsed(self):
        return f"elapsed {format_duration(time.monotonic() - self.t0)}"
