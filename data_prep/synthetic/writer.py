"""Writing the dataset: the plan rendered into Market-1501 folders, resumably."""

import json
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from data_prep._io import PrepError
from reid_common import atomic_write_bytes, atomic_write_json

from .config import FOLDERS, FORMAT, VERSION, SyntheticConfig
from .plan import plan_images, render_planned
from .render import encode_jpeg
from .scene import make_cameras


def _config_dict(cfg):
    return {f.name: getattr(cfg, f.name) for f in fields(cfg)}


def _write_chunk(job, images=None, state=None):
    """Render and write images [a, b) of the plan; returns (infos, written, skipped).

    Runs in the calling process (``images``/``state`` given) or in a worker,
    which rebuilds the plan from the configuration (it is deterministic)."""
    config, dst, same, a, b = job
    cfg = SyntheticConfig(**config)
    if images is None:
        specs, _, d_specs, images = plan_images(cfg)
        cameras = make_cameras(cfg.num_cameras, cfg.camera_strength,
                               np.random.default_rng((cfg.seed, 3)))
        state = (specs, d_specs, cameras, {})
    specs, d_specs, cameras, templates = state
    infos, written, skipped = [], 0, 0
    for k in range(a, b):
        r = images[k]
        path = Path(dst) / r["folder"] / r["file"]
        img, info = render_planned(k, r, cfg, specs, d_specs, cameras, templates)
        infos.append(info)
        if same and path.is_file():
            skipped += 1
        else:
            atomic_write_bytes(path, encode_jpeg(img, cfg.jpeg_quality))
            written += 1
    return infos, written, skipped


def _read_previous(dst):
    meta = dst / "synthetic.json"
    if not meta.is_file():
        return None
    try:
        prev = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    return prev if isinstance(prev, dict) and prev.get("format") == FORMAT else None


def is_synthetic_folder(folder):
    """Whether ``folder`` holds a dataset written by :func:`generate` (its ``synthetic.json``).

    Example:
        >>> import tempfile
        >>> is_synthetic_folder(tempfile.mkdtemp())
        False
    """
    folder = Path(folder)
    return folder.is_dir() and _read_previous(folder) is not None


def generate(dst, *, num_identities=300, num_cameras=6, images_per_identity=16, height=128,
             width=64, seed=0, overwrite=False, progress=None, workers=1, **knobs):
    """Write the synthetic dataset in Market-1501 layout and naming.

    Layout: ``DST/bounding_box_train/`` (train identities, pids
    1..ceil(n/2)), ``DST/query/`` (one image per test identity per camera),
    ``DST/bounding_box_test/`` (the other test images, distractors pid 0000,
    junk pid -1), ``DST/synthetic.json`` (format, knobs, seed, identity specs,
    look-alike pairs, counts) and ``DST/synthetic_images.jsonl`` (one line per
    image: file, folder, pid, camid, kind, shift, scale, occluder, blur).

    Writing is resumable: images are written atomically, and a DST holding a
    previous synthetic output with the same knobs keeps the files it has. A
    previous output with other knobs is rewritten (stale images removed). A
    non-empty DST that is not a synthetic output is refused unless
    ``overwrite``.

    Args:
        dst: output directory.
        num_identities, num_cameras, images_per_identity, height, width, seed:
            see :class:`SyntheticConfig`.
        overwrite: allow writing into a non-empty DST that is not a synthetic
            output (its image folders' ``*.jpg`` files not in the plan are removed).
        progress: optional callable(done, total).
        workers: processes rendering in parallel (the files do not depend on it).
        **knobs: the other :class:`SyntheticConfig` fields (vertical_shift, ...).

    Returns:
        dict with "config", "counts" ({folder: images}), "identities" (specs,
        index = pid - 1), "lookalike_pairs" ([pid_a, pid_b, part]), "images"
        (the per-image records), "written", "skipped", "seconds".

    Raises:
        PrepError: bad knob or unusable DST (one-line message).

    Example:
        >>> import tempfile
        >>> info = generate(tempfile.mkdtemp(), num_identities=4, images_per_identity=4,
        ...                 height=32, width=16)
        >>> info["counts"]["query"] > 0, info["written"] == len(info["images"])
        (True, True)
    """
    t0 = time.perf_counter()
    names = {f.name for f in fields(SyntheticConfig)}
    unknown = sorted(set(knobs) - names)
    if unknown:
        raise PrepError(f"synthetic: unknown knob {unknown[0]!r}")
    try:
        cfg = SyntheticConfig(num_identities=num_identities, num_cameras=num_cameras,
                              images_per_identity=images_per_identity, height=height,
                              width=width, seed=seed, **knobs).validate()
    except TypeError as exc:
        raise PrepError(f"synthetic: {exc}") from None
    dst = Path(dst)
    if dst.exists() and not dst.is_dir():
        raise PrepError(f"{dst}: DST exists and is not a directory")
    prev = _read_previous(dst) if dst.is_dir() else None
    nonempty = dst.is_dir() and any(dst.iterdir())
    if nonempty and prev is None and not overwrite:
        raise PrepError(f"{dst}: DST is not empty and holds no synthetic dataset "
                        "(use --overwrite to write into it)")
    config = _config_dict(cfg)
    same = prev is not None and prev.get("config") == config and prev.get("version") == VERSION

    specs, pairs, d_specs, images = plan_images(cfg)
    cameras = make_cameras(cfg.num_cameras, cfg.camera_strength,
                           np.random.default_rng((cfg.seed, 3)))
    try:
        for folder in FOLDERS:
            (dst / folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PrepError(f"{dst}: cannot create DST: {exc.strerror or exc}") from None
    counts = {f: sum(1 for r in images if r["folder"] == f) for f in FOLDERS}
    meta = {"format": FORMAT, "version": VERSION, "complete": False, "config": config,
            "layout": "market1501", "counts": counts,
            "lookalike_pairs": [list(p) for p in pairs],
            "identities": specs}
    atomic_write_json(dst / "synthetic.json", meta, sort_keys=False)
    if not same:   # remove stale images of another configuration
        planned = {(r["folder"], r["file"]) for r in images}
        for folder in FOLDERS:
            for p in (dst / folder).iterdir():
                if p.suffix.lower() == ".jpg" and (folder, p.name) not in planned:
                    p.unlink()
    written = skipped = 0
    chunks = [(start, min(start + 256, len(images))) for start in range(0, len(images), 256)]
    jobs = [(config, str(dst), same, a, b) for a, b in chunks]
    done = 0
    if workers > 1 and len(chunks) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=int(workers), mp_context=ctx) as pool:
            results = pool.map(_write_chunk, jobs)
            for (a, b), (infos, w, sk) in zip(chunks, results):
                for r, info in zip(images[a:b], infos):
                    r.update(info)
                written, skipped, done = written + w, skipped + sk, done + b - a
                if progress is not None:
                    progress(done, len(images))
    else:
        state = (specs, d_specs, cameras, {})
        for (a, b), job in zip(chunks, jobs):
            infos, w, sk = _write_chunk(job, images, state)
            for r, info in zip(images[a:b], infos):
                r.update(info)
            written, skipped, done = written + w, skipped + sk, done + b - a
            if progress is not None:
                progress(done, len(images))
    lines = [json.dumps({key: r[key] for key in ("file", "folder", "pid", "camid", "kind",
                                                  "shift", "scale", "occluder", "blur")})
             for r in images]
    atomic_write_bytes(dst / "synthetic_images.jsonl", ("\n".join(lines) + "\n").encode())
    meta["complete"] = True
    atomic_write_json(dst / "synthetic.json", meta, sort_keys=False)
    return {"config": config, "counts": counts, "identities": specs,
            "lookalike_pairs": [list(p) for p in pairs], "images": images,
            "written": written, "skipped": skipped,
            "seconds": round(time.perf_counter() - t0, 3)}
