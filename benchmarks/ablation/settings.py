"""The ablation's variants and settings, and the ``TrainConfig`` of each run."""

import dataclasses
import hashlib
import json

from data_prep.synthetic import cache_key
from reid_tf.config import TrainConfig

METRICS = ("rank1", "mAP")
METRIC_NAMES = {"rank1": "rank-1", "mAP": "mAP"}
# The pretrained starts, the stand-in for ImageNet weights: ONE ID-only
# pretraining (seed PRETRAIN_SEED) is network 1's start in every run of every
# seed; the peer of a mutual run starts from a second one (seed
# PRETRAIN_SEED + PEER_SEED_OFFSET).
PRETRAIN_SEED = 0
PEER_SEED_OFFSET = 1000
# The data of the shared pretraining: a second synthetic set, generated with
# this offset added to the data seed (other identities).
PRETRAIN_DATA_SEED_OFFSET = 1000


@dataclasses.dataclass(frozen=True)
class Variant:
    """One arm of the ablation.

    Attributes:
        key: directory name.
        label: name in the tables and in ``docs/ablation.json``.
        table: the paper's table (1: local branch; 2: mutual learning).
        config: ``(field, value)`` pairs of ``TrainConfig`` that make this arm.
        local: whether the network has a local branch.
        mutual: None, ``"paper"`` (the paper's mutual weights) or
            ``"rescaled"`` (weights that give each mutual term a set share of
            the own-loss gradient, see :mod:`benchmarks.ablation.shares`).
        description: one line for the results page.
    """

    key: str
    label: str
    table: int
    config: tuple
    local: bool
    mutual: object
    description: str


VARIANTS = (
    Variant("baseline", "Baseline", 1, (("no_local", True),), False, None,
            "global TriHard + ID loss; no local branch"),
    Variant("gl_baseline", "GL-Baseline", 1, (("unaligned_local", True),), True, None,
            "+ local branch trained with the unaligned local distance (stripe i vs stripe i)"),
    Variant("alignedreid", "AlignedReID", 1, (), True, None,
            "+ local branch trained with the aligned (shortest-path) local distance"),
    Variant("alignedreid_mm", "AlignedReID+MM", 2, (("mutual", True),), True, "paper",
            "AlignedReID + a peer network (its own pretrained start), classification and "
            "metric mutual losses at the paper's weights (KL 0.01, metric 0.001)"),
    Variant("alignedreid_mm_rescaled", "AlignedReID+MM (rescaled)", 2, (("mutual", True),),
            True, "rescaled",
            "as AlignedReID+MM, with mutual weights rescaled so that each mutual term's "
            "gradient is a set share of the own-loss gradient at the start (NOT the paper's "
            "weights)"),
)
VARIANT_KEYS = tuple(v.key for v in VARIANTS)
BY_KEY = {v.key: v for v in VARIANTS}
BY_LABEL = {v.label: v for v in VARIANTS}
BLOCKS = {"table1": ("baseline", "gl_baseline", "alignedreid"),
          "table2": ("alignedreid", "alignedreid_mm", "alignedreid_mm_rescaled")}

# The paired differences reported: (a, b, what the paper says).
CLAIMS = (
    ("alignedreid", "baseline", "AlignedReID > Baseline (paper: +5.4 rank-1, +8.3 mAP, "
                                "Market-1501, ResNet-50)"),
    ("alignedreid", "gl_baseline", "AlignedReID > GL-Baseline (paper: +8.8 rank-1, +14.8 mAP)"),
    ("gl_baseline", "baseline", "GL-Baseline <= Baseline (paper: -3.4 rank-1, -6.5 mAP)"),
    ("alignedreid_mm", "alignedreid", "AlignedReID+MM > AlignedReID (paper: +2.6 rank-1, "
                                      "+6.5 mAP)"),
    ("alignedreid_mm_rescaled", "alignedreid", "the same with rescaled mutual weights"),
)

# The paper's Market-1501 rows (Tables 1 and 2, ResNet-50 and ResNet50-X;
# ../shared/specs/paper.md): label -> {base: (mAP, rank-1)}.
PAPER = {
    "Baseline": {"ResNet-50": (64.5, 83.8), "ResNet50-X": (61.7, 83.6)},
    "GL-Baseline": {"ResNet-50": (58.0, 80.4), "ResNet50-X": (57.1, 79.7)},
    "AlignedReID": {"ResNet-50": (72.8, 89.2), "ResNet50-X": (71.8, 89.4)},
    "AlignedReID+MM": {"ResNet-50": (79.3, 91.8), "ResNet50-X": (79.3, 91.2)},
}

# Image height / local parts H of each backbone (last stride 2).
BACKBONE_STRIDES = {"tiny": 16, "resnet50": 32, "resnet50x": 32}

# TrainConfig fields the settings choose (the rest keep train.py's defaults).
SCHEDULE_FIELDS = ("image_size", "P", "K", "backbone", "weights", "global_margin",
                   "local_margin", "normalize_features", "epochs", "steps_per_epoch", "lr",
                   "lr_milestones", "lr_values", "seed")


@dataclasses.dataclass
class Settings:
    """Everything that defines one ablation configuration (see ``--help``).

    Example:
        >>> s = Settings()
        >>> s.train_config(BY_KEY["alignedreid"], seed=1, weights="none").normalize_features
        'local'
    """

    identities: int = 420
    images: int = 12
    cameras: int = 6
    data_seed: int = 0
    vertical_shift: float = 0.35
    scale_jitter: float = 0.2
    knobs: dict = dataclasses.field(default_factory=dict)
    image_size: tuple = (112, 56)
    backbone: str = "tiny"
    P: int = 8
    K: int = 4
    epochs: int = 4
    steps_per_epoch: int = 50
    lr: float = 1e-3
    decay_epoch: int = 3
    pretrain_identities: int = 300
    pretrain_epochs: int = 8
    pretrain_steps: int = 50
    global_margin: float = 0.5
    local_margin: float = 0.5
    normalize_features: str = "local"
    kl_weight: float = 0.01
    metric_weight: float = 0.001
    target_share: float = 0.075
    extra_train_args: tuple = ()

    @property
    def stripes(self):
        """Local parts H: the image height over the backbone's stride.

        Example:
            >>> Settings().stripes
            7
        """
        return int(self.image_size[0]) // BACKBONE_STRIDES[self.backbone]

    def data_knobs(self, pretrain=False):
        """Keyword arguments of ``data_prep.synthetic.generate`` (the test
        data, or with ``pretrain`` the disjoint pretraining set).

        Example:
            >>> Settings(identities=10).data_knobs()["num_identities"]
            10
            >>> Settings().data_knobs(pretrain=True)["seed"]
            1000
        """
        knobs = {"num_identities": self.pretrain_identities if pretrain else self.identities,
                 "images_per_identity": self.images, "num_cameras": self.cameras,
                 "height": int(self.image_size[0]), "width": int(self.image_size[1]),
                 "seed": self.data_seed + (PRETRAIN_DATA_SEED_OFFSET if pretrain else 0),
                 "vertical_shift": self.vertical_shift, "scale_jitter": self.scale_jitter}
        knobs.update(self.knobs)
        return knobs

    def to_dict(self):
        """JSON-compatible dict of the settings."""
        d = dataclasses.asdict(self)
        d["image_size"] = list(self.image_size)
        d["extra_train_args"] = list(self.extra_train_args)
        d["knobs"] = dict(sorted(self.knobs.items()))
        return d

    def key(self):
        """Short hash of the settings (names the configuration's directory).

        Example:
            >>> Settings().key() == Settings().key() != Settings(epochs=2).key()
            True
        """
        return digest(self.to_dict())

    def pretrain_key(self):
        """Short hash of what the pretrained starts depend on."""
        keep = ("pretrain_identities", "pretrain_epochs", "pretrain_steps", "images", "cameras",
                "data_seed", "vertical_shift", "scale_jitter", "knobs", "image_size",
                "backbone", "P", "K", "lr")
        return digest({k: v for k, v in self.to_dict().items() if k in keep})

    def data_key(self, pretrain=False):
        """The synthetic-data cache key (``data_prep.synthetic.cache_key``)."""
        return cache_key(self.data_knobs(pretrain))

    def schedule(self):
        """``(milestones, values)`` of the learning rate."""
        if 0 < self.decay_epoch < self.epochs:
            return [self.decay_epoch], [float(self.lr), float(self.lr) * 0.1]
        return [], [float(self.lr)]

    def pretrain_config(self, seed, **invocation):
        """The ``TrainConfig`` of one ID-only pretraining (no local branch,
        no TriHard loss), the stand-in for ImageNet pretraining.

        Example:
            >>> cfg = Settings().pretrain_config(3)
            >>> cfg.no_local, cfg.global_weight, cfg.seed
            (True, 0.0, 3)
        """
        cfg = TrainConfig(
            backbone=self.backbone, image_size=[int(v) for v in self.image_size],
            P=self.P, K=self.K, epochs=self.pretrain_epochs,
            steps_per_epoch=self.pretrain_steps, lr=float(self.lr), lr_milestones=[],
            lr_values=[float(self.lr)], no_local=True, global_weight=0.0, seed=int(seed),
            eval_untrained=False, **invocation)
        return cfg.resolved()

    def mutual_weights(self, variant, rescaled=None):
        """``(kl_weight, metric_weight)`` of a mutual arm (None for the others).

        Args:
            variant: :class:`Variant`.
            rescaled: ``(kl, metric)`` weights of the rescaled arm (measured).
        """
        if variant.mutual == "paper":
            return float(self.kl_weight), float(self.metric_weight)
        if variant.mutual == "rescaled":
            if rescaled is None:
                raise ValueError("rescaled: the measured weights of the rescaled arm are needed")
            return float(rescaled[0]), float(rescaled[1])
        return None

    def train_config(self, variant, seed, *, weights, peer_weights=None, rescaled=None,
                     **invocation):
        """The resolved ``TrainConfig`` of one run.

        Args:
            variant: :class:`Variant`.
            seed: training seed (batches, augmentation, head initialisation).
            weights: the backbone's pretrained start (a weights file).
            peer_weights: the peer's pretrained start (mutual arms).
            rescaled: ``(kl, metric)`` weights of the rescaled arm.
            **invocation: further ``TrainConfig`` fields (``data``, ``run_dir``, ...).

        Example:
            >>> cfg = Settings(decay_epoch=2).train_config(BY_KEY["baseline"], 2, weights="none")
            >>> cfg.no_local, cfg.seed, cfg.lr_milestones, cfg.lr_values
            (True, 2, [2], [0.001, 0.0001])
        """
        milestones, values = self.schedule()
        extra = dict(variant.config)
        weights_pair = self.mutual_weights(variant, rescaled)
        if weights_pair is not None:
            extra.update(mutual_kl_weight=weights_pair[0], mutual_metric_weight=weights_pair[1],
                         peer_weights=peer_weights)
        cfg = TrainConfig(
            backbone=self.backbone, image_size=[int(v) for v in self.image_size],
            P=self.P, K=self.K, epochs=self.epochs, steps_per_epoch=self.steps_per_epoch,
            lr=float(self.lr), lr_milestones=milestones, lr_values=values,
            global_margin=float(self.global_margin), local_margin=float(self.local_margin),
            normalize_features=self.normalize_features, seed=int(seed), weights=weights,
            eval_untrained=False, **extra, **invocation)
        return cfg.resolved()

    def describe(self):
        """One-line description of the data knobs and the schedule.

        Example:
            >>> "tiny" in Settings().describe()
            True
        """
        knobs = ", ".join(f"{k}={v}" for k, v in sorted(self.knobs.items()))
        data = (f"{self.identities} ids x {self.images} imgs, {self.cameras} cams, "
                f"vertical_shift={self.vertical_shift}, scale_jitter={self.scale_jitter}"
                + (f", {knobs}" if knobs else ""))
        sched = (f"{self.backbone}, {self.image_size[0]}x{self.image_size[1]} ({self.stripes} "
                 f"stripes), P={self.P} K={self.K}, {self.epochs}x{self.steps_per_epoch} steps, "
                 f"lr {self.lr:g}"
                 + (f" (/10 at epoch {self.decay_epoch})" if 0 < self.decay_epoch < self.epochs
                    else "")
                 + f", margins {self.global_margin:g}/{self.local_margin:g}, normalisation "
                 f"{self.normalize_features}; pretraining: {self.pretrain_identities} ids, "
                 f"{self.pretrain_epochs}x{self.pretrain_steps} steps, ID loss only; mutual "
                 f"weights {self.kl_weight:g}/{self.metric_weight:g} (paper), rescaled to "
                 f"{100 * self.target_share:g} % gradient share")
        extra = " ".join(self.extra_train_args)
        return f"data: {data}; training: {sched}" + (f"; extra: {extra}" if extra else "")


def digest(obj):
    """A short hash (10 hex digits) of a JSON-compatible object."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:10]
