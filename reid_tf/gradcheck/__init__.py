"""Gradient verification of the AlignedReID distances and losses.

``python -m reid_tf.gradcheck`` (console script ``reid-gradcheck``) compares
the gradients of

* the aligned local distance (``sum_n aligned_local_distance(X, Y)[n]``),
* the TriHard losses (global and local; normalisation on/off, local mining
  by global or local distance, aligned and unaligned local distance),
* the metric and the classification mutual losses,

computed by the Keras backend in use (``tf.GradientTape``, ``jax.grad`` or
``torch.autograd``, :mod:`~reid_tf.gradcheck.autodiff`) with independent
gradients: the analytic gradients of the Numba reference
(``reference.local_distance_grad``, ``reference.trihard_reference``; for the
mutual losses the closed forms written here in NumPy) and float64 central
finite differences. Inputs: random tensors of several shapes (square and
rectangular part grids, ties in the DP, zero and near-zero part distances,
exactly duplicated samples) and the outputs of a small ``tiny``-backbone
network on a random image batch.

Errors: ``max_abs = max |a - b|`` and ``max_rel = max_abs / max(max|a|,
max|b|)`` (0 when both are identically 0). Tolerances on ``max_rel``:
float64 analytic 1e-7, float32 analytic 1e-4, float64 finite differences
1e-5 (step 1e-6; the error of a central difference is ~1e-10 from rounding
plus O(step^2) truncation, which the runs here put at <= 1e-7 relative). Finite differences
are not valid where the function has a kink inside the step -- DP ties,
zero or near-zero part distances, mining ties -- so there only the analytic
comparison is made, and the table says so. For the mutual losses the
finite differences are taken of the loss with its stop-gradient operands
frozen at their current values (that is the function whose gradient the
stop-gradient defines).

``reid-gradcheck --dump DUMP [--samples S] [--seed N] [--json PATH]`` checks
the backend's distance ops against the reference on a feature dump's pairs
instead (:mod:`reid_tf.check`).

Exit status: 0 when every row passes, 1 when any fails, 2 on bad arguments
(or a dump that cannot be read).

Modules: :mod:`~reid_tf.gradcheck.results` (rows, error measure, table),
:mod:`~reid_tf.gradcheck.autodiff` (the backend's gradients and differences),
:mod:`~reid_tf.gradcheck.oracles` (finite differences, NumPy mutual losses),
:mod:`~reid_tf.gradcheck.inputs` (random inputs),
:mod:`~reid_tf.gradcheck.checks` (the check sections, :func:`run_checks`),
:mod:`~reid_tf.gradcheck.cli` (the command line).
"""

from reid_tf.gradcheck.autodiff import backend_central_differences, backend_grad
from reid_tf.gradcheck.checks import (
    SECTIONS,
    TRIHARD_OPTIONS,
    check_local_distance,
    check_model_batch,
    check_mutual,
    check_trihard,
    run_checks,
)
from reid_tf.gradcheck.cli import build_parser, main
from reid_tf.gradcheck.oracles import (
    central_differences,
    kl_mutual_grads,
    kl_mutual_numpy,
    metric_mutual_grads,
    metric_mutual_numpy,
)
from reid_tf.gradcheck.results import (
    FD_STEP,
    TOLERANCES,
    Checker,
    CheckResult,
    compare,
    format_table,
)

__all__ = [
    "FD_STEP",
    "SECTIONS",
    "TOLERANCES",
    "TRIHARD_OPTIONS",
    "CheckResult",
    "Checker",
    "backend_central_differences",
    "backend_grad",
    "build_parser",
    "central_differences",
    "check_local_distance",
    "check_model_batch",
    "check_mutual",
    "check_trihard",
    "compare",
    "format_table",
    "kl_mutual_grads",
    "kl_mutual_numpy",
    "main",
    "metric_mutual_grads",
    "metric_mutual_numpy",
    "run_checks",
]
