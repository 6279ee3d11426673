"""Bad inputs of ``train.py`` / ``reid-train``: exit status 2, one stderr line
naming the flag or the file, no traceback, and nothing that existed before
changed (a run directory a refused command points at included)."""

import dataclasses
import json
from pathlib import Path

import pytest

from reid_tf.config import TrainConfig
from reid_tf.train_cli import main
from tests.bad_input.tf_cases import (
    assert_one_line_error,
    copy_dataset,
    digests,
    image_of,
    random_bytes,
    read_only_tree,
    replace_file,
    run_in_process,
    run_subprocess,
    tensorflow_loaded,  # noqa: F401 (a fixture)
    tiny_dataset,
)

pytestmark = pytest.mark.usefixtures("tensorflow_loaded")

PROG = "train.py"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A prepared synthetic dataset shared by the cases (never written to)."""
    return tiny_dataset(tmp_path_factory.mktemp("train-data") / "tiny")


def tiny_args(data, run_dir, *extra):
    """The cheapest run that reaches training: 64 x 32 images, P=K=2, one step."""
    return ["--data", data, "--run-dir", run_dir, "--image-size", "64", "32",
            "--P", "2", "--K", "2", "--epochs", "1", "--steps-per-epoch", "1",
            "--extract-batch-size", "16", "--quiet", *extra]


@dataclasses.dataclass
class Case:
    argv: list
    needles: list
    keep: list = dataclasses.field(default_factory=list)  # must survive byte for byte
    absent: list = dataclasses.field(default_factory=list)  # must not exist afterwards
    read_only: Path = None  # a tree where writes fail with EROFS


def fake_run(path, state="running"):
    """A run directory with the files of an earlier run (contents made up)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"epochs": 99, "backbone": "tiny"}))
    (path / "status.json").write_text(json.dumps({"state": state}))
    (path / "train.log").write_text("2026-01-01T00:00:00Z started\n")
    return path


def dir_with(path, name):
    """A directory holding one file of someone else's."""
    path.mkdir(parents=True)
    (path / name).write_text("not a run\n")
    return path


def weights_case(tmp, data, name, content):
    weights = replace_file(tmp / name, content)
    run = tmp / "run"
    return Case(tiny_args(data, run, "--weights", weights), ["--weights", weights],
                keep=[weights, data], absent=[run])


def other_architecture_weights(path):
    """A valid weights file of a different network."""
    import keras

    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    other.save_weights(path)
    return path


def corrupt_case(tmp, data, split, content):
    copy = copy_dataset(data, tmp / "copy")
    bad = replace_file(image_of(copy, split, 1), content)
    run = tmp / "run"
    return Case(tiny_args(copy, run), ["unreadable or corrupt image: ", bad],
                keep=[copy], absent=[run])


def corrupt_into_empty_dir(tmp, data):
    """A run that cannot start leaves an empty --run-dir it did not create as it was."""
    case = corrupt_case(tmp, data, "query", random_bytes(seed=3))
    run = tmp / "run"
    run.mkdir()
    return dataclasses.replace(case, keep=[*case.keep, run], absent=[])


def read_only_case(tmp, data, target, *extra, flag="--run-dir"):
    ro = tmp / "ro"
    (ro / "existing").mkdir(parents=True)
    (ro / "notes.txt").write_text("kept\n")
    run = ro / target
    return Case(tiny_args(data, run, *extra), [flag, run if flag == "--run-dir" else ro],
                keep=[ro, data], read_only=ro)


CASES = {
    # the probe's faults (issue 14)
    "weights-random-bytes": lambda tmp, data: weights_case(
        tmp, data, "random.weights.h5", random_bytes()),
    "weights-random-bytes-existing-run": lambda tmp, data: dataclasses.replace(
        weights_case(tmp, data, "random.h5", random_bytes()),
        argv=tiny_args(data, fake_run(tmp / "run"), "--weights", tmp / "random.h5"),
        keep=[tmp / "run", tmp / "random.h5"], absent=[]),
    "weights-text-named-keras": lambda tmp, data: weights_case(
        tmp, data, "notes.keras", b"just text\n"),
    "weights-is-a-directory": lambda tmp, data: Case(
        tiny_args(data, tmp / "run", "--weights", tmp), ["--weights", tmp, "directory"],
        keep=[data], absent=[tmp / "run"]),
    "weights-unsupported-name": lambda tmp, data: weights_case(
        tmp, data, "weights.bin", random_bytes()),
    "weights-other-architecture": lambda tmp, data: Case(
        tiny_args(data, tmp / "run", "--weights",
                  other_architecture_weights(tmp / "dense.weights.h5")),
        ["--weights", tmp / "dense.weights.h5"],
        keep=[tmp / "dense.weights.h5", data], absent=[tmp / "run"]),
    "run-dir-read-only-new": lambda tmp, data: read_only_case(tmp, data, "new-run"),
    "run-dir-read-only-existing": lambda tmp, data: read_only_case(tmp, data, "existing"),
    "cache-dir-read-only": lambda tmp, data: dataclasses.replace(
        read_only_case(tmp, data, "existing", flag="--cache-dir"),
        argv=["--cache-dir", tmp / "ro" / "existing", "--run-dir", tmp / "run",
              "--image-size", "64", "32", "--synthetic-identities", "8",
              "--synthetic-images", "4", "--quiet"],
        absent=[tmp / "run"]),
    "corrupt-query-jpeg": lambda tmp, data: corrupt_case(tmp, data, "query", random_bytes()),
    "empty-gallery-jpeg": lambda tmp, data: corrupt_case(tmp, data, "gallery", b""),
    "corrupt-jpeg-existing-empty-run-dir": corrupt_into_empty_dir,
    "lr-nan": lambda tmp, data: Case(tiny_args(data, tmp / "run", "--lr", "nan"),
                                     ["--lr: ", "nan"], absent=[tmp / "run"]),
    "seed-negative": lambda tmp, data: Case(tiny_args(data, tmp / "run", "--seed", "-1"),
                                            ["--seed"], absent=[tmp / "run"]),
    "seed-beyond-32-bits": lambda tmp, data: Case(
        tiny_args(data, tmp / "run", "--seed", str(2 ** 32)), ["--seed"],
        absent=[tmp / "run"]),
    # handled before; kept so that they stay handled
    "missing-data": lambda tmp, data: Case(tiny_args(tmp / "nope", tmp / "run"),
                                           ["--data", tmp / "nope"], absent=[tmp / "run"]),
    "image-size-too-small": lambda tmp, data: Case(
        tiny_args(data, tmp / "run", "--image-size", "16", "16"), ["--image-size"],
        absent=[tmp / "run"]),
    "unknown-backbone": lambda tmp, data: Case(
        tiny_args(data, tmp / "run", "--backbone", "vgg"), ["--backbone"],
        absent=[tmp / "run"]),
    "missing-weights": lambda tmp, data: Case(
        tiny_args(data, tmp / "run", "--weights", tmp / "none.h5"),
        ["--weights", tmp / "none.h5"], absent=[tmp / "run"]),
    "P-beyond-identities": lambda tmp, data: Case(
        tiny_args(data, tmp / "run", "--P", "500"), ["--P"], keep=[data],
        absent=[tmp / "run"]),
    "run-dir-is-a-file": lambda tmp, data: Case(
        tiny_args(data, replace_file(tmp / "run", b"a file\n")), ["--run-dir", tmp / "run"],
        keep=[tmp / "run"]),
    "run-dir-holds-a-finished-run": lambda tmp, data: Case(
        tiny_args(data, fake_run(tmp / "run", "finished")), ["--run-dir", tmp / "run"],
        keep=[tmp / "run"]),
    "run-dir-holds-other-files": lambda tmp, data: Case(
        tiny_args(data, dir_with(tmp / "run", "mine.txt")), ["--run-dir", tmp / "run"],
        keep=[tmp / "run"]),
    "run-dir-holds-other-settings": lambda tmp, data: Case(
        tiny_args(data, fake_run(tmp / "run")), ["--run-dir", tmp / "run"],
        keep=[tmp / "run"]),
    "resume-without-run": lambda tmp, data: Case(
        tiny_args(data, tmp / "run", "--resume"), ["--resume"], absent=[tmp / "run"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, dataset, tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default runs/ would land here
    monkeypatch.delenv("TF_CONFIG", raising=False)
    case = CASES[name](tmp_path, dataset)
    before = digests(*case.keep)
    if case.read_only is not None:
        with read_only_tree(case.read_only):
            outcome = run_in_process(main, case.argv, capfd)
    else:
        outcome = run_in_process(main, case.argv, capfd)
    assert_one_line_error(outcome, PROG, *case.needles)
    assert digests(*case.keep) == before
    for path in case.absent:
        assert not Path(path).exists(), path
    assert not (tmp_path / "runs").exists()


def test_bad_weights_file_in_a_fresh_interpreter(tmp_path):
    """As a user runs it: the only stderr line is the error (no TensorFlow
    log lines), and nothing is created."""
    weights = replace_file(tmp_path / "random.weights.h5", random_bytes())
    outcome = run_subprocess("train.py", ["--weights", weights, "--run-dir", tmp_path / "run"])
    assert_one_line_error(outcome, PROG, "--weights", weights, "not an HDF5 file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["random.weights.h5"]


def test_corrupt_image_in_a_fresh_interpreter(dataset, tmp_path):
    case = corrupt_case(tmp_path, dataset, "query", random_bytes(seed=1))
    before = digests(*case.keep)
    outcome = run_subprocess("train.py", case.argv)
    assert_one_line_error(outcome, PROG, *case.needles)
    assert digests(*case.keep) == before and not (tmp_path / "run").exists()


def _float_settings():
    """(field, flag) of every float setting of TrainConfig (the list of rates included)."""
    return [(f.name, f.metadata["flag"]) for f in dataclasses.fields(TrainConfig)
            if f.type is float or f.name == "lr_values"]


FLOAT_SETTINGS = _float_settings()


def test_the_float_settings_are_all_covered():
    names = {name for name, _ in FLOAT_SETTINGS}
    assert names == {"global_margin", "local_margin", "global_weight", "local_weight",
                     "id_weight", "label_smoothing", "lr", "lr_values", "mutual_kl_weight",
                     "mutual_metric_weight", "rerank_lambda"}


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1"])
@pytest.mark.parametrize("name, flag", FLOAT_SETTINGS)
def test_non_finite_or_negative_float_blames_its_own_flag(name, flag, value, capfd, tmp_path,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    # FLAG=VALUE: argparse takes "-inf" after a space for an option
    argv = [f"{flag}={value}"]
    if name == "lr_values":
        argv = ["--lr-milestones", *argv]  # one value, no milestone
    outcome = run_in_process(main, argv, capfd)
    line = assert_one_line_error(outcome, PROG, f"{PROG}: error: {flag}: ")
    assert value in line
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv, flag", [
    (["--lr", "0"], "--lr"),
    (["--lr-milestones", "--lr-values", "0"], "--lr-values"),
])
def test_a_zero_rate_is_refused(argv, flag, capfd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outcome = run_in_process(main, argv, capfd)
    assert_one_line_error(outcome, PROG, f"{PROG}: error: {flag}: ")


@pytest.mark.parametrize("argv, flag, limit", [
    (["--k1", "201"], "--k1", "200"),
    (["--k2", "51"], "--k2", "50"),
])
def test_rerank_settings_beyond_the_reference_limits_are_refused(argv, flag, limit, capfd,
                                                                 tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outcome = run_in_process(main, argv, capfd)
    line = assert_one_line_error(outcome, PROG, f"{PROG}: error: {flag}: ")
    assert limit in line
    assert not any(tmp_path.iterdir())
