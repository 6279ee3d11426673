"""The report flags of ``reid-evaluate``: ranked lists and part alignments of a dump.

:func:`add_report_arguments` adds the flags to a parser,
:func:`check_report_arguments` validates them, and :func:`run_reports` makes
the figures of :mod:`reference.figures` they ask for, for one dump.
``docs/evaluate_reports.md`` shows examples.
"""

import os

from reference.figures import (
    MAX_TOP_N,
    ReportError,
    ReportWarning,
    alignment_figure,
    ranked_list_figure,
    sample_queries,
)
from reference.figures.images import image_roots, locate_image
from reference.figures.ranked_list import protocol_rules

__all__ = [
    "ReportError",
    "ReportWarning",
    "add_report_arguments",
    "check_report_arguments",
    "check_reports_for_dump",
    "pick_alignment",
    "reports_requested",
    "run_reports",
]


def add_report_arguments(parser):
    """Add the report flags to an ``argparse`` parser (an argument group "reports").

    Flags: ``--ranked-list N``, ``--num-queries``, ``--alignment Q G``,
    ``--pick-alignment K``, ``--out``, ``--image-root``. The
    query sample of ``--ranked-list`` uses ``args.seed`` when the parser has
    a ``--seed`` flag (else 0).

    Args:
        parser: an ``argparse.ArgumentParser``.

    Returns:
        The argument group.

    Example:
        >>> import argparse
        >>> p = argparse.ArgumentParser()
        >>> _ = add_report_arguments(p)
        >>> p.parse_args(["--ranked-list", "10"]).num_queries
        8
    """
    group = parser.add_argument_group(
        "reports", "figures of one dump (docs/evaluate_reports.md)"
    )
    group.add_argument(
        "--ranked-list",
        type=int,
        metavar="N",
        default=None,
        help=(
            "for a seeded sample of queries (--num-queries; the sample uses --seed), "
            "write one PNG per query to --out showing the query and its top-N gallery "
            "images by each evaluated distance, after the protocol's removals; green "
            "frame = same identity, red = different, distance under each image. Needs "
            f"image paths in the dump. N in [1, {MAX_TOP_N}]"
        ),
    )
    group.add_argument(
        "--num-queries",
        type=int,
        default=8,
        metavar="M",
        help="number of queries drawn for --ranked-list (default 8; all if M >= Q)",
    )
    group.add_argument(
        "--alignment",
        type=int,
        nargs=2,
        metavar=("Q", "G"),
        default=None,
        help=(
            "draw the part alignment of query Q and gallery item G (indices in the "
            "dump): both images cut into stripes, one line for each pair of stripes "
            "the shortest path matches, thicker and more opaque the more its part distance "
            "adds to the total, with its value; the part distance matrix with the path; "
            "the aligned distance against the unshifted path and the stripe sum. Needs "
            "local features (see --pick-alignment for pairs worth drawing)"
        ),
    )
    group.add_argument(
        "--pick-alignment",
        type=int,
        metavar="K",
        default=None,
        help=(
            "list on stdout, after the results, the K same-identity cross-camera pairs "
            "of each dump that alignment helps most: the largest gain D - S of the "
            "shortest path S over the shortest path that keeps within one stripe of the "
            "diagonal (no shift) D; each as the --alignment Q G flag that draws it. "
            "Needs local features with the same part count in query and gallery"
        ),
    )
    group.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help=(
            "directory for the report PNGs (created if missing; default: reports). "
            "With only --alignment and one dump it may name the PNG itself (ends in .png)"
        ),
    )
    group.add_argument(
        "--image-root",
        metavar="DIR",
        default=None,
        help=(
            "directory the dump's image paths start from (the prepared dataset's "
            "directory); default: the dump's image_root attribute when that directory "
            "exists, else the current directory, then the dump's. Only images inside "
            "it are drawn; a path leading outside it (absolute, '..', a symbolic link) "
            "is drawn as a grey placeholder with a warning"
        ),
    )
    return group


def reports_requested(args):
    """True when any report flag is set (so the caller can skip building distance matrices)."""
    return bool(
        getattr(args, "ranked_list", None) is not None
        or getattr(args, "alignment", None) is not None
    )


def _out_is_png(args):
    out = getattr(args, "out", None)
    return out is not None and out.lower().endswith(".png")


def _made_by_demo(args, directory):
    """True when ``directory`` is the ``--demo`` directory, which the CLI creates first."""
    demo = getattr(args, "demo", None)
    return demo is not None and os.path.abspath(demo) == directory


def check_report_arguments(args):
    """Validate the report flags alone (no dump needed).

    Args:
        args: parsed arguments with the attributes :func:`add_report_arguments` adds.

    Raises:
        ReportError: one line naming the flag.

    Example:
        >>> import argparse
        >>> p = argparse.ArgumentParser(); _ = add_report_arguments(p)
        >>> check_report_arguments(p.parse_args(["--ranked-list", "0"]))
        Traceback (most recent call last):
        ...
        reference.figures.images.ReportError: --ranked-list: N must be in [1, 100], got 0
    """
    n = getattr(args, "ranked_list", None)
    if n is not None and not 1 <= n <= MAX_TOP_N:
        raise ReportError(f"--ranked-list: N must be in [1, {MAX_TOP_N}], got {n}")
    pick = getattr(args, "pick_alignment", None)
    if pick is not None and pick < 1:
        raise ReportError(f"--pick-alignment: K must be >= 1, got {pick}")
    if args.num_queries < 1:
        raise ReportError(f"--num-queries: must be >= 1, got {args.num_queries}")
    if args.alignment is not None and min(args.alignment) < 0:
        raise ReportError(f"--alignment: indices must be >= 0, got {args.alignment}")
    if args.image_root is not None and not os.path.isdir(args.image_root):
        raise ReportError(f"--image-root: {args.image_root} is not a directory")
    out = args.out
    if out is None:
        return
    if _out_is_png(args):
        if args.alignment is None or n is not None:
            raise ReportError(
                f"--out: {out} names a PNG; that is only allowed with --alignment alone "
                "(give a directory for --ranked-list)"
            )
        num_dumps = len(getattr(args, "dumps", None) or []) + (
            1 if getattr(args, "demo", None) else 0
        )
        if num_dumps > 1:
            raise ReportError(
                f"--out: {out} names one PNG but {num_dumps} dumps are evaluated; give a "
                "directory"
            )
        directory = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(directory) and not _made_by_demo(args, directory):
            raise ReportError(f"--out: directory {directory} does not exist")
        if os.path.isdir(out):
            raise ReportError(f"--out: {out} is a directory")
    else:
        if os.path.exists(out) and not os.path.isdir(out):
            raise ReportError(f"--out: {out} exists and is not a directory")
        parent = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(parent) and not _made_by_demo(args, parent):
            raise ReportError(f"--out: parent directory {parent} does not exist")


def check_reports_for_dump(args, dump, dump_path=None):
    """Validate the report flags against one dump, before any distance is computed.

    Args:
        args: parsed arguments (:func:`add_report_arguments`).
        dump: the :class:`reference.dump.FeatureDump`.
        dump_path: the dump's file, for the messages (default ``dump.path``).

    Raises:
        ReportError: one line naming the flag and the dump: an index out of
            range, a dump without the local features or image paths a report
            needs, an unknown protocol.
    """
    dump_path = os.fspath(dump_path or dump.path)
    protocol_rules(getattr(args, "protocol", None) or dump.attrs.get("protocol", "market1501"))
    if args.alignment is not None:
        qi, gi = args.alignment
        if not dump.has_local:
            raise ReportError(f"--alignment: {dump_path}: the dump has no local features")
        for what, index, size in (("query", qi, dump.num_query),
                                  ("gallery", gi, dump.num_gallery)):
            if index >= size:
                raise ReportError(f"--alignment: {dump_path}: {what} index {index} is out of "
                                  f"range [0, {size})")
    if getattr(args, "pick_alignment", None) is not None:
        if not dump.has_local:
            raise ReportError(f"--pick-alignment: {dump_path}: the dump has no local features")
        hq, hg = dump.query["local"].shape[1], dump.gallery["local"].shape[1]
        if hq != hg:
            raise ReportError(f"--pick-alignment: {dump_path}: query and gallery have {hq} "
                              f"and {hg} parts; the unaligned sum needs equal counts")
    if args.ranked_list is not None and ("path" not in dump.query or "path" not in dump.gallery):
        raise ReportError(
            f"--ranked-list: {dump_path}: the dump has no image paths (query/path, "
            "gallery/path); write it with paths to draw ranked lists"
        )


def _normalize(args):
    """Whether the parsed flags ask for unit-length features (either flag name)."""
    return bool(getattr(args, "normalize_features", None) or getattr(args, "normalize", False))


def pick_alignment(args, dump, dump_path=None):
    """The ``--pick-alignment`` text of one dump (:func:`reference.figures.format_candidates`),
    or None when the flag is not given."""
    from reference.figures import alignment_candidates, format_candidates

    k = getattr(args, "pick_alignment", None)
    if k is None:
        return None
    found = alignment_candidates(dump, top=k, normalize=_normalize(args))
    return format_candidates(found, os.fspath(dump_path or dump.path))


def run_reports(args, dump, distmat, dump_path=None, *, say=None):
    """Make the reports the flags ask for, for one dump.

    Args:
        args: parsed arguments (:func:`add_report_arguments`; ``protocol``,
            ``seed``, ``normalize_features`` (or ``normalize``), ``quiet`` are
            used when present).
        dump: the :class:`reference.dump.FeatureDump`.
        distmat: the [Q, G] distance matrix to rank by, or a dict
            {distance name: [Q, G]} (one set of ranked lists per entry), or
            None (then ``--ranked-list`` ranks by the global Euclidean
            distance).
        dump_path: the dump's file (names the outputs; default ``dump.path``).
        say: optional progress callable taking one line.

    Returns:
        list of one-line messages: the files written and warnings (missing
        images).

    Raises:
        ReportError: a bad flag value for this dump, or a dump lacking what a
            report needs.
    """
    from reference import DistanceCache, normalize_rows

    check_report_arguments(args)
    say = say or (lambda line: None)
    dump_path = os.fspath(dump_path or dump.path)
    check_reports_for_dump(args, dump, dump_path)
    stem = os.path.splitext(os.path.basename(dump_path))[0]
    messages = []
    protocol = getattr(args, "protocol", None) or dump.attrs.get("protocol", "market1501")
    if not reports_requested(args):
        return messages
    out = args.out if args.out is not None else "reports"
    if args.ranked_list is not None or (args.alignment is not None and not _out_is_png(args)):
        os.makedirs(out, exist_ok=True)

    if args.alignment is not None:
        qi, gi = args.alignment
        local_q = dump.query["local"][qi]
        local_g = dump.gallery["local"][gi]
        if _normalize(args):
            local_q, local_g = normalize_rows(local_q), normalize_rows(local_g)
        images = []
        roots = image_roots(args.image_root, dump)
        for split, index in (("query", qi), ("gallery", gi)):
            paths = getattr(dump, split).get("path")
            resolved, why = None, None
            if paths is not None:
                resolved, why = locate_image(paths[index], roots)
            if resolved is None:
                if paths is None:
                    what = "no image paths"
                elif why == "outside":
                    what = f"{paths[index]} leads outside the image root ({', '.join(roots)})"
                else:
                    what = f"{paths[index]} not found"
                messages.append(f"--alignment: {split} {index}: {what}; grey placeholder drawn")
            images.append(resolved)
        q_pid, g_pid = int(dump.query["pid"][qi]), int(dump.gallery["pid"][gi])
        title = (
            f"query {qi} (pid {q_pid}) vs gallery {gi} (pid {g_pid}, "
            f"{'same' if q_pid == g_pid and q_pid != -1 else 'different'} identity)"
        )
        target = out if _out_is_png(args) else os.path.join(out, f"{stem}_align_q{qi}_g{gi}.png")
        info = alignment_figure(images[0], images[1], local_q, local_g, target, title=title)
        messages.append(f"wrote {info['file']} (S = {info['distance']:.4f})")

    if args.ranked_list is not None:
        if distmat is None:
            cache = DistanceCache.from_dump(dump, normalize=_normalize(args))
            distmat = {"global": cache.matrix("global", "query", "gallery")}
        elif not isinstance(distmat, dict):
            distmat = {"distance": distmat}
        queries = sample_queries(dump.num_query, args.num_queries, getattr(args, "seed", 0) or 0)
        for name, mat in distmat.items():
            say(f"ranked lists ({name}): {len(queries)} queries, top {args.ranked_list}")
            pages = ranked_list_figure(
                dump, mat, queries, args.ranked_list, out, protocol=protocol,
                distance_name=name, image_root=args.image_root, prefix=f"{stem}_{name}_",
                warn=lambda m: messages.append(f"--ranked-list: {m}; see --image-root"),
            )
            messages.append(
                f"wrote {len(pages)} ranked list(s) ({name}) to {out}"
                + (f" ({pages[0]['file']}, ...)" if pages else "")
            )

    return messages
