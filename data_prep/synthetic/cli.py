"""``reid-prep synthetic DST [options]`` and ``python -m data_prep.synthetic``."""

from dataclasses import fields
from pathlib import Path

from data_prep._io import PrepError, add_common_arguments
from reid_common import STDOUT, ArgumentParser, Progress, add_version_argument, run_main, \
    write_json_result

from .config import KNOB_HELP, SyntheticConfig
from .sheet import contact_sheet
from .writer import generate

DESCRIPTION = ("A synthetic person re-identification dataset with the challenges AlignedReID "
               "addresses: inaccurate detection boxes, occlusion, pose and look-alikes.")


def add_arguments(parser):
    """Arguments of ``reid-prep synthetic DST [options]``."""
    parser.add_argument("dst", metavar="DST",
                        help="output folder (Market-1501 layout); prepare it afterwards with "
                             "`reid-prep market1501 DST PREPARED`")
    defaults = SyntheticConfig()
    for f in fields(SyntheticConfig):
        default = getattr(defaults, f.name)
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(default), default=default,
                            metavar="N" if isinstance(default, int) else "X",
                            help=f"{KNOB_HELP[f.name]} (default: {default})")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="processes rendering in parallel; the files are the same for "
                             "any N (default: 1)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty DST that is not a synthetic dataset "
                             "(stale *.jpg files in its image folders are removed)")
    parser.add_argument("--contact-sheet", metavar="PNG", default=None,
                        help="also write a contact sheet of samples (rows = identities, "
                             "the first two a look-alike pair; columns = cameras)")
    add_common_arguments(parser, mode=False)


def run(args):
    """Generate from parsed arguments; returns the exit status (0).

    User errors raise PrepError (the CLI prints it on one line, exit 2).
    """
    knobs = {f.name: getattr(args, f.name) for f in fields(SyntheticConfig)}
    SyntheticConfig(**knobs).validate()
    if args.workers < 1:
        raise PrepError(f"--workers: must be >= 1, got {args.workers}")
    with Progress(None, "synthetic: rendering", enabled=not getattr(args, "quiet", False)) as bar:
        def progress(done, total):
            bar.total = total
            bar.set(done)

        info = generate(args.dst, overwrite=args.overwrite, progress=progress,
                        workers=args.workers, **knobs)
    sheet = None
    if args.contact_sheet:
        if not Path(args.contact_sheet).parent.is_dir():
            raise PrepError(f"{args.contact_sheet}: --contact-sheet folder does not exist")
        knobs.pop("seed")
        sheet = contact_sheet(args.contact_sheet, seed=args.seed, **knobs)
    result = {"dataset": "synthetic", "dst": str(args.dst), "counts": info["counts"],
              "lookalike_pairs": len(info["lookalike_pairs"]), "written": info["written"],
              "skipped": info["skipped"], "seconds": info["seconds"], "contact_sheet": sheet}
    target = getattr(args, "json", None)
    if target is not None:
        write_json_result(target, result)
    if target != STDOUT:
        print(f"synthetic: {args.dst}")
        for folder, n in info["counts"].items():
            print(f"  {folder:<20} {n:>7} images")
        print(f"  look-alike pairs: {result['lookalike_pairs']}, written: {info['written']}, "
              f"already in place: {info['skipped']}, {info['seconds']:.1f} s")
        if sheet:
            print(f"  contact sheet: {sheet}")
        print(f"  next: reid-prep market1501 {args.dst} PREPARED")
    return 0


def main(argv=None):
    """``python -m data_prep.synthetic DST [options]`` (same as ``reid-prep synthetic``).

    Returns:
        0 on success, 2 on a user error (one line on stderr), 130 when interrupted.
    """
    prog = "python -m data_prep.synthetic"

    def body(args):
        parser = ArgumentParser(prog=prog, description=DESCRIPTION)
        add_arguments(parser)
        add_version_argument(parser)
        return run(parser.parse_args(args))

    return run_main(prog, body, argv, usage_errors=(PrepError,))
