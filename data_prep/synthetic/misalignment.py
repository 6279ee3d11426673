"""How far apart the same body point lies in two images of a person, in stripes.

:func:`render.render_image` places a person of height 1 (person coordinate
``v``: 0 at the head top, 1 at the soles) in a detection box of height
``box_h = BOX_HEIGHT * scale`` whose top is at ``v = 0.5 - box_h / 2 + dy``,
with ``dy ~ U(-vertical_shift, vertical_shift)`` and ``scale ~
exp(U(-scale_jitter, scale_jitter))``. Body point ``v`` is therefore at
fraction ``(v - top) / box_h`` of the image height. With the image cut into
``stripes`` horizontal stripes (the local parts of the network, H), two
images of the same person disagree on where ``v`` lies by ``stripes *
|(v - top1) / box_h1 - (v - top2) / box_h2|`` stripes: what the alignment
of the local parts has to undo. A shortest path can only re-pair whole
stripes, so offsets below one stripe leave alignment little to do.

This is the detection geometry only: the training augmentation (pad and
random crop) moves images further.
"""

import numpy as np

BOX_HEIGHT = 1.12  # the box height at scale 1, in person heights (render_image)


def detection_box(dy, scale):
    """Top and height of a detection box in person coordinates.

    Example:
        >>> detection_box(0.0, 1.0)
        (-0.06000000000000005, 1.12)
    """
    box_h = BOX_HEIGHT * scale
    return 0.5 - box_h / 2.0 + dy, box_h


def stripe_offsets(*, vertical_shift, scale_jitter, stripes, pairs=100_000, seed=0):
    """Relative vertical offsets, in stripes, of one body point in two images
    of a person, over random pairs of images.

    Each pair draws two boxes as :func:`render.render_image` does and one body
    point ``v ~ U(0, 1)`` (head top to soles).

    Args:
        vertical_shift, scale_jitter: the generator's knobs.
        stripes: local parts H of the network (image height / stride).
        pairs: pairs drawn.
        seed: seed of the draws.

    Returns:
        [pairs] float64 offsets (>= 0).

    Example:
        >>> off = stripe_offsets(vertical_shift=0.0, scale_jitter=0.0, stripes=8, pairs=10)
        >>> float(off.max())
        0.0
    """
    rng = np.random.default_rng(seed)
    dy = rng.uniform(-vertical_shift, vertical_shift, size=(2, pairs))
    scale = np.exp(rng.uniform(-scale_jitter, scale_jitter, size=(2, pairs)))
    v = rng.uniform(0.0, 1.0, size=pairs)
    top, box_h = detection_box(dy, scale)
    where = (v - top) / box_h
    return stripes * np.abs(where[0] - where[1])


def misalignment_summary(offsets):
    """Mean offset and the shares of pairs at least one and two stripes apart.

    Example:
        >>> misalignment_summary(np.array([0.5, 1.0, 2.5, 0.0]))
        {'mean_offset_stripes': 1.0, 'share_ge_1_stripe': 0.5, 'share_ge_2_stripes': 0.25}
    """
    offsets = np.asarray(offsets, np.float64)
    return {"mean_offset_stripes": float(offsets.mean()),
            "share_ge_1_stripe": float(np.mean(offsets >= 1.0)),
            "share_ge_2_stripes": float(np.mean(offsets >= 2.0))}
