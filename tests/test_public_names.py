"""Package roots: explicit ``__all__``, every name resolves, no name equals a submodule.

A package whose exported name equals one of its submodules' names gives the
function in a fresh process and the module once that submodule has been
imported (``from reference import local_distance`` did); these tests import
every submodule first, in a fresh process, and then resolve every name.
"""

import importlib
import math
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("reid_common", "data_prep", "reference", "reid_tf", "human_study")


def _submodules(package):
    path = REPO / package
    return {info.name for info in pkgutil.iter_modules([str(path)])}


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


@pytest.mark.parametrize("package", PACKAGES)
def test_no_exported_name_is_a_submodule_name(package):
    module = importlib.import_module(package)
    assert isinstance(module.__all__, (list, tuple)) and module.__all__
    assert len(set(module.__all__)) == len(module.__all__)
    assert sorted(set(module.__all__) & _submodules(package)) == []


_RESOLVE = """
import importlib, inspect, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for info in pkgutil.walk_packages(package.__path__, sys.argv[1] + "."):
    if not info.name.endswith("__main__"):
        importlib.import_module(info.name)
bad = []
for name in package.__all__:
    value = getattr(package, name)
    if inspect.ismodule(value):
        bad.append(name)
    exec(f"from {sys.argv[1]} import {name} as imported")
    if imported is not value:
        bad.append(name)
print(" ".join(bad))
"""


@pytest.mark.parametrize("package", PACKAGES)
def test_exported_names_resolve_after_every_submodule_is_imported(package):
    proc = subprocess.run([sys.executable, "-c", _RESOLVE, package], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == ""


def test_reference_local_distance_is_the_function_after_importing_trihard():
    code = (
        "import importlib, pkgutil, reference\n"
        "for info in pkgutil.iter_modules(reference.__path__):\n"
        "    importlib.import_module('reference.' + info.name)\n"
        "from reference import local_distance\n"
        "import numpy as np\n"
        "x = np.array([[0.0, 0.0], [1.0, 1.0]])\n"
        "print(callable(local_distance), type(local_distance).__name__,\n"
        "      repr(float(local_distance(x, x[::-1]))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[:2] == ["True", "function"]
    # part distances tanh(sqrt(2) / 2) on the diagonal, 0 off it; every path
    # from (0, 0) to (1, 1) holds both diagonal end cells and one zero cell
    value = float(proc.stdout.split()[2])
    assert value == pytest.approx(2.0 * math.tanh(math.sqrt(2.0) / 2.0), rel=1e-12)


def test_import_reid_tf_loads_neither_tensorflow_nor_keras():
    code = ("import sys, reid_tf\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]"
