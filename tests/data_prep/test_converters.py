"""Converters run end to end on tiny fake copies of each distributed format.

Expectations come from the fakes' construction parameters (tests/data_prep/
fakes.py), never from the converters.
"""

import json
import os

import numpy as np
import pytest
from PIL import Image

from data_prep import combine as combine_mod
from data_prep import cuhk03, cuhk_sysu, market1501, msmt17
from data_prep.manifest import load_manifest

from . import fakes


def _rows_by_split(manifest):
    return {s: [r for r in manifest.rows if r["split"] == s] for s in ("train", "query", "gallery")}


def _manifest_bytes(dst):
    return (dst / "manifest.jsonl").read_bytes()


# --------------------------------------------------------------------------
# Market-1501 / Duke

@pytest.mark.parametrize("dataset", ["market1501", "duke"])
def test_market_style(tmp_path, dataset):
    src = tmp_path / "src"
    built = fakes.make_market(src, dataset)
    dst = tmp_path / "prepared"
    result = market1501.convert(src, dst, dataset=dataset, quiet=True)
    m = load_manifest(dst)
    assert m.dataset == dataset and m.protocol == "market1501"
    got = {(r["split"], os.path.basename(r["path"]), r["pid"], r["camid"]) for r in m.rows}
    assert got == set(built["rows"])
    assert len(m.rows) == len(built["rows"])
    # junk and Thumbs.db never reach the manifest; distractors stay in the gallery
    assert all(r["pid"] != -1 for r in m.rows)
    assert sum(r["pid"] == 0 for r in m.rows if r["split"] == "gallery") == built["distractors"]
    assert not any("Thumbs" in r["path"] for r in m.rows)
    # labels: contiguous in sorted pid order
    order = {pid: i for i, pid in enumerate(sorted(built["train_pids"]))}
    train = m.split("train")
    assert train.labels.tolist() == [order[p] for p in train.pids.tolist()]
    assert m.num_classes == len(built["train_pids"])
    # rows sorted by name within each split, paths self-contained
    for split, rows in _rows_by_split(m).items():
        names = [r["path"] for r in rows]
        assert names == sorted(names)
        assert all(p.startswith(f"images/{split}/") for p in names)
    folder = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
    for r in m.rows:
        assert (dst / r["path"]).read_bytes() == \
            (src / folder[r["split"]] / os.path.basename(r["path"])).read_bytes()
    # summary = counts from the construction
    info = json.loads((dst / "dataset.json").read_text())
    exp = {}
    for split in ("train", "query", "gallery"):
        sel = [x for x in built["rows"] if x[0] == split]
        exp[split] = {"images": len(sel), "identities": len({x[2] for x in sel}),
                      "cameras": len({x[3] for x in sel})}
    assert info["summary"] == exp == result["summary"]
    assert result["dropped"]["junk"] == built["junk"]
    assert result["dropped"]["queries_without_gallery"] == built["orphan_queries"]
    assert result["files"] == {"written": len(built["rows"]), "skipped": 0}

    # resumable: a second run places nothing new and writes the same manifest
    before = _manifest_bytes(dst)
    again = market1501.convert(src, dst, dataset=dataset, quiet=True)
    assert again["files"] == {"written": 0, "skipped": len(built["rows"])}
    assert _manifest_bytes(dst) == before
    # a truncated image is replaced on the next run
    victim = dst / m.rows[0]["path"]
    os.remove(victim)
    victim.write_bytes(b"xx")
    third = market1501.convert(src, dst, dataset=dataset, quiet=True, mode="copy")
    assert third["files"] == {"written": 1, "skipped": len(built["rows"]) - 1}
    assert victim.read_bytes() == (src / "bounding_box_train" / victim.name).read_bytes()


def test_market_copy_mode_makes_independent_files(tmp_path):
    src = tmp_path / "src"
    fakes.make_market(src)
    market1501.convert(src, tmp_path / "l", quiet=True, mode="link")
    market1501.convert(src, tmp_path / "c", quiet=True, mode="copy")
    for sub in ("l", "c"):
        m = load_manifest(tmp_path / sub)
        r = m.rows[0]
        same = os.path.samefile(tmp_path / sub / r["path"],
                                src / "bounding_box_train" / os.path.basename(r["path"]))
        assert same == (sub == "l")


# --------------------------------------------------------------------------
# MSMT17

@pytest.mark.parametrize("include_val", [True, False])
def test_msmt17(tmp_path, include_val):
    src = tmp_path / "MSMT17_V1"
    built = fakes.make_msmt17(src)
    dst = tmp_path / "prepared"
    msmt17.convert(src, dst, include_val=include_val, quiet=True)
    m = load_manifest(dst)
    assert m.protocol == "market1501" and m.dataset == "msmt17"
    train_src = built["train"] + (built["val"] if include_val else [])
    expected = {("train", n, p, c) for n, p, c in train_src} | \
        {("query", n, p, c) for n, p, c in built["query"]} | \
        {("gallery", n, p, c) for n, p, c in built["gallery"]}
    got = {(r["split"], os.path.basename(r["path"]), r["pid"], r["camid"]) for r in m.rows}
    assert got == expected and len(m.rows) == len(expected)
    pids = sorted({p for _, p, _ in train_src})
    train = m.split("train")
    assert train.labels.tolist() == [pids.index(p) for p in train.pids.tolist()]
    for r in m.rows:
        folder = "train" if r["split"] == "train" else "test"
        assert (dst / r["path"]).read_bytes() == \
            (src / folder / f"{r['pid']:04d}" / os.path.basename(r["path"])).read_bytes()
    before = _manifest_bytes(dst)
    again = msmt17.convert(src, dst, include_val=include_val, quiet=True)
    assert again["files"]["written"] == 0 and _manifest_bytes(dst) == before


def test_msmt17_camera_field():
    assert msmt17.camera_of("0000_000_01_0303morning_0015_0.jpg") == 1
    assert msmt17.camera_of("1041_012_15_0113noon_0100_1.jpg") == 15


# --------------------------------------------------------------------------
# CUHK03

@pytest.fixture(scope="module")
def cuhk03_src(tmp_path_factory):
    root = tmp_path_factory.mktemp("cuhk03")
    return root, fakes.make_cuhk03(root)


def _available(built):
    out = {}
    for p, n in enumerate(built["persons"], 1):
        for q in range(1, n + 1):
            out[(p, q)] = [c for c in range(1, 11) if (p, q, c) not in built["missing"]]
    return out


def _cell(path):
    pair, person, view, col = os.path.basename(path)[:-4].split("_")
    return int(pair), int(person), int(view), int(col)


def _check_cuhk03_images(dst, m, kind):
    for r in m.rows:
        pair, person, view, col = _cell(r["path"])
        assert view == (1 if col <= 5 else 2)
        assert r["camid"] == (pair - 1) * 2 + view
        got = np.asarray(Image.open(dst / r["path"]))
        assert np.array_equal(got, fakes.cuhk03_image(kind, pair, person, col))


@pytest.mark.parametrize("kind", ["labeled", "detected"])
def test_cuhk03_new_protocol(tmp_path, cuhk03_src, kind):
    root, built = cuhk03_src
    dst = tmp_path / "new"
    cuhk03.convert(root / "cuhk03_release", dst, images=kind, split="new", quiet=True)
    m = load_manifest(dst)
    assert m.protocol == "market1501" and m.dataset == "cuhk03"
    exp = built["new"][kind]
    for split in ("train", "query", "gallery"):
        names = sorted(os.path.basename(r["path"]) for r in m.rows if r["split"] == split)
        assert names == sorted(exp[split])
    for r in m.rows:
        assert r["pid"] == exp["pid"][os.path.basename(r["path"])]
    train_pids = sorted({exp["pid"][n] for n in exp["train"]})
    tr = m.split("train")
    assert tr.labels.tolist() == [train_pids.index(p) for p in tr.pids.tolist()]
    _check_cuhk03_images(dst, m, kind)
    # explicit --new-protocol path gives the same manifest; resumable
    before = _manifest_bytes(dst)
    again = cuhk03.convert(built["mat"], dst, images=kind, split="new",
                           new_protocol=exp["config"], quiet=True)
    assert again["files"]["written"] == 0 and _manifest_bytes(dst) == before


def _check_single_shot(m, built, test_ids):
    avail = _available(built)
    rows = _rows_by_split(m)
    ids_of = {s: {(_cell(r["path"])[0], _cell(r["path"])[1]) for r in rows[s]} for s in rows}
    assert ids_of["gallery"] == set(test_ids) == ids_of["query"]
    every = {k for k, cols in avail.items() if cols}
    assert ids_of["train"] == every - set(test_ids)
    for split in ("train", "gallery"):
        cells = sorted((_cell(r["path"])[0], _cell(r["path"])[1], _cell(r["path"])[3]) for r in rows[split])
        exp = sorted((p, q, c) for (p, q) in ids_of[split] for c in avail[(p, q)])
        assert cells == exp
    # one query per test identity per camera with images, from that camera
    per = {}
    for r in rows["query"]:
        p, q, v, c = _cell(r["path"])
        per.setdefault((p, q), []).append(v)
        assert c in avail[(p, q)]
    for ident, views in per.items():
        assert sorted(views) == sorted({1 if c <= 5 else 2 for c in avail[ident]})
    # pids: 1-based index over all pairs
    for r in m.rows:
        p, q, _, _ = _cell(r["path"])
        assert r["pid"] == built["pid"][(p, q)]


def test_cuhk03_paper_split(tmp_path, cuhk03_src):
    root, built = cuhk03_src
    dst = tmp_path / "paper"
    cuhk03.convert(root, dst, split="paper", test_identities=4, seed=3, quiet=True)
    m = load_manifest(dst)
    assert m.protocol == "cuhk03"
    test_ids = sorted({(_cell(r["path"])[0], _cell(r["path"])[1]) for r in m.rows if r["split"] == "gallery"})
    assert len(test_ids) == 4
    avail = _available(built)
    # test identities have both cameras; (5, 1) has images from one camera only
    for ident in test_ids:
        assert any(c <= 5 for c in avail[ident]) and any(c > 5 for c in avail[ident])
    _check_single_shot(m, built, test_ids)
    _check_cuhk03_images(dst, m, "labeled")
    # the seed decides: same seed same manifest, the choice varies with the seed
    before = _manifest_bytes(dst)
    again = cuhk03.convert(root, dst, split="paper", test_identities=4, seed=3, quiet=True)
    assert again["files"]["written"] == 0 and _manifest_bytes(dst) == before
    splits = set()
    for seed in range(4):
        cuhk03.convert(root, tmp_path / f"s{seed}", split="paper", test_identities=4, seed=seed,
                       quiet=True)
        mm = load_manifest(tmp_path / f"s{seed}")
        splits.add(tuple(sorted(r["path"] for r in mm.rows if r["split"] != "train")))
    assert len(splits) > 1


@pytest.mark.parametrize("index", [0, 7, 19])
def test_cuhk03_classic_split(tmp_path, cuhk03_src, index):
    root, built = cuhk03_src
    dst = tmp_path / "classic"
    cuhk03.convert(root / "cuhk03_release" / "cuhk-03.mat", dst, images="detected",
                   split="classic", split_index=index, quiet=True)
    m = load_manifest(dst)
    assert m.protocol == "cuhk03"
    _check_single_shot(m, built, built["testsets"][index])
    _check_cuhk03_images(dst, m, "detected")


# --------------------------------------------------------------------------
# CUHK-SYSU

def _nearest_box(path, colors):
    mean = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(0)
    return min(colors, key=lambda b: np.sum((np.asarray(colors[b]) - mean) ** 2))


@pytest.mark.parametrize("size", [100, 50])
def test_cuhk_sysu(tmp_path, size):
    src = tmp_path / "sysu"
    built = fakes.make_cuhk_sysu(src)
    dst = tmp_path / "prepared"
    cuhk_sysu.convert(src, dst, gallery_size=size, quiet=True)
    m = load_manifest(dst)
    assert m.protocol == "cuhk-sysu" and m.dataset == "cuhk-sysu"
    min_w, min_h = built["min_size"]
    box = {}          # box id -> (scene, xywh, identity)
    for scene, boxes in built["boxes"].items():
        for bid, xywh, who in boxes:
            box[bid] = (scene, xywh, who)
    ex_scene, ex_id, ex_xywh, ex_who = built["extra"]
    box[ex_id] = (ex_scene, ex_xywh, ex_who)

    def big(bid):
        return box[bid][1][2] >= min_w and box[bid][1][3] >= min_h

    def pid(who):
        return int(who[1:]) if who else 0

    def check_crop(r, bid):
        assert Image.open(dst / r["path"]).size == tuple(box[bid][1][2:])

    # train: every big box of every Train.mat identity
    rows = _rows_by_split(m)
    got = sorted((_nearest_box(dst / r["path"], built["colors"]), r["pid"]) for r in rows["train"])
    exp = sorted((bid, pid(who)) for bid, (scene, xywh, who) in box.items()
                 if who in built["train"] and scene in built["train"][who] and big(bid))
    assert got == exp
    train_pids = sorted({p for _, p in exp})
    tr = m.split("train")
    assert tr.labels.tolist() == [train_pids.index(p) for p in tr.pids.tolist()]
    for r in rows["train"]:
        check_crop(r, _nearest_box(dst / r["path"], built["colors"]))

    # gallery rows: one per distinct big box; pid = its person if some query locates it
    located = set()
    for who, qscene, galleries in built["queries"]:
        qbid = next(b for b, (s, _, w) in box.items() if s == qscene and w == who)
        if not big(qbid):
            continue
        located |= {b for b, (s, _, w) in box.items() if w == who and s in galleries[size]}
    gallery_ids = [_nearest_box(dst / r["path"], built["colors"]) for r in rows["gallery"]]
    assert len(set(gallery_ids)) == len(gallery_ids)
    for r, bid in zip(rows["gallery"], gallery_ids):
        assert r["pid"] == (pid(box[bid][2]) if bid in located else 0)
        assert r["camid"] == 0
        check_crop(r, bid)

    # queries: the big query boxes, each with its own gallery
    q = m.split("query")
    exp_queries = []
    for who, qscene, galleries in built["queries"]:
        qbid = next(b for b, (s, _, w) in box.items() if s == qscene and w == who)
        if big(qbid):
            members = {b for b, (s, _, _) in box.items() if s in galleries[size] and big(b)}
            exp_queries.append((qbid, pid(who), members))
    assert len(q) == len(exp_queries)
    for i, (qbid, qpid, members) in enumerate(exp_queries):
        assert _nearest_box(q.paths[i], built["colors"]) == qbid
        assert q.pids[i] == qpid
        assert {gallery_ids[g] for g in q.gallery_lists[i]} == members
        assert len(q.gallery_lists[i]) == len(members)
        positives = {gallery_ids[g] for g in q.gallery_lists[i] if rows["gallery"][g]["pid"] == qpid}
        assert positives == {b for b in members if box[b][2] == box[qbid][2]}
    for r in rows["query"]:
        check_crop(r, _nearest_box(dst / r["path"], built["colors"]))

    before = _manifest_bytes(dst)
    again = cuhk_sysu.convert(src, dst, gallery_size=size, quiet=True)
    assert again["files"]["written"] == 0
    assert again["files"]["skipped"] == len(m.rows)
    assert _manifest_bytes(dst) == before


# --------------------------------------------------------------------------
# combine

def test_combine_labels_unique(tmp_path, cuhk03_src):
    src = tmp_path / "m"
    fakes.make_market(src)
    market1501.convert(src, tmp_path / "pm", quiet=True)
    fakes.make_market(tmp_path / "d", "duke")
    market1501.convert(tmp_path / "d", tmp_path / "pd", dataset="duke", quiet=True)
    root, _ = cuhk03_src
    cuhk03.convert(root, tmp_path / "pc", split="paper", test_identities=4, quiet=True)
    parts = [load_manifest(tmp_path / p) for p in ("pm", "pd", "pc")]
    result = combine_mod.combine(tmp_path / "all", [tmp_path / "pm", tmp_path / "pd", tmp_path / "pc"],
                                 quiet=True)
    m = load_manifest(tmp_path / "all")
    assert m.splits == ["train"]
    assert m.dataset == "market1501+duke+cuhk03"
    assert len(m.rows) == sum(len(p.split("train")) for p in parts)
    assert m.num_classes == sum(p.num_classes for p in parts)
    # each (dataset, pid) keeps one label, labels never shared across datasets
    lab = {}
    for r in m.rows:
        lab.setdefault((r["dataset"], r["pid"]), set()).add(r["label"])
    assert all(len(v) == 1 for v in lab.values())
    flat = [next(iter(v)) for v in lab.values()]
    assert sorted(flat) == list(range(len(flat)))
    # the market and duke fakes share pids but not labels
    assert {p for d, p in lab if d == "market1501"} & {p for d, p in lab if d == "duke"}
    # images are the originals
    src_rows = {(r["dataset"], os.path.basename(r["path"])): p.root / r["path"]
                for p in parts for r in p.rows if r["split"] == "train"}
    for r in m.rows:
        assert (tmp_path / "all" / r["path"]).read_bytes() == \
            src_rows[(r["dataset"], os.path.basename(r["path"]))].read_bytes()
    offsets = [c["label_offset"] for c in result["components"]]
    assert offsets == [0, parts[0].num_classes, parts[0].num_classes + parts[1].num_classes]
    # merge_train on the fly agrees with the written combination
    from data_prep.combine import merge_train
    merged = merge_train(parts)
    assert merged.labels.tolist() == m.split("train").labels.tolist()
    # combining twice is resumable
    again = combine_mod.combine(tmp_path / "all", [tmp_path / "pm", tmp_path / "pd", tmp_path / "pc"],
                                quiet=True)
    assert again["files"]["written"] == 0
