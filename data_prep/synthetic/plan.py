"""The dataset plan: every image's file name, identity, camera and kind."""

import numpy as np

from .identities import make_identities
from .render import render_image, render_template


def plan_images(cfg):
    """Decide every image: file name, identity, camera, kind. No rendering."""
    rng = np.random.default_rng((cfg.seed, 1))
    n_train = (cfg.num_identities + 1) // 2
    n_test = cfg.num_identities - n_train
    taken = set()
    specs_tr, pairs_tr = make_identities(n_train, cfg.lookalike_fraction, rng, taken)
    specs_te, pairs_te = make_identities(n_test, cfg.lookalike_fraction, rng, taken)
    specs = specs_tr + specs_te
    pairs = [(i + 1, j + 1, p) for i, j, p in pairs_tr] + \
            [(i + n_train + 1, j + n_train + 1, p) for i, j, p in pairs_te]
    images = []   # dicts: folder, pid, camid, source (identity index or distractor), shift
    max_cams = min(cfg.num_cameras, cfg.images_per_identity // 2)
    for idx in range(cfg.num_identities):
        pid = idx + 1
        m = int(rng.integers(2, max_cams + 1))
        cams = np.sort(rng.choice(cfg.num_cameras, m, replace=False)) + 1
        counts = 2 + rng.multinomial(cfg.images_per_identity - 2 * m, np.full(m, 1.0 / m))
        split = "train" if idx < n_train else "test"
        for cam, count in zip(cams, counts):
            for k in range(count):
                if split == "train":
                    folder = "bounding_box_train"
                else:
                    folder = "query" if k == 0 else "bounding_box_test"
                images.append({"folder": folder, "pid": pid, "camid": int(cam),
                               "identity": idx, "kind": "person"})
    gallery = sum(1 for r in images if r["folder"] == "bounding_box_test")
    n_distractors = int(round(cfg.distractor_fraction * gallery))
    n_junk = int(round(cfg.junk_fraction * gallery))
    num_d = max(1, n_distractors // 2) if n_distractors else 0
    d_specs, _ = make_identities(num_d, 0.0, rng, taken)
    for k in range(n_distractors):
        images.append({"folder": "bounding_box_test", "pid": 0,
                       "camid": int(rng.integers(1, cfg.num_cameras + 1)),
                       "identity": -(k % len(d_specs)) - 1, "kind": "distractor"})
    for k in range(n_junk):
        kind = "background" if rng.random() < 0.4 else "partial"
        images.append({"folder": "bounding_box_test", "pid": -1,
                       "camid": int(rng.integers(1, cfg.num_cameras + 1)),
                       "identity": int(rng.integers(n_train, cfg.num_identities))
                       if n_test > 0 else 0, "kind": kind})
    # Market-like names: a frame counter per camera
    frame = np.zeros(cfg.num_cameras + 1, np.int64)
    order = rng.permutation(len(images))
    for n in order:
        r = images[n]
        frame[r["camid"]] += int(rng.integers(1, 40))
        seq = 1 + int(frame[r["camid"]] // 100000) % 9
        pid = "-1" if r["pid"] == -1 else f"{r['pid']:04d}"
        fr = int(frame[r["camid"]] % 1000000)
        r["file"] = f"{pid}_c{r['camid']}s{seq}_{fr:06d}_{1 + n % 3:02d}.jpg"
    return specs, pairs, d_specs, images


def render_planned(k, r, cfg, specs, d_specs, cameras, templates):
    rng = np.random.default_rng((cfg.seed, 2, k))
    cam = cameras[r["camid"] - 1]
    if r["identity"] >= 0:
        key = ("id", r["identity"])
        spec = specs[r["identity"]]
    else:
        key = ("d", -r["identity"] - 1)
        spec = d_specs[-r["identity"] - 1]
    if key not in templates:
        templates[key] = render_template(spec, 2 * cfg.height)
    shift = None
    if r["kind"] == "partial":      # a very bad detection: head only or legs only
        shift = float(rng.choice([-1, 1]) * rng.uniform(0.55, 0.75))
    if r["kind"] == "background":   # a detection without a person
        shift = 3.0
    return render_image(templates[key], cam, cfg, rng, shift=shift)
