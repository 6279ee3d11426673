"""Bad inputs of ``reid-gradcheck --dump``: exit status 2, one stderr line
naming the flag or the file, no traceback, and every file that existed
before (the dump above all) byte for byte the same."""

import dataclasses

import h5py
import numpy as np
import pytest

from reid_tf.gradcheck.cli import main
from tests.bad_input.tf_cases import (
    assert_one_line_error,
    digests,
    random_bytes,
    replace_file,
    run_in_process,
    run_subprocess,
    tiny_dump,
)

PROG = "reid-gradcheck"


@dataclasses.dataclass
class Case:
    argv: list
    needles: list


def bad_dump(tmp, name, content):
    path = replace_file(tmp / name, content)
    return Case(["--dump", path], [path])


def hdf5_without_dump(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("weights", data=np.zeros(3, np.float32))
    return path


CASES = {
    # the probe's faults (issue 14) and their relatives
    "json-is-the-dump": lambda tmp: Case(
        ["--dump", tiny_dump(tmp / "d.h5"), "--json", tmp / "d.h5"], ["--json", tmp / "d.h5"]),
    "json-is-the-dump-by-another-name": lambda tmp: Case(
        ["--dump", tiny_dump(tmp / "d.h5"), "--json", f"{tmp}/./d.h5"],
        ["--json", "--dump"]),
    "seed-negative": lambda tmp: Case(["--dump", tiny_dump(tmp / "d.h5"), "--seed", "-1"],
                                      ["--seed"]),
    "seed-beyond-32-bits-with-the-model-checks": lambda tmp: Case(
        ["--seed", str(2 ** 40), "--only", "model"], ["--seed"]),
    "samples-beyond-the-limit": lambda tmp: Case(
        ["--dump", tiny_dump(tmp / "d.h5"), "--samples", str(10 ** 6)], ["--samples"]),
    # handled before; kept so that they stay handled
    "text-file": lambda tmp: bad_dump(tmp, "notes.txt", b"some notes\n"),
    "random-bytes-named-h5": lambda tmp: bad_dump(tmp, "d.h5", random_bytes()),
    "empty-file": lambda tmp: bad_dump(tmp, "empty.h5", b""),
    "hdf5-but-not-a-dump": lambda tmp: Case(
        ["--dump", hdf5_without_dump(tmp / "w.h5")], [tmp / "w.h5"]),
    "missing-dump": lambda tmp: Case(["--dump", tmp / "none.h5"], [tmp / "none.h5"]),
    "dump-is-a-directory": lambda tmp: Case(["--dump", tmp], [tmp]),
    "samples-zero": lambda tmp: Case(["--dump", tiny_dump(tmp / "d.h5"), "--samples", "0"],
                                     ["--samples"]),
    "json-directory-missing": lambda tmp: Case(
        ["--dump", tiny_dump(tmp / "d.h5"), "--json", tmp / "no" / "r.json"], ["--json"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, capfd):
    case = CASES[name](tmp_path)
    before = digests(tmp_path)
    outcome = run_in_process(main, [*case.argv, "--quiet"], capfd)
    assert_one_line_error(outcome, PROG, *case.needles)
    assert digests(tmp_path) == before


def test_not_hdf5_in_a_fresh_interpreter(tmp_path):
    case = bad_dump(tmp_path, "notes.h5", b"some notes\n")
    outcome = run_subprocess(["-m", "reid_tf.gradcheck"], case.argv)
    assert_one_line_error(outcome, PROG, *case.needles, "not an HDF5 file")
