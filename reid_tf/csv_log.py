"""The epoch CSV log of a training run (``log.csv``) and its reader."""

import csv
import io
import os
import time

import keras
import numpy as np

from reid_common import atomic_write_text


class EpochCSVLogger(keras.callbacks.Callback):
    """One CSV row per finished epoch, the whole file rewritten atomically.

    On resumption the rows of epochs at or after the resumed epoch are
    dropped (they are recomputed), so the epochs in the file always continue.
    Keras' ``CSVLogger`` appends to the file (a killed run would leave the
    rows of epochs that are trained again), writes no global step and would
    write the row of an epoch that failed.

    Args:
        path: CSV file.
        start_epoch: first epoch of this process (rows >= it are dropped).
        position: the shared :class:`Position`.
        guard: the :class:`NaNGuard`.

    Example:
        >>> import os, tempfile
        >>> from reid_tf.callbacks import Position
        >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
        >>> logger = EpochCSVLogger(path, 0, Position(10))
        >>> logger.on_epoch_end(0, {"loss": 2.5, "lr": 1e-3})
        >>> [(r["epoch"], r["global_step"], r["lr"]) for r in read_csv_log(path)]
        [(1, 10.0, 0.001)]
    """

    FIRST = ("epoch", "global_step", "lr", "loss")

    def __init__(self, path, start_epoch, position, guard=None):
        super().__init__()
        self.path = os.fspath(path)
        self.position = position
        self.guard = guard
        self.rows = [r for r in read_csv_log(self.path) if int(r["epoch"]) <= start_epoch]
        self._epoch_start = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._epoch_start is None:
            self._epoch_start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        if self.guard is not None and self.guard.failure is not None:
            return
        row = {"epoch": epoch + 1,
               "global_step": (epoch + 1) * self.position.steps_per_epoch,
               "time_s": round(time.time() - (self._epoch_start or time.time()), 3)}
        for k, v in (logs or {}).items():
            if isinstance(v, (int, float, np.floating, np.integer)):
                row[k] = float(v)
        self._epoch_start = None
        self.rows = [r for r in self.rows if int(r["epoch"]) != epoch + 1] + [row]
        self.write()

    def write(self):
        """Rewrites the CSV file with :attr:`rows` (atomic).

        Returns:
            None.
        """
        keys = [k for k in self.FIRST if any(k in r for r in self.rows)]
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, restval="")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: _fmt(v) for k, v in r.items()})
        atomic_write_text(self.path, buf.getvalue())


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def read_csv_log(path):
    """Rows of a CSV log written by :class:`EpochCSVLogger` (``[]`` if absent).

    Args:
        path: CSV file.

    Returns:
        list of dicts (strings as read; ``epoch`` as int).

    Example:
        >>> read_csv_log("/nonexistent.csv")
        []
    """
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = [dict(r) for r in csv.DictReader(f)]
    for r in rows:
        r["epoch"] = int(r["epoch"])
        for k, v in list(r.items()):
            if k != "epoch" and v not in ("", None):
                try:
                    r[k] = float(v)
                except ValueError:
                    pass
    return rows
