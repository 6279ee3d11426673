"""reid_tf.extract: the CLI and its HDF5 dump."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from reid_tf.extract_cli import main
from tests.train.conftest import REPO, prepared_dir, subprocess_env


def test_extract_cli_reproduces_the_training_dump(trained_run, cache_dir, tmp_path, capsys):
    from reference import read_dump

    out = tmp_path / "dump.h5"
    code = main(["--model", str(trained_run["dir"] / "model.keras"),
                 "--data", str(prepared_dir(cache_dir)), "--out", str(out),
                 "--extract-batch-size", "7", "--json", "-", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["local_shape"] == [4, 128] and summary["global_dim"] == 256
    mine = read_dump(out)
    ref = read_dump(trained_run["dir"] / "features" / "synthetic.h5")
    assert summary["num_query"] == len(ref.query["pid"])
    for split in ("query", "gallery"):
        a, b = getattr(mine, split), getattr(ref, split)
        # batch size 7 instead of 32: the same features up to float round-off
        np.testing.assert_allclose(a["global"], b["global"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(a["local"], b["local"], rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(a["pid"], b["pid"])
        np.testing.assert_array_equal(a["camid"], b["camid"])
        assert list(a["path"]) == list(b["path"])
    assert mine.attrs["protocol"] == "market1501"
    assert mine.gallery_lists is None
    # both dumps record where their relative image paths resolve
    root = str(prepared_dir(cache_dir).resolve())
    assert os.path.realpath(mine.attrs["image_root"]) == root
    assert os.path.realpath(ref.attrs["image_root"]) == root
    assert os.path.isfile(os.path.join(root, mine.gallery["path"][0]))


def test_extract_normalize_and_no_local(trained_run, cache_dir, tmp_path):
    from reference import read_dump

    out = tmp_path / "n.h5"
    assert main(["--model", str(trained_run["dir"] / "model.keras"),
                 "--data", str(prepared_dir(cache_dir)), "--out", str(out),
                 "--no-local", "--normalize-features", "--quiet"]) == 0
    dump = read_dump(out)
    assert "local" not in dump.query
    norms = np.linalg.norm(dump.gallery["global"].astype(np.float64), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


@pytest.mark.parametrize("which, needle", [
    ("model", "--model"), ("data", "--data"), ("out", "--out"), ("batch", "--extract-batch-size"),
])
def test_extract_errors_are_one_line(which, needle, trained_run, cache_dir, tmp_path, capsys):
    args = {"--model": str(trained_run["dir"] / "model.keras"),
            "--data": str(prepared_dir(cache_dir)), "--out": str(tmp_path / "d.h5"),
            "--extract-batch-size": "8"}
    bad = {"model": ("--model", str(tmp_path / "missing.keras")),
           "data": ("--data", str(tmp_path)),
           "out": ("--out", str(tmp_path / "no" / "such" / "d.h5")),
           "batch": ("--extract-batch-size", "0")}[which]
    args[bad[0]] = bad[1]
    code = main([x for kv in args.items() for x in kv] + ["--quiet"])
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 2
    assert len(err) == 1 and needle in err[0]
    assert not (tmp_path / "d.h5").exists()


def test_extract_module_entry_point_help():
    proc = subprocess.run([sys.executable, "-m", "reid_tf.extract", "--help"], cwd=REPO,
                          env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for flag in ("--model", "--data", "--out", "--extract-batch-size", "--no-local",
                 "--normalize-features", "--json"):
        assert flag in proc.stdout


def test_extract_version_and_bad_flag(capsys):
    assert main(["--version"]) == 0
    assert "alignedreid" in capsys.readouterr().out
    assert main(["--model", "m.keras", "--data", "d", "--out", "o.h5", "--bogus"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("reid-extract: error:") and "--bogus" in err[0]


def test_extract_engine_names_the_argument(tmp_path):
    from reid_tf.extract import ExtractError, extract_dump

    with pytest.raises(ExtractError, match=r"^batch_size: must be >= 1") as info:
        extract_dump(tmp_path / "m.keras", tmp_path, tmp_path / "d.h5", batch_size=0)
    assert info.value.argument == "batch_size"
    with pytest.raises(ExtractError, match=r"^out: directory .* does not exist"):
        extract_dump(tmp_path / "m.keras", tmp_path, tmp_path / "no" / "d.h5")


def test_model_keras_of_train_py_loads_without_this_project(trained_run, tmp_path):
    """RUN/model.keras loads with plain keras.saving.load_model in a process that
    cannot import this project, and gives the features reid_tf.extract gives."""
    import os

    from reid_tf.extract import load_model
    from tests.reid_tf.test_model import _FRESH_PROCESS

    path = str(trained_run["dir"] / "model.keras")
    model = load_model(path)
    h, w = model.inputs[0].shape[1:3]
    images = np.random.default_rng(0).uniform(size=(3, h, w, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, str(tmp_path / "out.npz"),
         str(tmp_path / "images.npy"), path],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    want = model.predict(images, verbose=0)
    assert sorted(got.files) == ["0/global", "0/local"]
    for key in ("global", "local"):
        np.testing.assert_allclose(got[f"0/{key}"], want[key], rtol=1e-6, atol=1e-6)


def test_extract_features_of_no_images_has_the_model_shapes():
    from reid_tf import as_feature_model, build_model, extract_features, inference_model

    net = build_model("tiny", num_classes=3, input_shape=(64, 32, 3), local_channels=8)
    model = as_feature_model(inference_model(net, local=True))
    out = extract_features(model, [], progress=False)
    width = int(net.get_layer("global").output.shape[-1])
    assert out["global"].shape == (0, width) and out["global"].dtype == np.float32
    assert out["local"].shape[0] == 0 and out["local"].shape[2] == 8
    assert "local" not in extract_features(model, [], local=False, progress=False)
