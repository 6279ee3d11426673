"""The gallery of a search: a folder of images (features cached as a dump) or a dump.

A folder is listed recursively (files whose suffix is one of
``data_prep.IMAGE_SUFFIXES``, case-insensitive; hidden files and folders are
skipped), in sorted order of the path relative to the folder. Its features are
cached as a feature dump (``reference.write_dump``) whose file name carries
two keys:

- the model key: SHA-256 of the model file's bytes;
- the listing key: SHA-256 of the listing, every image's relative path, size
  and modification time (ns), and of the cache format version.

The dump goes next to the folder (``PARENT/NAME.reid-search-MMMMMMMMMMMM-LLLLLLLLLLLL.h5``)
when the parent directory is writable, otherwise under the cache directory
(``CACHE/search/NAME-PPPPPPPP.reid-search-...h5``, ``PPPPPPPP`` from the
folder's absolute path; ``CACHE`` is ``$ALIGNEDREID_CACHE`` or
``~/.cache/alignedreid`` unless given). It is reused when a file of that name
exists, reads as a valid dump and lists the same images; a new one replaces
the older caches of the same folder and model. Its gallery split holds the
folder's images (``pid`` -1, ``camid`` 0, ``path`` absolute, so the dump
can itself be given as a gallery);
its query split is a copy of the first gallery row, since a dump needs at
least one row per split.
"""

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np

from reid_common import one_line

CACHE_FORMAT = 1
CACHE_TAG = ".reid-search-"


class GalleryError(ValueError):
    """A gallery that cannot be searched (missing, empty, unreadable); one line."""


@dataclass
class Gallery:
    """The features of a search's gallery.

    Attributes:
        paths: G image paths, as they open from the current directory when the
            files exist (a folder's path joined with the relative path; a
            dump's paths resolved like ``reid-evaluate`` does).
        features: dict with ``global`` [G, C] float32 and maybe ``local``
            [G, H, c] float32.
        source: the folder or dump given.
        cache: the cache dump read or written (None for a dump).
        cache_hit: True when the features came from an existing cache.
    """

    paths: list
    features: dict
    source: str
    cache: object = None
    cache_hit: bool = False


def list_images(folder):
    """The image files under ``folder``, relative to it, sorted.

    Args:
        folder: a directory.

    Returns:
        list of relative paths (``/``-separated on POSIX).

    Example:
        >>> import os
        >>> os.makedirs("photos/b", exist_ok=True)
        >>> for name in ("photos/b/2.JPG", "photos/1.png", "photos/notes.txt"):
        ...     _ = open(name, "wb").write(b"")
        >>> list_images("photos")
        ['1.png', 'b/2.JPG']
    """
    from data_prep import IMAGE_SUFFIXES

    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES):
                out.append(os.path.relpath(os.path.join(root, name), folder))
    return sorted(out)


def listing_key(folder, relpaths):
    """SHA-256 (hex) of the images' relative paths, sizes and modification times.

    Example:
        >>> import os
        >>> os.makedirs("shots", exist_ok=True)
        >>> _ = open("shots/a.jpg", "wb").write(b"x")
        >>> key = listing_key("shots", ["a.jpg"])
        >>> _ = open("shots/a.jpg", "wb").write(b"xy")
        >>> key == listing_key("shots", ["a.jpg"]), len(key)
        (False, 64)
    """
    rows = []
    for rel in relpaths:
        st = os.stat(os.path.join(folder, rel))
        rows.append([rel, st.st_size, st.st_mtime_ns])
    text = json.dumps({"format": CACHE_FORMAT, "images": rows}, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_key(path):
    """SHA-256 (hex) of a file's bytes.

    Example:
        >>> _ = open("m.bin", "wb").write(b"abc")
        >>> file_key("m.bin")[:12]
        'ba7816bf8f01'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_prefixes(folder, cache_root):
    """Where the caches of ``folder`` may be, without their keys: next to it
    (when its parent directory is writable), then under ``cache_root/search``.

    Returns:
        list of paths up to ``.reid-search-``.

    Example:
        >>> import os
        >>> os.makedirs("people", exist_ok=True)
        >>> [os.path.basename(p) for p in cache_prefixes("people", "/c")][0]
        'people'
    """
    absolute = os.path.abspath(folder)
    parent, name = os.path.split(absolute)
    name = name or "root"
    tag = hashlib.sha256(absolute.encode("utf-8")).hexdigest()[:8]
    under = os.path.join(os.fspath(cache_root), "search", f"{name}-{tag}")
    return ([os.path.join(parent, name)] if os.access(parent, os.W_OK) else []) + [under]


def cache_file(prefix, model_key, listing):
    """``PREFIX.reid-search-<model key 12>-<listing key 12>.h5``."""
    return f"{prefix}{CACHE_TAG}{model_key[:12]}-{listing[:12]}.h5"


def read_cached(path, paths):
    """The gallery features of a cache dump, or None when it is absent, invalid
    or lists other images than ``paths`` (absolute)."""
    from reference import DumpError, read_dump

    if not os.path.isfile(path):
        return None
    try:
        dump = read_dump(path)
    except DumpError:
        return None
    if list(dump.gallery.get("path") or []) != list(paths):
        return None
    return {k: dump.gallery[k] for k in ("global", "local") if k in dump.gallery}


def write_cache(path, features, paths, *, model_name, folder):
    """Write the cache dump of a folder (atomically); remove the older caches of
    the same folder and model.

    Returns:
        the path written.

    Raises:
        reference.DumpError: it cannot be written.
    """
    from reference import write_dump

    n = len(paths)
    gallery = dict(features, pid=np.full(n, -1, np.int64), camid=np.zeros(n, np.int64),
                   path=list(paths))
    query = {k: v[:1] for k, v in features.items()}
    query.update(pid=gallery["pid"][:1], camid=gallery["camid"][:1], path=list(paths[:1]))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_dump(path, query, gallery, protocol="market1501", model=model_name,
               dataset=os.path.basename(os.path.abspath(folder)))
    stem = path[: path.rindex("-") + 1]
    directory = os.path.dirname(path)
    for name in os.listdir(directory):
        other = os.path.join(directory, name)
        if other != path and other.startswith(stem) and name.endswith(".h5"):
            try:
                os.unlink(other)
            except OSError:
                pass
    return path


def folder_gallery(folder, *, extract, model_path, model_name, cache_root, use_cache=True,
                   say=None):
    """The features of a folder of images, from its cache or extracted (and cached).

    Args:
        folder: a directory of images (searched recursively).
        extract: callable ``extract(paths) -> {"global", ["local"]}`` (the
            model's features of those files, in order).
        model_path: the model file (its bytes are the model key).
        model_name: description stored in the dump's ``model`` attribute.
        cache_root: the directory used when the folder's parent is not writable.
        use_cache: False extracts every time and writes no cache.
        say: callable taking one progress message, or None.

    Returns:
        :class:`Gallery`.

    Raises:
        GalleryError: the folder has no images.
    """
    say = say or (lambda message: None)
    relpaths = list_images(folder)
    if not relpaths:
        raise GalleryError(f"{folder}: no images (looked for *{', *'.join(_suffixes())}, "
                           "recursively)")
    paths = [os.path.join(folder, rel) for rel in relpaths]
    absolute = [os.path.join(os.path.abspath(folder), rel) for rel in relpaths]
    if not use_cache:
        return Gallery(paths=paths, features=extract(paths), source=folder)
    model_key, listing = file_key(model_path), listing_key(folder, relpaths)
    targets = [cache_file(prefix, model_key, listing)
               for prefix in cache_prefixes(folder, cache_root)]
    for target in targets:
        features = read_cached(target, absolute)
        if features is not None:
            say(f"gallery features of {len(paths)} images from the cache {target}")
            return Gallery(paths=paths, features=features, source=folder, cache=target,
                           cache_hit=True)
    features = extract(paths)
    from reference import DumpError

    for target in targets:
        try:
            write_cache(target, features, absolute, model_name=model_name, folder=folder)
        except (DumpError, OSError) as exc:
            say(f"cannot write the cache {target}: {one_line(exc)}")
            continue
        say(f"gallery features cached in {target}")
        return Gallery(paths=paths, features=features, source=folder, cache=target)
    return Gallery(paths=paths, features=features, source=folder)


def _suffixes():
    from data_prep import IMAGE_SUFFIXES

    return IMAGE_SUFFIXES


def dump_gallery(path):
    """The gallery split of a feature dump, paths resolved as ``reid-evaluate`` does.

    Raises:
        reference.DumpError: the dump cannot be read.
    """
    from reference import read_dump, resolve_image

    dump = read_dump(path)
    root = dump.attrs.get("image_root") or None
    names = dump.gallery.get("path")
    if names is None:
        paths = [f"{path}[gallery {i}]" for i in range(dump.num_gallery)]
    else:
        paths = [resolve_image(name, root, dump) or name for name in names]
    features = {k: dump.gallery[k] for k in ("global", "local") if k in dump.gallery}
    return Gallery(paths=paths, features=features, source=path)
