"""Confinement of dataset files and the refusal to overwrite inputs: what stays allowed."""

import json
import os

import pytest

from data_prep import PrepError, load_manifest
from data_prep.combine import combine
from tests.bad_input.test_reid_prep import prepared


def test_symlink_inside_the_dataset_is_accepted(tmp_path):
    m = prepared(tmp_path / "m")
    target = m / "images" / "train" / "d_1.jpg"
    moved = m / "images" / "store.jpg"
    os.replace(target, moved)
    os.symlink(os.path.join("..", "store.jpg"), target)
    assert len(load_manifest(m).split("train")) == 3


def test_dataset_reached_through_a_symlink_is_accepted(tmp_path):
    m = prepared(tmp_path / "m")
    os.symlink(m, tmp_path / "alias")
    manifest = load_manifest(tmp_path / "alias")
    assert len(manifest.split("query")) == 1


def test_check_files_false_skips_the_file_checks(tmp_path):
    m = prepared(tmp_path / "m")
    os.unlink(m / "images" / "train" / "d_0.jpg")
    os.symlink("/etc/hostname", m / "images" / "train" / "d_0.jpg")
    with pytest.raises(ValueError, match="outside the dataset"):
        load_manifest(m)
    assert len(load_manifest(m, check_files=False).rows) == 5


def test_resume_of_a_combine_written_without_source(tmp_path):
    a = prepared(tmp_path / "a", "a")
    out = tmp_path / "out"
    combine(out, [a], quiet=True)
    info = json.loads((out / "dataset.json").read_text())
    del info["source"]  # as written before dataset.json had "source"
    (out / "dataset.json").write_text(json.dumps(info))
    assert combine(out, [a], quiet=True)["summary"]["train"]["images"] == 3


def test_destination_messages_name_both(tmp_path):
    a, b = prepared(tmp_path / "a", "a"), prepared(tmp_path / "b", "b")
    with pytest.raises(PrepError, match=r"/a: DST is the input .*/a; writing there"):
        combine(tmp_path / "a" / ".", [a], quiet=True)
    with pytest.raises(PrepError, match=r"already holds the prepared dataset 'b' made from "
                                        r"/src/b; writing 'a' from \['.*/a'\] would replace"):
        combine(b, [a], quiet=True)
