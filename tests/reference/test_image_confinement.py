"""Image paths of a dump are only followed inside the image root; the dump's
``image_root`` attribute; HDF5 objects that read from outside their file.

Oracle: every image is a solid colour, so the pixel at a tile's centre tells
which image was drawn (or the grey placeholder).
"""

import os

import h5py
import numpy as np
import pytest
from PIL import Image

from data_prep import hdf5_outside_file
from reference import figures, read_dump, write_dump
from reference.figures import images

OUTSIDE = (250, 10, 10)
INSIDE = (10, 200, 30)


def _centre(box):
    x0, y0, x1, y1 = box
    return ((x0 + x1) // 2, (y0 + y1) // 2)


def _dump(path, gallery_paths, image_root=None):
    n = len(gallery_paths)
    rng = np.random.default_rng(0)
    q = {"global": rng.normal(size=(1, 4)).astype(np.float32), "pid": [1], "camid": [1],
         "path": ["q.png"]}
    g = {"global": rng.normal(size=(n, 4)).astype(np.float32), "pid": [2] * n,
         "camid": [2] * n, "path": gallery_paths}
    return read_dump(write_dump(str(path), q, g, image_root=image_root))


@pytest.fixture()
def layout(tmp_path):
    root = tmp_path / "dataset"
    root.mkdir()
    for name in ("q.png", "in.png"):
        Image.new("RGB", (8, 16), INSIDE).save(root / name)
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 16), OUTSIDE).save(secret)
    os.symlink(secret, root / "link.png")
    return tmp_path, root, secret


def test_ranked_list_draws_no_image_outside_the_root(layout, tmp_path):
    _, root, secret = layout
    paths = ["in.png", str(secret), "../secret.png", "link.png"]
    dump = _dump(tmp_path / "d.h5", paths)
    out = tmp_path / "out"
    out.mkdir()
    messages = []
    distmat = np.array([[0.1, 0.2, 0.3, 0.4]], np.float32)
    pages = figures.ranked_list_figure(dump, distmat, [0], 4, str(out), image_root=str(root),
                                       warn=messages.append)
    assert pages[0]["gallery"] == [0, 1, 2, 3]
    img = Image.open(pages[0]["file"]).convert("RGB")
    centres = [img.getpixel(_centre(b)) for b in pages[0]["boxes"][1:]]
    assert centres[0] == INSIDE
    assert centres[1:] == [images.PLACEHOLDER_COLOUR] * 3
    assert len(messages) == 1 and "3 image path(s) lead outside the image root" in messages[0]
    assert str(secret) in messages[0]


def test_recorded_image_root_is_used_and_confines(layout, tmp_path, monkeypatch):
    _, root, secret = layout
    dump = _dump(tmp_path / "d.h5", ["in.png", str(secret)], image_root=str(root))
    assert dump.attrs["image_root"] == str(root)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert images.image_roots(None, dump) == [str(root)]
    assert images.locate_image("in.png", [str(root)]) == (str(root / "in.png"), None)
    assert images.locate_image(str(secret), [str(root)]) == (None, "outside")
    # the user's --image-root replaces the recorded one
    assert images.image_roots(str(tmp_path), dump) == [str(tmp_path)]
    assert images.locate_image(str(secret), [str(tmp_path)]) == (str(secret), None)


def test_dump_without_image_root_reads_as_empty(tmp_path):
    dump = _dump(tmp_path / "d.h5", ["a.png"])
    assert dump.attrs["image_root"] == ""
    with h5py.File(dump.path, "r") as f:
        assert "image_root" not in f.attrs


def test_hdf5_soft_link_inside_the_file_is_accepted(tmp_path):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f["data/x"] = np.zeros(3)
        f["alias"] = h5py.SoftLink("/data/x")
        f["ext"] = h5py.ExternalLink("b.h5", "/y")
        f["via"] = h5py.SoftLink("/ext")
        assert hdf5_outside_file(f, "alias") is None
        assert hdf5_outside_file(f, "data/x") is None
        assert hdf5_outside_file(f, "via") == "is an external link to b.h5:/y"
        assert hdf5_outside_file(f["data/x"]) is None
