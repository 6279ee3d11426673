"""CUHK-SYSU converter: person search scenes to a re-identification task on
ground-truth boxes.

``SRC`` holds ``Image/SSM/*.jpg`` and ``annotation/`` with ``Images.mat``
(every annotated box of every scene), ``pool.mat`` (the test scenes) and
``test/train_test/Train.mat`` and ``TestG{50,...,4000}.mat`` (MATLAB v5).

- train: a crop of every box of every Train.mat identity; pid = the number in
  ``idname`` (``p5069`` -> 5069); labels contiguous in sorted pid order;
- query: the crop of each TestG query box (``--gallery-size`` picks the file,
  default 100);
- gallery: a crop of every annotated box (Images.mat) of every gallery scene
  of every query, shared between queries (each box is cropped once). A box
  gets the pid of the query person whose ``idlocate`` in some Gallery entry
  matches it (within 1 pixel; a Gallery location that matches no Images.mat
  box is added as a box of its own), and pid 0 (a negative for every query)
  otherwise;
- each query row lists its own gallery: the indices of the boxes of its
  gallery scenes;
- boxes are clipped to the scene; boxes narrower than 10 px or lower than
  20 px are dropped (a query with a dropped box is dropped);
- CUHK-SYSU has no camera ids: camid is 0 on every row.

Crops are JPEG files named ``p{pid}_{scene}_{x}_{y}_{w}_{h}.jpg`` (train,
query) and ``{scene}_{x}_{y}_{w}_{h}.jpg`` (gallery). Protocol "cuhk-sysu".
"""

import re
from pathlib import Path

import numpy as np

from reid_common import Progress

from ._io import (PlaceStats, PrepError, add_common_arguments, check_destination, clip_box,
                  confined, ensure_dir, image_size_on_disk, report, require_dir, require_file,
                  save_image)
from .manifest import relabel, write_manifest

GALLERY_SIZES = (50, 100, 500, 1000, 2000, 4000)
MIN_WIDTH = 10
MIN_HEIGHT = 20


def _load(path, key):
    import scipy.io

    path = require_file(path, "annotation file")
    try:
        data = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as exc:  # scipy raises several types for bad files
        raise PrepError(f"{path}: cannot read as a MATLAB v5 file: {exc}") from None
    if key not in data:
        raise PrepError(f"{path}: missing variable {key!r}")
    return data[key]


def structs(value):
    """The structs of a squeezed loadmat value as a list (a single struct, a
    struct array, or cells holding structs)."""
    if isinstance(value, np.ndarray):
        out = []
        for v in value.ravel():
            out.extend(structs(v))
        return out
    if hasattr(value, "_fieldnames"):
        return [value]
    return []


def strings(value):
    """The strings of a squeezed cell array / char value as a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, np.ndarray):
        out = []
        for v in value.ravel():
            out.extend(strings(v))
        return out
    return []


def as_box(value):
    """(x, y, w, h) floats, or None for an empty location."""
    arr = np.asarray(value, dtype=np.float64).ravel()
    if arr.size == 0:
        return None
    if arr.size != 4:
        raise ValueError(f"expected 4 numbers, got {arr.size}")
    return tuple(float(v) for v in arr)


def pid_of(idname):
    """Numeric pid of an identity name.

    Example:
        >>> pid_of("p5069")
        5069
    """
    m = re.search(r"\d+", str(idname))
    if m is None:
        raise ValueError(idname)
    return int(m.group(0))


def _field(struct, name, where):
    if name not in struct._fieldnames:
        raise PrepError(f"{where}: struct has no field {name!r}")
    return getattr(struct, name)


class _Scenes:
    """Scene sizes (read once from the JPEG headers) and box clipping."""

    def __init__(self, folder):
        self.folder = folder
        self.sizes = {}

    def size(self, name):
        if name not in self.sizes:
            confined(self.folder / name, self.folder, f"scene {name!r}")
            size = image_size_on_disk(self.folder / name)
            if size is None:
                raise PrepError(f"{self.folder / name}: scene image not found or unreadable")
            self.sizes[name] = size
        return self.sizes[name]

    def box(self, name, box):
        """Clipped integer (x, y, w, h) or None when too small."""
        l, t, r, b = clip_box(box, *self.size(name))
        if r - l < MIN_WIDTH or b - t < MIN_HEIGHT:
            return None
        return (l, t, r - l, b - t)


def _crop_name(scene, box):
    """``{scene stem}_{x}_{y}_{w}_{h}.jpg`` for a clipped integer box."""
    return f"{Path(scene).stem}_{box[0]}_{box[1]}_{box[2]}_{box[3]}.jpg"


def _close(a, b):
    return all(abs(x - y) <= 1.0 for x, y in zip(a, b))


def convert(src, dst, *, gallery_size=100, quiet=False):
    """Prepare CUHK-SYSU as a re-identification dataset.

    Args:
        src: the dataset folder with Image/SSM/ and annotation/.
        dst: output directory.
        gallery_size: which TestG file (50, 100, 500, 1000, 2000 or 4000).
        quiet: no progress output.

    Returns:
        dict with "dataset", "manifest", "summary", "files", "dropped".
    """
    if gallery_size not in GALLERY_SIZES:
        raise PrepError(f"--gallery-size: expected one of {GALLERY_SIZES}, got {gallery_size}")
    src = require_dir(src)
    check_destination(dst, inputs=[src], dataset="cuhk-sysu", source=str(src.resolve()))
    scene_dir = require_dir(src / "Image" / "SSM", "scene folder")
    ann = require_dir(src / "annotation", "annotation folder")
    tt = ann / "test" / "train_test"
    images_path = ann / "Images.mat"
    train_path = tt / "Train.mat"
    test_path = tt / f"TestG{gallery_size}.mat"
    scenes = _Scenes(scene_dir)
    dropped = {"train_boxes": 0, "query_boxes": 0, "gallery_boxes": 0, "duplicates": 0}

    # every annotated box per scene
    boxes_of = {}
    for i, s in enumerate(structs(_load(images_path, "Img"))):
        where = f"{images_path}: Img({i + 1})"
        name = str(_field(s, "imname", where))
        found = []
        for b in structs(_field(s, "box", where)):
            try:
                box = as_box(_field(b, "idlocate", where))
            except ValueError as exc:
                raise PrepError(f"{where}: bad idlocate: {exc}") from None
            if box is not None:
                found.append(box)
        boxes_of[name] = found

    pool = set()
    if (ann / "pool.mat").is_file():
        pool = set(strings(_load(ann / "pool.mat", "pool")))

    rows = []
    jobs = []  # (scene, (x, y, w, h), row)

    used = set()

    def add(split, pid, scene, box, path):
        if path in used:  # the same person and box listed twice
            dropped["duplicates"] += 1
            return None
        used.add(path)
        row = {"path": path, "pid": pid, "label": -1, "camid": 0, "split": split,
               "dataset": "cuhk-sysu"}
        rows.append(row)
        jobs.append((scene, box, row))
        return row

    for i, ident in enumerate(structs(_load(train_path, "Train"))):
        where = f"{train_path}: Train({i + 1})"
        try:
            pid = pid_of(_field(ident, "idname", where))
        except ValueError:
            raise PrepError(f"{where}: idname has no number") from None
        for sc in structs(_field(ident, "scene", where)):
            scene = str(_field(sc, "imname", where))
            try:
                raw = as_box(_field(sc, "idlocate", where))
            except ValueError as exc:
                raise PrepError(f"{where}: bad idlocate: {exc}") from None
            box = scenes.box(scene, raw) if raw is not None else None
            if box is None:
                dropped["train_boxes"] += 1
                continue
            add("train", pid, scene, box, f"images/train/p{pid}_{_crop_name(scene, box)}")

    key = f"TestG{gallery_size}"
    gallery_rows = []
    gallery_index = {}
    dropped_seen = set()
    queries = []
    entries = structs(_load(test_path, key))
    for i, entry in enumerate(entries):
        where = f"{test_path}: {key}({i + 1})"
        q = structs(_field(entry, "Query", where))
        if len(q) != 1:
            raise PrepError(f"{where}: expected one Query struct, got {len(q)}")
        q = q[0]
        try:
            qpid = pid_of(_field(q, "idname", where))
            qraw = as_box(_field(q, "idlocate", where))
        except ValueError as exc:
            raise PrepError(f"{where}: bad Query: {exc}") from None
        qscene = str(_field(q, "imname", where))
        qbox = scenes.box(qscene, qraw) if qraw is not None else None
        if qbox is None:
            dropped["query_boxes"] += 1
            continue
        members, member_set = [], set()
        for g in structs(_field(entry, "Gallery", where)):
            gscene = str(_field(g, "imname", where))
            try:
                loc = as_box(_field(g, "idlocate", where))
            except ValueError as exc:
                raise PrepError(f"{where}: bad Gallery idlocate: {exc}") from None
            if gscene not in boxes_of:
                raise PrepError(f"{where}: gallery scene {gscene!r} is not in {images_path.name}")
            candidates = list(boxes_of[gscene])
            if loc is not None and not any(_close(loc, b) for b in candidates):
                candidates.append(loc)
            for raw in candidates:
                box = scenes.box(gscene, raw)
                if box is None:
                    if (gscene, raw) not in dropped_seen:
                        dropped_seen.add((gscene, raw))
                        dropped["gallery_boxes"] += 1
                    continue
                k = (gscene, box)
                if k not in gallery_index:
                    gallery_index[k] = len(gallery_rows)
                    gallery_rows.append({"path": f"images/gallery/{_crop_name(gscene, box)}",
                                         "pid": 0, "label": -1, "camid": 0, "split": "gallery",
                                         "dataset": "cuhk-sysu", "scene": gscene, "box": box})
                idx = gallery_index[k]
                if loc is not None and _close(loc, raw) and gallery_rows[idx]["pid"] == 0:
                    gallery_rows[idx]["pid"] = qpid
                if idx not in member_set:
                    member_set.add(idx)
                    members.append(idx)
        queries.append((qpid, qscene, qbox, members))

    for qpid, qscene, qbox, members in queries:
        row = add("query", qpid, qscene, qbox,
                  f"images/query/p{qpid}_{_crop_name(qscene, qbox)}")
        if row is not None:
            row["gallery"] = members
    for g in gallery_rows:
        rows.append(g)
        jobs.append((g["scene"], g["box"], g))

    relabel(rows)
    dst = ensure_dir(dst)
    stats = PlaceStats()
    jobs.sort(key=lambda j: j[0])
    with Progress(len(jobs), "cuhk-sysu: cropping", enabled=not quiet) as bar:
        start = 0
        while start < len(jobs):
            end = start
            while end < len(jobs) and jobs[end][0] == jobs[start][0]:
                end += 1
            group = jobs[start:end]
            todo = []
            for scene, box, row in group:
                target = dst.joinpath(*row["path"].split("/"))
                if image_size_on_disk(target) == (box[2], box[3]):
                    stats.skipped += 1
                else:
                    todo.append((box, target))
            if todo:
                from PIL import Image

                scene_path = scene_dir / group[0][0]
                try:
                    with Image.open(scene_path) as im:
                        im = im.convert("RGB")
                except OSError as exc:
                    raise PrepError(f"{scene_path}: cannot decode the scene: {exc}") from None
                for (x, y, w, h), target in todo:
                    save_image(im.crop((x, y, x + w, y + h)), target, stats, format="JPEG")
            bar.update(len(group))
            start = end

    checks = {}
    if pool:
        checks["query_gallery_scenes_outside_pool"] = len(
            {j[0] for j in jobs if j[2]["split"] != "train"} - pool)
        checks["train_scenes_in_pool"] = len(
            {j[0] for j in jobs if j[2]["split"] == "train"} & pool)
    info = write_manifest(dst, rows, dataset="cuhk-sysu", protocol="cuhk-sysu",
                          extra={"source": str(src.resolve()), "dropped": dropped,
                                 "checks": checks,
                                 "options": {"gallery_size": gallery_size}})
    return {"dataset": "cuhk-sysu", "manifest": str(dst / "manifest.jsonl"),
            "summary": info["summary"], "files": stats.as_dict(), "dropped": dropped,
            "checks": checks}


def add_arguments(parser):
    """Arguments of ``reid-prep cuhk-sysu SRC DST``."""
    parser.add_argument("src", metavar="SRC",
                        help="the CUHK-SYSU folder holding Image/SSM/ and annotation/")
    parser.add_argument("dst", metavar="DST", help="output folder for the prepared dataset")
    parser.add_argument("--gallery-size", type=int, choices=GALLERY_SIZES, default=100,
                        help="gallery scenes per query: which TestG file to use (default: 100)")
    add_common_arguments(parser, mode=False)


def run(args):
    """Run the converter from parsed arguments; returns the exit status."""
    result = convert(args.src, args.dst, gallery_size=args.gallery_size, quiet=args.quiet)
    return report(args, result)
