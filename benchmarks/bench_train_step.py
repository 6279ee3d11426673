"""Benchmark of one full AlignedReID training step on the CPU.

One step = forward pass of the two-branch network, the AlignedReID loss
(ID + TriHard global + TriHard on the aligned local distances), the
backward pass and the Adam update, run through ``train_on_batch`` of
:class:`reid_tf.training.AlignedReIDModel` (a compiled ``tf.function``).

Baseline, measured in the same process and interleaved repeat by repeat:
the same network trained with Keras' built-in softmax cross-entropy on the
logits only (``compile(loss=SparseCategoricalCrossentropy)``), so the last
column is the cost of the metric-learning part of the loss.

Each backbone is warmed up (graph tracing) before ``--repeats`` timed
steps; the table gives medians. Batches are P x K (K = 4 images per
identity, as in the paper); the default batch is 160 (P = 40).

Usage::

    python benchmarks/bench_train_step.py [--backbones tiny,resnet50]
        [--batch 160] [--repeats 5] [--json out.json]
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

K_PER_ID = 4


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Time one AlignedReID training step (forward, loss, "
        "backward, Adam update) per backbone on the CPU, against an ID-loss-"
        "only step of the same network."
    )
    parser.add_argument(
        "--backbones",
        default="tiny,resnet50",
        help="comma-separated registered backbone names (default: tiny,resnet50)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=160,
        help="images per step, a multiple of K=4 (P x K; paper: 160)",
    )
    parser.add_argument(
        "--height", type=int, default=256, help="input height in pixels (default 256)"
    )
    parser.add_argument(
        "--width", type=int, default=128, help="input width in pixels (default 128)"
    )
    parser.add_argument(
        "--num-classes",
        type=int,
        default=751,
        help="identities of the ID classifier (default 751, Market-1501)",
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed steps per variant (default 5)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed steps per variant first (default 1)"
    )
    parser.add_argument(
        "--jit", action="store_true", help="compile the steps with XLA (jit_compile=True)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the weights and the random batch"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    problems = []
    if args.batch < 2 * K_PER_ID or args.batch % K_PER_ID:
        problems.append(
            f"--batch: expected a multiple of {K_PER_ID} >= {2 * K_PER_ID}, got {args.batch}"
        )
    if args.repeats < 1 or args.warmup < 0:
        problems.append("--repeats: expected >= 1 (and --warmup >= 0)")
    if min(args.height, args.width) < 32:
        problems.append("--height/--width: expected >= 32")
    if args.num_classes < max(2, args.batch // K_PER_ID):
        problems.append(
            f"--num-classes: expected >= 2 and >= batch / {K_PER_ID} identities per batch"
        )
    if problems:
        print(f"bench_train_step.py: error: {problems[0]}", file=sys.stderr)
        sys.exit(2)
    return args


def _batch(args):
    rng = np.random.default_rng(args.seed)
    pids = rng.choice(args.num_classes, args.batch // K_PER_ID, replace=False)
    labels = np.repeat(pids, K_PER_ID).astype("int32")
    images = rng.uniform(size=(args.batch, args.height, args.width, 3)).astype("float32")
    return images, labels


def _time_steps(model, images, labels, count):
    times = []
    for _ in range(count):
        start = time.perf_counter()
        logs = model.train_on_batch(images, labels, return_dict=True)
        float(logs["loss"])  # wait for the result
        times.append(time.perf_counter() - start)
    return times


def bench_backbone(name, args, images, labels):
    """Median step times of the AlignedReID and ID-only steps.

    Args:
        name: backbone name.
        args: parsed arguments.
        images, labels: the batch ``[B, H, W, 3]``, ``[B]``.

    Returns:
        dict with the measurements.
    """
    import keras

    from reid_tf.model import build_model
    from reid_tf.training import AlignedReIDModel

    keras.utils.set_random_seed(args.seed)
    shape = (args.height, args.width, 3)
    net = build_model(name, num_classes=args.num_classes, input_shape=shape)
    model = AlignedReIDModel(net)
    model.compile(optimizer=keras.optimizers.Adam(3e-4), jit_compile=args.jit)
    base_net = build_model(name, num_classes=args.num_classes, input_shape=shape, with_local=False)
    baseline = keras.Model(base_net.inputs, base_net.get_layer("logits").output)
    baseline.compile(
        optimizer=keras.optimizers.Adam(3e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=args.jit,
    )
    variants = {"alignedreid": model, "id_only": baseline}
    times = {key: [] for key in variants}
    for key, m in variants.items():
        print(f"[{name}] warm-up {key} ({args.warmup} step(s))", file=sys.stderr, flush=True)
        _time_steps(m, images, labels, args.warmup)
    for r in range(args.repeats):
        for key, m in variants.items():
            times[key] += _time_steps(m, images, labels, 1)
        print(
            f"[{name}] repeat {r + 1}/{args.repeats}: "
            + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()),
            file=sys.stderr,
            flush=True,
        )
    med = {key: statistics.median(v) for key, v in times.items()}
    return {
        "backbone": name,
        "input": [args.height, args.width],
        "batch": args.batch,
        "params": int(net.count_params()),
        "alignedreid_step_s": med["alignedreid"],
        "id_only_step_s": med["id_only"],
        "ratio": med["alignedreid"] / med["id_only"],
        "images_per_s": args.batch / med["alignedreid"],
        "times_s": times,
    }


def main(argv=None):
    """Runs the benchmark and prints the table.

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
        Exit status.

    """
    args = _parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from reid_tf.backbones import available_backbones

    names = [n.strip() for n in args.backbones.split(",") if n.strip()]
    unknown = [n for n in names if n not in available_backbones()]
    if not names or unknown:
        print(
            f"bench_train_step.py: error: --backbones: unknown {unknown or names}; "
            f"expected names from {available_backbones()}",
            file=sys.stderr,
        )
        return 2
    images, labels = _batch(args)
    rows = [bench_backbone(name, args, images, labels) for name in names]

    import tensorflow as tf

    header = (
        f"{'backbone':<10} {'input':>8} {'batch':>5} {'params':>11} "
        f"{'AlignedReID s':>14} {'ID-only s':>10} {'ratio':>6} {'img/s':>7}"
    )
    print(
        f"one training step (forward + loss + backward + Adam), median of "
        f"{args.repeats} after {args.warmup} warm-up; jit_compile={args.jit}; "
        f"TF {tf.__version__}, {os.cpu_count()} CPUs, load average "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['backbone']:<10} {r['input'][0]:>4}x{r['input'][1]:<3} {r['batch']:>5} "
            f"{r['params']:>11,} {r['alignedreid_step_s']:>14.3f} "
            f"{r['id_only_step_s']:>10.3f} {r['ratio']:>6.2f} {r['images_per_s']:>7.1f}"
        )
    if args.json:
        payload = {
            "benchmark": "train_step",
            "jit_compile": args.jit,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "num_classes": args.num_classes,
            "load_average": list(os.getloadavg()),
            "rows": rows,
        }
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=2)
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
