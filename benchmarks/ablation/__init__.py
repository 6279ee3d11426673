"""The AlignedReID paper's ablations (Tables 1 and 2) on the synthetic data,
as a paired experiment with confidence intervals.

Per seed, every variant starts from the same pretrained backbone (an ID-only
pretraining on a disjoint synthetic set, standing in for ImageNet), trains on
the same data and batches, and is scored with the global feature on a test
split of 800+ queries; its per-query rank-1 hits and APs are stored. The
claims (AlignedReID - Baseline, AlignedReID - GL-Baseline, GL-Baseline -
Baseline, AlignedReID+MM - AlignedReID) are reported as mean paired
differences with 95 % intervals from a paired t over seeds and a paired
bootstrap over test identities.

Usage::

    python -m benchmarks.ablation --block table1   # Baseline, GL-Baseline, AlignedReID
    python -m benchmarks.ablation --block table2   # AlignedReID+MM (paper's / rescaled weights)
    python -m benchmarks.ablation --quick          # a smoke test
    python -m benchmarks.ablation --help

Modules: ``settings`` (variants, :class:`Settings`, the ``TrainConfig`` of a
run), ``runner`` (data, pretrained starts, ``train.py`` subprocesses, stored
results), ``results`` (per-query results of a run, the aligned/unaligned
check), ``shares`` (mutual-loss gradient shares), ``stats`` (paired t,
paired bootstrap), ``report`` (``docs/ablation.json``, tables), ``page`` and
``history`` (the results page) and ``cli``.
"""

from .cli import QUICK, build_parser, main, settings_from_args
from .report import ablation_json, claims
from .runner import Runner, export_backbone, is_finished, prepare_data, train_run
from .settings import (BLOCKS, BY_KEY, BY_LABEL, CLAIMS, METRICS, PAPER, VARIANT_KEYS, VARIANTS,
                       Settings, Variant)
from .stats import paired_bootstrap, paired_t, t_cdf, t_quantile

__all__ = [
    "BLOCKS",
    "BY_KEY",
    "BY_LABEL",
    "CLAIMS",
    "METRICS",
    "PAPER",
    "QUICK",
    "Runner",
    "Settings",
    "VARIANTS",
    "VARIANT_KEYS",
    "Variant",
    "ablation_json",
    "build_parser",
    "claims",
    "export_backbone",
    "is_finished",
    "main",
    "paired_bootstrap",
    "paired_t",
    "prepare_data",
    "settings_from_args",
    "t_cdf",
    "t_quantile",
    "train_run",
]
