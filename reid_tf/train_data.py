"""The datasets of a training run: the synthetic cache, the training split,
the test sets, and the input pipeline that feeds the training batches."""

import dataclasses
import os
from pathlib import Path

from reid_tf.config import SettingError
from reid_tf.launch import importable

SYNTHETIC_NAME = "synthetic"
CACHE_ENV = "ALIGNEDREID_CACHE"


@dataclasses.dataclass
class TestSet:
    """One evaluated dataset: a display name and its manifest."""

    __test__ = False  # not a pytest test class

    name: str
    manifest: object


def cache_root(cfg):
    """Root of the dataset cache: ``cfg.cache_dir``, ``$ALIGNEDREID_CACHE`` or
    ``~/.cache/alignedreid``.

    Args:
        cfg: ``TrainConfig``.

    Returns:
        ``Path``.

    Example:
        >>> from reid_tf.config import TrainConfig
        >>> cache_root(TrainConfig(cache_dir="/tmp/c"))
        PosixPath('/tmp/c')
    """
    if cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    return default_cache_root()


def default_cache_root():
    """The cache root when no directory is given: ``$ALIGNEDREID_CACHE`` or
    ``~/.cache/alignedreid`` (shared by ``train.py`` and ``reid-search``).

    Returns:
        ``Path``.

    Example:
        >>> saved = os.environ.pop(CACHE_ENV, None)
        >>> default_cache_root() == Path.home() / ".cache" / "alignedreid"
        True
        >>> if saved is not None:
        ...     os.environ[CACHE_ENV] = saved
    """
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
        >>> from reid_tf.config import TrainConfig
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

    ``data_prep.synthetic.prepare_cached`` generates it into
    ``<cache>/synthetic-<key of the knobs>/prepared``; a later run with the
    same knobs reuses it.

    Args:
        cfg: ``TrainConfig``.
        log: callable taking a message (an :class:`reid_tf.event_log.EventLog`).

    Returns:
        ``Path`` of the prepared dataset (holds ``manifest.jsonl``).

    Raises:
        SettingError: the cache directory cannot be used (an invalid knob,
            a folder that cannot be written).
    """
    from data_prep import PrepError, synthetic

    knobs = synthetic_knobs(cfg)
    root = cache_root(cfg)
    final = root / f"synthetic-{synthetic.cache_key(knobs)}"
    if (final / "prepared" / "manifest.jsonl").is_file():
        log(f"synthetic dataset: {final / 'prepared'} (cached)")
    else:
        log(f"synthetic dataset: generating {knobs['num_identities']} identities "
            f"x {knobs['images_per_identity']} images into {final / 'prepared'}")
    try:
        return synthetic.prepare_cached(root, **knobs)
    except PrepError as exc:
        raise SettingError("{cache_dir}: {error}", error=exc) from None
    except OSError as exc:  # a read-only or full cache folder
        raise SettingError("{cache_dir}: cannot prepare the synthetic dataset in {root} "
                           "({error})", root=root, error=exc.strerror or exc) from None


def training_pipeline(cfg):
    """The input pipeline of a run: ``"tfdata"`` or ``"pydataset"``.

    ``cfg.pipeline`` ``"auto"`` is tf.data on the TensorFlow backend and the
    PyDataset on the others; ``"tfdata"`` on another backend is allowed when
    TensorFlow is installed.

    Args:
        cfg: ``TrainConfig``.

    Returns:
        str.

    Raises:
        SettingError: ``tfdata`` asked for without TensorFlow installed, or
            ``pydataset`` with the ``multiworker`` strategy.

    Example:
        >>> from reid_tf.config import TrainConfig
        >>> training_pipeline(TrainConfig(pipeline="pydataset"))
        'pydataset'
    """
    from reid_tf.tf_startup import configured_backend

    if cfg.pipeline == "auto":
        return "tfdata" if configured_backend() == "tensorflow" else "pydataset"
    if cfg.pipeline == "tfdata" and not importable("tensorflow"):
        raise SettingError("{pipeline} tfdata: TensorFlow is not installed; use {pipeline} "
                           "pydataset (the same batches without TensorFlow)")
    if cfg.pipeline == "pydataset" and cfg.strategy == "multiworker":
        raise SettingError("{pipeline} pydataset: not available with {strategy} multiworker "
                           "(its training loop reads tf.data); use {pipeline} tfdata")
    return cfg.pipeline


def scan_training_images(cfg, paths):
    """Which training images can be decoded, by the run's pipeline's decoder.

    Args:
        cfg: ``TrainConfig``.
        paths: [N] image paths.

    Returns:
        [N] bool numpy array.
    """
    if training_pipeline(cfg) == "tfdata":
        from reid_tf.data import scan_images
    else:
        from reid_tf.image_io import scan_images
    return scan_images(paths)


def training_batches(cfg, paths, labels, *, epoch, first_batch, steps):
    """The training batches of one epoch: ``steps`` P x K batches from batch
    ``first_batch`` on (a resumed epoch skips the batches already done
    without loading their images), from the run's pipeline
    (:func:`training_pipeline`).

    The batches are a function of the run's seed and the epoch, the same in
    both pipelines, so a resumed run sees the same batches as an
    uninterrupted one.

    Args:
        cfg: resolved ``TrainConfig``.
        paths, labels: the readable training images and their labels.
        epoch: 0-based epoch.
        first_batch: index of the epoch's first batch to yield.
        steps: batches to yield.

    Returns:
        a dataset ``fit()`` accepts, yielding ``(images [P*K, H, W, 3]
        float32, labels [P*K] int32)``: a ``tf.data.Dataset`` or a
        :class:`reid_tf.pydataset.PKBatches`.
    """
    kwargs = dict(P=cfg.P, K=cfg.K, image_size=tuple(cfg.image_size), flip=cfg.flip,
                  crop=cfg.crop,
                  seed=cfg.seed * 1_000_003 + epoch, scan=False, first_batch=first_batch)
    if training_pipeline(cfg) == "tfdata":
        from reid_tf.data import make_train_dataset

        return make_train_dataset(paths, labels, deterministic=True, **kwargs).take(steps)
    from reid_tf.pydataset import make_train_pydataset

    return make_train_pydataset(paths, labels, num_batches=steps, **kwargs)


def load_datasets(cfg, log):
    """The training split and the test sets of a run.

    Args:
        cfg: ``TrainConfig``.
        log: callable taking a message.

    Returns:
        ``(train_split, test_sets)``: a ``data_prep.manifest.Split`` with
        labels unique across datasets and a list of :class:`TestSet`.

    Raises:
        SettingError: a manifest cannot be read, or the training data has
            fewer identities than a batch.
    """
    from data_prep import PrepError
    from data_prep import ManifestError, load_manifest, merge_train

    training_pipeline(cfg)  # a pipeline that cannot run fails before any work
    try:
        if cfg.data:
            paths, names = cfg.data, None
        else:
            paths, names = [prepare_synthetic(cfg, log)], [SYNTHETIC_NAME]
        manifests = [load_manifest(p) for p in paths]
        train = merge_train(manifests)
    except (ManifestError, PrepError) as exc:
        raise SettingError("{data}: {error}", error=exc) from None
    except OSError as exc:
        where = exc.filename if exc.filename is not None else ", ".join(cfg.data)
        raise SettingError("{data}: {where}: {error}", where=where,
                           error=exc.strerror or exc) from None
    if names is None:
        names, seen = [], {}
        for m in manifests:
            seen[m.dataset] = seen.get(m.dataset, 0) + 1
            names.append(m.dataset if seen[m.dataset] == 1 else f"{m.dataset}-{seen[m.dataset]}")
    tests = [TestSet(n, m) for n, m in zip(names, manifests)
             if len(m.split("query")) and len(m.split("gallery"))]
    identities = train.num_classes
    if identities < cfg.P:
        raise SettingError("{P}: {n} identities per batch, but the training data has "
                           "only {identities}", n=cfg.P, identities=identities)
    log(f"training data: {len(train)} images of {identities} identities; "
        f"test sets: {', '.join(t.name for t in tests) or 'none'}")
    return train, tests
