"""``reid-evaluate``: score feature dumps with the paper's metrics.

A feature dump (``docs/feature_dump.md``) goes in; mAP, mINP and the CMC
(rank-1/5/10) come out, as a table, and optionally as JSON, CSV and a CMC plot.
The scoring itself is :func:`reference.score_dump`; this module parses the
flags, calls it, prints and writes the results, and maps errors to exit codes.
Run ``reid-evaluate --help`` (or ``python evaluate.py --help``) for the flags
and ``docs/evaluate.md`` for a walk-through.
"""

import argparse
import os
import sys

from reid_common import (
    PROTOCOL_NAMES,
    ArgumentParser,
    Reporter,
    UsageError,
    add_version_argument,
    one_line,
    run_main,
)
from reference import DISTANCES, DistanceCache, RerankParams, reports, score_dump
from reference.evaluate_inputs import (
    InputError,
    check_dumps,
    check_outputs,
    expand_inputs,
    read_checked,
)
from reference.evaluate_output import format_pct, format_table, write_csv, write_json, write_plot
from reference.rerank_limits import MAX_K1, MAX_K2

PROG = "reid-evaluate"
KEEP_BYTES = 2 << 30  # dumps read by the check before scoring are kept up to this size


def build_parser():
    """Return the argument parser of ``reid-evaluate``."""
    parser = ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Score HDF5 feature dumps (docs/feature_dump.md) with mAP, mINP and the\n"
            "CMC curve. One evaluation is run per dump and per --distance value,\n"
            "followed by its re-ranked twin with --rerank. Results are printed as a\n"
            "table (percent) and optionally written as JSON, CSV and a CMC plot.\n"
            "Progress goes to stderr. Every dump and report flag is checked before\n"
            "the first evaluation.\n"
            "A bad dump is reported on one line and skipped; the exit status is\n"
            "then 2 (also for a bad command line), otherwise 0."
        ),
        epilog=(
            "examples:\n"
            "  reid-evaluate --demo runs/demo\n"
            "  reid-evaluate runs/20260101-120000 --distance global global+local\n"
            "  reid-evaluate runs/market/*.h5 --distance global global+local --json r.json\n"
            "  reid-evaluate features.h5 --distance global+local --shortlist 100 --rerank\n"
            "(python evaluate.py ... is the same program.)"
        ),
    )
    parser.add_argument(
        "dumps",
        nargs="*",
        metavar="DUMP",
        help=(
            "feature dump(s) to evaluate (.h5); a shell glob of many dumps is fine. A "
            "run directory of train.py (config.json, features/*.h5) or a directory of "
            "dumps stands for its dumps, in name order"
        ),
    )
    parser.add_argument(
        "--distance",
        nargs="+",
        metavar="D",
        default=None,
        help=(
            "distance(s) to rank by, each evaluated separately: 'global' (Euclidean "
            "distance of the global features), 'local' (aligned local distance of the "
            "local features), 'global+local' (their sum, the paper's inference "
            "distance). Default: global (with --demo and no DUMP: all three)"
        ),
    )
    parser.add_argument(
        "--shortlist",
        type=int,
        metavar="K",
        default=None,
        help=(
            "compute the local term only for each query's K nearest gallery items "
            "by global distance; elsewhere the local term is its upper bound "
            "Hq + Hg - 1, so those items rank behind the shortlist (for global+local "
            "in their global order; for local they tie and keep gallery order). "
            "Applies to every matrix --rerank needs. K must be >= 1; K >= G means no "
            "shortlist. Needs local features and --distance local or global+local"
        ),
    )
    parser.add_argument(
        "--rerank",
        action="store_true",
        help=(
            "also evaluate each distance after k-reciprocal re-ranking (Zhong et al. 2017): "
            "one more row per distance, marked rerank in the table, JSON and CSV. "
            "Needs the Q x Q and G x G distances besides Q x G: for 'global' they are "
            "computed block by block from the features (memory ~ Q x G); for 'local' and "
            "'global+local' the full Q x Q and G x G matrices are computed and held "
            "(at the peak two float32 G x G matrices, 3.2 GB for G = 20000; G x G "
            "aligned distances take long unless --shortlist is given)"
        ),
    )
    parser.add_argument(
        "--k1", type=int, default=20,
        help=f"re-ranking k1, the k-reciprocal neighbourhood size, in [1, {MAX_K1}] "
             "(default 20)")
    parser.add_argument(
        "--k2", type=int, default=6,
        help=f"re-ranking k2, the neighbours averaged by query expansion, in [1, {MAX_K2}] "
             "(default 6)")
    parser.add_argument(
        "--lambda",
        dest="lambda_value",
        type=float,
        default=0.3,
        metavar="LAMBDA",
        help="re-ranking weight of the original distance, in [0, 1] (default 0.3)",
    )
    parser.add_argument(
        "--protocol",
        default=None,
        help=(
            f"evaluation protocol, one of {', '.join(PROTOCOL_NAMES)}: market1501 (also duke, "
            "dukemtmc, msmt17), cuhk03 (single-shot, "
            "random gallery draws) or cuhk-sysu (per-query galleries from the dump's "
            "protocol group). Default: the dump's protocol attribute"
        ),
    )
    parser.add_argument(
        "--max-rank",
        type=int,
        default=50,
        metavar="R",
        help="length of the CMC curve (default 50)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=10,
        help="cuhk03 protocol: number of random gallery draws (default 10)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the cuhk03 gallery draws and of the --ranked-list query sample (default 0)",
    )
    parser.add_argument(
        "--normalize",
        action="store_true",
        help=(
            "scale features to unit length first (global rows; local features per "
            "part)"
        ),
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help=(
            "write the results as a JSON list, one object per evaluation (fractions "
            "in [0, 1], the full CMC list included)"
        ),
    )
    parser.add_argument(
        "--csv", metavar="PATH", help="write the results as CSV (the JSON fields minus cmc)"
    )
    parser.add_argument(
        "--plot", metavar="PATH", help="write the CMC curves of all evaluations to one PNG"
    )
    parser.add_argument(
        "--demo",
        metavar="DIR",
        help=(
            "write a small synthetic dump with local features to DIR/demo.h5 and "
            "evaluate it (together with any DUMP given)"
        ),
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_version_argument(parser)
    reports.add_report_arguments(parser)
    return parser


def _check_args(args):
    """Validate the parsed arguments; raise UsageError with one line."""
    try:
        args.dumps = expand_inputs(args.dumps)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if not args.dumps and not args.demo:
        raise UsageError("no DUMP given (or use --demo DIR)")
    if args.distance is None:
        args.distance = list(DISTANCES) if args.demo and not args.dumps else ["global"]
    for d in args.distance:
        if d not in DISTANCES:
            raise UsageError(
                f"--distance: unknown distance {d!r} (choose from {', '.join(DISTANCES)})"
            )
    args.distance = list(dict.fromkeys(args.distance))
    if args.shortlist is not None:
        if args.shortlist <= 0:
            raise UsageError(f"--shortlist: K must be >= 1, got {args.shortlist}")
        if args.distance == ["global"]:
            raise UsageError(
                "--shortlist: only applies to the local term; use --distance local "
                "or global+local"
            )
    if args.max_rank < 1:
        raise UsageError(f"--max-rank: must be >= 1, got {args.max_rank}")
    if args.k1 < 1:
        raise UsageError(f"--k1: must be >= 1, got {args.k1}")
    if args.k1 > MAX_K1:
        raise UsageError(f"--k1: must be <= {MAX_K1}, got {args.k1} (re-ranking's cost grows "
                         "like N * k1^2; docs/evaluate.md)")
    if args.k2 < 1:
        raise UsageError(f"--k2: must be >= 1, got {args.k2}")
    if args.k2 > MAX_K2:
        raise UsageError(f"--k2: must be <= {MAX_K2}, got {args.k2} (re-ranking's cost grows "
                         "like Q * (k2 * k1)^2; docs/evaluate.md)")
    if not 0.0 <= args.lambda_value <= 1.0:
        raise UsageError(f"--lambda: must be in [0, 1], got {args.lambda_value}")
    if args.repeats < 1:
        raise UsageError(f"--repeats: must be >= 1, got {args.repeats}")
    if args.seed < 0:
        raise UsageError(f"--seed: must be >= 0, got {args.seed}")
    if args.protocol is not None:
        args.protocol = args.protocol.lower()
        if args.protocol not in PROTOCOL_NAMES:
            raise UsageError(
                f"--protocol: unknown protocol {args.protocol!r} (choose from "
                f"{', '.join(PROTOCOL_NAMES)})"
            )
    for flag in ("json", "csv", "plot"):
        path = getattr(args, flag)
        if path is None:
            continue
        directory = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise UsageError(f"--{flag}: {path} is a directory")
        will_exist = args.demo is not None and directory == os.path.abspath(args.demo)
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise UsageError(f"--{flag}: {directory} is not a directory")
        if not os.path.isdir(directory) and not will_exist:
            raise UsageError(f"--{flag}: directory {directory} does not exist")
    if args.demo is not None and os.path.exists(args.demo) and not os.path.isdir(args.demo):
        raise UsageError(f"--demo: {args.demo} exists and is not a directory")
    try:
        reports.check_report_arguments(args)
    except reports.ReportError as exc:
        raise UsageError(str(exc)) from None
    check_outputs(args)


def _evaluate_dump(path, dump, args, progress, label, picks):
    """The result dicts of every ``--distance`` (plain, then re-ranked with
    ``--rerank``) for one dump, and its reports (``--pick-alignment``'s text
    is appended to ``picks``)."""
    from reference import DumpError

    if dump is None:
        progress.say("reading")
        dump = read_checked(path, args)
    progress.say(
        f"Q={dump.num_query} G={dump.num_gallery} C={dump.query['global'].shape[1]}"
        + (
            f" local [{dump.query['local'].shape[1]}, {dump.query['local'].shape[2]}]"
            if dump.has_local else " (no local features)"
        )
    )
    cache = DistanceCache.from_dump(dump, normalize=args.normalize, shortlist=args.shortlist,
                                    progress=progress)
    rankings = [None]
    if args.rerank:
        rankings.append(RerankParams(args.k1, args.k2, args.lambda_value))
    matrices = {} if reports.reports_requested(args) else None
    results = []
    for distance in args.distance:
        for rerank in rankings:
            progress.prefix = f"{label} {distance}{' +rerank' if rerank else ''}: "
            result = score_dump(
                dump, distance=distance, protocol=args.protocol,
                shortlist=args.shortlist if distance != "global" else None,
                normalize=args.normalize, rerank=rerank, max_rank=args.max_rank,
                repeats=args.repeats, seed=args.seed, keep_distmat=matrices is not None,
                cache=cache, progress=progress,
            )
            if matrices is not None:
                matrices[result.name] = result.distmat
            row = result.to_dict()
            results.append(row)
            progress.say(
                f"mAP {format_pct(row['mAP'])}  rank-1 {format_pct(row['rank1'])}  "
                f"({row['seconds']:.1f} s)"
            )
    del cache
    picked = reports.pick_alignment(args, dump, path)
    if picked is not None:
        picks.append(picked)
    if matrices is not None:
        progress.prefix = f"{label}: "
        try:
            messages = reports.run_reports(args, dump, matrices, path, say=progress.say)
        except reports.ReportError as exc:
            raise DumpError(path, "reports", str(exc)) from None
        for line in messages:
            print(f"{PROG}: {path}: {line}", file=sys.stderr)
    return results


def _main(argv):
    from reference import DumpError
    from reference.synthetic import write_demo_dump

    args = build_parser().parse_args(argv)
    _check_args(args)
    progress = Reporter(PROG, enabled=not args.quiet)
    dumps = list(args.dumps)

    if args.demo is not None:
        try:
            demo = write_demo_dump(args.demo)
        except (DumpError, OSError) as exc:
            raise UsageError(f"--demo: cannot write {args.demo}: {one_line(exc)}") from None
        progress.say(f"wrote synthetic demo dump {demo}")
        dumps.insert(0, demo)

    checked, failed = check_dumps(dumps, args, progress, prog=PROG, keep_bytes=KEEP_BYTES)

    results, picks = [], []
    for n, (path, dump) in enumerate(checked, 1):
        label = f"[{n}/{len(checked)}] {path}" if len(checked) > 1 else path
        progress.prefix = f"{label}: "
        try:
            results.extend(_evaluate_dump(path, dump, args, progress, label, picks))
        except DumpError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            failed += 1
        except MemoryError:
            print(
                f"{PROG}: error: {path}: /: out of memory (try --shortlist, a smaller "
                "gallery, or no --rerank)",
                file=sys.stderr,
            )
            failed += 1
        except (ValueError, TypeError) as exc:
            print(f"{PROG}: error: {path}: /: {one_line(exc)}", file=sys.stderr)
            failed += 1
        checked[n - 1] = (path, None)  # free the features of a finished dump
    progress.prefix = ""

    if results:
        print(format_table(results))
    for text in picks:
        print(f"\n{text}")
    for flag, writer in (("json", write_json), ("csv", write_csv), ("plot", write_plot)):
        target = getattr(args, flag)
        if target is None:
            continue
        try:
            writer(target, results)
        except OSError as exc:
            print(f"{PROG}: error: --{flag}: cannot write {target}: {one_line(exc)}",
                  file=sys.stderr)
            failed += 1
            continue
        progress.say(f"wrote {target}")
    if failed:
        progress.say(f"{failed} problem(s) reported above; exit status 2")
        return 2
    return 0


def main(argv=None):
    """Run ``reid-evaluate``; return the exit status (0 ok, 2 bad input).

    Args:
        argv: argument list (default ``sys.argv[1:]``).

    Returns:
        int exit status.
    """
    return run_main(PROG, _main, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
