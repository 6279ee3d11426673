"""``reid-gradcheck``: the command line of the gradient checks.

Usage::

    python -m reid_tf.gradcheck [--quick] [--seed S] [--json PATH] [--no-model]
    reid-gradcheck --dump DUMP [--samples S] [--seed N] [--json PATH]

Prints the table on stdout (progress on stderr) and exits 0 when every row
passes, 1 when any fails, 2 on bad arguments or a dump that cannot be read.
"""

import os
import sys
import time
from dataclasses import asdict

import numpy as np

from reid_common import (
    STDOUT,
    ArgumentParser,
    UsageError,
    add_json_argument,
    add_version_argument,
    check_json_path,
    one_line,
    run_main,
    write_json_result,
)
from reid_tf.gradcheck.checks import SECTIONS, run_checks
from reid_tf.gradcheck.results import FD_STEP, TOLERANCES, format_table
from reid_tf.tf_startup import DEFAULT_LOG_LEVEL

PROG = "reid-gradcheck"
#: The largest ``--samples`` (S x S global distances, a few arrays of them in float64).
MAX_SAMPLES = 5000
# the model checks seed NumPy's global generator with seed + k (k < 8)
_SEED_LIMIT = 2 ** 32 - 9


def _write_json(path, payload):
    try:
        write_json_result(path, payload, sort_keys=False)
    except OSError as exc:
        raise UsageError(f"--json: cannot write {path} ({exc.strerror or exc})") from None


def build_parser():
    """Argument parser of ``reid-gradcheck``.

    Returns:
        ``reid_common.ArgumentParser`` (errors raise ``UsageError``).

    Example:
        >>> args = build_parser().parse_args(["--quick", "--only", "local"])
        >>> args.quick, args.only, args.seed
        (True, 'local', 0)
    """
    parser = ArgumentParser(
        prog=PROG,
        description=(
            "Verify the gradients of the AlignedReID local distance, "
            "TriHard losses and mutual losses against the Numba reference's "
            "analytic gradients and float64 central finite differences, on the "
            "Keras backend KERAS_BACKEND selects (tensorflow, the default, jax or "
            "torch) with its own gradient function (tf.GradientTape, jax.grad, "
            "torch.autograd). Prints a table; exits 1 if any check fails. With "
            "--dump, instead compare the backend's distance ops with the reference "
            "on a feature dump's pairs."
        ),
    )
    parser.add_argument("--dump", metavar="DUMP",
                        help="check a feature dump (.h5) instead: recompute a seeded sample of "
                             "its distances (global, aligned local, local matrix) with the "
                             "Keras ops and with the reference and compare them "
                             "(float32 tolerance); --seed, --json and --quiet apply")
    parser.add_argument("--samples", type=int, default=200, metavar="S",
                        help="--dump: number of query-gallery pairs sampled, at most "
                             f"{MAX_SAMPLES} (default 200)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer shapes and options (3 of the 8 TriHard option sets), "
                             "finite differences on 32-48 sampled coordinates per tensor")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random inputs and network weights, >= 0 (at most "
                             f"{_SEED_LIMIT} with the model checks; default 0)")
    add_json_argument(parser, "every row and the overall verdict")
    parser.add_argument("--no-model", action="store_true",
                        help="skip the checks on the outputs of a tiny network")
    parser.add_argument("--fd-step", type=float, default=FD_STEP,
                        help=f"central finite-difference step (default {FD_STEP:g})")
    parser.add_argument("--only", metavar="SECTIONS", default=",".join(SECTIONS),
                        help="comma-separated subset of the check sections "
                             f"{','.join(SECTIONS)} (default: all)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress messages on stderr (errors and warnings only)")
    add_version_argument(parser)
    return parser


def _sections(args):
    """The validated ``--only`` sections (raises ``UsageError``)."""
    if not (args.fd_step > 0 and np.isfinite(args.fd_step)):
        raise UsageError(f"--fd-step: expected a positive number, got {args.fd_step}")
    sections = tuple(x.strip() for x in args.only.split(",") if x.strip())
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown or not sections:
        raise UsageError(f"--only: unknown section(s) {unknown or args.only!r}; "
                         f"expected a comma-separated subset of {','.join(SECTIONS)}")
    # the network checks seed Keras (NumPy's global generator: 32 bits)
    models = args.dump is None and not args.no_model and "model" in sections
    if args.seed < 0 or (models and args.seed > _SEED_LIMIT):
        limit = f", at most {_SEED_LIMIT} with the model checks" if models else ""
        raise UsageError(f"--seed: expected an integer >= 0{limit}, got {args.seed}")
    check_json_path(args.json, {"the --dump input": args.dump})
    return sections


def _check_dump(args):
    """``--dump``: the TF distance ops against the reference on a dump; exit status."""
    from reference import DumpError, read_dump
    from reid_tf.check import check_against_reference, format_check, format_check_table

    if not 1 <= args.samples <= MAX_SAMPLES:
        raise UsageError(f"--samples: expected an integer in [1, {MAX_SAMPLES}] (the global "
                         f"comparison is an S x S matrix), got {args.samples}")
    try:
        dump = read_dump(args.dump)
    except (DumpError, OSError) as exc:
        raise UsageError(one_line(exc)) from exc
    if not args.quiet:
        print(f"{PROG}: {args.dump}: {args.samples} sampled pairs", file=sys.stderr)
    result = check_against_reference(dump, samples=args.samples, seed=args.seed)
    if args.json != STDOUT:
        print(format_check_table(result))
        print(f"\n{format_check(result)} ({args.dump}, seed {args.seed})")
    if args.json:
        _write_json(args.json, {"dump": args.dump, **result})
    return 0 if result["passed"] else 1


def _body(argv):
    args = build_parser().parse_args(argv)
    sections = _sections(args)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_LOG_LEVEL)
    if args.dump is not None:
        return _check_dump(args)
    from reid_tf.backend import backend_name

    backend = backend_name()
    if not args.quiet:
        print(f"{PROG}: backend {backend}", file=sys.stderr)
    start = time.perf_counter()
    rows = run_checks(quick=args.quick, seed=args.seed, model=not args.no_model,
                      fd_step=args.fd_step, verbose=not args.quiet, sections=sections)
    elapsed = time.perf_counter() - start
    failed = [r for r in rows if not r.passed]
    if args.json != STDOUT:
        print(format_table(rows))
        print(f"\n{len(rows) - len(failed)}/{len(rows)} checks passed, {len(failed)} failed "
              f"({elapsed:.1f} s, seed {args.seed}{', quick' if args.quick else ''})")
    if args.json:
        _write_json(args.json, {
            "passed": not failed,
            "num_checks": len(rows),
            "num_failed": len(failed),
            "seed": args.seed,
            "quick": args.quick,
            "backend": backend,
            "sections": list(sections),
            "tolerances": TOLERANCES,
            "fd_step": args.fd_step,
            "seconds": elapsed,
            "checks": [asdict(r) for r in rows],
        })
    return 1 if failed else 0


def main(argv=None):
    """Entry point of ``reid-gradcheck``; returns the exit status (``--help``: 0)."""
    return run_main(PROG, _body, argv)


if __name__ == "__main__":
    sys.exit(main())
