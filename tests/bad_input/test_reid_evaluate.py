"""Bad inputs of ``reid-evaluate``: each fails cleanly and destroys nothing.

Every case writes its dumps under ``tmp_path`` and runs ``reid-evaluate``
in-process with ``--quiet``; :func:`tests.bad_input.harness.run_clean_failure`
checks exit status 2, one stderr line naming the file or argument, no
traceback or RuntimeWarning, and byte-identical survival of every file that
existed before.
"""

import os

import h5py
import numpy as np
import pytest

from reference import write_dump
from reference.evaluate_cli import main

from .harness import run_clean_failure


def _split(n, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return {"global": rng.normal(size=(n, dim)).astype(np.float32),
            "pid": np.arange(n) % 4 + 1, "camid": np.arange(n) % 2 + 1,
            "path": [f"images/x{seed}_{i}.jpg" for i in range(n)]}


def dump(path, nq=6, ng=20):
    return write_dump(str(path), _split(nq, seed=1), _split(ng, seed=2), protocol="market1501")


def _replace(path, name, **create):
    with h5py.File(path, "a") as f:
        del f[name]
        group, _, leaf = name.rpartition("/")
        f[group].create_dataset(leaf, **create)


# --------------------------------------------------------------------------
# cases: each returns (argv, needles)

def case_json_is_the_dump(tmp):
    d = dump(tmp / "x.h5")
    return [d, "--json", d], ["--json", d]


def case_csv_is_the_dump(tmp):
    d = dump(tmp / "x.h5")
    return [d, "--csv", d], ["--csv", d]


def case_plot_is_the_dump(tmp):
    d = dump(tmp / "x.h5")
    return [d, "--plot", d], ["--plot", d]


def case_json_is_second_dump(tmp):
    a, b = dump(tmp / "a.h5"), dump(tmp / "b.h5")
    return [a, b, "--json", b], ["--json", b]


def case_json_is_the_dump_via_symlink(tmp):
    d = dump(tmp / "x.h5")
    os.symlink(d, tmp / "alias.json")
    return [d, "--json", tmp / "alias.json"], ["--json", "alias.json", d]


def case_json_is_the_dump_via_dotdot(tmp):
    d = dump(tmp / "x.h5")
    (tmp / "sub").mkdir()
    return [d, "--json", tmp / "sub" / ".." / "x.h5"], ["--json", "is the input dump"]


def case_json_is_the_dump_via_hard_link(tmp):
    d = dump(tmp / "x.h5")
    os.link(d, tmp / "same.h5")
    return [d, "--json", tmp / "same.h5"], ["--json", "same.h5"]


def case_alignment_png_is_the_dump(tmp):
    d = dump(tmp / "x.png")
    return [d, "--alignment", "0", "0", "--out", d], ["--out", d]


def case_two_outputs_same_file(tmp):
    d = dump(tmp / "x.h5")
    out = tmp / "r.out"
    return [d, "--json", out, "--csv", out], ["--csv", out, "--json"]


def case_demo_replaces_input(tmp):
    (tmp / "demo").mkdir()
    d = dump(tmp / "demo" / "demo.h5")
    return [d, "--demo", tmp / "demo"], ["--demo", d]


def case_k1_too_large(tmp):
    d = dump(tmp / "x.h5")
    return [d, "--rerank", "--k1", "100000"], ["--k1", "100000"]


def case_k2_too_large(tmp):
    d = dump(tmp / "x.h5")
    return [d, "--rerank", "--k2", "1000"], ["--k2", "1000"]


def case_k1_zero(tmp):
    d = dump(tmp / "x.h5")
    return [d, "--rerank", "--k1", "0"], ["--k1"]


def case_lambda_out_of_range(tmp):
    d = dump(tmp / "x.h5")
    return [d, "--rerank", "--lambda", "2"], ["--lambda"]


def case_shortlist_zero(tmp):
    d = dump(tmp / "x.h5")
    return [d, "--distance", "local", "--shortlist", "0"], ["--shortlist"]


def case_unknown_distance(tmp):
    d = dump(tmp / "x.h5")
    return [d, "--distance", "cosine"], ["--distance", "cosine"]


def case_missing_dump(tmp):
    return [tmp / "nope.h5"], [tmp / "nope.h5"]


def case_not_hdf5(tmp):
    p = tmp / "notes.h5"
    p.write_text("not hdf5\n")
    return [p], [p, "not an HDF5 file"]


def case_nan_features(tmp):
    d = dump(tmp / "x.h5")
    g = _split(6, seed=1)["global"]
    g[2, 3] = np.nan
    _replace(d, "query/global", data=g)
    return [d], [d, "query/global", "NaN"]


def case_uint64_pid_beyond_int64(tmp):
    d = dump(tmp / "x.h5")
    pids = np.arange(6, dtype=np.uint64) + 1
    pids[3] = np.uint64(2 ** 64 - 1)
    _replace(d, "query/pid", data=pids)
    return [d], [d, "query/pid", "18446744073709551615"]


def case_float64_beyond_float32(tmp):
    d = dump(tmp / "x.h5")
    g = _split(20, seed=2)["global"].astype(np.float64)
    g[5, 1] = 1e39
    _replace(d, "gallery/global", data=g)
    return [d], [d, "gallery/global", "float32 range"]


def case_external_link(tmp):
    secret = tmp / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["x"] = _split(6, seed=1)["global"]
    d = dump(tmp / "x.h5")
    with h5py.File(d, "a") as f:
        del f["query/global"]
        f["query/global"] = h5py.ExternalLink(str(secret), "/x")
    return [d], [d, "query/global", "external link"]


def case_external_link_group(tmp):
    secret = tmp / "secret.h5"
    dump(secret)
    d = dump(tmp / "x.h5")
    with h5py.File(d, "a") as f:
        del f["gallery"]
        f["gallery"] = h5py.ExternalLink(str(secret), "/gallery")
    return [d], [d, "gallery", "external link"]


def case_external_storage(tmp):
    raw = tmp / "raw.bin"
    g = _split(6, seed=1)["global"]
    raw.write_bytes(g.tobytes())
    d = dump(tmp / "x.h5")
    _replace(d, "query/global", shape=g.shape, dtype="<f4",
             external=[(str(raw), 0, g.nbytes)])
    return [d], [d, "query/global", "external file"]


def case_virtual_dataset(tmp):
    source = tmp / "source.h5"
    g = _split(20, seed=2)["global"]
    with h5py.File(source, "w") as f:
        f["x"] = g
    d = dump(tmp / "x.h5")
    layout = h5py.VirtualLayout(shape=g.shape, dtype="<f4")
    layout[:] = h5py.VirtualSource(str(source), "x", shape=g.shape)
    with h5py.File(d, "a") as f:
        del f["gallery/global"]
        f["gallery"].create_virtual_dataset("global", layout)
    return [d], [d, "gallery/global", "virtual"]


def case_missing_local_for_local_distance(tmp):
    d = dump(tmp / "x.h5")
    return [d, "--distance", "local"], [d, "local"]


def case_directory_without_dumps(tmp):
    (tmp / "empty").mkdir()
    (tmp / "empty" / "notes.txt").write_text("x")
    return [tmp / "empty"], [tmp / "empty", "neither a run directory"]


def case_run_dir_without_feature_dumps(tmp):
    run = tmp / "run"
    (run / "features").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    return [run], [run, "without feature dumps"]


def case_alignment_index_beyond_the_dump(tmp):
    d = dump(tmp / "x.h5")
    with h5py.File(d, "a") as f:
        for split, n in (("query", 6), ("gallery", 20)):
            f[split].create_dataset("local", data=np.zeros((n, 3, 4), np.float32))
    return [d, "--alignment", "0", "20", "--json", tmp / "r.json"], [
        "--alignment", d, "gallery index 20"]


def case_json_directory_is_a_file(tmp):
    d = dump(tmp / "x.h5")
    (tmp / "afile").write_text("x")
    return [d, "--json", tmp / "afile" / "r.json"], ["--json", "afile", "not a directory"]


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items())
         if name.startswith("case_")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_fails_cleanly(name, tmp_path, capsys):
    argv, needles = CASES[name](tmp_path)
    run_clean_failure(main, [*argv, "--quiet"], tmp_path, capsys, needles)
