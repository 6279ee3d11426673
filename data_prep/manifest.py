"""The prepared-dataset format and its validating loader.

A prepared dataset is a directory ``DST`` holding

- ``DST/manifest.jsonl``: one JSON object per image and line::

      {"path": "images/train/0002_c1s1_000451_03.jpg", "pid": 2, "label": 0,
       "camid": 1, "split": "train", "dataset": "market1501"}

  ``path`` is relative to ``DST``; ``label`` is contiguous 0..L-1 on train rows
  and -1 elsewhere; ``split`` is "train", "query" or "gallery". Query rows of
  protocols with per-query galleries also carry ``"gallery": [int, ...]``,
  indices into the gallery rows in manifest order.
- ``DST/dataset.json``: ``{"format": "reid-manifest", "version": 1,
  "dataset": str, "protocol": "market1501"|"cuhk03"|"cuhk-sysu",
  "summary": {...}, ...}``.
- ``DST/images/<split>/...``: the image files, so the directory is
  self-contained and can be moved as a whole.

:func:`load_manifest` reads and validates both files; every problem raises
:class:`ManifestError` naming the file, the line and what is wrong.
"""

import json
import os
import posixpath
from pathlib import Path

import numpy as np

from reid_common import PROTOCOLS, atomic_write_json, atomic_write_text

from ._io import summarize, writing
from ._reading import Confinement, parse_json

FORMAT = "reid-manifest"
VERSION = 1
MANIFEST_NAME = "manifest.jsonl"
INFO_NAME = "dataset.json"
SPLITS = ("train", "query", "gallery")
_FIELDS = ("path", "pid", "label", "camid", "split", "dataset")
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1


class ManifestError(ValueError):
    """A prepared dataset is malformed. The message reads
    ``FILE:LINE: problem`` (or ``FILE: problem`` for whole-file problems)."""


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class Split:
    """The rows of one split as parallel numpy arrays.

    Attributes:
        name: "train", "query" or "gallery".
        paths: [N] absolute image paths (str).
        pids: [N] int64 person ids as in the source dataset.
        labels: [N] int64 training labels (0..L-1 on train, -1 elsewhere).
        camids: [N] int64 camera ids.
        datasets: [N] dataset name of each row (str).
        gallery_lists: for a query split with per-query galleries, a list of
            N int64 arrays (indices into the gallery split); else None.

    Example:
        >>> s = Split("train", ["/a.jpg"], [3], [0], [1], ["d"])
        >>> len(s), int(s.labels[0])
        (1, 0)
    """

    def __init__(self, name, paths, pids, labels, camids, datasets, gallery_lists=None):
        self.name = name
        self.paths = np.asarray(paths, dtype=str)
        self.pids = np.asarray(pids, dtype=np.int64).reshape(-1)
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        self.camids = np.asarray(camids, dtype=np.int64).reshape(-1)
        self.datasets = np.asarray(datasets, dtype=str)
        self.gallery_lists = gallery_lists

    def __len__(self):
        return int(self.pids.shape[0])

    @property
    def num_classes(self):
        """Number of distinct labels >= 0."""
        return int(np.unique(self.labels[self.labels >= 0]).size)

    def __repr__(self):
        return f"Split({self.name!r}, {len(self)} images)"


class Manifest:
    """A validated prepared dataset (see the module docstring).

    Attributes:
        root: the dataset directory (Path).
        dataset: dataset name from dataset.json.
        protocol: evaluation protocol ("market1501", "cuhk03" or "cuhk-sysu").
        info: the whole dataset.json object.
        rows: the manifest rows (list of dicts) in file order.
    """

    def __init__(self, root, info, rows):
        self.root = Path(root)
        self.info = info
        self.dataset = info["dataset"]
        self.protocol = info["protocol"]
        self.rows = rows
        self._splits = {}

    def split(self, name):
        """The rows of split ``name`` as a :class:`Split` (empty if absent).

        Args:
            name: "train", "query" or "gallery".

        Returns:
            Split with absolute paths; the query split carries
            ``gallery_lists`` when the manifest has per-query galleries.
        """
        if name not in SPLITS:
            raise ManifestError(
                f"{self.root / MANIFEST_NAME}: unknown split {name!r} "
                f"(expected one of {', '.join(SPLITS)})")
        if name not in self._splits:
            sel = [r for r in self.rows if r["split"] == name]
            lists = None
            if name == "query" and sel and "gallery" in sel[0]:
                lists = [np.asarray(r["gallery"], dtype=np.int64) for r in sel]
            root = str(self.root.resolve())
            self._splits[name] = Split(
                name,
                [os.path.join(root, *r["path"].split("/")) for r in sel],
                [r["pid"] for r in sel],
                [r["label"] for r in sel],
                [r["camid"] for r in sel],
                [r["dataset"] for r in sel],
                lists,
            )
        return self._splits[name]

    @property
    def num_classes(self):
        """Number of distinct train labels."""
        return len({r["label"] for r in self.rows if r["split"] == "train"})

    @property
    def splits(self):
        """Names of the splits present, in the order train, query, gallery."""
        present = {r["split"] for r in self.rows}
        return [s for s in SPLITS if s in present]

    def __repr__(self):
        return f"Manifest({str(self.root)!r}, dataset={self.dataset!r}, protocol={self.protocol!r})"


def _check_row(obj, where):
    """Type checks of one row; raises ManifestError with ``where`` prefix."""
    if not isinstance(obj, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for key in _FIELDS:
        if key not in obj:
            raise ManifestError(f"{where}: missing field {key!r}")
    path = obj["path"]
    if not isinstance(path, str) or not path:
        raise ManifestError(f"{where}: 'path' must be a non-empty string")
    norm = posixpath.normpath(path)
    if path.startswith("/") or "\\" in path or (len(path) > 1 and path[1] == ":") \
            or norm == ".." or norm.startswith("../") or norm != path:
        raise ManifestError(
            f"{where}: path {path!r} must be a normalised relative path inside the dataset "
            "directory, with '/' separators")
    split = obj["split"]
    if split not in SPLITS:
        raise ManifestError(
            f"{where}: unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    for key in ("pid", "label", "camid"):
        if not _is_int(obj[key]):
            raise ManifestError(f"{where}: {key!r} must be an integer, got {obj[key]!r}")
        if not INT64_MIN <= obj[key] <= INT64_MAX:
            raise ManifestError(f"{where}: {key!r} {obj[key]} is outside the 64-bit integer "
                                "range")
    if obj["camid"] < 0:
        raise ManifestError(f"{where}: camid must be >= 0, got {obj['camid']}")
    if not isinstance(obj["dataset"], str) or not obj["dataset"]:
        raise ManifestError(f"{where}: 'dataset' must be a non-empty string")
    if split == "train":
        if obj["label"] < 0:
            raise ManifestError(f"{where}: train row needs a label >= 0, got {obj['label']}")
        if obj["pid"] < 0:
            raise ManifestError(f"{where}: train row with pid {obj['pid']} (junk)")
    else:
        if obj["label"] != -1:
            raise ManifestError(f"{where}: {split} row must have label -1, got {obj['label']}")
        if split == "query" and obj["pid"] < 0:
            raise ManifestError(f"{where}: query row with pid {obj['pid']} (junk)")
        if obj["pid"] < -1:
            raise ManifestError(f"{where}: pid must be >= -1, got {obj['pid']}")
    if "gallery" in obj:
        if split != "query":
            raise ManifestError(f"{where}: only query rows may carry a 'gallery' list")
        g = obj["gallery"]
        if not isinstance(g, list) or not all(_is_int(v) for v in g):
            raise ManifestError(f"{where}: 'gallery' must be a list of integers")


def validate_rows(rows, protocol, *, source, lines=None, root=None):
    """Validate manifest rows as a whole.

    Args:
        rows: list of row dicts.
        protocol: the dataset's protocol.
        source: file name used in messages.
        lines: 1-based line number of each row (default: 1..N).
        root: dataset directory; when given, every path must be a file there.

    Raises:
        ManifestError naming the line and the problem.
    """
    if lines is None:
        lines = list(range(1, len(rows) + 1))

    def where(i):
        return f"{source}:{lines[i]}"

    seen = {}
    files = Confinement(root) if root is not None else None
    for i, r in enumerate(rows):
        _check_row(r, where(i))
        prev = seen.get(r["path"])
        if prev is not None:
            raise ManifestError(f"{where(i)}: duplicate path {r['path']!r} (first on line {lines[prev]})")
        seen[r["path"]] = i
        if files is not None:
            problem = files.check(os.path.join(files.root, *r["path"].split("/")))
            if problem is not None:
                raise ManifestError(f"{where(i)}: image file {r['path']!r} {problem}")

    # train labels: one label per (dataset, pid) and contiguous 0..L-1
    train = [i for i, r in enumerate(rows) if r["split"] == "train"]
    label_of, owner_of = {}, {}
    for i in train:
        r = rows[i]
        key = (r["dataset"], r["pid"])
        lab = r["label"]
        if key in label_of and label_of[key][0] != lab:
            raise ManifestError(
                f"{where(i)}: pid {r['pid']} has label {lab} but line "
                f"{lines[label_of[key][1]]} gave it label {label_of[key][0]}")
        if lab in owner_of and owner_of[lab][0] != key:
            raise ManifestError(
                f"{where(i)}: label {lab} is already used by pid {owner_of[lab][0][1]} "
                f"of {owner_of[lab][0][0]!r} (line {lines[owner_of[lab][1]]})")
        label_of.setdefault(key, (lab, i))
        owner_of.setdefault(lab, (key, i))
    num = len(owner_of)
    if num and max(owner_of) != num - 1:
        missing = min(set(range(num)) - set(owner_of))
        bad = min((i for i in train if rows[i]["label"] >= num), key=lambda i: lines[i])
        raise ManifestError(
            f"{where(bad)}: train label {rows[bad]['label']} is out of 0..{num - 1}: train "
            f"labels must be contiguous 0..L-1 (label {missing} is missing)")

    query = [i for i, r in enumerate(rows) if r["split"] == "query"]
    gallery = [i for i, r in enumerate(rows) if r["split"] == "gallery"]
    with_lists = [i for i in query if "gallery" in rows[i]]
    if with_lists and len(with_lists) != len(query):
        bad = next(i for i in query if "gallery" not in rows[i])
        raise ManifestError(
            f"{where(bad)}: query row has no 'gallery' list while other query rows have one")
    if protocol == "cuhk-sysu" and query and not with_lists:
        raise ManifestError(
            f"{where(query[0])}: protocol cuhk-sysu needs a 'gallery' list on every query row")
    n_gallery = len(gallery)
    for i in with_lists:
        for g in rows[i]["gallery"]:
            if not 0 <= g < n_gallery:
                raise ManifestError(
                    f"{where(i)}: gallery index {g} is out of range (the manifest has "
                    f"{n_gallery} gallery rows)")
    if protocol == "market1501":
        gallery_ids = {(rows[i]["dataset"], rows[i]["pid"]) for i in gallery}
        for i in query:
            if (rows[i]["dataset"], rows[i]["pid"]) not in gallery_ids:
                raise ManifestError(
                    f"{where(i)}: query pid {rows[i]['pid']} has no image in the gallery")


def _read_info(root):
    info_path = root / INFO_NAME
    if not info_path.is_file():
        raise ManifestError(f"{info_path}: not found (is {root} a prepared dataset?)")
    try:
        info = parse_json(info_path.read_bytes())
    except ValueError as exc:
        raise ManifestError(f"{info_path}: {exc}") from None
    if not isinstance(info, dict):
        raise ManifestError(f"{info_path}: expected a JSON object")
    if info.get("format") != FORMAT:
        raise ManifestError(f"{info_path}: 'format' must be {FORMAT!r}, got {info.get('format')!r}")
    if info.get("version") != VERSION:
        raise ManifestError(f"{info_path}: unsupported version {info.get('version')!r} (expected {VERSION})")
    if not isinstance(info.get("dataset"), str) or not info["dataset"]:
        raise ManifestError(f"{info_path}: 'dataset' must be a non-empty string")
    if info.get("protocol") not in PROTOCOLS:
        raise ManifestError(
            f"{info_path}: unknown protocol {info.get('protocol')!r} "
            f"(expected one of {', '.join(PROTOCOLS)})")
    return info


def load_manifest(path_or_dir, check_files=True):
    """Read and validate a prepared dataset.

    Args:
        path_or_dir: the dataset directory, its ``manifest.jsonl`` or its
            ``dataset.json``.
        check_files: also check that every image file exists.

    Returns:
        Manifest.

    Raises:
        ManifestError: "FILE:LINE: problem" for malformed JSON, missing
            fields, unknown splits, bad camids, duplicate paths, missing
            files, non-contiguous train labels, a query pid without gallery
            images (market1501 protocol), gallery indices out of range.

    Example:
        >>> import tempfile
        >>> rows = [
        ...     {"path": "images/train/a.jpg", "pid": 1, "label": 0, "camid": 1,
        ...      "split": "train", "dataset": "d"},
        ...     {"path": "images/query/b.jpg", "pid": 2, "label": -1, "camid": 1,
        ...      "split": "query", "dataset": "d"},
        ...     {"path": "images/gallery/c.jpg", "pid": 2, "label": -1, "camid": 2,
        ...      "split": "gallery", "dataset": "d"}]
        >>> dst = tempfile.mkdtemp()
        >>> info = write_manifest(dst, rows, dataset="d", protocol="market1501",
        ...                       check_files=False)
        >>> m = load_manifest(dst, check_files=False)
        >>> m.protocol, m.split("query").pids.tolist(), m.split("train").num_classes
        ('market1501', [2], 1)
    """
    p = Path(path_or_dir)
    if p.is_dir():
        root = p
    elif p.name in (MANIFEST_NAME, INFO_NAME):
        root = p.parent
    else:
        raise ManifestError(f"{p}: not a prepared dataset directory or manifest file")
    manifest_path = root / MANIFEST_NAME
    info = _read_info(root)
    if not manifest_path.is_file():
        raise ManifestError(f"{manifest_path}: not found")
    rows, lines = [], []
    try:
        fh = open(manifest_path, "rb")
    except OSError as exc:
        raise ManifestError(f"{manifest_path}: cannot read: {exc.strerror or exc}") from None
    with fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = parse_json(raw)
            except ValueError as exc:
                raise ManifestError(f"{manifest_path}:{n}: {exc}") from None
            rows.append(obj)
            lines.append(n)
    validate_rows(rows, info["protocol"], source=str(manifest_path), lines=lines,
                  root=str(root) if check_files else None)
    return Manifest(root, info, rows)


def write_manifest(dst, rows, *, dataset, protocol, extra=None, check_files=True):
    """Validate ``rows`` and write ``manifest.jsonl`` and ``dataset.json``
    atomically into ``dst`` (manifest first, dataset.json last).

    Args:
        dst: dataset directory (exists; images already in place).
        rows: row dicts (see the module docstring), in the order to write.
        dataset: dataset name.
        protocol: one of PROTOCOLS.
        extra: more keys for dataset.json (source, options, dropped counts).
        check_files: check that every image exists before writing.

    Returns:
        The dataset.json object written (with "summary").
    """
    dst = Path(dst)
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol: expected one of {PROTOCOLS}, got {protocol!r}")
    validate_rows(rows, protocol, source=str(dst / MANIFEST_NAME),
                  root=str(dst) if check_files else None)
    ordered = []
    for r in rows:
        o = {k: r[k] for k in _FIELDS}
        if "gallery" in r:
            o["gallery"] = [int(v) for v in r["gallery"]]
        ordered.append(json.dumps(o, separators=(", ", ": ")))
    info = {"format": FORMAT, "version": VERSION, "dataset": dataset, "protocol": protocol,
            "summary": summarize(rows)}
    if extra:
        info.update(extra)
    with writing(dst / MANIFEST_NAME):
        atomic_write_text(dst / MANIFEST_NAME, "\n".join(ordered) + ("\n" if ordered else ""),
                          newline="\n")
    with writing(dst / INFO_NAME):
        atomic_write_json(dst / INFO_NAME, info, sort_keys=False)
    return info


def relabel(rows):
    """Set contiguous train labels in sorted (dataset, pid) order and -1 on
    the other rows, in place. Returns the number of classes."""
    keys = sorted({(r["dataset"], r["pid"]) for r in rows if r["split"] == "train"})
    index = {k: i for i, k in enumerate(keys)}
    for r in rows:
        r["label"] = index[(r["dataset"], r["pid"])] if r["split"] == "train" else -1
    return len(keys)
