"""reid-search: ranking against a brute-force float64 oracle, the JSON shape, the gallery
cache, the figures and the one-line errors.

The images are 32 x 64 PNGs, the model's input size, so extraction involves no
resampling and the oracle's features are the model run on the decoded pixels.
"""

import json
import os

import numpy as np
import pytest

from reid_tf import search_gallery
from reid_tf.search_cli import main
from tests.reference.rerank_oracle import dense_re_rank
from tests.scoring_oracles import euclidean64, local64

H, W = 64, 32
COLOURS = {  # identity -> (upper body, lower body)
    "anna": ((220, 30, 30), (30, 30, 160)),
    "ben": ((30, 200, 40), (200, 200, 200)),
    "cleo": ((240, 220, 20), (20, 20, 20)),
}


def person(identity, variant):
    from PIL import Image, ImageDraw

    upper, lower = COLOURS[identity]
    shift = 3 * variant
    img = Image.new("RGB", (W, H), (120 + 10 * variant, 120, 120))
    draw = ImageDraw.Draw(img)
    draw.rectangle((6 + variant, 4 + shift, 25 - variant, 30 + shift), fill=upper)
    draw.rectangle((8, 31 + shift, 23, 60), fill=lower)
    return img


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    import keras

    from reid_tf import build_model, inference_model

    keras.utils.set_random_seed(3)
    net = build_model("tiny", num_classes=3, input_shape=(H, W, 3))
    path = tmp_path_factory.mktemp("model") / "model.keras"
    inference_model(net, local=True).save(path)
    return path


@pytest.fixture
def photos(tmp_path):
    """gallery/ with 3 identities x 3 images (one sub-folder), queries/ with 2 images."""
    gallery = tmp_path / "gallery"
    (gallery / "day2").mkdir(parents=True)
    for k, identity in enumerate(COLOURS):
        for v in range(3):
            sub = gallery / "day2" if v == 2 else gallery
            person(identity, v).save(sub / f"{identity}_{v}.png")
    (gallery / "notes.txt").write_text("not an image")
    queries = tmp_path / "queries"
    queries.mkdir()
    person("ben", 3).save(queries / "ben_q.png")
    person("anna", 4).save(queries / "anna_q.png")
    return {"gallery": gallery, "queries": [queries / "ben_q.png", queries / "anna_q.png"],
            "root": tmp_path}


def oracle_features(model_path, paths):
    """The model run on the decoded pixels (float32 in [0, 1]), float64 out."""
    import keras
    from PIL import Image

    model = keras.saving.load_model(model_path, compile=False)
    x = np.stack([np.asarray(Image.open(p).convert("RGB"), np.float32) / 255.0 for p in paths])
    out = model.predict(x, verbose=0)
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def gallery_files(gallery):
    return sorted(str(p) for p in gallery.rglob("*.png"))


def run(args, capsys):
    code = main([str(a) for a in args] + ["--quiet"])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("distance", ["global", "global+local"])
def test_ranking_equals_the_float64_oracle(model_path, photos, tmp_path, capsys, distance):
    hits = tmp_path / "hits.json"
    code, out, err = run(["--model", model_path, "--gallery", photos["gallery"],
                          "--query", *photos["queries"], "--top", "4",
                          "--distance", distance, "--json", hits], capsys)
    assert code == 0, err
    files = gallery_files(photos["gallery"])
    q = oracle_features(model_path, photos["queries"])
    g = oracle_features(model_path, files)
    dist = euclidean64(q["global"], g["global"])
    if distance == "global+local":
        dist = dist + local64(q["local"], g["local"])
    got = json.loads(hits.read_text())
    for i, query in enumerate(photos["queries"]):
        order = np.argsort(dist[i], kind="stable")[:4]
        assert [r["path"] for r in got[i]["results"]] == [files[j] for j in order]
        np.testing.assert_allclose([r["distance"] for r in got[i]["results"]],
                                   dist[i, order], rtol=1e-4, atol=1e-5)
        # the nearest image shows the query's identity
        assert os.path.basename(files[order[0]]).split("_")[0] == \
            os.path.basename(query).split("_")[0]
    assert f"query {photos['queries'][0]}: top 4 of 9 gallery images by {distance}" in out


def test_rerank_equals_the_dense_oracle(model_path, photos, tmp_path, capsys):
    hits = tmp_path / "hits.json"
    code, _, err = run(["--model", model_path, "--gallery", photos["gallery"],
                        "--query", *photos["queries"], "--top", "9", "--distance",
                        "global+local", "--rerank", "--k1", "4", "--k2", "2",
                        "--json", hits], capsys)
    assert code == 0, err
    files = gallery_files(photos["gallery"])
    q = oracle_features(model_path, photos["queries"])
    g = oracle_features(model_path, files)

    def full(a, b):
        return euclidean64(a["global"], b["global"]) + local64(a["local"], b["local"])

    want = dense_re_rank(full(q, g), full(q, q), full(g, g), k1=4, k2=2, lambda_value=0.3)
    got = json.loads(hits.read_text())
    # the search re-ranks float32 distances, the oracle float64 ones; the Jaccard
    # term amplifies the round-off to ~1e-4 here
    for i in range(2):
        dists = [r["distance"] for r in got[i]["results"]]
        np.testing.assert_allclose(np.sort(want[i]), dists, atol=5e-4)
        rows = [files.index(r["path"]) for r in got[i]["results"]]
        np.testing.assert_allclose(want[i][rows], dists, atol=5e-4)
        gaps = np.diff(np.sort(want[i]))
        order = np.argsort(want[i], kind="stable")
        clear = np.flatnonzero(np.minimum(np.r_[gaps, np.inf], np.r_[np.inf, gaps]) > 1e-3)
        assert [rows[k] for k in clear] == [int(order[k]) for k in clear]


def test_json_shape_is_exact(model_path, photos, tmp_path, capsys):
    hits = tmp_path / "hits.json"
    code, _, err = run(["--model", model_path, "--gallery", photos["gallery"],
                        "--query", photos["queries"][0], "--top", "20", "--json", hits], capsys)
    assert code == 0, err
    got = json.loads(hits.read_text())
    assert isinstance(got, list) and len(got) == 1
    assert set(got[0]) == {"query", "results"}
    assert got[0]["query"] == str(photos["queries"][0])
    results = got[0]["results"]
    assert len(results) == 9  # K > G: the whole gallery
    assert all(set(r) == {"path", "distance", "rank"} for r in results)
    assert [r["rank"] for r in results] == list(range(1, 10))
    assert all(isinstance(r["distance"], float) and isinstance(r["path"], str) for r in results)
    assert sorted(r["path"] for r in results) == gallery_files(photos["gallery"])
    assert [r["distance"] for r in results] == sorted(r["distance"] for r in results)


def count_extractions(monkeypatch):
    import reid_tf.extract

    calls = []
    real = reid_tf.extract.extract_features

    def counting(model, paths, **kwargs):
        calls.append(len(paths))
        return real(model, paths, **kwargs)

    monkeypatch.setattr(reid_tf.extract, "extract_features", counting)
    return calls


def caches(root):
    return sorted(p.name for p in root.glob("gallery.reid-search-*.h5"))


def test_gallery_cache_is_reused_and_invalidated(model_path, photos, tmp_path, capsys,
                                                 monkeypatch):
    calls = count_extractions(monkeypatch)
    args = ["--model", model_path, "--gallery", photos["gallery"], "--query",
            photos["queries"][0], "--json", tmp_path / "a.json"]
    assert run(args, capsys)[0] == 0
    assert calls == [1, 9]  # the query, then the gallery
    first = caches(photos["root"])
    assert len(first) == 1

    assert run(args, capsys)[0] == 0
    assert calls[2:] == [1]  # the query only: the gallery came from the cache
    assert caches(photos["root"]) == first

    person("cleo", 5).save(photos["gallery"] / "day2" / "cleo_2.png")  # a changed file
    args[-1] = tmp_path / "b.json"
    assert run(args, capsys)[0] == 0
    assert calls[3:] == [1, 9]
    second = caches(photos["root"])
    assert len(second) == 1 and second != first  # the stale cache was replaced
    results = json.loads((tmp_path / "b.json").read_text())[0]["results"]
    files = gallery_files(photos["gallery"])
    q = oracle_features(model_path, photos["queries"][:1])
    g = oracle_features(model_path, files)
    dist = euclidean64(q["global"], g["global"])[0]
    np.testing.assert_allclose([r["distance"] for r in results],
                               np.sort(dist), rtol=1e-4, atol=1e-5)

    (photos["gallery"] / "new.png").write_bytes((photos["gallery"] / "ben_0.png").read_bytes())
    assert run(args, capsys)[0] == 0
    assert calls[5:] == [1, 10]  # an added file also invalidates


def test_cache_goes_under_the_cache_dir_when_the_parent_is_read_only(
        model_path, photos, tmp_path, capsys, monkeypatch):
    calls = count_extractions(monkeypatch)
    parent = str(photos["root"])
    real_access = os.access
    monkeypatch.setattr(search_gallery.os, "access",
                        lambda p, mode: False if str(p) == parent else real_access(p, mode))
    cache = tmp_path / "cache"
    monkeypatch.setenv("ALIGNEDREID_CACHE", str(cache))
    args = ["--model", model_path, "--gallery", photos["gallery"], "--query",
            photos["queries"][0]]
    assert run(args, capsys)[0] == 0
    assert caches(photos["root"]) == []
    written = list((cache / "search").glob("gallery-*.reid-search-*.h5"))
    assert len(written) == 1
    assert run(args, capsys)[0] == 0
    assert calls == [1, 9, 1]


def test_dump_gallery_gives_the_folder_ranking(model_path, photos, tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    base = ["--model", model_path, "--query", *photos["queries"], "--top", "5"]
    assert run(base + ["--gallery", photos["gallery"], "--json", a], capsys)[0] == 0
    dump = photos["root"] / caches(photos["root"])[0]
    assert run(base + ["--gallery", dump, "--json", b], capsys)[0] == 0
    from_folder, from_dump = json.loads(a.read_text()), json.loads(b.read_text())
    for x, y in zip(from_folder, from_dump):
        assert [os.path.abspath(r["path"]) for r in x["results"]] == \
            [r["path"] for r in y["results"]]
        assert [r["distance"] for r in x["results"]] == [r["distance"] for r in y["results"]]


def test_ranked_list_pngs(model_path, photos, tmp_path, capsys):
    from PIL import Image

    from reference.figures import ranked_list_layout

    out = tmp_path / "figs"
    code, _, err = run(["--model", model_path, "--gallery", photos["gallery"], "--query",
                        *photos["queries"], "--top", "3", "--out", out], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["q000_ben_q.png", "q001_anna_q.png"]
    layout = ranked_list_layout(3)
    page = Image.open(out / "q000_ben_q.png").convert("RGB")
    assert page.size == layout["size"]
    x0, y0, x1, y1 = layout["query_box"]
    # the query tile shows the query's upper-body colour (the image fills the tile)
    upper = COLOURS["ben"][0]
    centre = page.getpixel(((x0 + x1) // 2, y0 + (y1 - y0) * 25 // 64))
    assert centre == upper


@pytest.mark.parametrize("case, needle", [
    ("corrupt query", "corrupt_q.jpg"),
    ("missing query", "missing.png"),
    ("empty folder", "no images"),
    ("missing gallery", "no such folder"),
    ("not an AlignedReID model", "not an AlignedReID model"),
    ("out inside gallery", "--out"),
    ("bad top", "--top"),
])
def test_errors_are_one_line(model_path, photos, tmp_path, capsys, case, needle):
    import keras

    gallery, query, model = photos["gallery"], photos["queries"][0], model_path
    extra = []
    if case == "corrupt query":
        query = tmp_path / "corrupt_q.jpg"
        query.write_bytes(b"\xff\xd8 not a jpeg")
    elif case == "missing query":
        query = tmp_path / "missing.png"
    elif case == "empty folder":
        gallery = tmp_path / "empty"
        (gallery / "sub").mkdir(parents=True)
        (gallery / "sub" / "readme.txt").write_text("x")
    elif case == "missing gallery":
        gallery = tmp_path / "nowhere"
    elif case == "not an AlignedReID model":
        inp = keras.Input((H, W, 3))
        model = tmp_path / "plain.keras"
        keras.Model(inp, keras.layers.Dense(2)(inp)).save(model)
    elif case == "out inside gallery":
        extra = ["--out", gallery / "figs"]
    elif case == "bad top":
        extra = ["--top", "0"]
    code, out, err = run(["--model", model, "--gallery", gallery, "--query", query] + extra,
                         capsys)
    lines = err.strip().splitlines()
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("reid-search: error: ") and needle in lines[0]
    assert out == ""
    assert not (gallery / "figs").exists()
    if case == "corrupt query":  # the queries are read first: no gallery work was done
        assert caches(photos["root"]) == []


def test_progress_and_the_cache_line_go_to_stderr(model_path, photos, capsys, monkeypatch):
    import reid_common.progress

    monkeypatch.setattr(reid_common.progress, "_isatty", lambda stream: True)
    code = main(["--model", str(model_path), "--gallery", str(photos["gallery"]), "--query",
                 str(photos["queries"][0]), "--extract-batch-size", "2"])
    captured = capsys.readouterr()
    assert code == 0
    assert "gallery features: 9/9 (100%" in captured.err
    assert "query features: 1/1 (100%" in captured.err
    assert "gallery features cached in" in captured.err
    assert "gallery features" not in captured.out
