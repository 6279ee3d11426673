"""Every flag of every command-line tool, read from the tools' own parsers.

:func:`flag_inventory` builds each tool's ``argparse`` parser (no TensorFlow
is imported) and lists which tools take which flag; :func:`inventory_table`
renders docs/cli.md's table, concept -> flag -> tools. :data:`CONCEPTS` names
the concept of every flag that more than one tool takes: one flag per concept
is the rule, and ``tests/test_cli_conventions.py`` checks it.
"""

import argparse
from collections import defaultdict


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def tool_parsers():
    """``(tool, parser)`` for every tool and subcommand, in a fixed order.

    Returns:
        list of (str, ``argparse.ArgumentParser``).
    """
    from benchmarks.ablation.cli import build_parser as ablation_parser
    from data_prep.cli import REGISTRY
    from data_prep.cli import build_parser as prep_parser
    from human_study.cli import build_parser as human_parser
    from reference.evaluate_cli import build_parser as evaluate_parser
    from reid_tf.export_cli import build_parser as export_parser
    from reid_tf.extract_cli import build_parser as extract_parser
    from reid_tf.gradcheck.cli import build_parser as gradcheck_parser
    from reid_tf.search_cli import build_parser as search_parser
    from reid_tf.train_cli import build_parser as train_parser

    out = [("train.py", train_parser()), ("reid-prep", prep_parser()),
           ("reid-human", human_parser()), ("reid-extract", extract_parser()),
           ("reid-search", search_parser()), ("reid-export", export_parser()),
           ("reid-evaluate", evaluate_parser()), ("reid-gradcheck", gradcheck_parser())]
    for name in REGISTRY:
        out.append((f"reid-prep {name}", _subparsers(prep_parser(name))[name]))
    for name, sub in _subparsers(human_parser()).items():
        out.append((f"reid-human {name}", sub))
    out.append(("benchmarks.ablation", ablation_parser()))
    return out


def parser_flags(parser):
    """The long flags ``parser`` shows in ``--help`` (``--help`` itself left out).

    Returns:
        list of str, in the parser's order.
    """
    flags = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        flags += [s for s in action.option_strings if s.startswith("--")]
    return flags


def flag_inventory():
    """Which tools take which flag, and the deprecated spellings.

    Returns:
        ``(flags, deprecated)``: ``flags`` maps each flag to the list of
        tools taking it; ``deprecated`` maps each old spelling to
        ``(new flag, tools)``.
    """
    flags, deprecated = defaultdict(list), {}
    for tool, parser in tool_parsers():
        for flag in parser_flags(parser):
            flags[flag].append(tool)
        for old, new in getattr(parser, "_deprecated", {}).items():
            deprecated.setdefault(old, (new, []))[1].append(tool)
    return dict(flags), deprecated


#: The concept of every flag that several tools take (one flag per concept).
CONCEPTS = {
    "--version": "print the version and exit",
    "--json": "machine-readable result: JSON to PATH, '-' for stdout",
    "--quiet": "no progress on stderr (errors and warnings only)",
    "--seed": "seed of the tool's random draws",
    "--out": "the tool's main output (file or folder)",
    "--data": "prepared dataset(s) (manifest.jsonl or its folder)",
    "--model": "trained model file (RUN/model.keras)",
    "--cache-dir": "cache folder (default $ALIGNEDREID_CACHE or ~/.cache/alignedreid)",
    "--normalize-features": "L2-normalise global and local features before distances",
    "--extract-batch-size": "images per feature-extraction batch",
    "--distance": "ranking distance (global, local, global+local)",
    "--shortlist": "local term only for the K nearest by global distance",
    "--rerank": "k-reciprocal re-ranking",
    "--k1": "re-ranking k1 (k-reciprocal neighbourhood size)",
    "--k2": "re-ranking k2 (query-expansion neighbours)",
    "--lambda": "re-ranking weight of the original distance",
    "--image-root": "folder the dump's relative image paths resolve against",
    "--queries": "number of queries drawn",
    "--no-local": "without the local branch / local features",
    "--quick": "a short version of the run",
    "--plot": "PNG figure of the results",
    "--mode": "how images reach the prepared folder (link or copy)",
    "--overwrite": "replace existing output",
    "--host": "server address",
    "--port": "server port",
    "--image-size": "network input height and width",
    "--backbone": "backbone network",
    "--P": "identities per training batch",
    "--K": "images per identity in a training batch",
    "--epochs": "training epochs",
    "--steps-per-epoch": "training batches per epoch",
    "--lr": "initial learning rate",
    "--global-margin": "TriHard margin of the global distance",
    "--local-margin": "TriHard margin of the local distance",
    "--mutual-kl-weight": "weight of the KL (classification) mutual loss",
    "--mutual-metric-weight": "weight of the metric mutual loss",
    "--synthetic-identities": "synthetic dataset: identities",
    "--synthetic-images": "synthetic dataset: images per identity",
    "--synthetic-cameras": "synthetic dataset: cameras",
    "--synthetic-seed": "synthetic dataset: generator seed",
    "--vertical-shift": "synthetic generator: box misalignment (vertical)",
    "--scale-jitter": "synthetic generator: box misalignment (scale)",
}

#: Flags that two tools use for different things (to be renamed in one of them).
CLASHES = {}

#: Concepts that keep two spellings, and why.
SPELLING_EXCEPTIONS = {
    "--num-identities": "--synthetic-identities",
    "--images-per-identity": "--synthetic-images",
    "--num-cameras": "--synthetic-cameras",
}
EXCEPTION_NOTE = (
    "`reid-prep synthetic`'s flags are the generator's parameters (`SyntheticConfig` "
    "fields, also what `benchmarks.ablation --knob NAME=VALUE` takes): `--num-identities`, "
    "`--images-per-identity`, `--num-cameras` and `--seed` there are "
    "`--synthetic-identities`, `--synthetic-images`, `--synthetic-cameras` and "
    "`--synthetic-seed` in `train.py` and the ablation, where other data settings "
    "sit beside them.")


def _tools(names):
    """Tool names with the subcommands of one tool grouped: ``reid-prep {a, b}``."""
    groups = defaultdict(list)
    for name in names:
        tool, _, sub = name.partition(" ")
        groups[tool].append(sub)
    parts = []
    for tool, subs in groups.items():
        subs = [s for s in subs if s]
        parts.append(f"{tool} {{{', '.join(subs)}}}" if subs else tool)
    return ", ".join(parts)


def inventory_table():
    """docs/cli.md's tables (Markdown): shared flags, one-tool flags, deprecated spellings.

    Returns:
        str.
    """
    flags, deprecated = flag_inventory()
    shared = sorted((f for f, t in flags.items() if len({x.split()[0] for x in t}) > 1
                     or f in CONCEPTS), key=lambda f: (CONCEPTS.get(f, "~").lower(), f))
    lines = ["| concept | flag | tools |", "|---|---|---|"]
    for flag in shared:
        concept = CONCEPTS.get(flag) or ("two meanings: " + CLASHES[flag] if flag in CLASHES
                                         else "(no concept named)")
        lines.append(f"| {concept} | `{flag}` | {_tools(flags[flag])} |")
    lines += ["", "Flags of one tool only:", "", "| tool | flags |", "|---|---|"]
    by_tool = defaultdict(list)
    for flag, tools in flags.items():
        if flag not in shared:
            by_tool[_tools(tools)].append(f"`{flag}`")
    for tool in sorted(by_tool):
        lines.append(f"| {tool} | {' '.join(by_tool[tool])} |")
    lines += ["", "Former spellings (hidden from `--help`; they still work and print one "
              "deprecation line on stderr):", "", "| former | now | tools |", "|---|---|---|"]
    for old in sorted(deprecated):
        new, tools = deprecated[old]
        lines.append(f"| `{old}` | `{new}` | {_tools(tools)} |")
    return "\n".join(lines)
