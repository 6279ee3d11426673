"""The layer rules of the project, checked by parsing every module's imports.

Imports point down the layers (``reid_common`` < ``data_prep`` < ``reference``
< ``reid_tf`` < ``human_study`` < entry points and benchmarks), lazy imports
inside functions included; nothing imports a private name of another package;
the bottom module uses the standard library alone; and no module outside the
Numba kernels grows past the size limit. ``test_public_names.py`` checks the
package roots' exports.
"""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Rank of each first-party package: a module may import only packages of a lower
# or equal rank (equal: its own package).
LAYERS = {"reid_common": 0, "data_prep": 1, "reference": 2, "reid_tf": 3, "human_study": 4}
TOP = 5  # train.py, evaluate.py, benchmarks/
PACKAGES = tuple(LAYERS)
# Third-party packages a layer may not import, whatever it imports otherwise.
FORBIDDEN = {
    "reid_common": None,  # None: the standard library only
    "data_prep": ("tensorflow", "keras", "jax", "torch"),
    "reference": ("tensorflow", "keras", "jax", "torch"),
    # the study scores with reference alone: no model code, no deep-learning framework
    "human_study": ("reid_tf", "tensorflow", "keras", "jax", "torch"),
}
MAX_LINES = 600


def source_files():
    """(path, owner) for every first-party module; owner is its package or "top"."""
    out = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")) if (ROOT / pkg).is_dir() else ():
            out.append((path, pkg))
    for path in sorted((ROOT / "benchmarks").rglob("*.py")):
        out.append((path, "top"))
    for name in ("train.py", "evaluate.py"):
        if (ROOT / name).is_file():
            out.append((ROOT / name, "top"))
    return out


def imported_names(tree, module_parts):
    """Every import of ``tree`` as (line, absolute dotted module, imported name or None).

    Relative imports are resolved against ``module_parts`` (the importing
    module's dotted name split into parts, its package being all but the last
    part unless the file is an ``__init__``).
    """
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append((node.lineno, alias.name, None))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module_parts[: len(module_parts) - node.level]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                out.append((node.lineno, module, alias.name))
    return out


def violations(source, owner, module_parts, where="<source>"):
    """The layer-rule violations of one module's source text, as messages."""
    tree = ast.parse(source)
    rank = LAYERS.get(owner, TOP)
    stdlib = sys.stdlib_module_names
    out = []
    for line, module, name in imported_names(tree, module_parts):
        top = module.split(".")[0]
        at = f"{where}:{line}: {module}" + (f".{name}" if name else "")
        banned = FORBIDDEN.get(owner) or ()
        if top in LAYERS:
            if top in banned:
                out.append(f"{at}: {owner} may not import {top}")
            elif LAYERS[top] > rank:
                out.append(f"{at}: imports up ({owner} -> {top})")
            if top != owner:
                parts = module.split(".")[1:] + ([name] if name else [])
                if any(p.startswith("_") and not p.startswith("__") for p in parts):
                    out.append(f"{at}: private name of another package")
        elif owner in FORBIDDEN:
            if FORBIDDEN[owner] is None and top not in stdlib and top != "":
                out.append(f"{at}: the bottom module uses the standard library only")
            elif top in banned:
                out.append(f"{at}: {owner} may not import {top}")
    return out


def module_parts_of(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1] + ["__init__"]
    return parts


# ------------------------------------------------------------- the checker itself
@pytest.mark.parametrize(
    "owner, source, expect",
    [
        ("reference", "def f():\n    import tensorflow as tf\n", "may not import tensorflow"),
        ("reference", "def f():\n    from reid_tf import check\n", "imports up"),
        ("data_prep", "from reference import evaluate\n", "imports up"),
        ("reid_tf", "from reference._validate import as_float_array\n", "private name"),
        ("reid_tf", "from reference.dump import _check\n", "private name"),
        ("top", "import data_prep._io\n", "private name"),
        ("reid_common", "import numpy\n", "standard library only"),
        ("data_prep", "from . import _io\n", None),
        ("reid_tf", "from reference import evaluate\nimport keras\n", None),
        ("human_study", "def f():\n    from reid_tf import extract\n", "may not import reid_tf"),
        ("human_study", "import tensorflow\n", "may not import tensorflow"),
        ("human_study", "from keras import ops\n", "may not import keras"),
        ("human_study", "from reference import score_dump\nimport flask\n", None),
    ],
)
def test_checker_finds_each_kind_of_violation(owner, source, expect):
    parts = [owner if owner != "top" else "benchmarks", "mod"]
    found = violations(source, owner, parts)
    if expect is None:
        assert found == []
    else:
        assert len(found) == 1 and expect in found[0], found


def test_relative_imports_resolve_to_the_package():
    tree = ast.parse("from ..dump import read_dump\nfrom . import _x\n")
    got = imported_names(tree, ["reference", "figures", "cmc"])
    assert got == [(1, "reference.dump", "read_dump"), (2, "reference.figures", "_x")]


# ----------------------------------------------------------------- the repository
def test_every_module_keeps_the_layer_rules():
    found = []
    files = source_files()
    assert len(files) > 40  # the walk found the packages
    for path, owner in files:
        text = path.read_text(encoding="utf-8")
        found += violations(text, owner, module_parts_of(path), str(path.relative_to(ROOT)))
    assert found == [], "\n".join(found)


def test_no_module_outside_the_kernels_is_over_the_size_limit():
    big = []
    for path, _ in source_files():
        if "kernel" in path.name:
            continue
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > MAX_LINES:
            big.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert big == [], "\n".join(big)
