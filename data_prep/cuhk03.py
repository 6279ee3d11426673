"""CUHK03 converter (``cuhk03_release/cuhk-03.mat``, MATLAB v7.3 = HDF5).

The file holds ``labeled`` and ``detected``: 1x5 object references, one per
camera pair; each dereferences to an array of references that, transposed to
MATLAB order, is [persons, 10] (columns 1-5 first camera, 6-10 second).
Every image is uint8 stored transposed ([3, W, H] in HDF5 order) and becomes
[H, W, 3]; entries that are not 3-d are missing images and are skipped.

Images are written as PNG named ``{pair}_{person:03d}_{view}_{image:02d}.png``
(image = column 1..10, view 1 for columns 1-5 and 2 for 6-10). pid =
the identity's 1-based index over all pairs in order (1..1467); camid =
``(pair - 1) * 2 + view`` (1..10).

Splits (``--split``):

- ``paper`` (default): one seeded random split of the identities that have
  images from both cameras: ``--test-identities`` (default 200) test
  identities, all other identities train. Query = one randomly chosen
  (seeded) image per test identity per camera; gallery = every image of the
  test identities (the query images included, as separate files: the
  cuhk03 protocol only ranks gallery images from the other camera, so a query
  never meets its own copy). Protocol "cuhk03" (single-shot CMC).
- ``classic``: test identities = the 100 of ``testsets{--split-index}``
  (0..19), the rest train; query/gallery built as for ``paper``. Protocol
  "cuhk03".
- ``new``: the 767/700 protocol from
  ``cuhk03_new_protocol_config_{labeled,detected}.mat`` (``--new-protocol``;
  by default looked up next to ``cuhk-03.mat``): ``filelist``, ``labels``
  (pids), ``train_idx``/``query_idx``/``gallery_idx`` (1-based). Protocol
  "market1501" (that protocol is scored Market-style).
"""

import re
from pathlib import Path

import numpy as np

from reid_common import Progress

from ._io import (PlaceStats, PrepError, add_common_arguments, check_destination, ensure_dir,
                  report, require_file, save_image)
from .hdf5_safety import hdf5_outside_file
from .manifest import relabel, write_manifest

NAME = re.compile(r"^(\d+)_(\d+)_([12])_(\d+)\.png$")
SPLITS = ("paper", "classic", "new")


def image_name(pair, person, col):
    """File name of image column ``col`` (1..10) of ``person`` in ``pair``.

    Example:
        >>> image_name(1, 7, 6)
        '1_007_2_06.png'
    """
    view = 1 if col <= 5 else 2
    return f"{pair}_{person:03d}_{view}_{col:02d}.png"


def camid_of(pair, col):
    """Globally unique camera id (1..10) of column ``col`` of ``pair``."""
    return (pair - 1) * 2 + (1 if col <= 5 else 2)


def find_mat(src):
    """Locate cuhk-03.mat from SRC (the file, its folder or the folder above)."""
    src = Path(src)
    if src.is_file():
        return src
    for cand in (src / "cuhk-03.mat", src / "cuhk03_release" / "cuhk-03.mat"):
        if cand.is_file():
            return cand
    raise PrepError(f"{src}: cuhk-03.mat not found (give the file or the folder holding it)")


class Cuhk03File:
    """Read access to cuhk-03.mat: the per-pair reference tables and images.

    Args:
        path: the .mat file.
        images: "labeled" or "detected".
    """

    def __init__(self, path, images):
        import h5py

        self.path = Path(path)
        try:
            self.h5 = h5py.File(self.path, "r")
        except OSError:
            raise PrepError(f"{self.path}: not a MATLAB v7.3 (HDF5) file") from None
        try:
            self._read_tables(images)
        except BaseException:
            self.h5.close()
            raise
        self._columns = {}
        self.offsets = np.concatenate([[0], np.cumsum([t.shape[0] for t in self.tables])])

    def _read_tables(self, images):
        if images not in self.h5:
            raise PrepError(f"{self.path}: no '{images}' dataset")
        self.tables = []
        for ref in np.asarray(self._get(images)[()]).ravel():
            table = np.asarray(self._get(ref)[()]).T
            if table.ndim != 2 or table.shape[1] != 10:
                raise PrepError(f"{self.path}: '{images}' pair {len(self.tables) + 1} has shape "
                                f"{table.shape} after transposing, expected (persons, 10)")
            self.tables.append(table)

    def close(self):
        self.h5.close()

    def _get(self, key):
        """``self.h5[key]`` (a name or an object reference), refused when it reads
        from outside the file."""
        if isinstance(key, str):
            problem = hdf5_outside_file(self.h5, key)
            obj = self.h5[key] if problem is None else None
        else:
            obj = self.h5[key]
            problem = hdf5_outside_file(obj)
        if problem is not None:
            name = key if isinstance(key, str) else (obj.name or "a referenced dataset")
            raise PrepError(f"{self.path}: {name} {problem}; refusing to read data from "
                            "outside the file")
        return obj

    def pid(self, pair, person):
        """Global 1-based pid of (pair, person)."""
        return int(self.offsets[pair - 1]) + person

    def has_image(self, pair, person, col):
        """True if the entry is a real (3-d) image."""
        return len(self._get(self.tables[pair - 1][person - 1, col - 1]).shape) == 3

    def image(self, pair, person, col):
        """The image [H, W, 3] uint8."""
        arr = np.asarray(self._get(self.tables[pair - 1][person - 1, col - 1])[()])
        return np.ascontiguousarray(arr.transpose(2, 1, 0)).astype(np.uint8, copy=False)

    def identities(self):
        """All (pair, person) in order."""
        return [(p + 1, q + 1) for p, t in enumerate(self.tables) for q in range(t.shape[0])]

    def columns(self, pair, person):
        """Columns (1..10) holding a real image (cached)."""
        key = (pair, person)
        if key not in self._columns:
            self._columns[key] = [c for c in range(1, 11) if self.has_image(pair, person, c)]
        return self._columns[key]

    def testset(self, index):
        """(pair, person) pairs of classic split ``index`` (0-based)."""
        if "testsets" not in self.h5:
            raise PrepError(f"{self.path}: no 'testsets' dataset (needed by --split classic)")
        refs = np.asarray(self._get("testsets")[()]).ravel()
        if not 0 <= index < len(refs):
            raise PrepError(f"--split-index: {index} is out of range 0..{len(refs) - 1}")
        pairs = np.asarray(self._get(refs[index])[()]).T
        if pairs.ndim != 2 or pairs.shape[1] != 2:
            raise PrepError(f"{self.path}: testsets {index} has shape {pairs.shape}, expected (n, 2)")
        out = []
        for pair, person in pairs.astype(np.int64):
            if not (1 <= pair <= len(self.tables) and 1 <= person <= self.tables[pair - 1].shape[0]):
                raise PrepError(f"{self.path}: testsets {index} names ({pair}, {person}), not a person")
            out.append((int(pair), int(person)))
        return out


def _row(split, pair, person, col, pid):
    return {"path": f"images/{split}/{image_name(pair, person, col)}", "pid": pid, "label": -1,
            "camid": camid_of(pair, col), "split": split, "dataset": "cuhk03",
            "cell": (pair, person, col)}


def _single_shot_rows(data, test_ids, rng):
    """Rows of the paper/classic protocols for the given test identities."""
    test = set(test_ids)
    rows = {"train": [], "query": [], "gallery": []}
    for pair, person in data.identities():
        cols = data.columns(pair, person)
        pid = data.pid(pair, person)
        if (pair, person) not in test:
            rows["train"] += [_row("train", pair, person, c, pid) for c in cols]
            continue
        rows["gallery"] += [_row("gallery", pair, person, c, pid) for c in cols]
        for view_cols in ([c for c in cols if c <= 5], [c for c in cols if c > 5]):
            if view_cols:
                c = view_cols[int(rng.integers(len(view_cols)))]
                rows["query"].append(_row("query", pair, person, c, pid))
    return rows["train"] + rows["query"] + rows["gallery"]


def _load_new_protocol(path):
    import scipy.io

    path = require_file(path, "new-protocol config")
    try:
        cfg = scipy.io.loadmat(str(path), squeeze_me=True)
    except Exception as exc:  # scipy raises several types for bad files
        raise PrepError(f"{path}: cannot read as a MATLAB v5 file: {exc}") from None
    for key in ("filelist", "labels", "train_idx", "query_idx", "gallery_idx"):
        if key not in cfg:
            raise PrepError(f"{path}: missing variable {key!r}")
    names = [str(np.asarray(v).ravel()[0]) if np.asarray(v).size else ""
             for v in np.atleast_1d(cfg["filelist"]).ravel()]
    labels = np.atleast_1d(cfg["labels"]).ravel().astype(np.int64)
    if len(labels) != len(names):
        raise PrepError(f"{path}: {len(names)} files but {len(labels)} labels")
    idx = {}
    for key in ("train_idx", "query_idx", "gallery_idx"):
        v = np.atleast_1d(cfg[key]).ravel().astype(np.int64)
        if v.size and (v.min() < 1 or v.max() > len(names)):
            raise PrepError(f"{path}: {key} holds indices outside 1..{len(names)}")
        idx[key] = v - 1
    return names, labels, idx


def _new_protocol_rows(data, config_path):
    names, labels, idx = _load_new_protocol(config_path)
    rows = []
    for split, key in (("train", "train_idx"), ("query", "query_idx"), ("gallery", "gallery_idx")):
        for i in idx[key]:
            m = NAME.match(names[i])
            if m is None:
                raise PrepError(f"{config_path}: filelist entry {i + 1} {names[i]!r} does not follow "
                                "{pair}_{person:03d}_{view}_{image:02d}.png")
            pair, person, view, col = (int(g) for g in m.groups())
            if not (1 <= pair <= len(data.tables) and 1 <= person <= data.tables[pair - 1].shape[0]
                    and 1 <= col <= 10 and view == (1 if col <= 5 else 2)):
                raise PrepError(f"{config_path}: filelist entry {names[i]!r} names no image of "
                                f"{data.path.name}")
            if not data.has_image(pair, person, col):
                raise PrepError(f"{config_path}: {names[i]!r} is a missing image in {data.path.name}")
            rows.append(_row(split, pair, person, col, int(labels[i])))
    return rows


def convert(src, dst, *, images="labeled", split="paper", split_index=0, test_identities=200,
            new_protocol=None, seed=0, quiet=False):
    """Prepare CUHK03.

    Args:
        src: cuhk-03.mat, or the folder holding it.
        dst: output directory.
        images: "labeled" (manual boxes) or "detected" (DPM boxes).
        split: "paper", "classic" or "new" (see the module docstring).
        split_index: classic split 0..19.
        test_identities: test identities of the paper split.
        new_protocol: the new-protocol config .mat (split "new"); default
            ``cuhk03_new_protocol_config_{images}.mat`` next to cuhk-03.mat.
        seed: seed of the paper split and of the query choice.
        quiet: no progress output.

    Returns:
        dict with "dataset", "manifest", "summary", "files".
    """
    if images not in ("labeled", "detected"):
        raise PrepError(f"--images: expected labeled or detected, got {images!r}")
    if split not in SPLITS:
        raise PrepError(f"--split: expected one of {', '.join(SPLITS)}, got {split!r}")
    mat = find_mat(src)
    if split == "new":
        if new_protocol is None:
            name = f"cuhk03_new_protocol_config_{images}.mat"
            cands = [mat.parent / name, mat.parent.parent / name]
            new_protocol = next((c for c in cands if c.is_file()), None)
            if new_protocol is None:
                raise PrepError(f"--new-protocol: {name} not found next to {mat}; give its path")
        new_protocol = Path(new_protocol)
    inputs = [Path(src), mat] + ([new_protocol] if new_protocol is not None else [])
    check_destination(dst, inputs=inputs, dataset="cuhk03", source=str(mat.resolve()))
    data = Cuhk03File(mat, images)
    try:
        rng = np.random.default_rng(seed)
        if split == "new":
            rows = _new_protocol_rows(data, new_protocol)
            protocol = "market1501"
        else:
            if split == "paper":
                eligible = [i for i in data.identities()
                            if any(c <= 5 for c in data.columns(*i))
                            and any(c > 5 for c in data.columns(*i))]
                if not 1 <= test_identities < len(eligible):
                    raise PrepError(f"--test-identities: {test_identities} must be in 1.."
                                    f"{len(eligible) - 1} ({len(eligible)} identities have "
                                    "images from both cameras)")
                chosen = rng.choice(len(eligible), size=test_identities, replace=False)
                test_ids = [eligible[i] for i in sorted(chosen)]
            else:
                test_ids = data.testset(split_index)
            rows = _single_shot_rows(data, test_ids, rng)
            protocol = "cuhk03"
        relabel(rows)
        dst = ensure_dir(dst)
        stats = PlaceStats()
        with Progress(len(rows), "cuhk03: writing images", enabled=not quiet) as bar:
            for r in rows:
                save_image(data.image(*r["cell"]), dst.joinpath(*r["path"].split("/")), stats)
                bar.update()
    finally:
        data.close()
    options = {"images": images, "split": split, "seed": seed}
    if split == "paper":
        options["test_identities"] = test_identities
    elif split == "classic":
        options["split_index"] = split_index
    else:
        options["new_protocol"] = str(new_protocol.resolve())
    info = write_manifest(dst, rows, dataset="cuhk03", protocol=protocol,
                          extra={"source": str(mat.resolve()), "options": options})
    return {"dataset": "cuhk03", "manifest": str(dst / "manifest.jsonl"),
            "summary": info["summary"], "files": stats.as_dict(), "dropped": {}}


def add_arguments(parser):
    """Arguments of ``reid-prep cuhk03 SRC DST``."""
    parser.add_argument("src", metavar="SRC", help="cuhk-03.mat or the cuhk03_release folder")
    parser.add_argument("dst", metavar="DST", help="output folder for the prepared dataset")
    parser.add_argument("--images", choices=("labeled", "detected"), default="labeled",
                        help="manually labeled boxes or DPM-detected boxes (default: labeled)")
    parser.add_argument("--split", choices=SPLITS, default="paper",
                        help="paper: one seeded random split with --test-identities test "
                             "identities; classic: the testsets split --split-index; new: the "
                             "767/700 protocol (default: paper)")
    parser.add_argument("--split-index", type=int, default=0, metavar="K",
                        help="which of the 20 classic splits, 0..19 (default: 0)")
    parser.add_argument("--test-identities", type=int, default=200, metavar="N",
                        help="number of test identities of the paper split (default: 200)")
    parser.add_argument("--new-protocol", metavar="PATH", default=None,
                        help="cuhk03_new_protocol_config_{labeled,detected}.mat for --split new "
                             "(default: looked up next to cuhk-03.mat)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the paper split and of the query choice (default: 0)")
    add_common_arguments(parser, mode=False)


def run(args):
    """Run the converter from parsed arguments; returns the exit status."""
    result = convert(args.src, args.dst, images=args.images, split=args.split,
                     split_index=args.split_index, test_identities=args.test_identities,
                     new_protocol=args.new_protocol, seed=args.seed, quiet=args.quiet)
    return report(args, result)
