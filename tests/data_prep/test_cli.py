"""reid-prep / python -m data_prep: exit codes, one-line errors, --json, --help."""

import json
import os
import subprocess
import sys

import pytest

from data_prep import cli
from data_prep.manifest import load_manifest

from . import fakes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(capsys, argv):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err, *needles):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert str(n) in lines[0], lines[0]


def test_registry_names():
    assert set(cli.REGISTRY) == {"market1501", "duke", "msmt17", "cuhk03", "cuhk-sysu",
                                 "combine", "synthetic"}
    for name in ("market1501", "duke", "msmt17", "cuhk03", "cuhk-sysu", "combine"):
        mod = cli.get_converter(name)
        assert callable(mod.add_arguments) and callable(mod.run)


def test_market_json_output(tmp_path, capsys):
    fakes.make_market(tmp_path / "src")
    code, out, err = _run(capsys, ["market1501", str(tmp_path / "src"), str(tmp_path / "dst"),
                                   "--json", "-", "--quiet"])
    assert code == 0, err
    result = json.loads(out)
    m = load_manifest(tmp_path / "dst")
    assert result["summary"] == m.info["summary"]
    assert result["summary"]["train"]["images"] == len(m.split("train"))
    assert result["dataset"] == "market1501"
    # human-readable output names the manifest and the counts
    code, out, _ = _run(capsys, ["market1501", str(tmp_path / "src"),
                                 str(tmp_path / "dst")])
    assert code == 0 and "manifest.jsonl" in out and "already in place: " in out


def test_python_dash_m_entry_point(tmp_path):
    fakes.make_msmt17(tmp_path / "ms")
    proc = subprocess.run([sys.executable, "-m", "data_prep", "msmt17", str(tmp_path / "ms"),
                           str(tmp_path / "out"), "--json", "-"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["dataset"] == "msmt17"
    assert "tensorflow" not in proc.stderr.lower()
    proc = subprocess.run([sys.executable, "-m", "data_prep", "msmt17", str(tmp_path / "nope"),
                           str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    _one_line_error(proc.stderr, tmp_path / "nope")


def test_data_prep_imports_neither_tf_nor_reference(tmp_path):
    code = ("import sys, data_prep.cli, data_prep.manifest, data_prep.combine, data_prep.market1501, "
            "data_prep.msmt17, data_prep.cuhk03, data_prep.cuhk_sysu; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'reference')]; "
            "print(bad)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["market1501", "duke", "msmt17", "cuhk03", "cuhk-sysu", "combine"])
def test_help_explains_every_flag(capsys, name):
    code, out, _ = _run(capsys, [name, "--help"])
    assert code == 0
    for flag in ("--json", "--quiet"):
        assert flag in out
    assert "SRC" in out or "PREPARED" in out


def test_top_level_help_lists_commands(capsys):
    code, out, _ = _run(capsys, ["--help"])
    assert code == 0
    for name in cli.REGISTRY:
        assert name in out


def _make_bad(tmp_path, kind):
    """Build a broken input for one converter; returns (argv, words in the error)."""
    if kind == "missing_src":
        return ["market1501", str(tmp_path / "absent"), str(tmp_path / "o")], [tmp_path / "absent"]
    if kind == "market_layout":
        (tmp_path / "m" / "query").mkdir(parents=True)
        return ["market1501", str(tmp_path / "m"), str(tmp_path / "o")], ["bounding_box_train"]
    if kind == "market_bad_name":
        fakes.make_market(tmp_path / "m")
        (tmp_path / "m" / "query" / "hello.jpg").write_bytes(b"x")
        return ["market1501", str(tmp_path / "m"), str(tmp_path / "o")], ["hello.jpg"]
    if kind == "duke_names_on_market":
        fakes.make_market(tmp_path / "m", "duke")
        return ["market1501", str(tmp_path / "m"), str(tmp_path / "o")], ["market1501 naming"]
    if kind == "msmt_list_line":
        fakes.make_msmt17(tmp_path / "ms")
        with open(tmp_path / "ms" / "list_query.txt", "a") as fh:
            fh.write("just-one-field\n")
        return ["msmt17", str(tmp_path / "ms"), str(tmp_path / "o")], ["list_query.txt:4"]
    if kind == "msmt_missing_image":
        fakes.make_msmt17(tmp_path / "ms")
        with open(tmp_path / "ms" / "list_gallery.txt", "a") as fh:
            fh.write("0009/0009_001_01_0303morning_0001_0.jpg 9\n")
        return ["msmt17", str(tmp_path / "ms"), str(tmp_path / "o")], ["list_gallery.txt:8", "not found"]
    if kind == "msmt_missing_list":
        fakes.make_msmt17(tmp_path / "ms")
        os.remove(tmp_path / "ms" / "list_val.txt")
        return ["msmt17", str(tmp_path / "ms"), str(tmp_path / "o")], ["list_val.txt"]
    if kind == "cuhk03_not_hdf5":
        (tmp_path / "c").mkdir()
        (tmp_path / "c" / "cuhk-03.mat").write_bytes(b"MATLAB 5.0 MAT-file, not HDF5")
        return ["cuhk03", str(tmp_path / "c"), str(tmp_path / "o")], ["cuhk-03.mat", "HDF5"]
    if kind == "cuhk03_no_file":
        (tmp_path / "c").mkdir()
        return ["cuhk03", str(tmp_path / "c"), str(tmp_path / "o")], ["cuhk-03.mat not found"]
    if kind == "cuhk03_bad_split":
        return ["cuhk03", str(tmp_path), str(tmp_path / "o"), "--split", "random"], ["--split"]
    if kind == "cuhk03_bad_int":
        return ["cuhk03", str(tmp_path), str(tmp_path / "o"), "--split-index", "x"], ["--split-index"]
    if kind == "sysu_missing_train":
        fakes.make_cuhk_sysu(tmp_path / "s")
        os.remove(tmp_path / "s" / "annotation" / "test" / "train_test" / "Train.mat")
        return ["cuhk-sysu", str(tmp_path / "s"), str(tmp_path / "o")], ["Train.mat"]
    if kind == "sysu_bad_size":
        return ["cuhk-sysu", str(tmp_path), str(tmp_path / "o"), "--gallery-size", "77"], ["--gallery-size"]
    if kind == "sysu_corrupt_mat":
        fakes.make_cuhk_sysu(tmp_path / "s")
        (tmp_path / "s" / "annotation" / "Images.mat").write_bytes(b"garbage")
        return ["cuhk-sysu", str(tmp_path / "s"), str(tmp_path / "o")], ["Images.mat"]
    if kind == "sysu_truncated_scene":
        fakes.make_cuhk_sysu(tmp_path / "s")
        scene = tmp_path / "s" / "Image" / "SSM" / "s4.jpg"
        scene.write_bytes(scene.read_bytes()[:300])
        return ["cuhk-sysu", str(tmp_path / "s"), str(tmp_path / "o")], ["s4.jpg"]
    if kind == "combine_not_prepared":
        (tmp_path / "p").mkdir()
        return ["combine", str(tmp_path / "o"), str(tmp_path / "p")], ["dataset.json"]
    if kind == "combine_bad_manifest":
        fakes.make_market(tmp_path / "m")
        cli.main(["market1501", str(tmp_path / "m"), str(tmp_path / "p"), "--quiet", "--json", "-"])
        lines = (tmp_path / "p" / "manifest.jsonl").read_text().splitlines()
        lines[2] = lines[2].replace('"camid": ', '"camid": -')
        (tmp_path / "p" / "manifest.jsonl").write_text("\n".join(lines) + "\n")
        return ["combine", str(tmp_path / "o"), str(tmp_path / "p")], ["manifest.jsonl:3", "camid"]
    if kind == "combine_twice":
        fakes.make_market(tmp_path / "m")
        cli.main(["market1501", str(tmp_path / "m"), str(tmp_path / "p"), "--quiet", "--json", "-"])
        return ["combine", str(tmp_path / "o"), str(tmp_path / "p"), str(tmp_path / "p")], ["also comes from"]
    if kind == "combine_no_args":
        return ["combine", str(tmp_path / "o")], ["PREPARED"]
    if kind == "unknown_command":
        return ["viper", "a", "b"], ["viper"]
    if kind == "no_command":
        return [], ["NAME"]
    if kind == "dst_is_file":
        fakes.make_market(tmp_path / "m")
        (tmp_path / "f").write_text("x")
        return ["market1501", str(tmp_path / "m"), str(tmp_path / "f")], [tmp_path / "f"]
    if kind == "bad_mode":
        return ["market1501", "a", "b", "--mode", "symlink"], ["--mode"]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", [
    "missing_src", "market_layout", "market_bad_name", "duke_names_on_market", "msmt_list_line",
    "msmt_missing_image", "msmt_missing_list", "cuhk03_not_hdf5", "cuhk03_no_file",
    "cuhk03_bad_split", "cuhk03_bad_int", "sysu_missing_train", "sysu_bad_size",
    "sysu_corrupt_mat", "sysu_truncated_scene", "combine_not_prepared", "combine_bad_manifest", "combine_twice",
    "combine_no_args", "unknown_command", "no_command", "dst_is_file", "bad_mode",
])
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, kind):
    argv, words = _make_bad(tmp_path, kind)
    capsys.readouterr()
    code, _, err = _run(capsys, argv)
    assert code == 2
    _one_line_error(err, *words)


def test_cuhk03_new_protocol_missing_config(tmp_path, capsys):
    root = tmp_path / "c"
    fakes.make_cuhk03(root)
    os.remove(root / "cuhk03_new_protocol_config_detected.mat")
    code, _, err = _run(capsys, ["cuhk03", str(root), str(tmp_path / "o"), "--split", "new",
                                 "--images", "detected"])
    assert code == 2
    _one_line_error(err, "--new-protocol", "cuhk03_new_protocol_config_detected.mat")
    code, _, err = _run(capsys, ["cuhk03", str(root), str(tmp_path / "o"), "--split", "classic",
                                 "--split-index", "20"])
    assert code == 2
    _one_line_error(err, "--split-index", "20")
    code, _, err = _run(capsys, ["cuhk03", str(root), str(tmp_path / "o"), "--test-identities",
                                 "500"])
    assert code == 2
    _one_line_error(err, "--test-identities")
    code, out, err = _run(capsys, ["cuhk03", str(root), str(tmp_path / "o"), "--split", "new",
                                   "--images", "labeled", "--json", "-", "--quiet"])
    assert code == 0, err
    assert json.loads(out)["summary"]["train"]["identities"] == 6


class _Stream:
    def __init__(self, tty):
        self.tty, self.text = tty, ""

    def isatty(self):
        return self.tty

    def write(self, s):
        self.text += s

    def flush(self):
        pass


def test_progress_printer():
    from reid_common import Progress

    tty = _Stream(True)
    with Progress(4, "copy", stream=tty) as bar:
        for _ in range(4):
            bar.update()
    assert tty.text.startswith("\r") and "copy: 4/4 (100%" in tty.text and tty.text.endswith("\n")
    pipe = _Stream(False)
    with Progress(4, "copy", stream=pipe) as bar:
        bar.update(4)
    assert pipe.text == ""  # quick work in a log: silent
    quiet = _Stream(True)
    with Progress(4, "copy", stream=quiet, enabled=False) as bar:
        bar.update(4)
    assert quiet.text == ""
