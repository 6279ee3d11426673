"""``python -m benchmarks.ablation``: options, settings from them, the run and its outputs."""

import dataclasses
import re
import sys
import time
from pathlib import Path

from data_prep.synthetic import SyntheticConfig, misalignment_summary, stripe_offsets
from reid_common import ArgumentParser, NORMALIZE_MODES, Reporter, UsageError, \
    add_version_argument, atomic_write_text, run_main
from reid_tf.config import ConfigError

from .history import history_entry, merge_history, read_analysis, read_block, read_history
from .page import render_page, section
from .report import ablation_json, to_markdown_json
from .runner import Runner
from .settings import BLOCKS, BY_KEY, VARIANT_KEYS, VARIANTS, Settings

PROG = "ablation"
FULL_SEEDS = [0, 1, 2, 3, 4]
QUICK_SEEDS = [0, 1]
# --quick: small data and a short schedule, unless given explicitly
QUICK = {"identities": 120, "pretrain_identities": 80, "epochs": 2, "steps_per_epoch": 10,
         "decay_epoch": 0, "pretrain_epochs": 2, "pretrain_steps": 10}
#: earlier spellings, accepted with a warning (train.py's names are the current ones)
DEPRECATED_FLAGS = {"--identities": "--synthetic-identities", "--images": "--synthetic-images",
                    "--cameras": "--synthetic-cameras", "--data-seed": "--synthetic-seed",
                    "--kl-weight": "--mutual-kl-weight", "--metric-weight": "--mutual-metric-weight"}
_FIELDS = {f.name: f.default for f in dataclasses.fields(Settings)
           if f.default is not dataclasses.MISSING}


def build_parser():
    """The command-line parser.

    Example:
        >>> build_parser().parse_args(["--quick"]).quick
        True
    """
    d = Settings()
    p = ArgumentParser(
        prog="python -m benchmarks.ablation",
        description="The AlignedReID paper's ablations (Table 1: Baseline, GL-Baseline, "
                    "AlignedReID; Table 2: AlignedReID + metric mutual learning) on the "
                    "synthetic misalignment data, paired over seeds, with confidence intervals "
                    "of the paired differences; writes docs/ablation.json and docs/ablation.md.",
        epilog="Exit status: 0 done (also when some runs failed: they are listed), "
               "2 usage error, 130 interrupted (run the same command again to resume).")
    add_version_argument(p)
    g = p.add_argument_group("runs")
    g.add_argument("--block", choices=("table1", "table2", "all"), default="all",
                   help="variants to run: table1 (Baseline, GL-Baseline, AlignedReID), table2 "
                        "(AlignedReID, AlignedReID+MM at the paper's and at rescaled weights) "
                        "or all (default)")
    g.add_argument("--variants", nargs="+", choices=VARIANT_KEYS, metavar="VARIANT",
                   help="variants to run instead of a block, among " + ", ".join(VARIANT_KEYS))
    g.add_argument("--quick", action="store_true",
                   help="a smoke test: seeds 0 1, " + ", ".join(f"{k}={v}" for k, v in
                                                               QUICK.items())
                        + " unless given; results go to docs/ablation_quick.json and the "
                          "page's quick section")
    g.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                   help="training seeds (default 0 1 2 3 4; --quick: 0 1)")
    g.add_argument("--work-dir", metavar="DIR",
                   help="datasets, pretrained starts, run directories and stored results "
                        "(default runs/ablation; --quick: runs/ablation-quick)")
    g.add_argument("--report-only", action="store_true",
                   help="train nothing; build the outputs from the stored results")
    g.add_argument("--resamples", type=int, default=2000, metavar="N",
                   help="bootstrap resamples of the test identities (default 2000)")
    g = p.add_argument_group("synthetic data (data_prep.synthetic knobs; see docs/synthetic.md)")
    for flag, name, help_text in (
            ("--synthetic-identities", "identities",
             "identities of the test data, half train half test"),
            ("--pretrain-identities", "pretrain_identities",
             "identities of the pretraining set (its train half is used)"),
            ("--synthetic-images", "images", "images per identity"),
            ("--synthetic-cameras", "cameras", "cameras"),
            ("--synthetic-seed", "data_seed",
             "generator seed (the pretraining set uses this + 1000)")):
        g.add_argument(flag, type=int, metavar="N", dest=name,
                       help=f"{help_text} (default {getattr(d, name)}"
                            + (f"; --quick {QUICK[name]})" if name in QUICK else ")"))
    g.add_argument("--vertical-shift", type=float, default=d.vertical_shift, metavar="S",
                   help=f"misalignment: box top moves by U(-S, S) of the person height "
                        f"(default {d.vertical_shift})")
    g.add_argument("--scale-jitter", type=float, default=d.scale_jitter, metavar="S",
                   help=f"misalignment: box size times exp(U(-S, S)) (default {d.scale_jitter})")
    g.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE",
                   help="any other generator knob, e.g. --knob occlusion_prob=0.5 (repeatable)")
    g = p.add_argument_group("training (identical for every variant)")
    g.add_argument("--image-size", type=int, nargs=2, default=list(d.image_size),
                   metavar=("H", "W"), help="image height and width (default 112 56: 7 local "
                                            "parts with the tiny backbone, as the paper's H)")
    g.add_argument("--backbone", default=d.backbone, choices=("tiny", "resnet50", "resnet50x"),
                   help=f"backbone (default {d.backbone})")
    for name, help_text in (
            ("P", "identities per batch"), ("K", "images per identity in a batch"),
            ("epochs", "epochs"), ("steps_per_epoch", "steps per epoch"),
            ("decay_epoch", "epoch at which the learning rate drops 10x; 0: never"),
            ("pretrain_epochs", "epochs of the ID-only pretraining"),
            ("pretrain_steps", "steps per epoch of the pretraining")):
        g.add_argument("--" + name.replace("_", "-"), type=int, metavar="N", dest=name,
                       help=f"{help_text} (default {getattr(d, name)}"
                            + (f"; --quick {QUICK[name]})" if name in QUICK else ")"))
    for flag, name, help_text in (
            ("--lr", "lr", "initial Adam learning rate"),
            ("--global-margin", "global_margin", "global TriHard margin"),
            ("--local-margin", "local_margin", "local TriHard margin"),
            ("--mutual-kl-weight", "kl_weight",
             "classification mutual loss weight of the paper's arm (the paper's)"),
            ("--mutual-metric-weight", "metric_weight",
             "metric mutual loss weight of the paper's arm (the paper's)"),
            ("--target-share", "target_share", "the rescaled arm: each mutual term's gradient "
                                               "as this fraction of the own-loss gradient")):
        g.add_argument(flag, type=float, metavar="X", dest=name, default=getattr(d, name),
                       help=f"{help_text} (default {getattr(d, name):g})")
    g.add_argument("--normalize-features", choices=NORMALIZE_MODES, default=d.normalize_features,
                   help="features L2-normalised before the distances (default local: the local "
                        "parts only; the global feature stays unnormalised as in the paper)")
    g.add_argument("--train-arg", action="append", default=[], metavar="ARG",
                   help="one more train.py argument for every run (repeatable)")
    g = p.add_argument_group("output")
    g.add_argument("--json", metavar="PATH",
                   help="the results as JSON (default docs/ablation.json; --quick "
                        "docs/ablation_quick.json); '' for none")
    g.add_argument("--doc", default="docs/ablation.md", metavar="PATH",
                   help="results page to update (default docs/ablation.md); '' for none")
    g.add_argument("--note", default="", metavar="TEXT",
                   help="why this configuration was tried (kept in 'Configurations tried')")
    g.add_argument("--analysis", metavar="FILE",
                   help="Markdown file with findings for the page (default: keep the page's)")
    for old, new in DEPRECATED_FLAGS.items():
        p.add_deprecated_alias(old, new)
    return p


def _flag(dest):
    """The option that sets ``dest``, from the parser: ``_flag("images") ==
    "--synthetic-images"``."""
    return next(a.option_strings[0] for a in build_parser()._actions if a.dest == dest)


def _knobs(items):
    knobs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--knob: expected NAME=VALUE, got {item!r}")
        name = name.strip().replace("-", "_")
        if name in ("num_identities", "images_per_identity", "num_cameras", "height", "width",
                    "seed", "vertical_shift", "scale_jitter"):
            raise UsageError(f"--knob: {name} has its own option")
        if name not in {f.name for f in dataclasses.fields(SyntheticConfig)}:
            raise UsageError(f"--knob: unknown generator knob {name!r}")
        try:
            knobs[name] = int(value) if re.fullmatch(r"-?\d+", value.strip()) else float(value)
        except ValueError:
            raise UsageError(f"--knob: {name}: not a number: {value!r}") from None
    return knobs


def settings_from_args(args):
    """Builds :class:`Settings`, seeds and variants from parsed options.

    Raises:
        UsageError: an invalid option (the message names it).

    Example:
        >>> s, seeds, v = settings_from_args(build_parser().parse_args(["--quick"]))
        >>> seeds, s.epochs, [x.key for x in v][:2]
        ([0, 1], 2, ['baseline', 'gl_baseline'])
    """
    values = {}
    for name in ("identities", "pretrain_identities", "images", "cameras", "data_seed", "P",
                 "K", "epochs", "steps_per_epoch", "decay_epoch", "pretrain_epochs",
                 "pretrain_steps"):
        given = getattr(args, name)
        values[name] = given if given is not None else (
            QUICK[name] if args.quick and name in QUICK else _FIELDS[name])
    s = Settings(vertical_shift=args.vertical_shift, scale_jitter=args.scale_jitter,
                 knobs=_knobs(args.knob), image_size=tuple(args.image_size),
                 backbone=args.backbone, lr=args.lr, global_margin=args.global_margin,
                 local_margin=args.local_margin, normalize_features=args.normalize_features,
                 kl_weight=args.kl_weight, metric_weight=args.metric_weight,
                 target_share=args.target_share, extra_train_args=tuple(args.train_arg),
                 **values)
    for name in ("identities", "pretrain_identities", "images", "cameras", "P", "K", "epochs",
                 "steps_per_epoch", "pretrain_epochs", "pretrain_steps"):
        if getattr(s, name) < 1:
            raise UsageError(f"{_flag(name)}: must be >= 1 (got {getattr(s, name)})")
    if s.decay_epoch < 0:
        raise UsageError(f"--decay-epoch: must be >= 0 (got {s.decay_epoch})")
    if not 0 < s.target_share < 1:
        raise UsageError(f"--target-share: must be between 0 and 1 (got {s.target_share})")
    if args.resamples < 100:
        raise UsageError(f"--resamples: must be >= 100 (got {args.resamples})")
    seeds = args.seeds or (QUICK_SEEDS if args.quick else FULL_SEEDS)
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UsageError(f"--seeds: expected distinct non-negative seeds (got {seeds})")
    if args.variants:
        keys = args.variants
    elif args.block == "all":
        keys = VARIANT_KEYS
    else:
        keys = BLOCKS[args.block]
    variants = [v for v in VARIANTS if v.key in keys]
    try:  # what train.py would refuse, refused before any run starts
        for v in variants:
            s.train_config(v, seeds[0], weights="none", rescaled=(0.1, 0.1))
        s.pretrain_config(seeds[0])
    except ConfigError as exc:
        raise UsageError(f"train.py {exc}") from None
    return s, list(seeds), variants


def block_commands(argv, quick):
    """The commands that reproduce the results (bookkeeping options left out).

    Example:
        >>> block_commands(["--epochs", "3", "--note", "x", "--block", "table1"], False)[0]
        'python -m benchmarks.ablation --epochs 3 --block table1'
    """
    keep, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in ("--note", "--analysis", "--doc", "--json", "--block", "--report-only",
                    "--work-dir"):
            skip = "=" not in a and name != "--report-only"
            continue
        keep.append(a if re.fullmatch(r"[\w@%+=:,./-]+", a) else repr(a))
    base = " ".join(["python -m benchmarks.ablation"] + keep)
    if quick or "--variants" in keep:
        return [base]
    return [f"{base} --block table1", f"{base} --block table2"]


def main(argv=None):
    """``python -m benchmarks.ablation``.

    Returns:
        Exit status (0 done, 2 usage error, 130 interrupted).

    Example:
        >>> main(["--seeds", "1", "1"])
        2
    """
    return run_main(PROG, _main, argv)


def _main(argv, runner_factory=Runner):
    argv = list(sys.argv[1:] if argv is None else argv)
    t0 = time.monotonic()
    args = build_parser().parse_args(argv)
    reporter = Reporter(PROG)
    settings, seeds, variants = settings_from_args(args)
    # a full run: every variant of a block at >= 5 seeds; anything smaller
    # without --quick is a partial run (kept in the history only)
    mode = "quick" if args.quick else ("full" if len(seeds) >= len(FULL_SEEDS)
                                       and not args.variants else "partial")
    json_path = args.json if args.json is not None else {
        "quick": "docs/ablation_quick.json", "full": "docs/ablation.json", "partial": ""}[mode]
    work_dir = args.work_dir or ("runs/ablation-quick" if args.quick else "runs/ablation")
    analysis = ""
    if args.analysis:
        try:
            analysis = Path(args.analysis).read_text(encoding="utf-8").strip() + "\n"
        except OSError as exc:
            raise UsageError(f"--analysis: cannot read {args.analysis}: {exc.strerror}") \
                from None
    elif args.doc:
        analysis = read_analysis(args.doc)
    from .shares import measure

    runner = runner_factory(settings, work_dir, reporter, shares=measure)
    try:
        runner.run_all(variants, seeds, report_only=args.report_only)
    except KeyboardInterrupt:
        reporter.say("interrupted; run the same command again to resume")
        return 130
    except RuntimeError as exc:  # a pretraining that failed: nothing can be paired
        raise UsageError(str(exc)) from None
    # the report covers every variant with stored results under these settings
    runs = runner.run_all(list(VARIANTS), seeds, report_only=True)
    shown = [v for v in VARIANTS if runs.get(v.key)]
    misalignment = misalignment_summary(stripe_offsets(
        vertical_shift=settings.vertical_shift, scale_jitter=settings.scale_jitter,
        stripes=settings.stripes))
    data = ablation_json(runs, shown, misalignment, resamples=args.resamples)
    shares_path = runner.config_dir / "shares.json"
    shares = None
    if shares_path.is_file():
        import json

        shares = json.loads(shares_path.read_text(encoding="utf-8"))
    wall = time.monotonic() - t0
    if json_path:
        atomic_write_text(json_path, to_markdown_json(data))
        reporter.say(f"wrote {json_path}")
    if args.doc:
        history = merge_history(read_history(args.doc),
                                history_entry(settings, seeds, data, args.note, mode, wall,
                                              cost=runner.cost))
        sections = {m: read_block(args.doc, m) for m in ("full", "quick")}
        if mode != "partial":
            sections[mode] = section(mode, settings=settings, seeds=seeds,
                                     commands=block_commands(argv, args.quick), data=data,
                                     runs=runs, variants=shown, shares=shares,
                                     cost=history[-1])
        atomic_write_text(args.doc, render_page(sections=sections, analysis=analysis,
                                                history=history))
        reporter.say(f"wrote {args.doc}")
    print(f"{mode} run, seeds {seeds} ({settings.describe()}); {wall / 60:.1f} min")
    if runner.cost:
        w = sum(c[0] for c in runner.cost.values())
        cpu = sum(c[1] for c in runner.cost.values())
        print(f"trainings run now: {len(runner.cost)}, {w / 60:.1f} min wall, "
              f"{cpu / 60:.1f} min CPU (user + system)")
    print(f"test: {data['test']['queries']} queries, {data['test']['gallery']} gallery; "
          f"misalignment: mean {misalignment['mean_offset_stripes']:.2f} stripes, "
          f"{100 * misalignment['share_ge_1_stripe']:.0f} % >= 1 stripe")
    for label, row in data["variants"].items():
        print(f"{label:28s} rank-1 {', '.join(f'{x:.1f}' for x in row['rank1'])}; "
              f"mAP {', '.join(f'{x:.1f}' for x in row['mAP'])}")
    for c in data["claims"]:
        lo, hi = c["ci95"]
        ci = "n/a" if lo is None else f"[{lo:+.1f}, {hi:+.1f}]"
        print(f"{c['a']} - {c['b']} {c['metric']}: {c['diff']:+.1f} {ci} ({c['method']})")
    missing = [(v.label, s) for v in variants for s in seeds if s not in runs.get(v.key, {})]
    if missing:
        print("runs without results: " + ", ".join(f"{lab} seed {s}" for lab, s in missing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
