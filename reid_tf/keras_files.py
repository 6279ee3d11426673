"""A cheap check of a Keras model or weights file before Keras reads it.

Keras picks the reader by the file name (``.keras``: a zip archive;
``.weights.h5``, ``.h5``, ``.hdf5``: HDF5) and reports a file of the wrong
kind with a misleading message (a text file named ``.keras`` is "File not
found"; random bytes named ``.weights.h5`` an ``OSError``).
:func:`keras_file_problem` looks at the name and the first bytes only, so a
command can refuse such a file before it builds a model or writes anything.

This module uses the standard library alone (no Keras, no h5py).
"""

import os
import zipfile

#: The first eight bytes of an HDF5 superblock.
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

#: Name endings Keras reads, per kind of file (``.weights.json``: sharded
#: weights, a JSON index beside its shards, not checked further).
SUFFIXES = {
    "model": (".keras", ".h5", ".hdf5"),
    "weights": (".weights.h5", ".weights.json", ".keras", ".h5", ".hdf5"),
}


def is_hdf5(path):
    """Whether ``path`` starts an HDF5 file (the superblock signature at
    byte 0, 512, 1024, 2048, ... as HDF5 allows a user block before it).

    Args:
        path: file path.

    Returns:
        bool.

    Raises:
        OSError: the file cannot be read.

    Example:
        >>> _ = open("notes.h5", "w").write("not HDF5")
        >>> is_hdf5("notes.h5")
        False
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        offset = 0
        while offset + len(HDF5_SIGNATURE) <= size:
            f.seek(offset)
            if f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


def keras_file_problem(path, kind="weights"):
    """What stops Keras from reading ``path`` as a model or weights file.

    Checks that the file exists and is readable, that its name ends as
    Keras expects (:data:`SUFFIXES`), and that its first bytes match: a
    ``.keras`` file is a zip archive, the ``.h5`` kinds are HDF5. A file that
    passes may still hold another architecture; Keras reports that when it
    loads it.

    Args:
        path: the file.
        kind: ``"model"`` (``keras.saving.load_model``) or ``"weights"``
            (``Model.load_weights``).

    Returns:
        None when the file looks loadable, else one line that starts with
        ``path``.

    Example:
        >>> _ = open("model.keras", "w").write("just text")
        >>> keras_file_problem("model.keras", "model")
        'model.keras: not a Keras model file (a .keras file is a zip archive)'
        >>> keras_file_problem("missing.weights.h5")
        'missing.weights.h5: no such file'
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return f"{path}: is a directory, not a file"
    if not os.path.isfile(path):
        return f"{path}: no such file"
    suffixes = SUFFIXES[kind]
    if not path.endswith(suffixes):
        return f"{path}: the file name must end with {', '.join(suffixes)} (Keras reads " \
               "the format from the name)"
    try:
        with open(path, "rb"):
            pass
        if path.endswith(".keras"):
            if not zipfile.is_zipfile(path):
                return f"{path}: not a Keras {kind} file (a .keras file is a zip archive)"
        elif path.endswith((".h5", ".hdf5")) and not is_hdf5(path):
            return f"{path}: not an HDF5 file (a {kind} file named .h5 is HDF5)"
    except OSError as exc:
        return f"{path}: cannot read ({exc.strerror or exc})"
    return None
