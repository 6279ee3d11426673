"""HDF5 objects that stay inside their file.

HDF5 can point outside the file being read: an external link names an object
of another file, a dataset with external storage keeps its bytes in raw files
elsewhere on the disk, and a virtual dataset maps regions of other files. A
tool that reads a user's HDF5 file (a feature dump, ``cuhk-03.mat``) asks
:func:`hdf5_outside_file` first and refuses such an object, so a file cannot
make it read other files of the machine.
"""

MAX_SOFT_LINKS = 32


def hdf5_outside_file(group, name=None):
    """Why ``group[name]`` (or ``group`` itself) would read data from outside its file.

    Every link on the way from ``group`` to ``name`` is checked (soft links are
    followed within the file), then the object's storage.

    Args:
        group: an open ``h5py.Group`` or ``h5py.File`` (or, with ``name``
            None, an ``h5py.Dataset``).
        name: a path relative to ``group``, or None to check ``group`` alone.

    Returns:
        None when the object is stored in the file (or does not exist), else
        a short reason ("is an external link to other.h5:/x", ...).

    Example:
        >>> import h5py, numpy as np, tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> with h5py.File(os.path.join(d, "a.h5"), "w") as f:
        ...     f["x"] = np.zeros(3)
        ...     f["y"] = h5py.ExternalLink("other.h5", "/z")
        ...     hdf5_outside_file(f, "x"), hdf5_outside_file(f, "y")
        (None, 'is an external link to other.h5:/z')
    """
    import h5py

    if name is None:
        return _storage_problem(group, h5py)
    return _walk(group, name, h5py, 0)


def _walk(group, name, h5py, depth):
    if depth > MAX_SOFT_LINKS:
        return "has too many nested soft links"
    node = group
    parts = [p for p in name.split("/") if p]
    if name.startswith("/"):
        node = group.file
    for part in parts:
        if not isinstance(node, h5py.Group):
            return None
        try:
            link = node.get(part, getlink=True)
        except (KeyError, OSError, RuntimeError, ValueError, TypeError):
            return "has a link of an unsupported kind"
        if link is None:
            return None
        if isinstance(link, h5py.ExternalLink):
            return f"is an external link to {link.filename}:{link.path}"
        if isinstance(link, h5py.SoftLink):
            problem = _walk(node.file, link.path, h5py, depth + 1)
            if problem is not None:
                return problem
        elif not isinstance(link, h5py.HardLink):
            return "is a link of an unsupported kind"
        try:
            node = node[part]
        except (KeyError, OSError, RuntimeError, ValueError):
            return None
    return _storage_problem(node, h5py)


def _storage_problem(obj, h5py):
    if not isinstance(obj, h5py.Dataset):
        return None
    if obj.is_virtual:
        return "is a virtual dataset (its data comes from other files)"
    if obj.external:
        files = ", ".join(str(e[0]) for e in obj.external)
        return f"keeps its data in external file(s) {files}"
    return None
