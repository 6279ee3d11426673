"""Export: a trained model as a SavedModel, a TFLite file or an ONNX file for serving.

The engine of ``reid-export`` (command line in :mod:`reid_tf.export_cli`).
Every format has one input and named outputs:

- input ``images``: float32 ``[N, H, W, 3]``, RGB, values in ``[0, 1]`` (the
  image divided by 255), already resized to the model's ``H x W`` (for
  example bilinearly, as ``reid-extract`` does); N is free. The per-channel
  normalisation of the backbone is inside the artefact (the model's
  ``Normalization`` layer).
- outputs ``global`` float32 ``[N, C]`` and, for a model with a local branch,
  ``local`` float32 ``[N, h, c]``: the features ``reid-extract`` writes
  (unnormalised).

Formats: ``saved_model`` (a directory; signature ``serving_default``, also
callable as ``serve``), ``tflite`` (a ``.tflite`` file, signature
``serving_default``; float32, no quantisation) and ``onnx`` (a ``.onnx`` file
via ``tf2onnx``, opset :data:`ONNX_OPSET`; needs the packages ``tf2onnx`` and
``onnx``, and ``onnxruntime`` for the check).

The formats are written and run by :mod:`reid_tf.export_formats`. The
artefact is written to a temporary path beside ``out``; with ``check`` it
is run there on sample images (:func:`check_artefact`) and only moved onto
``out`` when its features equal the Keras model's within :data:`TOLERANCES`.
"""

import os
import shutil
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from reid_tf.export_formats import (  # noqa: F401  (part of this module's API)
    FORMATS,
    INPUT_NAME,
    ONNX_OPSET,
    WRITERS,
    ExportError,
    ExportFailed,
    input_spec,
    need_package,
    output_shapes,
    run_artefact,
)

#: Largest ``max |artefact - keras| / max |keras|`` per output that ``check`` accepts.
TOLERANCES = {"saved_model": 1e-5, "tflite": 1e-4, "onnx": 1e-4}


@dataclass
class CheckReport:
    """The comparison of an artefact with the Keras model on sample images.

    Attributes:
        format: the artefact's format.
        num_images: images compared.
        max_abs_diff: per output, ``max |artefact - keras|``.
        scale: per output, ``max |keras|``.
        tolerance: the largest ``max_abs_diff / scale`` accepted.
    """

    format: str
    num_images: int
    max_abs_diff: dict
    scale: dict
    tolerance: float

    @property
    def relative(self):
        """Per output, ``max_abs_diff / scale``."""
        return {k: self.max_abs_diff[k] / max(self.scale[k], 1e-12) for k in self.max_abs_diff}

    @property
    def passed(self):
        """Every output within the tolerance."""
        return all(v <= self.tolerance for v in self.relative.values())

    def line(self):
        """One line: ``tflite check passed on 4 images: global max|diff| 1.2e-06 ...``.

        Example:
            >>> CheckReport("onnx", 4, {"global": 2e-6}, {"global": 4.0}, 1e-4).line()
            'onnx check passed on 4 images: global max|diff| 2e-06 (5e-07 of max|feature| 4); ...'
        """
        parts = [f"{k} max|diff| {self.max_abs_diff[k]:.3g} ({self.relative[k]:.3g} of "
                 f"max|feature| {self.scale[k]:.3g})" for k in self.max_abs_diff]
        verdict = "passed" if self.passed else "FAILED"
        return (f"{self.format} check {verdict} on {self.num_images} images: "
                + "; ".join(parts) + f"; tolerance {self.tolerance:g}")

    def to_dict(self):
        """Plain values for JSON."""
        return {"format": self.format, "num_images": self.num_images,
                "max_abs_diff": dict(self.max_abs_diff), "scale": dict(self.scale),
                "relative": self.relative, "tolerance": self.tolerance, "passed": self.passed}


@dataclass
class ExportResult:
    """What :func:`export_model` wrote.

    Attributes:
        out: the artefact's path.
        format: ``saved_model``, ``tflite`` or ``onnx``.
        input_spec: ``{"name", "shape", "dtype", "range"}`` of the input.
        outputs: output name -> shape (``None`` for the free batch size).
        check: the :class:`CheckReport`, or None without a check.
        bytes: the artefact's size on disk.
        seconds: time of the export (and check).
    """

    out: str
    format: str
    input_spec: dict
    outputs: dict
    check: object
    bytes: int
    seconds: float

    def to_dict(self):
        """Plain values for JSON."""
        return {"out": self.out, "format": self.format, "input": self.input_spec,
                "outputs": {k: list(v) for k, v in self.outputs.items()},
                "check": self.check.to_dict() if self.check is not None else None,
                "bytes": self.bytes, "seconds": round(self.seconds, 3)}


def sample_images(num_images, height, width, seed=0):
    """Check images: uniform noise in [0, 1] and smooth colour ramps, float32 [N, H, W, 3].

    Example:
        >>> x = sample_images(3, 8, 4)
        >>> x.shape, x.dtype.name, bool(x.min() >= 0.0 and x.max() <= 1.0)
        ((3, 8, 4, 3), 'float32', True)
    """
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 1.0, size=(num_images, height, width, 3))
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    for i in range(1, num_images, 2):
        a, b, c = rng.uniform(0.0, 1.0, size=3)
        images[i] = np.stack([yy * a, xx * b, (1 - yy) * c], axis=-1)
    return images.astype(np.float32)


def check_artefact(feature_model, path, format, *, num_images=4, seed=0, tolerance=None):
    """Run an exported artefact and compare its features with the Keras model's.

    Args:
        feature_model: the Keras feature model (see :func:`reid_tf.as_feature_model`).
        path: the artefact.
        format: its format.
        num_images: sample images (:func:`sample_images`) compared.
        seed: seed of the noise images.
        tolerance: largest ``max |diff| / max |keras|`` per output (default
            :data:`TOLERANCES` of the format).

    Returns:
        :class:`CheckReport` (see ``passed``); an output missing from the
        artefact, or of another shape, counts as an infinite difference.
    """
    h, w = input_spec(feature_model)["shape"][1:3]
    images = sample_images(int(num_images), h, w, seed)
    want = {k: np.asarray(v, np.float32)
            for k, v in feature_model(images, training=False).items() if k in ("global", "local")}
    got = run_artefact(path, format, images)
    diff, scale = {}, {}
    for k, ref in want.items():
        scale[k] = float(np.abs(ref).max())
        other = got.get(k)
        if other is None or other.shape != ref.shape:
            diff[k] = float("inf")
        else:
            diff[k] = float(np.abs(other.astype(np.float64) - ref).max())
    tol = TOLERANCES[format] if tolerance is None else float(tolerance)
    return CheckReport(format=format, num_images=len(images), max_abs_diff=diff, scale=scale,
                       tolerance=tol)


def _size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(root, f))
                   for root, _, files in os.walk(path) for f in files)
    return os.path.getsize(path)


def _check_out(model, out, format):
    from reid_common import same_file

    if model is not None and (os.path.abspath(out) == os.path.abspath(model)
                              or same_file(out, model)):
        raise ExportError("out", f"{out} is the input model; choose another path")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise ExportError("out", f"directory {parent} does not exist")
    if format == "saved_model":
        if os.path.exists(out) and not os.path.isdir(out):
            raise ExportError("out", f"{out} exists and is not a directory")
        if os.path.isdir(out) and os.listdir(out) and not os.path.isfile(
                os.path.join(out, "saved_model.pb")):
            raise ExportError("out", f"{out} is a non-empty directory that is not a "
                                     "SavedModel; it would be replaced")
    elif os.path.isdir(out):
        raise ExportError("out", f"{out} is a directory; the {format} format writes one file")


def _install(tmp, out):
    """Move ``tmp`` onto ``out``; an existing directory is moved aside first and
    removed after the rename, so ``out`` is always a complete artefact."""
    if os.path.isdir(out) and not os.path.islink(out):
        aside = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.old-",
                                 dir=os.path.dirname(os.path.abspath(out)))
        os.rmdir(aside)
        os.replace(out, aside)
        os.replace(tmp, out)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(tmp, out)


def export_model(*, model, format, out, check=False, num_check_images=4, seed=0):
    """Export a trained model for serving (see the module docstring for the spec).

    Args:
        model: ``.keras`` file (``train.py``'s ``model.keras``) or a
            ``keras.Model`` (a network, an inference model or a training model).
        format: ``saved_model``, ``tflite`` or ``onnx``.
        out: the artefact's path (a directory for ``saved_model``); not the
            model file. An existing artefact there is replaced atomically.
        check: run the artefact on sample images before installing it and
            raise :class:`ExportFailed` unless it matches the Keras model
            within :data:`TOLERANCES`.
        num_check_images: images of the check.
        seed: seed of the check images.

    Returns:
        :class:`ExportResult`.

    Raises:
        ExportError: a bad argument (missing or non-AlignedReID model, bad
            ``out``, unknown format, missing package).
        ExportFailed: the conversion failed or the check did not pass;
            nothing is written then.
    """
    from reid_tf.extract import ExtractError, as_feature_model, load_model

    start = time.monotonic()
    if format not in FORMATS:
        raise ExportError("format", f"expected one of {', '.join(FORMATS)}, got {format!r}")
    out = os.fspath(out)
    try:
        if isinstance(model, (str, os.PathLike)):
            _check_out(os.fspath(model), out, format)
            feature_model = load_model(model)
        else:
            _check_out(None, out, format)
            feature_model = as_feature_model(model)
    except ExtractError as exc:
        raise ExportError("model", exc.detail) from None
    if format == "onnx":
        need_package("tf2onnx", "tf2onnx", "the onnx format")
        need_package("onnx", "onnx", "the onnx format")
        if check:
            need_package("onnxruntime", "onnxruntime", "checking an onnx file")
    parent = os.path.dirname(os.path.abspath(out))
    workdir = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=parent)
    try:
        tmp = os.path.join(workdir, os.path.basename(out))
        WRITERS[format](feature_model, tmp)
        report = None
        if check:
            report = check_artefact(feature_model, tmp, format, num_images=num_check_images,
                                    seed=seed)
            if not report.passed:
                raise ExportFailed(report.line() + f"; {out} not written")
        _install(tmp, out)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return ExportResult(out=out, format=format, input_spec=input_spec(feature_model),
                        outputs=output_shapes(feature_model), check=report, bytes=_size(out),
                        seconds=time.monotonic() - start)
