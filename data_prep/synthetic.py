"""A synthetic person re-identification dataset with the challenges AlignedReID
addresses: inaccurate detection boxes, occlusion, pose and look-alikes.

Every identity is a stylised person built from four vertically stacked body
parts (head, torso, legs, feet). Its identity lives in part-specific details at
particular heights: hair colour and style, a logo and a stripe texture on the
torso, the cut and pattern of the trousers, the shoe colour. Each image then
places the person in a detection box that is shifted and scaled vertically
(the head is cut off, or extra background appears), jitters the pose
horizontally, may occlude part of the body, and renders the result through a
camera-specific colour response on a cluttered background with noise. Some
identities come in look-alike pairs that differ in exactly one body part.

The files follow the Market-1501 layout and naming (``bounding_box_train/``,
``bounding_box_test/``, ``query/``; ``PPPP_cXsY_FFFFFF_BB.jpg``), so the
``market1501`` converter prepares them. See docs/synthetic.md.

Rendering is vectorised NumPy and the output is byte-identical for the same
seed and knobs (each image draws from its own seeded generator).
"""

import copy
import hashlib
import io
import json
import os
import re
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from data_prep._io import PrepError, Progress, add_common_arguments
from reid_common import atomic_write_bytes, atomic_write_json

FORMAT = "reid-synthetic"
VERSION = 1
PARTS = ("head", "torso", "legs", "feet")
FOLDERS = ("bounding_box_train", "bounding_box_test", "query")
NAME_RE = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")

# Clothing palette (RGB in [0, 1]). Deliberately small so that many identities
# share their dominant colours and must be told apart by details.
CLOTHES = np.array([
    [0.10, 0.10, 0.11], [0.92, 0.92, 0.90], [0.50, 0.50, 0.52], [0.12, 0.17, 0.38],
    [0.20, 0.40, 0.80], [0.78, 0.14, 0.14], [0.16, 0.52, 0.24], [0.45, 0.45, 0.18],
    [0.45, 0.28, 0.15], [0.82, 0.74, 0.56], [0.92, 0.80, 0.16], [0.48, 0.22, 0.58],
])
SKIN = np.array([[0.96, 0.80, 0.69], [0.87, 0.67, 0.52], [0.72, 0.52, 0.38],
                 [0.55, 0.38, 0.26], [0.36, 0.24, 0.17]])
HAIR = np.array([[0.06, 0.05, 0.05], [0.25, 0.16, 0.09], [0.50, 0.33, 0.17],
                 [0.85, 0.72, 0.42], [0.62, 0.62, 0.62], [0.60, 0.25, 0.10]])
BACKGROUND = np.array([
    [0.55, 0.55, 0.55], [0.40, 0.42, 0.45], [0.62, 0.58, 0.50], [0.35, 0.38, 0.30],
    [0.70, 0.70, 0.72], [0.30, 0.28, 0.27], [0.50, 0.45, 0.40], [0.45, 0.50, 0.55],
])


# --------------------------------------------------------------------------
# configuration

@dataclass(frozen=True)
class SyntheticConfig:
    """Every knob of the generator with its default (see docs/synthetic.md).

    Fractions of the person height are written "h", of the box width "w".
    """

    num_identities: int = 300        # identities in all; half train, half test
    num_cameras: int = 6             # cameras 1..num_cameras
    images_per_identity: int = 16    # images of each identity (>= 4)
    height: int = 128                # image height in pixels
    width: int = 64                  # image width in pixels
    seed: int = 0
    vertical_shift: float = 0.15     # box top moves by U(-s, s) h
    scale_jitter: float = 0.2        # box size multiplied by exp(U(-s, s))
    pose_jitter: float = 0.06        # horizontal offset / lean / stride (w)
    occlusion_prob: float = 0.3      # chance of an occluding object per image
    lookalike_fraction: float = 0.3  # fraction of identities in look-alike pairs
    clutter: float = 0.5             # background objects (mean 10 * clutter)
    noise: float = 0.03              # Gaussian pixel noise (std, [0, 1] scale)
    illumination: float = 0.2        # per-image brightness U(1 +- s) and gradient
    camera_strength: float = 0.12    # per-camera colour cast / mixing
    blur_prob: float = 0.2           # chance of a low-resolution (blurred) image
    distractor_fraction: float = 0.1  # pid 0000 images, fraction of the test gallery
    junk_fraction: float = 0.05      # pid -1 images, fraction of the test gallery
    jpeg_quality: int = 90

    def validate(self):
        """Raise PrepError naming the first bad knob."""
        def need(cond, name, what):
            if not cond:
                raise PrepError(f"--{name.replace('_', '-')}: {what}, got {getattr(self, name)!r}")

        need(int(self.num_identities) == self.num_identities and self.num_identities >= 2,
             "num_identities", "must be an integer >= 2")
        need(2 <= self.num_cameras <= 9, "num_cameras", "must be between 2 and 9")
        need(self.images_per_identity >= 4, "images_per_identity", "must be >= 4")
        need(self.num_identities <= 9999, "num_identities", "must be <= 9999 (4-digit pids)")
        need(16 <= self.height <= 1024, "height", "must be between 16 and 1024")
        need(8 <= self.width <= 1024, "width", "must be between 8 and 1024")
        need(0 <= self.seed < 2 ** 63, "seed", "must be a non-negative integer")
        for name in ("vertical_shift", "scale_jitter", "pose_jitter", "clutter", "noise",
                     "illumination", "camera_strength"):
            need(np.isfinite(getattr(self, name)) and 0 <= getattr(self, name) <= 1, name,
                 "must be between 0 and 1")
        for name in ("occlusion_prob", "lookalike_fraction", "blur_prob",
                     "distractor_fraction", "junk_fraction"):
            need(0 <= getattr(self, name) <= 1, name, "must be between 0 and 1")
        need(1 <= self.jpeg_quality <= 100, "jpeg_quality", "must be between 1 and 100")
        return self


KNOB_HELP = {
    "num_identities": "identities in all; the first half (rounded up) train, the rest test",
    "num_cameras": "number of cameras (2..9); each identity appears in 2 or more",
    "images_per_identity": "images of each identity (>= 4); test identities give one "
                           "query per camera, the rest go to the gallery",
    "height": "image height in pixels",
    "width": "image width in pixels",
    "seed": "random seed; the same seed and knobs give byte-identical files",
    "vertical_shift": "inaccurate detection: the box moves up/down by up to this "
                      "fraction of the person height (cuts the head or feet off)",
    "scale_jitter": "inaccurate detection: the box size is multiplied by exp(U(-s, s)) "
                    "(extra background or a cropped person)",
    "pose_jitter": "pose: horizontal offset, lean and leg stride, as a fraction of the box width",
    "occlusion_prob": "probability that an object (car, pole, pedestrian, sign) covers part "
                      "of the person",
    "lookalike_fraction": "fraction of identities that come in look-alike pairs differing "
                          "in exactly one body part",
    "clutter": "background clutter: mean number of background objects is 10 * clutter",
    "noise": "standard deviation of the Gaussian pixel noise (pixel values in [0, 1])",
    "illumination": "per-image brightness factor U(1 - s, 1 + s) plus a brightness gradient",
    "camera_strength": "strength of each camera's colour cast and channel mixing",
    "blur_prob": "probability that an image is rendered at half resolution (blurred)",
    "distractor_fraction": "distractor images (pid 0000, people not in the dataset) as a "
                           "fraction of the test gallery",
    "junk_fraction": "junk images (pid -1, bad detections) as a fraction of the test gallery",
    "jpeg_quality": "JPEG quality of the written images",
}


# --------------------------------------------------------------------------
# identities

def _colour(rng, palette, jitter=0.04):
    c = palette[rng.integers(len(palette))] + rng.uniform(-jitter, jitter, 3)
    return [round(float(x), 3) for x in np.clip(c, 0.0, 1.0)]


def _other_colour(rng, palette, avoid):
    """A palette colour clearly different from ``avoid``."""
    for _ in range(50):
        c = _colour(rng, palette)
        if np.abs(np.subtract(c, avoid)).sum() > 0.45:
            return c
    return c


def _sample_part(part, rng):
    """Random spec of one body part. Fields that do not affect the rendering
    are None, so two specs differ exactly when they look different."""
    if part == "head":
        style = ["short", "long", "cap", "bald"][rng.choice(4, p=[0.45, 0.3, 0.17, 0.08])]
        spec = {"skin": _colour(rng, SKIN, 0.02), "hair_style": style,
                "hair": _colour(rng, HAIR, 0.03) if style != "bald" else None,
                "cap": _colour(rng, CLOTHES) if style == "cap" else None}
        return spec
    if part == "torso":
        colour = _colour(rng, CLOTHES)
        texture = ["plain", "hstripes", "vstripes", "two_tone"][
            rng.choice(4, p=[0.4, 0.25, 0.15, 0.2])]
        logo = ["none", "square", "circle", "diamond", "bar"][
            rng.choice(5, p=[0.3, 0.2, 0.2, 0.15, 0.15])]
        bag = bool(rng.random() < 0.25)
        spec = {"colour": colour, "texture": texture,
                "colour2": _other_colour(rng, CLOTHES, colour) if texture != "plain" else None,
                "period": round(float(rng.uniform(0.03, 0.05)), 3)
                if texture in ("hstripes", "vstripes") else None,
                "sleeves": "long" if rng.random() < 0.6 else "short",
                "logo": logo,
                "logo_colour": _other_colour(rng, CLOTHES, colour) if logo != "none" else None,
                "logo_u": round(float(rng.choice([-0.05, 0.0, 0.05])), 3)
                if logo != "none" else None,
                "logo_v": round(float(rng.uniform(0.26, 0.36)), 3) if logo != "none" else None,
                "logo_size": round(float(rng.uniform(0.035, 0.05)), 3) if logo != "none" else None,
                "bag": _colour(rng, CLOTHES) if bag else None,
                "bag_side": int(rng.choice([-1, 1])) if bag else None}
        return spec
    if part == "legs":
        colour = _colour(rng, CLOTHES)
        style = ["trousers", "shorts", "skirt"][rng.choice(3, p=[0.65, 0.2, 0.15])]
        texture = ["plain", "side_stripe", "hstripes"][rng.choice(3, p=[0.55, 0.3, 0.15])]
        return {"colour": colour, "style": style, "texture": texture,
                "colour2": _other_colour(rng, CLOTHES, colour) if texture != "plain" else None}
    if part == "feet":
        return {"colour": _colour(rng, CLOTHES),
                "style": "boots" if rng.random() < 0.25 else "shoes"}
    raise ValueError(part)


_MINOR = ("period", "logo_u", "logo_v", "logo_size", "bag_side")


def visibly_different(a, b):
    """True when two specs of the same part differ in a way one can see at
    128x64: a colour by more than 0.3 (L1, RGB in [0, 1]) or a categorical
    field (style, texture, logo shape, sleeves, presence of a bag or cap).

    Example:
        >>> visibly_different({"colour": [0, 0, 0], "style": "shoes"},
        ...                   {"colour": [0.05, 0, 0], "style": "shoes"})
        False
    """
    for key in a:
        x, y = a[key], b[key]
        if key in _MINOR:
            continue
        if isinstance(x, list) and isinstance(y, list):
            if np.abs(np.subtract(x, y)).sum() > 0.3:
                return True
        elif x != y:
            return True
    return False


def _sample_identity(rng):
    spec = {p: _sample_part(p, rng) for p in PARTS}
    spec["build"] = {"width": round(float(rng.uniform(0.9, 1.12)), 3)}
    return spec


def _spec_key(spec):
    return json.dumps({p: spec[p] for p in PARTS}, sort_keys=True)


def make_identities(num, lookalike_fraction, rng, taken=None):
    """Sample ``num`` identity specs, the first ones in look-alike pairs.

    Pairs are (0, 1), (2, 3), ...; the second identity of a pair copies the
    first and re-samples exactly one body part (chosen uniformly) until it
    differs visibly (:func:`visibly_different`); half of the time the part
    keeps its dominant colour, so the difference is a detail (logo, texture,
    style). The build (body width) stays the same.

    Args:
        num: number of identities.
        lookalike_fraction: fraction of the ``num`` identities that are in pairs.
        rng: ``numpy.random.Generator``.
        taken: optional set of spec keys to avoid (updated).

    Returns:
        (specs, pairs): list of dicts {"head", "torso", "legs", "feet", "build"};
        list of (i, j, part) with i, j indices into ``specs``.

    Example:
        >>> specs, pairs = make_identities(4, 1.0, np.random.default_rng(0))
        >>> len(specs), len(pairs)
        (4, 2)
    """
    taken = set() if taken is None else taken
    num_pairs = min(num // 2, int(round(lookalike_fraction * num / 2)))
    specs, pairs = [], []
    while len(specs) < num:
        spec = _sample_identity(rng)
        if _spec_key(spec) in taken:
            continue
        taken.add(_spec_key(spec))
        specs.append(spec)
        if len(pairs) < num_pairs and len(specs) < num:
            part = PARTS[rng.integers(len(PARTS))]
            twin = copy.deepcopy(spec)
            while True:
                twin[part] = _sample_part(part, rng)
                if part != "head":
                    # keep the dominant colour half of the time: the difference
                    # is then a detail (logo, texture, style) only
                    if rng.random() < 0.5 and "colour" in twin[part]:
                        twin[part]["colour"] = spec[part]["colour"]
                if visibly_different(twin[part], spec[part]) and _spec_key(twin) not in taken:
                    break
            taken.add(_spec_key(twin))
            pairs.append((len(specs) - 1, len(specs), part))
            specs.append(twin)
    return specs, pairs


# --------------------------------------------------------------------------
# rendering

def _grid(th, tw):
    v = ((np.arange(th) + 0.5) / th)[:, None]
    u = ((np.arange(tw) + 0.5) - tw / 2.0)[None, :] / th
    return v, u


def render_template(spec, template_height=256):
    """Render an identity on a transparent canvas in canonical pose.

    The canvas is [T, T/2] with the person's head at the top row and the soles
    at the bottom; ``v`` runs 0..1 down the person, ``u`` across in units of
    the person height.

    Args:
        spec: identity spec from :func:`make_identities`.
        template_height: T in pixels.

    Returns:
        (rgb [T, T/2, 3] float32 in [0, 1], alpha [T, T/2] bool).

    Example:
        >>> spec = make_identities(1, 0.0, np.random.default_rng(0))[0][0]
        >>> rgb, alpha = render_template(spec, 64)
        >>> rgb.shape, alpha.dtype
        ((64, 32, 3), dtype('bool'))
    """
    th = int(template_height)
    tw = th // 2
    v, u = _grid(th, tw)
    u = u / spec["build"]["width"]
    au = np.abs(u)
    rgb = np.zeros((th, tw, 3), np.float32)
    alpha = np.zeros((th, tw), bool)

    def paint(mask, colour):
        mask = np.broadcast_to(mask, (th, tw))
        rgb[mask] = colour
        alpha[mask] = True

    head, torso, legs, feet = (spec[p] for p in PARTS)
    skin = head["skin"]
    # legs
    leg_w = 0.1 - 0.025 * np.clip((v - 0.5) / 0.42, 0, 1)
    gap = np.where(v > 0.58, 0.008 + 0.01 * np.clip((v - 0.58) / 0.3, 0, 1), -1.0)
    leg = (v >= 0.5) & (v <= 0.93) & (au <= leg_w) & (au >= gap)
    if legs["style"] == "skirt":
        skin_leg = (v > 0.5) & (v <= 0.93) & (au <= 0.062) & (au >= 0.014)
        paint(skin_leg, skin)
        skirt_w = 0.105 + 0.05 * np.clip((v - 0.5) / 0.22, 0, 1)
        cloth = (v >= 0.5) & (v <= 0.72) & (au <= skirt_w)
    elif legs["style"] == "shorts":
        paint(leg, skin)
        cloth = leg & (v <= 0.69)
    else:
        cloth = leg
    paint(cloth, legs["colour"])
    if legs["texture"] == "side_stripe":
        edge = leg_w if legs["style"] != "skirt" else 0.105 + 0.05 * np.clip((v - 0.5) / 0.22, 0, 1)
        paint(cloth & (au >= edge - 0.022) & (au <= edge - 0.006), legs["colour2"])
    elif legs["texture"] == "hstripes":
        paint(cloth & (((v - 0.5) / 0.05) % 1.0 < 0.35), legs["colour2"])
    # feet
    top = 0.84 if feet["style"] == "boots" else 0.915
    shoe = (v >= top) & (v <= 0.985) & (au <= 0.085 + 0.012 * (v > 0.95)) & (au >= 0.01)
    paint(shoe, feet["colour"])
    # arms (behind the torso outline) and hands
    tw_v = 0.125 - 0.02 * np.clip((v - 0.17) / 0.35, 0, 1)
    arm = (v >= 0.165) & (v <= 0.5) & (au >= tw_v - 0.005) & (au <= tw_v + 0.042)
    paint(arm, torso["colour"])
    if torso["sleeves"] == "short":
        paint(arm & (v > 0.27), skin)
    paint((v > 0.5) & (v <= 0.545) & (au >= tw_v + 0.002) & (au <= tw_v + 0.038), skin)
    # torso
    body = (v >= 0.155) & (v <= 0.53) & (au <= tw_v) & ((v - 0.155) >= 0.035 * (au / 0.125) ** 3)
    paint(body, torso["colour"])
    tex = torso["texture"]
    if tex == "hstripes":
        paint(body & (((v - 0.155) / torso["period"]) % 1.0 < 0.45), torso["colour2"])
    elif tex == "vstripes":
        paint(body & ((u / torso["period"] + 0.25) % 1.0 < 0.4), torso["colour2"])
    elif tex == "two_tone":
        paint(body & (v > 0.37), torso["colour2"])
    if torso["logo"] != "none":
        du = (u - torso["logo_u"]) / torso["logo_size"]
        dv = (v - torso["logo_v"]) / torso["logo_size"]
        shape = {"square": (np.abs(du) <= 0.8) & (np.abs(dv) <= 0.8),
                 "circle": du ** 2 + dv ** 2 <= 0.8,
                 "diamond": np.abs(du) + np.abs(dv) <= 1.0,
                 "bar": (np.abs(dv) <= 0.35) & (np.abs(du) <= 1.6)}[torso["logo"]]
        paint(body & shape, torso["logo_colour"])
    if torso["bag"] is not None:
        side = torso["bag_side"]
        strap = body & (np.abs(u * side - (0.1 - (v - 0.17) * 0.55)) <= 0.009)
        paint(strap, torso["bag"])
        paint((u * side >= 0.1) & (u * side <= 0.2) & (v >= 0.42) & (v <= 0.56), torso["bag"])
    # neck and head
    paint((v >= 0.12) & (v <= 0.165) & (au <= 0.022), skin)
    hv, hr_v, hr_u = 0.075, 0.066, 0.052
    ell = ((v - hv) / hr_v) ** 2 + (u / hr_u) ** 2
    style = head["hair_style"]
    if style == "long":
        paint((v >= 0.04) & (v <= 0.2) & (au <= 0.062) & (ell > 0.0), head["hair"])
    paint(ell <= 1.0, skin)
    if style in ("short", "long"):
        paint((ell <= 1.08) & (v <= 0.06 + 0.02 * (au / hr_u) ** 2), head["hair"])
    elif style == "cap":
        paint((ell <= 1.08) & (v <= 0.062), head["cap"])
        paint((v >= 0.05) & (v <= 0.066) & (u >= -0.085) & (u <= 0.02), head["cap"])
    # cylindrical shading
    shade = 1.0 - 0.28 * np.clip(au / 0.16, 0, 1) ** 2
    rgb *= shade[..., None].astype(np.float32)
    return rgb, alpha


@dataclass(frozen=True)
class Camera:
    """A camera's colour response and scene (background colours)."""

    mix: np.ndarray      # [3, 3] colour matrix
    bias: np.ndarray     # [3]
    wall: np.ndarray     # [3] upper background colour
    floor: np.ndarray    # [3] ground colour
    horizon: float       # ground starts at this fraction of the height


def make_cameras(num, strength, rng):
    """Random camera colour responses (near-identity matrices) and scenes.

    Example:
        >>> cams = make_cameras(2, 0.1, np.random.default_rng(0))
        >>> cams[0].mix.shape
        (3, 3)
    """
    cams = []
    for _ in range(num):
        gain = 1.0 + rng.uniform(-strength, strength, 3)
        mix = np.diag(gain) + rng.normal(0.0, strength * 0.35, (3, 3)) * (1 - np.eye(3))
        cams.append(Camera(mix=mix.astype(np.float32),
                           bias=rng.uniform(-strength * 0.3, strength * 0.3, 3).astype(np.float32),
                           wall=BACKGROUND[rng.integers(len(BACKGROUND))].astype(np.float32),
                           floor=BACKGROUND[rng.integers(len(BACKGROUND))].astype(np.float32) * 0.8,
                           horizon=float(rng.uniform(0.45, 0.75))))
    return cams


def _background(cam, h, w, clutter, rng):
    rows = (np.arange(h) / h)[:, None, None]
    hz = cam.horizon + rng.uniform(-0.1, 0.1)
    img = np.where(rows < hz, cam.wall, cam.floor).astype(np.float32)
    img = img * (1.0 + 0.15 * (rows - 0.5)).astype(np.float32)
    img = np.broadcast_to(img, (h, w, 3)).copy()
    for _ in range(rng.poisson(10.0 * clutter)):
        y0, x0 = rng.integers(0, h), rng.integers(-w // 4, w)
        bh, bw = rng.integers(h // 16, h // 2), rng.integers(w // 10, w // 2)
        colour = BACKGROUND[rng.integers(len(BACKGROUND))] * rng.uniform(0.6, 1.3) \
            if rng.random() < 0.7 else CLOTHES[rng.integers(len(CLOTHES))]
        img[max(y0, 0):y0 + bh, max(x0, 0):x0 + bw] = colour
    return img


def _occluder(img, rng):
    """Paint an occluding object; returns its kind."""
    h, w, _ = img.shape
    kind = ["car", "pole", "pedestrian", "sign"][rng.choice(4, p=[0.4, 0.25, 0.2, 0.15])]
    base = CLOTHES[rng.integers(len(CLOTHES))] if kind != "pole" else \
        BACKGROUND[rng.integers(len(BACKGROUND))] * 0.6
    if kind == "car":          # a wide object over the lower body
        top = int(h * rng.uniform(0.5, 0.75))
        x0 = int(w * rng.uniform(-0.3, 0.2))
        x1 = int(w * rng.uniform(0.8, 1.3))
        img[top:, max(x0, 0):x1] = base
        img[top:top + max(1, h // 40), max(x0, 0):x1] = base * 0.5
        img[top + (h - top) // 2:top + (h - top) // 2 + max(1, h // 30), max(x0, 0):x1] = 0.85
    elif kind == "pole":       # a thin vertical object over the whole height
        cx = int(w * rng.uniform(0.15, 0.85))
        half = max(1, int(w * rng.uniform(0.06, 0.14)))
        img[:, max(cx - half, 0):cx + half] = base
    elif kind == "pedestrian":  # another person's body at the side
        side = rng.integers(2)
        width = int(w * rng.uniform(0.25, 0.45))
        top = int(h * rng.uniform(0.0, 0.3))
        cols = slice(0, width) if side == 0 else slice(w - width, w)
        img[top:int(h * 0.6), cols] = base
        img[int(h * 0.6):, cols] = CLOTHES[rng.integers(len(CLOTHES))]
    else:                      # a sign or bag in front of the torso
        y0 = int(h * rng.uniform(0.2, 0.55))
        x0 = int(w * rng.uniform(0.0, 0.5))
        img[y0:y0 + int(h * rng.uniform(0.15, 0.3)), x0:x0 + int(w * rng.uniform(0.3, 0.6))] = base
    return kind


def render_image(template, camera, cfg, rng, *, shift=None):
    """Render one image of a person.

    Args:
        template: (rgb, alpha) from :func:`render_template`.
        camera: a :class:`Camera`.
        cfg: :class:`SyntheticConfig` (size and nuisance knobs).
        rng: ``numpy.random.Generator`` for this image.
        shift: optional fixed vertical box shift (fraction of the person
            height; positive moves the box down, cutting the head) instead of
            a random one.

    Returns:
        (uint8 [H, W, 3], info dict with "shift", "scale", "occluder", "blur").

    Example:
        >>> cfg = SyntheticConfig()
        >>> spec = make_identities(1, 0.0, np.random.default_rng(0))[0][0]
        >>> cam = make_cameras(1, 0.1, np.random.default_rng(0))[0]
        >>> img, info = render_image(render_template(spec), cam, cfg, np.random.default_rng(1))
        >>> img.shape
        (128, 64, 3)
    """
    h, w = cfg.height, cfg.width
    trgb, talpha = template
    th, tw = talpha.shape
    # detection box in person coordinates (v: 0 head top .. 1 soles)
    dy = rng.uniform(-cfg.vertical_shift, cfg.vertical_shift) if shift is None else float(shift)
    scale = float(np.exp(rng.uniform(-cfg.scale_jitter, cfg.scale_jitter)))
    box_h = 1.12 * scale
    box_w = box_h * (w / h) * float(np.exp(rng.uniform(-0.05, 0.05)))
    top = 0.5 - box_h / 2.0 + dy
    dx = rng.uniform(-1, 1) * cfg.pose_jitter * box_w
    lean = rng.uniform(-1, 1) * cfg.pose_jitter * 0.5
    stride = rng.uniform(0, 1) * cfg.pose_jitter * 0.6
    blur = bool(rng.random() < cfg.blur_prob)
    rh, rw = (h // 2, w // 2) if blur else (h, w)
    v = (top + (np.arange(rh)[:, None] + 0.5) / rh * box_h).astype(np.float32)
    u = ((np.arange(rw)[None, :] + 0.5 - rw / 2.0) / rw * box_w - dx).astype(np.float32)
    u = u - lean * (v - 0.5)
    legs = np.clip(v - 0.55, 0, None)
    u = np.where(np.abs(u) < stride * legs, 0.0, u - np.sign(u) * stride * legs)
    ty = np.floor(v * th).astype(np.int64)
    tx = np.floor(u * th + tw / 2.0).astype(np.int64)
    inside = (ty >= 0) & (ty < th) & (tx >= 0) & (tx < tw)
    ty_c = np.clip(ty, 0, th - 1)
    tx_c = np.clip(tx, 0, tw - 1)
    ty_c, tx_c = np.broadcast_arrays(ty_c, tx_c)
    mask = inside & talpha[ty_c, tx_c]
    img = _background(camera, rh, rw, cfg.clutter, rng)
    img = np.where(mask[..., None], trgb[ty_c, tx_c], img)
    occluder = _occluder(img, rng) if rng.random() < cfg.occlusion_prob else None
    # camera colour response and illumination
    gain = rng.uniform(1.0 - cfg.illumination, 1.0 + cfg.illumination)
    grad = rng.uniform(-cfg.illumination, cfg.illumination, 2)
    light = (gain * (1.0 + grad[0] * (np.arange(rh)[:, None] / rh - 0.5)
                     + grad[1] * (np.arange(rw)[None, :] / rw - 0.5))).astype(np.float32)
    img = (img @ camera.mix.T + camera.bias) * light[..., None]
    if blur:
        img = img.repeat(2, axis=0).repeat(2, axis=1)
        img = np.pad(img, ((0, h - img.shape[0]), (0, w - img.shape[1]), (0, 0)), mode="edge")
        img = 0.5 * img + 0.25 * (np.roll(img, 1, 0) + np.roll(img, 1, 1))
    if cfg.noise > 0:
        img = img + np.float32(cfg.noise) * rng.standard_normal(img.shape, dtype=np.float32)
    out = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out, {"shift": round(float(dy), 4), "scale": round(scale, 4),
                 "occluder": occluder, "blur": blur}


def _encode_jpeg(img, quality):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


# --------------------------------------------------------------------------
# the dataset plan

def _plan(cfg):
    """Decide every image: file name, identity, camera, kind. No rendering."""
    rng = np.random.default_rng((cfg.seed, 1))
    n_train = (cfg.num_identities + 1) // 2
    n_test = cfg.num_identities - n_train
    taken = set()
    specs_tr, pairs_tr = make_identities(n_train, cfg.lookalike_fraction, rng, taken)
    specs_te, pairs_te = make_identities(n_test, cfg.lookalike_fraction, rng, taken)
    specs = specs_tr + specs_te
    pairs = [(i + 1, j + 1, p) for i, j, p in pairs_tr] + \
            [(i + n_train + 1, j + n_train + 1, p) for i, j, p in pairs_te]
    images = []   # dicts: folder, pid, camid, source (identity index or distractor), shift
    max_cams = min(cfg.num_cameras, cfg.images_per_identity // 2)
    for idx in range(cfg.num_identities):
        pid = idx + 1
        m = int(rng.integers(2, max_cams + 1))
        cams = np.sort(rng.choice(cfg.num_cameras, m, replace=False)) + 1
        counts = 2 + rng.multinomial(cfg.images_per_identity - 2 * m, np.full(m, 1.0 / m))
        split = "train" if idx < n_train else "test"
        for cam, count in zip(cams, counts):
            for k in range(count):
                if split == "train":
                    folder = "bounding_box_train"
                else:
                    folder = "query" if k == 0 else "bounding_box_test"
                images.append({"folder": folder, "pid": pid, "camid": int(cam),
                               "identity": idx, "kind": "person"})
    gallery = sum(1 for r in images if r["folder"] == "bounding_box_test")
    n_distractors = int(round(cfg.distractor_fraction * gallery))
    n_junk = int(round(cfg.junk_fraction * gallery))
    num_d = max(1, n_distractors // 2) if n_distractors else 0
    d_specs, _ = make_identities(num_d, 0.0, rng, taken)
    for k in range(n_distractors):
        images.append({"folder": "bounding_box_test", "pid": 0,
                       "camid": int(rng.integers(1, cfg.num_cameras + 1)),
                       "identity": -(k % len(d_specs)) - 1, "kind": "distractor"})
    for k in range(n_junk):
        kind = "background" if rng.random() < 0.4 else "partial"
        images.append({"folder": "bounding_box_test", "pid": -1,
                       "camid": int(rng.integers(1, cfg.num_cameras + 1)),
                       "identity": int(rng.integers(n_train, cfg.num_identities))
                       if n_test > 0 else 0, "kind": kind})
    # Market-like names: a frame counter per camera
    frame = np.zeros(cfg.num_cameras + 1, np.int64)
    order = rng.permutation(len(images))
    for n in order:
        r = images[n]
        frame[r["camid"]] += int(rng.integers(1, 40))
        seq = 1 + int(frame[r["camid"]] // 100000) % 9
        pid = "-1" if r["pid"] == -1 else f"{r['pid']:04d}"
        fr = int(frame[r["camid"]] % 1000000)
        r["file"] = f"{pid}_c{r['camid']}s{seq}_{fr:06d}_{1 + n % 3:02d}.jpg"
    return specs, pairs, d_specs, images


def _render_plan_image(k, r, cfg, specs, d_specs, cameras, templates):
    rng = np.random.default_rng((cfg.seed, 2, k))
    cam = cameras[r["camid"] - 1]
    if r["identity"] >= 0:
        key = ("id", r["identity"])
        spec = specs[r["identity"]]
    else:
        key = ("d", -r["identity"] - 1)
        spec = d_specs[-r["identity"] - 1]
    if key not in templates:
        templates[key] = render_template(spec, 2 * cfg.height)
    shift = None
    if r["kind"] == "partial":      # a very bad detection: head only or legs only
        shift = float(rng.choice([-1, 1]) * rng.uniform(0.55, 0.75))
    if r["kind"] == "background":   # a detection without a person
        shift = 3.0
    return render_image(templates[key], cam, cfg, rng, shift=shift)


# --------------------------------------------------------------------------
# writing

def _config_dict(cfg):
    return {f.name: getattr(cfg, f.name) for f in fields(cfg)}


def _write_chunk(job, images=None, state=None):
    """Render and write images [a, b) of the plan; returns (infos, written, skipped).

    Runs in the calling process (``images``/``state`` given) or in a worker,
    which rebuilds the plan from the configuration (it is deterministic)."""
    config, dst, same, a, b = job
    cfg = SyntheticConfig(**config)
    if images is None:
        specs, _, d_specs, images = _plan(cfg)
        cameras = make_cameras(cfg.num_cameras, cfg.camera_strength,
                               np.random.default_rng((cfg.seed, 3)))
        state = (specs, d_specs, cameras, {})
    specs, d_specs, cameras, templates = state
    infos, written, skipped = [], 0, 0
    for k in range(a, b):
        r = images[k]
        path = Path(dst) / r["folder"] / r["file"]
        img, info = _render_plan_image(k, r, cfg, specs, d_specs, cameras, templates)
        infos.append(info)
        if same and path.is_file():
            skipped += 1
        else:
            atomic_write_bytes(path, _encode_jpeg(img, cfg.jpeg_quality))
            written += 1
    return infos, written, skipped


def _read_previous(dst):
    meta = dst / "synthetic.json"
    if not meta.is_file():
        return None
    try:
        prev = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    return prev if isinstance(prev, dict) and prev.get("format") == FORMAT else None


def generate(dst, *, num_identities=300, num_cameras=6, images_per_identity=16, height=128,
             width=64, seed=0, overwrite=False, progress=None, workers=1, **knobs):
    """Write the synthetic dataset in Market-1501 layout and naming.

    Layout: ``DST/bounding_box_train/`` (train identities, pids
    1..ceil(n/2)), ``DST/query/`` (one image per test identity per camera),
    ``DST/bounding_box_test/`` (the other test images, distractors pid 0000,
    junk pid -1), ``DST/synthetic.json`` (format, knobs, seed, identity specs,
    look-alike pairs, counts) and ``DST/synthetic_images.jsonl`` (one line per
    image: file, folder, pid, camid, kind, shift, scale, occluder, blur).

    Writing is resumable: images are written atomically, and a DST holding a
    previous synthetic output with the same knobs keeps the files it has. A
    previous output with other knobs is rewritten (stale images removed). A
    non-empty DST that is not a synthetic output is refused unless
    ``overwrite``.

    Args:
        dst: output directory.
        num_identities, num_cameras, images_per_identity, height, width, seed:
            see :class:`SyntheticConfig`.
        overwrite: allow writing into a non-empty DST that is not a synthetic
            output (its image folders' ``*.jpg`` files not in the plan are removed).
        progress: optional callable(done, total).
        workers: processes rendering in parallel (the files do not depend on it).
        **knobs: the other :class:`SyntheticConfig` fields (vertical_shift, ...).

    Returns:
        dict with "config", "counts" ({folder: images}), "identities" (specs,
        index = pid - 1), "lookalike_pairs" ([pid_a, pid_b, part]), "images"
        (the per-image records), "written", "skipped", "seconds".

    Raises:
        PrepError: bad knob or unusable DST (one-line message).

    Example:
        >>> info = generate("/tmp/synth", num_identities=10)  # doctest: +SKIP
        >>> info["counts"]["query"] > 0                        # doctest: +SKIP
        True
    """
    t0 = time.perf_counter()
    names = {f.name for f in fields(SyntheticConfig)}
    unknown = sorted(set(knobs) - names)
    if unknown:
        raise PrepError(f"synthetic: unknown knob {unknown[0]!r}")
    try:
        cfg = SyntheticConfig(num_identities=num_identities, num_cameras=num_cameras,
                              images_per_identity=images_per_identity, height=height,
                              width=width, seed=seed, **knobs).validate()
    except TypeError as exc:
        raise PrepError(f"synthetic: {exc}") from None
    dst = Path(dst)
    if dst.exists() and not dst.is_dir():
        raise PrepError(f"{dst}: DST exists and is not a directory")
    prev = _read_previous(dst) if dst.is_dir() else None
    nonempty = dst.is_dir() and any(dst.iterdir())
    if nonempty and prev is None and not overwrite:
        raise PrepError(f"{dst}: DST is not empty and holds no synthetic dataset "
                        "(use --overwrite to write into it)")
    config = _config_dict(cfg)
    same = prev is not None and prev.get("config") == config and prev.get("version") == VERSION

    specs, pairs, d_specs, images = _plan(cfg)
    cameras = make_cameras(cfg.num_cameras, cfg.camera_strength,
                           np.random.default_rng((cfg.seed, 3)))
    try:
        for folder in FOLDERS:
            (dst / folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PrepError(f"{dst}: cannot create DST: {exc.strerror or exc}") from None
    counts = {f: sum(1 for r in images if r["folder"] == f) for f in FOLDERS}
    meta = {"format": FORMAT, "version": VERSION, "complete": False, "config": config,
            "layout": "market1501", "counts": counts,
            "lookalike_pairs": [list(p) for p in pairs],
            "identities": specs}
    atomic_write_json(dst / "synthetic.json", meta, sort_keys=False)
    if not same:   # remove stale images of another configuration
        planned = {(r["folder"], r["file"]) for r in images}
        for folder in FOLDERS:
            for p in (dst / folder).iterdir():
                if p.suffix.lower() == ".jpg" and (folder, p.name) not in planned:
                    p.unlink()
    written = skipped = 0
    chunks = [(start, min(start + 256, len(images))) for start in range(0, len(images), 256)]
    jobs = [(config, str(dst), same, a, b) for a, b in chunks]
    done = 0
    if workers > 1 and len(chunks) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=int(workers), mp_context=ctx) as pool:
            results = pool.map(_write_chunk, jobs)
            for (a, b), (infos, w, sk) in zip(chunks, results):
                for r, info in zip(images[a:b], infos):
                    r.update(info)
                written, skipped, done = written + w, skipped + sk, done + b - a
                if progress is not None:
                    progress(done, len(images))
    else:
        state = (specs, d_specs, cameras, {})
        for (a, b), job in zip(chunks, jobs):
            infos, w, sk = _write_chunk(job, images, state)
            for r, info in zip(images[a:b], infos):
                r.update(info)
            written, skipped, done = written + w, skipped + sk, done + b - a
            if progress is not None:
                progress(done, len(images))
    lines = [json.dumps({key: r[key] for key in ("file", "folder", "pid", "camid", "kind",
                                                  "shift", "scale", "occluder", "blur")})
             for r in images]
    atomic_write_bytes(dst / "synthetic_images.jsonl", ("\n".join(lines) + "\n").encode())
    meta["complete"] = True
    atomic_write_json(dst / "synthetic.json", meta, sort_keys=False)
    return {"config": config, "counts": counts, "identities": specs,
            "lookalike_pairs": [list(p) for p in pairs], "images": images,
            "written": written, "skipped": skipped,
            "seconds": round(time.perf_counter() - t0, 3)}


# --------------------------------------------------------------------------
# contact sheet

def prepare(final, **knobs):
    """Generate the synthetic dataset and prepare it, once, into ``final``.

    The images are generated in Market-1501 layout into a temporary folder
    beside ``final``, converted by the ``market1501`` converter (hard links)
    into ``prepared/``, and the folder is moved onto ``final`` with one
    ``os.replace``, together with ``knobs.json``. A ``final`` that already
    holds a prepared dataset is reused as it is; an incomplete one is
    replaced.

    Args:
        final: the dataset folder (``final/prepared`` receives the manifest).
        **knobs: keyword arguments of :func:`generate`.

    Returns:
        ``Path`` of the prepared dataset (``final/prepared``).

    Raises:
        PrepError: a knob is invalid.

    Example:
        >>> prepare("/tmp/synthetic-small", num_identities=8)  # doctest: +SKIP
        PosixPath('/tmp/synthetic-small/prepared')
    """
    import shutil
    import tempfile

    from data_prep.market1501 import convert

    final = Path(final)
    prepared = final / "prepared"
    if (prepared / "manifest.jsonl").is_file():
        return prepared
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        try:
            generate(tmp / "raw", **knobs)
        except TypeError as exc:
            raise PrepError(str(exc)) from None
        convert(tmp / "raw", tmp / "prepared", dataset="market1501", mode="link", quiet=True)
        shutil.rmtree(tmp / "raw")
        atomic_write_json(tmp / "knobs.json", knobs, sort_keys=False)
        if final.exists():
            shutil.rmtree(final)  # an incomplete earlier attempt
        try:
            os.replace(tmp, final)
        except OSError:
            if not (prepared / "manifest.jsonl").is_file():  # another process won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return prepared


def cache_key(knobs):
    """The cache key of a synthetic dataset: a hash of the generator knobs,
    the dataset format and the generator version.

    Args:
        knobs: keyword arguments of :func:`generate`.

    Returns:
        str of 12 hex digits.
    """
    key = json.dumps({"knobs": knobs, "format": FORMAT, "version": VERSION},
                     sort_keys=True, default=list)
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def prepare_cached(root, **knobs):
    """The prepared synthetic dataset of ``knobs`` under the cache folder ``root``.

    Generated once into ``root/synthetic-<cache_key>`` by :func:`prepare`;
    a later call with the same knobs (and generator version) reuses it.

    Args:
        root: the cache folder (created if missing).
        **knobs: keyword arguments of :func:`generate`.

    Returns:
        ``Path`` of the prepared dataset (holds ``manifest.jsonl``).

    Raises:
        PrepError: a knob is invalid, or ``root`` cannot be created.
    """
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PrepError(f"{root}: cannot create the cache folder: {exc.strerror}") from None
    return prepare(root / f"synthetic-{cache_key(knobs)}", **knobs)


def contact_sheet(dst_png, *, rows=6, columns=8, seed=0, scale=2, **knobs):
    """Write a PNG contact sheet of sample images.

    Rows are identities (the first two rows are a look-alike pair, labelled
    with the part they differ in), columns are images of that identity spread
    over the cameras, with the per-image nuisances of the given knobs.

    Args:
        dst_png: output PNG path (written atomically).
        rows: identities shown (>= 2).
        columns: images per identity.
        seed: random seed.
        scale: integer upscaling of each image for viewing.
        **knobs: :class:`SyntheticConfig` fields (height, width, vertical_shift, ...).

    Returns:
        the PNG path.

    Example:
        >>> contact_sheet("docs/synthetic_samples.png")  # doctest: +SKIP
    """
    from PIL import Image, ImageDraw

    cfg = SyntheticConfig(seed=seed, **knobs).validate()
    rows = max(2, int(rows))
    rng = np.random.default_rng((seed, 11))
    specs, pairs = make_identities(rows, 2.0 / rows, rng)
    cams = make_cameras(cfg.num_cameras, cfg.camera_strength, np.random.default_rng((seed, 3)))
    label_h = 14
    h, w = cfg.height * scale, cfg.width * scale
    sheet = Image.new("RGB", (columns * (w + 4) + 4, rows * (h + label_h + 4) + 4), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, spec in enumerate(specs):
        template = render_template(spec, 2 * cfg.height)
        y = 4 + i * (h + label_h + 4)
        text = f"identity {i + 1}"
        for a, b, part in pairs:
            if i in (a, b):
                text += f"  (look-alike pair {a + 1}/{b + 1}: differs in {part})"
        draw.text((4, y), text, fill=(0, 0, 0))
        for j in range(columns):
            img, info = render_image(template, cams[j % cfg.num_cameras], cfg,
                                     np.random.default_rng((seed, 12, i, j)))
            tile = Image.fromarray(img).resize((w, h), Image.NEAREST)
            sheet.paste(tile, (4 + j * (w + 4), y + label_h))
            draw.text((6 + j * (w + 4), y + label_h + 1), f"c{j % cfg.num_cameras + 1}",
                      fill=(255, 255, 0))
    dst_png = Path(dst_png)
    buf = io.BytesIO()
    sheet.quantize(colors=256).save(buf, format="PNG", optimize=True)
    atomic_write_bytes(dst_png, buf.getvalue())
    return str(dst_png)


# --------------------------------------------------------------------------
# CLI

def add_arguments(parser):
    """Arguments of ``reid-prep synthetic DST [options]``."""
    parser.add_argument("dst", metavar="DST",
                        help="output folder (Market-1501 layout); prepare it afterwards with "
                             "`reid-prep market1501 DST PREPARED`")
    defaults = SyntheticConfig()
    for f in fields(SyntheticConfig):
        default = getattr(defaults, f.name)
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(default), default=default,
                            metavar="N" if isinstance(default, int) else "X",
                            help=f"{KNOB_HELP[f.name]} (default: {default})")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="processes rendering in parallel; the files are the same for "
                             "any N (default: 1)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty DST that is not a synthetic dataset "
                             "(stale *.jpg files in its image folders are removed)")
    parser.add_argument("--contact-sheet", metavar="PNG", default=None,
                        help="also write a contact sheet of samples (rows = identities, "
                             "the first two a look-alike pair; columns = cameras)")
    add_common_arguments(parser, mode=False)


def run(args):
    """Generate from parsed arguments; returns the exit status (0).

    User errors raise PrepError (the CLI prints it on one line, exit 2).
    """
    knobs = {f.name: getattr(args, f.name) for f in fields(SyntheticConfig)}
    SyntheticConfig(**knobs).validate()
    quiet = getattr(args, "quiet", False)
    bar = Progress(None, "synthetic: rendering", enabled=not quiet)

    def progress(done, total):
        bar.total = total
        bar.update()

    if args.workers < 1:
        raise PrepError(f"--workers: must be >= 1, got {args.workers}")
    info = generate(args.dst, overwrite=args.overwrite, progress=progress,
                    workers=args.workers, **knobs)
    bar.close()
    sheet = None
    if args.contact_sheet:
        if not Path(args.contact_sheet).parent.is_dir():
            raise PrepError(f"{args.contact_sheet}: --contact-sheet folder does not exist")
        knobs.pop("seed")
        sheet = contact_sheet(args.contact_sheet, seed=args.seed, **knobs)
    result = {"dataset": "synthetic", "dst": str(args.dst), "counts": info["counts"],
              "lookalike_pairs": len(info["lookalike_pairs"]), "written": info["written"],
              "skipped": info["skipped"], "seconds": info["seconds"], "contact_sheet": sheet}
    if getattr(args, "json", False):
        print(json.dumps(result, sort_keys=True))
    else:
        print(f"synthetic: {args.dst}")
        for folder, n in info["counts"].items():
            print(f"  {folder:<20} {n:>7} images")
        print(f"  look-alike pairs: {result['lookalike_pairs']}, written: {info['written']}, "
              f"already in place: {info['skipped']}, {info['seconds']:.1f} s")
        if sheet:
            print(f"  contact sheet: {sheet}")
        print(f"  next: reid-prep market1501 {args.dst} PREPARED")
    return 0


def main(argv=None):
    """``python -m data_prep.synthetic DST [options]`` (same as ``reid-prep synthetic``)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m data_prep.synthetic",
                                     description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except PrepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
