"""``train.py`` / ``reid-train``: the command line of the training engine.

With no arguments it prepares the built-in synthetic dataset (cached), trains
the ``tiny`` backbone on CPU for a few minutes and prints the before/after
evaluation table. ``--help`` lists every setting; docs/training.md gives the
paper's recipes.

This module parses the flags (generated from :class:`reid_tf.config.TrainConfig`),
calls :func:`reid_tf.engine.run_training` and prints; the engine and its
parts live in :mod:`reid_tf.engine`, :mod:`reid_tf.fit_loop`,
:mod:`reid_tf.train_data`, :mod:`reid_tf.strategy`,
:mod:`reid_tf.checkpoint`, :mod:`reid_tf.callbacks` and
:mod:`reid_tf.run_dir`.

Exit status: 0 success, 1 training failed (non-finite loss), 2 usage error,
130 interrupted (Ctrl-C; the run can be resumed).
"""

import argparse
import dataclasses
import json
import os
import sys

from reid_common import (
    EXIT_INTERRUPTED,
    ArgumentParser,
    UsageError,
    add_version_argument,
    run_main,
)
from reid_tf.config import ConfigError, SettingError, TrainConfig
from reid_tf.run_dir import RunDirError
from reid_tf.tf_startup import DEFAULT_LOG_LEVEL

PROG = "train.py"


_GROUP_TITLES = {
    "data": "data",
    "model": "model",
    "loss": "loss (AlignedReID: TriHard global + local, ID)",
    "optimisation": "optimisation (Adam, piecewise-constant learning rate)",
    "mutual": "mutual learning",
    "performance": "performance and distribution",
    "evaluation": "evaluation",
    "output": "output, checkpoints and resumption",
}

_ELEMENT_TYPES = {"image_size": int, "lr_milestones": int, "lr_values": float, "data": str}


def build_parser(prog="train.py"):
    """The ``train.py`` parser, generated from :class:`TrainConfig`.

    Every flag's default is ``argparse.SUPPRESS`` so that unset flags keep
    the dataclass default (the one place where defaults live).

    Args:
        prog: program name in messages.

    Returns:
        ``argparse.ArgumentParser``.

    Example:
        >>> ns = build_parser().parse_args(["--epochs", "3"])
        >>> ns.epochs
        3
    """
    parser = ArgumentParser(
        prog=prog,
        description=(
            "Train AlignedReID (global + aligned local TriHard losses and an ID loss) "
            "and evaluate it. Without arguments: prepare the synthetic dataset, train "
            "the tiny backbone on CPU and print a before/after table."
        ),
        epilog="Exit status: 0 done, 1 training failed (non-finite loss), 2 usage error, "
               "130 interrupted. "
               "See docs/training.md for the paper's recipes.",
        argument_default=argparse.SUPPRESS,
    )
    defaults = TrainConfig()
    groups = {}
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        if meta["flag"] is None:  # derived from the other settings
            continue
        group = groups.get(meta["group"])
        if group is None:
            group = groups[meta["group"]] = parser.add_argument_group(
                _GROUP_TITLES.get(meta["group"], meta["group"]))
        default = getattr(defaults, f.name)
        kwargs = {"dest": f.name}
        help_text = meta["help"]
        if meta["action"]:
            kwargs["action"] = meta["action"]
        else:
            kind = _ELEMENT_TYPES.get(f.name)
            if kind is None:
                kind = type(default) if default is not None else str
                if f.name in ("lr",):
                    kind = float
            kwargs["type"] = kind
            if meta["nargs"] is not None:
                kwargs["nargs"] = meta["nargs"]
            if meta["choices"] is not None:
                kwargs["choices"] = meta["choices"]
            if meta.get("const") is not None:
                kwargs["const"] = meta["const"]
            if meta["metavar"] is not None:
                kwargs["metavar"] = meta["metavar"]
            if default not in (None, []):
                shown = " ".join(map(str, default)) if isinstance(default, list) else default
                help_text += f" (default: {shown})"
        kwargs["help"] = help_text.replace("%", "%%")
        group.add_argument(meta["flag"], **kwargs)
    add_version_argument(parser)
    return parser


def parse_config(argv=None):
    """Parses ``train.py`` arguments into a resolved :class:`TrainConfig`.

    Args:
        argv: argument list (default ``sys.argv[1:]``).

    Returns:
        ``TrainConfig`` (resolved).

    Raises:
        UsageError: a malformed argument.
        ConfigError: an invalid setting (the message names its flag).

    Example:
        >>> parse_config(["--epochs", "1"]).epochs
        1
    """
    ns = build_parser().parse_args(argv)
    return TrainConfig(**vars(ns)).resolved()


def _compact(summary):
    out = dict(summary)
    out.pop("table", None)
    for d in out.get("datasets", {}).values():
        for net in (d, d.get("peer", {})):
            for when in ("before", "after"):
                for m in net.get(when, {}).values():
                    m.pop("cmc", None)
    return out


def main(argv=None, *, callbacks=()):
    """``train.py`` / ``reid-train``.

    Args:
        argv: argument list (default ``sys.argv[1:]``).
        callbacks: extra ``keras.callbacks.Callback`` objects passed to
            :func:`reid_tf.engine.run_training` (for a program that runs
            ``train.py`` in-process).

    Returns:
        Exit status (0 done, 1 training failed, 2 usage error, 130 interrupted).

    Example:
        >>> main(["--K", "1"])
        2
    """
    from reid_tf.fit_loop import TrainingFailed

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_LOG_LEVEL)

    def body(args):
        cfg = parse_config(args)
        from reid_tf.engine import run_training
        from reid_tf.event_log import EventLog

        try:
            summary = run_training(cfg, log=EventLog(quiet=cfg.quiet), callbacks=callbacks)
        except SettingError as exc:
            raise UsageError(exc.for_cli()) from None
        except TrainingFailed as exc:
            raise TrainingFailed("{message}", message=exc.for_cli()) from None
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted; run the same command again to resume from the "
                  "last checkpoint", file=sys.stderr)
            return EXIT_INTERRUPTED
        if summary.get("worker"):
            return 0
        if cfg.json:
            print(json.dumps(_compact(summary), sort_keys=True))
        else:
            print(summary["table"])
            print(f"\nrun directory: {summary['run_dir']} "
                  f"(training {summary['train_seconds']:.0f} s, "
                  f"total {summary['total_seconds']:.0f} s)")
        return 0

    return run_main(PROG, body, argv, usage_errors=(ConfigError, RunDirError),
                    failures=(TrainingFailed,))
