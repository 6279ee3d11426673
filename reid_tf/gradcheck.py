"""Gradient verification of the AlignedReID distances and losses.

``python -m reid_tf.gradcheck`` (console script ``reid-gradcheck``) compares
the TensorFlow gradients of

* the aligned local distance (``sum_n aligned_local_distance(X, Y)[n]``),
* the TriHard losses (global and local; normalisation on/off, local mining
  by global or local distance, aligned and unaligned local distance),
* the metric and the classification mutual losses,

with independent gradients: the analytic gradients of the Numba reference
(``reference.local_distance_grad``, ``reference.trihard_reference``; for the
mutual losses the closed forms written here in NumPy) and float64 central
finite differences. Inputs: random tensors of several shapes (square and
rectangular part grids, ties in the DP, zero and near-zero part distances,
exactly duplicated samples) and the outputs of a small ``tiny``-backbone
network on a random image batch.

Errors: ``max_abs = max |a - b|`` and ``max_rel = max_abs / max(max|a|,
max|b|)`` (0 when both are identically 0). Tolerances on ``max_rel``:
float64 analytic 1e-7, float32 analytic 1e-4, float64 finite differences
1e-5 (step 1e-6; the error of a central difference is ~1e-10 from rounding
plus O(step^2) truncation, which the runs here put at <= 1e-7 relative). Finite differences
are not valid where the function has a kink inside the step -- DP ties,
zero or near-zero part distances, mining ties -- so there only the analytic
comparison is made, and the table says so. For the mutual losses the
finite differences are taken of the loss with its stop-gradient operands
frozen at their current values (that is the function whose gradient the
stop-gradient defines).

``reid-gradcheck --dump DUMP [--samples S] [--seed N] [--json PATH]`` checks
the TensorFlow distance ops against the reference on a feature dump's pairs
instead (:mod:`reid_tf.check`).

Exit status: 0 when every row passes, 1 when any fails, 2 on bad arguments
(or a dump that cannot be read).
"""

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from reid_common import atomic_path

TOLERANCES = {"float64": 1e-7, "float32": 1e-4, "fd": 1e-5}
FD_STEP = 1e-6
SECTIONS = ("local", "trihard", "mutual", "model")


@dataclass
class CheckResult:
    """One row of the gradcheck table."""

    quantity: str
    shape: str
    dtype: str
    against: str
    max_abs: float
    max_rel: float
    tolerance: float
    passed: bool
    note: str = ""


def compare(a, b):
    """Return ``(max_abs, max_rel)`` between two arrays (see module docstring).

    Args:
        a: array (the TensorFlow result).
        b: array of the same shape (the independent result).

    Returns:
        ``(max_abs, max_rel)`` floats; ``inf`` if the shapes differ or any
        value is not finite.

    Example:
        >>> compare(np.array([1.0, 2.0]), np.array([1.0, 2.5]))
        (0.5, 0.2)
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf"), float("inf")
    if a.size == 0:
        return 0.0, 0.0
    max_abs = float(np.max(np.abs(a - b)))
    scale = float(max(np.max(np.abs(a)), np.max(np.abs(b))))
    return max_abs, (max_abs / scale if scale > 0 else 0.0)


class _Checker:
    """Collects rows, prints progress and the final table."""

    def __init__(self, verbose=True):
        self.rows = []
        self.verbose = verbose

    def add(self, quantity, tf_value, other, dtype, against, tolerance=None, note=""):
        tol = TOLERANCES[dtype] if tolerance is None else tolerance
        max_abs, max_rel = compare(tf_value, other)
        row = CheckResult(
            quantity=quantity,
            shape="x".join(str(s) for s in np.shape(tf_value)) or "scalar",
            dtype=dtype,
            against=against,
            max_abs=max_abs,
            max_rel=max_rel,
            tolerance=tol,
            passed=bool(max_rel <= tol),
            note=note,
        )
        self.rows.append(row)
        return row

    def skip(self, quantity, note):
        self.rows.append(
            CheckResult(quantity, "-", "-", "skipped", float("nan"), float("nan"),
                        float("nan"), True, note)
        )

    def progress(self, message):
        if self.verbose:
            print(f"[gradcheck] {message}", file=sys.stderr, flush=True)


def format_table(rows):
    """Render rows as a fixed-width text table.

    Args:
        rows: list of :class:`CheckResult`.

    Returns:
        str (one line per row plus a header).

    Example:
        >>> print(format_table([]).splitlines()[0].split()[0])
        quantity
    """
    header = ("quantity", "shape", "dtype", "against", "max abs err",
              "max rel err", "tol", "result")
    lines = []
    for r in rows:
        if r.against == "skipped":
            lines.append((r.quantity, "-", "-", "skipped", "-", "-", "-",
                          "skip: " + r.note))
            continue
        result = "pass" if r.passed else "FAIL"
        if r.note:
            result += f" ({r.note})"
        lines.append((r.quantity, r.shape, r.dtype, r.against,
                      f"{r.max_abs:.2e}", f"{r.max_rel:.2e}", f"{r.tolerance:.0e}",
                      result))
    widths = [max([len(header[k])] + [len(line[k]) for line in lines])
              for k in range(len(header) - 1)]
    def fmt(cols):
        head = "  ".join(str(c).ljust(w) for c, w in zip(cols[:-1], widths))
        return f"{head}  {cols[-1]}"
    out = [fmt(header), fmt(tuple("-" * len(h) for h in header))]
    out.extend(fmt(line) for line in lines)
    return "\n".join(out)


# --------------------------------------------------------------------------
# finite differences


def central_differences(func, x, step=FD_STEP, coords=None):
    """Central finite differences of a scalar function at ``x`` (float64).

    Args:
        func: maps a float64 array shaped like ``x`` to a float.
        x: float64 array.
        step: difference step.
        coords: flat indices to differentiate (default: all).

    Returns:
        ``(coords, derivatives)``: int array and float64 array of the same
        length.

    Example:
        >>> c, g = central_differences(lambda v: float((v ** 2).sum()), np.ones(3))
        >>> bool(np.allclose(g, 2.0))
        True
    """
    x = np.array(x, dtype=np.float64)
    coords = np.arange(x.size) if coords is None else np.asarray(coords)
    out = np.empty(len(coords))
    flat = x.reshape(-1)
    for k, c in enumerate(coords):
        old = flat[c]
        flat[c] = old + step
        up = func(x)
        flat[c] = old - step
        down = func(x)
        flat[c] = old
        out[k] = (up - down) / (2 * step)
    return coords, out


def _fd_coords(rng, size, limit):
    if limit is None or size <= limit:
        return np.arange(size)
    return np.sort(rng.choice(size, size=limit, replace=False))


# --------------------------------------------------------------------------
# analytic gradients of the mutual losses (independent NumPy closed forms)


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def metric_mutual_numpy(m1_live, m1_frozen, m2_live, m2_frozen):
    """Eq. 3 with the stop-gradient operands given separately (float64)."""
    return float(np.mean((m1_frozen - m2_live) ** 2 + (m1_live - m2_frozen) ** 2))


def metric_mutual_grads(m1, m2):
    """Analytic ``(dL/dM1, dL/dM2)`` of the metric mutual loss."""
    return 2 * (m1 - m2) / m1.size, 2 * (m2 - m1) / m1.size


def kl_mutual_numpy(z1_live, z1_frozen, z2_live, z2_frozen):
    """Symmetric KL mutual loss with the stop-gradient operands given separately."""
    lf1, lf2 = _log_softmax(z1_frozen), _log_softmax(z2_frozen)
    l1, l2 = _log_softmax(z1_live), _log_softmax(z2_live)
    kl21 = np.sum(np.exp(lf2) * (lf2 - l1), axis=1)
    kl12 = np.sum(np.exp(lf1) * (lf1 - l2), axis=1)
    return float(np.mean(kl21 + kl12))


def kl_mutual_grads(z1, z2):
    """Analytic ``(dL/dz1, dL/dz2)`` of the classification mutual loss."""
    p1, p2 = np.exp(_log_softmax(z1)), np.exp(_log_softmax(z2))
    b = z1.shape[0]
    return (p1 - p2) / b, (p2 - p1) / b


# --------------------------------------------------------------------------
# TensorFlow side


def _tf():
    import tensorflow as tf  # deferred: --help must not import TensorFlow

    return tf


def _tf_grad(fn, *arrays):
    """Value and gradients of scalar ``fn(*tensors)`` w.r.t. every input."""
    tf = _tf()
    tensors = [tf.constant(a) for a in arrays]
    with tf.GradientTape() as tape:
        for t in tensors:
            tape.watch(t)
        value = fn(*tensors)
    grads = tape.gradient(value, tensors)
    grads = [np.zeros(a.shape, a.dtype) if g is None else g.numpy()
             for a, g in zip(arrays, grads)]
    return float(value), grads


def tf_central_differences(loss_fn, arrays, wrt, coords, step=FD_STEP):
    """Central differences of a TensorFlow loss, all coordinates in one graph.

    Args:
        loss_fn: scalar TensorFlow function of ``len(arrays)`` tensors.
        arrays: float64 arrays, the point of evaluation.
        wrt: index of the argument to differentiate.
        coords: flat indices into ``arrays[wrt]``.
        step: difference step.

    Returns:
        float64 array ``[len(coords)]``.

    Example:
        >>> fd = tf_central_differences(lambda v: _tf().reduce_sum(v ** 2),
        ...                             [np.ones(3)], 0, [0, 2])
        >>> np.round(fd, 6).tolist()
        [2.0, 2.0]
    """
    tf = _tf()
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    shape, size = arrays[wrt].shape, arrays[wrt].size

    def differences(*tensors):
        base = tf.reshape(tensors[wrt], [-1])

        def at(delta):
            args = list(tensors)
            args[wrt] = tf.reshape(base + delta, shape)
            return tf.cast(loss_fn(*args), tf.float64)

        def one(c):
            e = tf.one_hot(c, size, dtype=tf.float64) * step
            return (at(e) - at(-e)) / (2 * step)

        return tf.map_fn(one, tf.constant(np.asarray(coords), tf.int32),
                         fn_output_signature=tf.float64)

    fn = tf.function(differences, autograph=False)
    return fn(*[tf.constant(a) for a in arrays]).numpy()


# --------------------------------------------------------------------------
# input generators


def _random_parts(rng, n, hf, hg, c):
    x = rng.normal(size=(n, hf, c))
    y = rng.normal(size=(n, hg, c))
    return x, y


def _tied_parts(rng, n, h, c):
    """Parts drawn from two vectors A, B: part distances are 0 or one value v.

    Every path length is then k * v summed in sequence, bitwise identical in
    any implementation, so DP ties are exact ties in TensorFlow and in the
    reference alike (with arbitrary values, float rounding decides ties).
    """
    vocab = 0.5 * rng.normal(size=(2, c))
    return vocab[rng.integers(0, 2, size=(n, h))], vocab[rng.integers(0, 2, size=(n, h))]


def _zero_distance_parts(rng, n, h, c, jitter=0.0):
    x, y = _random_parts(rng, n, h, h, c)
    for k in range(n):
        i, j = rng.integers(0, h, size=2)
        y[k, j] = x[k, i] + jitter * rng.normal(size=c)
        y[k, (j + 1) % h] = x[k, (i + 1) % h] + jitter * rng.normal(size=c)
    return x, y


def _trihard_inputs(rng, ids, per_id, dim, h, c, duplicate=False):
    labels = np.repeat(np.arange(ids), per_id)
    g = rng.normal(size=(ids * per_id, dim))
    loc = rng.normal(size=(ids * per_id, h, c))
    if duplicate:
        # every identity's second sample is an exact copy of its first one
        g[1::per_id] = g[0::per_id]
        loc[1::per_id] = loc[0::per_id]
    order = rng.permutation(len(labels))
    return g[order], loc[order], labels[order]


def _fd_valid_trihard(ref, margins, tol=1e-3):
    """False when a relu argument sits within ``tol`` of its kink."""
    gm, lm = margins
    hinges = np.concatenate([ref["dist_ap"] - ref["dist_an"] + gm,
                             ref["local_ap"] - ref["local_an"] + lm])
    hinges = hinges[np.isfinite(hinges)]  # NaN: anchors without a negative
    return bool(np.all(np.abs(hinges) > tol))


# --------------------------------------------------------------------------
# the checks


def check_local_distance(chk, rng, quick, fd_step):
    import reference
    from reid_tf import distances

    def tf_sum(x, y):
        return _tf().reduce_sum(distances.aligned_local_distance(x, y))

    cases = [
        ("square 8x8", *_random_parts(rng, 4, 8, 8, 16), True, ""),
        ("rect 5x8", *_random_parts(rng, 4, 5, 8, 12), True, ""),
        ("rect 7x3", *_random_parts(rng, 3, 7, 3, 8), True, ""),
        ("DP ties 6x6", *_tied_parts(rng, 4, 6, 8), False, "DP ties: FD not valid"),
        ("zero dist 6x6", *_zero_distance_parts(rng, 4, 6, 8), False,
         "zero part distances: FD not valid"),
        ("near-zero 6x6", *_zero_distance_parts(rng, 4, 6, 8, jitter=1e-9), False,
         "part distances ~1e-8 < FD step: FD not valid"),
    ]
    if quick:
        cases = [cases[1], cases[3], cases[4]]
    for name, x64, y64, fd_ok, note in cases:
        chk.progress(f"local distance: {name}")
        for dtype in ("float64", "float32"):
            x, y = x64.astype(dtype), y64.astype(dtype)
            value, (gx, gy) = _tf_grad(tf_sum, x, y)
            ref_value = float(np.sum(reference.local_distance_pairs(x, y)))
            rx, ry = reference.local_distance_grad(x, y)
            chk.add(f"local dist [{name}] value", np.array(value), np.array(ref_value),
                    dtype, "reference")
            chk.add(f"local dist [{name}] dL/dX", gx, rx, dtype, "reference grad", note=note)
            chk.add(f"local dist [{name}] dL/dY", gy, ry, dtype, "reference grad", note=note)
            if dtype == "float64":
                grads64 = (gx, gy)
        if not fd_ok:
            continue
        for wrt, label in ((0, "dL/dX"), (1, "dL/dY")):
            arr = (x64, y64)[wrt]
            coords = _fd_coords(rng, arr.size, 48 if quick else None)
            fd = tf_central_differences(tf_sum, [x64, y64], wrt, coords, fd_step)
            chk.add(f"local dist [{name}] {label}", grads64[wrt].reshape(-1)[coords], fd,
                    "float64", "central FD", TOLERANCES["fd"])


def _trihard_tf(g, loc, labels, margins, options):
    """Eager TriHard losses and their gradients (global/features, local/local)."""
    from reid_tf import losses

    tf = _tf()
    gt, lt = tf.constant(g), tf.constant(loc)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([gt, lt])
        out = losses.trihard_losses(gt, lt, labels, *margins, **options)
    grads = (tape.gradient(out["global"], gt), tape.gradient(out["local"], lt))
    grads = [np.zeros_like(a) if gr is None else gr.numpy() for a, gr in zip((g, loc), grads)]
    return {"global": float(out["global"]), "local": float(out["local"])}, grads


def _trihard_case(chk, rng, name, g64, l64, labels, options, fd_ok, note, quick, fd_step):
    import reference
    from reid_tf import losses

    margins = (0.5, 0.5)
    grads64 = None
    for dtype in ("float64", "float32"):
        g, loc = g64.astype(dtype), l64.astype(dtype)
        ref = reference.trihard_reference(g, loc, labels, *margins, **options)
        values, grads = _trihard_tf(g, loc, labels, margins, options)
        for which, ref_grad_key, wrt in (("global", "grad_global", 0),
                                         ("local", "grad_local", 1)):
            chk.add(f"trihard [{name}] {which} loss", np.array(values[which]),
                    np.array(ref[f"{which}_loss"]), dtype, "reference", note=note)
            chk.add(f"trihard [{name}] d{which}/d{which}_features", grads[wrt],
                    ref[ref_grad_key], dtype, "reference grad", note=note)
        if dtype == "float64":
            ref64, grads64 = ref, grads
    if not fd_ok:
        return
    if not _fd_valid_trihard(ref64, margins):
        chk.skip(f"trihard [{name}] FD", "a hinge is within 1e-3 of its kink")
        return
    for which, wrt in (("global", 0), ("local", 1)):
        def loss(g, loc, which=which):
            return losses.trihard_losses(g, loc, labels, *margins, **options)[which]

        arr = (g64, l64)[wrt]
        coords = _fd_coords(rng, arr.size, 32 if quick else 96)
        fd = tf_central_differences(loss, [g64, l64], wrt, coords, fd_step)
        chk.add(f"trihard [{name}] d{which}/d{which}_features",
                grads64[wrt].reshape(-1)[coords], fd, "float64", "central FD",
                TOLERANCES["fd"])


TRIHARD_OPTIONS = [
    {"normalize_features": False, "local_mining": "global", "aligned": True},
    {"normalize_features": True, "local_mining": "global", "aligned": True},
    {"normalize_features": False, "local_mining": "local", "aligned": True},
    {"normalize_features": True, "local_mining": "local", "aligned": True},
    {"normalize_features": False, "local_mining": "global", "aligned": False},
    {"normalize_features": True, "local_mining": "global", "aligned": False},
    {"normalize_features": False, "local_mining": "local", "aligned": False},
    {"normalize_features": True, "local_mining": "local", "aligned": False},
]


def _option_name(options):
    return "{}{}{}".format(
        "norm," if options["normalize_features"] else "",
        "mine=" + options["local_mining"],
        "" if options["aligned"] else ",unaligned",
    )


def check_trihard(chk, rng, quick, fd_step):
    options_list = [TRIHARD_OPTIONS[k] for k in (1, 2, 4)] if quick else TRIHARD_OPTIONS
    for k, options in enumerate(options_list):
        hf = 4 if k % 2 else 6
        name = f"{_option_name(options)} N=12 H={hf}"
        chk.progress(f"trihard: {name}")
        g, loc, labels = _trihard_inputs(rng, 4, 3, 10, hf, 6)
        _trihard_case(chk, rng, name, g, loc, labels, options, True, "", quick, fd_step)
    chk.progress("trihard: duplicated samples")
    for options, per_id in ((TRIHARD_OPTIONS[0], 3), (TRIHARD_OPTIONS[3], 3),
                            (TRIHARD_OPTIONS[0], 2)):
        if quick and per_id == 2:
            continue
        # per_id 3: negatives tie; per_id 2: both positives of an anchor tie
        g, loc, labels = _trihard_inputs(rng, 4, per_id, 10, 5, 6, duplicate=True)
        _trihard_case(chk, rng, f"{_option_name(options)} duplicates K={per_id}", g, loc,
                      labels, options, False, "mining ties: FD not valid", quick, fd_step)
    chk.progress("trihard: singleton identities (anchor is its own positive)")
    g, loc, labels = _trihard_inputs(rng, 6, 1, 10, 4, 6)
    labels = labels.copy()
    labels[:2] = 99  # one pair, four singletons
    _trihard_case(chk, rng, "singletons", g, loc, labels, TRIHARD_OPTIONS[0], True, "",
                  quick, fd_step)


def check_mutual(chk, rng, quick, fd_step, inputs=None, tag="random"):
    from reid_tf import losses

    if inputs is None:
        m1 = rng.uniform(0, 3, size=(8, 8))
        m2 = rng.uniform(0, 3, size=(8, 8))
        z1 = rng.normal(size=(8, 5)) * 2
        z2 = rng.normal(size=(8, 5)) * 2
    else:
        m1, m2, z1, z2 = inputs
    chk.progress(f"mutual losses ({tag})")
    metric = losses.metric_mutual_loss
    kl = losses.classification_mutual_loss
    for dtype in ("float64", "float32"):
        a1, a2 = m1.astype(dtype), m2.astype(dtype)
        value, (g1, g2) = _tf_grad(metric, a1, a2)
        e1, e2 = metric_mutual_grads(a1.astype(np.float64), a2.astype(np.float64))
        chk.add(f"metric mutual [{tag}] value", np.array(value),
                np.array(metric_mutual_numpy(m1, m1, m2, m2)), dtype, "NumPy formula")
        chk.add(f"metric mutual [{tag}] dL/dM1", g1, e1, dtype, "analytic")
        chk.add(f"metric mutual [{tag}] dL/dM2", g2, e2, dtype, "analytic")
        b1, b2 = z1.astype(dtype), z2.astype(dtype)
        value, (h1, h2) = _tf_grad(kl, b1, b2)
        f1, f2 = kl_mutual_grads(b1.astype(np.float64), b2.astype(np.float64))
        chk.add(f"KL mutual [{tag}] value", np.array(value),
                np.array(kl_mutual_numpy(z1, z1, z2, z2)), dtype, "NumPy formula")
        chk.add(f"KL mutual [{tag}] dL/dz1", h1, f1, dtype, "analytic")
        chk.add(f"KL mutual [{tag}] dL/dz2", h2, f2, dtype, "analytic")
    _, (g1, g2) = _tf_grad(metric, m1, m2)
    _, (h1, h2) = _tf_grad(kl, z1, z2)
    limit = 32 if quick else None
    for label, grad, func, arr in (
        ("metric mutual", g1, lambda v: metric_mutual_numpy(v, m1, m2, m2), m1),
        ("metric mutual", g2, lambda v: metric_mutual_numpy(m1, m1, v, m2), m2),
        ("KL mutual", h1, lambda v: kl_mutual_numpy(v, z1, z2, z2), z1),
        ("KL mutual", h2, lambda v: kl_mutual_numpy(z1, z1, v, z2), z2),
    ):
        which = "dL/dM" if label.startswith("metric") else "dL/dz"
        which += "1" if arr is m1 or arr is z1 else "2"
        coords, fd = central_differences(func, arr, fd_step, _fd_coords(rng, arr.size, limit))
        chk.add(f"{label} [{tag}] {which}", grad.reshape(-1)[coords], fd, "float64",
                "central FD (ZG frozen)", TOLERANCES["fd"])


def check_model_batch(chk, rng, quick, fd_step, seed):
    try:
        import keras

        from reid_tf import distances
        from reid_tf.model import build_model
    except ImportError as exc:
        chk.skip("model batch", f"reid_tf.model not importable ({exc})")
        return
    chk.progress("model batch: building two tiny networks")
    nets = []
    for k in range(2):
        keras.utils.set_random_seed(seed + k)
        nets.append(build_model("tiny", num_classes=6, input_shape=(64, 32, 3),
                                local_channels=8))
    images = rng.uniform(0, 1, size=(12, 64, 32, 3)).astype("float32")
    labels = np.repeat(np.arange(6), 2)[rng.permutation(12)]
    outs = [{k: np.asarray(v) for k, v in net(images, training=False).items()} for net in nets]
    g, loc = outs[0]["global"].astype(np.float64), outs[0]["local"].astype(np.float64)
    options_list = [TRIHARD_OPTIONS[3]] if quick else TRIHARD_OPTIONS[:4]
    for options in options_list:
        name = f"model {_option_name(options)}"
        chk.progress(f"model batch: trihard {name}")
        _trihard_case(chk, rng, name, g, loc, labels, options, True, "", quick, fd_step)
    dist = [distances.pairwise_distance(o["global"].astype(np.float64),
                                        o["global"].astype(np.float64)).numpy()
            for o in outs]
    check_mutual(chk, rng, quick, fd_step,
                 inputs=(dist[0], dist[1], outs[0]["logits"].astype(np.float64),
                         outs[1]["logits"].astype(np.float64)),
                 tag="model")


# --------------------------------------------------------------------------
# command line


def _write_json(path, payload):
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        json.dump(payload, fh, indent=2, allow_nan=True)
        fh.write("\n")


def build_parser():
    """Argument parser of ``reid-gradcheck``."""
    parser = argparse.ArgumentParser(
        prog="reid-gradcheck",
        description=(
            "Verify the TensorFlow gradients of the AlignedReID local distance, "
            "TriHard losses and mutual losses against the Numba reference's "
            "analytic gradients and float64 central finite differences. Prints a "
            "table; exits 1 if any check fails. With --dump, instead compare the "
            "TensorFlow distance ops with the reference on a feature dump's pairs."
        ),
    )
    parser.add_argument("--dump", metavar="DUMP",
                        help="check a feature dump (.h5) instead: recompute a seeded sample of "
                             "its distances (global, aligned local, local matrix) with the "
                             "TensorFlow ops and with the reference and compare them "
                             "(float32 tolerance); --seed, --json and --quiet apply")
    parser.add_argument("--samples", type=int, default=200, metavar="S",
                        help="--dump: number of query-gallery pairs sampled (default 200)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer shapes and options (3 of the 8 TriHard option sets), "
                             "finite differences on 32-48 sampled coordinates per tensor")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random inputs and network weights (default 0)")
    parser.add_argument("--json", metavar="PATH",
                        help="also write every row (and the overall verdict) to PATH as JSON")
    parser.add_argument("--no-model", action="store_true",
                        help="skip the checks on the outputs of a tiny network")
    parser.add_argument("--fd-step", type=float, default=FD_STEP,
                        help=f"central finite-difference step (default {FD_STEP:g})")
    parser.add_argument("--only", metavar="SECTIONS", default=",".join(SECTIONS),
                        help="comma-separated subset of the check sections "
                             f"{','.join(SECTIONS)} (default: all)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress messages on stderr")
    return parser


def run_checks(quick=False, seed=0, model=True, fd_step=FD_STEP, verbose=True,
               sections=SECTIONS):
    """Run the checks and return the rows.

    Args:
        quick: the reduced set of cases.
        seed: seed of the random inputs.
        model: include the network-output checks.
        fd_step: finite-difference step.
        verbose: progress on stderr.
        sections: which of ``SECTIONS`` to run.

    Returns:
        list of :class:`CheckResult`.
    """
    chk = _Checker(verbose)
    rng = np.random.default_rng(seed)
    if "local" in sections:
        check_local_distance(chk, rng, quick, fd_step)
    if "trihard" in sections:
        check_trihard(chk, rng, quick, fd_step)
    if "mutual" in sections:
        check_mutual(chk, rng, quick, fd_step)
    if model and "model" in sections:
        check_model_batch(chk, rng, quick, fd_step, seed)
    return chk.rows


def _check_dump(args):
    """``--dump``: the TF distance ops against the reference on a dump; exit status."""
    from reference import DumpError, read_dump
    from reid_tf.check import check_against_reference, format_check, format_check_table

    if args.samples < 1:
        print(f"reid-gradcheck: --samples: expected an integer >= 1, got {args.samples}",
              file=sys.stderr)
        return 2
    try:
        dump = read_dump(args.dump)
    except (DumpError, OSError) as exc:
        print(f"reid-gradcheck: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"reid-gradcheck: {args.dump}: {args.samples} sampled pairs", file=sys.stderr)
    result = check_against_reference(dump, samples=args.samples, seed=args.seed)
    print(format_check_table(result))
    print(f"\n{format_check(result)} ({args.dump}, seed {args.seed})")
    if args.json:
        _write_json(args.json, {"dump": args.dump, **result})
    return 0 if result["passed"] else 1


def main(argv=None):
    """Entry point of ``reid-gradcheck``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (args.fd_step > 0 and np.isfinite(args.fd_step)):
        print(f"reid-gradcheck: --fd-step: expected a positive number, got {args.fd_step}",
              file=sys.stderr)
        return 2
    sections = tuple(x.strip() for x in args.only.split(",") if x.strip())
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown or not sections:
        print(f"reid-gradcheck: --only: unknown section(s) {unknown or args.only!r}; "
              f"expected a comma-separated subset of {','.join(SECTIONS)}", file=sys.stderr)
        return 2
    if args.json:
        parent = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(parent) or os.path.isdir(args.json):
            print(f"reid-gradcheck: --json: cannot write {args.json!r} "
                  f"(no such directory or it is a directory)", file=sys.stderr)
            return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.dump is not None:
        return _check_dump(args)
    start = time.perf_counter()
    rows = run_checks(quick=args.quick, seed=args.seed, model=not args.no_model,
                      fd_step=args.fd_step, verbose=not args.quiet, sections=sections)
    elapsed = time.perf_counter() - start
    failed = [r for r in rows if not r.passed]
    print(format_table(rows))
    print(f"\n{len(rows) - len(failed)}/{len(rows)} checks passed, {len(failed)} failed "
          f"({elapsed:.1f} s, seed {args.seed}{', quick' if args.quick else ''})")
    if args.json:
        _write_json(args.json, {
            "passed": not failed,
            "num_checks": len(rows),
            "num_failed": len(failed),
            "seed": args.seed,
            "quick": args.quick,
            "sections": list(sections),
            "tolerances": TOLERANCES,
            "fd_step": args.fd_step,
            "seconds": elapsed,
            "checks": [asdict(r) for r in rows],
        })
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
