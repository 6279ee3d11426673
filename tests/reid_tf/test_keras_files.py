"""reid_tf.keras_files: the format check of model and weights files, against
files written by h5py and zipfile themselves."""

import zipfile

import h5py
import numpy as np
import pytest

from reid_tf.keras_files import is_hdf5, keras_file_problem


@pytest.mark.parametrize("userblock", [0, 512, 4096])
def test_is_hdf5_finds_the_signature_after_a_user_block(userblock, tmp_path):
    path = tmp_path / "w.h5"
    with h5py.File(path, "w", userblock_size=userblock) as f:
        f.create_dataset("x", data=np.arange(3))
    assert is_hdf5(path) == h5py.is_hdf5(path) is True


@pytest.mark.parametrize("content", [b"", b"\x89HDF", b"text\n" * 300,
                                     np.random.default_rng(0).bytes(5000)])
def test_is_hdf5_refuses_what_h5py_refuses(content, tmp_path):
    path = tmp_path / "x.h5"
    path.write_bytes(content)
    assert is_hdf5(path) == h5py.is_hdf5(path) is False


def _zip(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "{}")
    return path


def _hdf5(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(3))
    return path


@pytest.mark.parametrize("name, make, kind, expected", [
    ("m.keras", _zip, "model", None),
    ("m.keras", _zip, "weights", None),
    ("m.h5", _hdf5, "model", None),
    ("w.weights.h5", _hdf5, "weights", None),
    ("w.hdf5", _hdf5, "weights", None),
    ("m.keras", _hdf5, "model", "not a Keras model file (a .keras file is a zip archive)"),
    ("w.keras", lambda p: p.write_text("x") and p, "weights",
     "not a Keras weights file (a .keras file is a zip archive)"),
    ("w.weights.h5", _zip, "weights", "not an HDF5 file (a weights file named .h5 is HDF5)"),
    ("m.h5", lambda p: p.write_bytes(b"") or p, "model",
     "not an HDF5 file (a model file named .h5 is HDF5)"),
    ("w.weights.h5", None, "weights", "no such file"),
    ("w.bin", _hdf5, "weights", "the file name must end with .weights.h5, .weights.json, "
                                ".keras, .h5, .hdf5"),
    ("m.weights.json", _hdf5, "model", "the file name must end with .keras, .h5, .hdf5"),
])
def test_keras_file_problem(name, make, kind, expected, tmp_path):
    path = tmp_path / name
    if make is not None:
        make(path)
    problem = keras_file_problem(path, kind)
    if expected is None:
        assert problem is None
    else:
        assert problem.startswith(f"{path}: {expected}"), problem


def test_a_directory_is_not_a_file(tmp_path):
    assert keras_file_problem(tmp_path, "model") == f"{tmp_path}: is a directory, not a file"
