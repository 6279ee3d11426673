"""Re-ranking at MSMT17 scale against this machine's GEMM floor.

``reference.re_rank_features`` spends most of its time on the N x N distance
blocks (N = Q + G): one float32 matrix product per block of rows against the
queries and one against the gallery. The floor is those products alone, with
the same block size and the same output buffers, measured in the same run on
the same features: nothing re-ranking does can be faster than it. The ratio
ours / floor says how much the neighbour selection, the sparse steps and the
Jaccard step add on top.

Each measurement runs in its own worker process so that its peak resident
memory (VmHWM, the whole process: features, output and work arrays) can be
read. Features are ``reference.synthetic.clustered_features`` (seed 0).

Usage:
    python benchmarks/bench_rerank_floor.py           # 11,659 + 82,161 items, 2048-d (minutes, ~6 GB)
    python benchmarks/bench_rerank_floor.py --quick   # 600 + 3,000 items, 256-d (seconds)
    python benchmarks/bench_rerank_floor.py --json
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.bench_metrics import load_average  # noqa: E402
from benchmarks.bench_rerank import proc_status  # noqa: E402

MSMT17 = (11659, 82161, 2048)
QUICK = (600, 3000, 256)
GIB = float(1 << 30)
TARGET_RATIO = 1.5
TARGET_BYTES = 8e9


def _features(nq, ng, dim):
    from reference.synthetic import clustered_features

    data = clustered_features(nq, ng, dim=dim, seed=0)
    return data["query"]["global"], data["gallery"]["global"]


def gemm_floor(xq, xg, rows):
    """Seconds of the N x N distance products alone: for every block of ``rows``
    items, ``block @ xq.T`` and ``block @ xg.T`` into preallocated buffers
    (what ``re_rank_features`` computes before its per-element work)."""
    left = np.empty((rows, xq.shape[0]), np.float32)
    right = np.empty((rows, xg.shape[0]), np.float32)
    t0 = time.perf_counter()
    for x in (xq, xg):
        for i0 in range(0, x.shape[0], rows):
            i1 = min(i0 + rows, x.shape[0])
            np.matmul(x[i0:i1], xq.T, out=left[: i1 - i0])
            np.matmul(x[i0:i1], xg.T, out=right[: i1 - i0])
    return time.perf_counter() - t0


def worker(kind, nq, ng, dim):
    """One measurement in this process; a JSON-able dict."""
    from reference.rerank import BLOCK_ROWS, re_rank_features

    xq, xg = _features(nq, ng, dim)
    re_rank_features(xq[:50], xg[:200])  # load the cached kernels
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = proc_status("VmRSS")
    c0 = time.process_time()
    if kind == "floor":
        seconds = gemm_floor(xq, xg, min(BLOCK_ROWS, nq + ng))
    elif kind == "ours":
        t0 = time.perf_counter()
        out = re_rank_features(xq, xg)
        seconds = time.perf_counter() - t0
        if not np.isfinite(out).all():
            raise RuntimeError("re_rank_features returned non-finite values")
    else:
        raise ValueError(f"unknown worker kind {kind!r}")
    n = nq + ng
    return {"seconds": seconds, "cpu_seconds": time.process_time() - c0,
            "peak_rss": proc_status("VmHWM"), "rss_before": before,
            "gflops": 2.0 * n * n * dim / seconds / 1e9}


def _spawn(kind, scale, log):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind,
           "--scale", ",".join(map(str, scale))]
    log(f"  {kind} at {scale[0]:,} + {scale[1]:,} items ({scale[2]}-d) ...")
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"worker {kind} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def format_table(summary):
    """The result as a Markdown table (one row per measurement)."""
    nq, ng, dim = summary["scale"]
    ours, floor = summary["ours"], summary["floor"]
    lines = [
        f"re_rank_features {nq:,} + {ng:,} items, {dim}-d, {summary['cpus']} CPUs, "
        f"{summary['threads']} threads",
        "",
        "| measurement | wall s | CPU s (all threads) | GFLOP/s of the N x N products | "
        "peak RSS |",
        "|---|---:|---:|---:|---:|",
        f"| ours (re_rank_features) | {ours['seconds']:.1f} | {ours['cpu_seconds']:.1f} | "
        f"{ours['gflops']:.0f} | {ours['peak_rss'] / GIB:.2f} GiB |",
        f"| GEMM floor (the N x N distance blocks, sgemm alone) | {floor['seconds']:.1f} | "
        f"{floor['cpu_seconds']:.1f} | {floor['gflops']:.0f} | "
        f"{floor['peak_rss'] / GIB:.2f} GiB |",
        "",
        f"CPU-time ratio ours / floor: {summary['cpu_ratio']:.2f} (steadier than the wall-time "
        "ratio on a shared machine)",
        f"ratio ours / floor: {summary['ratio']:.2f} (target <= {TARGET_RATIO}: "
        f"{'met' if summary['ratio'] <= TARGET_RATIO else 'NOT met'}); peak RSS "
        f"{ours['peak_rss'] / GIB:.2f} GiB (target <= {TARGET_BYTES / 1e9:.0f} GB: "
        f"{'met' if ours['peak_rss'] <= TARGET_BYTES else 'NOT met'})",
        f"load average before/after: {summary['load_average_before']} / "
        f"{summary['load_average_after']}",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"small scale ({QUICK[0]:,} + {QUICK[1]:,} items, {QUICK[2]}-d)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--scale", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        nq, ng, dim = (int(v) for v in args.scale.split(","))
        print(json.dumps(worker(args.worker, nq, ng, dim)))
        return 0

    import numba

    scale = QUICK if args.quick else MSMT17
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    summary = {"scale": scale, "cpus": os.cpu_count(), "threads": numba.get_num_threads(),
               "load_average_before": load_average()}
    log("re_rank_features against the GEMM floor, one worker process each ...")
    summary["floor"] = _spawn("floor", scale, log)
    summary["ours"] = _spawn("ours", scale, log)
    summary["ratio"] = summary["ours"]["seconds"] / summary["floor"]["seconds"]
    summary["cpu_ratio"] = summary["ours"]["cpu_seconds"] / summary["floor"]["cpu_seconds"]
    summary["load_average_after"] = load_average()
    summary["met"] = bool(max(summary["ratio"], summary["cpu_ratio"]) <= TARGET_RATIO
                          and summary["ours"]["peak_rss"] <= TARGET_BYTES)
    print(json.dumps(summary, indent=2) if args.json else format_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
