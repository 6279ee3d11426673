"""``reid-human`` (``python -m human_study``): the human-performance study of the paper's section 5."""

import argparse
import os
import sys

from human_study.create import DISTANCE_CHOICES, CreateError, create_study
from human_study.schema import StudyError
from reid_common import (
    STDOUT,
    ArgumentParser,
    Reporter,
    UsageError,
    add_json_argument,
    add_version_argument,
    atomic_write_json,
    check_json_path,
    emit_result,
    run_main,
    same_file,
    write_json_result,
)

PROG = "reid-human"


def _out_path(flag, path, study):
    if path is not None and os.path.exists(path) and same_file(path, study):
        raise UsageError(f"{flag}: {path} is the study file itself")
    return path


def _add_listen(parser, what):
    parser.add_argument("--host", default="127.0.0.1",
                        help=f"{what} address (default 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000,
                        help=f"{what} port (default 8000; 0 picks a free one)")


def build_parser():
    """The argument parser of ``reid-human``."""
    parser = ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Measure annotators against a model the way section 5 of the AlignedReID paper\n"
            "did: each query is shown beside its candidates (the model's top K, every\n"
            "true match included, shuffled) and the annotator picks one. See\n"
            "docs/human_study.md."),
        epilog=(
            "workflow:\n"
            "  reid-human create runs/R/features/market1501.h5 --out study.sqlite --queries 500 --seed 0\n"
            "  reid-human add-annotator study.sqlite alice\n"
            "  reid-human serve study.sqlite\n"
            "  reid-human report study.sqlite --json report.json --plot table6.png\n"
            "  reid-human demo            (a small study to try it out)"))
    add_version_argument(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)

    p = sub.add_parser("create", help="build a study from a feature dump",
                       description="Build a study from a feature dump into a new SQLite file.")
    p.add_argument("dump", metavar="DUMP", help="feature dump (.h5) with image paths")
    p.add_argument("--out", required=True, metavar="STUDY.sqlite",
                   help="the study file to create (never overwritten)")
    p.add_argument("--queries", type=int, required=True, metavar="N",
                   help="number of queries, drawn among those with a valid true match")
    p.add_argument("--seed", type=int, required=True, metavar="S",
                   help="seed of the query draw and of the candidates' shown order")
    p.add_argument("--candidates", type=int, metavar="K", default=None,
                   help="candidates per query (default: 10 for cuhk03, 50 for the others)")
    p.add_argument("--distance", choices=DISTANCE_CHOICES, default="global",
                   help="the model's distance (default global)")
    p.add_argument("--rerank", action="store_true",
                   help="build the candidates from the k-reciprocal re-ranked distance "
                        "(both rankings are computed either way, for the report; with "
                        "global+local on a large gallery give --shortlist)")
    p.add_argument("--image-root", metavar="DIR", default=None,
                   help="folder the dump's relative image paths are under (default: the "
                        "current directory, then the dump's folder)")
    p.add_argument("--shortlist", type=int, metavar="K", default=None,
                   help="global+local: the local term only for each query's K nearest "
                        "gallery items by global distance (as in reid-evaluate)")
    p.add_argument("--normalize-features", action="store_true",
                   help="scale features to unit length first (as in reid-evaluate)")
    p.add_deprecated_alias("--normalize", "--normalize-features")
    p.add_argument("--k1", type=int, default=20,
                   help="re-ranking k1, the k-reciprocal neighbourhood size (default 20)")
    p.add_argument("--k2", type=int, default=6,
                   help="re-ranking k2, the neighbours averaged by query expansion (default 6)")
    p.add_argument("--lambda", dest="lambda_value", type=float, default=0.3, metavar="LAMBDA",
                   help="re-ranking weight of the original distance (default 0.3)")
    add_json_argument(p, "what was created")
    p.add_argument("--quiet", action="store_true",
                   help="no progress on stderr (errors and warnings only)")

    p = sub.add_parser("add-annotator", help="add an annotator and print the personal link",
                       description="Create an annotator with a secret token; print the link.")
    p.add_argument("study", metavar="STUDY", help="the study file")
    p.add_argument("name", metavar="NAME", help="the annotator's name (unique in the study)")
    add_json_argument(p, '{"name": ..., "token": ..., "url": ...}')
    _add_listen(p, "the link's server")

    p = sub.add_parser("serve", help="serve the annotation page and its JSON API",
                       description="Serve the study to its annotators (waitress WSGI server).")
    p.add_argument("study", metavar="STUDY", help="the study file")
    _add_listen(p, "listening")
    p.add_argument("--threads", type=int, default=8, help="request threads (default 8)")

    p = sub.add_parser("report", help="annotators against the model (Table 6)",
                       description="Rank-1 of every annotator and of the model.")
    p.add_argument("study", metavar="STUDY", help="the study file")
    add_json_argument(p, "the report (fractions in [0, 1])")
    p.add_argument("--plot", metavar="PNG", help="write the Table-6 bar plot")

    p = sub.add_parser("export", help="the queries and candidates as JSON",
                       description="Queries, candidates and shown orders, for audit.")
    p.add_argument("study", metavar="STUDY", help="the study file")
    p.add_argument("--json", metavar="PATH", required=True,
                   help="the JSON file to write (written to a temporary file, then renamed; "
                        "'-': stdout)")

    p = sub.add_parser("demo", help="a small study, an annotator and the server, in one go",
                       description=(
                           "Make a small study from the newest runs/*/features/*.h5 whose "
                           "images are found, else from a synthetic image dataset with "
                           "synthetic features; add an annotator; serve it and print the link."))
    p.add_argument("--dir", default="human_study_demo", metavar="DIR",
                   help="folder of the demo study (default human_study_demo; reused if present)")
    p.add_argument("--queries", type=int, default=20, metavar="N",
                   help="queries of a new demo study (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--runs", default="runs", metavar="DIR",
                   help="training runs folder searched for a dump (default runs)")
    p.add_argument("--synthetic", action="store_true", help="use synthetic data even if a run exists")
    p.add_argument("--no-serve", action="store_true", help="make the study and link, do not serve")
    _add_listen(p, "listening")
    add_json_argument(p, "the study, link and token")
    p.add_argument("--quiet", action="store_true",
                   help="no progress on stderr (errors and warnings only)")
    return parser


def _bind(study, host, port, threads):
    from human_study.web import make_server

    try:
        return make_server(study, host=host, port=port, threads=threads)
    except OSError as exc:
        raise UsageError(f"--port: cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _run(server, study, host):
    print(f"serving {study} on http://{host}:{server.effective_port}/ (Ctrl-C stops)", flush=True)
    try:
        server.run()
    finally:
        server.close()


def _create(args):
    progress = Reporter(PROG, enabled=not args.quiet)
    check_json_path(args.json, {"the DUMP input": args.dump, "the --out study": args.out})
    try:
        info = create_study(
            args.dump, args.out, queries=args.queries, seed=args.seed,
            candidates=args.candidates, distance=args.distance, rerank=args.rerank,
            image_root=args.image_root, shortlist=args.shortlist,
            normalize=args.normalize_features,
            k1=args.k1, k2=args.k2, lambda_value=args.lambda_value, progress=progress)
    except CreateError as exc:
        message = str(exc)
        name, colon, rest = message.partition(":")
        if colon and name in ("out", "image_root", "queries", "candidates", "distance", "seed"):
            message = f"--{name.replace('_', '-')}:{rest}"
        raise UsageError(message) from None
    if args.json != STDOUT:
        print(f"{info.path}: {info.num_queries} queries, {info.num_candidates} candidates "
              f"each ({info.protocol}, {info.distance}"
              f"{', re-ranked' if info.rerank else ''}), {info.num_images} images")
    if args.json is not None:
        write_json_result(args.json, vars(info))


def _add_annotator(args):
    from human_study.store import Store
    from human_study.web import annotate_url

    check_json_path(args.json, {"the study file itself": args.study})
    store = Store(args.study)
    try:
        name, token = store.add_annotator(args.name)
    finally:
        store.close()
    url = annotate_url(args.host, args.port, token)
    emit_result(args.json, f"{name}: {url}", {"name": name, "token": token, "url": url},
                sort_keys=False)


def _report(args):
    from human_study.report import format_report, study_report, write_report_plot

    check_json_path(args.json, {"the study file itself": args.study})
    _out_path("--plot", args.plot, args.study)
    report = study_report(args.study)
    emit_result(args.json, format_report(report), report.to_dict(), sort_keys=False)
    if args.plot:
        write_report_plot(report, args.plot)


def _export(args):
    from human_study.export import export_study

    check_json_path(args.json, {"the study file itself": args.study})
    data = export_study(args.study)
    if args.json == STDOUT:
        write_json_result(STDOUT, data, sort_keys=False)
        return
    atomic_write_json(args.json, data, indent=1, sort_keys=False)
    print(f"{args.json}: {len(data['queries'])} queries")


def _demo(args):
    from human_study.demo import make_demo
    from human_study.web import annotate_url

    if args.queries < 1:
        raise UsageError(f"--queries: expected an integer >= 1, got {args.queries}")
    try:
        info = make_demo(args.dir, queries=args.queries, seed=args.seed, runs=args.runs,
                         synthetic_only=args.synthetic,
                         progress=Reporter(PROG, enabled=not args.quiet))
    except CreateError as exc:
        raise UsageError(str(exc)) from None
    server = None if args.no_serve else _bind(info.study, args.host, args.port, 8)
    port = args.port if server is None else server.effective_port
    url = annotate_url(args.host, port, info.token)
    if args.json != STDOUT:
        print(f"study: {info.study} ({info.source}{': ' + info.dump if info.dump else ''})")
        print(f"annotator {info.annotator}: {url}")
        print(f"report:  {PROG} report {info.study}")
    if args.json is not None:
        write_json_result(args.json, {"study": info.study, "source": info.source,
                                      "dump": info.dump, "annotator": info.annotator,
                                      "token": info.token, "url": url})
    sys.stdout.flush()
    if server is not None:
        _run(server, info.study, args.host)


def _body(argv):
    args = build_parser().parse_args(argv)
    if args.command is None:
        raise UsageError("no COMMAND given (create, add-annotator, serve, report, export, demo)")
    for name in ("queries", "port", "threads", "candidates"):
        value = getattr(args, name, None)
        low = 0 if name == "port" else 1
        if value is not None and (value < low or (name == "port" and value > 65535)):
            raise UsageError(f"--{name}: out of range: {value}")
    if args.command == "serve":
        from human_study.store import Store

        Store(args.study).close()
        _run(_bind(args.study, args.host, args.port, args.threads), args.study, args.host)
        return 0
    {"create": _create, "add-annotator": _add_annotator, "report": _report,
     "export": _export, "demo": _demo}[args.command](args)
    return 0


def main(argv=None):
    """Entry point of ``reid-human``; returns the exit status."""
    from data_prep import PrepError

    return run_main(PROG, _body, argv, usage_errors=(StudyError, CreateError),
                    failures=(PrepError, OSError))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
