"""Benchmark of the aligned local distance matrix (Numba reference vs NumPy).

Measures reference.local_distance_matrix, without and with a shortlist, on
clustered synthetic local features (reference.synthetic.clustered_features)
against the plain blocked NumPy baseline in benchmarks/numpy_local_baseline.py,
both in this process, and prints a table of medians over repeats. The JIT
compilation (or disk-cache load) of the first call is timed separately, and
the float32 result is checked against a float64 recomputation on sampled
pairs.

Usage:
    python benchmarks/bench_local_distance.py            # Market-1501 scale
    python benchmarks/bench_local_distance.py --quick    # small, seconds
    python benchmarks/bench_local_distance.py --json
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import numpy_local_baseline as baseline  # noqa: E402
from reference import jit_cache_hits, local_distance_matrix, local_distance_pairs  # noqa: E402
from reference.synthetic import clustered_features  # noqa: E402

FULL = dict(queries=3368, gallery=15913, parts=8, channels=128, shortlist=100)
QUICK = dict(queries=200, gallery=1500, parts=8, channels=128, shortlist=100)
# targets (seconds, on the project's 2-core machine) at full scale
TARGETS = {"matrix": 7.0, "shortlist": 0.2}


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Time reference.local_distance_matrix against a blocked NumPy baseline."
    )
    p.add_argument("--quick", action="store_true",
                   help=f"small problem ({QUICK['queries']} x {QUICK['gallery']}) instead of "
                        f"Market-1501 scale ({FULL['queries']} x {FULL['gallery']})")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed repeats of the Numba reference per operation (median reported)")
    p.add_argument("--baseline-repeats", type=int, default=None,
                   help="timed repeats of the NumPy baseline (default: same as --repeats)")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the NumPy baseline (speedup column left empty)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic features")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args(argv)
    if args.repeats < 1 or (args.baseline_repeats is not None and args.baseline_repeats < 1):
        p.error("--repeats/--baseline-repeats: expected a positive integer")
    if args.baseline_repeats is None:
        args.baseline_repeats = args.repeats
    return args


def timed(fn, repeats):
    """(median wall seconds, median CPU seconds, last result)."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), result


def first_call_seconds(X, Y, shortlist):
    """Time the first (compiling or cache-loading) calls on a tiny problem."""
    t = time.perf_counter()
    local_distance_matrix(X[:3], Y[:5])
    local_distance_matrix(X[:3], Y[:5], shortlist=shortlist[:3] % 5)
    seconds = time.perf_counter() - t
    return seconds, jit_cache_hits() > 0


def main(argv=None):
    args = parse_args(argv)
    size = QUICK if args.quick else FULL
    def log(message):  # progress goes to stderr, results to stdout
        print(message, file=sys.stderr, flush=True)

    log(f"generating features {size['queries']} x {size['gallery']}, H={size['parts']}, "
        f"c={size['channels']} ...")
    data = clustered_features(size["queries"], size["gallery"], dim=8, parts=size["parts"],
                              part_dim=size["channels"], seed=args.seed)
    X, Y = data["query"]["local"], data["gallery"]["local"]
    rng = np.random.default_rng(args.seed)
    shortlist = rng.integers(0, size["gallery"], (size["queries"], size["shortlist"]))
    load_before = os.getloadavg()[0]

    log("first call (JIT compile or disk-cache load) ...")
    jit_seconds, from_cache = first_call_seconds(X, Y, shortlist)

    rows = []
    ops = [
        ("matrix", f"matrix {size['queries']}x{size['gallery']}",
         lambda: local_distance_matrix(X, Y), lambda: baseline.local_distance_matrix(X, Y)),
        ("shortlist", f"shortlist K={size['shortlist']}",
         lambda: local_distance_matrix(X, Y, shortlist=shortlist),
         lambda: baseline.local_distance_shortlist(X, Y, shortlist)),
    ]
    results = {}
    for key, name, ours_fn, base_fn in ops:
        log(f"timing {name}: reference x{args.repeats} ...")
        wall, cpu, results[key] = timed(ours_fn, args.repeats)
        base = None
        if not args.no_baseline:
            log(f"timing {name}: NumPy baseline x{args.baseline_repeats} ...")
            base, _, base_result = timed(base_fn, args.baseline_repeats)
            agree = float(np.max(np.abs(base_result.astype(np.float64) - results[key])))
        target = None if args.quick else TARGETS[key]
        rows.append({
            "operation": name,
            "ours_s": wall,
            "ours_cpu_s": cpu,
            "numpy_s": base,
            "speedup": None if base is None else base / wall,
            "target_s": target,
            "met": None if target is None else wall <= target,
            "max_abs_diff_vs_numpy": None if base is None else agree,
        })

    # accuracy of the float32 matrix against float64 on sampled pairs
    qi = rng.integers(0, size["queries"], 2000)
    gi = rng.integers(0, size["gallery"], 2000)
    exact = local_distance_pairs(X[qi].astype(np.float64), Y[gi].astype(np.float64))
    err = np.abs(results["matrix"][qi, gi].astype(np.float64) - exact)
    accuracy = {"max_abs_error": float(err.max()), "max_rel_error": float((err / exact).max()),
                "mean_distance": float(exact.mean())}
    report = {
        "size": size, "repeats": args.repeats, "baseline_repeats": args.baseline_repeats,
        "first_call_s": jit_seconds, "first_call_from_disk_cache": from_cache,
        "rows": rows, "float32_vs_float64": accuracy,
        "load_average_1min": [load_before, os.getloadavg()[0]], "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0

    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    header = f"{'operation':<24} {'ours s':>9} {'(cpu s)':>9} {'NumPy s':>9} {'speedup':>8} {'target s':>9} {'met?':>5}"
    print(header)
    print("-" * len(header))
    for r in rows:
        met = "-" if r["met"] is None else ("yes" if r["met"] else "no")
        print(f"{r['operation']:<24} {fmt(r['ours_s'], '9.3f')} {fmt(r['ours_cpu_s'], '9.2f')} "
              f"{fmt(r['numpy_s'], '9.3f')} {fmt(r['speedup'], '7.1f')}x {fmt(r['target_s'], '9.2f')} {met:>5}")
    print(f"\nmedian of {args.repeats} (reference) / {args.baseline_repeats} (NumPy) runs, same process")
    print(f"first call (JIT compile{' - loaded from disk cache' if from_cache else ''}): {jit_seconds:.2f} s")
    print(f"float32 matrix vs float64 on 2000 sampled pairs: max abs error {accuracy['max_abs_error']:.2e}, "
          f"max rel error {accuracy['max_rel_error']:.2e} (mean distance {accuracy['mean_distance']:.3f})")
    print(f"1-min load average before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs (above the CPU count means other processes competed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
