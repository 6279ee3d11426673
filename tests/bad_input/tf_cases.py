"""Helpers of the bad-input cases of the TensorFlow tools (``train.py``,
``reid-extract``, ``reid-gradcheck --dump``).

Each case runs a tool on a bad input and checks the contract every tool
keeps: the exit status, exactly one line on stderr that names the argument or
the file, no traceback, and every file that existed before still byte for
byte the same (:func:`digests` before and after).

Most cases call the tool's ``main`` in this process (one TensorFlow import
for the whole module) with the file descriptors captured, so TensorFlow's own
log lines count as stderr lines too; a few run it as a subprocess, as a user
would.
"""

import builtins
import contextlib
import dataclasses
import errno
import hashlib
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# the warning categories Python shows by default outside __main__
_SHOWN = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


@dataclasses.dataclass
class Outcome:
    """What a tool did: exit status, stdout text, stderr lines."""

    code: int
    out: str
    err: list


def digests(*roots):
    """SHA-256 of every file under ``roots`` (files or directories), by path.

    Directories map to ``"dir"``, so a directory that appears or vanishes
    changes the result too.
    """
    out = {}
    for root in map(Path, roots):
        if root.is_file():
            out[str(root)] = hashlib.sha256(root.read_bytes()).hexdigest()
        elif root.is_dir():
            out[str(root)] = "dir"
            for p in sorted(root.rglob("*")):
                out[str(p)] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_in_process(main, argv, capfd):
    """``main(argv)`` with stdout/stderr captured at the file descriptors.

    Warnings that Python would print are counted as stderr lines.
    """
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for category in _SHOWN:
            warnings.simplefilter("ignore", category)
        code = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    lines = err.splitlines() + [f"{w.category.__name__}: {w.message}" for w in caught]
    return Outcome(code, out, lines)


def run_subprocess(command, argv, timeout=300):
    """A tool in a fresh interpreter: ``command`` is a script path relative to
    the repository or ``["-m", module]``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["CUDA_VISIBLE_DEVICES"] = ""
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the tools set their own
    prefix = [str(REPO / command)] if isinstance(command, str) else list(command)
    proc = subprocess.run([sys.executable, *prefix, *map(str, argv)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return Outcome(proc.returncode, proc.stdout, proc.stderr.splitlines())


def assert_one_line_error(outcome, prog, *needles, code=2):
    """Exit status ``code`` and exactly one stderr line, ``prog: error: ...``,
    holding every needle (a flag, a file name)."""
    text = "\n".join(outcome.err)
    assert outcome.code == code, text
    assert "Traceback" not in text, text
    assert len(outcome.err) == 1, text
    line = outcome.err[0]
    assert line.startswith(f"{prog}: error: "), line
    for needle in needles:
        assert str(needle) in line, (needle, line)
    return line


@pytest.fixture(scope="module")
def tensorflow_loaded():
    """TensorFlow loaded before the first case, so that no case depends on
    whether an earlier test of the session already paid for its start-up
    (whose log lines go to the session's capture, not to a case's)."""
    from reid_tf.tf_startup import import_tensorflow

    return import_tensorflow()


# ------------------------------------------------------------------ inputs
def tiny_dataset(dst):
    """A prepared synthetic dataset (Market-1501 protocol, 64 x 32 images)."""
    from data_prep.synthetic.cache import prepare

    return prepare(Path(dst), num_identities=12, images_per_identity=4,
                   num_cameras=2, height=64, width=32)


def copy_dataset(prepared, dst):
    """A copy of a prepared dataset with files of its own (no hard links)."""
    shutil.copytree(prepared, dst)
    return Path(dst)


def replace_file(path, data):
    """Puts ``data`` at ``path`` as a new file (never writes through a link)."""
    path = Path(path)
    if path.exists():
        path.unlink()
    path.write_bytes(data)
    return path


def image_of(prepared, split, index=0):
    """The absolute path of an image of a prepared dataset's split."""
    from data_prep import load_manifest

    return Path(load_manifest(prepared).split(split).paths[index])


def random_bytes(n=4096, seed=0):
    """``n`` reproducible random bytes."""
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def tiny_model(path, image_size=(64, 32)):
    """Saves an untrained tiny inference model (global + local) as ``.keras``."""
    from reid_tf.model import build_model, inference_model

    net = build_model("tiny", num_classes=4, input_shape=(*image_size, 3))
    inference_model(net, local=True).save(path)
    return Path(path)


def tiny_dump(path):
    """Writes a small valid feature dump (global and local features)."""
    from reference import write_dump
    from reference.synthetic import clustered_features

    data = clustered_features(6, 24, dim=16, num_identities=6, parts=4, part_dim=8)
    return Path(write_dump(str(path), data["query"], data["gallery"]))


# -------------------------------------------------------- a read-only tree
@contextlib.contextmanager
def read_only_tree(root):
    """Writes under ``root`` fail with ``EROFS``, as on a read-only mount.

    Tests run as root, where permission bits do not stop writes, and a real
    read-only mount needs privileges CI may not have, so the file system
    calls that create, write, rename or delete (``open`` for writing,
    ``os.open`` with a write flag, ``os.mkdir``, ``os.replace``,
    ``os.rename``, ``os.unlink``, ``os.rmdir``) are wrapped to refuse paths
    under ``root`` the way the kernel does; everything else passes through.
    """
    root = os.path.abspath(root)

    def inside(path):
        if isinstance(path, int):
            return False
        p = os.path.abspath(os.fsdecode(os.fspath(path)))
        return p == root or p.startswith(root + os.sep)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(os.fspath(path)))

    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def fake_open(file, mode="r", *args, **kwargs):
        if not isinstance(file, int) and inside(file) and set(mode) & set("wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if inside(path) and flags & write_flags:
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if inside(path):
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(path))
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def refusing(real, arity):
        def call(*args, **kwargs):
            for path in args[:arity]:
                if inside(path):
                    refuse(path)
            return real(*args, **kwargs)
        return call

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(builtins, "open", fake_open)
        mp.setattr(os, "open", fake_os_open)
        mp.setattr(os, "mkdir", fake_mkdir)
        for name, arity in (("replace", 2), ("rename", 2), ("unlink", 1), ("rmdir", 1)):
            mp.setattr(os, name, refusing(getattr(os, name), arity))
        yield Path(root)
