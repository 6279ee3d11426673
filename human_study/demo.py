"""A small study for a first look: from the newest training run's dump, or synthetic.

The newest ``runs/*/features/*.h5`` is used when its image paths resolve (under
the run's ``--data`` folders or the synthetic dataset cache). Otherwise a small
synthetic image dataset is generated (:mod:`data_prep.synthetic`) and paired
with synthetic features made from its identity labels
(:func:`reference.labelled_features`); the study then says so: its model is
"synthetic features", not a trained network.
"""

import glob
import json
import os
from dataclasses import dataclass
from pathlib import Path

from human_study.create import create_study
from human_study.store import Store
from reid_common import Reporter

STUDY_FILE = "study.sqlite"
SYNTHETIC_DUMP = "synthetic_features.h5"
SYNTHETIC_MODEL = ("synthetic features (reference.labelled_features, made from the identity "
                   "labels, not from the images; not a trained model)")
#: the synthetic image dataset of the demo (keyword arguments of data_prep.synthetic.generate)
SYNTHETIC_KNOBS = {"num_identities": 40, "num_cameras": 4, "images_per_identity": 10,
                   "height": 128, "width": 64}


@dataclass
class DemoInfo:
    """What :func:`make_demo` made."""

    study: str
    source: str  # "run" or "synthetic"
    dump: str
    annotator: str
    token: str
    reused: bool


def _cache_root(config):
    if config.get("cache_dir"):
        return Path(config["cache_dir"]).expanduser()
    env = os.environ.get("ALIGNEDREID_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "alignedreid"


def _image_roots(run_dir):
    """Folders a run's dump paths may be relative to: its --data folders, the synthetic cache."""
    try:
        with open(run_dir / "config.json", encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        config = {}
    roots = []
    for data in config.get("data") or []:
        p = Path(data)
        roots.append(p.parent if p.is_file() else p)
    roots += sorted(Path(p) for p in glob.glob(str(_cache_root(config) / "synthetic-*" / "prepared")))
    return [str(r) for r in roots if r.is_dir()]


def find_run_dump(runs="runs"):
    """The newest ``RUNS/*/features/*.h5`` whose image paths resolve.

    Returns:
        ``(dump path, image_root or None)``, or ``(None, reason)``.
    """
    from reference import DumpError, read_dump, resolve_image

    dumps = sorted(glob.glob(os.path.join(runs, "*", "features", "*.h5")), key=os.path.getmtime)
    if not dumps:
        return None, f"no {runs}/*/features/*.h5"
    newest = dumps[-1]
    try:
        dump = read_dump(newest)
    except DumpError as exc:
        return None, str(exc)
    if "path" not in dump.query:
        return None, f"{newest} has no image paths"
    sample = [dump.query["path"][0], dump.gallery["path"][0], dump.gallery["path"][-1]]
    for root in [None] + _image_roots(Path(newest).parent.parent):
        if all(resolve_image(p, root, dump) for p in sample):
            return newest, root
    return None, f"the images of {newest} were not found"


def write_synthetic_source(directory, seed=0, progress=None):
    """Generate the synthetic image dataset and a dump of synthetic features for it.

    Returns:
        ``(dump path, image root)``.
    """
    from data_prep import load_manifest, synthetic
    from reference import labelled_features, write_dump

    progress = progress if progress is not None else Reporter(enabled=False)
    directory = Path(directory)
    progress.say(f"synthetic images: {SYNTHETIC_KNOBS['num_identities']} identities into "
                 f"{directory / 'synthetic_images'}")
    prepared = synthetic.prepare(directory / "synthetic_images", seed=seed, **SYNTHETIC_KNOBS)
    manifest = load_manifest(prepared)
    q, g = manifest.split("query"), manifest.split("gallery")
    feats = labelled_features({"query": (q.pids, q.camids), "gallery": (g.pids, g.camids)},
                              dim=128, parts=8, part_dim=16, camera_scale=0.6, noise_scale=1.0,
                              seed=seed)
    root = str(prepared.resolve())
    for split, data in (("query", q), ("gallery", g)):
        feats[split]["path"] = [os.path.relpath(p, root) for p in data.paths]
    dump = str(directory / SYNTHETIC_DUMP)
    write_dump(dump, feats["query"], feats["gallery"], protocol=manifest.protocol,
               model=SYNTHETIC_MODEL, dataset="synthetic")
    return dump, root


def make_demo(directory, *, queries=20, seed=0, runs="runs", synthetic_only=False,
              progress=None):
    """A demo study in ``directory`` with one new annotator.

    An existing ``directory/study.sqlite`` is reused (a new annotator is
    added to it).

    Args:
        directory: where the study (and the synthetic data) go.
        queries: the number of queries of a new study.
        seed: seed of the study (and of the synthetic data).
        runs: the training runs folder searched for a dump.
        synthetic_only: skip the search and use synthetic data.
        progress: a :class:`reid_common.Reporter` or None.

    Returns:
        :class:`DemoInfo`.
    """
    progress = progress if progress is not None else Reporter(enabled=False)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    study = str(directory / STUDY_FILE)
    reused = os.path.isfile(study)
    if reused:
        progress.say(f"reusing {study}")
        source, dump = "existing", ""
    else:
        found, root = (None, "synthetic data asked for") if synthetic_only else find_run_dump(runs)
        if found is not None:
            source, dump, image_root = "run", found, root
            progress.say(f"using the training run's dump {found}")
        else:
            progress.say(f"no usable training run ({root}); using synthetic data")
            source = "synthetic"
            dump, image_root = write_synthetic_source(directory, seed=seed, progress=progress)
        create_study(dump, study, queries=queries, seed=seed, image_root=image_root,
                     progress=progress)
    store = Store(study)
    try:
        taken = {name for _, name in store.annotators()}
        name = "demo"
        n = 1
        while name in taken:
            n += 1
            name = f"demo-{n}"
        name, token = store.add_annotator(name)
    finally:
        store.close()
    return DemoInfo(study=study, source=source, dump=dump, annotator=name, token=token,
                    reused=reused)
