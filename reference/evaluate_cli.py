"""``reid-evaluate``: score feature dumps with the paper's metrics.

A feature dump (``docs/feature_dump.md``) goes in; mAP, mINP and the CMC
(rank-1/5/10) come out, as a table, and optionally as JSON, CSV and a CMC plot.
Run ``reid-evaluate --help`` (or ``python evaluate.py --help``) for the flags
and ``docs/evaluate.md`` for a walk-through.
"""

import argparse
import csv
import io
import json
import math
import os
import sys
import time

import numpy as np

from reid_common import atomic_write
from reference.vectors import global_topk, normalize_rows  # noqa: F401  (part of this module's API)

PROG = "reid-evaluate"
DISTANCES = ("global", "local", "global+local")
PROTOCOL_ALIASES = ("duke", "dukemtmc", "msmt17")
DEMO_FILE = "demo.h5"
CSV_FIELDS = (
    "dump",
    "distance",
    "shortlist",
    "normalize",
    "rerank",
    "k1",
    "k2",
    "lambda",
    "protocol",
    "num_query",
    "num_gallery",
    "num_valid_queries",
    "mAP",
    "mINP",
    "rank1",
    "rank5",
    "rank10",
    "seconds",
)


class UsageError(Exception):
    """A bad command line: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block)."""

    def error(self, message):
        raise UsageError(f"{message} (see --help)")


# ----------------------------------------------------------------------------
# command line


def build_parser():
    """Return the argument parser of ``reid-evaluate``."""
    parser = _Parser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Score HDF5 feature dumps (docs/feature_dump.md) with mAP, mINP and the\n"
            "CMC curve. One evaluation is run per dump and per --distance value;\n"
            "results are printed as a table (percent) and optionally written as\n"
            "JSON, CSV and a CMC plot. Progress goes to stderr.\n"
            "A bad dump is reported on one line and skipped; the exit status is\n"
            "then 2 (also for a bad command line), otherwise 0."
        ),
        epilog=(
            "examples:\n"
            "  reid-evaluate --demo runs/demo\n"
            "  reid-evaluate runs/market/*.h5 --distance global global+local --json r.json\n"
            "  reid-evaluate features.h5 --distance global+local --shortlist 100 --rerank\n"
            "(python evaluate.py ... is the same program.)"
        ),
    )
    parser.add_argument(
        "dumps",
        nargs="*",
        metavar="DUMP",
        help="feature dump(s) to evaluate (.h5); a shell glob of many dumps is fine",
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
            "apply k-reciprocal re-ranking (Zhong et al. 2017) to the chosen distance. "
            "Needs the Q x Q and G x G distances besides Q x G: for 'global' they are "
            "computed block by block from the features (memory ~ Q x G); for 'local' and "
            "'global+local' the full Q x Q and G x G matrices are computed and held "
            "(at the peak two float32 G x G matrices, 3.2 GB for G = 20000; G x G "
            "aligned distances take long unless --shortlist is given)"
        ),
    )
    parser.add_argument("--k1", type=int, default=20, help="re-ranking k1 (default 20)")
    parser.add_argument("--k2", type=int, default=6, help="re-ranking k2 (default 6)")
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
            "evaluation protocol: market1501 (also duke, msmt17), cuhk03 (single-shot, "
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
    reports = _reports_module()
    if reports is not None:
        reports.add_report_arguments(parser)
    return parser


def _reports_module():
    """``reference.reports`` (figures, --check-tf), or None where it is not installed."""
    try:
        from reference import reports
    except ModuleNotFoundError as exc:
        if exc.name == "reference.reports":
            return None
        raise
    return reports


def _check_args(args):
    """Validate the parsed arguments; raise UsageError with one line."""
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
    if args.k2 < 1:
        raise UsageError(f"--k2: must be >= 1, got {args.k2}")
    if not 0.0 <= args.lambda_value <= 1.0:
        raise UsageError(f"--lambda: must be in [0, 1], got {args.lambda_value}")
    if args.repeats < 1:
        raise UsageError(f"--repeats: must be >= 1, got {args.repeats}")
    if args.seed < 0:
        raise UsageError(f"--seed: must be >= 0, got {args.seed}")
    if args.protocol is not None:
        args.protocol = args.protocol.lower()
        known = _known_protocols()
        if args.protocol not in known:
            raise UsageError(
                f"--protocol: unknown protocol {args.protocol!r} (choose from "
                f"{', '.join(known)})"
            )
    for flag in ("json", "csv", "plot"):
        path = getattr(args, flag)
        if path is None:
            continue
        directory = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise UsageError(f"--{flag}: {path} is a directory")
        will_exist = args.demo is not None and directory == os.path.abspath(args.demo)
        if not os.path.isdir(directory) and not will_exist:
            raise UsageError(f"--{flag}: directory {directory} does not exist")
    if args.demo is not None and os.path.exists(args.demo) and not os.path.isdir(args.demo):
        raise UsageError(f"--demo: {args.demo} exists and is not a directory")
    reports = _reports_module()
    if reports is not None:
        try:
            reports.check_report_arguments(args)
        except reports.ReportError as exc:
            raise UsageError(str(exc)) from None


def _known_protocols():
    from reference.metrics import PROTOCOLS

    return tuple(PROTOCOLS) + tuple(a for a in PROTOCOL_ALIASES if a not in PROTOCOLS)


# ----------------------------------------------------------------------------
# progress


class _Progress:
    """Progress lines on stderr: one per stage, and in-place counters on a terminal."""

    def __init__(self, enabled, stream=None):
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.prefix = ""
        self._last = 0.0
        self._open = False

    def say(self, message):
        if not self.enabled:
            return
        self._end_line()
        self.stream.write(f"{PROG}: {self.prefix}{message}\n")
        self.stream.flush()

    def count(self, what, done, total):
        """Report ``done`` of ``total``; on a pipe at most every 10 s."""
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if done < total and now - self._last < 0.2:
                return
            self.stream.write(f"\r{PROG}: {self.prefix}{what} {done}/{total}")
            self._open = True
            if done >= total:
                self._end_line()
        elif now - self._last >= 10.0 and done < total:
            self.stream.write(f"{PROG}: {self.prefix}{what} {done}/{total}\n")
        else:
            return
        self._last = now
        self.stream.flush()

    def _end_line(self):
        if self._open:
            self.stream.write("\n")
            self._open = False


# ----------------------------------------------------------------------------
# distances


class DistanceCache:
    """Distance matrices of one dump, each computed at most once.

    ``get(kind, a, b)``: kind in ``global``, ``local``; a, b in ``query``,
    ``gallery``. The local term honours the shortlist: with K given, it is
    computed only for each row's K nearest columns by global distance (of the
    same pair of splits) and is ``Ha + Hb - 1`` elsewhere.

    Args:
        dump: a :class:`reference.dump.FeatureDump`.
        normalize: scale features to unit length first.
        shortlist: K or None.
        progress: object with ``say(str)`` and ``count(str, done, total)``
            (None: silent).

    Example:
        >>> cache = DistanceCache(read_dump("d.h5"), False, 100, None)  # doctest: +SKIP
        >>> cache.matrix("global+local", "query", "gallery").shape  # doctest: +SKIP
        (3368, 15913)
    """

    def __init__(self, dump, normalize, shortlist, progress):
        self.dump = dump
        self.shortlist = shortlist
        self.progress = progress if progress is not None else _Progress(False)
        self.cache = {}
        self.features = {}
        for split in ("query", "gallery"):
            data = getattr(dump, split)
            g = data["global"]
            loc = data.get("local")
            if normalize:
                g = normalize_rows(g)
                loc = normalize_rows(loc) if loc is not None else None
            self.features[split] = {"global": g, "local": loc}

    def get(self, kind, a, b):
        key = (kind, a, b)
        if key not in self.cache:
            if kind == "global":
                self.cache[key] = self._global(a, b)
            else:
                self.cache[key] = self._local(a, b)
        return self.cache[key]

    def _global(self, a, b):
        from reference.euclidean import pairwise_distance

        x = self.features[a]["global"]
        y = self.features[b]["global"]
        self.progress.say(f"global distances {a} x {b} [{len(x)}, {len(y)}]")
        return np.asarray(pairwise_distance(x, y), np.float32)

    def _local(self, a, b):
        from reference.aligned import local_distance_matrix

        x = self.features[a]["local"]
        y = self.features[b]["local"]
        m, n = len(x), len(y)
        k = self.shortlist
        what = f"local distances {a} x {b}"
        if k is None or k >= n:
            self.progress.say(f"{what} [{m}, {n}] (all pairs)")
            out = np.empty((m, n), np.float32)
            for lo, hi in _row_blocks(m, n):
                out[lo:hi] = local_distance_matrix(x[lo:hi], y)
                self.progress.count(what + ": rows", hi, m)
            return out
        self.progress.say(f"{what} [{m}, {n}] (shortlist K={k})")
        short = global_topk(self.get("global", a, b), k)
        bound = float(x.shape[1] + y.shape[1] - 1)
        out = np.full((m, n), bound, np.float32)
        for lo, hi in _row_blocks(m, k):
            values = local_distance_matrix(x[lo:hi], y, shortlist=short[lo:hi])
            np.put_along_axis(out[lo:hi], short[lo:hi], np.asarray(values, np.float32), axis=1)
            self.progress.count(what + ": rows", hi, m)
        return out

    def matrix(self, distance, a, b, keep=True):
        """The chosen distance between two splits, [len(a), len(b)] float32.

        With ``keep=False`` the matrices used are dropped from the cache (and
        the sum for ``global+local`` is formed in place), so that large
        query-query / gallery-gallery matrices are not held twice.
        """
        kinds = ("global", "local") if distance == "global+local" else (distance,)
        parts = [self.get(kind, a, b) for kind in kinds]
        if not keep:  # the global matrix may also have been cached for a shortlist
            for kind in ("global", "local"):
                self.cache.pop((kind, a, b), None)
        if len(parts) == 1:
            return parts[0]
        if keep:
            return parts[0] + parts[1]
        total = parts[1]
        total += parts[0]
        return total


def _row_blocks(m, n):
    """Row ranges for progress reports: about 50 blocks, at least 64 rows each."""
    step = max(64, -(-m // 50))
    for lo in range(0, m, step):
        yield lo, min(m, lo + step)


# ----------------------------------------------------------------------------
# one evaluation


def evaluate_one(dump, distance, cache, args, progress, matrices=None):
    """Run one evaluation of a dump; return the result dict (JSON fields).

    Args:
        dump: the :class:`reference.dump.FeatureDump`.
        distance: ``global``, ``local`` or ``global+local``.
        cache: the dump's :class:`DistanceCache`.
        args: the parsed command line.
        progress: progress reporter.
        matrices: optional dict; the [Q, G] matrix ranked by is stored in it
            under the evaluation's name (``global+local``, ``global-rerank``, ...).

    Returns:
        dict with the fields of the ``--json`` output.
    """
    from reference.metrics import evaluate

    protocol = args.protocol or dump.attrs["protocol"].lower()
    start = time.perf_counter()
    if args.rerank:
        dist = _reranked(dump, distance, cache, args, progress)
    else:
        dist = cache.matrix(distance, "query", "gallery")
    gallery_lists = dump.gallery_lists if protocol == "cuhk-sysu" else None
    progress.say(f"metrics ({protocol})")
    res = evaluate(
        dist,
        dump.query["pid"],
        dump.gallery["pid"],
        dump.query["camid"],
        dump.gallery["camid"],
        protocol=protocol,
        max_rank=args.max_rank,
        gallery_lists=gallery_lists,
        repeats=args.repeats,
        seed=args.seed,
    )
    seconds = time.perf_counter() - start
    if matrices is not None:
        matrices[distance + ("-rerank" if args.rerank else "")] = dist
    cmc = [float(v) for v in np.asarray(res["cmc"], np.float64)]

    def rank(k):
        return cmc[k - 1] if len(cmc) >= k else None

    return {
        "dump": dump.path,
        "distance": distance,
        "shortlist": args.shortlist if distance != "global" else None,
        "normalize": bool(args.normalize),
        "rerank": bool(args.rerank),
        "k1": args.k1 if args.rerank else None,
        "k2": args.k2 if args.rerank else None,
        "lambda": args.lambda_value if args.rerank else None,
        "protocol": protocol,
        "num_query": dump.num_query,
        "num_gallery": dump.num_gallery,
        "num_valid_queries": int(res["num_valid_queries"]),
        "mAP": _finite_or_none(res["mAP"]),
        "mINP": _finite_or_none(res["mINP"]),
        "rank1": rank(1),
        "rank5": rank(5),
        "rank10": rank(10),
        "cmc": cmc,
        "seconds": round(seconds, 3),
    }


def _reranked(dump, distance, cache, args, progress):
    from reference.rerank import re_rank, re_rank_features

    q, g = dump.num_query, dump.num_gallery
    what = f"re-ranking {distance} (k1={args.k1}, k2={args.k2}, lambda={args.lambda_value}"
    if distance == "global":
        progress.say(what + "; Q x Q and G x G distances in blocks)")
    else:
        gb = 4.0 * (2 * q * g + 2 * q * q + 2 * g * g) / 1e9
        progress.say(what + f"; holds the Q x G, Q x Q and G x G matrices, up to ~{gb:.2g} GB)")
    if distance == "global":
        feats = cache.features
        return np.asarray(
            re_rank_features(
                feats["query"]["global"],
                feats["gallery"]["global"],
                k1=args.k1,
                k2=args.k2,
                lambda_value=args.lambda_value,
            ),
            np.float32,
        )
    q_g = cache.matrix(distance, "query", "gallery")
    q_q = cache.matrix(distance, "query", "query", keep=False)
    g_g = cache.matrix(distance, "gallery", "gallery", keep=False)
    return np.asarray(
        re_rank(q_g, q_q, g_g, k1=args.k1, k2=args.k2, lambda_value=args.lambda_value),
        np.float32,
    )


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


# ----------------------------------------------------------------------------
# output


def format_table(results):
    """The results as a plain-text table, metrics in percent.

    Args:
        results: list of result dicts as returned by :func:`evaluate_one`.

    Returns:
        str (no trailing newline).

    Example:
        >>> print(format_table([]))  # doctest: +NORMALIZE_WHITESPACE
        dump  distance  protocol  query  gallery  valid  mAP  mINP  R1  R5  R10  s
    """
    header = ("dump", "distance", "protocol", "query", "gallery", "valid",
              "mAP", "mINP", "R1", "R5", "R10", "s")
    rows = [header]
    for r in results:
        label = r["distance"]
        if r.get("shortlist") is not None:
            label += f" K={r['shortlist']}"
        if r.get("normalize"):
            label += " norm"
        if r["rerank"]:
            label += " +rerank"
        rows.append(
            (
                r["dump"],
                label,
                r["protocol"],
                str(r["num_query"]),
                str(r["num_gallery"]),
                str(r["num_valid_queries"]),
                _pct(r["mAP"]),
                _pct(r["mINP"]),
                _pct(r["rank1"]),
                _pct(r["rank5"]),
                _pct(r["rank10"]),
                f"{r['seconds']:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = set(range(3, len(header)))
    lines = []
    for row in rows:
        cells = [
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _pct(value):
    return "-" if value is None else f"{100.0 * value:.2f}"


def write_json(path, results):
    """Write the result list as JSON (atomically)."""
    text = json.dumps(results, indent=2) + "\n"

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


def write_csv(path, results):
    """Write the results as CSV, one row per evaluation, without the CMC list."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in results:
        writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in CSV_FIELDS})
    text = buf.getvalue()

    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)

    atomic_write(path, write)


def write_plot(path, results):
    """Plot the CMC curves of all results on one PNG (matplotlib, Agg backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    names = {r["dump"]: os.path.basename(r["dump"]) for r in results}
    if len(set(names.values())) < len(names):
        names = {d: d for d in names}
    for r in results:
        cmc = 100.0 * np.asarray(r["cmc"], np.float64)
        label = f"{names[r['dump']]} {r['distance']}"
        if r.get("shortlist") is not None:
            label += f" K={r['shortlist']}"
        if r["rerank"]:
            label += " +rerank"
        label += f" (R1 {100.0 * r['rank1']:.1f})" if r["rank1"] is not None else ""
        ax.plot(np.arange(1, len(cmc) + 1), cmc, marker="." if len(cmc) <= 20 else None,
                label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_title("CMC")
    ax.grid(True, alpha=0.3)
    if results:
        ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))


# ----------------------------------------------------------------------------
# demo


def write_demo(directory, seed=0):
    """Write a small synthetic dump with local features to ``directory/demo.h5``.

    Args:
        directory: created if missing.
        seed: seed of :func:`reference.synthetic.clustered_features`.

    Returns:
        The path of the dump.
    """
    from reference.dump import write_dump
    from reference.synthetic import clustered_features

    os.makedirs(directory, exist_ok=True)
    data = clustered_features(
        120, 1200, dim=256, num_identities=120, parts=8, part_dim=32,
        noise_scale=1.2, camera_scale=0.8, seed=seed,
    )
    for split, prefix in (("query", "q"), ("gallery", "g")):
        d = data[split]
        d["path"] = [
            f"{prefix}/{pid:04d}_c{cam}_{i:05d}.jpg"
            for i, (pid, cam) in enumerate(zip(d["pid"], d["camid"]))
        ]
    path = os.path.join(directory, DEMO_FILE)
    write_dump(
        path,
        data["query"],
        data["gallery"],
        protocol="market1501",
        model="synthetic clustered features (reference.synthetic)",
        dataset="synthetic",
    )
    return path


# ----------------------------------------------------------------------------
# main


def main(argv=None):
    """Run ``reid-evaluate``; return the exit status (0 ok, 2 bad input).

    Args:
        argv: argument list (default ``sys.argv[1:]``).

    Returns:
        int exit status.

    Example:
        >>> main(["--demo", "runs/demo", "--json", "runs/demo/results.json"])  # doctest: +SKIP
        0
    """
    try:
        return _main(argv)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def _main(argv):
    from reference.dump import DumpError, read_dump

    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(args)
    progress = _Progress(not args.quiet)
    dumps = list(args.dumps)
    failed = 0

    if args.demo is not None:
        try:
            demo = write_demo(args.demo)
        except (DumpError, OSError) as exc:
            raise UsageError(f"--demo: cannot write {args.demo}: {_one_line(exc)}") from None
        progress.say(f"wrote synthetic demo dump {demo}")
        dumps.insert(0, demo)

    missing = [p for p in dumps if not os.path.isfile(p)]
    for p in missing:
        why = "is a directory" if os.path.isdir(p) else "no such file"
        print(f"{PROG}: error: {p}: /: {why}", file=sys.stderr)
        failed += 1
    dumps = [p for p in dumps if p not in missing]

    reports = _reports_module()
    results = []
    for n, path in enumerate(dumps, 1):
        label = f"[{n}/{len(dumps)}] {path}" if len(dumps) > 1 else path
        progress.prefix = f"{label}: "
        try:
            progress.say("reading")
            dump = read_dump(path)
            _check_dump(dump, args)
            progress.say(
                f"Q={dump.num_query} G={dump.num_gallery} C={dump.query['global'].shape[1]}"
                + (
                    f" local [{dump.query['local'].shape[1]}, {dump.query['local'].shape[2]}]"
                    if dump.has_local else " (no local features)"
                )
            )
            cache = DistanceCache(dump, args.normalize, args.shortlist, progress)
            matrices = {} if reports is not None and reports.reports_requested(args) else None
            for distance in args.distance:
                progress.prefix = f"{label} {distance}: "
                result = evaluate_one(dump, distance, cache, args, progress, matrices)
                results.append(result)
                progress.say(
                    f"mAP {_pct(result['mAP'])}  rank-1 {_pct(result['rank1'])}  "
                    f"({result['seconds']:.1f} s)"
                )
            del cache
            if matrices is not None:
                progress.prefix = f"{label}: "
                _run_reports(reports, args, dump, matrices, path, progress)
                del matrices
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
            print(f"{PROG}: error: {path}: /: {_one_line(exc)}", file=sys.stderr)
            failed += 1
    progress.prefix = ""

    if results:
        print(format_table(results))
    for flag, writer in (("json", write_json), ("csv", write_csv), ("plot", write_plot)):
        target = getattr(args, flag)
        if target is None:
            continue
        try:
            writer(target, results)
        except OSError as exc:
            print(f"{PROG}: error: --{flag}: cannot write {target}: {_one_line(exc)}",
                  file=sys.stderr)
            failed += 1
            continue
        progress.say(f"wrote {target}")
    if failed:
        progress.say(f"{failed} problem(s) reported above; exit status 2")
        return 2
    return 0


def _run_reports(reports, args, dump, matrices, path, progress):
    """Make the figures / checks of ``reference.reports`` for one dump."""
    try:
        messages = reports.run_reports(args, dump, matrices, path, say=progress.say)
    except reports.ReportError as exc:
        for line in getattr(exc, "messages", []):
            print(f"{PROG}: {path}: {line}", file=sys.stderr)
        from reference.dump import DumpError

        raise DumpError(path, "reports", str(exc)) from None
    for line in messages:
        print(f"{PROG}: {path}: {line}", file=sys.stderr)


def _check_dump(dump, args):
    """Raise DumpError when the dump cannot serve the requested evaluations."""
    from reference.dump import DumpError

    needs_local = [d for d in args.distance if d != "global"]
    if needs_local and not dump.has_local:
        raise DumpError(
            dump.path,
            "query/local",
            f"missing; --distance {needs_local[0]}"
            + (" with --shortlist" if args.shortlist is not None else "")
            + " needs local features",
        )
    protocol = args.protocol or dump.attrs["protocol"].lower()
    known = _known_protocols()
    if protocol not in known:
        raise DumpError(
            dump.path,
            "/",
            f"unknown protocol {protocol!r} (use --protocol; one of {', '.join(known)})",
        )
    if protocol == "cuhk-sysu" and dump.gallery_lists is None:
        raise DumpError(
            dump.path,
            "protocol/gallery_offsets",
            "missing; protocol cuhk-sysu needs the per-query gallery lists",
        )


def _one_line(exc):
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
