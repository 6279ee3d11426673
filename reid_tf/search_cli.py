"""``reid-search``: the command line of :mod:`reid_tf.search`.

Usage::

    reid-search --model RUN/model.keras --gallery PHOTOS/ --query me.jpg [--top 10]
                [--distance global|global+local] [--rerank] [--json PATH] [--out DIR]
    python -m reid_tf.search_cli ...     (the same)

Prints the top K of every query (rank, distance, path) on stdout, progress and
the cache used on stderr; a user's mistake is one line on stderr with exit
status 2.
"""

import argparse
import os
import sys

from reid_common import (
    STDOUT,
    ArgumentParser,
    UsageError,
    add_json_argument,
    add_version_argument,
    check_json_path,
    run_main,
    write_json_result,
)
from reid_tf.tf_startup import DEFAULT_LOG_LEVEL

PROG = "reid-search"
FLAGS = {"queries": "--query", "model": "--model", "gallery": "--gallery", "top": "--top",
         "batch_size": "--extract-batch-size", "distance": "--distance", "rerank": "--rerank",
         "shortlist": "--shortlist"}


def build_parser():
    """The ``reid-search`` argument parser.

    Example:
        >>> args = build_parser().parse_args(["--model", "m.keras", "--gallery", "photos",
        ...                                   "--query", "a.jpg", "b.jpg"])
        >>> args.query, args.top, args.distance
        (['a.jpg', 'b.jpg'], 10, 'global')
    """
    parser = ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Find the people of query images in a gallery: a folder of images (searched\n"
            "recursively for .jpg/.jpeg/.png/.bmp; its features are extracted once and\n"
            "cached as a feature dump next to the folder, or under the cache directory\n"
            "when that is not writable, and reused while the folder is unchanged) or a\n"
            "feature dump written by reid-extract (its gallery split). The ranking is\n"
            "reid-evaluate's scoring path without a protocol's removals. Prints the top K\n"
            "per query; progress on stderr. Exit status 2 on a user's mistake."
        ),
        epilog=(
            "examples:\n"
            "  reid-search --model runs/X/model.keras --gallery photos/ --query me.jpg\n"
            "  reid-search --model m.keras --gallery photos/ --query a.jpg b.jpg --top 5 \\\n"
            "      --distance global+local --rerank --json hits.json --out hits/\n"
            "  reid-search --model m.keras --gallery runs/X/features/synthetic.h5 --query q.jpg"
        ),
    )
    parser.add_argument("--model", required=True, metavar="MODEL.keras",
                        help="trained model: RUN/model.keras written by train.py")
    parser.add_argument("--gallery", required=True, metavar="DIR|DUMP",
                        help="folder of images (recursive) or a feature dump (.h5)")
    parser.add_argument("--query", required=True, nargs="+", metavar="IMG",
                        help="query image(s); each is ranked against the whole gallery")
    parser.add_argument("--top", type=int, default=10, metavar="K",
                        help="results per query (default 10; all when K exceeds the gallery)")
    parser.add_argument("--distance", default="global", choices=("global", "global+local"),
                        help="'global': Euclidean distance of the global features (default); "
                             "'global+local': plus the aligned local distance (the paper's "
                             "inference distance; needs a model with a local branch)")
    parser.add_argument("--shortlist", type=int, default=None, metavar="K",
                        help="global+local: the local term only for each query's K nearest "
                             "gallery images by global distance (as in reid-evaluate; "
                             "default: every pair)")
    parser.add_argument("--rerank", action="store_true",
                        help="k-reciprocal re-ranking of the distance (Zhong et al. 2017), "
                             "with the query images as the query set, as reid-evaluate does")
    parser.add_argument("--k1", type=int, default=20,
                        help="re-ranking k1, the k-reciprocal neighbourhood size (default 20)")
    parser.add_argument("--k2", type=int, default=6,
                        help="re-ranking k2, the neighbours averaged by query expansion "
                             "(default 6)")
    parser.add_argument("--lambda", dest="lambda_value", type=float, default=0.3,
                        metavar="LAMBDA",
                        help="re-ranking weight of the original distance, in [0, 1] "
                             "(default 0.3)")
    parser.add_argument("--normalize-features", action="store_true",
                        help="scale the features to unit length before the distances "
                             "(for models trained with --normalize-features)")
    add_json_argument(parser, what='a list, one object per query: {"query": path, '
                      '"results": [{"path", "distance", "rank"}, ...]},')
    parser.add_argument("--out", metavar="DIR",
                        help="write one ranked-list PNG per query into DIR (created if "
                             "missing; not inside the gallery folder)")
    parser.add_argument("--extract-batch-size", type=int, default=64, metavar="N",
                        help="images per feature-extraction batch (default 64)")
    parser.add_deprecated_alias("--batch-size", "--extract-batch-size")
    parser.add_argument("--cache-dir", metavar="DIR", default=None,
                        help="cache directory used when the gallery folder's parent is not "
                             "writable (default: $ALIGNEDREID_CACHE or ~/.cache/alignedreid)")
    parser.add_argument("--no-cache", action="store_true",
                        help="extract the gallery folder's features without reading or "
                             "writing a cache")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress and no 'wrote' lines on stderr (errors and warnings "
                             "only)")
    add_version_argument(parser)
    return parser


def _inside(path, folder):
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _check_outputs(args):
    check_json_path(args.json, [args.model, args.gallery, *args.query])
    if args.out:
        if os.path.exists(args.out) and not os.path.isdir(args.out):
            raise UsageError(f"--out: {args.out} exists and is not a directory")
        if os.path.isdir(args.gallery) and _inside(args.out, args.gallery):
            raise UsageError(f"--out: {args.out} is inside the gallery folder {args.gallery} "
                             "(its PNGs would join the gallery)")


def format_results(result):
    """The text printed on stdout: per query, a header and one row per result.

    Example:
        >>> from reid_tf.search import QueryResult, SearchResult
        >>> r = SearchResult([QueryResult("me.jpg", ["p/a.jpg", "p/b.jpg"], [0.25, 1.5], [0, 1])],
        ...                  "global", None, 2, "p", None, False, 0.1)
        >>> print(format_results(r))
        query me.jpg: top 2 of 2 gallery images by global
          rank  distance  path
             1    0.2500  p/a.jpg
             2    1.5000  p/b.jpg
    """
    name = result.distance + (" (re-ranked)" if result.rerank is not None else "")
    lines = []
    for q in result.queries:
        lines.append(f"query {q.query}: top {len(q.paths)} of {result.num_gallery} "
                     f"gallery images by {name}")
        lines.append("  rank  distance  path")
        for k, (path, dist) in enumerate(zip(q.paths, q.distances)):
            lines.append(f"  {k + 1:>4}  {dist:>8.4f}  {path}")
    return "\n".join(lines)


def _body(argv):
    args = build_parser().parse_args(argv)
    if args.top < 1:
        raise UsageError(f"--top: must be >= 1, got {args.top}")
    if args.extract_batch_size < 1:
        raise UsageError(f"--extract-batch-size: must be >= 1, got {args.extract_batch_size}")
    if args.shortlist is not None and args.shortlist < 1:
        raise UsageError(f"--shortlist: K must be >= 1, got {args.shortlist}")
    _check_outputs(args)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_LOG_LEVEL)
    from reid_tf.tf_startup import import_keras

    import_keras()  # TensorFlow's start-up lines filtered on its backend
    from reid_tf.search import SearchError, search_images, write_search_figures

    rerank = (args.k1, args.k2, args.lambda_value) if args.rerank else None
    try:
        result = search_images(
            model=args.model, gallery=args.gallery, queries=args.query, top=args.top,
            distance=args.distance, rerank=rerank, shortlist=args.shortlist,
            normalize=args.normalize_features, batch_size=args.extract_batch_size,
            cache_dir=args.cache_dir, use_cache=not args.no_cache, progress=not args.quiet,
        )
    except SearchError as exc:
        raise UsageError(f"{FLAGS.get(exc.argument, exc.argument)}: {exc.detail}") from None
    if args.json != STDOUT:
        print(format_results(result))
    sys.stdout.flush()
    say = (lambda m: None) if args.quiet else (lambda m: print(f"{PROG}: {m}", file=sys.stderr))
    if args.json is not None and write_json_result(args.json, result.to_json(), sort_keys=False):
        say(f"wrote {args.json}")
    if args.out:
        files = write_search_figures(result, args.out)
        say(f"wrote {len(files)} ranked list(s) to {args.out}")
    return 0


def main(argv=None):
    """``reid-search``.

    Args:
        argv: argument list (default ``sys.argv[1:]``).

    Returns:
        Exit status: 0 on success, 1 when an output cannot be written, 2 on a
        user's mistake.
    """
    return run_main(PROG, _body, argv, failures=(OSError,))


if __name__ == "__main__":
    sys.exit(main())
