"""The TensorFlow commands print none of TensorFlow's own start-up lines, and
``--quiet`` leaves their stderr empty.

Each command runs in a fresh subprocess with ``TF_CPP_MIN_LOG_LEVEL`` unset
(the tools' own default applies) on the tiny trained run of conftest.py.
"""

import json
import subprocess
import sys

from tests.train.conftest import REPO, prepared_dir, subprocess_env

NOISE = ("oneDNN", "cuda", "absl", "WARNING: All log messages", "I0000", "E0000")


def _run(args, timeout=300):
    env = subprocess_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL")  # the tools' own default applies
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _no_noise(stderr):
    found = [line for line in stderr.splitlines() if any(n in line for n in NOISE)]
    assert found == [], found


def test_train_quiet_run_has_an_empty_stderr(trained_run):
    proc = trained_run["proc"]
    assert "--quiet" in trained_run["args"]
    assert proc.stderr == ""
    summary = json.loads(proc.stdout)  # --json -: the summary instead of the table
    assert "synthetic" in summary["datasets"]


def test_train_config_json_loads_back(trained_run):
    from reid_tf.config import TrainConfig
    from reid_tf.train_cli import parse_config

    path = trained_run["dir"] / "config.json"
    assert parse_config(["--config", str(path)]) == TrainConfig.from_json(path)


def test_extract(trained_run, cache_dir, tmp_path):
    model = trained_run["dir"] / "model.keras"
    args = ["-m", "reid_tf.extract", "--model", str(model), "--data",
            str(prepared_dir(cache_dir)), "--out", str(tmp_path / "d.h5")]
    proc = _run(args + ["--json", str(tmp_path / "s.json")])
    assert proc.returncode == 0, proc.stderr
    _no_noise(proc.stderr)
    assert json.loads((tmp_path / "s.json").read_text())["num_query"] > 0
    assert proc.stdout.startswith(str(tmp_path / "d.h5"))
    proc = _run(args + ["--quiet"])
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_search_and_gradcheck(trained_run, cache_dir, tmp_path):
    model = trained_run["dir"] / "model.keras"
    dump = trained_run["dir"] / "features" / "synthetic.h5"
    query = next((prepared_dir(cache_dir) / "images").rglob("*.jpg"))
    proc = _run(["-m", "reid_tf.search_cli", "--model", str(model), "--gallery", str(dump),
                 "--query", str(query), "--top", "3", "--json", str(tmp_path / "h.json"),
                 "--quiet"])
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert len(json.loads((tmp_path / "h.json").read_text())[0]["results"]) == 3
    proc = _run(["-m", "reid_tf.search_cli", "--model", str(model), "--gallery", str(dump),
                 "--query", str(query), "--top", "3", "--json", str(tmp_path / "h2.json")])
    assert proc.returncode == 0, proc.stderr
    _no_noise(proc.stderr)
    assert "wrote" in proc.stderr
    proc = _run(["-m", "reid_tf.gradcheck", "--dump", str(dump), "--samples", "5", "--quiet"])
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_export(trained_run, tmp_path):
    model = trained_run["dir"] / "model.keras"
    proc = _run(["-m", "reid_tf.export_cli", str(model), "--format", "saved_model",
                 "--out", str(tmp_path / "sm"), "--json", "-"])
    assert proc.returncode == 0, proc.stderr
    _no_noise(proc.stderr)
    assert json.loads(proc.stdout)["format"] == "saved_model"
