"""Builders of tiny fake copies of the distributed dataset formats.

Each builder writes the same folder layout, file naming and file formats as
the real distribution (see the datasets spec) with a handful of tiny images,
and returns what it built (the construction parameters), so tests can derive
their expectations without going through the converters.
"""

import struct
from pathlib import Path

import numpy as np


def _jpeg(path, color, size=(4, 8)):
    """Write a solid-colour JPEG of ``size`` = (width, height)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, tuple(int(c) for c in color)).save(path, format="JPEG", quality=90)


# --------------------------------------------------------------------------
# Market-1501 / DukeMTMC-reID

def market_name(dataset, pid, cam, k):
    """A file name in the dataset's naming for pid, camera and a counter."""
    if dataset == "duke":
        return f"{pid:04d}_c{cam}_f{1000 + k:07d}.jpg"
    p = "-1" if pid == -1 else f"{pid:04d}"
    return f"{p}_c{cam}s{1 + k % 3}_{100 * k + 7:06d}_{k % 4:02d}.jpg"


def make_market(root, dataset="market1501"):
    """Market-1501 (or Duke) layout under ``root``.

    Returns:
        dict: "train_pids", "test_pids" (sorted), "rows": list of
        (split, file name, pid, camid) that a converter must keep,
        "junk", "distractors" (counts written), "orphan_queries" (query
        files whose pid has no gallery image).
    """
    root = Path(root)
    train_pids = [3, 7, 12]
    test_pids = [4, 8, 15]
    cams = [1, 2, 5] if dataset == "market1501" else [1, 7, 8]
    rows, k = [], 0
    folders = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}

    def add(split, pid, cam, keep=True):
        nonlocal k
        k += 1
        name = market_name(dataset, pid, cam, k)
        _jpeg(root / folders[split] / name, (pid * 10 % 256, cam * 30, k % 256))
        if keep:
            rows.append((split, name, pid, cam))

    for pid in train_pids:
        for cam in cams:
            add("train", pid, cam)
    for pid in test_pids:
        for cam in cams:
            add("gallery", pid, cam)
            add("gallery", pid, cam)
        add("query", pid, cams[0])
        add("query", pid, cams[1])
    for cam in cams[:2]:
        add("gallery", 0, cam)          # distractors stay
        add("gallery", -1, cam, False)  # junk is dropped
    add("query", 99, cams[0], False)    # no gallery image: dropped
    for folder in folders.values():
        (root / folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0 not an image")
    (root / "readme.txt").write_text("fake\n")
    return {"train_pids": train_pids, "test_pids": test_pids, "rows": rows,
            "junk": 2, "distractors": 2, "orphan_queries": 1}


# --------------------------------------------------------------------------
# MSMT17

def msmt_name(pid, k, cam):
    return f"{pid:04d}_{k:03d}_{cam:02d}_0303morning_{15 + k:04d}_{k % 2}.jpg"


def make_msmt17(root):
    """MSMT17_V1 layout: train/, test/ and the four list files.

    Returns:
        dict with "train", "val", "query", "gallery": lists of
        (file name, pid, camid).
    """
    root = Path(root)
    spec = {
        "train": ("train", [(0, [1, 2]), (1, [3, 12]), (2, [15, 4])]),
        "val": ("train", [(5, [2, 11])]),
        "query": ("test", [(0, [1]), (1, [9]), (2, [15])]),
        "gallery": ("test", [(0, [3, 4]), (1, [2, 10]), (2, [14, 1]), (3, [7])]),
    }
    out, k = {}, 0
    for split, (folder, ids) in spec.items():
        lines, out[split] = [], []
        for pid, cams in ids:
            for cam in cams:
                k += 1
                name = msmt_name(pid, k, cam)
                _jpeg(root / folder / f"{pid:04d}" / name, (pid * 40, cam * 15, k))
                lines.append(f"{pid:04d}/{name} {pid}")
                out[split].append((name, pid, cam))
        (root / f"list_{split}.txt").write_text("\n".join(lines) + "\n")
    return out


# --------------------------------------------------------------------------
# CUHK03

CUHK03_PERSONS = (4, 3, 2, 2, 1)
# (pair, person, column) entries stored as missing images
CUHK03_MISSING = {(1, 2, 3), (1, 2, 8), (2, 1, 10), (3, 2, 5), (3, 2, 4)} | \
    {(5, 1, c) for c in range(6, 11)}


def cuhk03_image(kind, pair, person, col):
    """The [H, W, 3] uint8 image the fake stores for one entry (H != W)."""
    h, w = 6 + pair, 4 + (col % 3)
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = pair * 40 + person
    img[..., 1] = col * 20 + (0 if kind == "labeled" else 7)
    img[..., 2] = (np.arange(h)[:, None] * 16 + np.arange(w)[None, :]).astype(np.uint8)
    return img


def cuhk03_testsets():
    """The 20 classic test sets: lists of (pair, person)."""
    ids = [(p, q) for p, n in enumerate(CUHK03_PERSONS, 1) for q in range(1, n + 1)
           if (p, q) != (5, 1)]
    return [[ids[(3 * k + j) % len(ids)] for j in range(3)] for k in range(20)]


def _matlab_header(path):
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    header = text.ljust(116, b" ") + b"\x00" * 8 + struct.pack("<H", 0x0200) + b"IM"
    with open(path, "r+b") as fh:
        fh.write(header)


def make_cuhk03(root):
    """``cuhk03_release/cuhk-03.mat`` (HDF5 with object references, MATLAB v7.3
    userblock) plus both new-protocol config files (MATLAB v5).

    Returns:
        dict with "mat", "persons", "missing", "testsets", "new" (per kind:
        {"config": path, "train"/"query"/"gallery": [file names], "pid": {name: pid}}).
    """
    import h5py
    import scipy.io

    root = Path(root)
    rel = root / "cuhk03_release"
    rel.mkdir(parents=True, exist_ok=True)
    mat = rel / "cuhk-03.mat"
    with h5py.File(mat, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        counter = [0]

        def store(data, cls):
            counter[0] += 1
            ds = refs.create_dataset(f"r{counter[0]}", data=data)
            ds.attrs["MATLAB_class"] = np.bytes_(cls)
            return ds

        for kind in ("labeled", "detected"):
            top = f.create_dataset(kind, (5, 1), dtype=h5py.ref_dtype)
            top.attrs["MATLAB_class"] = np.bytes_("cell")
            for p, n in enumerate(CUHK03_PERSONS, 1):
                table = np.empty((10, n), dtype=object)  # MATLAB (n, 10) stored transposed
                for q in range(1, n + 1):
                    for c in range(1, 11):
                        if (p, q, c) in CUHK03_MISSING:
                            if (p + q + c) % 2:
                                ds = store(np.zeros(2, np.uint64), "double")
                                ds.attrs["MATLAB_empty"] = np.uint8(1)
                            else:
                                ds = store(np.zeros((0, 0), np.uint8), "uint8")
                        else:
                            ds = store(cuhk03_image(kind, p, q, c).transpose(2, 1, 0), "uint8")
                        table[c - 1, q - 1] = ds.ref
                pair_ds = refs.create_dataset(f"pair_{kind}_{p}", data=table, dtype=h5py.ref_dtype)
                pair_ds.attrs["MATLAB_class"] = np.bytes_("cell")
                top[p - 1, 0] = pair_ds.ref
        tests = f.create_dataset("testsets", (20, 1), dtype=h5py.ref_dtype)
        tests.attrs["MATLAB_class"] = np.bytes_("cell")
        for k, ids in enumerate(cuhk03_testsets()):
            arr = np.asarray(ids, dtype=np.float64).T  # MATLAB (n, 2) stored transposed
            tests[k, 0] = store(arr, "double").ref
    _matlab_header(mat)

    # new protocol: pids 1..6 train, the others test
    pid_of = {}
    offset = 0
    for p, n in enumerate(CUHK03_PERSONS, 1):
        for q in range(1, n + 1):
            pid_of[(p, q)] = offset + q
        offset += n
    new = {}
    for kind in ("labeled", "detected"):
        names, labels, split_of = [], [], []
        for (p, q), pid in sorted(pid_of.items()):
            first_view = {}
            for c in range(1, 11):
                if (p, q, c) in CUHK03_MISSING:
                    continue
                view = 1 if c <= 5 else 2
                name = f"{p}_{q:03d}_{view}_{c:02d}.png"
                names.append(name)
                labels.append(pid)
                if pid <= 6:
                    split_of.append("train")
                elif view not in first_view:
                    first_view[view] = name
                    split_of.append("query")
                else:
                    split_of.append("gallery")
        filelist = np.empty((len(names), 1), dtype=object)
        for i, n in enumerate(names):
            filelist[i, 0] = n
        idx = {s: np.array([[i + 1] for i, t in enumerate(split_of) if t == s], dtype=np.float64)
               for s in ("train", "query", "gallery")}
        cfg = root / f"cuhk03_new_protocol_config_{kind}.mat"
        scipy.io.savemat(str(cfg), {"filelist": filelist,
                                    "labels": np.asarray(labels, np.float64)[:, None],
                                    "train_idx": idx["train"], "query_idx": idx["query"],
                                    "gallery_idx": idx["gallery"]})
        new[kind] = {"config": cfg, "pid": dict(zip(names, labels)),
                     **{s: [n for n, t in zip(names, split_of) if t == s]
                        for s in ("train", "query", "gallery")}}
    return {"mat": mat, "persons": CUHK03_PERSONS, "missing": CUHK03_MISSING,
            "testsets": cuhk03_testsets(), "new": new, "pid": pid_of}


# --------------------------------------------------------------------------
# CUHK-SYSU

SYSU_SCENE_SIZE = (96, 72)  # (width, height)
# well separated colours, one per annotated box
_PALETTE = [(r, g, b) for r in (0, 128, 255) for g in (0, 128, 255) for b in (0, 128, 255)
            if (r, g, b) != (128, 128, 128)]

# scene -> list of (box id, (x, y, w, h), identity name or None)
SYSU_BOXES = {
    "s1.jpg": [("a", (2, 2, 14, 30), "p10"), ("b", (30, 10, 12, 25), "p11")],
    "s2.jpg": [("c", (5, 20, 16, 40), "p10"), ("d", (50, 5, 11, 22), "p12")],
    "s3.jpg": [("e", (10, 10, 15, 30), "p11"), ("f", (40, 40, 5, 30), "p12")],  # f too narrow
    "s4.jpg": [("g", (4, 4, 14, 28), "p20"), ("h", (30, 6, 15, 35), "p21"),
               ("i", (60, 10, 12, 24), None)],
    "s5.jpg": [("j", (8, 12, 18, 36), "p20"), ("k", (50, 8, 14, 30), "p21")],
    "s6.jpg": [("l", (6, 6, 12, 26), None), ("m", (40, 30, 20, 15), None),   # m too low
               ("n", (70, 30, 8, 30), "p22")],                                  # n too narrow
    "s7.jpg": [("o", (10, 10, 14, 30), None)],
    "s8.jpg": [("q", (20, 20, 16, 10), "p21"), ("r", (50, 20, 12, 30), None)],  # q too low
}
# a box of s7 that Images.mat does not list but a Gallery entry locates (p20)
SYSU_EXTRA = ("s7.jpg", "x", (60, 20, 13, 32), "p20")
SYSU_TRAIN = {"p10": ["s1.jpg", "s2.jpg"], "p11": ["s1.jpg", "s3.jpg"], "p12": ["s2.jpg", "s3.jpg"]}
# query identity, query scene, gallery scenes per TestG size
SYSU_QUERIES = [
    ("p20", "s4.jpg", {50: ["s5.jpg", "s6.jpg"], 100: ["s5.jpg", "s6.jpg", "s7.jpg"]}),
    ("p21", "s5.jpg", {50: ["s4.jpg", "s8.jpg"], 100: ["s4.jpg", "s6.jpg", "s8.jpg"]}),
    ("p22", "s6.jpg", {50: ["s4.jpg"], 100: ["s4.jpg", "s7.jpg"]}),  # query box too narrow
]
SYSU_MIN_W, SYSU_MIN_H = 10, 20


def sysu_box_colors():
    """box id -> colour painted into its scene."""
    ids = [b for boxes in SYSU_BOXES.values() for b, _, _ in boxes] + [SYSU_EXTRA[1]]
    return dict(zip(ids, _PALETTE))


def _struct_array(records, fields, shape=None):
    arr = np.zeros(shape or (1, len(records)), dtype=[(f, "O") for f in fields])
    flat = arr.reshape(-1)
    for i, rec in enumerate(records):
        for f in fields:
            flat[i][f] = rec[f]
    return arr


def _loc(box):
    return np.asarray(box, dtype=np.float64)[None, :] if box is not None else np.zeros((0, 0))


def make_cuhk_sysu(root):
    """CUHK-SYSU layout: Image/SSM/*.jpg and annotation/*.mat (MATLAB v5).

    Every annotated box is painted in the scene with its own colour
    (:func:`sysu_box_colors`), so a crop tells which box it came from.

    Returns:
        dict with "boxes" (SYSU_BOXES), "extra", "train", "queries",
        "colors", "min_size".
    """
    import scipy.io
    from PIL import Image

    root = Path(root)
    ssm = root / "Image" / "SSM"
    ssm.mkdir(parents=True, exist_ok=True)
    colors = sysu_box_colors()
    for scene, boxes in SYSU_BOXES.items():
        arr = np.full((SYSU_SCENE_SIZE[1], SYSU_SCENE_SIZE[0], 3), 128, np.uint8)
        extra = [(SYSU_EXTRA[1], SYSU_EXTRA[2])] if scene == SYSU_EXTRA[0] else []
        for bid, (x, y, w, h) in [(b, xy) for b, xy, _ in boxes] + extra:
            arr[y:y + h, x:x + w] = colors[bid]
        Image.fromarray(arr).save(ssm / scene, format="JPEG", quality=95, subsampling=0)
    ann = root / "annotation"
    tt = ann / "test" / "train_test"
    tt.mkdir(parents=True, exist_ok=True)

    img_records = []
    for scene, boxes in SYSU_BOXES.items():
        box = _struct_array([{"idlocate": _loc(b), "ishard": 0.0} for _, b, _ in boxes],
                            ("idlocate", "ishard"))
        img_records.append({"imname": scene, "nAppear": float(len(boxes)), "box": box})
    scipy.io.savemat(str(ann / "Images.mat"),
                     {"Img": _struct_array(img_records, ("imname", "nAppear", "box"))})

    test_scenes = sorted({q[1] for q in SYSU_QUERIES} |
                         {s for q in SYSU_QUERIES for g in q[2].values() for s in g})
    pool = np.empty((len(test_scenes), 1), dtype=object)
    for i, s in enumerate(test_scenes):
        pool[i, 0] = s
    scipy.io.savemat(str(ann / "pool.mat"), {"pool": pool})

    def locate(ident, scene):
        if scene == SYSU_EXTRA[0] and ident == SYSU_EXTRA[3]:
            return SYSU_EXTRA[2]
        for _, b, who in SYSU_BOXES[scene]:
            if who == ident:
                return b
        return None

    train = np.empty((len(SYSU_TRAIN), 1), dtype=object)  # a cell array of 1x1 structs
    for i, (ident, scenes) in enumerate(SYSU_TRAIN.items()):
        sc = _struct_array([{"imname": s, "idlocate": _loc(locate(ident, s)), "ishard": 0.0}
                            for s in scenes], ("imname", "idlocate", "ishard"))
        train[i, 0] = _struct_array([{"idname": ident, "nAppear": float(len(scenes)), "scene": sc}],
                                    ("idname", "nAppear", "scene"))
    scipy.io.savemat(str(tt / "Train.mat"), {"Train": train})

    for size in (50, 100):
        entries = []
        for ident, qscene, galleries in SYSU_QUERIES:
            q = _struct_array([{"imname": qscene, "idlocate": _loc(locate(ident, qscene)),
                                "ishard": 0.0, "idname": ident}],
                              ("imname", "idlocate", "ishard", "idname"))
            g = _struct_array([{"imname": s, "idlocate": _loc(locate(ident, s)), "ishard": 0.0}
                               for s in galleries[size]], ("imname", "idlocate", "ishard"))
            entries.append({"Query": q, "Gallery": g})
        scipy.io.savemat(str(tt / f"TestG{size}.mat"),
                         {f"TestG{size}": _struct_array(entries, ("Query", "Gallery"))})
    return {"boxes": SYSU_BOXES, "extra": SYSU_EXTRA, "train": SYSU_TRAIN,
            "queries": SYSU_QUERIES, "colors": colors, "min_size": (SYSU_MIN_W, SYSU_MIN_H)}
