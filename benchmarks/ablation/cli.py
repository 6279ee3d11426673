"""``python -m benchmarks.ablation``: options, settings from them, the run and its outputs."""

import argparse
import dataclasses
import math
import os
import re
import sys
from pathlib import Path

from data_prep.synthetic import SyntheticConfig
from reid_common import STDOUT, ArgumentParser, Reporter, UsageError, add_json_argument, \
    add_version_argument, atomic_write_text, check_json_path, run_main, write_json_result
from reid_tf.config import ConfigError

from .figure import plot
from .history import history_entry, merge_history, read_analysis, read_history
from .report import dataset_info, format_comparisons, format_table, render_doc, to_json
from .runner import run_benchmark
from .settings import BY_KEY, VARIANT_KEYS, Settings
from .stats import aggregate, compare

PROG = "ablation"

QUICK = {"epochs": 3, "steps_per_epoch": 25, "decay_epoch": 2}


def build_parser():
    """The command-line parser.

    Returns:
        ``reid_common.ArgumentParser`` (errors raise ``UsageError``).

    Example:
        >>> build_parser().parse_args(["--quick"]).quick
        True
    """
    d = Settings()
    p = ArgumentParser(
        prog="python -m benchmarks.ablation",
        description="Reproduce the AlignedReID paper's ablations (Table 1: Baseline, "
                    "GL-Baseline, AlignedReID; Table 2: mutual learning MC / MM) on the "
                    "synthetic misalignment dataset with train.py, and write docs/ablation.md "
                    "and docs/ablation.png.",
        epilog="Exit status: 0 done (also when some runs failed: they are listed), "
               "2 usage error, 130 interrupted (run the same command again to resume).")
    add_version_argument(p)
    g = p.add_argument_group("runs")
    g.add_argument("--quick", action="store_true",
                   help=f"one seed and a short schedule ({QUICK['epochs']} epochs x "
                        f"{QUICK['steps_per_epoch']} steps) unless given explicitly")
    g.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                   help="training seeds (default 0 1 2; --quick: 0)")
    g.add_argument("--variants", nargs="+", choices=VARIANT_KEYS, metavar="VARIANT",
                   help="variants to run, among " + ", ".join(VARIANT_KEYS) + " (default: all)")
    g.add_argument("--work-dir", default="runs/ablation", metavar="DIR",
                   help="where the dataset and the run directories go (default runs/ablation)")
    g.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train N runs at the same time, each with (cores / N) CPU threads "
                        "(default 1)")
    g.add_argument("--report-only", action="store_true",
                   help="train nothing; build the tables from the finished runs")
    g = p.add_argument_group("synthetic data (data_prep.synthetic knobs; see docs/synthetic.md)")
    p.add_deprecated_alias("--identities", "--synthetic-identities")
    g.add_argument("--synthetic-identities", dest="identities", type=int,
                   default=d.identities, metavar="N",
                   help=f"identities, half train half test (default {d.identities})")
    p.add_deprecated_alias("--images", "--synthetic-images")
    g.add_argument("--synthetic-images", dest="images", type=int, default=d.images,
                   metavar="N",
                   help=f"images per identity (default {d.images})")
    p.add_deprecated_alias("--cameras", "--synthetic-cameras")
    g.add_argument("--synthetic-cameras", dest="cameras", type=int, default=d.cameras,
                   metavar="N",
                   help=f"cameras (default {d.cameras})")
    p.add_deprecated_alias("--data-seed", "--synthetic-seed")
    g.add_argument("--synthetic-seed", dest="data_seed", type=int, default=d.data_seed,
                   metavar="SEED",
                   help=f"generator seed (default {d.data_seed})")
    g.add_argument("--vertical-shift", type=float, default=d.vertical_shift, metavar="S",
                   help=f"misalignment: box top moves by U(-S, S) of the person height "
                        f"(default {d.vertical_shift})")
    g.add_argument("--scale-jitter", type=float, default=d.scale_jitter, metavar="S",
                   help=f"misalignment: box size times exp(U(-S, S)) (default {d.scale_jitter})")
    g.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE",
                   help="any other generator knob, e.g. --knob occlusion_prob=0.5 (repeatable)")
    g = p.add_argument_group("training (passed to train.py, identical for every variant)")
    g.add_argument("--image-size", type=int, nargs=2, default=list(d.image_size),
                   metavar=("H", "W"), help="image height and width (default 128 64)")
    g.add_argument("--backbone", default=d.backbone, help="backbone (default tiny)")
    g.add_argument("--P", type=int, default=d.P, help=f"identities per batch (default {d.P})")
    g.add_argument("--K", type=int, default=d.K, help=f"images per identity (default {d.K})")
    g.add_argument("--epochs", type=int, metavar="N",
                   help=f"epochs (default {d.epochs}; --quick {QUICK['epochs']})")
    g.add_argument("--steps-per-epoch", type=int, metavar="N",
                   help=f"steps per epoch (default {d.steps_per_epoch}; --quick "
                        f"{QUICK['steps_per_epoch']})")
    g.add_argument("--lr", type=float, default=d.lr, help=f"initial Adam learning rate "
                                                          f"(default {d.lr:g})")
    g.add_argument("--decay-epoch", type=int, metavar="E",
                   help=f"epoch at which the learning rate drops 10x; 0: never (default "
                        f"{d.decay_epoch}; --quick {QUICK['decay_epoch']})")
    g.add_argument("--global-margin", type=float, default=d.global_margin, metavar="M",
                   help=f"global TriHard margin (default {d.global_margin:g})")
    g.add_argument("--local-margin", type=float, default=d.local_margin, metavar="M",
                   help=f"local TriHard margin (default {d.local_margin:g})")
    g.add_argument("--normalize-features", action=argparse.BooleanOptionalAction,
                   default=d.normalize_features,
                   help="train.py --normalize-features: L2-normalise the global and local "
                        "features before the distances (default: on; without it the local "
                        "part distances of the tiny network saturate the tanh and the local "
                        "loss barely moves, see docs/ablation.md)")
    p.add_deprecated_alias("--kl-weight", "--mutual-kl-weight")
    g.add_argument("--mutual-kl-weight", dest="kl_weight", type=float, default=d.kl_weight,
                   metavar="W", help=f"classification mutual loss weight of MC and MM "
                                     f"(default {d.kl_weight:g}, the paper's)")
    p.add_deprecated_alias("--metric-weight", "--mutual-metric-weight")
    g.add_argument("--mutual-metric-weight", dest="metric_weight", type=float,
                   default=d.metric_weight, metavar="W",
                   help=f"metric mutual loss weight of MM (default {d.metric_weight:g}, the "
                        "paper's; MC uses 0)")
    g.add_argument("--train-arg", action="append", default=[], metavar="ARG",
                   help="one more train.py argument for every variant (repeatable, e.g. "
                        "--train-arg=--normalize-features)")
    g = p.add_argument_group("output")
    g.add_argument("--doc", default="docs/ablation.md", metavar="PATH",
                   help="results page to write (default docs/ablation.md); '' for none")
    g.add_argument("--plot", default="docs/ablation.png", metavar="PATH",
                   help="plot to write (default docs/ablation.png); '' for none")
    g.add_argument("--note", default="", metavar="TEXT",
                   help="why this configuration was tried (kept in 'Configurations tried')")
    g.add_argument("--analysis", metavar="FILE",
                   help="Markdown file with findings to put in the page (default: keep the "
                        "findings already in the page)")
    add_json_argument(g, "the results")
    g.add_argument("--quiet", action="store_true",
                   help="no progress and no 'wrote' lines on stderr (errors and warnings only)")
    return p


_FLAGS = {"identities": "--synthetic-identities", "images": "--synthetic-images",
          "cameras": "--synthetic-cameras", "kl_weight": "--mutual-kl-weight",
          "metric_weight": "--mutual-metric-weight"}


def _flag(name):
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def settings_from_args(args):
    """Builds :class:`Settings`, seeds and variants from parsed options.

    Args:
        args: ``argparse.Namespace``.

    Returns:
        ``(settings, seeds, variants)``.

    Raises:
        UsageError: an invalid option (the message names it).

    Example:
        >>> s, seeds, v = settings_from_args(build_parser().parse_args(["--quick"]))
        >>> seeds, s.epochs
        ([0], 3)
    """
    knobs = {}
    for item in args.knob:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--knob: expected NAME=VALUE, got {item!r}")
        name = name.strip().replace("-", "_")
        if name in ("num_identities", "images_per_identity", "num_cameras", "height", "width",
                    "seed", "vertical_shift", "scale_jitter"):
            raise UsageError(f"--knob: {name} has its own option")
        try:
            knobs[name] = int(value) if re.fullmatch(r"-?\d+", value.strip()) else float(value)
        except ValueError:
            raise UsageError(f"--knob: {name}: not a number: {value!r}") from None
    names = {f.name for f in dataclasses.fields(SyntheticConfig)}
    unknown = sorted(set(knobs) - names)
    if unknown:
        raise UsageError(f"--knob: unknown generator knob {unknown[0]!r}")
    pick = lambda value, quick_key: value if value is not None else (
        QUICK[quick_key] if args.quick else getattr(Settings(), quick_key))
    s = Settings(
        identities=args.identities, images=args.images, cameras=args.cameras,
        data_seed=args.data_seed, vertical_shift=args.vertical_shift,
        scale_jitter=args.scale_jitter, knobs=knobs, image_size=tuple(args.image_size),
        backbone=args.backbone, P=args.P, K=args.K, epochs=pick(args.epochs, "epochs"),
        steps_per_epoch=pick(args.steps_per_epoch, "steps_per_epoch"), lr=args.lr,
        decay_epoch=pick(args.decay_epoch, "decay_epoch"), global_margin=args.global_margin,
        local_margin=args.local_margin, normalize_features=args.normalize_features,
        kl_weight=args.kl_weight,
        metric_weight=args.metric_weight, extra_train_args=tuple(args.train_arg))
    for name in ("identities", "images", "cameras", "P", "K", "epochs", "steps_per_epoch"):
        if getattr(s, name) < 1:
            raise UsageError(f"{_flag(name)}: must be >= 1 (got {getattr(s, name)})")
    if s.decay_epoch < 0:
        raise UsageError(f"--decay-epoch: must be >= 0 (got {s.decay_epoch})")
    if not (s.lr > 0 and math.isfinite(s.lr)):
        raise UsageError(f"--lr: must be > 0 (got {s.lr})")
    for name in ("global_margin", "local_margin", "kl_weight", "metric_weight"):
        if not (getattr(s, name) >= 0 and math.isfinite(getattr(s, name))):
            raise UsageError(f"{_flag(name)}: must be >= 0")
    if args.jobs < 1:
        raise UsageError(f"--jobs: must be >= 1 (got {args.jobs})")
    seeds = args.seeds if args.seeds else ([0] if args.quick else [0, 1, 2])
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UsageError(f"--seeds: expected distinct non-negative seeds (got {seeds})")
    variants = [BY_KEY[k] for k in VARIANT_KEYS if not args.variants or k in args.variants]
    try:  # what train.py would refuse, refused before any run starts
        for v in variants:
            s.train_config(v, seed=seeds[0])
    except ConfigError as exc:
        raise UsageError(f"train.py {exc}") from None
    return s, list(seeds), variants


def command_line(argv):
    """The command that reproduces the results (bookkeeping options left out)."""
    keep, skip = [], 0
    for i, a in enumerate(argv):
        if skip:
            skip -= 1
            continue
        name = a.split("=", 1)[0]
        if name in ("--note", "--analysis", "--jobs", "--doc", "--plot", "--json") \
                and "=" not in a:
            skip = 1
            continue
        if name in ("--note", "--analysis", "--jobs", "--doc", "--plot", "--report-only",
                    "--json", "--quiet"):
            continue
        keep.append(a if re.fullmatch(r"[\w@%+=:,./-]+", a) else repr(a))
    return " ".join(["python -m benchmarks.ablation"] + keep)


def main(argv=None):
    """``python -m benchmarks.ablation``.

    Args:
        argv: argument list (default ``sys.argv[1:]``).

    Returns:
        Exit status (0 done, 2 usage error, 130 interrupted).

    Example:
        >>> main(["--seeds", "1", "1"])
        2
    """
    return run_main(PROG, _main, argv)


def _main(argv):
    args = build_parser().parse_args(argv)
    reporter = Reporter(PROG, enabled=not args.quiet)
    settings, seeds, variants = settings_from_args(args)
    check_json_path(args.json, {"the --analysis input": args.analysis, "the --doc page": args.doc,
                                "the --plot output": args.plot})
    analysis = ""
    if args.analysis:
        try:
            analysis = Path(args.analysis).read_text(encoding="utf-8").strip() + "\n"
        except OSError as exc:
            raise UsageError(f"--analysis: cannot read {args.analysis}: {exc.strerror}") \
                from None
    elif args.doc:
        analysis = read_analysis(args.doc)
    try:
        result = run_benchmark(settings, work_dir=args.work_dir, seeds=seeds,
                               variants=variants, reporter=reporter,
                               report_only=args.report_only, workers=args.jobs)
    except KeyboardInterrupt:
        reporter.say("interrupted; run the same command again to resume")
        return 130
    agg = aggregate(result["runs"], variants)
    comparisons = compare(agg, "rank1") + compare(agg, "mAP")
    if args.doc:
        history = merge_history(read_history(args.doc),
                                history_entry(settings, seeds, agg, comparisons, args.note,
                                              args.quick))
        data = result["data"] or str(Path(args.work_dir) / f"synthetic-{settings.data_key()}" /
                                     "prepared")
        plot_name = os.path.relpath(args.plot, Path(args.doc).parent) if args.plot else ""
        text = render_doc(settings=settings, seeds=seeds, command=command_line(argv), agg=agg,
                          variants=variants, comparisons=comparisons, history=history,
                          plot_name=plot_name, analysis=analysis, data_info=dataset_info(data))
        atomic_write_text(args.doc, text)
        reporter.say(f"wrote {args.doc}")
    if args.plot and any(agg.get(v.key, {}).get("global") for v in variants):
        plot(agg, variants, args.plot)
        reporter.say(f"wrote {args.plot}")
    if args.json is not None:
        write_json_result(args.json, to_json(settings, seeds, agg, comparisons, result))
    if args.json != STDOUT:
        print(f"global feature, mean ± std over seeds {seeds} ({settings.describe()})")
        print(format_table(agg, variants))
        gl = format_table(agg, [v for v in variants if v.key != "gl_baseline"],
                          kind="global+local", with_paper=False)
        print("\nglobal + aligned local distance")
        print(gl)
        print()
        print(format_comparisons(comparisons))
        failed = [(v.label, s) for v in variants for s in agg[v.key]["failed"]]
        if failed:
            print("\nfailed runs: " + ", ".join(f"{lab} seed {s}" for lab, s in failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
