"""Bad inputs of ``reid-extract`` (``python -m reid_tf.extract``): exit status
2, one stderr line naming the flag or the file, no traceback, no dump
written, and every file that existed before (an earlier dump at ``--out``
included) byte for byte the same."""

import dataclasses
import zipfile
from pathlib import Path

import pytest

from reid_tf.extract_cli import main
from tests.bad_input.tf_cases import (
    assert_one_line_error,
    copy_dataset,
    digests,
    image_of,
    random_bytes,
    replace_file,
    run_in_process,
    run_subprocess,
    tensorflow_loaded,  # noqa: F401 (a fixture)
    tiny_dataset,
    tiny_model,
)

pytestmark = pytest.mark.usefixtures("tensorflow_loaded")

PROG = "reid-extract"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A prepared dataset and a tiny untrained model (never written to)."""
    root = tmp_path_factory.mktemp("extract-inputs")
    return {"data": tiny_dataset(root / "tiny"), "model": tiny_model(root / "model.keras")}


@dataclasses.dataclass
class Case:
    argv: dict
    needles: list
    keep: list = dataclasses.field(default_factory=list)


def args(inputs, tmp, **changes):
    """The arguments of a good command (``--out`` holds an earlier dump), changed."""
    out = tmp / "dump.h5"
    if not out.exists():
        out.write_bytes(b"an earlier dump\n")
    argv = {"--model": inputs["model"], "--data": inputs["data"], "--out": out,
            "--extract-batch-size": "8"}
    argv.update({"--" + k.replace("_", "-"): v for k, v in changes.items()})
    return argv


def model_case(inputs, tmp, name, content, *needles):
    bad = replace_file(tmp / name, content)
    return Case(args(inputs, tmp, model=bad), ["--model", bad, *needles], keep=[bad])


def corrupt_case(inputs, tmp, split, content):
    copy = copy_dataset(inputs["data"], tmp / "copy")
    bad = replace_file(image_of(copy, split, 2), content)
    return Case(args(inputs, tmp, data=copy), ["--data", "unreadable or corrupt image: ", bad],
                keep=[copy])


def zip_without_model(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "not a model")
    return path


CASES = {
    # the probe's faults (issue 14)
    "corrupt-query-jpeg": lambda inputs, tmp: corrupt_case(inputs, tmp, "query", random_bytes()),
    "empty-gallery-jpeg": lambda inputs, tmp: corrupt_case(inputs, tmp, "gallery", b""),
    "truncated-gallery-png": lambda inputs, tmp: corrupt_case(
        inputs, tmp, "gallery", b"\x89PNG\r\n\x1a\n" + random_bytes(64)),
    "text-named-keras": lambda inputs, tmp: model_case(
        inputs, tmp, "notes.keras", b"just text\n", "not a Keras model file"),
    "random-bytes-named-h5": lambda inputs, tmp: model_case(
        inputs, tmp, "model.h5", random_bytes(), "not an HDF5 file"),
    "out-is-the-model": lambda inputs, tmp: Case(
        args(inputs, tmp, out=inputs["model"]), ["--out", inputs["model"]],
        keep=[inputs["model"]]),
    "out-is-the-manifest": lambda inputs, tmp: Case(
        args(inputs, tmp, out=inputs["data"] / "manifest.jsonl"),
        ["--out", inputs["data"] / "manifest.jsonl"], keep=[inputs["data"]]),
    "out-is-a-directory": lambda inputs, tmp: Case(
        args(inputs, tmp, out=tmp), ["--out", tmp]),
    # handled before; kept so that they stay handled
    "missing-model": lambda inputs, tmp: Case(
        args(inputs, tmp, model=tmp / "none.keras"), ["--model", tmp / "none.keras"]),
    "model-is-a-directory": lambda inputs, tmp: Case(
        args(inputs, tmp, model=tmp), ["--model", tmp]),
    "zip-without-a-model": lambda inputs, tmp: model_case(
        inputs, tmp, "other.keras", zip_without_model(tmp / "z.zip").read_bytes()),
    "unsupported-model-name": lambda inputs, tmp: model_case(
        inputs, tmp, "model.pb", random_bytes()),
    "missing-data": lambda inputs, tmp: Case(
        args(inputs, tmp, data=tmp / "nope"), ["--data", tmp / "nope"]),
    "data-without-manifest": lambda inputs, tmp: Case(
        args(inputs, tmp, data=tmp), ["--data", tmp]),
    "out-directory-missing": lambda inputs, tmp: Case(
        args(inputs, tmp, out=tmp / "no" / "d.h5"), ["--out", tmp / "no"]),
    "batch-size-zero": lambda inputs, tmp: Case(
        args(inputs, tmp, extract_batch_size="0"), ["--extract-batch-size"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, inputs, tmp_path, capfd):
    case = CASES[name](inputs, tmp_path)
    keep = [tmp_path / "dump.h5", inputs["model"], inputs["data"], *case.keep]
    before = digests(*keep)
    argv = [x for kv in case.argv.items() for x in kv] + ["--quiet"]
    outcome = run_in_process(main, argv, capfd)
    assert_one_line_error(outcome, PROG, *case.needles)
    assert digests(*keep) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_corrupt_image_in_a_fresh_interpreter(inputs, tmp_path):
    """As a user runs it, progress lines included: the error is the last
    stderr line and the only one that is not progress."""
    case = corrupt_case(inputs, tmp_path, "query", random_bytes(seed=2))
    before = digests(tmp_path)
    argv = [x for kv in case.argv.items() for x in kv]
    outcome = run_subprocess(["-m", "reid_tf.extract"], argv)
    errors = [line for line in outcome.err if "error" in line.lower()]
    assert_one_line_error(dataclasses.replace(outcome, err=errors), PROG, *case.needles)
    assert outcome.err[-1] == errors[0]
    assert "Traceback" not in "\n".join(outcome.err)
    assert digests(tmp_path) == before


def test_the_model_file_survives_when_named_as_output(inputs, tmp_path, capfd):
    """The refusal comes before any image is read: no progress line either."""
    before = Path(inputs["model"]).read_bytes()
    argv = ["--model", inputs["model"], "--data", inputs["data"], "--out", inputs["model"]]
    outcome = run_in_process(main, argv, capfd)
    assert_one_line_error(outcome, PROG, "--out", "also an input")
    assert Path(inputs["model"]).read_bytes() == before
