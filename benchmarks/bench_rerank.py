"""Speed and memory of reference.rerank against the dense NumPy re-ranking.

Inputs are realistic clustered features (reference.synthetic.clustered_features)
and their Euclidean distance matrices q_g, q_q, g_g. Every measurement runs in
its own subprocess, so that its peak resident memory can be read: the peak is
reset (``/proc/self/clear_refs``) once the inputs exist, and "peak RSS beyond
the inputs" is the process's peak during the call minus its resident memory
just before it. The dense baseline (benchmarks/numpy_baselines.py, three
N x N arrays) runs at full scale when enough memory is available, otherwise at
a reduced scale with time and memory extrapolated by (N_full / N_reduced)^2;
the table says which. The JIT compile time is measured once with an empty
Numba cache.

Usage:
    python benchmarks/bench_rerank.py            # Market-1501 scale, 3,368 + 15,913 items
    python benchmarks/bench_rerank.py --quick    # small scale, seconds
    python benchmarks/bench_rerank.py --msmt17   # re_rank_features at MSMT17 scale
                                                 # (11,659 + 82,161 items, 2048-d; minutes, ~6 GB)
    python benchmarks/bench_rerank.py --json
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.bench_metrics import compile_time, load_average, print_table  # noqa: E402

MARKET = (3368, 15913, 2048)
QUICK = (300, 1500, 128)
MSMT17 = (11659, 82161, 2048)
GIB = float(1 << 30)


def proc_status(field):
    """A /proc/self/status memory field in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _inputs(nq, ng, dim):
    from reference.euclidean import pairwise_distance
    from reference.synthetic import clustered_features

    data = clustered_features(nq, ng, dim=dim, seed=0)
    q, g = data["query"]["global"], data["gallery"]["global"]
    del data
    return pairwise_distance(q, g), pairwise_distance(q, q), pairwise_distance(g, g)


def worker(kind, nq, ng, dim, repeats):
    """Run one measurement in this process; return a JSON-able dict."""
    from reference.rerank import re_rank, re_rank_features

    if kind == "msmt17":
        from reference.synthetic import clustered_features

        t0 = time.perf_counter()
        data = clustered_features(nq, ng, dim=dim, seed=0)
        q, g = data["query"]["global"], data["gallery"]["global"]
        del data
        gen_s = time.perf_counter() - t0
        gen_peak = proc_status("VmHWM")
        re_rank_features(q[:50], g[:200])  # load the cached kernels
        _reset_peak()
        before = proc_status("VmRSS")
        t0, c0 = time.perf_counter(), time.process_time()
        out = re_rank_features(q, g)
        seconds = time.perf_counter() - t0
        return {"seconds": seconds, "cpu_seconds": time.process_time() - c0, "peak_rss": proc_status("VmHWM"), "rss_before": before,
                "generation_peak_rss": gen_peak, "generation_s": gen_s,
                "lifetime_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "output_bytes": out.nbytes, "finite": bool(np.isfinite(out).all())}

    q_g, q_q, g_g = _inputs(nq, ng, dim)
    if kind == "ours":
        re_rank(q_g[:20, :100], q_q[:20, :20], g_g[:100, :100])  # load the cached kernels
        _reset_peak()
        before = proc_status("VmRSS")
        times, cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            out = re_rank(q_g, q_q, g_g)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            del out
        return {"seconds": float(np.median(times)), "times": times,
                "cpu_seconds": float(np.median(cpu)),
                "peak_beyond_inputs": proc_status("VmHWM") - before}
    if kind == "dense":
        from benchmarks.numpy_baselines import re_rank_numpy

        _reset_peak()
        before = proc_status("VmRSS")
        t0, c0 = time.perf_counter(), time.process_time()
        dense = re_rank_numpy(q_g, q_q, g_g)
        seconds = time.perf_counter() - t0
        cpu_seconds = time.process_time() - c0
        peak = proc_status("VmHWM") - before
        ours = re_rank(q_g, q_q, g_g)
        return {"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_beyond_inputs": peak,
                "max_abs_diff": float(np.abs(ours - dense).max())}
    raise ValueError(f"unknown worker kind {kind!r}")


def _spawn(kind, scale, repeats, log):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind,
           "--scale", ",".join(map(str, scale)), "--repeats", str(repeats)]
    log(f"  {kind} at {scale[0]} x {scale[1]} ({scale[2]}-d) ...")
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"worker {kind} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small scale (300 + 1,500, 128-d)")
    parser.add_argument("--msmt17", action="store_true",
                        help="only re_rank_features at MSMT17 scale: time and peak RSS")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--repeats", type=int, default=3, help="timed re_rank calls (median)")
    parser.add_argument("--dense-fraction", type=float, default=None,
                        help="run the dense baseline on this fraction of the items "
                             "(default: 1 if memory allows, else 0.5) and extrapolate")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--scale", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        print("error: --repeats must be >= 1", file=sys.stderr)
        return 2
    if args.dense_fraction is not None and not 0 < args.dense_fraction <= 1:
        print("error: --dense-fraction must lie in (0, 1]", file=sys.stderr)
        return 2

    if args.worker:
        nq, ng, dim = (int(v) for v in args.scale.split(","))
        print(json.dumps(worker(args.worker, nq, ng, dim, args.repeats)))
        return 0

    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    load_before = load_average()
    summary = {"cpus": os.cpu_count(), "load_average_before": load_before}

    if args.msmt17:
        log("re_rank_features at MSMT17 scale (once) ...")
        r = _spawn("msmt17", MSMT17, 1, log)
        summary.update({"scale": dict(zip(("num_query", "num_gallery", "dim"), MSMT17)), **r})
        rows = [{"operation": f"re_rank_features {MSMT17[0]}+{MSMT17[1]} ({MSMT17[2]}-d)",
                 "ours_s": r["seconds"], "baseline_text": "(dense: > 100 GB)",
             "target": "<= 8 GB peak RSS",
                 "met": r["peak_rss"] <= 8 * GIB,
                 "note": f"CPU time {r['cpu_seconds']:.0f} s (all threads); "
                         f"peak RSS during the call {r['peak_rss'] / GIB:.2f} GiB (process total, "
                         f"features included; {r['rss_before'] / GIB:.2f} GiB before the call); "
                         f"feature generation beforehand peaked at "
                         f"{r['generation_peak_rss'] / GIB:.2f} GiB; output "
                         f"{r['output_bytes'] / GIB:.2f} GiB"}]
    else:
        scale = QUICK if args.quick else MARKET
        nq, ng, dim = scale
        log("compile (empty cache, subprocess) ...")
        compile_s = compile_time(
            "import numpy as np; from reference.rerank import re_rank, re_rank_features; "
            "x = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32); "
            "re_rank_features(x[:5], x[5:])")
        ours = _spawn("ours", scale, args.repeats, log)
        frac = args.dense_fraction
        if frac is None:
            need = 9.0 * GIB * ((nq + ng) / float(sum(MARKET[:2]))) ** 2 + 2 * GIB
            frac = 1.0 if _mem_available() > need else 0.5
        dscale = (max(1, int(nq * frac)), max(2, int(ng * frac)), dim)
        dense = _spawn("dense", dscale, 1, log)
        factor = ((nq + ng) / float(dscale[0] + dscale[1])) ** 2
        dense_s = dense["seconds"] * factor
        dense_mem = dense["peak_beyond_inputs"] * factor
        how = ("measured at full scale" if frac == 1.0 else
               f"measured at {dscale[0]} + {dscale[1]} items and extrapolated by x{factor:.2f}")
        full = not args.quick
        rows = [
            {"operation": f"re_rank {nq}+{ng} (time)", "ours_s": ours["seconds"],
             "baseline_s": dense_s, "speedup": dense_s / ours["seconds"],
             "target": "<= 3.5 s" if full else None,
             "met": ours["seconds"] <= 3.5 if full else None,
             "note": f"dense baseline {how}; max |ours - dense| = {dense['max_abs_diff']:.2e} "
                     f"at the baseline's scale; CPU time (all threads): ours "
                     f"{ours['cpu_seconds']:.2f} s, dense {dense['cpu_seconds']:.1f} s "
                     f"(at its scale)"},
            {"operation": f"re_rank {nq}+{ng} (peak RSS beyond inputs)",
             "ours_text": f"{ours['peak_beyond_inputs'] / GIB:.3f} GiB",
             "baseline_text": f"{dense_mem / GIB:.2f} GiB",
             "speedup": dense_mem / max(ours["peak_beyond_inputs"], 1),
             "target": "<= 2 GB" if full else None,
             "met": ours["peak_beyond_inputs"] <= 2e9 if full else None,
             "note": f"ours {ours['peak_beyond_inputs'] / GIB:.3f} GiB, "
                     f"dense {dense_mem / GIB:.2f} GiB ({how})"},
            {"operation": "JIT compile (empty cache, incl. import)", "ours_s": compile_s},
        ]
        summary.update({"scale": dict(zip(("num_query", "num_gallery", "dim"), scale)),
                        "ours": ours, "dense": dense, "dense_scale": dscale,
                        "dense_extrapolation_factor": factor, "compile_s": compile_s})
    summary["rows"] = rows
    summary["load_average_after"] = load_average()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(rows, "reference.rerank")
        print(f"load average before/after: {summary['load_average_before']} / "
              f"{summary['load_average_after']} on {summary['cpus']} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
