"""The GPU benchmark: one training step of AlignedReID on each framework, and
a short training run (``python -m benchmarks.gpu``; benchmarks/gpu/README.md).

Parts, each in processes of its own (``KERAS_BACKEND`` is chosen per process):

* ``keras-jax``, ``keras-torch``: the project's ResNet-50 model and
  ``AlignedReIDModel`` (global + local TriHard + ID loss), batch P x K =
  40 x 4, ``mixed_bfloat16``, ``jit_compile=True`` (Keras on PyTorch: eager,
  see ``keras-torch-jit``), at 224 x 224 and 256 x 128: images/s from the
  median step after the warm-up, and the peak device memory;
* ``torch``: the same step as plain PyTorch (torchvision ResNet-50,
  :mod:`benchmarks.gpu.torch_reid`), ``torch.autocast`` to bfloat16;
* ``keras-torch-jit`` (not run unless named): Keras on PyTorch with
  ``jit_compile=True`` (``torch.compile``);
* ``train``: ``train.py`` on the synthetic data (``KERAS_BACKEND=jax`` by
  default), one evaluation per epoch: the loss and rank-1 per epoch.

``--tiny`` runs every part at a CPU size (the ``tiny`` backbone, a small
PyTorch trunk, 64 x 32 images, batches of 4 x 2, float32, 2 timed steps).
Results: a Markdown table (``--markdown``, also printed) and JSON (``--json``).
"""

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reid_common import atomic_write_json, atomic_write_text

ROOT = Path(__file__).resolve().parents[2]
STEP_PARTS = ("keras-jax", "keras-torch", "torch", "keras-torch-jit")
PARTS = STEP_PARTS + ("train",)
DEFAULT_PARTS = ("keras-jax", "keras-torch", "torch", "train")
_MIN_PART_S = 20


def _size(text):
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH, got {text!r}") from None
    return height, width


def build_parser():
    """The benchmark's flags."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--json", metavar="PATH", default="gpu_benchmark.json",
                        help="write the results as JSON")
    parser.add_argument("--markdown", metavar="PATH", default=None,
                        help="also write the Markdown tables to this file")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(DEFAULT_PARTS),
                        help="what to run")
    parser.add_argument("--sizes", nargs="+", type=_size, default=[(224, 224), (256, 128)],
                        metavar="HxW", help="image sizes of the step parts")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=5,
                        help="untimed steps first (compilation happens here)")
    parser.add_argument("--part-timeout", type=float, default=240,
                        help="seconds one measurement may take")
    parser.add_argument("--train-backend", default="jax",
                        choices=("jax", "tensorflow", "torch"),
                        help="KERAS_BACKEND of the training part")
    parser.add_argument("--train-epochs", type=int, default=8, help="training part: epochs")
    parser.add_argument("--train-steps", type=int, default=40,
                        help="training part: batches per epoch")
    parser.add_argument("--train-timeout", type=float, default=240,
                        help="seconds the training part may take")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for everything: a part is cut short, or skipped, "
                             "so that the whole run ends within this (default 540; "
                             "--tiny: 1800)")
    parser.add_argument("--tiny", action="store_true",
                        help="CPU size: tiny models and images, 2 timed steps")
    return parser


def _tiny(args):
    args.sizes = [(64, 32)]
    args.steps, args.warmup = 2, 1
    args.train_epochs, args.train_steps = 2, 2
    # a busy CPU is slow at compiling; the tiny parts get more room
    args.part_timeout = max(args.part_timeout, 600)
    args.train_timeout = max(args.train_timeout, 600)


def _worker_argv(part, height, width, args):
    kind = "torch" if part == "torch" else "keras"
    argv = [sys.executable, "-m", "benchmarks.gpu.worker", kind,
            "--height", str(height), "--width", str(width),
            "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if part == "keras-torch":
        argv.append("--no-jit")
    if args.tiny:
        argv += ["--P", "4", "--K", "2", "--classes", "10", "--no-mixed",
                 "--backbone", "tiny" if kind == "keras" else "small"]
    return argv


def _env(backend=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend:
        env["KERAS_BACKEND"] = backend
    return env


def _last_line(text):
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _run(argv, env, timeout, cwd=None):
    """(returncode or None on timeout, stdout, stderr, seconds).

    The command runs in a session of its own; on timeout the whole session
    (data-loading workers too) is killed.
    """
    start = time.perf_counter()
    with subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            code = None
    return code, out or "", err or "", time.perf_counter() - start


def _timeout_error(code, err, out, timeout):
    if code is None:
        return f"timed out after {timeout:.0f} s"
    return f"exit {code}: {_last_line(err) or _last_line(out)}"


def run_step(part, height, width, args, timeout):
    """One step measurement in a subprocess; a dict with ``error`` when it failed."""
    backend = {"keras-jax": "jax", "keras-torch": "torch", "keras-torch-jit": "torch"}.get(part)
    code, out, err, seconds = _run(_worker_argv(part, height, width, args), _env(backend),
                                   timeout, cwd=ROOT)
    row = {"part": part, "height": height, "width": width, "wall_s": seconds}
    if code == 0:
        try:
            row.update(json.loads(_last_line(out)))
            return row
        except ValueError:
            pass
    row["error"] = _timeout_error(code, err, out, timeout)
    return row


def _train_argv(args, run_dir):
    argv = [sys.executable, str(ROOT / "train.py"), "--epochs", str(args.train_epochs),
            "--steps-per-epoch", str(args.train_steps), "--eval-every", "1",
            "--run-dir", str(run_dir), "--cache-dir", str(run_dir.parent / "cache"),
            "--json", "-", "--quiet"]
    if args.tiny:
        argv += ["--backbone", "tiny", "--image-size", "64", "32", "--P", "4", "--K", "2",
                 "--synthetic-identities", "16", "--synthetic-images", "6"]
    else:
        argv += ["--backbone", "resnet50", "--image-size", "256", "128", "--P", "40",
                 "--K", "4", "--jit-compile"]
    return argv


def read_training(run_dir, summary):
    """Per-epoch loss and rank-1 from a run's ``log.csv`` and its summary.

    Returns:
        list of dicts (epoch 0 = before training, no loss): ``epoch``,
        ``loss``, ``rank1_global``, ``rank1_global_local``.
    """
    rows = []
    for name, dataset in sorted(summary.get("datasets", {}).items()):
        before = dataset.get("before", {})
        rows.append({"epoch": 0, "loss": None,
                     "rank1_global": before.get("global", {}).get("rank1"),
                     "rank1_global_local": before.get("global+local", {}).get("rank1")})
        prefix = name + "/"
        break
    else:
        prefix = None
    with open(Path(run_dir) / "log.csv", newline="", encoding="utf-8") as f:
        for line in csv.DictReader(f):
            row = {"epoch": int(line["epoch"]), "loss": float(line["loss"])}
            if prefix:
                for key, column in (("rank1_global", "global/rank1"),
                                    ("rank1_global_local", "global+local/rank1")):
                    value = line.get(prefix + column)
                    row[key] = float(value) if value not in (None, "") else None
            rows.append(row)
    return rows


def run_training(args, timeout):
    """``train.py`` for a few epochs; the per-epoch curve or an ``error``."""
    with tempfile.TemporaryDirectory(prefix="gpu_bench_train_") as tmp:
        run_dir = Path(tmp) / "run"
        code, out, err, seconds = _run(_train_argv(args, run_dir), _env(args.train_backend),
                                       timeout, cwd=tmp)
        result = {"backend": args.train_backend, "wall_s": seconds,
                  "epochs": args.train_epochs, "steps_per_epoch": args.train_steps}
        if code != 0:
            result["error"] = _timeout_error(code, err, out, timeout)
            return result
        summary = json.loads(_last_line(out))
        result["train_seconds"] = summary.get("train_seconds")
        result["curve"] = read_training(run_dir, summary)
    return result


def _fmt(value, pattern):
    return "-" if value is None else pattern.format(value)


def markdown(results):
    """The step table and the training curve as Markdown."""
    lines = ["| framework | image | batch | bf16 | jit | images/s | peak memory (GiB) "
             "| first step (s) | note |", "|---|---|---|---|---|---|---|---|---|"]
    for row in results["steps"]:
        peak = row.get("peak_memory_bytes")
        lines.append(
            f"| {row['part']} | {row['height']}x{row['width']} | {row.get('batch', '-')} "
            f"| {_fmt(row.get('mixed_bfloat16'), '{}')} | {_fmt(row.get('jit'), '{}')} "
            f"| {_fmt(row.get('images_per_s'), '{:.1f}')} "
            f"| {_fmt(None if peak is None else peak / 2**30, '{:.2f}')} "
            f"| {_fmt(row.get('first_step_s'), '{:.1f}')} | {row.get('error', '')} |")
    training = results.get("training")
    if training:
        lines += ["", f"Training (`train.py`, KERAS_BACKEND={training['backend']}, "
                      f"{training['epochs']} epochs x {training['steps_per_epoch']} batches, "
                      f"{training['wall_s']:.0f} s in all):", ""]
        if "error" in training:
            lines.append(f"failed: {training['error']}")
        else:
            lines += ["| epoch | loss | rank-1 global | rank-1 global+local |",
                      "|---|---|---|---|"]
            for row in training["curve"]:
                lines.append(f"| {row['epoch']} | {_fmt(row['loss'], '{:.3f}')} "
                             f"| {_fmt(row['rank1_global'], '{:.3f}')} "
                             f"| {_fmt(row['rank1_global_local'], '{:.3f}')} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.tiny:
        _tiny(args)
    if args.budget is None:
        args.budget = 1800 if args.tiny else 540
    start = time.perf_counter()
    results = {"settings": {k: v for k, v in vars(args).items()}, "steps": []}
    jobs = [(part, h, w) for part in args.parts if part in STEP_PARTS for h, w in args.sizes]
    def remaining():
        return args.budget - (time.perf_counter() - start)

    for index, (part, height, width) in enumerate(jobs, start=1):
        print(f"[{index}/{len(jobs)}] {part} {height}x{width} ({remaining():.0f} s of the "
              "budget left) ...", file=sys.stderr, flush=True)
        if remaining() < _MIN_PART_S:
            row = {"part": part, "height": height, "width": width, "wall_s": 0.0,
                   "error": "skipped: the time budget (--budget) is spent"}
        else:
            row = run_step(part, height, width, args, min(args.part_timeout, remaining()))
        print(f"    {_fmt(row.get('images_per_s'), '{:.1f} images/s')} "
              f"({row['wall_s']:.0f} s) {row.get('error', '')}", file=sys.stderr, flush=True)
        results["steps"].append(row)
    if "train" in args.parts:
        print(f"training: train.py, KERAS_BACKEND={args.train_backend} ...", file=sys.stderr,
              flush=True)
        results["training"] = run_training(args, max(min(args.train_timeout, remaining()),
                                                     _MIN_PART_S))
    results["total_seconds"] = time.perf_counter() - start
    text = markdown(results)
    atomic_write_json(args.json, results)
    if args.markdown:
        atomic_write_text(args.markdown, text)
    print(text)
    failed = [row for row in results["steps"] if "error" in row]
    return 1 if failed or "error" in results.get("training", {}) else 0
