"""The check sections: local distance, TriHard, mutual losses, model batch.

Each section compares the values and gradients of the Keras backend in use
(:mod:`~reid_tf.gradcheck.autodiff`: ``tf.GradientTape``, ``jax.grad`` or
``torch.autograd``) with the Numba
reference (``reference.local_distance_grad``, ``reference.trihard_reference``),
with the NumPy closed forms of the mutual losses, and with float64 central
finite differences, adding one row per comparison to a
:class:`~reid_tf.gradcheck.results.Checker`. Finite differences are not valid
where the function has a kink inside the step (DP ties, zero or near-zero part
distances, mining ties), so there only the analytic comparison is made and the
row's note says so.
"""

import numpy as np

from reid_common import normalize_mode
from reid_tf.gradcheck.autodiff import backend_central_differences, backend_grad
from reid_tf.gradcheck.inputs import (
    random_parts,
    tied_parts,
    trihard_inputs,
    zero_distance_parts,
)
from reid_tf.gradcheck.oracles import (
    central_differences,
    fd_coords,
    kl_mutual_grads,
    kl_mutual_numpy,
    metric_mutual_grads,
    metric_mutual_numpy,
)
from reid_tf.gradcheck.results import FD_STEP, TOLERANCES, Checker

SECTIONS = ("local", "trihard", "mutual", "model")


def _fd_valid_trihard(ref, margins, tol=1e-3):
    """False when a relu argument sits within ``tol`` of its kink."""
    gm, lm = margins
    hinges = np.concatenate([ref["dist_ap"] - ref["dist_an"] + gm,
                             ref["local_ap"] - ref["local_an"] + lm])
    hinges = hinges[np.isfinite(hinges)]  # NaN: anchors without a negative
    return bool(np.all(np.abs(hinges) > tol))


#: two mining candidates closer than this make central differences invalid
#: (a step of FD_STEP can swap which one is the hardest)
MINING_TIE_TOL = 1e-5


def _mining_gaps(g, loc, labels, options):
    """``{"global": gap, "local": gap}``: per loss, the smallest gap over
    anchors between the distance of its mined hardest positive (negative)
    and that of the runner-up, in the distance it mines by (the local loss
    mines by the global distance unless ``local_mining="local"``)."""
    import reference

    mode = normalize_mode(options["normalize_features"])
    gf = reference.normalize_rows(g) if mode == "both" else g
    mats = {"global": reference.pairwise_distance(gf, gf)}
    if options["local_mining"] == "local":
        lf = reference.normalize_rows(loc) if mode in ("both", "local") else loc
        pairs = (reference.local_distance_matrix if options["aligned"]
                 else reference.unaligned_local_distance_matrix)
        mats["local"] = pairs(lf, lf)
    labels = np.asarray(labels)
    same = labels[:, None] == labels[None, :]
    gaps = {}
    for which, d in mats.items():
        gap = np.inf
        for a in range(len(labels)):
            for candidates, hardest_first in ((d[a][same[a]], -1), (d[a][~same[a]], 1)):
                ranked = np.sort(candidates)[::hardest_first]
                if ranked.size > 1:
                    gap = min(gap, float(abs(ranked[1] - ranked[0])))
        gaps[which] = gap
    gaps.setdefault("local", gaps["global"])
    return gaps


def check_local_distance(chk, rng, quick, fd_step):
    """Value and gradients of ``sum_n aligned_local_distance(X, Y)[n]``."""
    from keras import ops

    import reference
    from reid_tf import distances

    def tf_sum(x, y):
        return ops.sum(distances.aligned_local_distance(x, y))

    cases = [
        ("square 8x8", *random_parts(rng, 4, 8, 8, 16), True, ""),
        ("rect 5x8", *random_parts(rng, 4, 5, 8, 12), True, ""),
        ("rect 7x3", *random_parts(rng, 3, 7, 3, 8), True, ""),
        ("DP ties 6x6", *tied_parts(rng, 4, 6, 8), False, "DP ties: FD not valid"),
        ("zero dist 6x6", *zero_distance_parts(rng, 4, 6, 8), False,
         "zero part distances: FD not valid"),
        ("near-zero 6x6", *zero_distance_parts(rng, 4, 6, 8, jitter=1e-9), False,
         "part distances ~1e-8 < FD step: FD not valid"),
    ]
    if quick:
        cases = [cases[1], cases[3], cases[4]]
    for name, x64, y64, fd_ok, note in cases:
        chk.progress(f"local distance: {name}")
        for dtype in ("float64", "float32"):
            x, y = x64.astype(dtype), y64.astype(dtype)
            value, (gx, gy) = backend_grad(tf_sum, x, y)
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
            coords = fd_coords(rng, arr.size, 48 if quick else None)
            fd = backend_central_differences(tf_sum, [x64, y64], wrt, coords, fd_step)
            chk.add(f"local dist [{name}] {label}", grads64[wrt].reshape(-1)[coords], fd,
                    "float64", "central FD", TOLERANCES["fd"])


def _trihard_tf(g, loc, labels, margins, options):
    """Eager TriHard losses and their gradients (global/features, local/local)."""
    from reid_tf import losses

    values, grads = {}, []
    for which, wrt in (("global", 0), ("local", 1)):
        def loss(gt, lt, which=which):
            return losses.trihard_losses(gt, lt, labels, *margins, **options)[which]

        values[which], both = backend_grad(loss, g, loc)
        grads.append(both[wrt])
    return values, grads


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
    gaps = _mining_gaps(g64, l64, labels, options)
    for which, wrt in (("global", 0), ("local", 1)):
        if gaps[which] < MINING_TIE_TOL:
            chk.skip(f"trihard [{name}] d{which}/d{which}_features FD",
                     f"mining ties (two candidates {gaps[which]:.1e} apart): FD not valid")
            continue

        def loss(g, loc, which=which):
            return losses.trihard_losses(g, loc, labels, *margins, **options)[which]

        arr = (g64, l64)[wrt]
        coords = fd_coords(rng, arr.size, 32 if quick else 96)
        fd = backend_central_differences(loss, [g64, l64], wrt, coords, fd_step)
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
    {"normalize_features": "local", "local_mining": "global", "aligned": True},
    {"normalize_features": "local", "local_mining": "local", "aligned": False},
]


def _option_name(options):
    return "{}{}{}".format(
        {"both": "norm,", "local": "norm=local,"}.get(normalize_mode(options["normalize_features"]),
                                                      ""),
        "mine=" + options["local_mining"],
        "" if options["aligned"] else ",unaligned",
    )


def check_trihard(chk, rng, quick, fd_step):
    """The TriHard losses over the option sets, duplicated samples and singletons."""
    options_list = [TRIHARD_OPTIONS[k] for k in (1, 2, 4, 8)] if quick else TRIHARD_OPTIONS
    for k, options in enumerate(options_list):
        hf = 4 if k % 2 else 6
        name = f"{_option_name(options)} N=12 H={hf}"
        chk.progress(f"trihard: {name}")
        g, loc, labels = trihard_inputs(rng, 4, 3, 10, hf, 6)
        _trihard_case(chk, rng, name, g, loc, labels, options, True, "", quick, fd_step)
    chk.progress("trihard: duplicated samples")
    for options, per_id in ((TRIHARD_OPTIONS[0], 3), (TRIHARD_OPTIONS[3], 3),
                            (TRIHARD_OPTIONS[0], 2)):
        if quick and per_id == 2:
            continue
        # per_id 3: negatives tie; per_id 2: both positives of an anchor tie
        g, loc, labels = trihard_inputs(rng, 4, per_id, 10, 5, 6, duplicate=True)
        _trihard_case(chk, rng, f"{_option_name(options)} duplicates K={per_id}", g, loc,
                      labels, options, False, "mining ties: FD not valid", quick, fd_step)
    chk.progress("trihard: singleton identities (anchor is its own positive)")
    g, loc, labels = trihard_inputs(rng, 6, 1, 10, 4, 6)
    labels = labels.copy()
    labels[:2] = 99  # one pair, four singletons
    _trihard_case(chk, rng, "singletons", g, loc, labels, TRIHARD_OPTIONS[0], True, "",
                  quick, fd_step)


def check_mutual(chk, rng, quick, fd_step, inputs=None, tag="random"):
    """The metric and classification mutual losses on ``inputs = (M1, M2, z1, z2)``
    (default: random ones)."""
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
    # (name, TF loss, NumPy value, analytic gradients, inputs, gradient names)
    terms = (
        ("metric mutual", metric, metric_mutual_numpy, metric_mutual_grads, (m1, m2), "M"),
        ("KL mutual", kl, kl_mutual_numpy, kl_mutual_grads, (z1, z2), "z"),
    )
    for dtype in ("float64", "float32"):
        for name, loss, numpy_value, grads, (x1, x2), var in terms:
            a1, a2 = x1.astype(dtype), x2.astype(dtype)
            value, (g1, g2) = backend_grad(loss, a1, a2)
            e1, e2 = grads(a1.astype(np.float64), a2.astype(np.float64))
            chk.add(f"{name} [{tag}] value", np.array(value),
                    np.array(numpy_value(x1, x1, x2, x2)), dtype, "NumPy formula")
            chk.add(f"{name} [{tag}] dL/d{var}1", g1, e1, dtype, "analytic")
            chk.add(f"{name} [{tag}] dL/d{var}2", g2, e2, dtype, "analytic")
    _, (g1, g2) = backend_grad(metric, m1, m2)
    _, (h1, h2) = backend_grad(kl, z1, z2)
    limit = 32 if quick else None
    for label, grad, func, arr in (
        ("metric mutual", g1, lambda v: metric_mutual_numpy(v, m1, m2, m2), m1),
        ("metric mutual", g2, lambda v: metric_mutual_numpy(m1, m1, v, m2), m2),
        ("KL mutual", h1, lambda v: kl_mutual_numpy(v, z1, z2, z2), z1),
        ("KL mutual", h2, lambda v: kl_mutual_numpy(z1, z1, v, z2), z2),
    ):
        which = "dL/dM" if label.startswith("metric") else "dL/dz"
        which += "1" if arr is m1 or arr is z1 else "2"
        coords, fd = central_differences(func, arr, fd_step, fd_coords(rng, arr.size, limit))
        chk.add(f"{label} [{tag}] {which}", grad.reshape(-1)[coords], fd, "float64",
                "central FD (ZG frozen)", TOLERANCES["fd"])


def check_model_batch(chk, rng, quick, fd_step, seed):
    """TriHard and mutual losses on the outputs of two ``tiny`` networks."""
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
    outs = [{k: keras.ops.convert_to_numpy(v) for k, v in net(images, training=False).items()}
            for net in nets]
    g, loc = outs[0]["global"].astype(np.float64), outs[0]["local"].astype(np.float64)
    options_list = [TRIHARD_OPTIONS[3]] if quick else TRIHARD_OPTIONS[:4]
    for options in options_list:
        name = f"model {_option_name(options)}"
        chk.progress(f"model batch: trihard {name}")
        _trihard_case(chk, rng, name, g, loc, labels, options, True, "", quick, fd_step)
    dist = [keras.ops.convert_to_numpy(distances.pairwise_distance(
        o["global"].astype(np.float64), o["global"].astype(np.float64))) for o in outs]
    check_mutual(chk, rng, quick, fd_step,
                 inputs=(dist[0], dist[1], outs[0]["logits"].astype(np.float64),
                         outs[1]["logits"].astype(np.float64)),
                 tag="model")


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
        list of :class:`~reid_tf.gradcheck.results.CheckResult`.
    """
    import keras

    if keras.backend.backend() == "jax":  # float64 checks need 64-bit JAX arrays
        import jax

        jax.config.update("jax_enable_x64", True)
    chk = Checker(verbose)
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

