"""Benchmark of the AlignedReID loss head alone, forward and backward.

One step = global distance matrix, batch-hard mining, aligned local distance
of the 2N mined pairs, TriHard (global + local) and ID losses, and the
gradients of their sum w.r.t. the head's inputs: global features [N, C],
local features [N, H, c] and identity logits [N, K]. Defaults: N = 160
(40 identities x 4 images), C = 2048, H = 8, c = 128, K = 751 (Market-1501).

Variants, all measured in the same process and interleaved round by round
(so that load from other processes hits every variant alike):

* ``reid_tf tf.function`` / ``reid_tf tf.function XLA`` -- ``reid_tf.losses``.
* ``plain TF baseline`` (and its XLA build) -- an independent plain
  TensorFlow loss head written in the most direct way: ``argmax`` mining on
  masked distances and the Eq. 2 DP as ``Hf * Hg`` Python-level cell updates.
* ``+ classifier`` rows (informational) add the ``C -> K`` Dense layer that
  produces the logits, with its weight gradient.

Usage::

    python benchmarks/bench_loss_head.py [--rounds 30] [--json out.json]

Prints a table (variant, median ms, p90 ms, target, met) and the load
average, since the CPU is shared.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

TARGET_MS = 12.0


def make_inputs(num_ids, per_id, dim, parts, part_dim, num_classes, seed=0):
    """Clustered random features: identity centres plus per-image noise.

    Args:
        num_ids, per_id: identities and images per identity (N = product).
        dim: C; parts: H; part_dim: c; num_classes: K.
        seed: random seed.

    Returns:
        ``(global [N, C], local [N, H, c], logits [N, K], labels [N])``.

    Example:
        >>> g, l, z, y = make_inputs(2, 2, 4, 3, 2, 5)
        >>> g.shape, l.shape, z.shape, y.shape
        ((4, 4), (4, 3, 2), (4, 5), (4,))
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_ids), per_id).astype("int32")
    g = rng.normal(size=(num_ids, dim))[labels] + 0.8 * rng.normal(size=(labels.size, dim))
    loc = (rng.normal(size=(num_ids, parts, part_dim))[labels]
           + 0.8 * rng.normal(size=(labels.size, parts, part_dim)))
    logits = rng.normal(size=(labels.size, num_classes))
    return (g.astype("float32"), np.maximum(loc, 0).astype("float32"),
            logits.astype("float32"), labels)


# --------------------------------------------------------------------------
# plain TensorFlow baseline (independent of reid_tf)


def baseline_losses(tf, g, loc, logits, labels, margin=0.5):
    """Direct plain-TF loss head: argmax mining, cell-by-cell DP."""
    sq = (tf.reduce_sum(g * g, 1)[:, None] + tf.reduce_sum(g * g, 1)[None, :]
          - 2.0 * tf.matmul(g, g, transpose_b=True))
    dist = tf.sqrt(tf.maximum(sq, 1e-12))
    same = tf.equal(labels[:, None], labels[None, :])
    big = tf.reduce_max(dist) + 1.0
    pos = tf.argmax(tf.where(same, dist, -1.0), axis=1)
    neg = tf.argmin(tf.where(same, big, dist), axis=1)
    pos, neg = tf.stop_gradient(pos), tf.stop_gradient(neg)

    def norm(v):
        return tf.sqrt(tf.maximum(tf.reduce_sum(v * v, -1), 1e-12))

    d_ap = norm(g - tf.gather(g, pos))
    d_an = norm(g - tf.gather(g, neg))
    global_loss = tf.reduce_mean(tf.nn.relu(d_ap - d_an + margin))

    a = tf.concat([loc, loc], 0)
    b = tf.gather(loc, tf.concat([pos, neg], 0))
    d = tf.tanh(norm(a[:, :, None, :] - b[:, None, :, :]) / 2.0)  # [2N, H, H]
    hf, hg = loc.shape[1], loc.shape[1]
    table = [[None] * hg for _ in range(hf)]
    for i in range(hf):
        for j in range(hg):
            cell = d[:, i, j]
            if i == 0 and j == 0:
                table[i][j] = cell
            elif i == 0:
                table[i][j] = table[i][j - 1] + cell
            elif j == 0:
                table[i][j] = table[i - 1][j] + cell
            else:
                table[i][j] = tf.minimum(table[i - 1][j], table[i][j - 1]) + cell
    path = table[-1][-1]
    n = tf.shape(loc)[0]
    local_loss = tf.reduce_mean(tf.nn.relu(path[:n] - path[n:] + margin))
    id_loss = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    return global_loss + local_loss + id_loss


def reid_losses(g, loc, logits, labels):
    """The loss head built from ``reid_tf.losses``."""
    from reid_tf import losses

    tri = losses.trihard_losses(g, loc, labels)
    return tri["global"] + tri["local"] + losses.id_loss(labels, logits)


def make_step(tf, loss_fn, with_classifier, jit):
    """A compiled forward+backward step returning the loss and gradients."""

    def step(g, loc, logits_or_w, labels):
        with tf.GradientTape() as tape:
            tape.watch([g, loc, logits_or_w])
            logits = tf.matmul(g, logits_or_w) if with_classifier else logits_or_w
            loss = loss_fn(g, loc, logits, labels)
        return (loss, *tape.gradient(loss, [g, loc, logits_or_w]))

    return tf.function(step, jit_compile=jit)


def _write_json(path, payload):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".bench-", suffix=".json", dir=directory)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)


def main(argv=None):
    """Run the benchmark; returns the exit status."""
    parser = argparse.ArgumentParser(
        description="Time the AlignedReID loss head (forward + backward) against a "
                    "plain-TF baseline in the same process.")
    parser.add_argument("--rounds", type=int, default=30,
                        help="timing rounds; every variant runs --steps steps per round "
                             "(default 30)")
    parser.add_argument("--steps", type=int, default=5,
                        help="timed steps per variant per round (default 5)")
    parser.add_argument("--warmup", type=int, default=5,
                        help="untimed steps per variant after compilation (default 5)")
    parser.add_argument("--ids", type=int, default=40, help="identities per batch (P)")
    parser.add_argument("--per-id", type=int, default=4, help="images per identity (K)")
    parser.add_argument("--dim", type=int, default=2048, help="global feature size C")
    parser.add_argument("--parts", type=int, default=8, help="local parts H")
    parser.add_argument("--part-dim", type=int, default=128, help="local feature size c")
    parser.add_argument("--classes", type=int, default=751, help="number of identities K")
    parser.add_argument("--no-baseline-xla", action="store_true",
                        help="skip the XLA build of the baseline")
    parser.add_argument("--no-classifier", action="store_true",
                        help="skip the informational rows that include the classifier")
    parser.add_argument("--json", metavar="PATH", help="write the results to PATH as JSON")
    args = parser.parse_args(argv)
    for name in ("rounds", "steps", "ids", "per_id", "dim", "parts", "part_dim", "classes"):
        if getattr(args, name) < 1:
            print(f"bench_loss_head: --{name.replace('_', '-')}: expected >= 1",
                  file=sys.stderr)
            return 2
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        print(f"bench_loss_head: --json: no such directory for {args.json!r}", file=sys.stderr)
        return 2

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import tensorflow as tf

    g, loc, logits, labels = make_inputs(args.ids, args.per_id, args.dim, args.parts,
                                         args.part_dim, args.classes)
    w = (np.random.default_rng(1).normal(size=(args.dim, args.classes)) * 0.02).astype("float32")
    tensors = [tf.constant(x) for x in (g, loc, logits, labels)]
    tensors_fc = [tensors[0], tensors[1], tf.constant(w), tensors[3]]

    def base(*a):
        return baseline_losses(tf, *a)

    variants = [
        ("reid_tf tf.function", make_step(tf, reid_losses, False, False), tensors, True),
        ("reid_tf tf.function XLA", make_step(tf, reid_losses, False, True), tensors, True),
        ("plain TF baseline (H*H-step DP)", make_step(tf, base, False, False), tensors, False),
    ]
    if not args.no_baseline_xla:
        variants.append(("plain TF baseline XLA", make_step(tf, base, False, True), tensors,
                         False))
    if not args.no_classifier:
        variants += [
            ("reid_tf + classifier (info)", make_step(tf, reid_losses, True, False),
             tensors_fc, False),
            ("reid_tf XLA + classifier (info)", make_step(tf, reid_losses, True, True),
             tensors_fc, False),
        ]

    load_before = os.getloadavg()
    compile_s = {}
    for name, fn, inputs, _ in variants:
        print(f"[bench] compiling {name}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        out = fn(*inputs)
        [o.numpy() for o in out]
        compile_s[name] = time.perf_counter() - t0
        for _ in range(args.warmup):
            [o.numpy() for o in fn(*inputs)]
    ref_loss = float(variants[0][1](*tensors)[0])
    base_loss = float(variants[2][1](*tensors)[0])

    times = {name: [] for name, *_ in variants}
    cpu = {name: 0.0 for name, *_ in variants}
    for r in range(args.rounds):
        if r % 10 == 0:
            print(f"[bench] round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
        for name, fn, inputs, _ in variants:
            c0 = time.process_time()
            for _ in range(args.steps):
                t0 = time.perf_counter()
                out = fn(*inputs)
                out[0].numpy()
                out[-1].numpy()
                times[name].append((time.perf_counter() - t0) * 1e3)
            cpu[name] += time.process_time() - c0
    load_after = os.getloadavg()

    rows = []
    for name, _, _, targeted in variants:
        ts = sorted(times[name])
        median = statistics.median(ts)
        p90 = ts[min(len(ts) - 1, int(round(0.9 * (len(ts) - 1))))]
        rows.append({
            "variant": name, "median_ms": median, "p90_ms": p90, "min_ms": ts[0],
            "target_ms": TARGET_MS if targeted else None,
            "met": (median <= TARGET_MS) if targeted else None,
            "cpu_ms_per_step": cpu[name] * 1e3 / len(ts),
            "compile_s": compile_s[name], "samples": len(ts),
        })

    header = (f"{'variant':<34} {'median ms':>10} {'p90 ms':>8} {'min ms':>8} "
              f"{'CPU ms':>7} {'target':>7}  met")
    print(f"loss head: N={args.ids * args.per_id} ({args.ids}x{args.per_id}), C={args.dim}, "
          f"H={args.parts}, c={args.part_dim}, K={args.classes}; forward + backward; "
          f"{args.rounds} rounds x {args.steps} steps per variant, interleaved")
    print(header)
    print("-" * len(header))
    for row in rows:
        target = f"{row['target_ms']:.1f}" if row["target_ms"] else "-"
        met = {True: "yes", False: "NO", None: "-"}[row["met"]]
        print(f"{row['variant']:<34} {row['median_ms']:>10.2f} {row['p90_ms']:>8.2f} "
              f"{row['min_ms']:>8.2f} {row['cpu_ms_per_step']:>7.2f} {target:>7}  {met}")
    print("median/p90/min: wall-clock per step; CPU ms: process CPU time per step (all "
          "threads; less sensitive to other processes); met: median <= target")
    print(f"loss value: reid_tf {ref_loss:.6f}, baseline {base_loss:.6f} "
          "(the baseline's sqrt clamp and argmax ties may differ slightly)")
    print(f"load average (1/5/15 min): before {load_before[0]:.2f}/{load_before[1]:.2f}/"
          f"{load_before[2]:.2f}, after {load_after[0]:.2f}/{load_after[1]:.2f}/"
          f"{load_after[2]:.2f} on {os.cpu_count()} CPUs (shared machine: compare rows, "
          "not runs)")
    if args.json:
        _write_json(args.json, {"rows": rows, "load_before": load_before,
                                "load_after": load_after, "args": vars(args)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
