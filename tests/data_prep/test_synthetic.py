"""The synthetic misalignment dataset: determinism, layout, counts, look-alike
pairs, image size, the vertical-shift knob, resumable writing and the CLI."""

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_prep import PrepError
from data_prep import synthetic as S

MARKET = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")
SMALL = dict(num_identities=12, num_cameras=3, images_per_identity=6, height=64, width=32,
             lookalike_fraction=0.5, distractor_fraction=0.2, junk_fraction=0.1)


def _files(root):
    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes()
            for folder in S.FOLDERS for p in sorted((root / folder).iterdir())}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    dst = tmp_path_factory.mktemp("synthetic") / "a"
    info = S.generate(dst, seed=3, **SMALL)
    return dst, info


def _parse(root):
    rows = []
    for folder in S.FOLDERS:
        for p in sorted((Path(root) / folder).iterdir()):
            m = MARKET.match(p.name)
            assert m, p.name
            rows.append((folder, int(m.group(1)), int(m.group(2)), p))
    return rows


def test_same_seed_same_bytes_other_seed_differs(small, tmp_path):
    dst, _ = small
    again = S.generate(tmp_path / "b", seed=3, **SMALL)
    assert again["written"] > 0
    a, b = _files(dst), _files(tmp_path / "b")
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    assert (dst / "synthetic.json").read_bytes() == (tmp_path / "b" / "synthetic.json").read_bytes()
    S.generate(tmp_path / "c", seed=4, **SMALL)
    c = _files(tmp_path / "c")
    common = a.keys() & c.keys()
    assert a.keys() != c.keys() or any(a[k] != c[k] for k in common)
    assert sum(a[k] == c[k] for k in common) == 0


def test_workers_do_not_change_the_files(small, tmp_path):
    dst, _ = small
    S.generate(tmp_path / "w", seed=3, workers=2, **SMALL)
    assert _files(dst) == _files(tmp_path / "w")


def test_layout_naming_and_counts(small):
    dst, info = small
    rows = _parse(dst)
    n_train, n_test, per = 6, 6, SMALL["images_per_identity"]
    by = defaultdict(list)
    for folder, pid, cam, _ in rows:
        by[folder].append((pid, cam))
        assert 1 <= cam <= SMALL["num_cameras"]
    train_pids = {p for p, _ in by["bounding_box_train"]}
    assert train_pids == set(range(1, n_train + 1))
    assert len(by["bounding_box_train"]) == n_train * per
    test_rows = [r for r in by["bounding_box_test"] if r[0] > 0] + by["query"]
    assert {p for p, _ in test_rows} == set(range(n_train + 1, n_train + n_test + 1))
    assert len(test_rows) == n_test * per
    # one query per test identity per camera it appears in
    cams = defaultdict(set)
    for p, c in test_rows:
        cams[p].add(c)
    assert sorted(by["query"]) == sorted({(p, c) for p in cams for c in cams[p]})
    assert len(set(by["query"])) == len(by["query"])
    for p, c in by["query"]:   # a cross-camera match exists in the gallery
        assert any(gp == p and gc != c for gp, gc in by["bounding_box_test"])
    gallery = sum(1 for p, _ in by["bounding_box_test"] if p > 0)
    distractors = sum(1 for p, _ in by["bounding_box_test"] if p == 0)
    junk = sum(1 for p, _ in by["bounding_box_test"] if p == -1)
    assert distractors == round(SMALL["distractor_fraction"] * gallery) > 0
    assert junk == round(SMALL["junk_fraction"] * gallery) > 0
    assert info["counts"] == {f: len(by[f]) for f in S.FOLDERS}
    names = [p.name for _, _, _, p in rows]
    assert len(names) == len(set(names))
    meta = json.loads((dst / "synthetic.json").read_text())
    assert meta["complete"] and meta["config"]["seed"] == 3 and meta["format"] == S.FORMAT
    lines = (dst / "synthetic_images.jsonl").read_text().splitlines()
    assert len(lines) == len(rows)


def test_images_have_the_requested_size(small):
    dst, _ = small
    for _, _, _, p in _parse(dst):
        with Image.open(p) as im:
            assert im.size == (SMALL["width"], SMALL["height"]) and im.mode == "RGB"


PART_ROWS = {"head": (0.0, 0.21), "torso": (0.15, 0.57), "legs": (0.49, 0.94),
             "feet": (0.83, 0.99)}


def test_lookalike_pairs_differ_in_exactly_one_part(small):
    _, info = small
    pairs = info["lookalike_pairs"]
    # round(0.5 * 6 / 2) = 2 pairs in each split
    assert len(pairs) == 4
    specs = info["identities"]
    for a, b, part in pairs:
        sa, sb = specs[a - 1], specs[b - 1]
        differing = [p for p in S.PARTS if sa[p] != sb[p]]
        assert differing == [part]
        assert S.visibly_different(sa[part], sb[part])
        assert sa["build"] == sb["build"]
        assert (a <= 6) == (b <= 6)          # both in the same split
        # in pixels: the canonical renderings differ only at that part's height
        ra, ma = S.render_template(sa, 200)
        rb, mb = S.render_template(sb, 200)
        diff = np.any(np.abs(ra - rb) > 1e-6, axis=(1, 2)) | np.any(ma != mb, axis=1)
        rows = np.flatnonzero(diff) / 200.0
        assert rows.size > 0
        lo, hi = PART_ROWS[part]
        assert rows.min() >= lo and rows.max() <= hi, (part, rows.min(), rows.max())
    # identities outside pairs are all distinct
    keys = {json.dumps({p: s[p] for p in S.PARTS}, sort_keys=True) for s in specs}
    assert len(keys) == len(specs)


def _person_row_centroid(img):
    """Mean row of the rows that are not uniform across columns."""
    std = img.astype(float).std(axis=1).max(axis=1)
    rows = np.flatnonzero(std > 6.0)
    return rows.mean()


def test_vertical_shift_knob_moves_the_content():
    quiet = dict(clutter=0.0, occlusion_prob=0.0, noise=0.0, blur_prob=0.0, illumination=0.0,
                 camera_strength=0.0, scale_jitter=0.0, pose_jitter=0.0)
    spec = S.make_identities(1, 0.0, np.random.default_rng(0))[0][0]
    template = S.render_template(spec, 256)
    spread = {}
    for shift in (0.0, 0.1, 0.25):
        cfg = S.SyntheticConfig(vertical_shift=shift, **quiet)
        cam = S.make_cameras(1, 0.0, np.random.default_rng(1))[0]
        cent, dys = [], []
        for k in range(40):
            img, info = S.render_image(template, cam, cfg, np.random.default_rng((9, k)))
            cent.append(_person_row_centroid(img))
            dys.append(info["shift"])
        cent, dys = np.array(cent), np.array(dys)
        spread[shift] = cent.std()
        if shift > 0:
            # box moved down (positive shift) -> the person appears higher
            assert np.corrcoef(cent, dys)[0, 1] < -0.9
    assert spread[0.0] < 0.5
    assert spread[0.0] < spread[0.1] < spread[0.25]
    assert spread[0.25] > 1.6 * spread[0.1]


def test_knobs_change_the_images():
    spec = S.make_identities(1, 0.0, np.random.default_rng(0))[0][0]
    template = S.render_template(spec, 128)
    cam = S.make_cameras(1, 0.1, np.random.default_rng(1))[0]
    base = S.SyntheticConfig(height=64, width=32)
    occl = S.SyntheticConfig(height=64, width=32, occlusion_prob=1.0)
    a = [S.render_image(template, cam, base, np.random.default_rng(k))[1]["occluder"]
         for k in range(20)]
    b = [S.render_image(template, cam, occl, np.random.default_rng(k))[1]["occluder"]
         for k in range(20)]
    assert 0 < sum(x is not None for x in a) < 20 and all(x is not None for x in b)


def test_resume_and_refusals(small, tmp_path):
    dst, _ = small
    copy = tmp_path / "r"
    S.generate(copy, seed=3, **SMALL)
    before = _files(copy)
    again = S.generate(copy, seed=3, **SMALL)
    assert again["written"] == 0 and again["skipped"] == len(before)
    victim = copy / next(iter(before))
    victim.unlink()
    again = S.generate(copy, seed=3, **SMALL)
    assert again["written"] == 1 and _files(copy) == before
    # another configuration: rewritten, stale images removed
    S.generate(copy, seed=5, **SMALL)
    fresh = tmp_path / "fresh"
    S.generate(fresh, seed=5, **SMALL)
    assert _files(copy) == _files(fresh)
    # a foreign non-empty folder is refused unless overwrite
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(PrepError, match="not empty"):
        S.generate(foreign, seed=3, **SMALL)
    S.generate(foreign, seed=3, overwrite=True, **SMALL)
    assert (foreign / "notes.txt").read_text() == "mine"
    with pytest.raises(PrepError, match="--vertical-shift"):
        S.generate(tmp_path / "x", vertical_shift=2.0)
    with pytest.raises(PrepError, match="--images-per-identity"):
        S.generate(tmp_path / "x", images_per_identity=3)
    with pytest.raises(PrepError, match="unknown knob"):
        S.generate(tmp_path / "x", colourfulness=1.0)


def test_market_converter_prepares_it(small, tmp_path):
    market = pytest.importorskip("data_prep.market1501")
    dst, info = small
    result = market.convert(dst, tmp_path / "prepared", quiet=True)
    summary = result["summary"]
    assert summary["train"]["images"] == info["counts"]["bounding_box_train"]
    assert summary["train"]["identities"] == 6
    assert summary["query"]["images"] == info["counts"]["query"]
    junk = sum(1 for r in info["images"] if r["pid"] == -1)
    assert result["dropped"]["junk"] == junk
    assert summary["gallery"]["images"] == info["counts"]["bounding_box_test"] - junk
    # the data keeps its name: synthetic, in dataset.json and in every row
    from data_prep import load_manifest

    m = load_manifest(tmp_path / "prepared")
    assert result["dataset"] == m.dataset == "synthetic" and m.protocol == "market1501"
    assert {str(name) for name in m.split("query").datasets} == {"synthetic"}
    rows = (tmp_path / "prepared" / "manifest.jsonl").read_text().splitlines()
    assert {json.loads(line)["dataset"] for line in rows} == {"synthetic"}


def test_market_layout_without_the_marker_stays_market1501(small, tmp_path):
    import shutil

    market = pytest.importorskip("data_prep.market1501")
    dst, _ = small
    copy = tmp_path / "copy"
    shutil.copytree(dst, copy)
    (copy / "synthetic.json").unlink()
    assert market.convert(copy, tmp_path / "p", quiet=True)["dataset"] == "market1501"


def test_cached_preparation_is_named_synthetic(tmp_path):
    from data_prep import load_manifest

    prepared = S.prepare_cached(tmp_path / "cache", num_identities=4, images_per_identity=4,
                                height=32, width=16)
    assert prepared.name == "prepared" and load_manifest(prepared).dataset == "synthetic"


def test_cli(tmp_path, capsys):
    args = ["--num-identities", "6", "--images-per-identity", "4", "--num-cameras", "2",
            "--height", "32", "--width", "16", "--json", "--quiet"]
    sheet = tmp_path / "sheet.png"
    assert S.main([str(tmp_path / "d"), *args, "--contact-sheet", str(sheet)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["counts"]["bounding_box_train"] == 12 and out["contact_sheet"] == str(sheet)
    with Image.open(sheet) as im:
        assert im.format == "PNG" and im.size[0] > 16 * 8
    assert S.main([str(tmp_path / "e"), "--noise", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--noise" in err
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "x").write_text("x")
    assert S.main([str(tmp_path / "f"), *args]) == 2
    assert "not empty" in capsys.readouterr().err


def test_contact_sheet(tmp_path):
    png = S.contact_sheet(tmp_path / "s.png", rows=3, columns=4, height=32, width=16, scale=1)
    with Image.open(png) as im:
        assert im.size == (4 * (16 + 4) + 4, 3 * (32 + 14 + 4) + 4)
