"""Identity specs: four body parts with visible details, and look-alike pairs."""

import copy
import json

import numpy as np

from .config import PARTS
from .palette import CLOTHES, HAIR, SKIN


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
