"""The exported formats: writing a SavedModel, a TFLite file or an ONNX file, and
running one (the input and outputs are described in :mod:`reid_tf.export`)."""

import contextlib
import logging
import os
import tempfile
import warnings

import numpy as np

FORMATS = ("saved_model", "tflite", "onnx")
INPUT_NAME = "images"
ONNX_OPSET = 17


class ExportError(ValueError):
    """A user error of the export (bad path, bad model, missing package); one line.

    Args:
        argument: the keyword argument it concerns (``"model"``, ``"out"``, ``"format"``).
        detail: what is wrong.
    """

    def __init__(self, argument, detail):
        super().__init__(f"{argument}: {detail}")
        self.argument = argument
        self.detail = detail


class ExportFailed(RuntimeError):
    """The conversion failed, or the exported artefact does not compute the model's features."""


def input_spec(feature_model):
    """The input of every exported format.

    Example:
        >>> from reid_tf.model import build_model, inference_model
        >>> net = inference_model(build_model("tiny", 3, (64, 32, 3)), local=True)
        >>> input_spec(net)
        {'name': 'images', 'shape': [None, 64, 32, 3], 'dtype': 'float32', 'range': [0.0, 1.0]}
    """
    from reid_tf.extract import model_image_size

    h, w = model_image_size(feature_model)
    return {"name": INPUT_NAME, "shape": [None, h, w, 3], "dtype": "float32",
            "range": [0.0, 1.0]}


def output_shapes(feature_model):
    """Output name -> shape with ``None`` for the batch, ``global`` first."""
    outputs = feature_model.output
    return {k: [None] + [int(d) for d in outputs[k].shape[1:]] for k in ("global", "local")
            if k in outputs}


def _archive(feature_model):
    import keras
    import tensorflow as tf

    spec = input_spec(feature_model)
    names = list(output_shapes(feature_model))
    archive = keras.export.ExportArchive()
    archive.track(feature_model)

    def serve(images):
        out = feature_model(images, training=False)
        return {k: out[k] for k in names}

    archive.add_endpoint(
        name="serve", fn=serve,
        input_signature=[tf.TensorSpec(spec["shape"], tf.float32, name=INPUT_NAME)],
    )
    return archive


def write_saved_model(feature_model, path):
    """The SavedModel directory (signatures ``serving_default`` and ``serve``)."""
    _archive(feature_model).write_out(path, verbose=False)


def write_tflite(feature_model, path):
    """The TFLite file (float32), converted from a temporary SavedModel."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        write_saved_model(feature_model, os.path.join(tmp, "sm"))
        converter = tf.lite.TFLiteConverter.from_saved_model(os.path.join(tmp, "sm"))
        data = converter.convert()
    with open(path, "wb") as f:
        f.write(data)


def need_package(module, package, purpose):
    """Import ``module``, or raise :class:`ExportError` naming the package to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ExportError("format", f"{purpose} needs the Python package {package} "
                                    f"(pip install {package}; import failed: {exc})") from None


def write_onnx(feature_model, path):
    """The ONNX file, converted by ``tf2onnx`` from a temporary SavedModel's
    ``serving_default`` signature (input and output names kept)."""
    tf2onnx = need_package("tf2onnx", "tf2onnx", "the onnx format")
    need_package("onnx", "onnx", "the onnx format")
    from tf2onnx import tf_loader

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp, _quiet_tf():
        saved = os.path.join(tmp, "sm")
        write_saved_model(feature_model, saved)
        try:
            graph_def, inputs, outputs, renames = tf_loader.from_saved_model(
                saved, None, None, signatures=["serving_default"],
                return_tensors_to_rename=True)
            tf2onnx.convert.from_graph_def(
                graph_def, input_names=inputs, output_names=outputs, opset=ONNX_OPSET,
                tensors_to_rename=renames, output_path=path)
        except Exception as exc:  # tf2onnx raises many kinds; all mean "cannot convert"
            raise ExportFailed(f"onnx: tf2onnx {tf2onnx.__version__} cannot convert the "
                               f"model: {' '.join(str(exc).split())[:300]}") from None


@contextlib.contextmanager
def _quiet_tf():
    """TensorFlow's Python log at ERROR (tf2onnx's graph calls print deprecation notes)."""
    import tensorflow as tf

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_artefact(path, format, images):
    """The artefact's outputs on ``images`` (float32 [N, H, W, 3]).

    Returns:
        dict output name -> float32 array.
    """
    images = np.ascontiguousarray(images, np.float32)
    if format == "saved_model":
        import tensorflow as tf

        fn = tf.saved_model.load(path).signatures["serving_default"]
        out = fn(**{INPUT_NAME: tf.constant(images)})
        return {k: np.asarray(v, np.float32) for k, v in out.items()}
    if format == "tflite":
        import tensorflow as tf

        with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice
            warnings.simplefilter("ignore", UserWarning)
            interpreter = tf.lite.Interpreter(model_path=path)
        runner = interpreter.get_signature_runner("serving_default")
        return {k: np.asarray(v, np.float32) for k, v in runner(**{INPUT_NAME: images}).items()}
    if format == "onnx":
        ort = need_package("onnxruntime", "onnxruntime", "the onnx check")
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        values = session.run(names, {session.get_inputs()[0].name: images})
        return {_plain(n): np.asarray(v, np.float32) for n, v in zip(names, values)}
    raise ExportError("format", f"expected one of {', '.join(FORMATS)}, got {format!r}")


def _plain(name):
    """``global:0`` or ``Identity:0`` style ONNX names -> ``global``."""
    return name.split(":")[0]


WRITERS = {"saved_model": write_saved_model, "tflite": write_tflite, "onnx": write_onnx}
