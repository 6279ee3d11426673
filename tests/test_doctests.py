"""Every docstring example in the packages runs, and none is marked to skip.

Each module's examples run in a fresh temporary working directory, so an
example that writes a file leaves nothing behind.
"""

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("reid_common", "data_prep", "reference", "reid_tf", "human_study", "benchmarks")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def module_files():
    """(dotted name, path) of every module of the packages."""
    out = []
    for pkg in PACKAGES:
        if not (ROOT / pkg).is_dir():
            continue
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts[-1] == "__main__":
                continue
            out.append((".".join(parts), path))
    return out


MODULES = [name for name, path in module_files()
           if ">>> " in path.read_text(encoding="utf-8")]


def test_no_example_is_marked_to_skip():
    marked = []
    for _, path in module_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "doctest: +SKIP" in line or "doctest:+SKIP" in line:
                marked.append(f"{path.relative_to(ROOT)}:{number}")
    assert marked == [], "examples marked to skip:\n" + "\n".join(marked)


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    tests = [t for t in finder.find(module, name) if t.examples]
    assert tests, f"{name}: its examples were not found"
    lines = []
    for test in tests:
        runner.run(test, out=lines.append)
    result = runner.summarize(verbose=False)
    if result.failed:
        pytest.fail(f"{name}: {result.failed} of {result.attempted} examples failed\n"
                    + "".join(lines)[:4000])
