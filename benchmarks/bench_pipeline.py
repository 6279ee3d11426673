"""Throughput of the training input pipelines against a plain tf.data baseline.

All read the same 128x64 JPEGs and produce augmented [P*K, 256, 128, 3]
float32 batches:

- ``plain``: ``from_tensor_slices(paths)`` -> shuffle -> parallel map(decode,
  resize, random flip, pad 10 + random crop, normalise) -> batch -> prefetch.
- ``pk/<crop>``: :func:`reid_tf.data.make_train_dataset` (the NumPy PK
  sampler, per-sample error tolerance) with crop "pad", "resize" or none.
- ``pydataset``: :func:`reid_tf.pydataset.make_train_pydataset` (the same
  batches, decoded by Pillow and resampled in NumPy), read through Keras'
  own PyDataset loader as ``fit()`` reads it: ``workers=0`` loads each batch
  when asked, ``workers=2`` loads ahead in two threads (or two processes).

The pipelines are measured in the same process, interleaved repeat by repeat
(so background load hits all of them alike); the table shows the median of
the repeats, images per second. The load average before and after the run is
printed: on a shared machine compare rows with each other, not with another
run.

Usage:
    python benchmarks/bench_pipeline.py                 # synthetic data in a temp dir
    python benchmarks/bench_pipeline.py --data DIR      # a folder of images (recursive)
    python benchmarks/bench_pipeline.py --json
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _paths_and_labels(args, tmp):
    import numpy as np

    if args.data:
        root = Path(args.data)
        if not root.is_dir():
            raise SystemExit(f"error: --data: {root} is not a directory")
        paths = sorted(str(p) for p in root.rglob("*")
                       if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if not paths:
            raise SystemExit(f"error: --data: no images under {root}")
        names = [Path(p).name.split("_")[0] for p in paths]
        _, labels = np.unique(names, return_inverse=True)
        return paths, labels
    from data_prep.synthetic import generate

    info = generate(Path(tmp) / "synthetic", num_identities=2 * args.identities,
                    images_per_identity=16, seed=0)
    paths, labels = [], []
    for r in info["images"]:
        if r["folder"] == "bounding_box_train":
            paths.append(str(Path(tmp) / "synthetic" / r["folder"] / r["file"]))
            labels.append(r["pid"])
    return paths, np.asarray(labels)


def _plain(paths, size, batch, seed):
    import tensorflow as tf

    from reid_tf.data import IMAGENET_MEAN, IMAGENET_STD

    h, w = size

    def load(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        image = tf.image.resize(image, size)
        image = tf.image.random_flip_left_right(image)
        image = tf.image.pad_to_bounding_box(image, 10, 10, h + 20, w + 20)
        image = tf.image.random_crop(image, (h, w, 3))
        return (image / 255.0 - IMAGENET_MEAN) / IMAGENET_STD

    return (tf.data.Dataset.from_tensor_slices(paths).repeat().shuffle(2048, seed=seed)
            .map(load, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch).prefetch(tf.data.AUTOTUNE))


def _keras_batches(dataset):
    """The batches of a PyDataset as ``fit()`` reads them (Keras' adapter,
    with its worker threads or processes)."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapter = PyDatasetAdapter(dataset)
    adapter.on_epoch_begin()
    try:
        yield from adapter.get_numpy_iterator()
    finally:
        adapter.on_epoch_end()


def _rate(ds, batches, warmup):
    it = iter(ds)
    first = next(it)
    batch = int(first[0].shape[0]) if isinstance(first, tuple) else int(first.shape[0])
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    n = 0
    for _ in range(batches):
        x = next(it)
        n += int((x[0] if isinstance(x, tuple) else x).shape[0])
    del batch
    return n / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="folder of images (labels from the name before '_'); "
                        "default: generate the synthetic dataset in a temporary folder")
    parser.add_argument("--identities", type=int, default=150,
                        help="training identities of the generated data (default 150)")
    parser.add_argument("--P", type=int, default=40, help="identities per batch (default 40)")
    parser.add_argument("--K", type=int, default=4, help="images per identity (default 4)")
    parser.add_argument("--image-size", type=int, nargs=2, default=(256, 128),
                        metavar=("H", "W"), help="output size (default 256 128)")
    parser.add_argument("--batches", type=int, default=15,
                        help="timed batches per repeat (default 15)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats (default 3)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    for name in ("P", "K", "batches", "repeats", "identities"):
        if getattr(args, name) < 1:
            parser.exit(2, f"error: --{name.lower()}: must be >= 1\n")

    import numpy as np
    import tensorflow as tf

    from reid_tf.data import make_train_dataset
    from reid_tf.image_io import scan_images
    from reid_tf.pydataset import make_train_pydataset

    def pydataset(workers, processes=False):
        return _keras_batches(make_train_pydataset(
            paths, labels, P=args.P, K=args.K, image_size=size, crop="pad", scan=False,
            num_batches=args.warmup + args.batches + 1, workers=workers,
            use_multiprocessing=processes))

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        print("preparing images ...", file=sys.stderr)
        paths, labels = _paths_and_labels(args, tmp)
        size = tuple(args.image_size)
        batch = args.P * args.K
        builders = {
            "plain tf.data (decode+resize+flip+pad-crop)": lambda: _plain(paths, size, batch, 0),
            "pk crop=pad (make_train_dataset)": lambda: make_train_dataset(
                paths, labels, P=args.P, K=args.K, image_size=size, crop="pad", scan=False),
            "pk crop=resize": lambda: make_train_dataset(
                paths, labels, P=args.P, K=args.K, image_size=size, crop="resize", scan=False),
            "pk crop=none, no flip": lambda: make_train_dataset(
                paths, labels, P=args.P, K=args.K, image_size=size, crop=None, flip=False,
                scan=False),
            "pydataset crop=pad, workers=0": lambda: pydataset(0),
            "pydataset crop=pad, workers=2 (threads)": lambda: pydataset(2),
            "pydataset crop=pad, workers=2 (processes)": lambda: pydataset(2, True),
        }
        rates = {name: [] for name in builders}
        for r in range(args.repeats):
            for name, build in builders.items():
                rates[name].append(_rate(build(), args.batches, args.warmup))
                print(f"repeat {r + 1}/{args.repeats}: {name}: {rates[name][-1]:.0f} img/s",
                      file=sys.stderr)
        t = time.perf_counter()
        ok = make_train_dataset(paths, labels, P=args.P, K=args.K, image_size=size,
                                scan=True).skip_report
        scan_s = time.perf_counter() - t
        t = time.perf_counter()
        pil_ok = scan_images(paths)
        scan_pil_s = time.perf_counter() - t
    load_after = os.getloadavg()
    base = float(np.median(rates[next(iter(builders))]))
    rows = [{"pipeline": name, "median_img_per_s": float(np.median(v)),
             "min": float(np.min(v)), "max": float(np.max(v)),
             "relative_to_plain": float(np.median(v)) / base} for name, v in rates.items()]
    result = {"images": len(paths), "identities": int(len(np.unique(labels))),
              "batch": batch, "image_size": list(size), "repeats": args.repeats,
              "batches_per_repeat": args.batches, "cpu_count": os.cpu_count(),
              "tensorflow": tf.__version__, "loadavg_before": load_before,
              "loadavg_after": load_after, "scan_seconds": scan_s,
              "scan_skipped": ok.count, "scan_pillow_seconds": scan_pil_s,
              "scan_pillow_skipped": int((~pil_ok).sum()), "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{len(paths)} images, {result['identities']} identities, batch {batch} "
          f"({args.P}x{args.K}), output {size[0]}x{size[1]}, median of {args.repeats} "
          f"repeats x {args.batches} batches; {os.cpu_count()} CPUs, load average "
          f"{load_before[0]:.1f} before / {load_after[0]:.1f} after")
    print(f"{'pipeline':<46} {'img/s':>8} {'min':>8} {'max':>8} {'vs plain':>9}")
    for row in rows:
        print(f"{row['pipeline']:<46} {row['median_img_per_s']:>8.0f} {row['min']:>8.0f} "
              f"{row['max']:>8.0f} {row['relative_to_plain']:>8.2f}x")
    print(f"pre-scan of {len(paths)} files: tf.data {scan_s:.2f} s, Pillow threads "
          f"{scan_pil_s:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
