"""Every training setting, with its default and its help text, in one place.

:class:`TrainConfig` is the single source of truth for ``train.py``: the
command-line parser is generated from its fields (flag, help, choices), the
run directory stores it as ``config.json``, and a resumed run compares the
stored config with the new one.

Settings whose default depends on the recipe (the learning-rate schedule of
plain versus mutual training, the peer backbone) are ``None`` in a fresh
config and filled in by :meth:`TrainConfig.resolved`; ``config.json`` always
holds the resolved values.
"""

import dataclasses
import json
import os
from dataclasses import dataclass, field

from reid_common import NORMALIZE_MODES, normalize_mode
from reid_tf.loss_settings import LOCAL_MINING, LossSettings

BACKBONES = ("resnet50", "resnet50x", "tiny")
STRATEGIES = ("default", "mirrored", "multiworker")
CROPS = ("pad", "resize", "none")
PIPELINES = ("auto", "tfdata", "pydataset")

# Paper schedules: (initial lr, milestones, values).
PLAIN_SCHEDULE = (1e-3, (80, 160), (1e-3, 1e-4, 1e-5))
MUTUAL_SCHEDULE = (3e-4, (60, 120), (3e-4, 1e-4, 1e-5))

# Fields that describe one invocation, not the experiment: they may differ
# between a run and its resumption.
INVOCATION_FIELDS = (
    "run_dir",
    "overwrite",
    "resume",
    "json",
    "cache_dir",
    "eval_every",
    "eval_untrained",
    "checkpoint_every",
    "keep_checkpoints",
    "eval_batch_size",
    "quiet",
    "new_run",
    "tensorboard",
    "pipeline",
)


class ConfigError(ValueError):
    """A setting has an invalid value; the message names the flag."""


class SettingMessage:
    """A message that names :class:`TrainConfig` settings.

    The template names settings in braces (``"{run_dir}: ..."``); ``str()``
    shows them as setting names (``run_dir``), :meth:`for_cli` as flags
    (``--run-dir``). Other keyword values are inserted as given.

    Example:
        >>> e = SettingError("{P}: {n} identities per batch", n=3)
        >>> str(e), e.for_cli()
        ('P: 3 identities per batch', '--P: 3 identities per batch')
    """

    def __init__(self, template, **values):
        self.template = template
        self.values = values
        super().__init__(self._render(lambda name: name))

    def _render(self, name_of):
        names = {f.name: name_of(f.name) for f in dataclasses.fields(TrainConfig)}
        return self.template.format(**names, **self.values)

    def for_cli(self):
        """The message with command-line flags in place of setting names.

        Returns:
            str.
        """
        return self._render(flag_of)


class SettingError(SettingMessage, ConfigError):
    """A user's mistake found while running (a bad data path, too few
    identities, ...); the message names the settings concerned."""


def _opt(flag, help, group, metavar=None, nargs=None, choices=None, action=None,
         const=None, deprecated=()):
    return {"flag": flag, "const": const, "deprecated": deprecated, "help": help,
            "group": group, "metavar": metavar, "nargs": nargs, "choices": choices,
            "action": action}


def _f(default, **meta):
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """All settings of one training run (see ``train.py --help``).

    Example:
        >>> cfg = TrainConfig(epochs=2, steps_per_epoch=5).resolved()
        >>> cfg.lr_values[0]
        0.001
        >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
        True
    """

    # ----------------------------------------------------------------- data
    data: list = _f([], **_opt(
        "--data", "prepared dataset(s): a manifest.jsonl or its directory "
        "(written by data_prep). Several are merged for training with labels "
        "made unique; the test split of each is evaluated. Default: the "
        "built-in synthetic dataset, prepared once into --cache-dir.",
        "data", metavar="MANIFEST", nargs="+"))
    cache_dir: str = _f(None, **_opt(
        "--cache-dir", "where the synthetic dataset is prepared and reused "
        "(default: $ALIGNEDREID_CACHE or ~/.cache/alignedreid)", "data",
        metavar="DIR"))
    synthetic_identities: int = _f(64, **_opt(
        "--synthetic-identities", "synthetic dataset: number of identities "
        "(split between train and test by the generator)", "data", metavar="N"))
    synthetic_images: int = _f(12, **_opt(
        "--synthetic-images", "synthetic dataset: images per identity",
        "data", metavar="N"))
    synthetic_cameras: int = _f(4, **_opt(
        "--synthetic-cameras", "synthetic dataset: number of cameras",
        "data", metavar="N"))
    synthetic_seed: int = _f(0, **_opt(
        "--synthetic-seed", "synthetic dataset: generator seed", "data",
        metavar="SEED"))
    image_size: list = _f([128, 64], **_opt(
        "--image-size", "network input height and width in pixels (paper: "
        "224 224; the small default keeps the CPU demo fast)", "data",
        metavar=("H", "W"), nargs=2))
    P: int = _f(8, **_opt(
        "--P", "identities per training batch (paper: 40 for a batch of 160)",
        "data", metavar="P"))
    K: int = _f(4, **_opt(
        "--K", "images per identity in a training batch (paper: 4)", "data",
        metavar="K"))
    flip: bool = _f(True, **_opt(
        "--no-flip", "disable random horizontal flips", "data",
        action="store_false"))
    crop: str = _f("pad", **_opt(
        "--crop", "training augmentation: 'pad' (pad then random crop), "
        "'resize' (random crop of a slightly larger resize) or 'none'", "data",
        choices=CROPS))
    pipeline: str = _f("auto", **_opt(
        "--pipeline", "training input pipeline: 'tfdata' (tf.data; needs "
        "TensorFlow), 'pydataset' (keras.utils.PyDataset on NumPy and Pillow, "
        "loading in threads; no TensorFlow) or 'auto' (tfdata on the "
        "TensorFlow backend, pydataset on JAX and PyTorch). Both give the same "
        "batches, so a run may resume with the other one", "data",
        choices=PIPELINES))

    # ---------------------------------------------------------------- model
    backbone: str = _f("tiny", **_opt(
        "--backbone", "backbone network (paper: resnet50; resnet50x = "
        "ResNet-50-Xception; tiny = small CPU network)", "model",
        choices=BACKBONES))
    weights: str = _f("none", **_opt(
        "--weights", "backbone initialisation: 'imagenet' (resnet50 only; "
        "downloaded by Keras), 'none' (random) or the path of a weights file",
        "model", metavar="imagenet|none|PATH"))
    local_channels: int = _f(128, **_opt(
        "--local-channels", "channels c of each local (stripe) feature after "
        "the 1x1 convolution (paper: 128)", "model", metavar="C"))
    local_pooling: str = _f("mean", **_opt(
        "--local-pooling", "pooling of each horizontal stripe over the width",
        "model", choices=("mean", "max")))
    last_stride: int = _f(2, **_opt(
        "--last-stride", "stride of the backbone's last stage (1 doubles the "
        "feature map)", "model", choices=(1, 2)))

    # ----------------------------------------------------------------- loss
    global_margin: float = _f(0.5, **_opt(
        "--global-margin", "TriHard margin of the global distance", "loss",
        metavar="M"))
    local_margin: float = _f(0.5, **_opt(
        "--local-margin", "TriHard margin of the local distance", "loss",
        metavar="M"))
    normalize_features: str = _f("none", **_opt(
        "--normalize-features", "features L2-normalised before the distances "
        "(training and evaluation): 'none' (the paper), 'both' (the flag alone) "
        "or 'local' (the local parts only, as AlignedReID++)", "loss", nargs="?",
        choices=NORMALIZE_MODES, const="both", metavar="none|both|local"))
    global_weight: float = _f(1.0, **_opt(
        "--global-weight", "weight of the global TriHard loss", "loss",
        metavar="W"))
    local_weight: float = _f(1.0, **_opt(
        "--local-weight", "weight of the local TriHard loss", "loss",
        metavar="W"))
    id_weight: float = _f(1.0, **_opt(
        "--id-weight", "weight of the identification (softmax) loss", "loss",
        metavar="W"))
    label_smoothing: float = _f(0.0, **_opt(
        "--label-smoothing", "label smoothing of the ID loss", "loss",
        metavar="EPS"))
    local_mining: str = _f("global", **_opt(
        "--local-mining", "hard-sample mining of the local loss: by the "
        "global distance (paper) or by the local distance itself", "loss",
        choices=LOCAL_MINING))
    no_local: bool = _f(False, **_opt(
        "--no-local", "ablation 'Baseline': no local branch and no local "
        "loss (global TriHard + ID only)", "loss", action="store_true"))
    unaligned_local: bool = _f(False, **_opt(
        "--unaligned-local", "ablation 'GL-Baseline': local loss on the "
        "unaligned distance (stripe i against stripe i)", "loss",
        action="store_true"))

    # -------------------------------------------------------- optimisation
    epochs: int = _f(8, **_opt(
        "--epochs", "training epochs", "optimisation", metavar="N"))
    steps_per_epoch: int = _f(25, **_opt(
        "--steps-per-epoch", "batches per epoch (paper: 2000 batches of 160)",
        "optimisation", metavar="N"))
    lr: float = _f(None, **_opt(
        "--lr", "initial Adam learning rate (default 1e-3; 3e-4 with "
        "--mutual)", "optimisation", metavar="LR"))
    lr_milestones: list = _f(None, **_opt(
        "--lr-milestones", "epochs at which the learning rate changes "
        "(default 80 160; 60 120 with --mutual)", "optimisation",
        metavar="EPOCH", nargs="*"))
    lr_values: list = _f(None, **_opt(
        "--lr-values", "learning rate from epoch 0 and after each milestone "
        "(one more value than milestones; default: --lr divided by 10 at each "
        "milestone; with --mutual 3e-4 1e-4 1e-5)", "optimisation",
        metavar="LR", nargs="+"))
    seed: int = _f(0, **_opt(
        "--seed", "seed of weights initialisation, sampling and augmentation",
        "optimisation", metavar="SEED"))

    # ------------------------------------------------------ mutual learning
    mutual: bool = _f(False, **_opt(
        "--mutual", "mutual learning: train a second (peer) network jointly "
        "with the KL and metric mutual losses", "mutual", action="store_true"))
    peer_backbone: str = _f(None, **_opt(
        "--peer-backbone", "backbone of the peer network (default: same as "
        "--backbone; paper: resnet50 with resnet50x)", "mutual",
        choices=BACKBONES))
    peer_weights: str = _f(None, **_opt(
        "--peer-weights", "the peer's initialisation, as --weights (default: "
        "--weights for the same backbone, imagenet for a resnet50 peer of an "
        "ImageNet run, else random with a warning)", "mutual",
        metavar="imagenet|none|PATH"))
    mutual_kl_weight: float = _f(0.01, **_opt(
        "--mutual-kl-weight", "weight of the classification (KL) mutual loss "
        "(paper: 0.01)", "mutual", metavar="W"))
    mutual_metric_weight: float = _f(0.001, **_opt(
        "--mutual-metric-weight", "weight of the metric mutual loss (paper: "
        "0.001)", "mutual", metavar="W"))

    # --------------------------------------------------------- performance
    mixed_precision: bool = _f(False, **_opt(
        "--mixed-precision", "compute in float16 with float32 variables "
        "(GPU); losses and features stay float32", "performance",
        action="store_true"))
    jit_compile: bool = _f(False, **_opt(
        "--jit-compile", "compile the train step with XLA (always done under "
        "KERAS_BACKEND=jax; torch.compile under torch)", "performance",
        action="store_true"))
    strategy: str = _f("default", **_opt(
        "--strategy", "tf.distribute strategy: 'default' (one device), "
        "'mirrored' (all local GPUs, or CPU devices) or 'multiworker' "
        "(TF_CONFIG). Hard mining is done per replica (see docs/training.md). "
        "Under KERAS_BACKEND=jax 'mirrored' is keras.distribution.DataParallel "
        "over the local devices; PyTorch: 'default' only (docs/backends.md)",
        "performance", choices=STRATEGIES))

    # ---------------------------------------------------------- evaluation
    eval_every: int = _f(0, **_opt(
        "--eval-every", "evaluate every N epochs and log the metrics to the "
        "CSV (0: only before and after training)", "evaluation", metavar="N"))
    eval_untrained: bool = _f(True, **_opt(
        "--no-eval-untrained", "skip the evaluation of the untrained model "
        "(the 'untrained' column of the final table stays empty)",
        "evaluation", action="store_false"))
    eval_batch_size: int = _f(64, **_opt(
        "--extract-batch-size", "images per feature-extraction batch (the "
        "training batch is --P x --K)", "evaluation", metavar="N",
        deprecated=("--eval-batch-size",)))
    rerank_k1: int = _f(20, **_opt(
        "--k1", "k-reciprocal re-ranking k1 of the re-ranked row (paper: 20)",
        "evaluation", metavar="K", deprecated=("--rerank-k1",)))
    rerank_k2: int = _f(6, **_opt(
        "--k2", "k-reciprocal re-ranking k2 of the re-ranked row (paper: 6)",
        "evaluation", metavar="K", deprecated=("--rerank-k2",)))
    rerank_lambda: float = _f(0.3, **_opt(
        "--lambda", "re-ranking weight of the original distance (paper: 0.3)",
        "evaluation", metavar="LAMBDA", deprecated=("--rerank-lambda",)))

    # -------------------------------------------------------------- output
    run_dir: str = _f(None, **_opt(
        "--run-dir", "run directory (default: the newest interrupted run under "
        "runs/ with the same settings, resumed; otherwise a new runs/<UTC "
        "timestamp>). Running the same command again on an unfinished run "
        "resumes it", "output", metavar="DIR"))
    new_run: bool = _f(False, **_opt(
        "--new-run", "start a new runs/<UTC timestamp> even when an interrupted "
        "run with the same settings could be resumed", "output",
        action="store_true"))
    overwrite: bool = _f(False, **_opt(
        "--overwrite", "delete an existing run directory and start afresh",
        "output", action="store_true"))
    resume: bool = _f(False, **_opt(
        "--resume", "require resuming: fail unless the run directory holds a "
        "checkpoint (without --run-dir: the newest unfinished run in runs/)",
        "output", action="store_true"))
    checkpoint_every: int = _f(10, **_opt(
        "--checkpoint-every", "save the training state every N steps (and at "
        "the end of every epoch)", "output", metavar="N"))
    keep_checkpoints: int = _f(2, **_opt(
        "--keep-checkpoints", "number of training-state checkpoints kept",
        "output", metavar="N"))
    json: str = _f(None, **_opt(
        "--json", "write the summary as JSON to PATH (atomically); '-': on stdout "
        "instead of the table", "output", metavar="PATH"))
    quiet: bool = _f(False, **_opt("--quiet", "no progress on stderr (errors and "
                                   "warnings only)", "output", action="store_true"))
    tensorboard: str = _f(None, **_opt(
        "--tensorboard", "write TensorBoard logs (loss terms, learning rate and, "
        "with --eval-every, the metrics, once per epoch) to DIR/train "
        "(Keras's TensorBoard callback; needs the tensorboard package)", "output",
        metavar="DIR"))

    # derived by resolved(), not a flag: networks that start from random
    # weights although pretrained ones are asked for (reid_tf.pretrained)
    random_init: list = _f([], **_opt(None, "", "derived"))

    # ------------------------------------------------------------ methods
    def resolved(self):
        """Returns a copy with every recipe-dependent default filled in.

        Returns:
            ``TrainConfig`` whose ``lr``, ``lr_milestones``, ``lr_values`` and
            ``peer_backbone`` are set, numbers converted to their types.

        Raises:
            ConfigError: a setting is invalid (the message names its flag).

        Example:
            >>> TrainConfig(mutual=True).resolved().lr_values
            [0.0003, 0.0001, 1e-05]
        """
        from reid_tf.config_checks import check_learning_rates
        from reid_tf.pretrained import default_peer_weights, random_starts

        cfg = dataclasses.replace(self)
        check_learning_rates(cfg.lr, cfg.lr_values)
        base_lr, milestones, values = MUTUAL_SCHEDULE if cfg.mutual else PLAIN_SCHEDULE
        if cfg.lr_milestones is None:
            cfg.lr_milestones = list(milestones)
        cfg.lr_milestones = [int(m) for m in cfg.lr_milestones]
        if cfg.lr_values is None:
            if cfg.lr is None and len(cfg.lr_milestones) == len(milestones):
                cfg.lr_values = list(values)
            else:
                lr0 = base_lr if cfg.lr is None else float(cfg.lr)
                cfg.lr_values = [lr0 * 0.1 ** i for i in range(len(cfg.lr_milestones) + 1)]
        cfg.lr_values = [float(v) for v in cfg.lr_values]
        if cfg.lr is None:
            cfg.lr = cfg.lr_values[0]
        cfg.lr = float(cfg.lr)
        if cfg.lr_values[0] != cfg.lr:
            raise ConfigError(
                f"--lr-values: the first value ({cfg.lr_values[0]:g}) must equal "
                f"--lr ({cfg.lr:g})"
            )
        if cfg.peer_backbone is None:
            cfg.peer_backbone = cfg.backbone
        if cfg.mutual and cfg.peer_weights is None:
            cfg.peer_weights = default_peer_weights(cfg.backbone, cfg.weights,
                                                    cfg.peer_backbone)
        cfg.random_init = random_starts(cfg)
        cfg.image_size = [int(v) for v in cfg.image_size]
        cfg.data = [os.fspath(p) for p in cfg.data]
        try:
            cfg.normalize_features = normalize_mode(cfg.normalize_features)
        except ValueError as exc:
            raise ConfigError(f"--normalize-features: {exc}") from None
        cfg.validate()
        return cfg

    def validate(self):
        """Checks every setting; raises :class:`ConfigError` naming the flag.

        The checks are :func:`reid_tf.config_checks.validate_config`.

        Returns:
            None.

        Example:
            >>> TrainConfig(P=1).validate()
            Traceback (most recent call last):
            ...
            reid_tf.config.ConfigError: --P: must be >= 2 (got 1)
        """
        from reid_tf.config_checks import validate_config

        validate_config(self)

    def loss_settings(self):
        """The loss settings of the trained network(s).

        Returns:
            :class:`reid_tf.loss_settings.LossSettings`.

        Raises:
            LossSettingsError: a loss setting is invalid.

        Example:
            >>> TrainConfig(unaligned_local=True).loss_settings().aligned
            False
        """
        return LossSettings(
            global_margin=self.global_margin, local_margin=self.local_margin,
            normalize_features=self.normalize_features, id_weight=self.id_weight,
            global_weight=self.global_weight, local_weight=self.local_weight,
            local_mining=self.local_mining, aligned=not self.unaligned_local,
            label_smoothing=self.label_smoothing,
        )

    # ------------------------------------------------------ serialisation
    def to_dict(self):
        """Returns the settings as a JSON-compatible dict (lists, not tuples).

        Returns:
            dict field name -> value.

        Example:
            >>> TrainConfig().to_dict()["backbone"]
            'tiny'
        """
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, values):
        """Builds a config from :meth:`to_dict` output.

        Args:
            values: dict of field name -> value; unknown keys are an error.

        Returns:
            ``TrainConfig``.

        Raises:
            ConfigError: an unknown setting name.

        Example:
            >>> TrainConfig.from_dict({"epochs": 3}).epochs
            3
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"config: unknown setting(s) {unknown}")
        return cls(**values)

    def to_json(self):
        """Returns the settings as indented JSON text.

        Returns:
            str.

        Example:
            >>> '"epochs"' in TrainConfig().to_json()
            True
        """
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, path):
        """Reads a ``config.json`` written by :meth:`to_json`.

        Args:
            path: file path.

        Returns:
            ``TrainConfig``.

        Raises:
            ConfigError: unreadable file, invalid JSON or unknown settings.

        Example:
            >>> import os, tempfile
            >>> path = os.path.join(tempfile.mkdtemp(), "config.json")
            >>> _ = open(path, "w").write(TrainConfig(epochs=3).to_json())
            >>> TrainConfig.from_json(path).epochs
            3
        """
        try:
            with open(path, encoding="utf-8") as f:
                values = json.load(f)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read config: {exc}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        return cls.from_dict(values)

    def to_argv(self, names=None):
        """The ``train.py`` arguments that give this config.

        Every setting is written out (``None`` ones, still to be resolved,
        are left out; a switch only when it is not at its off state), so
        parsing the result gives back an equal config.

        Args:
            names: field names to render (default: all), in field order.

        Returns:
            list of str.

        Example:
            >>> TrainConfig(epochs=3, no_local=True).to_argv(["epochs", "no_local", "flip"])
            ['--no-local', '--epochs', '3']
        """
        argv = []
        for f in dataclasses.fields(self):
            if names is not None and f.name not in names:
                continue
            value, meta = getattr(self, f.name), f.metadata
            if meta["flag"] is None:  # derived, not a setting
                continue
            if meta["action"] == "store_true":
                argv += [meta["flag"]] if value else []
            elif meta["action"] == "store_false":
                argv += [] if value else [meta["flag"]]
            elif value is None or (meta["nargs"] == "+" and not value):
                continue
            else:
                values = value if isinstance(value, (list, tuple)) else [value]
                argv += [meta["flag"], *(repr(v) if isinstance(v, float) else str(v)
                                         for v in values)]
        return argv

    def experiment_dict(self):
        """The settings that define the experiment (for resume comparison).

        Returns:
            dict like :meth:`to_dict` without :data:`INVOCATION_FIELDS`.

        Example:
            >>> "run_dir" in TrainConfig().experiment_dict()
            False
        """
        d = self.to_dict()
        for name in INVOCATION_FIELDS:
            d.pop(name, None)
        return d

    def lr_at_epoch(self, epoch):
        """Learning rate of a 0-based epoch under the piecewise schedule.

        Args:
            epoch: 0-based epoch index.

        Returns:
            float.

        Example:
            >>> TrainConfig().resolved().lr_at_epoch(80)
            0.0001
        """
        cfg = self if self.lr_values is not None else self.resolved()
        passed = sum(1 for m in cfg.lr_milestones if epoch >= m)
        return cfg.lr_values[passed]


def flag_of(name):
    """The command-line flag of a :class:`TrainConfig` field.

    Args:
        name: field name.

    Returns:
        str such as ``"--steps-per-epoch"``.

    Example:
        >>> flag_of("steps_per_epoch")
        '--steps-per-epoch'
    """
    for f in dataclasses.fields(TrainConfig):
        if f.name == name:
            return f.metadata.get("flag", "--" + name.replace("_", "-"))
    return "--" + name.replace("_", "-")
