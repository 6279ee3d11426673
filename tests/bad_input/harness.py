"""Shared checks of the bad-input suite: run a tool in-process on a prepared
case and check that it failed cleanly and destroyed nothing.

A clean failure: exit status 2, exactly one line on stderr that names the
file or argument at fault, no traceback, no RuntimeWarning, and every file
that existed before the run byte-identical afterwards (hashed before and after).
"""

import hashlib
import os
import warnings
from pathlib import Path


def snapshot(root):
    """{relative path: sha256} of every regular file under ``root`` (links not followed)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink():
                out[str(path.relative_to(root))] = "link -> " + os.readlink(path)
                continue
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def run_clean_failure(main, argv, root, capsys, needles):
    """Run ``main(argv)`` and assert a clean failure naming every one of ``needles``.

    Returns the error line.
    """
    before = snapshot(root)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    runtime = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not runtime, [str(w.message) for w in runtime]
    after = snapshot(root)
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert not changed, changed
    return lines[0]
