"""The ablation's variants and settings, and the ``TrainConfig`` of each run."""

import dataclasses
import hashlib
import json

from data_prep.synthetic import cache_key
from reid_tf.config import TrainConfig

METRICS = ("rank1", "rank5", "mAP")
METRIC_NAMES = {"rank1": "rank-1", "rank5": "rank-5", "mAP": "mAP"}


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the ablation tables.

    Attributes:
        key: directory name and JSON key.
        label: name in the tables (the paper's name).
        table: the paper's table (1: local branch ablation, 2: mutual learning).
        config: ``(field, value)`` pairs of ``TrainConfig`` that make this
            variant (besides the common settings; mutual-loss weights come
            from :class:`Settings`).
        local: whether the network has a local branch (scored also with
            global + local distance).
        mutual: ``None`` or ``"mc"``/``"mm"`` (which mutual losses are on).
        description: one line for the results page.
    """

    key: str
    label: str
    table: int
    config: tuple
    local: bool
    mutual: str
    description: str


VARIANTS = (
    Variant("baseline", "Baseline", 1, (("no_local", True),), False, None,
            "global TriHard + ID loss; no local branch"),
    Variant("gl_baseline", "GL-Baseline", 1, (("unaligned_local", True),), True, None,
            "+ local branch trained with the unaligned local distance (stripe i vs stripe i)"),
    Variant("alignedreid", "AlignedReID", 1, (), True, None,
            "+ local branch trained with the aligned (shortest-path) local distance"),
    Variant("alignedreid_mc", "AlignedReID + MC", 2, (("mutual", True),), True, "mc",
            "AlignedReID + peer network, classification mutual loss only (metric-mutual weight 0)"),
    Variant("alignedreid_mm", "AlignedReID + MM", 2, (("mutual", True),), True, "mm",
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
# TrainConfig fields the settings choose (the rest keep train.py's defaults).
SCHEDULE_FIELDS = ("image_size", "P", "K", "backbone", "global_margin", "local_margin",
                   "normalize_features", "epochs", "steps_per_epoch", "lr", "lr_milestones",
                   "lr_values", "seed")


@dataclasses.dataclass
class Settings:
    """Everything that defines one benchmark configuration (see ``--help``).

    Example:
        >>> s = Settings()
        >>> s.train_config(BY_KEY["alignedreid"], seed=1).backbone
        'tiny'
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
        return digest(self.to_dict())

    def data_key(self):
        """The synthetic-data cache key of these settings (``data_prep.synthetic.cache_key``).

        Returns:
            str of 12 hex digits.
        """
        return cache_key(self.data_knobs())

    def variant_settings(self, variant):
        """The ``TrainConfig`` fields that make ``variant`` (mutual-loss weights included).

        Args:
            variant: :class:`Variant`.

        Returns:
            dict field name -> value.

        Example:
            >>> Settings().variant_settings(BY_KEY["alignedreid_mc"])["mutual_metric_weight"]
            0.0
        """
        values = dict(variant.config)
        if variant.mutual:
            values["mutual_kl_weight"] = float(self.kl_weight)
            values["mutual_metric_weight"] = float(self.metric_weight) \
                if variant.mutual == "mm" else 0.0
        return values

    def train_config(self, variant, seed, **invocation):
        """The resolved ``TrainConfig`` of one run: these settings, ``variant`` and ``seed``.

        Args:
            variant: :class:`Variant`.
            seed: training seed.
            **invocation: further ``TrainConfig`` fields (``data``, ``run_dir``,
                ``quiet``, ...).

        Returns:
            ``reid_tf.config.TrainConfig`` (resolved and validated).

        Raises:
            ConfigError: a setting train.py would refuse (the message names
                train.py's flag).

        Example:
            >>> cfg = Settings(decay_epoch=6).train_config(BY_KEY["baseline"], seed=2)
            >>> cfg.no_local, cfg.seed, cfg.lr_milestones, cfg.lr_values
            (True, 2, [6], [0.001, 0.0001])
        """
        milestones, values = [], [float(self.lr)]
        if 0 < self.decay_epoch < self.epochs:
            milestones, values = [self.decay_epoch], [float(self.lr), float(self.lr) * 0.1]
        cfg = TrainConfig(
            backbone=self.backbone, image_size=[int(v) for v in self.image_size],
            P=self.P, K=self.K, epochs=self.epochs, steps_per_epoch=self.steps_per_epoch,
            lr=float(self.lr), lr_milestones=milestones, lr_values=values,
            global_margin=float(self.global_margin), local_margin=float(self.local_margin),
            normalize_features=bool(self.normalize_features), seed=int(seed),
            **self.variant_settings(variant), **invocation)
        return cfg.resolved()

    def train_argv(self, variant, seed, **invocation):
        """``train.py`` arguments of one run: :meth:`train_config` rendered as
        flags, then :attr:`extra_train_args`.

        Example:
            >>> argv = Settings().train_argv(BY_KEY["gl_baseline"], seed=1)
            >>> "--unaligned-local" in argv, argv[argv.index("--seed") + 1]
            (True, '1')
        """
        cfg = self.train_config(variant, seed, **invocation)
        return cfg.to_argv() + list(self.extra_train_args)

    def schedule_flags(self):
        """The ``train.py`` flags these settings choose, shared by every variant
        (the seed shown as ``SEED``).

        Example:
            >>> Settings().schedule_flags()[-2:]
            ['--seed', 'SEED']
        """
        cfg = self.train_config(BY_KEY["alignedreid"], seed=0)
        flags = cfg.to_argv(SCHEDULE_FIELDS)
        flags[flags.index("--seed") + 1] = "SEED"
        return flags + list(self.extra_train_args)

    def variant_flags(self, variant):
        """The ``train.py`` flags that make ``variant``.

        Example:
            >>> Settings().variant_flags(BY_KEY["alignedreid_mm"])
            ['--mutual', '--mutual-kl-weight', '0.01', '--mutual-metric-weight', '0.001']
        """
        cfg = self.train_config(variant, seed=0)
        return cfg.to_argv(tuple(self.variant_settings(variant)))

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


def digest(obj):
    """A short hash (10 hex digits) of a JSON-compatible object."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:10]
