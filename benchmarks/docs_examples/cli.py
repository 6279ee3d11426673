"""``python -m benchmarks.docs_examples [NAME ...] [--all] [--check]``.

Runs the generators of the named blocks (default: the cheap ones; ``--all``:
every one, ``python train.py`` included) and rewrites those blocks in
README.md and docs/*.md, each file written atomically. ``--check`` writes
nothing and exits 1 when a document differs from the generated output (run
times and run-directory timestamps masked).
"""

import difflib
import sys

from benchmarks.docs_examples.blocks import BlockError, documented_files, find_blocks, \
    replace_blocks
from benchmarks.docs_examples.examples import EXAMPLES, ROOT
from reid_common import ArgumentParser, Reporter, UsageError, add_version_argument, \
    atomic_write_text, run_main

PROG = "python -m benchmarks.docs_examples"


def build_parser():
    """The command-line parser.

    Example:
        >>> build_parser().parse_args(["--check", "evaluate-demo"]).names
        ['evaluate-demo']
    """
    listing = "; ".join(f"{e.name}: {e.command}{'' if e.cheap else ' (slow)'}"
                        for e in EXAMPLES.values())
    parser = ArgumentParser(
        prog=PROG,
        description="Run the commands whose output README.md and docs/*.md show and "
                    "rewrite the blocks between '<!-- regen: NAME -->' and '<!-- /regen -->'. "
                    f"Blocks: {listing}.",
        epilog="Exit status: 0 done (--check: documents match), 1 --check found a "
               "difference, 2 usage error.")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="blocks to regenerate (default: every cheap one)")
    parser.add_argument("--all", action="store_true",
                        help="every block, the slow ones (a default training run) included")
    parser.add_argument("--check", action="store_true",
                        help="compare only: print the differences, write nothing")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress on stderr (errors and warnings only)")
    add_version_argument(parser)
    return parser


def documented(root=ROOT):
    """Every regenerated block of the documents: ``{path: [(name, body), ...]}``.

    Raises:
        UsageError: a malformed marker or a block of an unknown name.
    """
    out = {}
    for path in documented_files(root):
        try:
            blocks = find_blocks(path.read_text(encoding="utf-8"), str(path))
        except BlockError as exc:
            raise UsageError(str(exc)) from None
        for name, _ in blocks:
            if name not in EXAMPLES:
                raise UsageError(f"{path}: unknown block {name!r} (known: "
                                 f"{', '.join(EXAMPLES)})")
        if blocks:
            out[path] = blocks
    return out


def differences(name, body, documents):
    """Unified diffs (masked) between ``body`` and each document block ``name``."""
    example = EXAMPLES[name]
    want = example.mask(body).splitlines()
    out = []
    for path, blocks in documents.items():
        for block_name, text in blocks:
            if block_name == name and example.mask(text) != example.mask(body):
                out.append("\n".join(difflib.unified_diff(
                    example.mask(text).splitlines(), want, f"{path} ({name})",
                    "generated", lineterm="")))
    return out


def _main(argv):
    args = build_parser().parse_args(argv)
    unknown = [n for n in args.names if n not in EXAMPLES]
    if unknown:
        raise UsageError(f"NAME: unknown block {unknown[0]!r} (known: {', '.join(EXAMPLES)})")
    names = args.names or [n for n, e in EXAMPLES.items() if e.cheap or args.all]
    say = Reporter(PROG, enabled=not args.quiet).say
    documents = documented()
    bodies, failed = {}, 0
    for name in names:
        say(f"{name}: running {EXAMPLES[name].command}")
        bodies[name] = EXAMPLES[name].generate()
        for diff in differences(name, bodies[name], documents):
            failed += 1
            if args.check:
                print(diff)
    if args.check:
        say("documents match" if not failed else f"{failed} block(s) differ")
        return 1 if failed else 0
    for path in documents:
        text = path.read_text(encoding="utf-8")
        new = replace_blocks(text, bodies)
        if new != text:
            atomic_write_text(path, new)
            say(f"wrote {path.relative_to(ROOT)}")
    return 0


def main(argv=None):
    """``python -m benchmarks.docs_examples``; returns the exit status."""
    return run_main(PROG, _main, argv, failures=(RuntimeError,))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
