"""Command-line plumbing shared by every tool: one-line errors and exit codes.

Every tool reports a user's mistake as ``prog: error: message`` on one line
with exit status 2 and no traceback, an interruption with status 130, and
prints its version with ``--version``. A renamed flag keeps its old spelling
as a hidden alias that prints one deprecation line
(:meth:`ArgumentParser.add_deprecated_alias`); ``--json PATH`` is added,
checked and written the same way by every tool (:func:`add_json_argument`,
:func:`check_json_path`, :func:`write_json_result`).
"""

import argparse
import json
import os
import sys

from reid_common.atomic import atomic_write_json, clashing_input

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DISTRIBUTION = "alignedreid"
#: The ``--json`` value that means standard output.
STDOUT = "-"


class UsageError(ValueError):
    """A user's mistake (bad flag, bad path, bad input file): one line, exit status 2.

    The message starts with the argument or file it concerns.
    """


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose errors raise :class:`UsageError`.

    :func:`run_main` turns that into one line on stderr and exit status 2.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._deprecated = {}

    def add_deprecated_alias(self, old, new):
        """Accept ``old``, the former spelling of flag ``new``, hidden from ``--help``.

        Using it prints one line, ``prog: warning: OLD is deprecated; use NEW``,
        on stderr and then behaves exactly as ``new`` (``OLD=VALUE`` too).

        Example:
            >>> p = ArgumentParser(prog="tool")
            >>> _ = p.add_argument("--normalize-features", action="store_true")
            >>> p.add_deprecated_alias("--normalize", "--normalize-features")
            >>> import contextlib, io
            >>> with contextlib.redirect_stderr(io.StringIO()) as err:
            ...     ns = p.parse_args(["--normalize"])
            >>> ns.normalize_features, err.getvalue()
            (True, 'tool: warning: --normalize is deprecated; use --normalize-features\\n')
        """
        self._deprecated[old] = new

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        if self._deprecated:
            args = self._replace_deprecated(args)
        return super().parse_known_args(args, namespace)

    def _replace_deprecated(self, args):
        out, warned = [], set()
        for i, token in enumerate(args):
            if token == "--":
                return out + args[i:]
            name, eq, value = token.partition("=")
            new = self._deprecated.get(name) if token.startswith("--") else None
            if new is None:
                out.append(token)
                continue
            if name not in warned:
                warned.add(name)
                print(f"{self.prog}: warning: {name} is deprecated; use {new}", file=sys.stderr)
            out.append(new + eq + value)
        return out

    def error(self, message):
        if "--json: expected one argument" in message:
            message += " (PATH, or '-' for standard output)"
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


def add_json_argument(parser, what="the result"):
    """Add ``--json PATH`` to ``parser``: ``what`` as JSON, written atomically.

    ``--json -`` prints the JSON on one line on stdout instead of the text
    output (progress stays on stderr).

    Example:
        >>> p = ArgumentParser(prog="tool")
        >>> _ = add_json_argument(p)
        >>> p.parse_args(["--json", "-"]).json
        '-'
    """
    return parser.add_argument(
        "--json", metavar="PATH", default=None,
        help=f"write {what} as JSON to PATH (written to a temporary file, then renamed); "
             "'-': print it on stdout instead of the text output")


def check_json_path(path, inputs=(), flag="--json"):
    """Refuse (:class:`UsageError`) a JSON output that cannot be written or is an input.

    Args:
        path: the ``--json`` value (None or ``-``: nothing to check).
        inputs: paths the tool reads (None and empty entries are skipped), or a dict
            from a description (``"the --dump input"``) to the path.
        flag: the flag named in the message.

    Example:
        >>> check_json_path("in.h5", ["in.h5"])
        Traceback (most recent call last):
        ...
        reid_common.cli.UsageError: --json: in.h5 is also an input (in.h5)
    """
    if path is None or path == STDOUT:
        return
    if os.path.isdir(path):
        raise UsageError(f"{flag}: {path} is a directory")
    named = inputs.items() if isinstance(inputs, dict) else (("an input", p) for p in inputs)
    for label, item in named:
        if item and clashing_input(path, [os.fspath(item)]) is not None:
            raise UsageError(f"{flag}: {path} is also {label} ({os.fspath(item)})")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{flag}: directory {parent} does not exist")


def write_json_result(path, payload, *, sort_keys=True):
    """Write ``payload`` to the ``--json`` target: stdout for ``-``, else atomically.

    Returns:
        the path written, or None for stdout.
    """
    if path == STDOUT:
        print(json.dumps(payload, sort_keys=sort_keys), flush=True)
        return None
    return atomic_write_json(path, payload, sort_keys=sort_keys)


def emit_result(target, text, payload, *, sort_keys=True):
    """A tool's result: ``text`` on stdout unless the ``--json`` target is
    stdout, then ``payload`` to the target when one is given.

    Example:
        >>> emit_result(None, "2 images", {"images": 2})
        2 images
        >>> emit_result("-", "2 images", {"images": 2})
        {"images": 2}
    """
    if target != STDOUT:
        print(text)
    if target is not None:
        write_json_result(target, payload, sort_keys=sort_keys)


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
