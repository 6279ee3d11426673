"""One measurement of the GPU benchmark, in a process of its own.

    KERAS_BACKEND=jax python -m benchmarks.gpu.worker keras --height 256 --width 128
    python -m benchmarks.gpu.worker torch --height 256 --width 128

``keras``: the project's network (``reid_tf.model.build_model``) trained by
``reid_tf.training.AlignedReIDModel`` (global + local TriHard + ID loss) on
the backend of ``KERAS_BACKEND``, with Keras's ``mixed_bfloat16`` policy and
``jit_compile=True``. ``torch``: the same step in plain PyTorch
(:mod:`benchmarks.gpu.torch_reid`) under ``torch.autocast`` to bfloat16.

Each step trains on one P x K batch already on the device (random images,
labels ``repeat(arange(P), K)``); a step is timed up to the host having its
loss. Prints one JSON object on stdout: images/s from the median step time
after the warm-up steps, the peak device memory (``None`` on a CPU), the
first and last loss.
"""

import argparse
import json
import os
import statistics
import sys
import time


def _batch(args):
    import numpy as np

    rng = np.random.default_rng(0)
    images = rng.random((args.P * args.K, args.height, args.width, 3), dtype=np.float32)
    labels = np.repeat(np.arange(args.P), args.K).astype(np.int32)
    return images, labels


def _time_steps(step, args):
    times, losses = [], []
    for _ in range(args.warmup + args.steps):
        start = time.perf_counter()
        losses.append(float(step()))
        times.append(time.perf_counter() - start)
    timed = times[args.warmup:]
    median = statistics.median(timed)
    return {
        "images_per_s": args.P * args.K / median,
        "median_step_s": median,
        "first_step_s": times[0],
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }


def run_keras(args):
    """The project's Keras model on the backend of ``KERAS_BACKEND``."""
    import keras

    from reid_tf.model import build_model
    from reid_tf.training import AlignedReIDModel

    backend = keras.backend.backend()
    if args.mixed:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    network = build_model(args.backbone, num_classes=args.classes,
                          input_shape=(args.height, args.width, 3))
    model = AlignedReIDModel(network)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=args.jit)
    images, labels = _batch(args)
    x = keras.ops.convert_to_tensor(images)
    y = keras.ops.convert_to_tensor(labels)

    def step():
        return model.train_on_batch(x, y, return_dict=True)["loss"]

    result = _time_steps(step, args)
    result.update(framework=f"keras-{backend}", backend=backend,
                  keras=keras.__version__, peak_memory_bytes=_peak_memory(backend),
                  device=_device_name(backend))
    return result


def run_torch(args):
    """The same step in plain PyTorch."""
    import torch

    from benchmarks.gpu.torch_reid import AlignedReIDNet, alignedreid_loss

    torch.manual_seed(0)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    trunk = "resnet50" if args.backbone == "resnet50" else "small"
    model = AlignedReIDNet(args.classes, trunk=trunk).to(device)
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=cuda)
    images, labels = _batch(args)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(
        memory_format=torch.channels_last).to(device)
    y = torch.from_numpy(labels).long().to(device)
    forward = torch.compile(model) if args.compile else model
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.mixed)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            outputs = forward(x)
        loss = alignedreid_loss(outputs, y)
        loss.backward()
        optimizer.step()
        return loss.item()

    result = _time_steps(step, args)
    result.update(framework="torch", backend="torch", torch=torch.__version__,
                  peak_memory_bytes=_peak_memory("torch"), device=_device_name("torch"))
    return result


def _peak_memory(backend):
    if backend == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use")
    if backend == "torch":
        import torch

        return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
    return None


def _device_name(backend):
    if backend == "jax":
        import jax

        return jax.devices()[0].device_kind
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return "unknown"


def build_parser():
    """The worker's flags (the runner passes them)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu.worker",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("keras", "torch"),
                        help="keras: the project's model on KERAS_BACKEND; torch: plain PyTorch")
    parser.add_argument("--height", type=int, default=256, help="image height")
    parser.add_argument("--width", type=int, default=128, help="image width")
    parser.add_argument("--P", type=int, default=40, help="identities per batch")
    parser.add_argument("--K", type=int, default=4, help="images per identity")
    parser.add_argument("--classes", type=int, default=751, help="ID classifier size")
    parser.add_argument("--backbone", default="resnet50",
                        help="keras backbone name; torch: resnet50, else a small trunk")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--no-mixed", dest="mixed", action="store_false",
                        help="float32 instead of bfloat16 mixed precision")
    parser.add_argument("--no-jit", dest="jit", action="store_false",
                        help="keras: jit_compile=False")
    parser.add_argument("--compile", action="store_true", help="torch: torch.compile the model")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    result = run_keras(args) if args.kind == "keras" else run_torch(args)
    result.update(height=args.height, width=args.width, batch=args.P * args.K,
                  mixed_bfloat16=args.mixed,
                  jit=args.compile if args.kind == "torch" else args.jit)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
