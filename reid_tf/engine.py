"""The training engine: one run from a :class:`reid_tf.config.TrainConfig`
to a finished run directory.

:func:`run_training` loads the data (:mod:`reid_tf.train_data`), opens the
run directory (:mod:`reid_tf.run_dir`), builds the trainer on the strategy
(:mod:`reid_tf.strategy`, :mod:`reid_tf.fit_loop`), restores the newest
checkpoint (:mod:`reid_tf.checkpoint`), evaluates the untrained model, runs
the epochs, writes the inference model, the feature dumps, the CMC plot and
``metrics.json``, and returns the summary. It takes keyword arguments and
raises :class:`reid_tf.config.SettingError` (a user's mistake),
:class:`reid_tf.run_dir.RunDirError`, :class:`reid_tf.config.ConfigError`,
:class:`TrainingFailed` or :class:`TrainingInterrupted`; ``train.py``
(:mod:`reid_tf.train_cli`) turns them into exit codes. Which directory a run
uses (a new one, or an interrupted run with the same settings) is
:func:`reid_tf.resumption.choose_run_dir`'s rule; ``provenance.json``
(:mod:`reid_tf.provenance`) records what ran.
"""

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time

from reid_common import atomic_path, atomic_write_bytes, atomic_write_json
from reid_tf.backend import check_backend, describe_backend, training_devices
from reid_tf.config import SettingError
from reid_tf.event_log import EventLog
from reid_tf.fit_loop import TrainingFailed, build_trainer, train_epochs
from reid_tf.pretrained import random_init_warnings
from reid_tf.provenance import PROVENANCE_FILE, collect_provenance, write_provenance
from reid_tf.resumption import Terminated, TrainingInterrupted, choose_run_dir
from reid_tf.run_dir import RunDir, unusable
from reid_tf.strategy import cluster_role, make_strategy
from reid_tf.train_data import load_datasets

__all__ = ["PEER_SUFFIX", "TrainingFailed", "TrainingInterrupted", "evaluate_sets",
           "run_training"]

# The peer network of a mutual run is reported under "<dataset>-peer" (table
# rows, log.csv columns, feature dumps) and as "peer" in metrics.json.
PEER_SUFFIX = "-peer"


def _info(manifest):
    q, g = len(manifest.split("query")), len(manifest.split("gallery"))
    return f"{manifest.protocol} protocol, {q} queries, {g} gallery images"


def evaluate_sets(feature_model, test_sets, cfg, *, kinds, progress, dumps=None,
                  model_name=""):
    """Extracts features of every test set and scores them.

    Args:
        feature_model: model with ``{"global", ["local"]}`` outputs.
        test_sets: list of :class:`reid_tf.train_data.TestSet`.
        cfg: ``TrainConfig``.
        kinds: rankings to score (see :data:`reid_tf.evaluation.KINDS`).
        progress: progress lines on stderr.
        dumps: optional callable name -> dump path; the features are written
            there with ``reference.write_dump``.
        model_name: ``model`` attribute of the dumps.

    Returns:
        dict name -> {"info": str, "protocol": str, "num_query": int,
        "num_gallery": int, "metrics": {kind: metrics}}.

    Raises:
        SettingError: a test image cannot be read or decoded (the message is
            ``unreadable or corrupt image: PATH``).
    """
    from reid_tf.evaluation import evaluate_features
    from reid_tf.extract import ImageReadError, extract_test_split, write_test_dump

    out = {}
    for t in test_sets:
        try:
            query, gallery, lists = extract_test_split(
                feature_model, t.manifest, batch_size=cfg.eval_batch_size,
                normalize=cfg.normalize_features, progress=progress, name=t.name,
            )
        except ImageReadError as exc:
            raise SettingError("{error}", error=exc.detail) from None
        if dumps is not None:
            write_test_dump(dumps(t.name), query, gallery, lists, protocol=t.manifest.protocol,
                            model_name=model_name, dataset=t.name, image_root=t.manifest.root)
        metrics = evaluate_features(
            query, gallery, protocol=t.manifest.protocol, gallery_lists=lists,
            kinds=kinds, rerank=(cfg.rerank_k1, cfg.rerank_k2, cfg.rerank_lambda),
            seed=cfg.seed,
        )
        out[t.name] = {"info": _info(t.manifest), "protocol": t.manifest.protocol,
                       "num_query": len(query["pid"]), "num_gallery": len(gallery["pid"]),
                       "metrics": metrics}
    return out


def _open_run(cfg, chief, log):
    """The run directory (the chief's; a temporary one on other workers)."""
    if chief:
        run, resuming = choose_run_dir(cfg.run_dir, cfg.experiment_dict(),
                                       overwrite=cfg.overwrite, resume=cfg.resume,
                                       new_run=cfg.new_run,
                                       log=lambda message: log(message, always=True))
        run.lock()
        cfg = dataclasses.replace(cfg, run_dir=str(run.path))
        saved = _snapshot(run) if resuming else {}  # put back after a usage error
        checkpoint = run.status().get("checkpoint") if resuming else None
        try:
            log.attach(run)
            # same experiment when resuming; the invocation settings are the new ones
            atomic_write_json(run.config_path, cfg.to_dict())
            run.set_status("running", **({"checkpoint": checkpoint} if checkpoint else {}))
        except OSError as exc:  # a full disk, a directory that became read-only
            run.unlock()
            raise unusable(run.path, exc) from None
        log(f"run directory: {run.path}" + (" (resuming)" if resuming else ""))
        return cfg, run, resuming, saved
    if cfg.run_dir is None:
        raise SettingError("{run_dir}: required with {strategy} multiworker (the same "
                           "directory on every worker)")
    run = RunDir(tempfile.mkdtemp(prefix="alignedreid-worker-"))
    return cfg, run, RunDir(cfg.run_dir).has_checkpoint(), {}


def run_training(config, *, log=None, callbacks=()):
    """The whole run: data, model, before/after evaluation, files.

    Args:
        config: resolved ``TrainConfig``.
        log: callable ``log(message, always=False)`` with ``attach(run)``
            (default: an :class:`reid_tf.event_log.EventLog`).
        callbacks: extra ``keras.callbacks.Callback`` objects for every
            epoch's ``fit()``, called before the run's own.

    Returns:
        dict summary (the content of ``metrics.json`` plus ``table``, the
        before/after table); ``{"worker": True}`` on a non-chief worker.

    Raises:
        SettingError, RunDirError, ConfigError: a user's mistake; the
            ``status.json``, ``config.json`` and ``provenance.json`` of a run
            being resumed are put back as they were.
        TrainingFailed: non-finite loss or weights.
        TrainingInterrupted: Ctrl-C, or SIGTERM under
            :func:`reid_tf.resumption.stop_on_sigterm`; ``status.json``
            says ``interrupted``.
    """
    cfg = config
    log = EventLog(quiet=cfg.quiet) if log is None else log
    t_start = time.monotonic()
    if cfg.strategy == "multiworker" and cfg.jit_compile:
        raise SettingError("{jit_compile}: not supported with {strategy} multiworker (its "
                           "training loop is not XLA-compiled)")
    check_backend(strategy=cfg.strategy)
    chief = cluster_role(cfg.strategy)
    if chief and cfg.tensorboard is not None:
        from reid_tf.tensorboard_log import log_dir_problem

        problem = log_dir_problem(cfg.tensorboard)
        if problem:
            raise SettingError("{tensorboard}: {problem}", problem=problem)
    train_split, test_sets = load_datasets(cfg, log)
    cfg, run, resuming, saved = _open_run(cfg, chief, log)
    log(describe_backend())  # after the checks: a usage error stays one line
    try:
        return _train(cfg, run, resuming, chief, train_split, test_sets, log, callbacks,
                      t_start)
    except SettingError:
        if chief and resuming:
            _put_back(saved)
        elif chief and not run.has_checkpoint():
            _discard(run)
        elif chief:
            run.set_status("failed", message="usage error")
        raise
    except KeyboardInterrupt as exc:
        if not chief:
            raise
        reason = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
        checkpoint = run.status().get("checkpoint")
        run.set_status("interrupted", message=reason,
                       **({"checkpoint": checkpoint} if checkpoint else {}))
        log(f"interrupted ({reason})")
        raise TrainingInterrupted(run.path, checkpoint, reason) from None
    except BaseException as exc:
        if chief:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            run.set_status("failed", message=f"{type(exc).__name__}: {first}")
        raise
    finally:
        if chief:
            run.unlock()
        else:
            shutil.rmtree(run.path, ignore_errors=True)


def _snapshot(run):
    """The bytes of the files a resumption rewrites at its start."""
    out = {}
    for path in (run.status_path, run.config_path, run.path / PROVENANCE_FILE):
        try:
            out[path] = path.read_bytes()
        except OSError:
            out[path] = None
    return out


def _put_back(saved):
    """Restores the files of :func:`_snapshot` (a usage error leaves an
    existing run as it was)."""
    for path, data in saved.items():
        if data is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write_bytes(path, data)


def _discard(run):
    """Removes what a run that could not start wrote: the directory, or its
    contents when it existed (empty) before."""
    run.unlock()
    if not run.existed:
        shutil.rmtree(run.path, ignore_errors=True)
        return
    for p in run.path.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _restore(cfg, run, trainer, chief, resuming, log):
    """The checkpointed state and the restored position (None: a fresh start)."""
    from reid_tf.checkpoint import TrainingState

    state = TrainingState(trainer, run.checkpoint_dir, max_to_keep=cfg.keep_checkpoints)
    if not resuming:
        return state, None
    source = state if chief else TrainingState(trainer, RunDir(cfg.run_dir).checkpoint_dir)
    try:
        start = source.restore()
    except ValueError as exc:
        raise SettingError("{run_dir}: {error}; pass {overwrite}", error=exc) from None
    if start is not None:
        if chief:
            run.set_status("running", checkpoint={
                k: start[k] for k in ("epoch", "step", "global_step")})
        log(f"resumed from checkpoint {os.path.basename(start['path'])} at epoch "
            f"{start['epoch'] + 1}, step {start['step']} "
            f"(global step {start['global_step']})", always=True)
    elif cfg.resume:
        raise SettingError("{resume}: {path} holds no checkpoint yet", path=run.path)
    return state, start


def _train(cfg, run, resuming, chief, train_split, test_sets, log, callbacks, t_start):
    import keras

    from reid_tf.evaluation import KINDS, flat_metrics, format_table, plot_cmc
    from reid_tf.extract import normalized_label
    from reid_tf.model import has_local_branch, inference_model
    from reid_tf.tensorboard_log import tensorboard_callback, write_evaluation

    strategy = make_strategy(cfg.strategy)
    replicas = strategy.num_replicas_in_sync
    if chief:  # after the strategy: listing the devices starts TensorFlow's runtime
        write_provenance(run.path, collect_provenance())
    if cfg.P % replicas:
        raise SettingError("{P}: {n} identities per batch cannot be split evenly over "
                           "{replicas} replicas (per-replica hard mining needs whole "
                           "identities)", n=cfg.P, replicas=replicas)
    keras.utils.set_random_seed(cfg.seed)
    keras.mixed_precision.set_global_policy("mixed_float16" if cfg.mixed_precision else "float32")
    with strategy.scope():
        trainer, network = build_trainer(cfg, train_split.num_classes)
    log(f"model: {network.name}, {network.count_params():,} parameters"
        + (f", peer {cfg.peer_backbone}" if cfg.mutual else "")
        + f", {replicas} replica(s)")
    for line in random_init_warnings(cfg):
        log(line, always=True)
    state, start = _restore(cfg, run, trainer, chief, resuming, log)
    feature_model = inference_model(network, local=has_local_branch(network))
    # every trained network is evaluated: (name suffix, feature model, dump name)
    label = normalized_label(cfg.normalize_features)
    networks = [("", feature_model, f"{network.name} ({run.path.name}){label}")]
    if cfg.mutual:
        peer = trainer.network2
        networks.append((PEER_SUFFIX, inference_model(peer, local=has_local_branch(peer)),
                         f"{peer.name} ({run.path.name}, peer){label}"))
    progress = not cfg.quiet

    def evaluate_all(kinds, progress, dumps=None):
        out = {}
        for suffix, model, model_name in networks:
            res = evaluate_sets(
                model, test_sets, cfg, kinds=kinds, progress=progress,
                dumps=None if dumps is None else (lambda n, x=suffix: dumps(n + x)),
                model_name=model_name)
            out.update({name + suffix: r for name, r in res.items()})
        return out

    # ---- evaluation of the untrained model (kept for a resumed run)
    before_path = run.path / "metrics_untrained.json"
    before = None
    if chief and before_path.is_file():
        with open(before_path, encoding="utf-8") as f:
            before = json.load(f)
    if chief and before is None and start is None and cfg.eval_untrained:
        log("evaluating the untrained model")
        before = evaluate_all(KINDS, progress)
        atomic_write_json(before_path, before)
        if cfg.tensorboard is not None:
            write_evaluation(cfg.tensorboard, "before", before, step=0)

    def periodic():
        res = evaluate_all(("global", "global+local"), False)
        flat = {}
        for name, r in res.items():
            flat.update(flat_metrics(r["metrics"], prefix=f"{name}/"))
        return flat

    # ---- training
    t_train = time.monotonic()
    verbose = 0 if cfg.quiet else (1 if sys.stderr.isatty() else 2)
    if cfg.strategy == "multiworker":
        from reid_tf.distributed import outside_strategy_scope

        periodic = outside_strategy_scope(periodic)  # on the chief only
    loggers = []
    if chief and cfg.tensorboard is not None:
        loggers.append(tensorboard_callback(cfg.tensorboard))
        log(f"TensorBoard logs: {cfg.tensorboard}")
    result = train_epochs(cfg, trainer, train_split, run, state, start=start,
                          evaluate=periodic if chief else None, log=log, csv=chief,
                          strategy=strategy, verbose=verbose, callbacks=callbacks,
                          loggers=loggers)
    train_seconds = time.monotonic() - t_train
    if not chief:
        return {"worker": True}

    # ---- final model, features, metrics
    with atomic_path(run.model_path) as tmp:
        feature_model.save(tmp)
    files = {"model": str(run.model_path)}
    if cfg.mutual:
        peer_path = run.path / "peer_model.keras"
        with atomic_path(peer_path) as tmp:
            inference_model(trainer.network2,
                            local=has_local_branch(trainer.network2)).save(tmp)
        files["peer_model"] = str(peer_path)
    log("evaluating the trained model")
    run.features_dir.mkdir(exist_ok=True)
    after = evaluate_all(KINDS, progress, dumps=run.dump_path)
    files["features"] = {t.name + suffix: str(run.dump_path(t.name + suffix))
                         for suffix, _, _ in networks for t in test_sets}
    if cfg.tensorboard is not None:
        write_evaluation(cfg.tensorboard, "after", after, step=cfg.epochs - 1)
    table_input = {}
    datasets = {}
    for name, res in after.items():
        b = (before or {}).get(name, {}).get("metrics", {})
        table_input[name] = {"info": res["info"], "before": b, "after": res["metrics"]}
        if name.endswith(PEER_SUFFIX):  # the peer's metrics go with its dataset
            continue
        datasets[name] = {k: res[k] for k in ("protocol", "num_query", "num_gallery")}
        datasets[name].update(before=b, after=res["metrics"])
        peer = after.get(name + PEER_SUFFIX)
        if peer is not None:
            datasets[name]["peer"] = {
                "before": (before or {}).get(name + PEER_SUFFIX, {}).get("metrics", {}),
                "after": peer["metrics"]}
    if table_input:
        plot_cmc(table_input, run.plot_path)
        files["cmc_plot"] = str(run.plot_path)
    summary = {
        "run_dir": str(run.path),
        "status": "finished",
        "resumed_from": None if start is None else {
            k: start[k] for k in ("epoch", "step", "global_step")},
        "epochs": cfg.epochs,
        "steps_per_epoch": cfg.steps_per_epoch,
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.monotonic() - t_start, 1),
        "final_logs": result["last_logs"],
        "datasets": datasets,
        "files": files,
        "device": training_devices()[0].upper(),
        "backend": keras.backend.backend(),
        "replicas": replicas,
    }
    atomic_write_json(run.metrics_path, summary)
    run.set_status("finished")
    log(f"finished in {summary['total_seconds']:.0f} s; results in {run.path}")
    summary["table"] = format_table(table_input)
    return summary
