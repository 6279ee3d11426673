"""``train.py``: prepare data, train AlignedReID, evaluate, write a run directory.

With no arguments it prepares the built-in synthetic dataset (cached), trains
the ``tiny`` backbone on CPU for a few minutes and prints the before/after
evaluation table. ``--help`` lists every setting; docs/training.md gives the
paper's recipes.

This module only orchestrates; the pieces live in focused modules:
:mod:`reid_tf.config` (settings), :mod:`reid_tf.run_dir` (run directory),
:mod:`reid_tf.callbacks` (schedule, NaN guard, checkpoints, CSV log),
:mod:`reid_tf.extract` (features, dumps), :mod:`reid_tf.evaluation`
(metrics, table, plot), :mod:`reid_tf.training` (the losses' models),
:mod:`reid_tf.data` (input pipeline).

Exit status: 0 success, 1 training failed (non-finite loss), 2 usage error,
130 interrupted (Ctrl-C; the run can be resumed).
"""

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from reid_tf.config import ConfigError, TrainConfig
from reid_common import atomic_path, atomic_write_json
from reid_tf.run_dir import RunDir, RunDirError, open_run_dir

EXIT_FAILED = 1
EXIT_USAGE = 2
SYNTHETIC_NAME = "synthetic"
CACHE_ENV = "ALIGNEDREID_CACHE"
# Test hooks (not settings of the experiment): see tests/train.
NAN_HOOK_ENV = "ALIGNEDREID_TEST_NAN_AT_STEP"
DELAY_HOOK_ENV = "ALIGNEDREID_TEST_STEP_DELAY"


class UsageError(ValueError):
    """A user error found after parsing (bad data path, ...): exit code 2."""


class TrainingFailed(RuntimeError):
    """Training stopped (non-finite loss): exit code 1."""


# ------------------------------------------------------------------ parsing
class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


_GROUP_TITLES = {
    "data": "data",
    "model": "model",
    "loss": "loss (AlignedReID: TriHard global + local, ID)",
    "optimisation": "optimisation (Adam, piecewise-constant learning rate)",
    "mutual": "mutual learning",
    "performance": "performance and distribution",
    "evaluation": "evaluation",
    "output": "output, checkpoints and resumption",
}

_ELEMENT_TYPES = {"image_size": int, "lr_milestones": int, "lr_values": float, "data": str}


def build_parser(prog="train.py"):
    """The ``train.py`` parser, generated from :class:`TrainConfig`.

    Every flag's default is ``argparse.SUPPRESS`` so that unset flags keep
    the dataclass default (the one place where defaults live).

    Args:
        prog: program name in messages.

    Returns:
        ``argparse.ArgumentParser``.

    Example:
        >>> ns = build_parser().parse_args(["--epochs", "3"])
        >>> ns.epochs
        3
    """
    parser = _Parser(
        prog=prog,
        description=(
            "Train AlignedReID (global + aligned local TriHard losses and an ID loss) "
            "and evaluate it. Without arguments: prepare the synthetic dataset, train "
            "the tiny backbone on CPU and print a before/after table."
        ),
        epilog="Exit status: 0 done, 1 training failed (non-finite loss), 2 usage error, "
               "130 interrupted. "
               "See docs/training.md for the paper's recipes.",
        argument_default=argparse.SUPPRESS,
    )
    defaults = TrainConfig()
    groups = {}
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        group = groups.get(meta["group"])
        if group is None:
            group = groups[meta["group"]] = parser.add_argument_group(
                _GROUP_TITLES.get(meta["group"], meta["group"]))
        default = getattr(defaults, f.name)
        kwargs = {"dest": f.name}
        help_text = meta["help"]
        if meta["action"]:
            kwargs["action"] = meta["action"]
        else:
            kind = _ELEMENT_TYPES.get(f.name)
            if kind is None:
                kind = type(default) if default is not None else str
                if f.name in ("lr",):
                    kind = float
            kwargs["type"] = kind
            if meta["nargs"] is not None:
                kwargs["nargs"] = meta["nargs"]
            if meta["choices"] is not None:
                kwargs["choices"] = meta["choices"]
            if meta["metavar"] is not None:
                kwargs["metavar"] = meta["metavar"]
            if default not in (None, []):
                shown = " ".join(map(str, default)) if isinstance(default, list) else default
                help_text += f" (default: {shown})"
        kwargs["help"] = help_text.replace("%", "%%")
        group.add_argument(meta["flag"], **kwargs)
    return parser


def parse_config(argv=None):
    """Parses ``train.py`` arguments into a resolved :class:`TrainConfig`.

    Args:
        argv: argument list (default ``sys.argv[1:]``).

    Returns:
        ``TrainConfig`` (resolved).

    Raises:
        SystemExit: code 2 on a bad argument (one-line message on stderr).

    Example:
        >>> parse_config(["--epochs", "1"]).epochs
        1
    """
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return TrainConfig(**vars(ns)).resolved()
    except ConfigError as exc:
        parser.error(str(exc))


# ------------------------------------------------------------------ logging
class EventLog:
    """Messages to stderr and, once the run directory is known, ``train.log``.

    Example:
        >>> log = EventLog()
        >>> log("hello")  # doctest: +SKIP
    """

    def __init__(self, quiet=False):
        self.run = None
        self.quiet = quiet
        self._pending = []

    def attach(self, run):
        """Starts writing to ``run``'s ``train.log`` (earlier messages included).

        Args:
            run: :class:`RunDir`.

        Returns:
            None.

        Example:
            >>> EventLog().attach(RunDir("runs/x"))  # doctest: +SKIP
        """
        self.run = run
        for message in self._pending:
            run.log_event(message)
        self._pending = []

    def __call__(self, message, always=False):
        if always or not self.quiet:
            print(message, file=sys.stderr, flush=True)
        if self.run is not None:
            self.run.log_event(message)
        else:
            self._pending.append(message)


# --------------------------------------------------------------------- data
@dataclasses.dataclass
class TestSet:
    """One evaluated dataset: a display name and its manifest."""

    name: str
    manifest: object


def cache_root(cfg):
    """Root of the dataset cache: ``--cache-dir``, ``$ALIGNEDREID_CACHE`` or
    ``~/.cache/alignedreid``.

    Args:
        cfg: ``TrainConfig``.

    Returns:
        ``Path``.

    Example:
        >>> cache_root(TrainConfig(cache_dir="/tmp/c"))
        PosixPath('/tmp/c')
    """
    if cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path.home() / ".cache" / "alignedreid"


def synthetic_knobs(cfg):
    """The generator settings of the synthetic dataset of a run.

    Args:
        cfg: ``TrainConfig``.

    Returns:
        dict of keyword arguments of ``data_prep.synthetic.generate``.

    Example:
        >>> synthetic_knobs(TrainConfig())["num_identities"]
        64
    """
    return {
        "num_identities": cfg.synthetic_identities,
        "num_cameras": cfg.synthetic_cameras,
        "images_per_identity": cfg.synthetic_images,
        "height": cfg.image_size[0],
        "width": cfg.image_size[1],
        "seed": cfg.synthetic_seed,
    }


def prepare_synthetic(cfg, log):
    """Prepares (once) and returns the cached synthetic dataset.

    The dataset is generated in Market-1501 layout, converted with the
    ``market1501`` converter (hard links) into a prepared dataset, and moved
    into ``<cache>/synthetic-<hash of the knobs>/`` with one ``os.replace``;
    a later run with the same knobs reuses it.

    Args:
        cfg: ``TrainConfig``.
        log: :class:`EventLog`.

    Returns:
        ``Path`` of the prepared dataset (holds ``manifest.jsonl``).

    Example:
        >>> prepare_synthetic(TrainConfig(), print)  # doctest: +SKIP
        PosixPath('/root/.cache/alignedreid/synthetic-1a2b3c4d5e6f/prepared')
    """
    from data_prep import PrepError, synthetic

    knobs = synthetic_knobs(cfg)
    root = cache_root(cfg)
    final = root / f"synthetic-{synthetic.cache_key(knobs)}"
    if (final / "prepared" / "manifest.jsonl").is_file():
        log(f"synthetic dataset: {final / 'prepared'} (cached)")
    else:
        log(f"synthetic dataset: generating {knobs['num_identities']} identities "
            f"x {knobs['images_per_identity']} images into {final}")
    try:
        return synthetic.prepare_cached(root, **knobs)
    except PrepError as exc:
        raise UsageError(f"--cache-dir: {exc}") from None


def load_datasets(cfg, log):
    """The training split and the test sets of a run.

    Args:
        cfg: ``TrainConfig``.
        log: :class:`EventLog`.

    Returns:
        ``(train_split, test_sets)``: a ``data_prep.manifest.Split`` with
        labels unique across datasets and a list of :class:`TestSet`.

    Raises:
        UsageError: a manifest cannot be read or has no train rows.

    Example:
        >>> train, tests = load_datasets(TrainConfig(), print)  # doctest: +SKIP
    """
    from data_prep import PrepError
    from data_prep.combine import merge_train
    from data_prep.manifest import ManifestError, load_manifest

    try:
        if cfg.data:
            paths, names = cfg.data, None
        else:
            paths, names = [prepare_synthetic(cfg, log)], [SYNTHETIC_NAME]
        manifests = []
        for p in paths:
            try:
                manifests.append(load_manifest(p))
            except ManifestError as exc:
                raise UsageError(f"--data: {exc}") from None
        train = merge_train(manifests)
    except (ManifestError, PrepError) as exc:
        raise UsageError(f"--data: {exc}") from None
    if names is None:
        names, seen = [], {}
        for m in manifests:
            seen[m.dataset] = seen.get(m.dataset, 0) + 1
            names.append(m.dataset if seen[m.dataset] == 1 else f"{m.dataset}-{seen[m.dataset]}")
    tests = [TestSet(n, m) for n, m in zip(names, manifests)
             if len(m.split("query")) and len(m.split("gallery"))]
    identities = train.num_classes
    if identities < cfg.P:
        raise UsageError(f"--P: {cfg.P} identities per batch, but the training data has "
                         f"only {identities}")
    log(f"training data: {len(train)} images of {identities} identities; "
        f"test sets: {', '.join(t.name for t in tests) or 'none'}")
    return train, tests


# ------------------------------------------------------------ distribution
def cluster_role(name):
    """Whether this process is the chief, read from ``TF_CONFIG`` (no TF import).

    Args:
        name: ``--strategy`` value.

    Returns:
        bool: True except on non-chief workers of a multi-worker cluster.

    Raises:
        UsageError: ``multiworker`` without a usable ``TF_CONFIG``.

    Example:
        >>> cluster_role("default")
        True
    """
    if name != "multiworker":
        return True
    try:
        tf_config = json.loads(os.environ.get("TF_CONFIG", ""))
        task, cluster = tf_config["task"], tf_config["cluster"]
        kind, index = task["type"], int(task.get("index", 0))
    except (ValueError, KeyError, TypeError):
        raise UsageError("--strategy multiworker: TF_CONFIG must be set to a JSON object "
                         "with 'cluster' and 'task' (type, index)") from None
    if "chief" in cluster:
        return kind == "chief"
    return kind == "worker" and index == 0


def make_strategy(name):
    """The ``tf.distribute`` strategy of ``--strategy``.

    Args:
        name: ``"default"`` (the default strategy: one device), ``"mirrored"``
            (``MirroredStrategy`` over all local GPUs, or the CPU) or
            ``"multiworker"`` (``MultiWorkerMirroredStrategy`` from
            ``TF_CONFIG``).

    Returns:
        ``tf.distribute.Strategy``.

    Example:
        >>> make_strategy("default").num_replicas_in_sync  # doctest: +SKIP
        1
    """
    import tensorflow as tf

    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        # No GPU: one replica per logical CPU device (see
        # tf.config.set_logical_device_configuration; one by default).
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=cpus)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


# -------------------------------------------------------------------- model
def build_trainer(cfg, num_classes):
    """Builds and compiles the training model (call inside the strategy scope).

    Args:
        cfg: ``TrainConfig``.
        num_classes: training identities.

    Returns:
        ``(trainer, network)``: the compiled ``AlignedReIDModel`` or
        ``MutualAlignedReID`` (optimizer built) and the main network.

    Example:
        >>> trainer, net = build_trainer(TrainConfig().resolved(), 10)  # doctest: +SKIP
    """
    import keras

    from reid_tf.model import build_model
    from reid_tf.training import AlignedReIDModel, MutualAlignedReID

    weights = None if cfg.weights == "none" else cfg.weights
    shape = (cfg.image_size[0], cfg.image_size[1], 3)

    def network(backbone, w):
        try:
            return build_model(
                backbone, num_classes=num_classes, input_shape=shape,
                local_channels=cfg.local_channels, local_pooling=cfg.local_pooling,
                weights=w, last_stride=cfg.last_stride, with_local=not cfg.no_local,
            )
        except ValueError as exc:
            raise UsageError(f"--backbone/--weights: {exc}") from None

    loss_args = dict(
        global_margin=cfg.global_margin, local_margin=cfg.local_margin,
        normalize_features=cfg.normalize_features, id_weight=cfg.id_weight,
        global_weight=cfg.global_weight, local_weight=cfg.local_weight,
        local_mining=cfg.local_mining, aligned=not cfg.unaligned_local,
        label_smoothing=cfg.label_smoothing,
    )
    net = network(cfg.backbone, weights)
    if cfg.mutual:
        peer_weights = weights if cfg.peer_backbone == cfg.backbone else (
            "imagenet" if weights == "imagenet" and cfg.peer_backbone == "resnet50" else None)
        peer = network(cfg.peer_backbone, peer_weights)
        trainer = MutualAlignedReID(net, peer, kl_weight=cfg.mutual_kl_weight,
                                    metric_weight=cfg.mutual_metric_weight, **loss_args)
    else:
        trainer = AlignedReIDModel(net, **loss_args)
    trainer.compile(optimizer=keras.optimizers.Adam(cfg.lr_values[0]),
                    jit_compile=cfg.jit_compile)
    trainer.optimizer.build(trainer.trainable_variables)
    return trainer, net


# --------------------------------------------------------------- evaluation
def _info(manifest):
    q, g = len(manifest.split("query")), len(manifest.split("gallery"))
    return f"{manifest.protocol} protocol, {q} queries, {g} gallery images"


def evaluate_sets(feature_model, test_sets, cfg, *, kinds, progress, dumps=None,
                  model_name=""):
    """Extracts features of every test set and scores them.

    Args:
        feature_model: model with ``{"global", ["local"]}`` outputs.
        test_sets: list of :class:`TestSet`.
        cfg: ``TrainConfig``.
        kinds: rankings to score (see :data:`reid_tf.evaluation.KINDS`).
        progress: progress lines on stderr.
        dumps: optional callable name -> dump path; the features are written
            there with ``reference.write_dump``.
        model_name: ``model`` attribute of the dumps.

    Returns:
        dict name -> {"info": str, "protocol": str, "num_query": int,
        "num_gallery": int, "metrics": {kind: metrics}}.

    Example:
        >>> evaluate_sets(model, tests, cfg, kinds=("global",), progress=False)  # doctest: +SKIP
    """
    from reid_tf.evaluation import evaluate_features
    from reid_tf.extract import extract_test_split, write_test_dump

    out = {}
    for t in test_sets:
        query, gallery, lists = extract_test_split(
            feature_model, t.manifest, batch_size=cfg.eval_batch_size,
            normalize=cfg.normalize_features, progress=progress, name=t.name,
        )
        if dumps is not None:
            write_test_dump(dumps(t.name), query, gallery, lists, protocol=t.manifest.protocol,
                            model_name=model_name, dataset=t.name)
        metrics = evaluate_features(
            query, gallery, protocol=t.manifest.protocol, gallery_lists=lists,
            kinds=kinds, rerank=(cfg.rerank_k1, cfg.rerank_k2, cfg.rerank_lambda),
            seed=cfg.seed,
        )
        out[t.name] = {"info": _info(t.manifest), "protocol": t.manifest.protocol,
                       "num_query": len(query["pid"]), "num_gallery": len(gallery["pid"]),
                       "metrics": metrics}
    return out


# ----------------------------------------------------------------- training
def _hook(name, kind):
    value = os.environ.get(name)
    return kind(value) if value else None


def train_epochs(cfg, trainer, train_split, run, state, *, start, evaluate, log,
                 strategy, csv=True, verbose=1):
    """Runs the remaining epochs, one ``fit()`` call per epoch (under
    ``--strategy multiworker``, one :meth:`reid_tf.distributed.DistributedLoop.fit_epoch`
    call per epoch, with the same callbacks).

    Args:
        cfg: ``TrainConfig``.
        trainer: compiled training model.
        train_split: training ``Split``.
        run: :class:`RunDir` (its CSV log and checkpoints).
        state: :class:`reid_tf.callbacks.TrainingState`.
        start: restored position dict (``epoch``, ``step``, ``metric_state``)
            or None.
        evaluate: callable for periodic evaluation (flat metrics).
        log: :class:`EventLog`.
        strategy: the ``tf.distribute`` strategy (``fit`` runs in its scope).
        csv: write the epoch CSV (False on non-chief workers).
        verbose: Keras verbosity.

    Returns:
        dict with ``epochs_done`` and ``last_logs``.

    Raises:
        TrainingFailed: the loss or the weights became non-finite.

    Example:
        >>> train_epochs(cfg, trainer, train, run, state, start=None, ...)  # doctest: +SKIP
    """
    import tensorflow as tf

    from reid_tf.callbacks import Position, standard_callbacks
    from reid_tf.data import make_train_dataset

    start_epoch = start["epoch"] if start else 0
    start_step = start["step"] if start else 0
    if start_step >= cfg.steps_per_epoch:
        start_epoch, start_step = start_epoch + 1, 0
    position = Position(cfg.steps_per_epoch, start_epoch, start_step)

    def on_save(path, epoch, step, global_step):
        where = f"epoch {epoch + 1}, step {step}" if step else f"end of epoch {epoch}"
        run.log_event(f"checkpoint {os.path.basename(path)}: {where} (global step {global_step})")

    callbacks, guard = standard_callbacks(
        position=position, state=state, csv_path=run.log_path if csv else None,
        start_epoch=start_epoch, milestones=cfg.lr_milestones, lr_values=cfg.lr_values,
        checkpoint_every=cfg.checkpoint_every, evaluate=evaluate, eval_every=cfg.eval_every,
        on_save=on_save, pending_metrics=start["metric_state"] if start and start_step else None,
        inject_nan_at_step=_hook(NAN_HOOK_ENV, int), step_delay=_hook(DELAY_HOOK_ENV, float) or 0.0,
        epochs=cfg.epochs, verbose=verbose,
    )
    from reid_tf.data import scan_images

    crop = None if cfg.crop == "none" else cfg.crop
    paths, labels = train_split.paths, train_split.labels
    readable = scan_images(paths)
    if not readable.all():
        log(f"skipping {int((~readable).sum())} unreadable training image(s), "
            f"first: {paths[~readable][0]}")
        paths, labels = paths[readable], labels[readable]
    # fit() cannot run under MultiWorkerMirroredStrategy with Keras 3: a custom
    # loop with the same callback protocol replaces it (reid_tf.distributed)
    loop = None
    if cfg.strategy == "multiworker":
        from reid_tf.distributed import DistributedLoop

        loop = DistributedLoop(trainer, strategy, global_batch=cfg.P * cfg.K)
    last_logs = {}
    epoch = start_epoch
    for epoch in range(start_epoch, cfg.epochs):
        first = start_step if epoch == start_epoch else 0
        position.epoch, position.first_step = epoch, first
        steps = cfg.steps_per_epoch - first
        # first_batch: a resumed epoch starts at its next batch without
        # loading the images of the batches already done
        dataset = make_train_dataset(
            paths, labels, P=cfg.P, K=cfg.K, image_size=tuple(cfg.image_size),
            flip=cfg.flip, crop=crop, seed=cfg.seed * 1_000_003 + epoch,
            deterministic=True, scan=False, first_batch=first,
        ).take(steps)
        try:
            with contextlib.redirect_stdout(sys.stderr), strategy.scope():
                if loop is not None:
                    epoch_logs = loop.fit_epoch(dataset, epoch=epoch, steps=steps,
                                                callbacks=callbacks)
                else:
                    history = trainer.fit(dataset, epochs=epoch + 1, initial_epoch=epoch,
                                          steps_per_epoch=steps, callbacks=callbacks,
                                          verbose=0, shuffle=False)
                    epoch_logs = {k: v[-1] for k, v in history.history.items() if v}
        except tf.errors.InvalidArgumentError:
            # Non-finite features can make an index computed from them invalid
            # (an op error rather than a NaN loss): report it as the NaN it is.
            if state.weights_finite():
                raise
            guard.record_failure({"weights": float("nan")})
        if guard.failure is not None:
            break
        last_logs = {k: float(v) for k, v in epoch_logs.items()}
    if guard.failure is not None:
        saved = state.manager.latest_checkpoint
        where = (f"the last good checkpoint {saved} is kept" if saved
                 else "no checkpoint had been saved")
        raise TrainingFailed(f"{guard.message()}; training stopped, {where} "
                             "(check the data or lower --lr, then start afresh with --overwrite)")
    return {"epochs_done": cfg.epochs, "last_logs": last_logs}


# --------------------------------------------------------------------- main
def run_training(cfg, log):
    """The whole run: data, model, before/after evaluation, files.

    Args:
        cfg: resolved ``TrainConfig``.
        log: :class:`EventLog`.

    Returns:
        dict summary (also the ``--json`` output).

    Raises:
        UsageError, RunDirError, ConfigError: user errors.
        TrainingFailed: non-finite loss.

    Example:
        >>> run_training(TrainConfig().resolved(), EventLog())  # doctest: +SKIP
    """
    t_start = time.monotonic()
    chief = cluster_role(cfg.strategy)
    if cfg.strategy == "multiworker" and cfg.jit_compile:
        raise UsageError("--jit-compile: not supported with --strategy multiworker (its "
                         "training loop is not XLA-compiled)")
    train_split, test_sets = load_datasets(cfg, log)

    # ---- run directory (the chief owns it; other workers write to a temp dir)
    if chief:
        run, resuming = open_run_dir(cfg.run_dir, cfg.experiment_dict(),
                                     overwrite=cfg.overwrite, resume=cfg.resume)
        run.lock()
        cfg = dataclasses.replace(cfg, run_dir=str(run.path))
        log.attach(run)
        # same experiment when resuming; the invocation settings are the new ones
        atomic_write_json(run.config_path, cfg.to_dict())
        run.set_status("running")
        log(f"run directory: {run.path}" + (" (resuming)" if resuming else ""))
    else:
        if cfg.run_dir is None:
            raise UsageError("--run-dir: required with --strategy multiworker (the same "
                             "directory on every worker)")
        run = RunDir(tempfile.mkdtemp(prefix="alignedreid-worker-"))
        resuming = RunDir(cfg.run_dir).has_checkpoint()

    import keras
    import tensorflow as tf

    from reid_tf.callbacks import TrainingState
    from reid_tf.evaluation import KINDS, flat_metrics, format_table, plot_cmc
    from reid_tf.model import has_local_branch, inference_model

    try:
        strategy = make_strategy(cfg.strategy)
        replicas = strategy.num_replicas_in_sync
        if cfg.P % replicas:
            raise UsageError(f"--P: {cfg.P} identities per batch cannot be split evenly over "
                             f"{replicas} replicas (per-replica hard mining needs whole "
                             "identities)")
        keras.utils.set_random_seed(cfg.seed)
        keras.mixed_precision.set_global_policy(
            "mixed_float16" if cfg.mixed_precision else "float32")
        with strategy.scope():
            trainer, network = build_trainer(cfg, train_split.num_classes)
        log(f"model: {network.name}, {network.count_params():,} parameters"
            + (f", peer {cfg.peer_backbone}" if cfg.mutual else "")
            + f", {replicas} replica(s)")
        state = TrainingState(trainer, run.checkpoint_dir, max_to_keep=cfg.keep_checkpoints)
        # create the checkpoint's save counter now, outside the strategy scope, on
        # every worker: created lazily inside it (first save) it is a collective
        # variable on workers that did not restore, and the workers' collectives
        # would no longer match after a resumption
        state.checkpoint.save_counter  # noqa: B018
        start = None
        if resuming:
            source = state
            if not chief:
                source = TrainingState(trainer, RunDir(cfg.run_dir).checkpoint_dir)
            try:
                start = source.restore()
            except ValueError as exc:
                raise UsageError(f"--run-dir: {exc}; pass --overwrite") from None
            if start is not None:
                log(f"resumed from checkpoint {os.path.basename(start['path'])} at epoch "
                    f"{start['epoch'] + 1}, step {start['step']} "
                    f"(global step {start['global_step']})", always=True)
            elif cfg.resume:
                raise UsageError(f"--resume: {run.path} holds no checkpoint yet")
        feature_model = inference_model(network, local=has_local_branch(network))
        progress = not cfg.quiet
        rerank_kinds = KINDS

        # ---- evaluation of the untrained model (kept for a resumed run)
        before_path = run.path / "metrics_untrained.json"
        before = None
        if chief and before_path.is_file():
            with open(before_path, encoding="utf-8") as f:
                before = json.load(f)
        if chief and before is None and start is None:
            log("evaluating the untrained model")
            before = evaluate_sets(feature_model, test_sets, cfg, kinds=rerank_kinds,
                                   progress=progress)
            atomic_write_json(before_path, before)

        def periodic():
            res = evaluate_sets(feature_model, test_sets, cfg, kinds=("global", "global+local"),
                                progress=False)
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
        result = train_epochs(cfg, trainer, train_split, run, state, start=start,
                              evaluate=periodic if chief else None, log=log, csv=chief,
                              strategy=strategy,
                              verbose=verbose)
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
        model_name = f"{network.name} ({run.path.name})" + (
            ", L2-normalised" if cfg.normalize_features else "")
        after = evaluate_sets(feature_model, test_sets, cfg, kinds=rerank_kinds,
                              progress=progress, dumps=run.dump_path, model_name=model_name)
        files["features"] = {t.name: str(run.dump_path(t.name)) for t in test_sets}
        table_input = {}
        datasets = {}
        for name, res in after.items():
            b = (before or {}).get(name, {}).get("metrics", {})
            table_input[name] = {"info": res["info"], "before": b, "after": res["metrics"]}
            datasets[name] = {k: res[k] for k in ("protocol", "num_query", "num_gallery")}
            datasets[name].update(before=b, after=res["metrics"])
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
            "device": "GPU" if tf.config.list_logical_devices("GPU") else "CPU",
            "replicas": replicas,
        }
        atomic_write_json(run.metrics_path, summary)
        run.set_status("finished")
        log(f"finished in {summary['total_seconds']:.0f} s; results in {run.path}")
        summary["table"] = format_table(table_input)
        return summary
    except UsageError:
        if chief and not resuming and not run.has_checkpoint():
            # a fresh directory of a run that could not start: leave nothing behind
            run.unlock()
            shutil.rmtree(run.path, ignore_errors=True)
        elif chief:
            run.set_status("failed", message="usage error")
        raise
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


def _compact(summary):
    out = dict(summary)
    out.pop("table", None)
    for d in out.get("datasets", {}).values():
        for when in ("before", "after"):
            for m in d.get(when, {}).values():
                m.pop("cmc", None)
    return out


def main(argv=None):
    """``train.py`` / ``reid-train``.

    Args:
        argv: argument list (default ``sys.argv[1:]``).

    Returns:
        Exit status (0 done, 1 training failed, 2 usage error).

    Example:
        >>> main(["--epochs", "1", "--steps-per-epoch", "2"])  # doctest: +SKIP
        0
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cfg = parse_config(argv)
    log = EventLog(quiet=cfg.quiet)
    try:
        summary = run_training(cfg, log)
    except (UsageError, RunDirError, ConfigError) as exc:
        print(f"train.py: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TrainingFailed as exc:
        print(f"train.py: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("train.py: interrupted; run the same command again to resume from the "
              "last checkpoint", file=sys.stderr)
        return 130
    if summary.get("worker"):
        return 0
    if cfg.json:
        print(json.dumps(_compact(summary), sort_keys=True))
    else:
        print(summary["table"])
        print(f"\nrun directory: {summary['run_dir']} "
              f"(training {summary['train_seconds']:.0f} s, total {summary['total_seconds']:.0f} s)")
    return 0
