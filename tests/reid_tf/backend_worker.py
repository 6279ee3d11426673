"""Runs the TF-free pipeline and extraction on another Keras backend, with
TensorFlow made unimportable (``test_pipelines.py`` starts it in a subprocess).

Usage: ``python tests/reid_tf/backend_worker.py SPEC.json`` with ``KERAS_BACKEND``
set. SPEC holds ``paths``, ``labels``, ``kwargs`` (of
``make_train_pydataset``), ``batches``, ``model``, ``data``, ``dump`` and
``out`` (an ``.npz`` to write). Written there: the labels of every batch read
directly (``labels``), the images of every batch as ``fit()``/``predict()``
receive them through Keras' two-worker loader (``images``), the pipeline
``auto`` resolves to, the error of ``tfdata``, and whether TensorFlow was
loaded. The dump is written by ``reid-extract``.
"""

import json
import sys


class _NoTensorFlow:
    """A finder that makes ``import tensorflow`` fail as if it were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None


def main(spec_path):
    sys.meta_path.insert(0, _NoTensorFlow())
    import keras
    import numpy as np

    from reid_tf.config import SettingError, TrainConfig
    from reid_tf.extract_cli import main as extract_main
    from reid_tf.pydataset import make_train_pydataset
    from reid_tf.train_data import training_pipeline

    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    kwargs = dict(spec["kwargs"], num_batches=spec["batches"], workers=2)
    ds = make_train_pydataset(spec["paths"], spec["labels"], **kwargs)
    labels = np.stack([ds[i][1] for i in range(spec["batches"])])
    # the images in the order Keras' loader (two threads) hands them over
    shape = ds[0][0].shape[1:]
    echo = keras.Sequential([keras.Input(shape), keras.layers.Identity()])
    images = echo.predict(ds, verbose=0)
    try:
        training_pipeline(TrainConfig(pipeline="tfdata"))
        tfdata_error = ""
    except SettingError as exc:
        tfdata_error = exc.for_cli()
    code = extract_main(["--model", spec["model"], "--data", spec["data"],
                         "--out", spec["dump"], "--quiet", "--batch-size", "5"])
    np.savez(spec["out"], labels=labels, images=images, extract_code=code,
             auto=training_pipeline(TrainConfig()), tfdata_error=tfdata_error,
             backend=keras.backend.backend(), tensorflow="tensorflow" in sys.modules)


if __name__ == "__main__":
    main(sys.argv[1])
