"""``reid-prep`` / ``python -m data_prep``: prepare datasets by name.

Usage::

    reid-prep market1501 SRC DST [--mode link|copy] [--json PATH] [--quiet]
    reid-prep duke       SRC DST
    reid-prep msmt17     SRC DST [--exclude-val]
    reid-prep cuhk03     SRC DST [--images labeled|detected] [--split paper|classic|new] ...
    reid-prep cuhk-sysu  SRC DST [--gallery-size 50|100|500|1000|2000|4000]
    reid-prep combine    DST PREPARED [PREPARED ...]
    reid-prep synthetic  DST [options]

Each name maps to a module exposing ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their command runs.
User errors print one line and exit with status 2; ``--version`` prints the
version.
"""

import importlib
import sys

from reid_common import ArgumentParser, UsageError, add_version_argument, check_json_path, \
    run_main

from ._io import PrepError
from .manifest import ManifestError

PROG = "reid-prep"

# name -> (module, one-line description)
REGISTRY = {
    "market1501": ("data_prep.market1501", "Market-1501 (bounding_box_train/, bounding_box_test/, query/)"),
    "duke": ("data_prep.market1501", "DukeMTMC-reID (same layout as Market-1501)"),
    "msmt17": ("data_prep.msmt17", "MSMT17 V1 (train/, test/, list_*.txt)"),
    "cuhk03": ("data_prep.cuhk03", "CUHK03 from cuhk-03.mat (paper, classic or 767/700 split)"),
    "cuhk-sysu": ("data_prep.cuhk_sysu", "CUHK-SYSU scenes cropped to a re-id task (TestG galleries)"),
    "combine": ("data_prep.combine", "merge the train splits of prepared datasets"),
    "synthetic": ("data_prep.synthetic", "generate the synthetic misalignment dataset"),
}


def get_converter(name):
    """The module registered under ``name`` (imported on first use).

    Example:
        >>> get_converter("msmt17").__name__
        'data_prep.msmt17'
    """
    if name not in REGISTRY:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name][0])


def build_parser(command=None):
    """The argument parser; only ``command``'s module is imported and asked
    for its arguments (the others are listed with their description)."""
    parser = ArgumentParser(
        prog=PROG,
        description="Convert a distributed re-identification dataset into the prepared "
                    "manifest format (DST/manifest.jsonl + DST/dataset.json + DST/images/), "
                    "merge prepared training sets, or generate the synthetic dataset.",
        epilog="Exit status: 0 done, 2 usage error (one line on stderr), 130 interrupted.")
    add_version_argument(parser)
    sub = parser.add_subparsers(dest="command", metavar="NAME", required=True)
    for name, (_, help_text) in REGISTRY.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            get_converter(name).add_arguments(p)
    return parser


def _body(argv):
    command = next((a for a in argv if not a.startswith("-")), None)
    if command is not None and command not in REGISTRY:
        command = None
    try:
        parser = build_parser(command)
    except ImportError as exc:
        raise UsageError(f"{command}: not available ({exc})") from None
    args = parser.parse_args(argv)
    inputs = [getattr(args, "src", None), getattr(args, "dst", None),
              *(getattr(args, "prepared", None) or ()),
              getattr(args, "new_protocol", None), getattr(args, "contact_sheet", None)]
    check_json_path(args.json, inputs)
    try:
        return int(get_converter(args.command).run(args) or 0)
    except OSError as exc:
        where = exc.filename if exc.filename is not None else args.command
        raise UsageError(f"{where}: {exc.strerror or exc}") from None


def main(argv=None):
    """Entry point of ``reid-prep``.

    Args:
        argv: arguments without the program name (default: sys.argv[1:]).

    Returns:
        0 on success, 2 on a user error (message on one line), 130 when
        interrupted.

    Example:
        >>> main(["msmt17", "/nonexistent/MSMT17_V1", "/nonexistent/out"])
        2
    """
    return run_main(PROG, _body, argv, usage_errors=(PrepError, ManifestError))


if __name__ == "__main__":
    sys.exit(main())
