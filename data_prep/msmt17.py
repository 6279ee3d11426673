"""MSMT17 (V1) converter.

``SRC`` holds ``train/`` and ``test/`` (one folder per pid) and the list files
``list_train.txt``, ``list_val.txt``, ``list_query.txt``,
``list_gallery.txt``; each line is ``relative/path.jpg label``. Paths in the
train/val lists are relative to ``train/``, those in the query/gallery lists to
``test/`` (a path relative to ``SRC`` itself is accepted too).

- pid = the list's label; camid = the third ``_``-separated field of the file
  name (``0000_000_01_0303morning_0015_0.jpg`` -> camera 1);
- train = list_train + list_val (the published 32,621 images) unless
  ``--exclude-val``; train labels contiguous in sorted pid order;
- images land in ``DST/images/<split>/<file name>``.

Protocol: "market1501".
"""

from pathlib import Path

from ._io import (PrepError, add_common_arguments, check_destination, confined, ensure_dir,
                  materialize, report, require_dir, require_file)
from .manifest import INT64_MAX, relabel, write_manifest

LISTS = (("train", "list_train.txt", "train"), ("train", "list_val.txt", "train"),
         ("query", "list_query.txt", "test"), ("gallery", "list_gallery.txt", "test"))


def camera_of(name):
    """Camera number from an MSMT17 file name (third field).

    Example:
        >>> camera_of("0000_000_01_0303morning_0015_0.jpg")
        1
    """
    parts = name.split("_")
    if len(parts) < 3 or not parts[2].isdigit():
        raise ValueError(name)
    return int(parts[2])


def read_list(list_path, base, src):
    """Parse one list file into (source path, file name, pid, camid) tuples."""
    out = []
    try:
        text = list_path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = list_path.read_bytes()[:exc.start].count(b"\n") + 1
        raise PrepError(f"{list_path}:{line}: not valid UTF-8") from None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        digits = fields[1].lstrip("-") if len(fields) == 2 else ""
        if not (digits.isascii() and digits.isdigit()):
            raise PrepError(f"{list_path}:{n}: expected 'relative/path.jpg label', got {line.strip()!r}")
        if len(digits) > 19 or int(digits) > INT64_MAX:
            raise PrepError(f"{list_path}:{n}: label {fields[1][:30]} is outside the 64-bit "
                            "integer range")
        rel, pid = fields[0], int(fields[1])
        if pid < 0:
            raise PrepError(f"{list_path}:{n}: negative label {pid}")
        if rel.startswith(("/", "\\")) or Path(rel).is_absolute():
            raise PrepError(f"{list_path}:{n}: image {rel!r} is an absolute path (list paths "
                            f"are relative to {base} or {src})")
        candidate = base / rel
        if not candidate.is_file():
            candidate = src / rel
        if not candidate.is_file():
            raise PrepError(f"{list_path}:{n}: image {rel!r} not found under {base} or {src}")
        confined(candidate, src, f"image {rel!r}", where=f"{list_path}:{n}")
        name = Path(rel).name
        try:
            camid = camera_of(name)
        except ValueError:
            raise PrepError(f"{list_path}:{n}: cannot read the camera from {name!r}") from None
        out.append((str(candidate), name, pid, camid))
    return out


def convert(src, dst, *, include_val=True, mode="link", quiet=False):
    """Prepare MSMT17.

    Args:
        src: the MSMT17_V1 folder.
        dst: output directory.
        include_val: add list_val.txt to the training split.
        mode: "link" or "copy".
        quiet: no progress output.

    Returns:
        dict with "dataset", "manifest", "summary", "files", "dropped".
    """
    src = require_dir(src)
    check_destination(dst, inputs=[src], dataset="msmt17", source=str(src.resolve()))
    rows, names = [], {}
    for split, list_name, folder in LISTS:
        if list_name == "list_val.txt" and not include_val:
            continue
        list_path = require_file(src / list_name, "list file")
        for source, name, pid, camid in read_list(list_path, src / folder, src):
            path = f"images/{split}/{name}"
            if path in names:
                raise PrepError(f"{list_path}: {name!r} is listed twice (also in {names[path]})")
            names[path] = list_name
            rows.append({"path": path, "pid": pid, "label": -1, "camid": camid,
                         "split": split, "dataset": "msmt17", "source": source})
    gallery_pids = {r["pid"] for r in rows if r["split"] == "gallery"}
    dropped = {"queries_without_gallery": sum(
        1 for r in rows if r["split"] == "query" and r["pid"] not in gallery_pids)}
    rows = [r for r in rows if r["split"] != "query" or r["pid"] in gallery_pids]
    order = {"train": 0, "query": 1, "gallery": 2}
    rows.sort(key=lambda r: (order[r["split"]], r["path"]))
    relabel(rows)
    dst = ensure_dir(dst)
    stats = materialize(rows, dst, mode, quiet, desc="msmt17: placing images")
    info = write_manifest(dst, rows, dataset="msmt17", protocol="market1501",
                          extra={"source": str(src.resolve()), "dropped": dropped,
                                 "options": {"mode": mode, "include_val": include_val}})
    return {"dataset": "msmt17", "manifest": str(dst / "manifest.jsonl"),
            "summary": info["summary"], "files": stats.as_dict(), "dropped": dropped}


def add_arguments(parser):
    """Arguments of ``reid-prep msmt17 SRC DST``."""
    parser.add_argument("src", metavar="SRC",
                        help="the MSMT17_V1 folder with train/, test/ and the list_*.txt files")
    parser.add_argument("dst", metavar="DST", help="output folder for the prepared dataset")
    parser.add_argument("--exclude-val", action="store_true",
                        help="train on list_train.txt only (default: list_train.txt plus "
                             "list_val.txt, the published 32,621 training images)")
    add_common_arguments(parser)


def run(args):
    """Run the converter from parsed arguments; returns the exit status."""
    result = convert(args.src, args.dst, include_val=not args.exclude_val,
                     mode=args.mode, quiet=args.quiet)
    return report(args, result)
