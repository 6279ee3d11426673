"""Helpers shared by the converters: user errors, placing and cropping images
resumably, and split summaries. Atomic writes and progress come from
``reid_common``.

Nothing here imports TensorFlow or ``reference``.
"""

import contextlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from reid_common import (
    STDOUT,
    Progress,
    add_json_argument,
    atomic_path,
    clashing_input,
    is_inside,
    write_json_result,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
LINK_MODES = ("link", "copy")


class PrepError(Exception):
    """A user mistake (bad path, bad argument, malformed input file).

    The CLI prints ``str(error)`` on one line and exits with status 2. The
    message starts with the path or argument it concerns.
    """


def add_common_arguments(parser, *, mode=True):
    """Add the flags every converter shares to ``parser``.

    Args:
        parser: an ``argparse.ArgumentParser`` (a converter's sub-parser).
        mode: add ``--mode`` (converters that place existing image files).

    Example:
        >>> import argparse
        >>> p = argparse.ArgumentParser()
        >>> add_common_arguments(p)
        >>> p.parse_args(["--json", "-"]).json
        '-'
    """
    if mode:
        parser.add_argument(
            "--mode", choices=LINK_MODES, default="link",
            help="how images reach DST/images/: 'link' hard-links each file "
                 "(falls back to a copy across file systems), 'copy' always "
                 "copies (default: link)")
    add_json_argument(parser, "the result (summary, counts)")
    parser.add_argument(
        "--quiet", action="store_true",
        help="no progress on stderr (errors and warnings only)")


def ensure_dir(path, what="DST"):
    """Create directory ``path`` (and parents); PrepError if that fails."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PrepError(f"{path}: {what} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PrepError(f"{path}: cannot create {what}: {exc.strerror or exc}") from None
    return path


def require_dir(path, what="SRC"):
    """Return ``Path(path)`` if it is a directory, else raise PrepError."""
    path = Path(path)
    if not path.is_dir():
        raise PrepError(f"{path}: {what} is not a directory")
    return path


def require_file(path, what="file"):
    """Return ``Path(path)`` if it is a file, else raise PrepError."""
    path = Path(path)
    if not path.is_file():
        raise PrepError(f"{path}: {what} not found")
    return path


def confined(path, root, what="image", where=None):
    """Return ``Path(path)`` when it lies inside ``root`` after resolving ``..``
    and symbolic links, else raise PrepError.

    Args:
        path: the file a dataset list or annotation names.
        root: the directory it must stay in (the dataset folder SRC).
        what: what the file is, for the message.
        where: the message's prefix (``LIST:LINE``); default ``path``.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> confined(root / "train" / "a.jpg", root).name
        'a.jpg'
        >>> confined(root / ".." / "secret.jpg", root)
        Traceback (most recent call last):
        ...
        data_prep._io.PrepError: ...: image resolves outside ... (dataset files must stay inside it)
    """
    path = Path(path)
    if not is_inside(path, root):
        prefix = where if where is not None else str(path)
        raise PrepError(f"{prefix}: {what} resolves outside {root} (dataset files must stay "
                        "inside it)")
    return path


def check_destination(dst, *, inputs, dataset, source):
    """Refuse an output folder whose writing would destroy an input or another dataset.

    Called before anything is read or written: ``dst`` must not be one of
    ``inputs`` (after resolving ``..`` and links), and when it already holds a
    prepared dataset (``dataset.json``), that must be the same dataset made
    from the same ``source`` (re-running a converter resumes it).

    Args:
        dst: the output folder.
        inputs: the folders and files the run reads.
        dataset: the name of the dataset being written.
        source: what ``dataset.json``'s ``source`` will hold for this run.

    Raises:
        PrepError: one line naming ``dst`` and the input or dataset it would
            overwrite.
    """
    dst = Path(dst)
    clash = clashing_input(dst, inputs)
    if clash is not None:
        raise PrepError(f"{dst}: DST is the input {clash}; writing there would replace it "
                        "(choose another output folder)")
    info_path = dst / "dataset.json"
    if not info_path.exists():
        return
    try:
        info = json.loads(info_path.read_bytes().decode("utf-8"))
        held_source = info.get("source")
        if held_source is None and "components" in info:  # combine before "source"
            held_source = [c["source"] for c in info["components"]]
        held = (info["dataset"], held_source)
    except (OSError, ValueError, RecursionError, KeyError, TypeError):
        raise PrepError(f"{dst}: DST holds {info_path.name} that cannot be read; refusing to "
                        "overwrite what may be a prepared dataset (choose another output "
                        "folder)") from None
    if held != (dataset, source):
        raise PrepError(
            f"{dst}: DST already holds the prepared dataset {held[0]!r} made from "
            f"{held[1]}; writing {dataset!r} from {source} would replace it (choose another "
            "output folder or remove it)")


@contextlib.contextmanager
def writing(path):
    """Report an OSError raised while writing ``path`` as an OSError naming ``path``.

    Copy and save routines raise errors that name the source file or a
    temporary file (or none); a full disk should name the file being written.
    """
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write: {exc.strerror or exc}", str(path)) from None


# --------------------------------------------------------------------------
# placing images

class PlaceStats:
    """Counts of files written and files found already in place."""

    def __init__(self):
        self.written = 0
        self.skipped = 0

    def as_dict(self):
        return {"written": self.written, "skipped": self.skipped}


def place_file(src, dst, mode="link", stats=None):
    """Hard-link or copy ``src`` to ``dst`` unless ``dst`` already exists with
    the same size (resumable).

    A hard link that fails (another file system, no permission) falls back to
    a copy. Copies go through a temporary file and ``os.replace``.

    Args:
        src: existing image file.
        dst: destination path; parent directories are created.
        mode: "link" or "copy".
        stats: optional PlaceStats to count written/skipped files.

    Returns:
        True if a file was written, False if it was already in place.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "a.jpg").write_bytes(b"jpeg")
        >>> dst = d / "images" / "a.jpg"
        >>> place_file(d / "a.jpg", dst), place_file(d / "a.jpg", dst)
        (True, False)
    """
    src = Path(src)
    dst = Path(dst)
    try:
        size = src.stat().st_size
    except OSError:
        raise PrepError(f"{src}: image not found") from None
    with writing(dst):
        try:
            if dst.stat().st_size == size:
                if stats is not None:
                    stats.skipped += 1
                return False
            dst.unlink()
        except FileNotFoundError:
            pass
        dst.parent.mkdir(parents=True, exist_ok=True)
        done = False
        if mode == "link":
            try:
                os.link(src, dst)
                done = True
            except OSError:
                done = False
        if not done:
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
    if stats is not None:
        stats.written += 1
    return True


def image_size_on_disk(path):
    """(width, height) of the image at ``path`` (header only), or None if the
    file is missing or unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError):
        return None


def save_image(array_or_image, dst, stats=None, format=None):
    """Save an image atomically unless ``dst`` already holds an image of the
    same width and height (resumable).

    Args:
        array_or_image: uint8 array [H, W, 3] or a PIL image.
        dst: destination path (the suffix picks the format unless ``format``).
        stats: optional PlaceStats.
        format: PIL format name, e.g. "PNG" or "JPEG".

    Returns:
        True if written, False if skipped.
    """
    from PIL import Image

    dst = Path(dst)
    if isinstance(array_or_image, np.ndarray):
        image = Image.fromarray(np.ascontiguousarray(array_or_image))
    else:
        image = array_or_image
    if image_size_on_disk(dst) == image.size:
        if stats is not None:
            stats.skipped += 1
        return False
    if format is None:
        format = "PNG" if dst.suffix.lower() == ".png" else "JPEG"
    kwargs = {"quality": 95} if format == "JPEG" else {}
    with writing(dst):
        dst.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dst) as tmp:
            image.save(tmp, format=format, **kwargs)
    if stats is not None:
        stats.written += 1
    return True


def clip_box(box, width, height):
    """Clip an (x, y, w, h) box to an image of ``width`` x ``height``.

    Coordinates are rounded to whole pixels first.

    Returns:
        (left, top, right, bottom) integers with right/bottom exclusive; the
        box may be empty (right <= left).

    Example:
        >>> clip_box((-2.0, 3.0, 10.0, 5.0), 6, 6)
        (0, 3, 6, 6)
    """
    x, y, w, h = (int(round(float(v))) for v in box)
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + w, width), min(y + h, height)
    return left, top, max(right, left), max(bottom, top)


# --------------------------------------------------------------------------
# summaries

def summarize(rows):
    """Counts per split: images, identities and cameras.

    Args:
        rows: manifest rows (dicts with "split", "pid", "camid", "dataset").

    Returns:
        {split: {"images": int, "identities": int, "cameras": int}} for the
        splits present, in the order train, query, gallery. Identities are
        distinct (dataset, pid) pairs, counting pid 0 (distractors) as one
        identity when present.

    Example:
        >>> summarize([{"split": "train", "pid": 1, "camid": 1, "dataset": "d"}])
        {'train': {'images': 1, 'identities': 1, 'cameras': 1}}
    """
    out = {}
    for name in ("train", "query", "gallery"):
        sel = [r for r in rows if r["split"] == name]
        if not sel:
            continue
        out[name] = {
            "images": len(sel),
            "identities": len({(r["dataset"], r["pid"]) for r in sel}),
            "cameras": len({(r["dataset"], r["camid"]) for r in sel}),
        }
    return out


def format_summary(dataset, summary):
    """A small text table of a summary from :func:`summarize`."""
    lines = [f"{dataset}:", f"  {'split':<8} {'images':>8} {'identities':>11} {'cameras':>8}"]
    for name, c in summary.items():
        lines.append(f"  {name:<8} {c['images']:>8} {c['identities']:>11} {c['cameras']:>8}")
    return "\n".join(lines)


def report(args, result):
    """Print a converter's result (the summary table plus counts) and write
    it as JSON to ``--json`` (``-``: JSON on stdout instead of the table).
    Returns 0."""
    target = getattr(args, "json", None)
    if target is not None:
        write_json_result(target, result)
    if target != STDOUT:
        print(format_summary(result["dataset"], result["summary"]))
        files = result.get("files", {})
        print(f"  files written: {files.get('written', 0)}, already in place: "
              f"{files.get('skipped', 0)}")
        for key, value in sorted(result.get("dropped", {}).items()):
            if value:
                print(f"  dropped {key}: {value}")
        print(f"  manifest: {result['manifest']}")
    return 0


def materialize(rows, dst, mode="link", quiet=False, desc="images"):
    """Place the image of every row whose "source" key names an existing file
    at ``dst / row["path"]`` (hard link or copy, resumable).

    Args:
        rows: row dicts with "path" (relative to dst) and "source".
        dst: dataset directory.
        mode: "link" or "copy".
        quiet: no progress output.
        desc: progress label.

    Returns:
        PlaceStats.
    """
    stats = PlaceStats()
    dst = Path(dst)
    with Progress(len(rows), desc, enabled=not quiet) as bar:
        for r in rows:
            place_file(r["source"], dst.joinpath(*r["path"].split("/")), mode, stats)
            bar.update()
    return stats
