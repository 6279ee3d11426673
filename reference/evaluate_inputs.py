"""The inputs of ``reid-evaluate``: dumps named on the command line, directories
of dumps and training run directories, read and checked before any scoring.

A run directory of ``train.py`` is recognised by its files (``config.json``
beside a ``features/`` folder of ``*.h5`` dumps); its dumps are evaluated in
name order. Any other directory stands for the ``*.h5`` dumps directly inside
it. Outputs that would replace an input, dumps that cannot serve the asked
distances, and report flags a dump cannot serve are found here, before the
first evaluation.
"""

import os
import sys

from reid_common import PROTOCOL_NAMES, STDOUT, UsageError, clashing_input, one_line
from reference import reports
from reference.synthetic import DEMO_FILE

__all__ = [
    "InputError",
    "check_dump",
    "check_dumps",
    "check_outputs",
    "dump_nbytes",
    "expand_inputs",
    "read_checked",
    "run_dir_dumps",
]


class InputError(ValueError):
    """A command-line input that is neither a dump nor a directory of dumps (one line)."""


def _h5_files(directory):
    """The regular ``*.h5`` files directly inside ``directory``, sorted by name."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise InputError(f"{directory}: cannot list the directory ({exc.strerror})") from None
    return [os.path.join(directory, n) for n in names
            if n.lower().endswith(".h5") and os.path.isfile(os.path.join(directory, n))]


def run_dir_dumps(path):
    """The feature dumps of a run directory, or None when ``path`` is not one.

    Args:
        path: a directory.

    Returns:
        sorted list of ``path/features/*.h5`` when ``path`` holds
        ``config.json``, else None.

    Raises:
        InputError: a run directory without feature dumps.

    Example:
        >>> import os, tempfile
        >>> run = tempfile.mkdtemp()
        >>> os.makedirs(os.path.join(run, "features"))
        >>> for name in ("config.json", "features/b.h5", "features/a.h5"):
        ...     open(os.path.join(run, name), "w").close()
        >>> [os.path.relpath(p, run) for p in run_dir_dumps(run)]
        ['features/a.h5', 'features/b.h5']
        >>> run_dir_dumps(tempfile.mkdtemp()) is None
        True
    """
    if not os.path.isfile(os.path.join(path, "config.json")):
        return None
    features = os.path.join(path, "features")
    dumps = _h5_files(features) if os.path.isdir(features) else []
    if not dumps:
        raise InputError(
            f"{path}: a run directory without feature dumps ({features}/*.h5); the run "
            "has not reached its evaluation (see its status.json), or was trained without "
            "test sets"
        )
    return dumps


def expand_inputs(paths):
    """The dump files the command-line inputs stand for, in order.

    Args:
        paths: the positional arguments: dump files, run directories,
            directories of dumps. A path that is not a directory is kept as it
            is (a missing file is reported when it is read).

    Returns:
        list of str.

    Raises:
        InputError: a directory that is neither a run directory nor holds
            ``*.h5`` files.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> open(os.path.join(d, "x.h5"), "w").close()
        >>> [os.path.basename(p) for p in expand_inputs(["a.h5", d])]
        ['a.h5', 'x.h5']
    """
    out = []
    for path in paths:
        path = os.fspath(path)
        if not os.path.isdir(path):
            out.append(path)
            continue
        dumps = run_dir_dumps(path)
        if dumps is None:
            dumps = _h5_files(path)
            if not dumps:
                raise InputError(
                    f"{path}: a directory that is neither a run directory (config.json and "
                    "features/*.h5) nor holds feature dumps (*.h5)"
                )
        out.extend(dumps)
    return out


def dump_nbytes(dump):
    """Bytes held by the feature arrays of a :class:`reference.FeatureDump`.

    Example:
        >>> import numpy as np
        >>> from types import SimpleNamespace
        >>> split = {"global": np.zeros((2, 4), np.float32), "local": None}
        >>> dump_nbytes(SimpleNamespace(query=split, gallery=split))
        64
    """
    return sum(getattr(v, "nbytes", 0) for split in (dump.query, dump.gallery)
               for v in split.values())


def check_outputs(args):
    """Refuse an output file that is an input dump or another output (before any work)."""
    inputs = list(args.dumps)
    if args.demo is not None:
        demo = os.path.join(args.demo, DEMO_FILE)
        clash = clashing_input(demo, inputs)
        if clash is not None:
            raise UsageError(f"--demo: {demo} would replace the input dump {clash}")
        inputs.append(demo)
    outputs = [(flag, getattr(args, flag)) for flag in ("json", "csv", "plot")]
    if args.out is not None and args.out.lower().endswith(".png"):
        outputs.append(("out", args.out))
    seen = []
    for flag, path in outputs:
        if path is None or (flag == "json" and path == STDOUT):
            continue
        clash = clashing_input(path, inputs)
        if clash is not None:
            raise UsageError(f"--{flag}: {path} is the input dump {clash}; writing it would "
                             "replace the dump")
        for other_flag, other in seen:
            if clashing_input(path, [other]) is not None:
                raise UsageError(f"--{flag}: {path} is also the --{other_flag} output")
        seen.append((flag, path))


def check_dump(dump, args):
    """Raise DumpError when the dump cannot serve the requested evaluations."""
    from reference import DumpError

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
    if protocol not in PROTOCOL_NAMES:
        raise DumpError(
            dump.path,
            "/",
            f"unknown protocol {protocol!r} (use --protocol; one of {', '.join(PROTOCOL_NAMES)})",
        )
    if protocol == "cuhk-sysu" and dump.gallery_lists is None:
        raise DumpError(
            dump.path,
            "protocol/gallery_offsets",
            "missing; protocol cuhk-sysu needs the per-query gallery lists",
        )


def read_checked(path, args):
    """Read one dump and check it against every flag; DumpError for a bad dump,
    UsageError for a report flag the dump cannot serve."""
    from reference import read_dump

    dump = read_dump(path)
    check_dump(dump, args)
    try:
        reports.check_reports_for_dump(args, dump, path)
    except reports.ReportError as exc:
        raise UsageError(str(exc)) from None
    return dump


def check_dumps(dumps, args, progress, *, prog, keep_bytes):
    """Read and check every dump before any scoring (:func:`read_checked`).

    A missing or bad dump is reported on stderr as one line and skipped; a
    report flag a dump cannot serve raises ``UsageError``.

    Args:
        dumps: dump paths (:func:`expand_inputs`).
        args: the parsed arguments of ``reid-evaluate``.
        progress: a :class:`reid_common.Reporter`.
        prog: program name of the error lines.
        keep_bytes: feature bytes kept in memory for the scoring that follows.

    Returns:
        ``(checked, failed)``: a list of ``(path, dump or None)`` (the dumps
        are kept while they fit in ``keep_bytes``, later ones are read again
        when their turn comes) and the number of bad dumps reported.
    """
    from reference import DumpError

    checked, failed, kept = [], 0, 0
    for path in dumps:
        if not os.path.isfile(path):
            why = "is a directory" if os.path.isdir(path) else "no such file"
            print(f"{prog}: error: {path}: /: {why}", file=sys.stderr)
            failed += 1
            continue
        progress.prefix = f"{path}: "
        progress.say("reading")
        try:
            dump = read_checked(path, args)
        except UsageError:
            raise
        except DumpError as exc:
            print(f"{prog}: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        except (ValueError, TypeError) as exc:
            print(f"{prog}: error: {path}: /: {one_line(exc)}", file=sys.stderr)
            failed += 1
            continue
        kept += dump_nbytes(dump)
        checked.append((path, dump if kept <= keep_bytes else None))
    progress.prefix = ""
    return checked, failed
