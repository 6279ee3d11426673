"""The HDF5 feature dump: round trip, validation of bad files, atomic writes."""

import datetime
import os

import h5py
import numpy as np
import pytest

import reference.dump as dump_module
from reference.dump import DumpError, FeatureDump, read_dump, write_dump


def make_split(rng, n, dim=6, parts=None, part_dim=3, paths=False, prefix="x"):
    data = {
        "global": rng.normal(size=(n, dim)).astype(np.float32),
        "pid": rng.integers(-1, 5, n).astype(np.int64),
        "camid": rng.integers(1, 4, n).astype(np.int64),
    }
    if parts is not None:
        data["local"] = rng.normal(size=(n, parts, part_dim)).astype(np.float32)
    if paths:
        # non-ASCII on purpose: the format stores UTF-8
        data["path"] = [f"{prefix}/ü_{i:03d}_é.jpg" for i in range(n)]
    return data


def assert_split_equal(got, want):
    assert set(got) == set(want)
    for key in ("global", "local"):
        if key in want:
            assert got[key].dtype == np.float32
            np.testing.assert_array_equal(got[key], want[key])
    for key in ("pid", "camid"):
        assert got[key].dtype == np.int64
        np.testing.assert_array_equal(got[key], want[key])
    if "path" in want:
        assert list(got["path"]) == list(want["path"])
        assert all(isinstance(p, str) for p in got["path"])


# ----------------------------------------------------------------------------
# round trip


@pytest.mark.parametrize("with_local", [False, True])
@pytest.mark.parametrize("with_path", [False, True])
@pytest.mark.parametrize("with_lists", [False, True])
def test_round_trip(tmp_path, with_local, with_path, with_lists):
    rng = np.random.default_rng(1)
    q = make_split(rng, 5, parts=4 if with_local else None, paths=with_path, prefix="q")
    g = make_split(rng, 9, parts=4 if with_local else None, paths=with_path, prefix="g")
    lists = [rng.choice(9, size=k, replace=False) for k in (3, 0, 9, 1, 4)] if with_lists else None
    path = tmp_path / "d.h5"
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    out = write_dump(
        path,
        q,
        g,
        protocol="cuhk-sysu" if with_lists else "cuhk03",
        model="resnet50 epoch 300",
        dataset="Ünïcode set",
        gallery_lists=lists,
    )
    assert out == str(path)
    assert os.listdir(tmp_path) == ["d.h5"]

    d = read_dump(path)
    assert isinstance(d, FeatureDump)
    assert d.path == str(path)
    assert_split_equal(d.query, q)
    assert_split_equal(d.gallery, g)
    assert d.num_query == 5 and d.num_gallery == 9
    assert d.has_local == with_local
    assert d.attrs["schema_version"] == 1
    assert d.attrs["protocol"] == ("cuhk-sysu" if with_lists else "cuhk03")
    assert d.attrs["model"] == "resnet50 epoch 300"
    assert d.attrs["dataset"] == "Ünïcode set"
    created = datetime.datetime.fromisoformat(d.attrs["created"])
    assert created.tzinfo is not None
    assert before <= created <= datetime.datetime.now(datetime.timezone.utc)
    if with_lists:
        assert len(d.gallery_lists) == 5
        for got, want in zip(d.gallery_lists, lists):
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, want)
    else:
        assert d.gallery_lists is None


def test_file_layout_is_the_documented_one(tmp_path):
    """Read back with plain h5py: names, dtypes and shapes of docs/feature_dump.md."""
    rng = np.random.default_rng(2)
    q = make_split(rng, 3, parts=2, paths=True)
    g = make_split(rng, 4, parts=2, paths=True)
    path = tmp_path / "d.h5"
    write_dump(path, q, g, protocol="cuhk-sysu", gallery_lists=[[0, 1], [2], [3, 0, 1]])
    with h5py.File(path, "r") as f:
        assert set(f) == {"query", "gallery", "protocol"}
        assert set(f["query"]) == {"global", "local", "pid", "camid", "path"}
        assert f["query/global"].dtype == np.float32 and f["query/global"].shape == (3, 6)
        assert f["query/local"].dtype == np.float32 and f["query/local"].shape == (3, 2, 3)
        assert f["gallery/pid"].dtype == np.int64 and f["gallery/camid"].dtype == np.int64
        assert h5py.check_string_dtype(f["query/path"].dtype).encoding == "utf-8"
        np.testing.assert_array_equal(f["protocol/gallery_offsets"][()], [0, 2, 3, 6])
        np.testing.assert_array_equal(f["protocol/gallery_indices"][()], [0, 1, 2, 3, 0, 1])
        assert f["protocol/gallery_offsets"].dtype == np.int64
        assert int(f.attrs["schema_version"]) == 1
        assert set(f.attrs) == {"schema_version", "protocol", "model", "dataset", "created"}


def test_other_numeric_widths_are_converted(tmp_path):
    """A file from another tool with float64 features / int32 ids reads as float32 / int64."""
    path = tmp_path / "other.h5"
    rng = np.random.default_rng(3)
    with h5py.File(path, "w") as f:
        f.attrs["schema_version"] = 1
        f.attrs["protocol"] = "market1501"
        for split, n in (("query", 2), ("gallery", 3)):
            f[f"{split}/global"] = rng.normal(size=(n, 4))
            f[f"{split}/pid"] = np.arange(n, dtype=np.int32)
            f[f"{split}/camid"] = np.ones(n, dtype=np.uint8)
    d = read_dump(path)
    assert d.query["global"].dtype == np.float32
    assert d.gallery["pid"].dtype == np.int64 and d.gallery["camid"].dtype == np.int64
    assert d.attrs["model"] == "" and d.attrs["dataset"] == "" and d.attrs["created"] == ""
    assert "local" not in d.query and "path" not in d.query


# ----------------------------------------------------------------------------
# validation of bad files (each built with raw h5py)


def write_raw(path, mutate=None, attrs=None, lists=False):
    """A valid dump written with plain h5py, then changed by ``mutate(f)``."""
    rng = np.random.default_rng(4)
    with h5py.File(path, "w") as f:
        f.attrs["schema_version"] = np.int64(1)
        f.attrs["protocol"] = "cuhk-sysu" if lists else "market1501"
        f.attrs["model"] = "m"
        f.attrs["dataset"] = "d"
        f.attrs["created"] = "2024-01-01T00:00:00+00:00"
        for split, n in (("query", 3), ("gallery", 5)):
            f[f"{split}/global"] = rng.normal(size=(n, 4)).astype(np.float32)
            f[f"{split}/local"] = rng.normal(size=(n, 2, 3)).astype(np.float32)
            f[f"{split}/pid"] = np.arange(n, dtype=np.int64)
            f[f"{split}/camid"] = np.ones(n, dtype=np.int64)
            f.create_dataset(
                f"{split}/path",
                data=[f"{split}{i}.jpg" for i in range(n)],
                dtype=h5py.string_dtype("utf-8"),
            )
        if lists:
            f["protocol/gallery_offsets"] = np.array([0, 2, 2, 5], np.int64)
            f["protocol/gallery_indices"] = np.array([0, 1, 2, 3, 4], np.int64)
        for key, value in (attrs or {}).items():
            if value is None:
                del f.attrs[key]
            else:
                f.attrs[key] = value
        if mutate is not None:
            mutate(f)
    return path


def replace(name, value, dtype=None):
    def mutate(f):
        del f[name]
        if dtype is None:
            f[name] = value
        else:
            f.create_dataset(name, data=value, dtype=dtype)

    return mutate


def delete(name):
    def mutate(f):
        del f[name]

    return mutate


def with_nan(name, value=np.nan):
    def mutate(f):
        data = f[name][()]
        data.reshape(-1)[1] = value
        f[name][...] = data

    return mutate


BAD_FILES = {
    # name: (mutate, attrs, lists, dataset named in the message, words in the message)
    "missing query/global": (delete("query/global"), None, False, "query/global", "missing"),
    "missing gallery/pid": (delete("gallery/pid"), None, False, "gallery/pid", "missing"),
    "missing gallery/camid": (delete("gallery/camid"), None, False, "gallery/camid", "missing"),
    "missing query group": (delete("query"), None, False, "query", "missing"),
    "global 1-d": (replace("query/global", np.zeros(3, np.float32)), None, False,
                   "query/global", "shape"),
    "global 3-d": (replace("gallery/global", np.zeros((5, 4, 1), np.float32)), None, False,
                   "gallery/global", "shape"),
    "global int": (replace("query/global", np.zeros((3, 4), np.int32)), None, False,
                   "query/global", "dtype"),
    "global strings": (replace("query/global", ["a", "b", "c"], h5py.string_dtype()), None,
                       False, "query/global", "dtype"),
    "global nan": (with_nan("query/global"), None, False, "query/global", "NaN"),
    "global inf": (with_nan("gallery/global", np.inf), None, False, "gallery/global", "infinite"),
    "local inf": (with_nan("query/local", -np.inf), None, False, "query/local", "infinite"),
    "local 2-d": (replace("query/local", np.zeros((3, 6), np.float32)), None, False,
                  "query/local", "shape"),
    "local rows": (replace("gallery/local", np.zeros((4, 2, 3), np.float32)), None, False,
                   "gallery/local", "rows"),
    "local channels disagree": (replace("gallery/local", np.zeros((5, 2, 7), np.float32)), None,
                                False, "gallery/local", "channels"),
    "local only in query": (delete("gallery/local"), None, False, "gallery/local", "missing"),
    "global channels disagree": (replace("gallery/global", np.zeros((5, 9), np.float32)), None,
                                 False, "gallery/global", "channels"),
    "pid length": (replace("query/pid", np.arange(4)), None, False, "query/pid", "length"),
    "camid length": (replace("gallery/camid", np.ones(2, np.int64)), None, False,
                     "gallery/camid", "length"),
    "pid float": (replace("query/pid", np.arange(3, dtype=np.float64)), None, False,
                  "query/pid", "dtype"),
    "camid 2-d": (replace("query/camid", np.ones((3, 1), np.int64)), None, False,
                  "query/camid", "shape"),
    "path length": (replace("query/path", ["a", "b"], h5py.string_dtype("utf-8")), None, False,
                    "query/path", "length"),
    "path not strings": (replace("gallery/path", np.arange(5)), None, False, "gallery/path",
                         "strings"),
    "empty split": (lambda f: (replace("query/global", np.zeros((0, 4), np.float32))(f),
                               replace("query/local", np.zeros((0, 2, 3), np.float32))(f),
                               replace("query/pid", np.zeros(0, np.int64))(f),
                               replace("query/camid", np.zeros(0, np.int64))(f),
                               replace("query/path", np.zeros(0, "S1"))(f)),
                    None, False, "query/global", "no rows"),
    "global is a group": (lambda f: (delete("query/global")(f), f.create_group("query/global")),
                          None, False, "query/global", "group"),
    "missing schema_version": (None, {"schema_version": None}, False, "/", "schema_version"),
    "schema_version 2": (None, {"schema_version": np.int64(2)}, False, "/", "schema_version"),
    "missing protocol attribute": (None, {"protocol": None}, False, "/", "protocol"),
    "offsets not monotone": (replace("protocol/gallery_offsets", np.array([0, 3, 2, 5])), None,
                             True, "protocol/gallery_offsets", "monotone"),
    "offsets wrong length": (replace("protocol/gallery_offsets", np.array([0, 2, 5])), None,
                             True, "protocol/gallery_offsets", "Q + 1"),
    "offsets do not start at 0": (replace("protocol/gallery_offsets", np.array([1, 2, 3, 5])),
                                  None, True, "protocol/gallery_offsets", "start"),
    "offsets end before indices": (replace("protocol/gallery_offsets", np.array([0, 1, 2, 4])),
                                   None, True, "protocol/gallery_offsets", "ends at"),
    "index too large": (replace("protocol/gallery_indices", np.array([0, 1, 2, 3, 5])), None,
                        True, "protocol/gallery_indices", "out of range"),
    "index negative": (replace("protocol/gallery_indices", np.array([0, -1, 2, 3, 4])), None,
                       True, "protocol/gallery_indices", "out of range"),
    "indices float": (replace("protocol/gallery_indices", np.arange(5.0)), None, True,
                      "protocol/gallery_indices", "dtype"),
    "indices missing": (delete("protocol/gallery_indices"), None, True,
                        "protocol/gallery_indices", "missing"),
    "cuhk-sysu without lists": (delete("protocol"), None, True, "protocol/gallery_offsets",
                                "cuhk-sysu"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_gives_one_line_dump_error(tmp_path, case):
    mutate, attrs, lists, dataset, words = BAD_FILES[case]
    path = write_raw(tmp_path / "bad.h5", mutate, attrs, lists)
    with pytest.raises(DumpError) as info:
        read_dump(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {dataset}: "), message
    assert "\n" not in message
    assert words.lower() in message.lower(), message
    assert isinstance(info.value, ValueError)
    assert info.value.path == str(path) and info.value.dataset == dataset


def test_the_unmutated_raw_file_is_valid(tmp_path):
    """The bad-file cases above differ from a valid file only by their mutation."""
    d = read_dump(write_raw(tmp_path / "ok.h5"))
    assert d.num_query == 3 and d.has_local and d.query["path"][2] == "query2.jpg"
    d = read_dump(write_raw(tmp_path / "ok2.h5", lists=True))
    assert [x.tolist() for x in d.gallery_lists] == [[0, 1], [], [2, 3, 4]]


def test_not_hdf5_missing_file_and_directory(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("this is not HDF5\n")
    with pytest.raises(DumpError, match=r"notes\.h5: /: not an HDF5 file$"):
        read_dump(text)
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with pytest.raises(DumpError, match=r"empty\.h5: /: not an HDF5 file$"):
        read_dump(empty)
    with pytest.raises(DumpError, match=r"nope\.h5: /: no such file$"):
        read_dump(tmp_path / "nope.h5")
    with pytest.raises(DumpError, match=r": /: is a directory"):
        read_dump(tmp_path)


@pytest.mark.parametrize("fraction", [0.3, 0.9])
def test_truncated_file(tmp_path, fraction):
    rng = np.random.default_rng(11)
    good = tmp_path / "good.h5"
    write_dump(good, make_split(rng, 20, parts=2), make_split(rng, 40, parts=2))
    data = good.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(DumpError) as info:
        read_dump(cut)
    message = str(info.value)
    assert message.startswith(f"{cut}: /: ") and "\n" not in message


# ----------------------------------------------------------------------------
# writing: validation and atomicity


@pytest.mark.parametrize(
    "change, dataset",
    [
        (lambda q, g: q.pop("global"), "query/global"),
        (lambda q, g: g.update(pid=np.arange(2)), "gallery/pid"),
        (lambda q, g: q.update({"global": q["global"] * np.nan}), "query/global"),
        (lambda q, g: (q.update(local=np.zeros((5, 2, 3), np.float32)),
                       g.update(local=np.zeros((8, 2, 3), np.float32))), "gallery/local"),
        (lambda q, g: q.update(local=np.zeros((5, 2, 3), np.float32)), "gallery/local"),
        (lambda q, g: q.update(path=["a"]), "query/path"),
        (lambda q, g: q.update(camid=np.ones(5)), "query/camid"),
    ],
)
def test_write_rejects_bad_input_and_writes_nothing(tmp_path, change, dataset):
    rng = np.random.default_rng(5)
    q = make_split(rng, 5)
    g = make_split(rng, 9)
    change(q, g)
    path = tmp_path / "d.h5"
    with pytest.raises(DumpError) as info:
        write_dump(path, q, g)
    assert str(info.value).startswith(f"{path}: {dataset}: ")
    assert os.listdir(tmp_path) == []


def test_write_rejects_bad_gallery_lists(tmp_path):
    rng = np.random.default_rng(6)
    q, g = make_split(rng, 2), make_split(rng, 4)
    with pytest.raises(DumpError, match="protocol/gallery_indices: .*out of range"):
        write_dump(tmp_path / "d.h5", q, g, gallery_lists=[[0, 4], [1]])
    with pytest.raises(DumpError, match="protocol/gallery_offsets: .*2 queries"):
        write_dump(tmp_path / "d.h5", q, g, gallery_lists=[[0]])
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    path = tmp_path / "d.h5"
    old_q, old_g = make_split(rng, 3, parts=2), make_split(rng, 4, parts=2)
    write_dump(path, old_q, old_g, model="old")
    old_bytes = path.read_bytes()

    real = dump_module._write_split
    calls = []

    def failing(f, split, data):
        calls.append(split)
        real(f, split, data)
        if split == "gallery":  # after part of the new file has been written
            raise RuntimeError("disk full (injected)")

    monkeypatch.setattr(dump_module, "_write_split", failing)
    with pytest.raises(RuntimeError, match="injected"):
        write_dump(path, make_split(rng, 6), make_split(rng, 7), model="new")
    assert calls == ["query", "gallery"]
    assert os.listdir(tmp_path) == ["d.h5"]
    assert path.read_bytes() == old_bytes
    d = read_dump(path)
    assert d.attrs["model"] == "old"
    assert_split_equal(d.query, old_q)


def test_failed_replace_leaves_no_temporary(tmp_path, monkeypatch):
    rng = np.random.default_rng(8)

    def broken_replace(src, dst):
        raise PermissionError(13, "Permission denied (injected)")

    monkeypatch.setattr(dump_module.os, "replace", broken_replace)
    with pytest.raises(DumpError, match=r"d\.h5: /: cannot write: .*injected"):
        write_dump(tmp_path / "d.h5", make_split(rng, 2), make_split(rng, 2))
    assert os.listdir(tmp_path) == []


def test_write_into_missing_directory(tmp_path):
    rng = np.random.default_rng(9)
    with pytest.raises(DumpError, match="does not exist"):
        write_dump(tmp_path / "no" / "d.h5", make_split(rng, 2), make_split(rng, 2))


def test_overwrite_replaces_content(tmp_path):
    rng = np.random.default_rng(10)
    path = tmp_path / "d.h5"
    write_dump(path, make_split(rng, 2), make_split(rng, 3))
    q = make_split(rng, 4, parts=3)
    g = make_split(rng, 5, parts=3)
    write_dump(path, q, g)
    d = read_dump(path)
    assert_split_equal(d.query, q)
    assert_split_equal(d.gallery, g)
    assert os.listdir(tmp_path) == ["d.h5"]
