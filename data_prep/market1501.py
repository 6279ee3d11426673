"""Market-1501 and DukeMTMC-reID converter (both share the folder layout).

``SRC`` holds ``bounding_box_train/``, ``bounding_box_test/`` and ``query/``.
File names carry the identity and the camera:

- Market-1501: ``PPPP_cXsY_FFFFFF_BB.jpg`` (junk is written ``-1_c...``),
- DukeMTMC-reID: ``PPPP_cX_fFFFFFFF.jpg``.

What the converter does:

- train = ``bounding_box_train``, query = ``query``, gallery =
  ``bounding_box_test``; rows sorted by file name within each split;
- junk images (pid -1) are dropped everywhere (the Market protocol removes
  them from every ranking anyway); distractors (pid 0) stay in the gallery
  and are dropped from train and query;
- ``Thumbs.db`` and other non-image files are ignored;
- camid is the 1-based camera number from the file name;
- train labels are contiguous 0..L-1 in sorted pid order;
- queries whose pid has no gallery image are dropped (none in the real data).

Protocol: "market1501". Dataset name: the converter's (``market1501``,
``duke``), except ``synthetic`` for the synthetic dataset of
``reid-prep synthetic``, which is written in the Market-1501 layout.
"""

import re

from ._io import (IMAGE_SUFFIXES, PrepError, add_common_arguments, check_destination,
                  confined, ensure_dir, materialize, report, require_dir)
from .manifest import relabel, write_manifest

PATTERNS = {
    "market1501": re.compile(r"^(-?\d+)_c(\d+)s\d+_\d+_\d+\.(?:jpg|jpeg|png)$", re.IGNORECASE),
    "duke": re.compile(r"^(-?\d+)_c(\d+)_f\d+\.(?:jpg|jpeg|png)$", re.IGNORECASE),
}
FOLDERS = (("train", "bounding_box_train"), ("query", "query"), ("gallery", "bounding_box_test"))


def parse_name(name, dataset="market1501"):
    """(pid, camid) from a Market-1501 or DukeMTMC-reID file name, or None.

    Example:
        >>> parse_name("0002_c1s1_000451_03.jpg")
        (2, 1)
        >>> parse_name("-1_c3s2_012345_00.jpg")
        (-1, 3)
        >>> parse_name("0001_c2_f0046182.jpg", "duke")
        (1, 2)
    """
    m = PATTERNS[dataset].match(name)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2))


def scan_folder(folder, dataset):
    """List (file name, pid, camid) for the images of ``folder``, sorted by
    name; non-image files are skipped, a badly named image is a PrepError."""
    out = []
    for p in sorted(folder.iterdir(), key=lambda q: q.name):
        if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        parsed = parse_name(p.name, dataset)
        if parsed is None:
            raise PrepError(f"{p}: file name does not follow the {dataset} naming")
        pid, camid = parsed
        confined(p, folder.parent)
        if camid < 1:
            raise PrepError(f"{p}: camera number must be >= 1")
        out.append((p.name, pid, camid))
    return out


def convert(src, dst, *, dataset="market1501", mode="link", quiet=False):
    """Prepare a Market-1501 style dataset.

    Args:
        src: directory with bounding_box_train/, bounding_box_test/, query/.
        dst: output directory (created).
        dataset: "market1501" or "duke" (file naming and dataset name).
        mode: "link" or "copy".
        quiet: no progress output.

    Returns:
        dict with "dataset", "manifest", "summary", "files" and "dropped".

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from data_prep.synthetic import generate
        >>> tmp = Path(tempfile.mkdtemp())
        >>> _ = generate(tmp / "raw", num_identities=4, images_per_identity=4, height=32,
        ...              width=16)
        >>> convert(tmp / "raw", tmp / "prepared", quiet=True)["summary"]["train"]
        {'images': 8, 'identities': 2, 'cameras': 4}
    """
    if dataset not in PATTERNS:
        raise PrepError(f"--dataset: unknown dataset {dataset!r}")
    src = require_dir(src)
    called = dataset_name(src, dataset)
    check_destination(dst, inputs=[src], dataset=called, source=str(src.resolve()))
    for _, folder in FOLDERS:
        if not (src / folder).is_dir():
            raise PrepError(f"{src / folder}: missing (expected the {dataset} layout with "
                            "bounding_box_train/, bounding_box_test/ and query/)")
    dropped = {"junk": 0, "distractors_train_query": 0, "queries_without_gallery": 0}
    rows = []
    for split, folder in FOLDERS:
        for name, pid, camid in scan_folder(src / folder, dataset):
            if pid == -1:
                dropped["junk"] += 1
                continue
            if pid < -1:
                raise PrepError(f"{src / folder / name}: negative pid {pid}")
            if pid == 0 and split != "gallery":
                dropped["distractors_train_query"] += 1
                continue
            rows.append({"path": f"images/{split}/{name}", "pid": pid, "label": -1,
                         "camid": camid, "split": split, "dataset": called,
                         "source": str(src / folder / name)})
    gallery_pids = {r["pid"] for r in rows if r["split"] == "gallery"}
    kept = []
    for r in rows:
        if r["split"] == "query" and r["pid"] not in gallery_pids:
            dropped["queries_without_gallery"] += 1
            continue
        kept.append(r)
    rows = kept
    relabel(rows)
    dst = ensure_dir(dst)
    stats = materialize(rows, dst, mode, quiet, desc=f"{called}: placing images")
    info = write_manifest(dst, rows, dataset=called, protocol="market1501",
                          extra={"source": str(src.resolve()), "dropped": dropped,
                                 "options": {"mode": mode}})
    return {"dataset": called, "manifest": str(dst / "manifest.jsonl"),
            "summary": info["summary"], "files": stats.as_dict(), "dropped": dropped}


def dataset_name(src, dataset):
    """The name a dataset converted from ``src`` carries in its manifest.

    ``synthetic`` for the output of ``reid-prep synthetic`` (its
    ``synthetic.json`` marks it; it only borrows the Market-1501 layout),
    otherwise ``dataset``.

    Example:
        >>> import tempfile
        >>> dataset_name(tempfile.mkdtemp(), "market1501")
        'market1501'
    """
    from data_prep.synthetic import is_synthetic_folder

    return "synthetic" if dataset == "market1501" and is_synthetic_folder(src) else dataset


def add_arguments(parser):
    """Arguments of ``reid-prep market1501|duke SRC DST``."""
    parser.add_argument("src", metavar="SRC",
                        help="the extracted dataset folder holding bounding_box_train/, "
                             "bounding_box_test/ and query/")
    parser.add_argument("dst", metavar="DST", help="output folder for the prepared dataset")
    add_common_arguments(parser)


def run(args):
    """Run the converter from parsed arguments; returns the exit status."""
    dataset = getattr(args, "command", None) or "market1501"
    result = convert(args.src, args.dst, dataset=dataset, mode=args.mode, quiet=args.quiet)
    return report(args, result)
