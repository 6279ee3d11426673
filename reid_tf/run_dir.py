"""The run directory: layout, atomic writes, overwrite protection, resumption.

Layout of a run directory (``runs/<UTC timestamp>`` by default)::

    config.json        every setting of the run (resolved defaults included)
    status.json        {"state": "running" | "interrupted" | "finished" | "failed", ...}
    provenance.json    versions, git commit, command line, host, devices
    log.csv            one row per epoch (loss terms, learning rate, metrics)
    train.log          human-readable events (start, resume, NaN stop, ...)
    checkpoints/       training state (index.json, ckpt-<global step>.h5; reid_tf.checkpoint)
    model.keras        inference model (global + local features)
    features/<name>.h5 test feature dumps (reference.write_dump format)
    metrics.json       before/after metrics of every test set
    cmc.png            CMC curves before and after training
    run.lock           held (flock) while a process works in the directory

Every file is written to a temporary name in the same directory and moved
into place with ``os.replace``, so a killed process never leaves a partial
file under a final name.
"""

import datetime
import fcntl
import json
import os
import shutil
from pathlib import Path

from reid_common import atomic_write_json


class RunDirError(ValueError):
    """The run directory cannot be used as asked (user error, exit code 2)."""


def utc_now():
    """Current UTC time in ISO 8601 (seconds).

    Returns:
        str such as ``"2024-01-31T12:00:00Z"``.

    Example:
        >>> len(utc_now())
        20
    """
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------- the layout
class RunDir:
    """Paths and state files of one run directory.

    Args:
        path: the directory (need not exist yet).

    Attributes:
        existed: whether the directory existed when the object was made (a
            run that cannot start removes the directory only if it made it).

    Example:
        >>> run = RunDir("runs/demo")
        >>> run.config_path.name
        'config.json'
    """

    def __init__(self, path):
        self.path = Path(path)
        self.existed = self.path.is_dir()
        self._lock_file = None

    config_path = property(lambda self: self.path / "config.json")
    status_path = property(lambda self: self.path / "status.json")
    log_path = property(lambda self: self.path / "log.csv")
    events_path = property(lambda self: self.path / "train.log")
    checkpoint_dir = property(lambda self: self.path / "checkpoints")
    model_path = property(lambda self: self.path / "model.keras")
    features_dir = property(lambda self: self.path / "features")
    metrics_path = property(lambda self: self.path / "metrics.json")
    plot_path = property(lambda self: self.path / "cmc.png")
    lock_path = property(lambda self: self.path / "run.lock")

    def dump_path(self, name):
        """Path of the test feature dump of dataset ``name``.

        Args:
            name: dataset name (made file-name safe).

        Returns:
            ``Path`` ``features/<name>.h5``.

        Example:
            >>> RunDir("r").dump_path("market1501").name
            'market1501.h5'
        """
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))
        return self.features_dir / f"{safe}.h5"

    # -------------------------------------------------------------- state
    def status(self):
        """Contents of ``status.json`` (``{}`` when absent or unreadable).

        Returns:
            dict.

        Example:
            >>> RunDir("/nonexistent").status()
            {}
        """
        try:
            with open(self.status_path, encoding="utf-8") as f:
                value = json.load(f)
            return value if isinstance(value, dict) else {}
        except (OSError, ValueError):
            return {}

    def set_status(self, state, **extra):
        """Writes ``status.json`` atomically.

        Args:
            state: ``"running"``, ``"interrupted"`` (Ctrl-C, SIGTERM),
                ``"finished"`` or ``"failed"``.
            **extra: further JSON fields (message, epoch, ...).

        Returns:
            None.

        Example:
            >>> import tempfile
            >>> run = RunDir(tempfile.mkdtemp())
            >>> run.set_status("running")
            >>> run.status()["state"]
            'running'
        """
        atomic_write_json(
            self.status_path,
            {"state": state, "updated": utc_now(), "pid": os.getpid(), **extra},
        )

    def is_finished(self):
        """Whether the run completed (``status.json`` says ``finished``).

        Returns:
            bool.

        Example:
            >>> RunDir("/nonexistent").is_finished()
            False
        """
        return self.status().get("state") == "finished"

    def has_checkpoint(self):
        """Whether a training-state checkpoint has been saved.

        Returns:
            bool.

        Example:
            >>> RunDir("/nonexistent").has_checkpoint()
            False
        """
        from reid_tf.checkpoint import has_state

        return has_state(self.checkpoint_dir)

    def log_event(self, message):
        """Appends one timestamped line to ``train.log``.

        Appending whole lines is the one non-atomic write: a killed process
        can at worst lose the line it was writing.

        Args:
            message: text (one line).

        Returns:
            None.

        Example:
            >>> import tempfile
            >>> run = RunDir(tempfile.mkdtemp())
            >>> run.log_event("started")
            >>> run.events_path.read_text().split()[-1]
            'started'
        """
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.events_path, "a", encoding="utf-8") as f:
            f.write(f"{utc_now()} {message}\n")

    # --------------------------------------------------------------- lock
    def lock(self):
        """Takes an exclusive lock on the directory (released at exit).

        Returns:
            None.

        Raises:
            RunDirError: another live process holds the lock, or the
                directory cannot be created or written (a read-only file
                system, no permission, a file in the way).

        Example:
            >>> import tempfile
            >>> run = RunDir(tempfile.mkdtemp())
            >>> run.lock()
            >>> run.unlock()
        """
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            f = open(self.lock_path, "a+")
        except OSError as exc:
            raise unusable(self.path, exc) from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise RunDirError(
                f"--run-dir: {self.path} is in use by another running process"
            ) from None
        self._lock_file = f

    def unlock(self):
        """Releases the lock taken by :meth:`lock` (no-op when not held).

        Returns:
            None.

        Example:
            >>> RunDir("runs/demo").unlock()
        """
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def unusable(path, exc):
    """The :class:`RunDirError` of a run directory that cannot be written.

    Args:
        path: the run directory.
        exc: the ``OSError`` met while creating or writing it.

    Returns:
        ``RunDirError``.

    Example:
        >>> import errno
        >>> str(unusable("runs/x", OSError(errno.EROFS, "Read-only file system")))
        '--run-dir: cannot create or write the run directory runs/x (Read-only file system)'
    """
    reason = exc.strerror or str(exc)
    return RunDirError(f"--run-dir: cannot create or write the run directory {path} "
                       f"({reason})")


def _is_run_dir(path):
    return (Path(path) / "config.json").is_file()


def default_run_path(root="runs"):
    """A fresh ``runs/<UTC timestamp>`` path (suffixed if it exists).

    Args:
        root: parent directory.

    Returns:
        ``Path``.

    Example:
        >>> str(default_run_path("runs")).startswith("runs/")
        True
    """
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = Path(root) / stamp
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{stamp}-{n}"
    return path


def latest_unfinished_run(root="runs"):
    """The newest run directory under ``root`` that has not finished.

    Args:
        root: parent directory of runs.

    Returns:
        ``Path`` or None.

    Example:
        >>> latest_unfinished_run("/nonexistent") is None
        True
    """
    root = Path(root)
    if not root.is_dir():
        return None
    candidates = [
        p for p in root.iterdir()
        if p.is_dir() and _is_run_dir(p) and not RunDir(p).is_finished()
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda p: p.stat().st_mtime)


def _differences(old, new):
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k) != new.get(k)]


def open_run_dir(path, experiment, *, overwrite=False, resume=False, root="runs"):
    """Decides whether a run directory is created, resumed or refused.

    - no ``path``: a new ``runs/<timestamp>`` (with ``resume``: the newest
      unfinished run under ``root``);
    - missing or empty directory: a new run;
    - an unfinished run with the same experiment settings: resumed;
    - a finished run, a run with other settings, or a non-run directory:
      refused unless ``overwrite`` (which deletes a run directory first; a
      directory that is not a run directory is never deleted).

    Args:
        path: requested directory or None.
        experiment: ``TrainConfig.experiment_dict()`` of the new run.
        overwrite: delete an existing run and start afresh.
        resume: require an existing unfinished run.
        root: parent of default run directories.

    Returns:
        ``(RunDir, resuming)``; ``resuming`` is True when the directory holds
        the state of an unfinished run of the same experiment.

    Raises:
        RunDirError: the directory cannot be used (the message says why).

    Example:
        >>> import tempfile
        >>> run, resuming = open_run_dir(tempfile.mkdtemp() + "/run", {"epochs": 1})
        >>> resuming
        False
    """
    if path is None:
        if resume:
            found = latest_unfinished_run(root)
            if found is None:
                raise RunDirError(f"--resume: no unfinished run under {root}/")
            path = found
        else:
            path = default_run_path(root)
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"--run-dir: {path} exists and is not a directory")
    try:
        entries = [p for p in path.iterdir() if p.name != "run.lock"] if path.is_dir() else []
    except OSError as exc:
        raise RunDirError(f"--run-dir: cannot list {path} ({exc.strerror or exc})") from None
    run = RunDir(path)
    if not entries:
        if resume:
            raise RunDirError(f"--resume: {path} holds no run to resume")
        return run, False
    if not _is_run_dir(path):
        raise RunDirError(
            f"--run-dir: {path} is not empty and is not a run directory; "
            "choose another directory"
        )
    if overwrite:
        run.lock()
        for p in path.iterdir():
            if p.name == "run.lock":
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        run.unlock()
        return run, False
    if run.is_finished():
        raise RunDirError(
            f"--run-dir: {path} holds a finished run; pass --overwrite to replace it "
            "or choose another directory"
        )
    try:
        with open(run.config_path, encoding="utf-8") as f:
            old = json.load(f)
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{run.config_path}: unreadable ({exc}); pass --overwrite") from None
    old = {k: v for k, v in old.items() if k in experiment}
    diff = _differences(old, experiment)
    if diff:
        from reid_tf.config import flag_of

        flags = ", ".join(flag_of(k) for k in diff[:5])
        raise RunDirError(
            f"--run-dir: {path} holds an unfinished run with other settings ({flags}); "
            "pass --overwrite to replace it or choose another directory"
        )
    return run, True
