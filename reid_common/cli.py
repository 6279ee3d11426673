"""Command-line plumbing shared by every tool: one-line errors and exit codes.

Every tool reports a user's mistake as ``prog: error: message`` on one line
with exit status 2 and no traceback, an interruption with status 130, and
prints its version with ``--version``.
"""

import argparse
import sys

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DISTRIBUTION = "alignedreid"


class UsageError(ValueError):
    """A user's mistake (bad flag, bad path, bad input file): one line, exit status 2.

    The message starts with the argument or file it concerns.
    """


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose errors raise :class:`UsageError`.

    :func:`run_main` turns that into one line on stderr and exit status 2.
    """

    def error(self, message):
        raise UsageError(f"{message} (see --help)")


def one_line(exc):
    """An exception's message on one line."""
    return " ".join(str(exc).split())


def package_version():
    """The installed version of the project (``unknown`` when not installed)."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return "unknown"
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def add_version_argument(parser):
    """Add ``--version`` (prints ``prog alignedreid VERSION`` and exits 0) to ``parser``."""
    parser.add_argument(
        "--version", action="version",
        version=f"%(prog)s ({DISTRIBUTION} {package_version()})",
        help="print the version and exit")
    return parser


def run_main(prog, body, argv=None, *, usage_errors=(), failures=()):
    """Run ``body(argv)`` and map what it raises to an exit status.

    Args:
        prog: the program name put before error lines.
        body: callable taking ``argv`` and returning an exit status (None means 0).
        argv: argument list (default ``sys.argv[1:]``).
        usage_errors: exception types reported as a user's mistake (exit 2),
            besides :class:`UsageError`.
        failures: exception types reported on one line with exit status 1
            (a run that failed, not a bad input).

    Returns:
        int exit status: 0, 1, 2 or 130 (``--help``/``--version``: 0).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        status = body(argv)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return EXIT_OK
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, *usage_errors) as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except tuple(failures) as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if status is None else int(status)
