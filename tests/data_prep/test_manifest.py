"""The manifest format: loading, every validation error, writing, merge_train."""

import json
import os

import numpy as np
import pytest

from data_prep.combine import merge_train
from data_prep.manifest import ManifestError, Split, load_manifest, write_manifest


def _rows():
    """A small valid market-style manifest (hand-written)."""
    return [
        {"path": "images/train/a.jpg", "pid": 7, "label": 1, "camid": 1, "split": "train", "dataset": "d"},
        {"path": "images/train/b.jpg", "pid": 3, "label": 0, "camid": 2, "split": "train", "dataset": "d"},
        {"path": "images/train/c.jpg", "pid": 7, "label": 1, "camid": 3, "split": "train", "dataset": "d"},
        {"path": "images/query/q.jpg", "pid": 5, "label": -1, "camid": 1, "split": "query", "dataset": "d"},
        {"path": "images/gallery/g1.jpg", "pid": 5, "label": -1, "camid": 2, "split": "gallery", "dataset": "d"},
        {"path": "images/gallery/g2.jpg", "pid": 0, "label": -1, "camid": 4, "split": "gallery", "dataset": "d"},
    ]


def _write(root, rows, protocol="market1501", lines=None, touch=True, dataset="d"):
    root.mkdir(parents=True, exist_ok=True)
    if touch:
        for r in rows:
            if isinstance(r, dict) and isinstance(r.get("path"), str):
                p = root / r["path"]
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(b"x")
    if lines is None:
        lines = [json.dumps(r) for r in rows]
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    (root / "dataset.json").write_text(json.dumps(
        {"format": "reid-manifest", "version": 1, "dataset": dataset, "protocol": protocol}))
    return root


def test_load_valid_manifest(tmp_path):
    root = _write(tmp_path / "ds", _rows())
    m = load_manifest(root)
    assert m.dataset == "d" and m.protocol == "market1501"
    assert m.num_classes == 2
    train = m.split("train")
    assert len(train) == 3
    assert train.pids.tolist() == [7, 3, 7]
    assert train.labels.tolist() == [1, 0, 1]
    assert train.camids.tolist() == [1, 2, 3]
    for arr in (train.pids, train.labels, train.camids):
        assert arr.dtype == np.int64
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in train.paths)
    assert train.paths[0] == os.path.join(str(root.resolve()), "images", "train", "a.jpg")
    q = m.split("query")
    assert q.gallery_lists is None and q.pids.tolist() == [5] and q.labels.tolist() == [-1]
    assert m.split("gallery").pids.tolist() == [5, 0]
    assert m.splits == ["train", "query", "gallery"]
    # the manifest file and dataset.json name the same dataset
    assert load_manifest(root / "manifest.jsonl").root == root
    assert load_manifest(root / "dataset.json").root == root


def test_gallery_lists_and_empty_split(tmp_path):
    rows = [
        {"path": "images/query/q1.jpg", "pid": 5, "label": -1, "camid": 0, "split": "query",
         "dataset": "s", "gallery": [1, 0]},
        {"path": "images/query/q2.jpg", "pid": 6, "label": -1, "camid": 0, "split": "query",
         "dataset": "s", "gallery": []},
        {"path": "images/gallery/g1.jpg", "pid": 0, "label": -1, "camid": 0, "split": "gallery", "dataset": "s"},
        {"path": "images/gallery/g2.jpg", "pid": 5, "label": -1, "camid": 0, "split": "gallery", "dataset": "s"},
    ]
    m = load_manifest(_write(tmp_path / "s", rows, protocol="cuhk-sysu"))
    q = m.split("query")
    assert [g.tolist() for g in q.gallery_lists] == [[1, 0], []]
    assert all(g.dtype == np.int64 for g in q.gallery_lists)
    assert len(m.split("train")) == 0 and m.num_classes == 0
    # query pid 6 has no gallery image: fine outside the market1501 protocol
    assert q.pids.tolist() == [5, 6]


def _mutate(rows, i, **changes):
    rows = [dict(r) for r in rows]
    rows[i].update(changes)
    return rows


@pytest.mark.parametrize("case, expect_line, words", [
    ("missing_file", 2, "missing"),
    ("duplicate", 3, "duplicate path"),
    ("labels_gap", 1, "contiguous"),
    ("label_conflict", 3, "label"),
    ("label_shared", 2, "already used"),
    ("query_not_in_gallery", 4, "no image in the gallery"),
    ("negative_camid", 5, "camid"),
    ("float_camid", 6, "camid"),
    ("string_camid", 1, "camid"),
    ("bool_camid", 2, "camid"),
    ("unknown_split", 3, "unknown split"),
    ("malformed_json", 4, "malformed JSON"),
    ("not_object", 2, "JSON object"),
    ("missing_field", 5, "'pid'"),
    ("query_label", 4, "label -1"),
    ("train_negative_label", 2, "label >= 0"),
    ("absolute_path", 1, "relative"),
    ("escaping_path", 1, "relative"),
    ("gallery_on_train", 1, "only query rows"),
])
def test_validation_errors(tmp_path, case, expect_line, words):
    rows = _rows()
    lines = None
    touch = True
    if case == "missing_file":
        _write(tmp_path / "ds", rows)
        os.remove(tmp_path / "ds" / rows[1]["path"])
        root = tmp_path / "ds"
    else:
        if case == "duplicate":
            rows = _mutate(rows, 2, path=rows[0]["path"])
        elif case == "labels_gap":
            rows = _mutate(rows, 0, label=2)
            rows = _mutate(rows, 2, label=2)
        elif case == "label_conflict":
            rows = _mutate(rows, 2, label=0)
        elif case == "label_shared":
            rows = _mutate(rows, 1, label=1)
        elif case == "query_not_in_gallery":
            rows = _mutate(rows, 3, pid=9)
        elif case == "negative_camid":
            rows = _mutate(rows, 4, camid=-1)
        elif case == "float_camid":
            rows = _mutate(rows, 5, camid=1.5)
        elif case == "string_camid":
            rows = _mutate(rows, 0, camid="1")
        elif case == "bool_camid":
            rows = _mutate(rows, 1, camid=True)
        elif case == "unknown_split":
            rows = _mutate(rows, 2, split="val")
        elif case == "malformed_json":
            lines = [json.dumps(r) for r in rows]
            lines[3] = lines[3][:-5]
        elif case == "not_object":
            lines = [json.dumps(r) for r in rows]
            lines[1] = "[1, 2]"
        elif case == "missing_field":
            rows = [dict(r) for r in rows]
            del rows[4]["pid"]
        elif case == "query_label":
            rows = _mutate(rows, 3, label=0)
        elif case == "train_negative_label":
            rows = _mutate(rows, 1, label=-1)
        elif case == "absolute_path":
            rows = _mutate(rows, 0, path="/etc/passwd")
            touch = False
        elif case == "escaping_path":
            rows = _mutate(rows, 0, path="../outside.jpg")
            touch = False
        elif case == "gallery_on_train":
            rows = _mutate(rows, 0, gallery=[0])
        root = _write(tmp_path / "ds", rows, lines=lines, touch=touch)
        if not touch:
            for r in rows[1:]:
                p = root / r["path"]
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(b"x")
    with pytest.raises(ManifestError) as info:
        load_manifest(root)
    msg = str(info.value)
    assert "\n" not in msg
    assert f"manifest.jsonl:{expect_line}:" in msg, msg
    assert words in msg, msg


def test_query_pid_absent_is_fine_for_cuhk03(tmp_path):
    rows = _mutate(_rows(), 3, pid=9)
    m = load_manifest(_write(tmp_path / "ds", rows, protocol="cuhk03"))
    assert m.split("query").pids.tolist() == [9]


def test_gallery_index_out_of_range(tmp_path):
    rows = [
        {"path": "images/query/q1.jpg", "pid": 5, "label": -1, "camid": 0, "split": "query",
         "dataset": "s", "gallery": [0, 1]},
        {"path": "images/query/q2.jpg", "pid": 5, "label": -1, "camid": 0, "split": "query",
         "dataset": "s", "gallery": [0, 2]},
        {"path": "images/gallery/g1.jpg", "pid": 5, "label": -1, "camid": 0, "split": "gallery", "dataset": "s"},
        {"path": "images/gallery/g2.jpg", "pid": 0, "label": -1, "camid": 0, "split": "gallery", "dataset": "s"},
    ]
    with pytest.raises(ManifestError, match=r"manifest.jsonl:2: gallery index 2 is out of range"):
        load_manifest(_write(tmp_path / "a", rows, protocol="cuhk-sysu"))
    rows[1]["gallery"] = [-1]
    with pytest.raises(ManifestError, match=r"manifest.jsonl:2: gallery index -1"):
        load_manifest(_write(tmp_path / "b", rows, protocol="cuhk-sysu"))
    del rows[1]["gallery"]
    with pytest.raises(ManifestError, match=r"manifest.jsonl:2: query row has no 'gallery' list"):
        load_manifest(_write(tmp_path / "c", rows, protocol="cuhk-sysu"))
    del rows[0]["gallery"]
    with pytest.raises(ManifestError, match=r"manifest.jsonl:1: protocol cuhk-sysu needs"):
        load_manifest(_write(tmp_path / "d", rows, protocol="cuhk-sysu"))


def test_blank_lines_keep_line_numbers(tmp_path):
    rows = _mutate(_rows(), 4, camid=-3)
    lines = [json.dumps(r) for r in rows]
    lines.insert(2, "")
    with pytest.raises(ManifestError, match=r"manifest.jsonl:6: camid"):
        load_manifest(_write(tmp_path / "ds", rows, lines=lines))


@pytest.mark.parametrize("info, words", [
    (None, "not found"),
    ("{not json", "malformed JSON"),
    ('{"format": "other", "version": 1, "dataset": "d", "protocol": "market1501"}', "'format'"),
    ('{"format": "reid-manifest", "version": 2, "dataset": "d", "protocol": "market1501"}', "version"),
    ('{"format": "reid-manifest", "version": 1, "dataset": "d", "protocol": "viper"}', "unknown protocol"),
    ('{"format": "reid-manifest", "version": 1, "protocol": "market1501"}', "'dataset'"),
])
def test_dataset_json_errors(tmp_path, info, words):
    root = _write(tmp_path / "ds", _rows())
    if info is None:
        os.remove(root / "dataset.json")
    else:
        (root / "dataset.json").write_text(info)
    with pytest.raises(ManifestError, match="dataset.json") as err:
        load_manifest(root)
    assert words in str(err.value)


def test_unknown_split_name_and_bad_path(tmp_path):
    m = load_manifest(_write(tmp_path / "ds", _rows()))
    with pytest.raises(ManifestError, match="unknown split 'val'"):
        m.split("val")
    with pytest.raises(ManifestError, match="not a prepared dataset"):
        load_manifest(tmp_path / "ds" / "images" / "train" / "a.jpg")
    os.remove(tmp_path / "ds" / "manifest.jsonl")
    with pytest.raises(ManifestError, match="manifest.jsonl: not found"):
        load_manifest(tmp_path / "ds")


def test_check_files_false_skips_existence(tmp_path):
    root = _write(tmp_path / "ds", _rows(), touch=False)
    assert len(load_manifest(root, check_files=False).split("gallery")) == 2
    with pytest.raises(ManifestError, match="missing"):
        load_manifest(root)


def test_write_manifest_round_trip_and_validation(tmp_path):
    root = tmp_path / "w"
    rows = _rows()
    for r in rows:
        (root / r["path"]).parent.mkdir(parents=True, exist_ok=True)
        (root / r["path"]).write_bytes(b"x")
    rows[0]["source"] = "ignored extra key"
    info = write_manifest(root, rows, dataset="d", protocol="market1501", extra={"note": 1})
    assert info["summary"] == {"train": {"images": 3, "identities": 2, "cameras": 3},
                               "query": {"images": 1, "identities": 1, "cameras": 1},
                               "gallery": {"images": 2, "identities": 2, "cameras": 2}}
    stored = json.loads((root / "dataset.json").read_text())
    assert stored["note"] == 1 and stored["format"] == "reid-manifest"
    lines = (root / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [{k: v for k, v in r.items() if k != "source"} for r in _rows()]
    assert sorted(p.name for p in root.iterdir()) == ["dataset.json", "images", "manifest.jsonl"]
    bad = _mutate(_rows(), 1, camid=-2)
    with pytest.raises(ManifestError, match="manifest.jsonl:2: camid"):
        write_manifest(tmp_path / "w", bad, dataset="d", protocol="market1501")
    # the failed write left the previous manifest untouched
    assert (root / "manifest.jsonl").read_text().splitlines() == lines


def test_merge_train_labels_unique(tmp_path):
    a = _write(tmp_path / "a", _rows(), dataset="a")
    rows_b = [
        {"path": "images/train/x.jpg", "pid": 7, "label": 0, "camid": 1, "split": "train", "dataset": "b"},
        {"path": "images/train/y.jpg", "pid": 1, "label": 2, "camid": 1, "split": "train", "dataset": "b"},
        {"path": "images/train/z.jpg", "pid": 4, "label": 1, "camid": 2, "split": "train", "dataset": "b"},
    ]
    b = _write(tmp_path / "b", rows_b, dataset="b")
    merged = merge_train([a, load_manifest(b)])
    assert isinstance(merged, Split) and len(merged) == 6
    assert merged.labels.tolist() == [1, 0, 1, 2, 4, 3]
    assert merged.pids.tolist() == [7, 3, 7, 7, 1, 4]
    assert merged.datasets.tolist() == ["d"] * 3 + ["b"] * 3
    assert merged.num_classes == 5
    # one label per (dataset, pid), never shared across datasets
    pairs = {(d, p): set() for d, p in zip(merged.datasets, merged.pids)}
    for d, p, lab in zip(merged.datasets, merged.pids, merged.labels):
        pairs[(d, p)].add(int(lab))
    assert all(len(v) == 1 for v in pairs.values())
    assert len({next(iter(v)) for v in pairs.values()}) == len(pairs)
    with pytest.raises(ManifestError, match="also in"):
        merge_train([a, a])
    only_test = _write(tmp_path / "t", _rows()[3:], dataset="t")
    with pytest.raises(ManifestError, match="no train rows"):
        merge_train([a, only_test])
    with pytest.raises(ValueError):
        merge_train([])


def test_atomic_writes_use_umask_permissions(tmp_path):
    import os

    from reid_common import atomic_write_text

    old = os.umask(0o022)
    try:
        target = tmp_path / "x.txt"
        atomic_write_text(target, "hello")
    finally:
        os.umask(old)
    assert target.read_text() == "hello"
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]
