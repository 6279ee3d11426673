"""Feature extraction: a saved model + a prepared dataset -> an HDF5 dump.

The engine of ``reid-extract`` (command line in :mod:`reid_tf.extract_cli`)::

    python -m reid_tf.extract --model RUN/model.keras --data PREPARED --out dump.h5

The dump follows ``reference.write_dump`` (see ``docs/feature_dump.md``):
groups ``query/`` and ``gallery/`` with ``global`` [N, C] float32, ``local``
[N, H, c] float32 (when the model outputs local features and ``local`` is
true), ``pid`` [N], ``camid`` [N] and ``path`` (UTF-8, relative to the
dataset root); ``protocol/gallery_offsets`` and ``protocol/gallery_indices``
for protocols with per-query galleries (CUHK-SYSU); root attributes
``schema_version``, ``protocol``, ``model``, ``dataset`` and ``created``.

Images are read in manifest order and batched (``batch_size``); a progress
line goes to stderr.
"""

import os
import time

import numpy as np

from reference import normalize_rows
from reid_common import Progress, same_file
from reid_tf.keras_files import keras_file_problem
from reid_tf.tf_startup import configured_backend, import_keras, import_tensorflow


class ExtractError(ValueError):
    """A user error of the extraction (bad path, bad model, bad value).

    Args:
        argument: the keyword argument it concerns (``"model"``, ``"data"``,
            ``"out"``, ``"batch_size"``).
        detail: what is wrong with it.

    The message is ``"argument: detail"``.
    """

    def __init__(self, argument, detail):
        super().__init__(f"{argument}: {detail}")
        self.argument = argument
        self.detail = detail


class ImageReadError(ExtractError):
    """An image that cannot be read or decoded (concerns ``data``).

    Args:
        path: the image file.

    Example:
        >>> ImageReadError("q/0001_c1_000.jpg").detail
        'unreadable or corrupt image: q/0001_c1_000.jpg'
    """

    def __init__(self, path):
        super().__init__("data", f"unreadable or corrupt image: {path}")
        self.path = path


def load_model(path):
    """Loads a saved inference (or full) model from a ``.keras`` file.

    Args:
        path: ``.keras`` file written by ``train.py`` (``model.keras``), by
            this version (Keras layers only) or an earlier one (whose
            registered layers :mod:`reid_tf.layers` provides).

    Returns:
        ``keras.Model`` whose output is a dict with ``"global"`` and maybe
        ``"local"``.

    Raises:
        ExtractError: missing or unreadable file, a file that is not a Keras
            model (checked by :func:`reid_tf.keras_files.keras_file_problem`
            before Keras reads it), or a model without a ``"global"`` output.

    Example:
        >>> _ = open("notes.keras", "w").write("text")
        >>> load_model("notes.keras")
        Traceback (most recent call last):
        ...
        reid_tf.extract.ExtractError: model: notes.keras: not a Keras model file (a .keras file is a zip archive)
    """
    path = os.fspath(path)
    problem = keras_file_problem(path, "model")
    if problem:
        raise ExtractError("model", problem)
    keras = import_keras()

    import reid_tf.layers  # noqa: F401  (registers the layers of earlier files)
    import reid_tf.training  # noqa: F401  (registers the training models)

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # any Keras/zip/HDF5 failure is a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExtractError("model", f"{path}: cannot load: {first}") from None
    return as_feature_model(model, path)


def as_feature_model(model, where="model"):
    """A model whose output is ``{"global": ..., ["local": ...]}``.

    Accepts the inference model saved by ``train.py``, a network from
    ``reid_tf.model.build_model`` or an ``AlignedReIDModel``. A model with a
    one-element list input (files of earlier versions) is given a single
    tensor input.

    Args:
        model: a ``keras.Model``.
        where: name used in error messages.

    Returns:
        ``keras.Model``.

    Raises:
        ExtractError: no ``"global"`` output.

    Example:
        >>> from reid_tf.model import build_model
        >>> net = build_model("tiny", num_classes=3, input_shape=(64, 32, 3))
        >>> sorted(as_feature_model(net).output)
        ['global', 'local']
    """
    import keras

    from reid_tf.model import has_local_branch, inference_model

    outputs = model.output if hasattr(model, "output") else None
    if isinstance(outputs, dict) and "global" in outputs and "logits" not in outputs:
        if isinstance(model.input, (list, tuple)) and len(model.inputs) == 1:
            return keras.Model(model.inputs[0], outputs, name=model.name)
        return model
    network = getattr(model, "network", None) or getattr(model, "network1", None) or model
    try:
        return inference_model(network, local=has_local_branch(network))
    except (ValueError, AttributeError) as exc:
        raise ExtractError("model", f"{where}: not an AlignedReID model ({exc})") from None


def model_image_size(model):
    """Input height and width of a model.

    Args:
        model: ``keras.Model`` with an image input ``[B, H, W, 3]``.

    Returns:
        ``(H, W)``.

    Example:
        >>> from reid_tf.model import build_model
        >>> model_image_size(build_model("tiny", num_classes=3, input_shape=(64, 32, 3)))
        (64, 32)
    """
    shape = model.inputs[0].shape
    return int(shape[1]), int(shape[2])


def image_batches(paths, *, image_size, batch_size=64):
    """Test images (``paths``) in order, in batches of ``batch_size``, resized
    to ``image_size``: tf.data (:func:`reid_tf.data.make_eval_dataset`) on the
    TensorFlow backend, :func:`reid_tf.image_io.eval_batches` on the others
    (the same pixels).

    Yields:
        images [B, H, W, 3] float32 (a tensor or a NumPy array).

    Raises:
        ImageReadError: an image cannot be read or decoded.

    Example:
        >>> from PIL import Image
        >>> Image.new("RGB", (32, 64)).save("a.png")
        >>> [tuple(b.shape) for b in image_batches(["a.png"] * 3, image_size=(64, 32),
        ...                                        batch_size=2)]
        [(2, 64, 32, 3), (1, 64, 32, 3)]
    """
    if configured_backend() != "tensorflow":
        from reid_tf.image_io import UnreadableImage, eval_batches

        try:
            for images, _ in eval_batches(paths, image_size=image_size, batch_size=batch_size):
                yield images
        except UnreadableImage as exc:
            raise ImageReadError(exc.path) from None
        return
    tf = import_tensorflow()
    from reid_tf.data import image_error_path, make_eval_dataset

    try:
        yield from make_eval_dataset(paths, image_size=image_size, batch_size=batch_size)
    except tf.errors.OpError as exc:
        bad = image_error_path(exc)
        if bad is None:
            raise
        raise ImageReadError(bad) from None


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

    Raises:
        ImageReadError: an image cannot be read or decoded (a missing,
            truncated or corrupt file).
    """
    paths = [os.fspath(p) for p in paths]
    chunks = {}
    if paths:
        batches = image_batches(paths, image_size=model_image_size(model),
                                batch_size=int(batch_size))
        with Progress(len(paths), desc, enabled=progress) as bar:
            for images in batches:
                out = model.predict_on_batch(images)
                for key, value in out.items():
                    if key == "local" and not local:
                        continue
                    chunks.setdefault(key, []).append(np.asarray(value, np.float32))
                bar.update(int(images.shape[0]))
    else:
        for key, tensor in model.output.items():
            shape = tensor.shape
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


def write_test_dump(path, query, gallery, gallery_lists, *, protocol, model_name, dataset,
                    image_root=None):
    """Writes one dump with ``reference.write_dump`` (atomic).

    Args:
        path: output ``.h5``.
        query, gallery, gallery_lists: from :func:`extract_test_split`.
        protocol: evaluation protocol of the dataset.
        model_name: free-form model description.
        dataset: dataset name.
        image_root: the folder the relative image paths resolve against (the
            dataset root), recorded in the dump; None records none.

    Returns:
        str: the path written.
    """
    from reference import write_dump

    return write_dump(
        os.fspath(path), query, gallery, protocol=protocol, model=model_name,
        dataset=dataset, gallery_lists=gallery_lists,
        image_root=None if image_root is None else os.path.abspath(os.fspath(image_root)),
    )


def extract_dump(model, data, out, *, batch_size=64, local=True, normalize=False,
                 progress=True):
    """Extracts the query and gallery features of a prepared dataset into a dump.

    Args:
        model: ``.keras`` file written by ``train.py`` (see :func:`load_model`).
        data: prepared dataset: a ``manifest.jsonl`` or its directory.
        out: output HDF5 dump (written atomically; its directory must exist).
        batch_size: images per batch, >= 1.
        local: keep the local features when the model has them.
        normalize: L2-normalise global features and every local part.
        progress: print progress lines on stderr.

    Returns:
        dict summary (``out``, ``dataset``, ``protocol``, ``num_query``,
        ``num_gallery``, ``global_dim``, ``local_shape``, ``seconds``).

    Raises:
        ExtractError: a bad argument (missing file, bad model or dataset,
            ``batch_size`` < 1, an ``out`` that is a directory or one of the
            inputs); :class:`ImageReadError` for an image that cannot be
            read or decoded. Nothing is written then.
        reference.DumpError: the dump cannot be written.
    """
    from data_prep import ManifestError, load_manifest

    if int(batch_size) < 1:
        raise ExtractError("batch_size", f"must be >= 1 (got {batch_size})")
    out = os.fspath(out)
    out_dir = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(out_dir):
        raise ExtractError("out", f"directory {out_dir} does not exist")
    if os.path.isdir(out):
        raise ExtractError("out", f"{out} is a directory")
    try:
        manifest = load_manifest(data)
    except (ManifestError, OSError) as exc:
        raise ExtractError("data", str(exc)) from None
    model_path = os.fspath(model)
    _refuse_input_as_output(out, model_path, manifest)
    t0 = time.monotonic()
    feature_model = load_model(model_path)
    query, gallery, lists = extract_test_split(
        feature_model, manifest, batch_size=int(batch_size), local=local,
        normalize=normalize, progress=progress,
    )
    run_name = os.path.basename(os.path.dirname(os.path.abspath(model_path)))
    model_name = f"{feature_model.name} ({run_name}/{os.path.basename(model_path)})"
    if normalize:
        model_name += ", L2-normalised"
    write_test_dump(out, query, gallery, lists, protocol=manifest.protocol,
                    model_name=model_name, dataset=manifest.dataset, image_root=manifest.root)
    return {
        "out": out,
        "dataset": manifest.dataset,
        "protocol": manifest.protocol,
        "num_query": int(len(query["pid"])),
        "num_gallery": int(len(gallery["pid"])),
        "global_dim": int(query["global"].shape[1]),
        "local_shape": list(query["local"].shape[1:]) if "local" in query else None,
        "seconds": round(time.monotonic() - t0, 3),
    }


def _refuse_input_as_output(out, model_path, manifest):
    """An ``out`` that names the model, a file of the dataset or an image is an error."""
    if not os.path.exists(out):
        return
    inputs = [("model", model_path)]
    inputs += [("data", manifest.root / name)
               for name in ("manifest.jsonl", "dataset.json")]
    inputs += [("data", p) for split in ("query", "gallery")
               for p in manifest.split(split).paths]
    for argument, path in inputs:
        if same_file(out, path):
            raise ExtractError("out", f"{out} is also an input (the {argument} file "
                                      f"{path}); choose another output")


def main(argv=None):
    """The ``reid-extract`` command line: :func:`reid_tf.extract_cli.main`."""
    from reid_tf.extract_cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
