"""Small studies for the human-study tests: feature dumps with real image files."""

import os
from pathlib import Path

import numpy as np
import pytest

from reference import write_dump

# Market-style names carry the pid; these pids are distinctive strings to scan for.
PIDS = (7311, 7422, 7533, 7644, 7755, 7866)


def image_name(pid, cam, i):
    head = "-1" if pid == -1 else f"{pid:04d}"
    return f"{head}_c{cam}s1_{i:06d}_00.jpg"


def write_images(root, rel_paths, seed=0):
    """Write a small JPEG for every relative path under ``root``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for rel in rel_paths:
        path = Path(root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        Image.new("RGB", (16, 32), colour).save(path, format="JPEG")


def build_dump(tmp_path, *, q_pids, q_cams, g_pids, g_cams, q_feats, g_feats,
               protocol="market1501", name="d.h5", images=True):
    """A dump with image paths ``query/NAME`` and ``bounding_box_test/NAME``; returns (dump, root)."""
    root = Path(tmp_path) / "images"
    q_paths = [f"query/{image_name(p, c, i)}" for i, (p, c) in enumerate(zip(q_pids, q_cams))]
    g_paths = [f"bounding_box_test/{image_name(p, c, i)}"
               for i, (p, c) in enumerate(zip(g_pids, g_cams))]
    if images:
        write_images(root, q_paths + g_paths)
    query = {"global": np.asarray(q_feats, np.float32), "pid": np.asarray(q_pids),
             "camid": np.asarray(q_cams), "path": q_paths}
    gallery = {"global": np.asarray(g_feats, np.float32), "pid": np.asarray(g_pids),
               "camid": np.asarray(g_cams), "path": g_paths}
    path = os.path.join(tmp_path, name)
    write_dump(path, query, gallery, protocol=protocol, model="test features", dataset="test")
    return path, str(root)


def random_population(seed, num_query=12, per_id=8, distractors=30, dim=8,
                      protocol="market1501"):
    """Queries of the PIDS identities against a gallery with several matches per identity,
    same-camera images of the query's identity, distractors (pid 0) and junk (pid -1)."""
    rng = np.random.default_rng(seed)
    centres = {p: rng.normal(size=dim) for p in PIDS}
    q_pids = [PIDS[i % len(PIDS)] for i in range(num_query)]
    q_cams = [1 + i % 3 for i in range(num_query)]
    g_pids, g_cams = [], []
    for p in PIDS:
        g_pids += [p] * per_id
        g_cams += [1 + k % 4 for k in range(per_id)]
    g_pids += [0] * distractors + [-1] * 4
    g_cams += list(rng.integers(1, 5, distractors + 4))

    def feats(pids, scale):
        return np.stack([(centres[p] if p in centres else np.zeros(dim)) * 0.8
                         + rng.normal(scale=scale, size=dim) for p in pids])

    return dict(q_pids=q_pids, q_cams=q_cams, g_pids=g_pids, g_cams=[int(c) for c in g_cams],
                q_feats=feats(q_pids, 0.7), g_feats=feats(g_pids, 0.7), protocol=protocol)


@pytest.fixture
def population_dump(tmp_path):
    return build_dump(tmp_path, **random_population(0))


@pytest.fixture
def small_study(tmp_path, population_dump):
    """A study of 6 queries with 10 candidates each (market1501 protocol)."""
    from human_study import create_study

    dump, root = population_dump
    out = str(tmp_path / "study.sqlite")
    create_study(dump, out, queries=6, seed=3, candidates=10, image_root=root)
    return out
