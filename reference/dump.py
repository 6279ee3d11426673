"""The HDF5 feature dump: the file a trained model's features travel in.

A dump holds the query and gallery features of one test set together with
their identities, cameras and (optionally) image paths and per-query gallery
lists. ``reid_tf.extract`` writes it; ``reid-evaluate`` scores it; any other
tool that writes the same layout can be scored too. The layout is described in
``docs/feature_dump.md``.

Reading validates everything the evaluation relies on (shapes, dtypes,
finiteness, consistent lengths, well-formed gallery lists). Every problem is
reported as a :class:`DumpError` with a single line ``FILE: DATASET: problem``.
"""

import dataclasses
import datetime
import os

import numpy as np

from reid_common import atomic_path

SCHEMA_VERSION = 1
SPLITS = ("query", "gallery")
_ATTRS = ("schema_version", "protocol", "model", "dataset", "created", "image_root")
_INT64 = np.iinfo(np.int64)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class DumpError(ValueError):
    """A feature dump that cannot be read or written; one line ``FILE: DATASET: problem``."""

    def __init__(self, path, dataset, problem):
        self.path = str(path)
        self.dataset = dataset
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {dataset}: {self.problem}")


@dataclasses.dataclass
class FeatureDump:
    """The content of one feature dump.

    Attributes:
        path: the file it was read from.
        query: dict with ``global`` [Q, C] float32, ``pid`` [Q] int64,
            ``camid`` [Q] int64 and, when stored, ``local`` [Q, Hq, c] float32
            and ``path`` list[str].
        gallery: the same for the G gallery items.
        attrs: dict with ``schema_version`` (int), ``protocol``, ``model``,
            ``dataset``, ``created`` and ``image_root`` (str; ``""`` when the
            file does not record one).
        gallery_lists: list of Q int64 arrays (query i's gallery indices), or
            None when the dump has no ``protocol`` group.
    """

    path: str
    query: dict
    gallery: dict
    attrs: dict
    gallery_lists: list = None

    @property
    def num_query(self):
        """Number of query items Q."""
        return len(self.query["pid"])

    @property
    def num_gallery(self):
        """Number of gallery items G."""
        return len(self.gallery["pid"])

    @property
    def has_local(self):
        """True when both query and gallery carry local features."""
        return "local" in self.query and "local" in self.gallery


# ----------------------------------------------------------------------------
# validation shared by reading and writing


def _check_split(path, split, data):
    """Validate and convert one split's arrays; ``data`` maps dataset -> array."""
    out = {}
    name = f"{split}/global"
    if "global" not in data or data["global"] is None:
        raise DumpError(path, name, "missing (required)")
    out["global"] = _float_array(path, name, data["global"], 2)
    n = out["global"].shape[0]
    if n == 0:
        raise DumpError(path, name, "has no rows; a dump needs at least one item per split")
    if out["global"].shape[1] == 0:
        raise DumpError(path, name, f"has zero feature channels (shape {out['global'].shape})")
    for key in ("pid", "camid"):
        if key not in data or data[key] is None:
            raise DumpError(path, f"{split}/{key}", "missing (required)")
        out[key] = _int_array(path, f"{split}/{key}", data[key], n)
    if data.get("local") is not None:
        name = f"{split}/local"
        local = _float_array(path, name, data["local"], 3)
        if local.shape[0] != n:
            raise DumpError(
                path, name, f"has {local.shape[0]} rows but {split}/global has {n}"
            )
        if local.shape[1] == 0 or local.shape[2] == 0:
            raise DumpError(path, name, f"has an empty axis (shape {local.shape})")
        out["local"] = local
    if data.get("path") is not None:
        out["path"] = _string_list(path, f"{split}/path", data["path"], n)
    return out


def _float_array(path, name, value, ndim):
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.floating):
        raise DumpError(path, name, f"expected float32, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        want = "[N, C]" if ndim == 2 else "[N, H, c]"
        raise DumpError(path, name, f"expected a {ndim}-d array {want}, got shape {arr.shape}")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = arr.size - int(np.count_nonzero(finite))
        raise DumpError(path, name, f"contains {bad} NaN or infinite value(s)")
    if arr.dtype.itemsize > 4 and arr.size:
        big = np.abs(arr) > _FLOAT32_MAX
        if big.any():
            raise DumpError(
                path, name,
                f"{int(np.count_nonzero(big))} value(s) beyond the float32 range "
                f"(largest magnitude {float(np.abs(arr).max()):.3g} > {_FLOAT32_MAX:.3g})",
            )
    return np.ascontiguousarray(arr, dtype=np.float32)


def _int_array(path, name, value, n):
    try:
        arr = np.asarray(value)
    except (OverflowError, ValueError, TypeError) as exc:
        raise DumpError(path, name, f"expected int64 values: {exc}") from None
    if arr.dtype == object and arr.ndim == 1 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr):
        bad = next((int(v) for v in arr if not _INT64.min <= int(v) <= _INT64.max), None)
        if bad is not None:
            raise DumpError(path, name, f"value {bad} does not fit a 64-bit signed integer")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise DumpError(path, name, f"expected int64, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise DumpError(path, name, f"expected a 1-d array [N], got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        split = name.split("/")[0]
        raise DumpError(path, name, f"has length {arr.shape[0]} but {split}/global has {n} rows")
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size:
        top = int(arr.max())
        if top > _INT64.max:
            raise DumpError(path, name, f"value {top} does not fit a 64-bit signed integer")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _string_list(path, name, value, n):
    if isinstance(value, (str, bytes)):
        raise DumpError(path, name, "expected a list of strings, got a single string")
    arr = np.asarray(value, dtype=object)
    if arr.ndim != 1:
        raise DumpError(path, name, f"expected a 1-d list of strings [N], got shape {arr.shape}")
    if arr.shape[0] != n:
        split = name.split("/")[0]
        raise DumpError(path, name, f"has length {arr.shape[0]} but {split}/global has {n} rows")
    out = []
    for item in arr:
        if isinstance(item, bytes):
            try:
                item = item.decode("utf-8")
            except UnicodeDecodeError:
                raise DumpError(path, name, "contains a string that is not valid UTF-8") from None
        if not isinstance(item, str):
            raise DumpError(path, name, f"expected strings, got {type(item).__name__}")
        out.append(item)
    return out


def _check_gallery_lists(path, offsets, indices, num_query, num_gallery):
    """Validate the CSR pair and return a list of Q index arrays."""
    offsets = _int_array(path, "protocol/gallery_offsets", offsets, None)
    indices = _int_array(path, "protocol/gallery_indices", indices, None)
    if offsets.shape[0] != num_query + 1:
        raise DumpError(
            path,
            "protocol/gallery_offsets",
            f"has length {offsets.shape[0]}, expected Q + 1 = {num_query + 1}",
        )
    if offsets[0] != 0:
        raise DumpError(
            path, "protocol/gallery_offsets", f"must start at 0, starts at {offsets[0]}"
        )
    steps = np.diff(offsets)
    if np.any(steps < 0):
        i = int(np.flatnonzero(steps < 0)[0])
        raise DumpError(
            path,
            "protocol/gallery_offsets",
            f"not monotone: offsets[{i + 1}] = {offsets[i + 1]} < offsets[{i}] = {offsets[i]}",
        )
    if offsets[-1] != indices.shape[0]:
        raise DumpError(
            path,
            "protocol/gallery_offsets",
            f"ends at {offsets[-1]} but protocol/gallery_indices has length {indices.shape[0]}",
        )
    bad = (indices < 0) | (indices >= num_gallery)
    if np.any(bad):
        k = int(np.flatnonzero(bad)[0])
        raise DumpError(
            path,
            "protocol/gallery_indices",
            f"index {indices[k]} at position {k} is out of range [0, {num_gallery})",
        )
    return [indices[offsets[i]:offsets[i + 1]].copy() for i in range(num_query)]


def _check_dims(path, query, gallery):
    if query["global"].shape[1] != gallery["global"].shape[1]:
        raise DumpError(
            path,
            "gallery/global",
            f"has {gallery['global'].shape[1]} channels but query/global has "
            f"{query['global'].shape[1]}",
        )
    if ("local" in query) != ("local" in gallery):
        missing = "gallery" if "local" in query else "query"
        other = "query" if missing == "gallery" else "gallery"
        raise DumpError(path, f"{missing}/local", f"missing while {other}/local is present")
    if "local" in query and query["local"].shape[2] != gallery["local"].shape[2]:
        raise DumpError(
            path,
            "gallery/local",
            f"has {gallery['local'].shape[2]} channels per part but query/local has "
            f"{query['local'].shape[2]}",
        )


# ----------------------------------------------------------------------------
# writing


def write_dump(
    path,
    query,
    gallery,
    *,
    protocol="market1501",
    model="",
    dataset="",
    gallery_lists=None,
    image_root=None,
):
    """Write a feature dump atomically.

    The file is first written to a temporary file in the target directory and
    then moved over ``path`` with ``os.replace``: a reader never sees a
    half-written dump, an existing file is left untouched when writing fails,
    and no temporary file is left behind.

    Args:
        path: the target ``.h5`` file.
        query: dict with ``global`` [Q, C] float, ``pid`` [Q] int, ``camid``
            [Q] int and optionally ``local`` [Q, H, c] float and ``path``
            (Q strings).
        gallery: the same for the G gallery items.
        protocol: evaluation protocol stored as the ``protocol`` attribute
            (``market1501``, ``cuhk03``, ``cuhk-sysu``, ...).
        model: free-form description of the model (attribute ``model``).
        dataset: dataset name (attribute ``dataset``).
        gallery_lists: None, or a list of Q integer arrays: query i is ranked
            against gallery items ``gallery_lists[i]`` only (CUHK-SYSU).
        image_root: the directory the ``path`` entries are relative to (the
            prepared dataset's directory), stored as the ``image_root``
            attribute; reports only draw images inside it. None: not stored.

    Returns:
        The path written, as a str.

    Raises:
        DumpError: when an input is malformed; nothing is written then.

    Example:
        >>> import numpy as np, tempfile, os
        >>> split = {"global": np.zeros((2, 4), np.float32),
        ...          "pid": np.array([1, 2]), "camid": np.array([1, 1])}
        >>> out = write_dump(os.path.join(tempfile.mkdtemp(), "d.h5"), split, split)
        >>> read_dump(out).query["global"].shape
        (2, 4)
    """
    import h5py

    path = os.fspath(path)
    if not isinstance(query, dict) or not isinstance(gallery, dict):
        raise DumpError(path, "/", "query and gallery must be dicts of arrays")
    q = _check_split(path, "query", query)
    g = _check_split(path, "gallery", gallery)
    _check_dims(path, q, g)
    if image_root is not None:
        image_root = os.path.abspath(os.fspath(image_root))
    for key, value in (("protocol", protocol), ("model", model), ("dataset", dataset),
                       ("image_root", "" if image_root is None else image_root)):
        if not isinstance(value, str):
            raise DumpError(path, "/", f"attribute {key} must be a str, got {type(value).__name__}")
    if not protocol:
        raise DumpError(path, "/", "attribute protocol must not be empty")
    offsets = indices = None
    if gallery_lists is not None:
        if len(gallery_lists) != len(q["pid"]):
            raise DumpError(
                path,
                "protocol/gallery_offsets",
                f"gallery_lists has {len(gallery_lists)} entries but there are "
                f"{len(q['pid'])} queries",
            )
        lists = []
        for x in gallery_lists:
            x = np.asarray(x)
            if x.size == 0:
                x = np.zeros(0, np.int64)
            lists.append(_int_array(path, "protocol/gallery_indices", x.reshape(-1), None))
        offsets = np.zeros(len(lists) + 1, np.int64)
        offsets[1:] = np.cumsum([len(x) for x in lists])
        indices = np.concatenate(lists) if lists else np.zeros(0, np.int64)
        _check_gallery_lists(path, offsets, indices, len(q["pid"]), len(g["pid"]))

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise DumpError(path, "/", f"directory {directory} does not exist")
    try:
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["schema_version"] = np.int64(SCHEMA_VERSION)
            f.attrs["protocol"] = protocol
            f.attrs["model"] = model
            f.attrs["dataset"] = dataset
            if image_root is not None:
                f.attrs["image_root"] = image_root
            f.attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            )
            _write_split(f, "query", q)
            _write_split(f, "gallery", g)
            if offsets is not None:
                grp = f.create_group("protocol")
                grp.create_dataset("gallery_offsets", data=offsets)
                grp.create_dataset("gallery_indices", data=indices)
    except OSError as exc:
        raise DumpError(path, "/", f"cannot write: {exc}") from None
    return path


def _write_split(f, split, data):
    grp = f.create_group(split)
    grp.create_dataset("global", data=data["global"])
    grp.create_dataset("pid", data=data["pid"])
    grp.create_dataset("camid", data=data["camid"])
    if "local" in data:
        grp.create_dataset("local", data=data["local"])
    if "path" in data:
        import h5py

        grp.create_dataset(
            "path", data=data["path"], dtype=h5py.string_dtype(encoding="utf-8")
        )


# ----------------------------------------------------------------------------
# reading


def read_dump(path):
    """Read and validate a feature dump.

    Args:
        path: the ``.h5`` file.

    Returns:
        A :class:`FeatureDump`; features are float32 and ids int64 whatever
        numeric width the file stores them in.

    Raises:
        DumpError: a one-line ``FILE: DATASET: problem`` for a missing file, a
            file that is not HDF5, a missing dataset or attribute, a wrong
            shape or dtype, NaN/Inf features, lengths that disagree, or
            malformed gallery lists.

    Example:
        >>> import numpy as np
        >>> split = {"global": np.zeros((3, 8), np.float32), "pid": [1, 2, 3],
        ...          "camid": [1, 1, 2], "path": ["a.jpg", "b.jpg", "c.jpg"]}
        >>> dump = read_dump(write_dump("features.h5", split, split, protocol="market1501"))
        >>> dump.query["global"].shape, dump.attrs["protocol"]
        ((3, 8), 'market1501')
    """
    import h5py

    path = os.fspath(path)
    if not os.path.exists(path):
        raise DumpError(path, "/", "no such file")
    if os.path.isdir(path):
        raise DumpError(path, "/", "is a directory, not an HDF5 file")
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise DumpError(path, "/", f"cannot open: {exc}") from None
    if not is_hdf5:
        raise DumpError(path, "/", "not an HDF5 file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DumpError(path, "/", f"cannot open as HDF5: {exc}") from None
    try:
        with f:
            attrs = _read_attrs(path, f)
            splits = {}
            for split in SPLITS:
                splits[split] = _read_split(path, f, split)
            _check_dims(path, splits["query"], splits["gallery"])
            gallery_lists = None
            _check_inside(path, f, "protocol")
            if "protocol" in f:
                grp = f["protocol"]
                if not isinstance(grp, h5py.Group):
                    raise DumpError(path, "protocol", "expected a group")
                raw = {}
                for key in ("gallery_offsets", "gallery_indices"):
                    raw[key] = _read_dataset(path, f, f"protocol/{key}", required=True)
                gallery_lists = _check_gallery_lists(
                    path,
                    raw["gallery_offsets"],
                    raw["gallery_indices"],
                    len(splits["query"]["pid"]),
                    len(splits["gallery"]["pid"]),
                )
            elif attrs["protocol"].lower() == "cuhk-sysu":
                raise DumpError(
                    path,
                    "protocol/gallery_offsets",
                    "missing; protocol cuhk-sysu needs the per-query gallery lists",
                )
    except DumpError:
        raise
    except (OSError, RuntimeError, KeyError) as exc:
        # damaged metadata that h5py only notices while reading
        raise DumpError(path, "/", f"damaged HDF5 file: {exc}") from None
    return FeatureDump(
        path=path,
        query=splits["query"],
        gallery=splits["gallery"],
        attrs=attrs,
        gallery_lists=gallery_lists,
    )


def _read_attrs(path, f):
    attrs = {}
    for key in _ATTRS:
        if key not in f.attrs:
            if key in ("schema_version", "protocol"):
                raise DumpError(path, "/", f"missing root attribute {key}")
            attrs[key] = ""
            continue
        value = f.attrs[key]
        if isinstance(value, np.ndarray) and value.shape == ():
            value = value[()]
        if key == "schema_version":
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise DumpError(
                    path, "/", f"attribute schema_version must be an integer, got {value!r}"
                )
            if int(value) != SCHEMA_VERSION:
                raise DumpError(
                    path,
                    "/",
                    f"schema_version {int(value)} is not supported (this reader reads "
                    f"version {SCHEMA_VERSION})",
                )
            attrs[key] = int(value)
            continue
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise DumpError(path, "/", f"attribute {key} is not valid UTF-8") from None
        if not isinstance(value, str):
            raise DumpError(path, "/", f"attribute {key} must be a string, got {value!r}")
        attrs[key] = value
    if not attrs["protocol"]:
        raise DumpError(path, "/", "attribute protocol is empty")
    return attrs


def _check_inside(path, f, name):
    """DumpError when ``f[name]`` would read data from outside the file."""
    from data_prep import hdf5_outside_file

    problem = hdf5_outside_file(f, name)
    if problem is not None:
        raise DumpError(path, name, f"{problem}; a dump must hold its data itself")


def _read_split(path, f, split):
    import h5py

    _check_inside(path, f, split)
    if split not in f:
        raise DumpError(path, split, "missing group (required)")
    if not isinstance(f[split], h5py.Group):
        raise DumpError(path, split, "expected a group")
    data = {}
    for key in ("global", "pid", "camid"):
        data[key] = _read_dataset(path, f, f"{split}/{key}", required=True)
    data["local"] = _read_dataset(path, f, f"{split}/local", required=False)
    data["path"] = _read_dataset(path, f, f"{split}/path", required=False, strings=True)
    return _check_split(path, split, data)


def _read_dataset(path, f, name, required, strings=False):
    import h5py

    _check_inside(path, f, name)
    if name not in f:
        if required:
            raise DumpError(path, name, "missing (required)")
        return None
    ds = f[name]
    if not isinstance(ds, h5py.Dataset):
        raise DumpError(path, name, "expected a dataset, found a group")
    try:
        if strings:
            if h5py.check_string_dtype(ds.dtype) is None:
                raise DumpError(path, name, f"expected UTF-8 strings, got dtype {ds.dtype}")
            if ds.ndim != 1:
                raise DumpError(path, name, f"expected a 1-d array [N], got shape {ds.shape}")
            return list(ds.asstr(errors="strict")[()])
        if ds.dtype.kind not in "fiub":
            raise DumpError(path, name, f"expected a numeric array, got dtype {ds.dtype}")
        return ds[()]
    except DumpError:
        raise
    except UnicodeDecodeError:
        raise DumpError(path, name, "contains a string that is not valid UTF-8") from None
    except (OSError, ValueError, TypeError) as exc:
        raise DumpError(path, name, f"cannot read: {exc}") from None
