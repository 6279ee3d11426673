"""Feature extraction: a saved model + a prepared dataset -> an HDF5 dump.

Command line::

    python -m reid_tf.extract --model RUN/model.keras --data PREPARED --out dump.h5
    reid-extract ...            (the same, as a console script)

The dump follows ``reference.write_dump`` (see ``docs/training.md``):
groups ``query/`` and ``gallery/`` with ``global`` [N, C] float32, ``local``
[N, H, c] float32 (when the model outputs local features and ``--no-local``
is not given), ``pid`` [N], ``camid`` [N] and ``path`` (UTF-8, relative to
the dataset root); ``protocol/gallery_offsets`` and
``protocol/gallery_indices`` for protocols with per-query galleries
(CUHK-SYSU); root attributes ``schema_version``, ``protocol``, ``model``,
``dataset`` and ``created``.

Images are read in manifest order and batched (``--batch-size``); a progress
line goes to stderr.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from reference.vectors import normalize_rows


class ExtractError(ValueError):
    """A user error of the extraction (bad path, bad model): exit code 2."""


# ----------------------------------------------------------------- progress
class Progress:
    """A one-line progress counter on stderr.

    On a terminal the line is redrawn (at most 10 times a second); elsewhere a
    line is printed at most every 30 s, plus a final line.

    Args:
        total: expected count.
        desc: label.
        enabled: print anything at all.

    Example:
        >>> with Progress(3, "images", enabled=False) as bar:
        ...     bar.update(3)
    """

    def __init__(self, total, desc, enabled=True):
        self.total = int(total)
        self.desc = desc
        self.enabled = enabled
        self.done = 0
        self.start = time.monotonic()
        self.last = self.start
        self.tty = sys.stderr.isatty()

    def update(self, n=1):
        self.done += int(n)
        now = time.monotonic()
        if self.enabled and (now - self.last >= (0.1 if self.tty else 30.0)):
            self.last = now
            self._print(final=False)

    def _print(self, final):
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"{self.desc}: {self.done}/{self.total} ({rate:.0f}/s, {elapsed:.1f} s)"
        if self.tty:
            sys.stderr.write("\r" + text + ("\n" if final else ""))
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def close(self):
        if self.enabled and self.total:
            self._print(final=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- the model
def load_model(path):
    """Loads a saved inference (or full) model from a ``.keras`` file.

    Args:
        path: ``.keras`` file written by ``train.py`` (``model.keras``).

    Returns:
        ``keras.Model`` whose output is a dict with ``"global"`` and maybe
        ``"local"``.

    Raises:
        ExtractError: missing or unreadable file, or a model without a
            ``"global"`` output.

    Example:
        >>> model = load_model("runs/x/model.keras")  # doctest: +SKIP
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ExtractError(f"--model: no such file: {path}")
    import keras

    import reid_tf.layers  # noqa: F401  (registers the custom layers)
    import reid_tf.training  # noqa: F401  (registers the training models)

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # any Keras/zip/HDF5 failure is a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExtractError(f"--model: {path}: cannot load: {first}") from None
    return as_feature_model(model, path)


def as_feature_model(model, where="model"):
    """A model whose output is ``{"global": ..., ["local": ...]}``.

    Accepts the inference model saved by ``train.py``, a network from
    ``reid_tf.model.build_model`` or an ``AlignedReIDModel``.

    Args:
        model: a ``keras.Model``.
        where: name used in error messages.

    Returns:
        ``keras.Model``.

    Raises:
        ExtractError: no ``"global"`` output.

    Example:
        >>> feature_model = as_feature_model(network)  # doctest: +SKIP
    """
    from reid_tf.model import has_local_branch, inference_model

    outputs = model.output if hasattr(model, "output") else None
    if isinstance(outputs, dict) and "global" in outputs and "logits" not in outputs:
        return model
    network = getattr(model, "network", None) or getattr(model, "network1", None) or model
    try:
        return inference_model(network, local=has_local_branch(network))
    except (ValueError, AttributeError) as exc:
        raise ExtractError(f"{where}: not an AlignedReID model ({exc})") from None


def model_image_size(model):
    """Input height and width of a model.

    Args:
        model: ``keras.Model`` with an image input ``[B, H, W, 3]``.

    Returns:
        ``(H, W)``.

    Example:
        >>> model_image_size(model)  # doctest: +SKIP
        (128, 64)
    """
    shape = model.inputs[0].shape
    return int(shape[1]), int(shape[2])


def extract_features(model, paths, *, batch_size=64, local=True, normalize=False,
                     progress=True, desc="features"):
    """Runs the model over images, in order, in batches.

    Args:
        model: feature model (see :func:`as_feature_model`).
        paths: N image paths.
        batch_size: images per batch.
        local: keep the local features when the model has them.
        normalize: L2-normalise the global rows and every local part.
        progress: print a progress line on stderr.
        desc: progress label.

    Returns:
        dict with ``"global"`` [N, C] float32 and, when available and asked
        for, ``"local"`` [N, H, c] float32.

    Example:
        >>> feats = extract_features(model, split.paths)  # doctest: +SKIP
        >>> feats["global"].shape                          # doctest: +SKIP
        (90, 256)
    """
    from reid_tf.data import make_eval_dataset

    paths = [os.fspath(p) for p in paths]
    chunks = {}
    if paths:
        dataset = make_eval_dataset(
            paths, image_size=model_image_size(model), batch_size=int(batch_size)
        )
        with Progress(len(paths), desc, enabled=progress) as bar:
            for images in dataset:
                out = model.predict_on_batch(images)
                for key, value in out.items():
                    if key == "local" and not local:
                        continue
                    chunks.setdefault(key, []).append(np.asarray(value, np.float32))
                bar.update(int(images.shape[0]))
    else:
        shapes = model.output_shape
        for key, shape in shapes.items():
            if key == "local" and not local:
                continue
            chunks[key] = [np.zeros((0,) + tuple(shape[1:]), np.float32)]
    feats = {k: np.concatenate(v, axis=0) for k, v in chunks.items() if k in ("global", "local")}
    if len(feats["global"]) != len(paths):
        raise RuntimeError(
            f"extract_features: got {len(feats['global'])} features for {len(paths)} images"
        )
    if normalize:
        feats = {k: normalize_rows(v) for k, v in feats.items()}
    return feats


def extract_test_split(model, manifest, *, batch_size=64, local=True, normalize=False,
                       progress=True, name=None):
    """Features of the query and gallery rows of a prepared dataset.

    Args:
        model: feature model.
        manifest: ``data_prep.manifest.Manifest``.
        batch_size, local, normalize, progress: see :func:`extract_features`.
        name: label for progress lines (default: the dataset name).

    Returns:
        ``(query, gallery, gallery_lists)``: dicts as ``reference.write_dump``
        takes them (``global``, maybe ``local``, ``pid``, ``camid``, ``path``
        relative to the dataset root) and the per-query gallery lists or None.

    Example:
        >>> q, g, lists = extract_test_split(model, load_manifest("prep"))  # doctest: +SKIP
    """
    name = name or manifest.dataset
    out = []
    for split_name in ("query", "gallery"):
        split = manifest.split(split_name)
        feats = extract_features(
            model, split.paths, batch_size=batch_size, local=local, normalize=normalize,
            progress=progress, desc=f"{name}: {split_name} features",
        )
        feats["pid"] = np.asarray(split.pids, np.int64)
        feats["camid"] = np.asarray(split.camids, np.int64)
        feats["path"] = [_relative(p, manifest.root) for p in split.paths]
        out.append(feats)
    lists = manifest.split("query").gallery_lists
    return out[0], out[1], lists


def _relative(path, root):
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return str(path)


def write_test_dump(path, query, gallery, gallery_lists, *, protocol, model_name, dataset):
    """Writes one dump with ``reference.write_dump`` (atomic).

    Args:
        path: output ``.h5``.
        query, gallery, gallery_lists: from :func:`extract_test_split`.
        protocol: evaluation protocol of the dataset.
        model_name: free-form model description.
        dataset: dataset name.

    Returns:
        str: the path written.

    Example:
        >>> write_test_dump("d.h5", q, g, None, protocol="market1501",
        ...                 model_name="tiny", dataset="synthetic")  # doctest: +SKIP
    """
    from reference import write_dump

    return write_dump(
        os.fspath(path), query, gallery, protocol=protocol, model=model_name,
        dataset=dataset, gallery_lists=gallery_lists,
    )


# ---------------------------------------------------------------------- CLI
def build_parser():
    """The ``reid-extract`` argument parser.

    Returns:
        ``argparse.ArgumentParser``.

    Example:
        >>> build_parser().parse_args(["--model", "m.keras", "--data", "d",
        ...                            "--out", "o.h5"]).batch_size
        64
    """
    parser = argparse.ArgumentParser(
        prog="python -m reid_tf.extract",
        description="Extract query and gallery features of a prepared dataset with a "
                    "trained model and write them as an HDF5 feature dump "
                    "(reference.write_dump format; score it with evaluate.py).",
    )
    parser.add_argument("--model", required=True, metavar="MODEL.keras",
                        help="trained model: RUN/model.keras written by train.py")
    parser.add_argument("--data", required=True, metavar="MANIFEST",
                        help="prepared dataset: a manifest.jsonl or its directory "
                             "(its query and gallery splits are extracted)")
    parser.add_argument("--out", required=True, metavar="DUMP.h5",
                        help="output HDF5 dump (written atomically)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N",
                        help="images per batch (default: 64)")
    parser.add_argument("--no-local", action="store_true",
                        help="leave the local features out of the dump")
    parser.add_argument("--normalize", action="store_true",
                        help="L2-normalise global features and every local part "
                             "(use for models trained with --normalize-features)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON summary on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def run(args):
    """Extraction from parsed arguments.

    Args:
        args: namespace from :func:`build_parser`.

    Returns:
        dict summary (``out``, ``dataset``, ``protocol``, ``num_query``,
        ``num_gallery``, ``global_dim``, ``local_shape``, ``seconds``).

    Raises:
        ExtractError: user errors.

    Example:
        >>> run(build_parser().parse_args([...]))  # doctest: +SKIP
    """
    from data_prep.manifest import ManifestError, load_manifest

    if args.batch_size < 1:
        raise ExtractError(f"--batch-size: must be >= 1 (got {args.batch_size})")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise ExtractError(f"--out: directory {out_dir} does not exist")
    try:
        manifest = load_manifest(args.data)
    except (ManifestError, OSError) as exc:
        raise ExtractError(f"--data: {exc}") from None
    t0 = time.monotonic()
    model = load_model(args.model)
    query, gallery, lists = extract_test_split(
        model, manifest, batch_size=args.batch_size, local=not args.no_local,
        normalize=args.normalize, progress=not args.quiet,
    )
    name = os.path.basename(os.path.dirname(os.path.abspath(args.model)))
    model_name = f"{model.name} ({name}/{os.path.basename(args.model)})"
    if args.normalize:
        model_name += ", L2-normalised"
    write_test_dump(args.out, query, gallery, lists, protocol=manifest.protocol,
                    model_name=model_name, dataset=manifest.dataset)
    return {
        "out": os.fspath(args.out),
        "dataset": manifest.dataset,
        "protocol": manifest.protocol,
        "num_query": int(len(query["pid"])),
        "num_gallery": int(len(gallery["pid"])),
        "global_dim": int(query["global"].shape[1]),
        "local_shape": list(query["local"].shape[1:]) if "local" in query else None,
        "seconds": round(time.monotonic() - t0, 3),
    }


def main(argv=None):
    """``python -m reid_tf.extract`` / ``reid-extract``.

    Args:
        argv: argument list (default ``sys.argv[1:]``).

    Returns:
        Exit status: 0 on success, 2 on a user error.

    Example:
        >>> main(["--model", "runs/x/model.keras", "--data", "prep",
        ...       "--out", "dump.h5"])  # doctest: +SKIP
        0
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from reference import DumpError

    args = build_parser().parse_args(argv)
    try:
        summary = run(args)
    except (ExtractError, DumpError) as exc:
        print(f"reid-extract: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print(
            f"{summary['out']}: {summary['dataset']} ({summary['protocol']}), "
            f"{summary['num_query']} queries, {summary['num_gallery']} gallery images, "
            f"global dim {summary['global_dim']}"
            + (f", local {tuple(summary['local_shape'])}" if summary["local_shape"] else "")
            + f", {summary['seconds']:.1f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
