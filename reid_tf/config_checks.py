"""The checks of :class:`reid_tf.config.TrainConfig`: every setting's range,
with a message that names its flag.

``TrainConfig.validate`` calls :func:`validate_config`;
``TrainConfig.resolved`` calls :func:`check_learning_rates` before it derives
the schedule from ``--lr``, so a bad ``--lr`` is blamed on ``--lr``.
"""

import importlib.util
import math
import os

from reid_tf.config import ConfigError, flag_of
from reid_tf.keras_files import keras_file_problem
from reid_tf.loss_settings import LossSettingsError
from reference.rerank_limits import MAX_K1, MAX_K2

# integer settings and their smallest value
_AT_LEAST = {
    "P": 2, "K": 2, "epochs": 1, "steps_per_epoch": 1,
    "local_channels": 1, "eval_batch_size": 1, "checkpoint_every": 1,
    "keep_checkpoints": 1, "synthetic_identities": 4,
    "synthetic_images": 2, "synthetic_cameras": 2, "rerank_k1": 1,
    "rerank_k2": 1, "eval_every": 0, "seed": 0, "synthetic_seed": 0,
}
# the largest seeds: --seed seeds NumPy's global generator (32 bits), the
# synthetic generator takes 63-bit seeds
_SEED_LIMITS = {"seed": 2 ** 32 - 1, "synthetic_seed": 2 ** 63 - 1}
# integer settings and their largest value (re-ranking's cost grows with k1, k2)
_AT_MOST = {"rerank_k1": MAX_K1, "rerank_k2": MAX_K2}


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite_positive(name, value):
    if not (_is_number(value) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{flag_of(name)}: must be a finite number > 0 (got {value!r})")


def check_learning_rates(lr, values):
    """Checks ``--lr`` and ``--lr-values`` on their own (finite, > 0).

    Args:
        lr: the initial rate or None.
        values: the rates of the schedule or None.

    Returns:
        None.

    Raises:
        ConfigError: naming ``--lr`` or ``--lr-values``.

    Example:
        >>> check_learning_rates(float("nan"), None)
        Traceback (most recent call last):
        ...
        reid_tf.config.ConfigError: --lr: must be a finite number > 0 (got nan)
    """
    if lr is not None:
        _finite_positive("lr", lr)
    for value in values or ():
        if not (_is_number(value) and math.isfinite(value) and value > 0):
            raise ConfigError(f"--lr-values: every value must be a finite number > 0 "
                              f"(got {list(values)})")


def validate_config(cfg):
    """Checks every setting of a :class:`TrainConfig`.

    Args:
        cfg: ``TrainConfig``.

    Returns:
        None.

    Raises:
        ConfigError: the first invalid setting (the message names its flag).
    """
    for name, low in _AT_LEAST.items():
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{flag_of(name)}: must be >= {low} (got {value!r})")
    for name, limit in {**_SEED_LIMITS, **_AT_MOST}.items():
        if getattr(cfg, name) > limit:
            raise ConfigError(f"{flag_of(name)}: must be <= {limit} (got {getattr(cfg, name)})")
    if len(cfg.image_size) != 2 or min(cfg.image_size) < 32:
        raise ConfigError(f"--image-size: expected two values >= 32 (got {cfg.image_size})")
    if cfg.no_local and cfg.unaligned_local:
        raise ConfigError("--unaligned-local: cannot be combined with --no-local")
    try:
        cfg.loss_settings()
    except LossSettingsError as exc:
        name = "unaligned_local" if exc.field == "aligned" else exc.field
        raise ConfigError(f"{flag_of(name)}: {exc.detail}") from None
    for name in ("mutual_kl_weight", "mutual_metric_weight", "rerank_lambda"):
        value = getattr(cfg, name)
        if not (_is_number(value) and math.isfinite(value) and value >= 0):
            raise ConfigError(f"{flag_of(name)}: must be a finite number >= 0 (got {value!r})")
    if cfg.rerank_lambda > 1:
        raise ConfigError(f"--rerank-lambda: must be <= 1 (got {cfg.rerank_lambda})")
    check_learning_rates(cfg.lr, cfg.lr_values)
    if cfg.lr_milestones is not None:
        ms = list(cfg.lr_milestones)
        if any(m <= 0 for m in ms) or ms != sorted(set(ms)):
            raise ConfigError(f"--lr-milestones: must be increasing positive epochs (got {ms})")
        if cfg.lr_values is not None and len(cfg.lr_values) != len(ms) + 1:
            raise ConfigError(
                f"--lr-values: expected {len(ms) + 1} values (one more than "
                f"--lr-milestones), got {len(cfg.lr_values)}")
    if cfg.weights not in ("imagenet", "none"):
        problem = keras_file_problem(cfg.weights, "weights")
        if problem:
            raise ConfigError(f"--weights: {problem}")
    if cfg.weights == "imagenet" and cfg.backbone != "resnet50":
        raise ConfigError(
            f"--weights: ImageNet weights exist only for resnet50, not {cfg.backbone}")
    if cfg.overwrite and cfg.resume:
        raise ConfigError("--resume: cannot be combined with --overwrite")
    if cfg.new_run and (cfg.resume or cfg.run_dir is not None):
        raise ConfigError("--new-run: cannot be combined with --resume or --run-dir "
                          "(a new run goes to a new runs/<timestamp>)")
    if cfg.tensorboard is not None:
        missing = [m for m in ("tensorflow", "tensorboard") if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError("--tensorboard: Keras writes TensorBoard logs with TensorFlow's "
                              f"tf.summary, which needs {' and '.join(missing)} (pip install "
                              "'alignedreid[tensorboard]')")
        if os.path.exists(cfg.tensorboard) and not os.path.isdir(cfg.tensorboard):
            raise ConfigError(f"--tensorboard: {cfg.tensorboard} exists and is not a directory")
