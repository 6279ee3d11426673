"""provenance.json of a run, against values obtained independently."""

import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys

import h5py
import keras
import numba
import numpy as np
import pytest

from reid_tf.provenance import git_state, write_provenance
from tests.train.conftest import REPO, subprocess_env


def _git(*args):
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=True).stdout


def test_provenance_of_a_run(trained_run):
    record = json.loads((trained_run["dir"] / "provenance.json").read_text())
    import tensorflow as tf

    assert record["packages"] == {
        "alignedreid": importlib.metadata.version("alignedreid"),
        "keras": keras.__version__, "tensorflow": tf.__version__,
        "numpy": np.__version__, "numba": numba.__version__, "h5py": h5py.__version__,
        "python": platform.python_version(),
    }
    assert record["backend"] == "tensorflow"
    assert record["argv"] == [str(REPO / "train.py"), *trained_run["args"]]
    assert record["cwd"] == str(REPO)
    assert record["hostname"] == socket.gethostname()
    assert record["started"].endswith("Z")
    # the devices the training process saw (same environment, a fresh process)
    listed = subprocess.run(
        [sys.executable, "-c", "import json, tensorflow as tf; print(json.dumps("
         "[d.name for d in tf.config.list_logical_devices()]))"],
        env=subprocess_env(), capture_output=True, text=True, check=True)
    assert record["devices"] == json.loads(listed.stdout.strip().splitlines()[-1])
    # the checkout the code ran from
    assert record["git"]["commit"] == _git("rev-parse", "HEAD").strip()
    assert record["git"]["dirty"] == bool(_git("status", "--porcelain",
                                               "--untracked-files=no").strip())
    assert "earlier" not in record


def test_git_state_is_absent_outside_a_checkout_and_without_git(tmp_path, monkeypatch):
    assert git_state(tmp_path) is None
    assert git_state(REPO / "reid_tf") is None         # inside a checkout, not its top
    assert git_state(REPO)["commit"] == _git("rev-parse", "HEAD").strip()
    monkeypatch.setenv("PATH", str(tmp_path))             # no git on the PATH
    assert git_state(REPO) is None


def test_resumed_runs_keep_the_earlier_records(tmp_path):
    write_provenance(tmp_path, {"argv": ["first"]})
    write_provenance(tmp_path, {"argv": ["second"]})
    path = write_provenance(tmp_path, {"argv": ["third"]})
    record = json.loads(path.read_text())
    assert record["argv"] == ["third"]
    assert [r["argv"] for r in record["earlier"]] == [["first"], ["second"]]
    assert not [p for p in os.listdir(tmp_path) if p != "provenance.json"]


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_an_unreadable_earlier_file_is_replaced(tmp_path, content):
    (tmp_path / "provenance.json").write_text(content)
    record = json.loads(write_provenance(tmp_path, {"argv": ["x"]}).read_text())
    assert record == {"argv": ["x"]}
