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
130 interrupted by Ctrl-C, 143 stopped by SIGTERM (in both cases
``status.json`` says ``interrupted`` and the same command, run again in the
same directory, resumes the run: see :mod:`reid_tf.resumption`).
"""

import argparse
import dataclasses
import json
import os
import signal
import sys

from reid_common import (
    EXIT_INTERRUPTED,
    ArgumentParser,
    UsageError,
    add_version_argument,
    run_main,
)
from reid_tf.config import ConfigError, SettingError, TrainConfig
from reid_tf.resumption import (
    Terminated,
    TrainingInterrupted,
    describe_checkpoint,
    stop_on_sigterm,
)
from reid_tf.run_dir import RunDirError
from reid_tf.tf_startup import DEFAULT_LOG_LEVEL

PROG = "train.py"
EXIT_TERMINATED = 128 + signal.SIGTERM


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
        epilog="Without --run-dir, the newest interrupted run under runs/ with the same "
               "settings is resumed (a finished or failed one never is: a new run starts). "
               "Exit status: 0 done, 1 training failed (non-finite loss), 2 usage error, "
               "130 interrupted (Ctrl-C), 143 stopped by SIGTERM. "
               "See docs/training.md for the paper's recipes.",
        argument_default=argparse.SUPPRESS,
    )
    defaults = TrainConfig()
    groups = {}
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
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
        for when in ("before", "after"):
            for m in d.get(when, {}).values():
                m.pop("cmc", None)
    return out


def interruption_message(exc, cfg):
    """The line printed when training is interrupted: what was kept, and
    the command that continues.

    Args:
        exc: the ``KeyboardInterrupt`` (a
            :class:`reid_tf.resumption.TrainingInterrupted` once the run
            directory is open).
        cfg: the command's ``TrainConfig``.

    Returns:
        str.

    Example:
        >>> from reid_tf.resumption import TrainingInterrupted
        >>> exc = TrainingInterrupted("runs/x", {"epoch": 0, "step": 2, "global_step": 2},
        ...                           "Ctrl-C")
        >>> print(interruption_message(exc, TrainConfig(overwrite=True)))
        train.py: interrupted (Ctrl-C); runs/x keeps its checkpoint at epoch 1, step 2 (global step 2): run the same command without --overwrite, in this directory, to continue from there
    """
    if not isinstance(exc, TrainingInterrupted):
        # before the run directory was opened, or a non-chief worker (the
        # chief's directory holds the run)
        return f"{PROG}: interrupted (no run directory of this process records it)"
    dropped = [flag for flag, on in (("--overwrite", cfg.overwrite),
                                     ("--new-run", cfg.new_run)) if on]
    command = "the same command" + (f" without {' and '.join(dropped)}," if dropped
                                    else " again,")
    if exc.checkpoint:
        kept = f"keeps its checkpoint at {describe_checkpoint(exc.checkpoint)}"
        where = "continue from there"
    else:
        kept = "has no checkpoint yet"
        where = "start it over in the same directory"
    return (f"{PROG}: interrupted ({exc.reason}); {exc.run_dir} {kept}: run {command} "
            f"in this directory, to {where}")


def main(argv=None, *, callbacks=()):
    """``train.py`` / ``reid-train``.

    Args:
        argv: argument list (default ``sys.argv[1:]``).
        callbacks: extra ``keras.callbacks.Callback`` objects passed to
            :func:`reid_tf.engine.run_training` (for a program that runs
            ``train.py`` in-process).

    Returns:
        Exit status (0 done, 1 training failed, 2 usage error, 130 interrupted,
        143 stopped by SIGTERM).

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
            with stop_on_sigterm():
                summary = run_training(cfg, log=EventLog(quiet=cfg.quiet),
                                       callbacks=callbacks)
        except SettingError as exc:
            raise UsageError(exc.for_cli()) from None
        except TrainingFailed as exc:
            raise TrainingFailed("{message}", message=exc.for_cli()) from None
        except KeyboardInterrupt as exc:
            print(interruption_message(exc, cfg), file=sys.stderr)
            sigterm = isinstance(exc, Terminated) or getattr(exc, "reason", "") == "SIGTERM"
            return EXIT_TERMINATED if sigterm else EXIT_INTERRUPTED
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
