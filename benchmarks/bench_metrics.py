"""Speed of reference.metrics.evaluate against a plain NumPy loop.

Both score the same [Q, G] distance matrix of realistic clustered features
(reference.synthetic.clustered_features, Euclidean distances) under the
Market-1501 protocol. The NumPy baseline (benchmarks/numpy_baselines.py)
argsorts the whole gallery of every query; it is timed on a subset of the
queries and extrapolated linearly to all of them (the table says so). The
JIT compile time is measured once in a subprocess with an empty Numba cache.

Usage:
    python benchmarks/bench_metrics.py            # Market-1501 scale, 3,368 x 15,913
    python benchmarks/bench_metrics.py --quick    # small scale, seconds
    python benchmarks/bench_metrics.py --json     # machine-readable output
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def load_average():
    """The 1-minute load average, or None where unavailable."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def median_time(fn, repeats, cpu=None):
    """Median wall time of ``repeats`` calls of fn (seconds) and its last result.

    When a list is passed as ``cpu``, the median CPU time (all threads) is appended to it.
    """
    times, cpu_times = [], []
    result = None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    if cpu is not None:
        cpu.append(float(np.median(cpu_times)))
    return float(np.median(times)), result


def print_table(rows, title):
    """Print rows of dicts (operation, ours_s, baseline_s, speedup, target, met, note).

    ``ours_text`` / ``baseline_text`` replace the formatted seconds when given.
    """
    header = ["operation", "ours (median)", "baseline", "speedup", "target", "met"]
    lines = []
    for r in rows:
        lines.append([
            r["operation"],
            r.get("ours_text") or _fmt(r.get("ours_s"), "s"),
            r.get("baseline_text") or _fmt(r.get("baseline_s"), "s"),
            "-" if r.get("speedup") is None else f"{r['speedup']:.0f}x",
            r.get("target") or "-",
            {True: "yes", False: "NO", None: "-"}[r.get("met")],
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    print(title)
    for line in [header, ["-" * w for w in widths]] + lines:
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)))
    for r in rows:
        if r.get("note"):
            print(f"  note ({r['operation']}): {r['note']}")


def _fmt(value, unit):
    if value is None:
        return "-"
    return f"{value:.3f} {unit}" if value < 10 else f"{value:.1f} {unit}"


def compile_time(snippet):
    """Seconds of a fresh interpreter running ``snippet`` with an empty Numba cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        code = f"import time; t = time.perf_counter(); {snippet}; print(time.perf_counter() - t)"
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small scale (400 x 2,000, 128-d) for a fast check")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls of evaluate (median)")
    parser.add_argument("--baseline-queries", type=int, default=300,
                        help="queries timed with the NumPy baseline (extrapolated to all)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.baseline_queries < 1:
        print("error: --repeats and --baseline-queries must be >= 1", file=sys.stderr)
        return 2

    from reference.euclidean import pairwise_distance
    from reference.metrics import evaluate
    from reference.synthetic import clustered_features
    from benchmarks.numpy_baselines import evaluate_market_numpy

    nq, ng, dim = (400, 2000, 128) if args.quick else (3368, 15913, 2048)
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    load_before = load_average()
    log(f"features {nq} x {ng}, {dim}-d ...")
    data = clustered_features(nq, ng, dim=dim, seed=0)
    q, g = data["query"], data["gallery"]
    distmat = pairwise_distance(q["global"], g["global"])
    del data
    labels = (q["pid"], g["pid"], q["camid"], g["camid"])

    log("compile (empty cache, subprocess) ...")
    compile_s = compile_time(
        "import numpy as np; from reference.metrics import evaluate; "
        "d = np.random.default_rng(0).random((4, 6)); "
        "evaluate(d, [1, 2, 1, 3], [1, 2, 3, 1, 2, 3], [0, 0, 1, 1], [1, 1, 1, 0, 0, 0]); "
        "evaluate(d, [1, 2, 1, 3], [1, 2, 3, 1, 2, 3], [0, 0, 1, 1], [1, 1, 1, 0, 0, 0], 'cuhk03')"
    )
    evaluate(distmat, *labels)  # load the cached kernels
    log("evaluate (market1501) ...")
    cpu = []
    ours_s, ours = median_time(lambda: evaluate(distmat, *labels), args.repeats, cpu)
    log("evaluate (cuhk03 single-shot, 10 repeats) ...")
    cuhk_s, _ = median_time(lambda: evaluate(distmat, *labels, protocol="cuhk03"),
                            max(1, args.repeats // 2))

    sub = np.random.default_rng(0).choice(nq, min(nq, args.baseline_queries), replace=False)
    sub.sort()
    log(f"NumPy baseline on {sub.size} queries ...")
    t0, c0 = time.perf_counter(), time.process_time()
    base = evaluate_market_numpy(distmat, *labels, queries=sub)
    base_s = (time.perf_counter() - t0) * nq / sub.size
    base_cpu = (time.process_time() - c0) * nq / sub.size
    # agreement on the subset (continuous distances: no ties)
    ours_sub = evaluate(distmat[sub], labels[0][sub], labels[1], labels[2][sub], labels[3])
    agree = abs(ours_sub["mAP"] - base["mAP"]) < 1e-9 and np.allclose(ours_sub["cmc"], base["cmc"])

    target = 0.15
    rows = [
        {"operation": f"evaluate market1501 {nq}x{ng}", "ours_s": ours_s, "baseline_s": base_s,
         "speedup": base_s / ours_s, "target": f"<= {target} s" if not args.quick else None,
         "met": (ours_s <= target) if not args.quick else None,
         "note": f"baseline timed on {sub.size} queries, extrapolated to {nq}; "
                 f"results agree on that subset: {agree}; CPU time (all threads): ours "
                 f"{cpu[0]:.3f} s, baseline {base_cpu:.1f} s"},
        {"operation": f"evaluate cuhk03 (10 draws) {nq}x{ng}", "ours_s": cuhk_s},
        {"operation": "JIT compile (empty cache, incl. import)", "ours_s": compile_s},
    ]
    summary = {
        "scale": {"num_query": nq, "num_gallery": ng, "dim": dim},
        "rows": rows,
        "mAP": ours["mAP"], "rank1": float(ours["cmc"][0]),
        "load_average_before": load_before, "load_average_after": load_average(),
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(rows, f"reference.metrics.evaluate, {nq} x {ng} (mAP {ours['mAP']:.4f}, "
                          f"rank-1 {ours['cmc'][0]:.4f})")
        print(f"load average before/after: {summary['load_average_before']} / "
              f"{summary['load_average_after']} on {summary['cpus']} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
