"""Ablations of the AlignedReID paper (Tables 1 and 2) on the synthetic data.

Trains, with the same prepared synthetic dataset, backbone, schedule and
seeds, five variants through ``train.py``:

================  ==========================================================
Baseline          global TriHard + ID loss, no local branch (``--no-local``)
GL-Baseline       + local branch, TriHard on the *unaligned* local distance
                  (``--unaligned-local``)
AlignedReID       + local branch, TriHard on the aligned local distance
AlignedReID + MC  AlignedReID trained with a peer network and the
                  classification mutual loss only (metric-mutual weight 0)
AlignedReID + MM  AlignedReID with both the classification and the metric
                  mutual losses
================  ==========================================================

Every variant is evaluated with the global feature only (as the paper
does); variants with a local branch are also scored with global + aligned
local distance. The script prints a table of mean ± standard deviation over
the seeds (rank-1, rank-5, mAP), writes it with the settings, the paper's
numbers, the training diagnostics and every configuration tried so far to
``docs/ablation.md``, and draws ``docs/ablation.png``.

Each run lives in its own ``train.py`` run directory::

    WORK_DIR/data-<hash>/prepared/        the synthetic dataset (one per data knobs)
    WORK_DIR/cfg-<hash>/settings.json     the benchmark settings of these runs
    WORK_DIR/cfg-<hash>/<variant>/seed<N>/  one train.py run directory

Each run's ``train.py`` arguments are rendered from a
``reid_tf.config.TrainConfig`` built from the settings, the variant and the
seed. A finished run (``status.json`` says so and ``metrics.json`` exists) is
not trained again, and an unfinished run resumes from its last checkpoint
(``train.py`` does that), so running the same command again continues an
interrupted benchmark.

Usage::

    python -m benchmarks.ablation                 # 3 seeds x 5 variants
    python -m benchmarks.ablation --quick         # 1 seed, fewer steps
    python -m benchmarks.ablation --report-only   # tables from finished runs
    python -m benchmarks.ablation --help          # every option

Modules: ``settings`` (variants, :class:`Settings`, the ``TrainConfig`` of a
run), ``runner`` (data, ``train.py`` subprocesses, reading run directories),
``stats`` (mean ± std, the paper's orderings), ``report`` and ``history``
(tables, the results page), ``figure`` (the plot) and ``cli``.
"""

from .cli import QUICK, build_parser, command_line, main, settings_from_args
from .figure import plot
from .history import (history_entry, format_history, merge_history, read_analysis,
                      read_history)
from .report import (dataset_info, format_comparisons, format_diagnostics, format_table,
                     render_doc, to_json)
from .runner import is_finished, prepare_data, read_run, run_benchmark, run_dir_of, train_run
from .settings import (BY_KEY, EXPECTED, METRIC_NAMES, METRICS, PAPER, VARIANT_KEYS,
                       VARIANTS, Settings, Variant)
from .stats import aggregate, compare, fmt_pm, mean_std

__all__ = [
    "BY_KEY",
    "EXPECTED",
    "METRICS",
    "METRIC_NAMES",
    "PAPER",
    "QUICK",
    "VARIANTS",
    "VARIANT_KEYS",
    "Settings",
    "Variant",
    "aggregate",
    "build_parser",
    "command_line",
    "compare",
    "dataset_info",
    "fmt_pm",
    "format_comparisons",
    "format_diagnostics",
    "format_history",
    "format_table",
    "history_entry",
    "is_finished",
    "main",
    "mean_std",
    "merge_history",
    "plot",
    "prepare_data",
    "read_analysis",
    "read_history",
    "read_run",
    "render_doc",
    "run_benchmark",
    "run_dir_of",
    "settings_from_args",
    "to_json",
    "train_run",
]
