"""Test-only Keras callbacks injected into the training engine, and a runner.

``python tests/train/hooks.py HOOKS_JSON [train.py arguments]`` runs
``train.py`` in-process with the callbacks described by ``HOOKS_JSON``, a
JSON object with any of:

- ``"step_delay"``: seconds to sleep after every step (:class:`StepDelay`);
- ``"nan_at_step"``: global step (1-based) before which the first trainable
  weight becomes NaN (:class:`InjectNaN`);
- ``"digest"``: a path where :class:`WeightDigest` writes the trainer's
  weight hashes, logs and iteration count at the end of training.
"""

import hashlib
import json
import sys
import time

import keras
import numpy as np


class StepDelay(keras.callbacks.Callback):
    """Sleeps after every training step (makes a run slow enough to be killed)."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = float(seconds)

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.seconds)


class InjectNaN(keras.callbacks.Callback):
    """Sets the first trainable weight to NaN before global step ``step`` (1-based).

    The global step is the optimizer's update count plus one, so it counts
    across ``fit()`` calls and resumptions.
    """

    def __init__(self, step):
        super().__init__()
        self.step = int(step)

    def on_train_batch_begin(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) + 1 == self.step:
            v = self.model.trainable_variables[0]
            v.assign(np.full(v.shape, np.nan, dtype=v.dtype))


class WeightDigest(keras.callbacks.Callback):
    """Writes SHA-256 digests of the trainer's weights, the logs and the
    optimizer's iteration count at every ``on_train_end`` (the last one wins)."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_train_end(self, logs=None):
        trainer = self.model
        digests = {}
        for kind, weights in (("trainable", trainer.trainable_weights),
                              ("non_trainable", trainer.non_trainable_weights)):
            h = hashlib.sha256()
            for v in weights:
                h.update(np.ascontiguousarray(np.asarray(v.numpy())).tobytes())
            digests[kind] = h.hexdigest()
        record = {"digests": digests, "count": len(trainer.weights),
                  "logs": {k: float(v) for k, v in (logs or {}).items()},
                  "iterations": int(trainer.optimizer.iterations.numpy())}
        with open(self.path, "w") as f:
            json.dump(record, f)


def callbacks_from(spec):
    """The callbacks of a hooks dict (see the module docstring)."""
    out = []
    if spec.get("nan_at_step") is not None:
        out.append(InjectNaN(spec["nan_at_step"]))
    if spec.get("step_delay"):
        out.append(StepDelay(spec["step_delay"]))
    if spec.get("digest"):
        out.append(WeightDigest(spec["digest"]))
    return out


if __name__ == "__main__":
    import signal

    from reid_tf.train_cli import main

    # as in a terminal's foreground: Python leaves SIGINT ignored when the
    # process starts with it ignored (any child of a background job of a
    # non-interactive shell, e.g. a test run started with `&`), and Ctrl-C
    # would then never reach train.py
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main(sys.argv[2:], callbacks=callbacks_from(json.loads(sys.argv[1]))))
