"""Merging the training splits of several prepared datasets.

The paper trains one model on Market-1501, CUHK03 and CUHK-SYSU together.
Two ways to do that:

- :func:`merge_train` merges the train splits in memory (what
  ``train.py --data a b c`` uses): labels of the k-th dataset are shifted by
  the number of classes of the datasets before it, so they stay unique and
  contiguous.
- ``reid-prep combine DST PREPARED [PREPARED ...]`` writes the same merge as a
  prepared dataset of its own. It holds TRAIN ROWS ONLY: test sets stay with
  their own datasets (evaluate each one separately). Images go to
  ``DST/images/train/<dataset>/<file>``; each row keeps its original pid and
  its ``dataset`` name; dataset.json lists the components with their label
  offsets. Its protocol field is "market1501" (there are no query rows, so
  it is never used).
"""

from pathlib import Path

import numpy as np

from ._io import (PrepError, add_common_arguments, check_destination, ensure_dir, materialize,
                  report)
from .manifest import (Manifest, ManifestError, Split, load_manifest, validate_rows,
                       write_manifest)


def _as_manifest(m):
    return m if isinstance(m, Manifest) else load_manifest(m)


def merge_train(manifests):
    """Merge the train splits of several prepared datasets.

    Args:
        manifests: Manifest objects or paths of prepared datasets (in order).

    Returns:
        Split "train" whose labels are the k-th dataset's labels plus the
        number of classes of datasets 0..k-1 (unique across datasets,
        contiguous 0..L-1 overall); ``datasets`` tells each row's origin.

    Raises:
        ManifestError: a dataset without train rows, or an image that occurs
            in two of them (the same dataset given twice).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from data_prep.synthetic import prepare
        >>> tmp = Path(tempfile.mkdtemp())
        >>> tiny = dict(num_identities=4, images_per_identity=4, height=32, width=16)
        >>> a = prepare(tmp / "a", seed=1, **tiny)
        >>> b = prepare(tmp / "b", seed=2, **tiny)
        >>> train = merge_train([a, b])
        >>> train.num_classes, sorted(set(train.labels.tolist()))
        (4, [0, 1, 2, 3])
    """
    manifests = [_as_manifest(m) for m in manifests]
    if not manifests:
        raise ValueError("manifests: expected at least one prepared dataset")
    parts = {"paths": [], "pids": [], "labels": [], "camids": [], "datasets": []}
    offset = 0
    owner = {}
    for m in manifests:
        s = m.split("train")
        if len(s) == 0:
            raise ManifestError(f"{m.root}: has no train rows")
        for p in s.paths:
            if p in owner:
                raise ManifestError(f"{m.root}: image {p} is also in {owner[p]}")
            owner[p] = m.root
        parts["paths"].append(s.paths)
        parts["pids"].append(s.pids)
        parts["labels"].append(s.labels + offset)
        parts["camids"].append(s.camids)
        parts["datasets"].append(s.datasets)
        offset += s.num_classes
    return Split("train", *(np.concatenate(parts[k]) for k in
                            ("paths", "pids", "labels", "camids", "datasets")))


def combine(dst, prepared, *, name=None, mode="link", quiet=False):
    """Write the merged training split of ``prepared`` datasets to ``dst``.

    Args:
        dst: output directory.
        prepared: paths of prepared datasets (in label order).
        name: dataset name of the result (default: the names joined by '+').
        mode: "link" or "copy".
        quiet: no progress output.

    Returns:
        dict with "dataset", "manifest", "summary", "files", "components".

    Raises:
        PrepError: a malformed input (one line naming its file and line), a
            ``dst`` that is one of the inputs or holds another prepared
            dataset (checked before anything is written).
    """
    dst = Path(dst)
    manifests = []
    for p in prepared:
        try:
            manifests.append(load_manifest(p))
        except ManifestError as exc:
            raise PrepError(str(exc)) from None
    inputs = [Path(p) for p in prepared] + [m.root for m in manifests]
    sources = [str(m.root.resolve()) for m in manifests]
    rows, components, seen = [], [], {}
    offset = 0
    for m in manifests:
        train = [r for r in m.rows if r["split"] == "train"]
        if not train:
            raise PrepError(f"{m.root}: has no train rows to combine")
        names = sorted({r["dataset"] for r in train})
        for n in names:
            if n in (".", "..") or "/" in n or "\\" in n:
                raise PrepError(f"{m.root}: dataset name {n!r} cannot be a folder name under "
                                "DST/images/train/")
            if n in seen:
                raise PrepError(f"{m.root}: dataset {n!r} also comes from {seen[n]}")
            seen[n] = m.root
        for r in train:
            rest = r["path"][len("images/train/"):] if r["path"].startswith("images/train/") \
                else r["path"]
            if rest.startswith(r["dataset"] + "/"):
                rest = rest[len(r["dataset"]) + 1:]
            rows.append({"path": f"images/train/{r['dataset']}/{rest}", "pid": r["pid"],
                         "label": r["label"] + offset, "camid": r["camid"], "split": "train",
                         "dataset": r["dataset"],
                         "source": str(m.root.joinpath(*r["path"].split("/")))})
        classes = m.num_classes
        components.append({"dataset": m.dataset, "source": str(m.root.resolve()),
                           "images": len(train), "identities": classes,
                           "label_offset": offset})
        offset += classes
    name = name or "+".join(c["dataset"] for c in components)
    check_destination(dst, inputs=inputs, dataset=name, source=sources)
    try:
        validate_rows(rows, "market1501", source=str(dst / "manifest.jsonl"))
    except ManifestError as exc:
        raise PrepError(str(exc)) from None
    dst = ensure_dir(dst)
    stats = materialize(rows, dst, mode, quiet, desc="combine: placing images")
    info = write_manifest(dst, rows, dataset=name, protocol="market1501",
                          extra={"source": sources, "components": components,
                                 "options": {"mode": mode}})
    return {"dataset": name, "manifest": str(dst / "manifest.jsonl"),
            "summary": info["summary"], "files": stats.as_dict(), "dropped": {},
            "components": components}


def add_arguments(parser):
    """Arguments of ``reid-prep combine DST PREPARED [PREPARED ...]``."""
    parser.add_argument("dst", metavar="DST", help="output folder for the merged training set")
    parser.add_argument("prepared", metavar="PREPARED", nargs="+",
                        help="prepared datasets (folders written by reid-prep) whose train "
                             "splits are merged, labels numbered in this order")
    parser.add_argument("--name", default=None,
                        help="dataset name of the result (default: the names joined by '+')")
    add_common_arguments(parser)


def run(args):
    """Run ``combine`` from parsed arguments; returns the exit status."""
    result = combine(args.dst, args.prepared, name=args.name, mode=args.mode, quiet=args.quiet)
    return report(args, result)
