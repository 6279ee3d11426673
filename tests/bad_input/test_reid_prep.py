"""Bad inputs of ``reid-prep`` (converters and combine): each fails cleanly.

Every case builds its inputs under ``tmp_path`` and runs ``reid-prep`` in-process;
:func:`tests.bad_input.harness.run_clean_failure` checks exit status 2, one
stderr line naming the file or argument, no traceback, and that every file
that existed before is byte-identical afterwards.
"""

import errno
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from data_prep import cli
from data_prep.manifest import write_manifest
from tests.data_prep import fakes

from .harness import run_clean_failure


def _rows(dataset, n_train=3):
    rows = []
    for k in range(n_train):
        rows.append({"path": f"images/train/{dataset}_{k}.jpg", "pid": 10 + k, "label": k,
                     "camid": 1, "split": "train", "dataset": dataset})
    rows.append({"path": f"images/query/{dataset}_q.jpg", "pid": 10, "label": -1, "camid": 1,
                 "split": "query", "dataset": dataset})
    rows.append({"path": f"images/gallery/{dataset}_g.jpg", "pid": 10, "label": -1,
                 "camid": 2, "split": "gallery", "dataset": dataset})
    return rows


def prepared(root, dataset="d", rows=None):
    """A small prepared dataset at ``root`` (image files are a few bytes)."""
    root = Path(root)
    rows = rows if rows is not None else _rows(dataset)
    for r in rows:
        p = root / r["path"]
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f"image {r['path']}".encode())
    write_manifest(root, rows, dataset=dataset, protocol="market1501",
                   extra={"source": f"/src/{dataset}"})
    return root


def _manifest_line(root, line_bytes, at=1):
    """Replace line ``at`` (1-based) of root's manifest with ``line_bytes``."""
    path = Path(root) / "manifest.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[at - 1] = line_bytes + b"\n"
    path.write_bytes(b"".join(lines))
    return path


def _row_bytes(**changes):
    row = {"path": "images/train/d_0.jpg", "pid": 10, "label": 0, "camid": 1,
           "split": "train", "dataset": "d"}
    row.update(changes)
    return json.dumps(row).encode()


# --------------------------------------------------------------------------
# cases: each returns (argv, needles)

def case_combine_output_is_input(tmp):
    m = prepared(tmp / "m")
    return ["combine", m, m, "--quiet"], [m, "is the input"]


def case_combine_output_is_input_via_dotdot(tmp):
    m = prepared(tmp / "m")
    (tmp / "x").mkdir()
    return ["combine", tmp / "x" / ".." / "m", m, "--quiet"], ["is the input"]


def case_combine_output_is_input_via_symlink(tmp):
    m = prepared(tmp / "m")
    os.symlink(m, tmp / "alias")
    return ["combine", tmp / "alias", m, "--quiet"], [tmp / "alias", m]


def case_combine_output_is_second_input(tmp):
    a, b = prepared(tmp / "a", "a"), prepared(tmp / "b", "b")
    return ["combine", b, a, b, "--quiet"], [b, "is the input"]


def case_combine_output_is_input_manifest_file(tmp):
    m = prepared(tmp / "m")
    return ["combine", m, m / "manifest.jsonl", "--quiet"], [m, "is the input"]


def case_combine_output_holds_other_dataset(tmp):
    a, other = prepared(tmp / "a", "a"), prepared(tmp / "other", "other")
    return ["combine", other, a, "--quiet"], [other, "already holds", "'other'"]


def case_combine_dataset_name_escapes(tmp):
    rows = _rows("..")
    m = prepared(tmp / "m", "m", rows=rows)
    return ["combine", tmp / "out", m, "--quiet"], [m, "'..'"]


def case_manifest_not_utf8(tmp):
    m = prepared(tmp / "m")
    path = _manifest_line(m, _row_bytes()[:-1] + b', "x": "\xff"}', at=2)
    return ["combine", tmp / "out", m, "--quiet"], [f"{path}:2", "UTF-8"]


def case_manifest_nested_too_deeply(tmp):
    m = prepared(tmp / "m")
    path = _manifest_line(m, b"[" * 100000, at=3)
    return ["combine", tmp / "out", m, "--quiet"], [f"{path}:3", "nested too deeply"]


def case_manifest_huge_integer_literal(tmp):
    m = prepared(tmp / "m")
    path = _manifest_line(m, _row_bytes(pid=0)[:-1] + b', "x": ' + b"9" * 5000 + b"}", at=1)
    return ["combine", tmp / "out", m, "--quiet"], [f"{path}:1", "malformed JSON"]


def case_manifest_camid_beyond_int64(tmp):
    m = prepared(tmp / "m")
    path = _manifest_line(m, _row_bytes(camid=2 ** 63), at=1)
    return ["combine", tmp / "out", m, "--quiet"], [f"{path}:1", "'camid'", "64-bit"]


def case_manifest_pid_beyond_int64(tmp):
    m = prepared(tmp / "m")
    path = _manifest_line(m, _row_bytes(pid=2 ** 64 + 10), at=1)
    return ["combine", tmp / "out", m, "--quiet"], [f"{path}:1", "'pid'", "64-bit"]


def case_manifest_symlink_outside(tmp):
    m = prepared(tmp / "m")
    secret = tmp / "secret.jpg"
    secret.write_bytes(b"secret")
    target = m / "images" / "train" / "d_1.jpg"
    target.unlink()
    os.symlink(secret, target)
    return ["combine", tmp / "out", m, "--quiet"], [m / "manifest.jsonl", "d_1.jpg",
                                                     "outside the dataset"]


def case_manifest_folder_symlink_outside(tmp):
    m = prepared(tmp / "m")
    elsewhere = tmp / "elsewhere"
    shutil.move(str(m / "images" / "train"), elsewhere)
    os.symlink(elsewhere, m / "images" / "train")
    return ["combine", tmp / "out", m, "--quiet"], [m / "manifest.jsonl", "outside the dataset"]


def case_manifest_missing_image(tmp):
    m = prepared(tmp / "m")
    (m / "images" / "train" / "d_2.jpg").unlink()
    return ["combine", tmp / "out", m, "--quiet"], [m / "manifest.jsonl", "is missing"]


def case_manifest_path_escapes(tmp):
    m = prepared(tmp / "m")
    path = _manifest_line(m, _row_bytes(path="images/../../secret.jpg"), at=1)
    return ["combine", tmp / "out", m, "--quiet"], [f"{path}:1", "normalised relative path"]


def case_dataset_json_not_utf8(tmp):
    m = prepared(tmp / "m")
    info = m / "dataset.json"
    info.write_bytes(info.read_bytes().replace(b'"d"', b'"\xfe"', 1))
    return ["combine", tmp / "out", m, "--quiet"], [info, "UTF-8"]


def case_dataset_json_nested(tmp):
    m = prepared(tmp / "m")
    info = m / "dataset.json"
    info.write_bytes(b"[" * 100000)
    return ["combine", tmp / "out", m, "--quiet"], [info, "nested too deeply"]


def case_combine_missing_input(tmp):
    return ["combine", tmp / "out", tmp / "nope", "--quiet"], [tmp / "nope"]


def case_combine_disk_full_copying(tmp, monkeypatch):
    m = prepared(tmp / "m")

    def full(src, dst, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(src))

    monkeypatch.setattr(shutil, "copyfile", full)
    return (["combine", tmp / "out", m, "--mode", "copy", "--quiet"],
            [tmp / "out" / "images" / "train" / "d", "No space left on device"])


def case_combine_disk_full_manifest(tmp, monkeypatch):
    import data_prep.manifest as manifest

    m = prepared(tmp / "m")

    def full(path, text, newline=None):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(manifest, "atomic_write_text", full)
    return (["combine", tmp / "out", m, "--quiet"],
            [tmp / "out" / "manifest.jsonl", "No space left on device"])


def case_msmt17_list_escapes_src(tmp):
    src = tmp / "MSMT17_V1"
    fakes.make_msmt17(src)
    secret = tmp / "secret" / "0000_001_01_0303morning_0016_1.jpg"
    secret.parent.mkdir()
    secret.write_bytes(b"secret")
    lst = src / "list_train.txt"
    lst.write_text(lst.read_text() + "../../secret/0000_001_01_0303morning_0016_1.jpg 0\n")
    return ["msmt17", src, tmp / "out", "--quiet"], [lst, "outside"]


def case_msmt17_list_absolute_path(tmp):
    src = tmp / "MSMT17_V1"
    fakes.make_msmt17(src)
    secret = tmp / "0000_001_01_0303morning_0016_1.jpg"
    secret.write_bytes(b"secret")
    lst = src / "list_query.txt"
    lst.write_text(f"{secret} 0\n" + lst.read_text())
    return ["msmt17", src, tmp / "out", "--quiet"], [f"{lst}:1", "absolute path"]


def case_msmt17_image_symlink_outside(tmp):
    src = tmp / "MSMT17_V1"
    made = fakes.make_msmt17(src)
    name, pid, _ = made["gallery"][0]
    image = src / "test" / f"{pid:04d}" / name
    secret = tmp / "secret.jpg"
    secret.write_bytes(b"secret")
    image.unlink()
    os.symlink(secret, image)
    return ["msmt17", src, tmp / "out", "--quiet"], [src / "list_gallery.txt", "outside"]


def case_msmt17_list_not_utf8(tmp):
    src = tmp / "MSMT17_V1"
    fakes.make_msmt17(src)
    lst = src / "list_val.txt"
    lst.write_bytes(lst.read_bytes() + b"\xff\xfe 3\n")
    return ["msmt17", src, tmp / "out", "--quiet"], [lst, "UTF-8"]


def case_msmt17_label_beyond_int64(tmp):
    src = tmp / "MSMT17_V1"
    made = fakes.make_msmt17(src)
    name, pid, _ = made["train"][0]
    lst = src / "list_train.txt"
    lst.write_text(f"{pid:04d}/{name} {2 ** 64}\n")
    return ["msmt17", src, tmp / "out", "--quiet"], [f"{lst}:1", "64-bit"]


def case_msmt17_malformed_line(tmp):
    src = tmp / "MSMT17_V1"
    fakes.make_msmt17(src)
    lst = src / "list_train.txt"
    lst.write_text("just-one-field\n")
    return ["msmt17", src, tmp / "out", "--quiet"], [f"{lst}:1"]


def case_msmt17_missing_list(tmp):
    src = tmp / "MSMT17_V1"
    fakes.make_msmt17(src)
    (src / "list_gallery.txt").unlink()
    return ["msmt17", src, tmp / "out", "--quiet"], [src / "list_gallery.txt"]


def case_msmt17_src_missing(tmp):
    return ["msmt17", tmp / "nope", tmp / "out", "--quiet"], [tmp / "nope"]


def case_msmt17_dst_is_src(tmp):
    src = tmp / "MSMT17_V1"
    fakes.make_msmt17(src)
    return ["msmt17", src, src, "--quiet"], [src, "is the input"]


def case_market_dst_holds_other_dataset(tmp):
    src = tmp / "Market"
    fakes.make_market(src)
    other = prepared(tmp / "prepared", "msmt17")
    return ["market1501", src, other, "--quiet"], [other, "already holds", "'msmt17'"]


def case_market_image_symlink_outside(tmp):
    src = tmp / "Market"
    made = fakes.make_market(src)
    _, name, _, _ = made["rows"][0]
    secret = tmp / "secret.jpg"
    secret.write_bytes(b"secret")
    image = src / "bounding_box_train" / name
    image.unlink()
    os.symlink(secret, image)
    return ["market1501", src, tmp / "out", "--quiet"], [name, "outside"]


def case_market_bad_name(tmp):
    src = tmp / "Market"
    fakes.make_market(src)
    (src / "query" / "not_a_market_name.jpg").write_bytes(b"x")
    return ["market1501", src, tmp / "out", "--quiet"], ["not_a_market_name.jpg"]


def case_market_disk_full(tmp, monkeypatch):
    src = tmp / "Market"
    fakes.make_market(src)

    def full(src_path, dst, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(src_path))

    monkeypatch.setattr(shutil, "copyfile", full)
    return (["market1501", src, tmp / "out", "--mode", "copy", "--quiet"],
            [tmp / "out" / "images" / "train", "No space left on device"])


def case_cuhk03_external_link(tmp):
    made = fakes.make_cuhk03(tmp / "cuhk")
    mat = made["mat"]
    other = tmp / "other.h5"
    with h5py.File(other, "w") as f:
        f["labeled"] = np.zeros((5, 1))
    with h5py.File(mat, "a") as f:
        del f["labeled"]
        f["labeled"] = h5py.ExternalLink(str(other), "/labeled")
    return ["cuhk03", mat, tmp / "out", "--quiet"], [mat, "external link"]


def case_cuhk03_dst_is_folder_of_mat(tmp):
    made = fakes.make_cuhk03(tmp / "cuhk")
    folder = Path(made["mat"]).parent
    return ["cuhk03", folder, folder, "--quiet"], [folder, "is the input"]


def case_unknown_command(tmp):
    return ["no-such-dataset", tmp, tmp / "out"], ["no-such-dataset"]


def case_cuhk03_bad_split_index(tmp):
    made = fakes.make_cuhk03(tmp / "cuhk")
    return (["cuhk03", made["mat"], tmp / "out", "--split", "classic", "--split-index", "99",
             "--quiet"], ["--split-index"])


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items())
         if name.startswith("case_")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_fails_cleanly(name, tmp_path, capsys, monkeypatch):
    build = CASES[name]
    if "monkeypatch" in build.__code__.co_varnames[:build.__code__.co_argcount]:
        argv, needles = build(tmp_path, monkeypatch)
    else:
        argv, needles = build(tmp_path)
    run_clean_failure(cli.main, argv, tmp_path, capsys, needles)


def test_combine_into_fresh_folder_still_works(tmp_path, capsys):
    """The refusals above leave the normal use intact: a fresh DST, then a resume."""
    a, b = prepared(tmp_path / "a", "a"), prepared(tmp_path / "b", "b")
    for _ in range(2):
        assert cli.main(["combine", str(tmp_path / "out"), str(a), str(b), "--quiet"]) == 0
    lines = (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 6
