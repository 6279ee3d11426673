"""Synthetic ReID features with identity structure, for demos and benchmarks.

The features imitate what a trained network produces: each identity has a
centre, each camera adds a shift, and each image adds noise, so that distances
are clustered the way real gallery distances are (many near-ties inside an
identity, a long tail between identities). Like real embeddings, the
variation lives in a low-dimensional subspace (``latent_dim``) embedded in the
C-dimensional feature space, so the difficulty does not change with C. The
defaults give about 0.78 mAP and 0.97 rank-1 at Market-1501 scale (3,368 x
15,913), close to a trained AlignedReID model.
"""

import numpy as np


def clustered_features(
    num_query,
    num_gallery,
    dim=2048,
    num_identities=None,
    num_cameras=6,
    parts=None,
    part_dim=128,
    identity_scale=1.0,
    camera_scale=0.3,
    noise_scale=0.95,
    latent_dim=64,
    seed=0,
):
    """Generate query and gallery features of a clustered, ReID-like population.

    Every query identity also appears in the gallery (on other cameras too);
    the gallery additionally holds distractor identities.

    Args:
        num_query: number of query items Q.
        num_gallery: number of gallery items G.
        dim: global feature dimension C.
        num_identities: identities in the gallery (default ``max(2, G // 20)``);
            queries are drawn from the first ``min(num_identities, Q)`` ones.
        num_cameras: cameras; camids are 1-based.
        parts: if an int H, also return local features [N, H, part_dim].
        part_dim: local feature dimension c.
        identity_scale, camera_scale, noise_scale: standard deviations of the
            identity centres, the per-camera shift and the per-image noise
            (per latent dimension, relative to the identity scale).
        latent_dim: dimension of the subspace that holds the global
            features' variation (at most ``dim``).
        seed: seed of the generator.

    Returns:
        dict with ``query`` and ``gallery``, each a dict of ``global`` [N, C]
        float32, ``pid`` [N] int64, ``camid`` [N] int64 and, when ``parts`` is
        given, ``local`` [N, H, c] float32.

    Example:
        >>> data = clustered_features(10, 100, dim=16)
        >>> data["gallery"]["global"].shape
        (100, 16)
    """
    rng = np.random.default_rng(seed)
    if num_identities is None:
        num_identities = max(2, num_gallery // 20)
    num_query_ids = max(1, min(num_identities, num_query))
    latent = max(1, min(int(latent_dim), dim))
    # orthonormal rows: the latent space embedded in the feature space
    basis = np.linalg.qr(rng.normal(size=(dim, latent)))[0].T
    centres = rng.normal(0.0, identity_scale, (num_identities, latent)) / np.sqrt(latent)
    cam_shift = rng.normal(0.0, camera_scale, (num_cameras, latent)) / np.sqrt(latent)
    if parts is not None:
        part_centres = rng.normal(
            0.0, identity_scale, (num_identities, parts, part_dim)
        ) / np.sqrt(part_dim)

    def make(n, pids):
        camids = rng.integers(1, num_cameras + 1, n)
        return _embed(rng, pids, camids, centres, cam_shift, basis, noise_scale,
                      part_centres if parts is not None else None)

    query_pids = np.arange(num_query) % num_query_ids
    gallery_pids = np.concatenate(
        [np.arange(num_identities), rng.integers(0, num_identities, max(0, num_gallery - num_identities))]
    )[:num_gallery]
    rng.shuffle(gallery_pids)
    return {"query": make(num_query, query_pids), "gallery": make(num_gallery, gallery_pids)}


def _embed(rng, rows, camids, centres, cam_shift, basis, noise_scale, part_centres):
    """Features of images of identities ``rows`` (centre rows) seen by cameras ``camids`` (1-based)."""
    n = len(rows)
    latent = basis.shape[0]
    noise = rng.normal(0.0, noise_scale, (n, latent)) / np.sqrt(latent)
    embedded = (centres[rows] + cam_shift[camids - 1] + noise) @ basis
    out = {
        "global": embedded.astype(np.float32),
        "pid": np.asarray(rows).astype(np.int64),
        "camid": np.asarray(camids).astype(np.int64),
    }
    if part_centres is not None:
        parts, part_dim = part_centres.shape[1:]
        local_noise = rng.normal(0.0, noise_scale, (n, parts, part_dim))
        local = part_centres[rows] + local_noise / np.sqrt(part_dim)
        # pose-like misalignment: roll the parts of some images by one row
        shift = rng.integers(-1, 2, n)
        for k in np.flatnonzero(shift):
            local[k] = np.roll(local[k], shift[k], axis=0)
        out["local"] = local.astype(np.float32)
    return out


def labelled_features(splits, dim=256, parts=None, part_dim=32, identity_scale=1.0,
                      camera_scale=0.8, noise_scale=1.2, latent_dim=64, seed=0):
    """Synthetic features for images whose identities and cameras are given.

    The same model as :func:`clustered_features` (an identity centre, a
    per-camera shift and per-image noise in a low-dimensional subspace), for
    labels that come from elsewhere, for example a synthetic image dataset,
    so that a feature dump can be paired with real image files. These are not
    features of the images: they know the identities.

    Args:
        splits: dict of split name -> (pids [N], camids [N]); any integer
            pids (pid -1 and 0 included: every distinct pid is an identity)
            and cameras >= 0.
        dim, parts, part_dim, identity_scale, camera_scale, noise_scale,
        latent_dim, seed: as for :func:`clustered_features`.

    Returns:
        dict of split name -> dict with ``global`` [N, C] float32, ``pid``,
        ``camid`` (the given labels, int64) and, with ``parts``, ``local``
        [N, H, c] float32.

    Example:
        >>> out = labelled_features({"query": ([5, 7], [1, 2]),
        ...                          "gallery": ([5, 5, 7, 0], [2, 3, 1, 1])}, dim=16)
        >>> out["gallery"]["global"].shape, out["query"]["pid"].tolist()
        ((4, 16), [5, 7])
    """
    rng = np.random.default_rng(seed)
    labels = {name: (np.asarray(p, np.int64).reshape(-1), np.asarray(c, np.int64).reshape(-1))
              for name, (p, c) in splits.items()}
    pids = np.unique(np.concatenate([p for p, _ in labels.values()]))
    cams = np.unique(np.concatenate([c for _, c in labels.values()]))
    latent = max(1, min(int(latent_dim), dim))
    basis = np.linalg.qr(rng.normal(size=(dim, latent)))[0].T
    centres = rng.normal(0.0, identity_scale, (pids.size, latent)) / np.sqrt(latent)
    cam_shift = rng.normal(0.0, camera_scale, (cams.size, latent)) / np.sqrt(latent)
    part_centres = None
    if parts is not None:
        part_centres = rng.normal(0.0, identity_scale, (pids.size, parts, part_dim)) / np.sqrt(part_dim)
    out = {}
    for name, (p, c) in labels.items():
        rows = np.searchsorted(pids, p)
        feats = _embed(rng, rows, np.searchsorted(cams, c) + 1, centres, cam_shift, basis,
                       noise_scale, part_centres)
        feats["pid"], feats["camid"] = p, c
        out[name] = feats
    return out


#: File name of the demo dump :func:`write_demo_dump` writes.
DEMO_FILE = "demo.h5"


def write_demo_dump(directory, seed=0):
    """Write a small synthetic dump with local features to ``directory/demo.h5``.

    120 queries and 1,200 gallery items of 120 identities, global features of
    256 channels and 8 parts of 32 channels, Market-1501 protocol, with
    made-up image paths.

    Args:
        directory: created if missing.
        seed: seed of :func:`clustered_features`.

    Returns:
        The path of the dump.
    """
    import os

    from reference import write_dump

    os.makedirs(directory, exist_ok=True)
    data = clustered_features(
        120, 1200, dim=256, num_identities=120, parts=8, part_dim=32,
        noise_scale=1.2, camera_scale=0.8, seed=seed,
    )
    for split, prefix in (("query", "q"), ("gallery", "g")):
        d = data[split]
        d["path"] = [
            f"{prefix}/{pid:04d}_c{cam}_{i:05d}.jpg"
            for i, (pid, cam) in enumerate(zip(d["pid"], d["camid"]))
        ]
    path = os.path.join(directory, DEMO_FILE)
    write_dump(
        path,
        data["query"],
        data["gallery"],
        protocol="market1501",
        model="synthetic clustered features (reference.synthetic)",
        dataset="synthetic",
    )
    return path
