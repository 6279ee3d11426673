"""Rendering: an identity's template in canonical pose, and one camera image of it."""

import io

import numpy as np

from .config import PARTS
from .misalignment import detection_box
from .scene import paint_occluder, render_background


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
        >>> from data_prep.synthetic import make_identities
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
        >>> from data_prep.synthetic import SyntheticConfig, make_cameras, make_identities
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
    top, box_h = detection_box(dy, scale)
    box_w = box_h * (w / h) * float(np.exp(rng.uniform(-0.05, 0.05)))
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
    img = render_background(camera, rh, rw, cfg.clutter, rng)
    img = np.where(mask[..., None], trgb[ty_c, tx_c], img)
    occluder = paint_occluder(img, rng) if rng.random() < cfg.occlusion_prob else None
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


def encode_jpeg(img, quality):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()
