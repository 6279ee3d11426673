"""Which run directory a training command continues, and how a run stops.

The rule when no directory is named (no ``run_dir``, no ``resume``, no
``new_run``): among the run directories directly under the runs root
(``runs/``) whose ``config.json`` holds the same experiment settings
(:meth:`reid_tf.config.TrainConfig.experiment_dict`: every setting except
the per-invocation ones such as ``quiet``, ``json``, ``cache_dir``,
``tensorboard``), the newest resumable one is resumed. A run is resumable
when its ``status.json`` says ``interrupted`` (Ctrl-C, SIGTERM), or says
``running`` while no process holds its lock (the process was killed, for
example with SIGKILL). Finished and failed runs, and runs in use by a live
process, are never picked: a new ``runs/<UTC timestamp>`` starts, and one
line names the newest such run with the same settings and its state.
"Newest" is by the time ``status.json`` was last written.

A stop by Ctrl-C or SIGTERM leaves ``status.json`` at ``interrupted`` with
the position of the newest checkpoint (see :class:`TrainingInterrupted`);
:func:`stop_on_sigterm` turns SIGTERM into such a stop.
"""

import contextlib
import fcntl
import json
import signal
import threading
from pathlib import Path

from reid_tf.run_dir import RunDir, RunDirError, default_run_path, open_run_dir

__all__ = ["Terminated", "TrainingInterrupted", "choose_run_dir", "describe_checkpoint",
           "resumable", "run_in_use", "stop_on_sigterm"]


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM under :func:`stop_on_sigterm`."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C or SIGTERM; the run can be resumed.

    Args:
        run_dir: the run directory (its ``status.json`` says ``interrupted``).
        checkpoint: position of its newest checkpoint (``epoch``, ``step``,
            ``global_step``), or None when none was saved.
        reason: ``"Ctrl-C"`` or ``"SIGTERM"``.

    Example:
        >>> exc = TrainingInterrupted("runs/x", None, "SIGTERM")
        >>> isinstance(exc, KeyboardInterrupt), exc.reason
        (True, 'SIGTERM')
    """

    def __init__(self, run_dir, checkpoint, reason):
        super().__init__(f"{run_dir}: interrupted ({reason})")
        self.run_dir = Path(run_dir)
        self.checkpoint = checkpoint
        self.reason = reason


@contextlib.contextmanager
def stop_on_sigterm():
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread.

    The handler acts once: a second SIGTERM while the first one is being
    handled ends the process as SIGTERM normally does. Outside the main
    thread (where Python cannot install handlers) the block runs unchanged.

    Example:
        >>> with stop_on_sigterm():
        ...     signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        True
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def describe_checkpoint(position):
    """Words for a checkpoint position.

    Args:
        position: dict with ``epoch`` (0-based epoch training continues in),
            ``step`` (steps done in it) and ``global_step``.

    Returns:
        str.

    Example:
        >>> describe_checkpoint({"epoch": 0, "step": 2, "global_step": 2})
        'epoch 1, step 2 (global step 2)'
        >>> describe_checkpoint({"epoch": 1, "step": 0, "global_step": 3})
        'the end of epoch 1 (global step 3)'
    """
    epoch, step, gstep = (int(position[k]) for k in ("epoch", "step", "global_step"))
    where = f"epoch {epoch + 1}, step {step}" if step else f"the end of epoch {epoch}"
    return f"{where} (global step {gstep})"


def run_in_use(path):
    """Whether a live process holds the lock of run directory ``path``.

    Args:
        path: a run directory.

    Returns:
        bool (True also when the lock file cannot be opened).

    Example:
        >>> import tempfile
        >>> run = RunDir(tempfile.mkdtemp())
        >>> run.lock()
        >>> run_in_use(run.path)
        True
        >>> run.unlock()
        >>> run_in_use(run.path)
        False
    """
    try:
        f = open(RunDir(path).lock_path, "a+")
    except OSError:
        return True
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    return False


def resumable(path):
    """Whether a run directory holds a run that stopped without finishing.

    Args:
        path: a run directory.

    Returns:
        bool: ``status.json`` says ``interrupted``, or ``running`` and no
        live process holds the directory's lock.

    Example:
        >>> import tempfile
        >>> run = RunDir(tempfile.mkdtemp())
        >>> run.set_status("running")           # no process holds the lock
        >>> resumable(run.path)
        True
        >>> run.set_status("finished")
        >>> resumable(run.path)
        False
    """
    state = RunDir(path).status().get("state")
    return state in ("interrupted", "running") and not run_in_use(path)


def _same_settings(path, experiment):
    try:
        with open(RunDir(path).config_path, encoding="utf-8") as f:
            old = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(old, dict) and {k: old.get(k) for k in experiment} == experiment


def _last_update(path):
    run = RunDir(path)
    for p in (run.status_path, run.config_path):
        try:
            return p.stat().st_mtime_ns
        except OSError:
            continue
    return 0


def _same_settings_runs(root, experiment):
    """Run directories under ``root`` with these settings, newest first."""
    root = Path(root)
    try:
        children = [p for p in root.iterdir() if p.is_dir()]
    except OSError:
        return []
    found = [p for p in children if _same_settings(p, experiment)]
    return sorted(found, key=_last_update, reverse=True)


def _state_words(path):
    status = RunDir(path).status()
    state = status.get("state", "unknown")
    if state in ("running", "interrupted") and run_in_use(path):
        return "in use by a running process"
    message = status.get("message")
    return f"{state} ({message})" if state == "failed" and message else state


def choose_run_dir(path, experiment, *, overwrite=False, resume=False, new_run=False,
                   root="runs", log=None):
    """The run directory of a training command, created, resumed or refused.

    Without ``path``, ``resume`` and ``new_run``, the module's rule picks an
    interrupted run with the same settings, else a new ``root/<UTC
    timestamp>``; everything else is :func:`reid_tf.run_dir.open_run_dir`'s.

    Args:
        path: the requested directory or None.
        experiment: ``TrainConfig.experiment_dict()`` of the command.
        overwrite: delete an existing run in ``path`` and start afresh.
        resume: require resuming a checkpointed run.
        new_run: always start a new ``root/<timestamp>``.
        root: the runs root.
        log: callable(message) told which run is resumed, or why none is.

    Returns:
        ``(RunDir, resuming)``.

    Raises:
        RunDirError: the directory cannot be used, or ``resume`` finds no
            checkpoint in it (nothing is written in either case).

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> run, resuming = choose_run_dir(None, {"epochs": 1}, root=root)
        >>> resuming, run.path.parent == Path(root)
        (False, True)
    """
    say = log or (lambda message: None)
    if path is None and not resume:
        candidates = [] if new_run else _same_settings_runs(root, experiment)
        picked = next((p for p in candidates if resumable(p)), None)
        if picked is not None:
            say(f"resuming the interrupted run {picked}, which has the same settings")
            path = picked
        else:
            path = default_run_path(root)
            if candidates:
                say(f"{candidates[0]} holds a run with the same settings that is "
                    f"{_state_words(candidates[0])}; starting a new run in {path}")
    run, resuming = open_run_dir(path, experiment, overwrite=overwrite, resume=resume,
                                 root=root)
    if resume and not run.has_checkpoint():
        raise RunDirError(f"--resume: {run.path} holds no checkpoint yet")
    return run, resuming
