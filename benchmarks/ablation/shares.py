"""How large the mutual-loss gradients are next to the own-loss gradients.

For network 1 of a mutual run at its pretrained start, on a few training
batches: the gradient norm (over all its trainable variables) of the
classification mutual loss (KL) against that of the ID loss, and of the
metric mutual loss against that of the global TriHard loss (the own loss
each mutual term acts beside). A share is ``weight * |grad mutual| /
|grad own|``. The rescaled arm's weights make each share
``Settings.target_share``; they are calibrated on one set of batches and the
shares of both arms are then measured on other batches.
"""

import numpy as np

from .settings import BY_KEY, PEER_SEED_OFFSET, PRETRAIN_SEED

CALIBRATION_SEED = 11
CHECK_SEED = 12


def gradient_ratios(cfg, paths, labels, *, batches, seed):
    """Mean unweighted gradient-norm ratios of the mutual terms of ``cfg``.

    Args:
        cfg: resolved mutual ``TrainConfig`` (its pretrained starts included).
        paths, labels: training images and labels.
        batches: PK batches to average over.
        seed: seed of the batch sampling.

    Returns:
        dict ``kl_over_id`` and ``metric_over_global`` (floats).
    """
    import keras
    import tensorflow as tf

    from reid_tf.data import make_train_dataset
    from reid_tf.fit_loop import build_trainer

    keras.utils.set_random_seed(cfg.seed)
    trainer, _ = build_trainer(cfg, int(np.max(labels)) + 1)
    variables = trainer.network1.trainable_variables
    dataset = make_train_dataset(paths, labels, P=cfg.P, K=cfg.K,
                                 image_size=tuple(cfg.image_size), seed=seed,
                                 deterministic=True).take(batches)

    def norm(grads):
        return float(np.sqrt(sum(float(tf.reduce_sum(tf.square(g))) for g in grads
                                 if g is not None)))

    ratios = {"kl_over_id": [], "metric_over_global": []}
    for images, y in dataset:
        with tf.GradientTape(persistent=True) as tape:
            terms = trainer.mutual_terms(y, trainer(images, training=True))
        g = {k: norm(tape.gradient(terms[k], variables))
             for k in ("net1_id_loss", "net1_global_loss", "kl_loss", "metric_mutual_loss")}
        del tape
        ratios["kl_over_id"].append(g["kl_loss"] / g["net1_id_loss"])
        ratios["metric_over_global"].append(g["metric_mutual_loss"] / g["net1_global_loss"])
    return {k: float(np.mean(v)) for k, v in ratios.items()}


def measure(settings, runner, seed, batches=4):
    """The gradient shares of the paper's and the rescaled mutual weights.

    Args:
        settings: :class:`~benchmarks.ablation.settings.Settings`.
        runner: :class:`~benchmarks.ablation.runner.Runner` (data and pretrained starts).
        seed: the training seed of the measured configuration.
        batches: batches per measurement.

    Returns:
        JSON-compatible dict: ``rescaled_weights`` [kl, metric], ``ratios``
        (calibration and check batches), ``shares`` {arm: {"kl": share of the
        ID-loss gradient, "metric": share of the global TriHard gradient}}
        measured on the check batches, ``target_share``, ``batches``.
    """
    from data_prep import load_manifest

    train = load_manifest(runner.data()).split("train")
    paths, labels = np.asarray(train.paths), np.asarray(train.labels)
    cfg = settings.train_config(
        BY_KEY["alignedreid_mm"], seed, weights=str(runner.pretrained(PRETRAIN_SEED)),
        peer_weights=str(runner.pretrained(PRETRAIN_SEED + PEER_SEED_OFFSET)))
    calib = gradient_ratios(cfg, paths, labels, batches=batches, seed=CALIBRATION_SEED)
    check = gradient_ratios(cfg, paths, labels, batches=batches, seed=CHECK_SEED)
    target = float(settings.target_share)
    rescaled = [target / calib["kl_over_id"], target / calib["metric_over_global"]]
    paper = [float(settings.kl_weight), float(settings.metric_weight)]
    shares = {arm: {"kl": w[0] * check["kl_over_id"], "metric": w[1] * check["metric_over_global"]}
              for arm, w in (("paper", paper), ("rescaled", rescaled))}
    return {"rescaled_weights": rescaled, "paper_weights": paper, "target_share": target,
            "ratios": {"calibration": calib, "check": check}, "shares": shares,
            "batches": batches, "seed": seed}
