"""Tests of reference.figures (ranked-list PNGs, the alignment figure) and of
reference.reports (the report flags).

Oracles: the expected ranking is written down from the hand-made distance
matrix and re-derived by a plain loop over the protocol's rules; each image
is a solid colour, so the pixel at a tile's centre says which image was
drawn there; the alignment path is checked against a brute-force
enumeration of every monotone path.
"""

import argparse
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from reference import figures, reports
from reference.figures import images
from reference.figures import ranked_list as layout
from tests.oracles import scored_paths
from reference.dump import read_dump, write_dump

# gallery of the ranked-list tests: (pid, camid, distance to query 0)
GALLERY = [
    (1, 0, 0.10),  # same pid and camera as query 0: removed
    (-1, 1, 0.20),  # junk: removed
    (1, 1, 0.50),  # match
    (2, 1, 0.30),  # non-match, nearest valid item
    (3, 2, 0.90),  # non-match; its image file is missing
    (1, 2, 0.70),  # match
    (2, 0, 0.95),
    (0, 3, 0.96),  # distractor pid 0 stays
]
QUERIES = [(1, 0), (2, 1), (3, 0)]
TILE = (40, 20)  # (h, w)


def _colour(k):
    """A distinct solid colour per image (k = 0 .. 15)."""
    rng = np.random.default_rng(100 + k)
    return tuple(int(v) for v in rng.integers(30, 226, size=3))


def _write_images(root, prefix, n, jpeg=False):
    paths = []
    for k in range(n):
        name = f"{prefix}{k}.{'jpg' if jpeg else 'png'}"
        colour = _colour(k + (8 if prefix == "q" else 0))
        Image.new("RGB", (16, 32), colour).save(os.path.join(root, name), quality=95)
        paths.append(name)
    return paths


@pytest.fixture()
def dump_dir(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    q_paths = _write_images(images, "q", len(QUERIES))
    g_paths = _write_images(images, "g", len(GALLERY), jpeg=True)
    os.unlink(images / g_paths[4])  # one missing image
    rng = np.random.default_rng(0)
    query = {
        "global": rng.normal(size=(len(QUERIES), 6)).astype(np.float32),
        "local": rng.normal(size=(len(QUERIES), 5, 4)).astype(np.float32),
        "pid": np.array([p for p, _ in QUERIES]),
        "camid": np.array([c for _, c in QUERIES]),
        "path": q_paths,
    }
    gallery = {
        "global": rng.normal(size=(len(GALLERY), 6)).astype(np.float32),
        "local": rng.normal(size=(len(GALLERY), 4, 4)).astype(np.float32),
        "pid": np.array([p for p, _, _ in GALLERY]),
        "camid": np.array([c for _, c, _ in GALLERY]),
        "path": g_paths,
    }
    path = tmp_path / "feats.h5"
    write_dump(path, query, gallery, protocol="market1501")
    distmat = rng.uniform(0.0, 1.0, size=(len(QUERIES), len(GALLERY))).astype(np.float32)
    distmat[0] = [d for _, _, d in GALLERY]
    return tmp_path, read_dump(path), distmat


def _expected_order(dump, distmat, q):
    """Plain-loop ranking under the Market-1501 rules (ties by gallery index)."""
    q_pid, q_cam = int(dump.query["pid"][q]), int(dump.query["camid"][q])
    keep = []
    for g in range(dump.num_gallery):
        pid, cam = int(dump.gallery["pid"][g]), int(dump.gallery["camid"][g])
        if pid == -1 or (pid == q_pid and cam == q_cam):
            continue
        keep.append((float(distmat[q, g]), g))
    return [g for _, g in sorted(keep)]


def _is_green(px):
    r, g, b = px[:3]
    return g > 120 and r < 80 and b < 80


def _is_red(px):
    r, g, b = px[:3]
    return r > 150 and g < 80 and b < 80


def _centre(box):
    x0, y0, x1, y1 = box
    return ((x0 + x1) // 2, (y0 + y1) // 2)


# ----------------------------------------------------------------------------
# ranked lists


def test_ranked_list_order_borders_and_size(dump_dir):
    tmp_path, dump, distmat = dump_dir
    out = tmp_path / "out"
    out.mkdir()
    with pytest.warns(figures.ReportWarning, match="1 image"):
        pages = figures.ranked_list_figure(
            dump, distmat, [0, 2], 4, str(out), image_root=str(tmp_path / "images"),
            tile_size=TILE, prefix="t_",
        )
    assert [p["query"] for p in pages] == [0, 2]
    # query 0: order written down from GALLERY, and re-derived by the plain loop
    assert pages[0]["gallery"] == [3, 2, 5, 4]
    assert pages[0]["gallery"] == _expected_order(dump, distmat, 0)[:4]
    assert pages[0]["matches"] == [False, True, True, False]
    assert pages[1]["gallery"] == _expected_order(dump, distmat, 2)[:4]
    assert pages[0]["missing_images"] == 1

    h, w = TILE
    b, gap, sep, m = layout.BORDER, layout.GAP, layout.SEPARATOR, layout.MARGIN
    expected_size = (2 * m + 5 * (w + 2 * b) + 3 * gap + sep,
                     2 * m + layout.HEADER + (h + 2 * b) + layout.LABEL)
    img = Image.open(pages[0]["file"])
    assert img.format == "PNG"
    assert img.size == expected_size
    assert os.path.basename(pages[0]["file"]) == "t_q00000.png"
    img = img.convert("RGB")
    boxes = pages[0]["boxes"]
    for k, g in enumerate(pages[0]["gallery"]):
        x0, y0, x1, y1 = boxes[k + 1]
        border_px = img.getpixel((x0 + 1, (y0 + y1) // 2))
        is_match = GALLERY[g][0] == QUERIES[0][0]  # the test's own construction
        assert (_is_green if is_match else _is_red)(border_px), (k, g, border_px)
        assert not (_is_red if is_match else _is_green)(border_px)
        centre = np.array(img.getpixel(_centre(boxes[k + 1])))
        if g == 4:  # missing file: grey placeholder
            assert tuple(centre) == images.PLACEHOLDER_COLOUR
        else:  # the tile shows gallery image g (solid colour, JPEG: approximately)
            assert np.abs(centre - np.array(_colour(g))).max() <= 8
    q_centre = np.array(img.getpixel(_centre(boxes[0])))
    assert np.abs(q_centre - np.array(_colour(8))).max() <= 2  # query 0's PNG image
    assert sorted(os.listdir(out)) == ["t_q00000.png", "t_q00002.png"]  # no temp files


def test_ranked_list_short_gallery_and_cuhk_sysu(dump_dir):
    tmp_path, dump, distmat = dump_dir
    dump.gallery_lists = [np.array([7, 2, 5]), np.array([0, 1]), np.array([], np.int64)]
    pages = figures.ranked_list_figure(
        dump, distmat, [0, 1, 2], 10, str(tmp_path), protocol="cuhk-sysu",
        image_root=str(tmp_path / "images"), tile_size=TILE, warn=lambda msg: None,
    )
    # only the query's own list, by distance, no camera or junk removal
    assert pages[0]["gallery"] == [2, 5, 7]
    assert pages[1]["gallery"] == sorted([0, 1], key=lambda g: (distmat[1, g], g))
    assert pages[2]["gallery"] == []
    img = Image.open(pages[0]["file"]).convert("RGB")
    assert img.size == figures.ranked_list_layout(10, TILE)["size"]
    empty = figures.ranked_list_layout(10, TILE)["gallery_boxes"][5]
    assert img.getpixel(_centre(empty)) == images.EMPTY_TILE


def test_ranked_list_ties_by_gallery_index(dump_dir):
    tmp_path, dump, _ = dump_dir
    distmat = np.full((dump.num_query, dump.num_gallery), 0.5, np.float32)
    pages = figures.ranked_list_figure(dump, distmat, [1], 8, str(tmp_path),
                                       tile_size=TILE, warn=lambda msg: None)
    assert pages[0]["gallery"] == _expected_order(dump, distmat, 1)


def test_ranked_list_without_paths_is_one_line_error(dump_dir):
    tmp_path, dump, distmat = dump_dir
    del dump.query["path"]
    with pytest.raises(figures.ReportError) as err:
        figures.ranked_list_figure(dump, distmat, [0], 3, str(tmp_path))
    assert str(err.value).startswith("dump:")
    assert "image paths" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(reports.ReportError) as err:
        reports.run_reports(_parse(["--ranked-list", "3", "--out", str(tmp_path)]),
                            dump, distmat, dump.path)
    assert str(err.value).startswith("--ranked-list:")
    assert "image paths" in str(err.value) and "\n" not in str(err.value)


def test_sample_queries_seeded():
    a = figures.sample_queries(1000, 8, seed=3)
    assert len(set(a.tolist())) == 8 and list(a) == sorted(a)
    assert a.tolist() == figures.sample_queries(1000, 8, seed=3).tolist()
    assert a.tolist() != figures.sample_queries(1000, 8, seed=4).tolist()


# ----------------------------------------------------------------------------
# alignment figure


def _brute_force_path(x, y):
    """The minimum-sum monotone path by enumeration, its length, and the part distances."""
    d = np.tanh(np.linalg.norm(x[:, None, :] - y[None, :, :], axis=-1) / 2)
    best, path = scored_paths(d)[0]
    return path, best, d


def test_alignment_figure_path_lines_and_widths(tmp_path):
    rng = np.random.default_rng(7)
    # gallery stripes = query stripes shifted down by two (a misaligned crop)
    base = rng.normal(size=(8, 6))
    x = base[:6] + 0.05 * rng.normal(size=(6, 6))
    y = np.concatenate([rng.normal(size=(2, 6)), base[:5]]) + 0.05 * rng.normal(size=(7, 6))
    img_q = np.zeros((48, 24, 3), np.uint8)
    img_q[..., 0] = np.linspace(0, 255, 48)[:, None]
    Image.new("RGB", (20, 40), (10, 120, 200)).save(tmp_path / "g.png")
    out = tmp_path / "align.png"
    info = figures.alignment_figure(img_q, str(tmp_path / "g.png"), x, y, str(out),
                                    title="toy")
    path, best, d = _brute_force_path(x, y)
    assert info["path"] == path
    assert path != [(i, i) for i in range(6)]  # the test is not about the diagonal
    assert info["distance"] == pytest.approx(best, rel=1e-6)
    np.testing.assert_allclose(info["part_distances"], d, rtol=1e-12)
    # what was drawn: one line per path cell, and the overlay on the matrix
    assert [(i, j) for i, j, _ in info["lines"]] == path
    assert info["overlay"] == path
    widths = np.array([wd for _, _, wd in info["lines"]])
    dvals = np.array([d[p] for p in path])
    order = np.argsort(dvals)
    assert np.all(np.diff(widths[order]) > 0)  # thicker where d_ij is larger
    assert widths.min() == pytest.approx(0.6) and widths.max() == pytest.approx(6.0)
    assert np.all(np.diff(np.array(info["alphas"])[order]) > 0)  # and more opaque
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (1000, 500)
    assert sorted(os.listdir(tmp_path)) == ["align.png", "g.png"]


def _shifted_pair(seed, h=6, shift=2, c=6):
    """Query stripes and the same stripes seen two stripes lower (a misaligned crop)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(h + shift, c))
    x = base[:h] + 0.05 * rng.normal(size=(h, c))
    y = np.concatenate([rng.normal(size=(shift, c)), base[:h - shift]]) \
        + 0.05 * rng.normal(size=(h, c))
    return x, y


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_alignment_figure_content_read_from_the_figure(seed):
    """Lines only for the shortest path's cells, weighted by d_ij; values and totals legible."""
    x, y = _shifted_pair(seed)
    fig, info = figures.draw_alignment(None, None, x, y, title="pair")
    path, best, d = _brute_force_path(x, y)
    ax_img = fig.axes[0]
    matches = {}
    for line in ax_img.lines:
        gid = line.get_gid() or ""
        if gid.startswith("match "):
            i, j = (int(v) for v in gid.split()[1:])
            matches[(i, j)] = (line.get_linewidth(), line.get_alpha())
    assert sorted(matches) == sorted(path)  # nothing but the path: no fan of every cell
    by_d = sorted(path, key=lambda c: d[c])
    widths = [matches[c][0] for c in by_d]
    alphas = [matches[c][1] for c in by_d]
    dvals = [d[c] for c in by_d]
    for k in range(len(by_d) - 1):
        if dvals[k + 1] - dvals[k] > 1e-9:
            assert widths[k] < widths[k + 1] and alphas[k] < alphas[k + 1]
    # the pairs that carry the distance stand out: width ratio of largest to smallest d_ij
    assert widths[-1] / widths[0] >= 5
    texts = {t.get_gid(): t.get_text() for t in ax_img.texts if t.get_gid()}
    assert texts == {f"value {i} {j}": f"{d[i, j]:.2f}" for i, j in path}
    head = fig._suptitle.get_text()
    band = min(length for length, p in scored_paths(d) if all(abs(i - j) <= 1 for i, j in p))
    for value in (best, band, np.trace(d)):
        assert f"{value:.3f}" in head
    # a misaligned crop of the same stripes: the path beats every path without shift
    assert best < band - 0.1 and info["unshifted"] == pytest.approx(band, rel=1e-9)
    assert info["unaligned"] == pytest.approx(np.trace(d), rel=1e-9)


def test_alignment_figure_rejects_channel_mismatch(tmp_path):
    with pytest.raises(figures.ReportError, match="local_g"):
        figures.alignment_figure(None, None, np.zeros((3, 4)), np.zeros((3, 5)),
                                 str(tmp_path / "a.png"))


# ----------------------------------------------------------------------------
# flags


def _parse(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--protocol", default=None)
    reports.add_report_arguments(parser)
    return parser.parse_args(argv)


def test_run_reports_writes_ranked_lists_and_alignment(dump_dir):
    tmp_path, dump, distmat = dump_dir
    out = tmp_path / "rep"
    args = _parse(["--ranked-list", "3", "--num-queries", "2", "--alignment", "1", "5",
                   "--out", str(out), "--image-root", str(tmp_path / "images")])
    msgs = reports.run_reports(args, dump, {"global": distmat, "local": distmat[:, ::-1].copy()},
                               dump.path)
    files = sorted(os.listdir(out))
    queries = figures.sample_queries(dump.num_query, 2, 0)
    assert files == sorted(
        ["feats_align_q1_g5.png"]
        + [f"feats_{name}_q{q:05d}.png" for name in ("global", "local") for q in queries]
    )
    assert any(m.startswith("wrote 2 ranked list(s) (global)") for m in msgs)
    assert any(m.startswith("wrote") and "align_q1_g5" in m for m in msgs)
    assert not any("placeholder" in m for m in msgs if "alignment" in m)


def test_run_reports_alignment_to_png_path(dump_dir):
    tmp_path, dump, _ = dump_dir
    target = tmp_path / "pair.png"
    args = _parse(["--alignment", "0", "4", "--out", str(target)])
    msgs = reports.run_reports(args, dump, None, dump.path)
    assert target.is_file()
    assert any("grey placeholder" in m for m in msgs)  # relative paths, no --image-root


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--ranked-list", "0"], "--ranked-list"),
        (["--ranked-list", "101"], "--ranked-list"),
        (["--ranked-list", "5", "--num-queries", "0"], "--num-queries"),
        (["--alignment", "-1", "0"], "--alignment"),
        (["--alignment", "9", "0"], "--alignment"),
        (["--alignment", "0", "8"], "--alignment"),
        (["--ranked-list", "3", "--out", "x.png"], "--out"),
        (["--ranked-list", "3", "--image-root", "/no/such/dir"], "--image-root"),
    ],
)
def test_bad_flags_are_one_line_errors(dump_dir, argv, flag):
    tmp_path, dump, distmat = dump_dir
    args = _parse(argv)
    with pytest.raises(reports.ReportError) as err:
        reports.run_reports(args, dump, distmat, dump.path)
    message = str(err.value)
    assert message.startswith(flag) and "\n" not in message


def test_alignment_needs_local_features(dump_dir):
    tmp_path, dump, distmat = dump_dir
    del dump.query["local"], dump.gallery["local"]
    with pytest.raises(reports.ReportError, match="^--alignment: .*no local features"):
        reports.run_reports(_parse(["--alignment", "0", "0", "--out", str(tmp_path)]),
                            dump, distmat, dump.path)


def test_no_flags_no_output(dump_dir):
    tmp_path, dump, distmat = dump_dir
    assert reports.run_reports(_parse([]), dump, distmat, dump.path) == []
    assert not reports.reports_requested(_parse([]))


def test_import_pulls_in_neither_tensorflow_nor_matplotlib():
    code = (
        "import sys, reference.reports; "
        "bad = [m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules]; "
        "sys.exit(1 if bad else 0)"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


# ----------------------------------------------------------------------------
# CMC figure


def test_cmc_figure_draws_each_curve_in_percent(tmp_path):
    a = np.linspace(0.3, 1.0, 30)
    b = np.minimum(1.0, a + 0.05)
    panels = [("one", [figures.CMCCurve(a, "a"), figures.CMCCurve(b, "b", linestyle="--")]),
              ("two", [figures.CMCCurve(b[:12], "b", color="tab:green", marker=".")])]
    fig = figures.cmc_figure(panels, max_rank=20, ylim=(0, 100))
    assert [ax.get_title() for ax in fig.axes] == ["one", "two"]
    first, second = fig.axes[0].lines
    np.testing.assert_allclose(first.get_ydata(), 100.0 * a[:20])
    np.testing.assert_array_equal(first.get_xdata(), np.arange(1, 21))
    assert second.get_linestyle() == "--" and first.get_linestyle() == "-"
    (third,) = fig.axes[1].lines
    np.testing.assert_allclose(third.get_ydata(), 100.0 * b[:12])
    assert third.get_marker() == "." and fig.axes[1].get_ylim() == (0.0, 100.0)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "a: R1 30.0%", "b: R1 35.0%"]
    out = tmp_path / "cmc.png"
    figures.write_cmc_figure(str(out), panels, panel_size=(4.0, 3.0))
    with Image.open(out) as img:
        # two panels of 4 inches; 3 inches plus 0.22 per legend row (2 rows), 100 dpi
        assert img.format == "PNG" and img.size == (800, 344)
