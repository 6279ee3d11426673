"""The prepared synthetic dataset, generated once per set of knobs and reused."""

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from data_prep._io import PrepError
from reid_common import atomic_write_json

from .config import FORMAT, VERSION
from .writer import generate


def prepare(final, **knobs):
    """Generate the synthetic dataset and prepare it, once, into ``final``.

    The images are generated in Market-1501 layout into a temporary folder
    beside ``final``, converted by the ``market1501`` converter (hard links)
    into ``prepared/``, and the folder is moved onto ``final`` with one
    ``os.replace``, together with ``knobs.json``. A ``final`` that already
    holds a prepared dataset is reused as it is; an incomplete one is
    replaced.

    Args:
        final: the dataset folder (``final/prepared`` receives the manifest).
        **knobs: keyword arguments of :func:`generate`.

    Returns:
        ``Path`` of the prepared dataset (``final/prepared``).

    Raises:
        PrepError: a knob is invalid.

    Example:
        >>> import tempfile
        >>> final = Path(tempfile.mkdtemp()) / "small"
        >>> prepared = prepare(final, num_identities=4, images_per_identity=4,
        ...                    height=32, width=16)
        >>> prepared == final / "prepared", (prepared / "manifest.jsonl").is_file()
        (True, True)
    """
    from data_prep.market1501 import convert

    final = Path(final)
    prepared = final / "prepared"
    if (prepared / "manifest.jsonl").is_file():
        return prepared
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        try:
            generate(tmp / "raw", **knobs)
        except TypeError as exc:
            raise PrepError(str(exc)) from None
        convert(tmp / "raw", tmp / "prepared", dataset="market1501", mode="link", quiet=True)
        shutil.rmtree(tmp / "raw")
        atomic_write_json(tmp / "knobs.json", knobs, sort_keys=False)
        if final.exists():
            shutil.rmtree(final)  # an incomplete earlier attempt
        try:
            os.replace(tmp, final)
        except OSError:
            if not (prepared / "manifest.jsonl").is_file():  # another process won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return prepared


def cache_key(knobs):
    """The cache key of a synthetic dataset: a hash of the generator knobs,
    the dataset format and the generator version.

    Args:
        knobs: keyword arguments of :func:`generate`.

    Returns:
        str of 12 hex digits.
    """
    key = json.dumps({"knobs": knobs, "format": FORMAT, "version": VERSION},
                     sort_keys=True, default=list)
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def prepare_cached(root, **knobs):
    """The prepared synthetic dataset of ``knobs`` under the cache folder ``root``.

    Generated once into ``root/synthetic-<cache_key>`` by :func:`prepare`;
    a later call with the same knobs (and generator version) reuses it.

    Args:
        root: the cache folder (created if missing).
        **knobs: keyword arguments of :func:`generate`.

    Returns:
        ``Path`` of the prepared dataset (holds ``manifest.jsonl``).

    Raises:
        PrepError: a knob is invalid, or ``root`` cannot be created.
    """
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PrepError(f"{root}: cannot create the cache folder: {exc.strerror}") from None
    return prepare(root / f"synthetic-{cache_key(knobs)}", **knobs)
