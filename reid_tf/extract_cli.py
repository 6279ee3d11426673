"""``reid-extract``: the command line of :mod:`reid_tf.extract`.

Usage::

    reid-extract --model RUN/model.keras --data PREPARED --out dump.h5
    python -m reid_tf.extract ...      (the same)

Prints a one-line summary on stdout (``--json PATH`` writes it as JSON) and
progress on stderr; a user's mistake is one line on stderr with exit status 2.
"""

import os
import sys

from reid_common import (
    ArgumentParser,
    UsageError,
    add_json_argument,
    add_version_argument,
    check_json_path,
    emit_result,
    run_main,
)
from reid_tf.tf_startup import DEFAULT_LOG_LEVEL

PROG = "reid-extract"
FLAGS = {"batch_size": "--extract-batch-size", "normalize": "--normalize-features"}


def build_parser():
    """The ``reid-extract`` argument parser.

    Returns:
        ``reid_common.ArgumentParser`` (errors raise ``UsageError``).

    Example:
        >>> build_parser().parse_args(["--model", "m.keras", "--data", "d",
        ...                            "--out", "o.h5"]).extract_batch_size
        64
    """
    parser = ArgumentParser(
        prog=PROG,
        description="Extract query and gallery features of a prepared dataset with a "
                    "trained model and write them as an HDF5 feature dump "
                    "(reference.write_dump format; score it with evaluate.py).",
    )
    parser.add_argument("--model", required=True, metavar="MODEL.keras",
                        help="trained model: RUN/model.keras written by train.py")
    parser.add_argument("--data", required=True, metavar="MANIFEST",
                        help="prepared dataset: a manifest.jsonl or its directory "
                             "(its query and gallery splits are extracted)")
    parser.add_argument("--out", required=True, metavar="DUMP.h5",
                        help="output HDF5 dump (written atomically)")
    parser.add_argument("--extract-batch-size", type=int, default=64, metavar="N",
                        help="images per feature-extraction batch (default: 64)")
    parser.add_deprecated_alias("--batch-size", "--extract-batch-size")
    parser.add_argument("--no-local", action="store_true",
                        help="leave the local features out of the dump")
    parser.add_argument("--normalize-features", action="store_true",
                        help="L2-normalise global features and every local part "
                             "(use for models trained with --normalize-features)")
    parser.add_deprecated_alias("--normalize", "--normalize-features")
    add_json_argument(parser, "the summary (the dump's counts and shapes)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress on stderr (errors and warnings only)")
    add_version_argument(parser)
    return parser


def format_summary(summary):
    """The one-line summary printed without ``--json``.

    Example:
        >>> format_summary({"out": "d.h5", "dataset": "synthetic", "protocol": "market1501",
        ...                 "num_query": 3, "num_gallery": 9, "global_dim": 256,
        ...                 "local_shape": [4, 128], "seconds": 1.25})
        'd.h5: synthetic (market1501), 3 queries, 9 gallery images, global dim 256, local (4, 128), 1.2 s'
    """
    return (
        f"{summary['out']}: {summary['dataset']} ({summary['protocol']}), "
        f"{summary['num_query']} queries, {summary['num_gallery']} gallery images, "
        f"global dim {summary['global_dim']}"
        + (f", local {tuple(summary['local_shape'])}" if summary["local_shape"] else "")
        + f", {summary['seconds']:.1f} s"
    )


def _body(argv):
    args = build_parser().parse_args(argv)
    check_json_path(args.json, [args.model, args.data, os.path.join(args.data, "manifest.jsonl"),
                                args.out])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_LOG_LEVEL)
    from reid_tf.extract import ExtractError, extract_dump

    try:
        summary = extract_dump(
            args.model, args.data, args.out, batch_size=args.extract_batch_size,
            local=not args.no_local, normalize=args.normalize_features,
            progress=not args.quiet,
        )
    except ExtractError as exc:
        flag = FLAGS.get(exc.argument, "--" + exc.argument.replace("_", "-"))
        raise UsageError(f"{flag}: {exc.detail}") from None
    emit_result(args.json, format_summary(summary), summary)
    return 0


def main(argv=None):
    """``python -m reid_tf.extract`` / ``reid-extract``.

    Args:
        argv: argument list (default ``sys.argv[1:]``).

    Returns:
        Exit status: 0 on success, 2 on a user error.
    """
    from reference import DumpError

    return run_main(PROG, _body, argv, usage_errors=(DumpError,))


if __name__ == "__main__":
    sys.exit(main())
