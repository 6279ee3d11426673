"""Cameras (colour response, scene colours), cluttered backgrounds and occluders."""

from dataclasses import dataclass

import numpy as np

from .palette import BACKGROUND, CLOTHES


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


def render_background(cam, h, w, clutter, rng):
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


def paint_occluder(img, rng):
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
