"""The packaging split: a core install without TensorFlow, Keras, JAX or
PyTorch runs evaluation, dataset preparation and the human study, and the
commands that need a backend say which extra to install.

A core-only install is simulated by ``python -S`` (no site-packages) with a
folder of links to the site-packages entries other than the frameworks' on
``PYTHONPATH``: for that process they are not installed.
"""

import ast
import configparser
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("tensorflow", "keras", "jax", "torch")
# What a core-only install lacks: the frameworks and what only the extras bring
# (site-packages entries whose name starts so, distribution metadata included).
NOT_IN_CORE = ("tensorflow", "tf_keras", "keras", "jax", "torch", "tf2onnx", "onnx",
               "sklearn", "scikit_learn", "selenium")
CORE_PACKAGES = ("reid_common", "data_prep", "reference", "human_study")
FIRST_PARTY = set(CORE_PACKAGES) | {"reid_tf", "benchmarks", "tests"}
BACKEND_COMMANDS = ("reid-train", "reid-extract", "reid-search", "reid-export",
                    "reid-gradcheck")

def _setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def _requirement_names(text):
    names = []
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.append(re.match(r"[A-Za-z0-9_.-]+", line).group(0).lower())
    return names


def _install_requires():
    return _requirement_names(_setup_cfg()["options"]["install_requires"])


def _extras():
    section = _setup_cfg()["options.extras_require"]
    return {name: _requirement_names(section[name]) for name in section}


def _console_scripts():
    text = _setup_cfg()["options.entry_points"]["console_scripts"]
    scripts = {}
    for line in text.strip().splitlines():
        name, target = (part.strip() for part in line.split("="))
        scripts[name] = target
    return scripts


def _normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


# ---------------------------------------------------------------- setup.cfg


def test_core_install_has_no_framework():
    requires = _install_requires()
    assert requires, "install_requires is empty"
    for name in requires:
        assert name.split("[")[0] not in FRAMEWORKS, name


def test_each_backend_extra_brings_keras_and_its_framework():
    extras = _extras()
    expected = {"tf": "tensorflow", "tf-cuda": "tensorflow", "jax": "jax",
                "jax-cuda": "jax", "torch": "torch"}
    for extra, framework in expected.items():
        assert extra in extras, f"extra {extra!r} missing"
        assert "keras" in extras[extra], extra
        assert framework in extras[extra], extra
    cuda = _setup_cfg()["options.extras_require"]
    assert "tensorflow[and-cuda]" in cuda["tf-cuda"]
    assert re.search(r"jax\[cuda\d+\]", cuda["jax-cuda"])


def test_test_extra_installs_what_the_suite_imports():
    extras = _extras()
    for name in ("pytest", "hypothesis", "selenium", "tensorflow", "keras", "jax",
                 "torch", "torchvision", "tf2onnx", "onnx", "onnxruntime"):
        assert name in extras["test"], name


def _third_party_imports(package):
    """Top-level modules imported anywhere in ``package`` (lazy imports too)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                    found.setdefault(top, path.relative_to(ROOT).as_posix())
    return found


@pytest.mark.parametrize("package", CORE_PACKAGES)
def test_every_import_of_the_core_is_an_install_requirement(package):
    distributions = importlib.metadata.packages_distributions()
    requires = {_normalise(name) for name in _install_requires()}
    imports = _third_party_imports(package)
    if package != "reid_common":
        assert imports, f"{package}: no third-party import found"
    for module, where in imports.items():
        provided_by = {_normalise(d) for d in distributions.get(module, [])}
        assert provided_by, f"{where}: imports {module}, which no installed distribution provides"
        assert provided_by & requires, (
            f"{where}: imports {module} (from {sorted(provided_by)}), "
            f"not in install_requires {sorted(requires)}")


def test_every_install_requirement_is_imported():
    distributions = importlib.metadata.packages_distributions()
    imported = set()
    for package in CORE_PACKAGES + ("reid_tf",):
        for module in _third_party_imports(package):
            imported |= {_normalise(d) for d in distributions.get(module, [])}
    for name in _install_requires():
        assert _normalise(name) in imported, f"install_requires: {name} is imported nowhere"


def test_console_scripts_needing_a_backend_go_through_the_launcher():
    scripts = _console_scripts()
    from reid_tf.launch import COMMANDS

    assert set(BACKEND_COMMANDS) == set(COMMANDS)
    for name in BACKEND_COMMANDS:
        assert scripts[name] == f"reid_tf.launch:{name.split('-')[1]}", name
    for name in ("reid-evaluate", "reid-prep", "reid-human"):
        assert not scripts[name].startswith("reid_tf"), name


# ----------------------------------------------------- a core-only process


def _in_core(entry):
    name = re.split(r"[-.]", entry.name, maxsplit=1)[0].lower()
    return not name.startswith(NOT_IN_CORE) and entry.suffix != ".pth"


@pytest.fixture(scope="module")
def core_env(tmp_path_factory):
    site = tmp_path_factory.mktemp("core_only_site")
    folders = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    for folder in sorted(folders):
        for entry in folder.iterdir():
            if _in_core(entry) and not (site / entry.name).exists():
                (site / entry.name).symlink_to(entry)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(site)])
    env.pop("KERAS_BACKEND", None)
    env["KERAS_HOME"] = str(tmp_path_factory.mktemp("keras_home"))
    return env


def _run(env, args, cwd, extra_env=None):
    run_env = dict(env, **(extra_env or {}))
    return subprocess.run([sys.executable, "-S", *args], cwd=cwd, env=run_env,
                          capture_output=True, text=True, timeout=300)


def _script(name):
    module, func = _console_scripts()[name].split(":")
    return ["-c", f"import sys; from {module} import {func}; sys.exit({func}())"]


def test_the_core_process_lacks_the_frameworks(core_env, tmp_path):
    probe = _run(core_env, ["-c", "import importlib.util as u; print([u.find_spec(m) for m in "
                            f"{FRAMEWORKS + ('tf2onnx', 'sklearn')!r}])"], tmp_path)
    assert probe.stdout.strip() == str([None] * 6), probe.stderr
    probe = _run(core_env, ["-c", "import reference, data_prep, human_study.web"], tmp_path)
    assert probe.returncode == 0, probe.stderr


@pytest.mark.parametrize("backend,extra", [(None, "tf"), ("jax", "jax"), ("torch", "torch")])
@pytest.mark.parametrize("command", BACKEND_COMMANDS)
def test_backend_command_names_the_extra(core_env, tmp_path, command, backend, extra):
    if command == "reid-export" and backend is not None:
        extra = None  # export runs on TensorFlow only
    result = _run(core_env, _script(command) + ["x"], tmp_path,
                  {"KERAS_BACKEND": backend} if backend else None)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{command}: error: ")
    if extra:
        assert f"alignedreid[{extra}]" in lines[0]
    else:
        assert "use tensorflow" in lines[0]
    assert "Traceback" not in result.stderr


def test_train_py_names_the_extra(core_env, tmp_path):
    result = _run(core_env, [str(ROOT / "train.py")], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "alignedreid[tf]" in lines[0], result.stderr


def test_keras_json_chooses_the_backend(core_env, tmp_path):
    home = tmp_path / "kh"
    home.mkdir()
    (home / "keras.json").write_text(json.dumps({"backend": "torch"}))
    result = _run(core_env, _script("reid-train"), tmp_path, {"KERAS_HOME": str(home)})
    assert result.returncode == 2 and "alignedreid[torch]" in result.stderr


@pytest.mark.parametrize("command", BACKEND_COMMANDS)
def test_backend_command_help_works_without_backend(core_env, tmp_path, command):
    result = _run(core_env, _script(command) + ["--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")


def test_evaluate_runs_core_only(core_env, tmp_path):
    from reference import write_dump

    rng = np.random.default_rng(0)
    pids = np.repeat(np.arange(6), 3)
    centres = rng.normal(size=(6, 16))
    feats = centres[pids] + 0.1 * rng.normal(size=(len(pids), 16))
    query = {"global": feats[::3], "pid": pids[::3], "camid": np.zeros(6, int)}
    gallery = {"global": np.delete(feats, np.s_[::3], axis=0),
               "pid": np.delete(pids, np.s_[::3]), "camid": np.ones(12, int)}
    dump = write_dump(tmp_path / "d.h5", query, gallery)
    out = tmp_path / "scores.json"
    for args in ([str(ROOT / "evaluate.py"), dump, "--json", str(out)],
                 _script("reid-evaluate") + [dump]):
        result = _run(core_env, args, tmp_path)
        assert result.returncode == 0, result.stderr
    # well separated identities: every query's nearest gallery item matches
    assert "100.0" in result.stdout
    assert json.loads(out.read_text())


def test_prep_and_human_study_run_core_only(core_env, tmp_path):
    result = _run(core_env, _script("reid-prep") + [
        "synthetic", str(tmp_path / "syn"), "--num-identities", "6", "--num-cameras", "2",
        "--images-per-identity", "4", "--distractor-fraction", "0", "--junk-fraction", "0",
        "--quiet"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "syn").rglob("*.jpg"))) == 24
    result = _run(core_env, _script("reid-human") + [
        "demo", "--synthetic", "--no-serve", "--dir", str(tmp_path / "study"),
        "--queries", "3", "--runs", str(tmp_path / "no_runs"), "--quiet"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "study").glob("*.sqlite"))
