"""Benchmark of ``train.py`` on each Keras backend: seconds per epoch of a
tiny synthetic run, the same configuration on every backend, in one session.

Each backend runs ``train.py`` in a subprocess (``KERAS_BACKEND`` set) on the
same synthetic data (``tiny`` backbone, 64 x 32 images, P x K = 4 x 4,
``--steps-per-epoch`` steps, ``--epochs`` epochs) into a temporary run
directory; the per-epoch seconds are read from its ``log.csv`` (``time_s``).
The first epoch includes compilation (the JAX ``jit``, TensorFlow's graph
tracing) and is reported apart; the steady-state figure is the median of
the later epochs. Backends run one after another, in the order given, so
the numbers are comparable within one invocation only.

Usage::

    python benchmarks/bench_backends.py [--backends tensorflow,jax,torch]
        [--epochs 4] [--steps-per-epoch 10] [--json out.json]
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Seconds per epoch of a tiny synthetic train.py run on each Keras backend.")
    parser.add_argument("--backends", default="tensorflow,jax,torch",
                        help="comma-separated backends, run in this order "
                             "(default tensorflow,jax,torch)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (default 4)")
    parser.add_argument("--steps-per-epoch", type=int, default=10,
                        help="training steps per epoch (default 10)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser.parse_args(argv)


def run_backend(backend, *, cache_dir, run_dir, epochs, steps):
    """One ``train.py`` run; returns the epoch seconds and the wall time."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    args = [sys.executable, str(REPO / "train.py"), "--cache-dir", str(cache_dir),
            "--run-dir", str(run_dir), "--synthetic-identities", "16",
            "--synthetic-images", "6", "--image-size", "64", "32", "--P", "4", "--K", "4",
            "--epochs", str(epochs), "--steps-per-epoch", str(steps),
            "--checkpoint-every", str(steps), "--eval-batch-size", "32", "--quiet"]
    start = time.perf_counter()
    proc = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
        return {"backend": backend, "error": tail[0]}
    with open(run_dir / "log.csv", newline="") as f:
        seconds = [float(row["time_s"]) for row in csv.DictReader(f)]
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    return {"backend": backend, "first_epoch_s": seconds[0], "epoch_s": steady,
            "steps_per_s": steps / steady, "epoch_seconds": seconds, "run_wall_s": wall}


def main(argv=None):
    args = _parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as tmp:
        tmp = Path(tmp)
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            print(f"{backend}: training ...", file=sys.stderr, flush=True)
            rows.append(run_backend(backend, cache_dir=tmp / "cache", run_dir=tmp / backend,
                                    epochs=args.epochs, steps=args.steps_per_epoch))
    print(f"tiny backbone, 64x32, P x K = 4 x 4, {args.steps_per_epoch} steps per epoch, "
          f"{args.epochs} epochs, CPU")
    print(f"{'backend':<12}{'1st epoch s':>12}{'epoch s':>10}{'steps/s':>9}{'run s':>8}")
    for r in rows:
        if "error" in r:
            print(f"{r['backend']:<12} failed: {r['error']}")
            continue
        print(f"{r['backend']:<12}{r['first_epoch_s']:>12.2f}{r['epoch_s']:>10.2f}"
              f"{r['steps_per_s']:>9.2f}{r['run_wall_s']:>8.0f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"settings": vars(args), "results": rows}, f, indent=2)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
