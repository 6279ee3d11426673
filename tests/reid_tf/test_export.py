"""reid-export: every format's --check passes, the artefact computes the model's
features when run by its own runtime here, a wrong artefact fails the check,
and the errors are one line."""

import json
import sys
import warnings

import numpy as np
import pytest

from reid_tf import export as export_engine
from reid_tf.export_cli import main

H, W = 64, 32


def save_model(path, seed, local=True):
    import keras

    from reid_tf import build_model, inference_model

    keras.utils.set_random_seed(seed)
    net = build_model("tiny", num_classes=3, input_shape=(H, W, 3), with_local=local)
    inference_model(net, local=local).save(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"a": save_model(root / "a.keras", 1), "b": save_model(root / "b.keras", 2),
            "global": save_model(root / "g.keras", 3, local=False)}


def images(n=3, seed=7):
    return np.random.default_rng(seed).uniform(0, 1, size=(n, H, W, 3)).astype(np.float32)


def keras_features(path, x):
    import keras

    model = keras.saving.load_model(path, compile=False)
    return {k: np.asarray(v) for k, v in model.predict(x, verbose=0).items()}


def run_saved_model(path, x):
    import tensorflow as tf

    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    return {k: v.numpy() for k, v in fn(images=tf.constant(x)).items()}


def run_tflite(path, x):
    import tensorflow as tf

    with warnings.catch_warnings():  # its deprecation notice
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_path=str(path))
    (inp,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(inp["index"], list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    out = {}
    for detail in interpreter.get_output_details():
        value = interpreter.get_tensor(detail["index"])
        out["local" if value.ndim == 3 else "global"] = value
    return out


def run_onnx(path, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {inp.name: x})))


RUNNERS = {"saved_model": run_saved_model, "tflite": run_tflite, "onnx": run_onnx}
SUFFIX = {"saved_model": "", "tflite": ".tflite", "onnx": ".onnx"}


@pytest.fixture(scope="module")
def exported(models, tmp_path_factory):
    """Model "a" exported with --check in every format: {format: (code, artefact, summary)}."""
    root = tmp_path_factory.mktemp("exported")
    out = {}
    for fmt in RUNNERS:
        artefact, summary = root / f"reid{SUFFIX[fmt]}", root / f"{fmt}.json"
        code = main([str(models["a"]), "--format", fmt, "--out", str(artefact), "--check",
                     "--json", str(summary)])
        out[fmt] = (code, artefact, summary)
    return out


@pytest.mark.parametrize("fmt", ["saved_model", "tflite", "onnx"])
def test_check_passes_and_the_artefact_computes_the_features(models, exported, fmt):
    code, out, summary = exported[fmt]
    assert code == 0
    info = json.loads(summary.read_text())
    assert info["input"] == {"name": "images", "shape": [None, H, W, 3], "dtype": "float32",
                             "range": [0.0, 1.0]}
    assert info["outputs"] == {"global": [None, 256], "local": [None, 4, 128]}
    assert info["check"]["passed"] is True and info["format"] == fmt
    assert set(info["check"]["max_abs_diff"]) == {"global", "local"}
    # independent of the check: this test runs the artefact with its own runtime
    x = images()
    want = keras_features(models["a"], x)
    got = RUNNERS[fmt](out, x)
    assert set(got) == {"global", "local"}
    for key in ("global", "local"):
        assert got[key].shape == want[key].shape
        scale = np.abs(want[key]).max()
        assert np.abs(got[key] - want[key]).max() <= export_engine.TOLERANCES[fmt] * scale
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


def test_summary_names_the_spec_and_the_check(models, tmp_path, capsys):
    out = tmp_path / "reid.tflite"
    assert main([str(models["a"]), "--format", "tflite", "--out", str(out), "--check"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{out}: tflite, ")
    assert lines[1:4] == [f"  input  images float32 [N, {H}, {W}, 3] in [0, 1]",
                          "  output global float32 [N, 256]",
                          "  output local float32 [N, 4, 128]"]
    assert lines[4].startswith("  tflite check passed on 4 images: global max|diff| ")


def test_global_only_model_has_one_output(models, tmp_path, capsys):
    out = tmp_path / "g.tflite"
    assert main([str(models["global"]), "--format", "tflite", "--out", str(out),
                 "--check"]) == 0
    assert "output local" not in capsys.readouterr().out
    assert set(run_tflite(out, images(2))) == {"global"}


@pytest.mark.parametrize("fmt", ["saved_model", "tflite", "onnx"])
def test_check_fails_against_another_model(models, exported, fmt):
    from reid_tf import load_model

    out = str(exported[fmt][1])
    same = export_engine.check_artefact(load_model(models["a"]), out, fmt)
    other = export_engine.check_artefact(load_model(models["b"]), out, fmt)
    assert same.passed
    assert not other.passed and "FAILED" in other.line()
    assert min(other.relative.values()) > 100 * other.tolerance


def test_failed_check_exits_1_and_writes_nothing(models, tmp_path, capsys, monkeypatch):
    real = export_engine.run_artefact

    def tampered(path, fmt, x):
        out = real(path, fmt, x)
        out["global"] = out["global"] * 1.01
        return out

    monkeypatch.setattr(export_engine, "run_artefact", tampered)
    out = tmp_path / "reid.tflite"
    code = main([str(models["a"]), "--format", "tflite", "--out", str(out), "--check"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "check FAILED" in err[0] and "not written" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_saved_model_replaces_an_existing_export(models, tmp_path, capsys):
    out = tmp_path / "serving"
    assert main([str(models["a"]), "--format", "saved_model", "--out", str(out)]) == 0
    assert main([str(models["b"]), "--format", "saved_model", "--out", str(out)]) == 0
    x = images(2)
    got, want = run_saved_model(out, x), keras_features(models["b"], x)
    np.testing.assert_allclose(got["global"], want["global"], rtol=1e-5, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["serving"]


@pytest.mark.parametrize("case, needle", [
    ("out is the model", "input model"),
    ("missing model", "no such file"),
    ("not an AlignedReID model", "not an AlignedReID model"),
    ("non-empty directory", "not a SavedModel"),
    ("onnx without tf2onnx", "tf2onnx"),
    ("bad format", "--format"),
])
def test_errors_are_one_line(models, tmp_path, capsys, monkeypatch, case, needle):
    import keras

    model, fmt, out = str(models["a"]), "tflite", str(tmp_path / "m.tflite")
    if case == "out is the model":
        out = model
    elif case == "missing model":
        model = str(tmp_path / "missing.keras")
    elif case == "not an AlignedReID model":
        inp = keras.Input((H, W, 3))
        model = str(tmp_path / "plain.keras")
        keras.Model(inp, keras.layers.Dense(2)(inp)).save(model)
    elif case == "non-empty directory":
        fmt, out = "saved_model", str(tmp_path / "docs")
        (tmp_path / "docs").mkdir()
        (tmp_path / "docs" / "keep.txt").write_text("mine")
    elif case == "onnx without tf2onnx":
        fmt, out = "onnx", str(tmp_path / "m.onnx")
        monkeypatch.setitem(sys.modules, "tf2onnx", None)
    elif case == "bad format":
        fmt = "caffe"
    code = main([model, "--format", fmt, "--out", out, "--check"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("reid-export: error: ") and needle in err[0]
    if case == "non-empty directory":
        assert (tmp_path / "docs" / "keep.txt").read_text() == "mine"
    if case != "out is the model":
        assert not (tmp_path / "m.tflite").exists() and not (tmp_path / "m.onnx").exists()
