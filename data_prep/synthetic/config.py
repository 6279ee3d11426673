"""The generator's knobs, their help texts, and the dataset format constants."""

import re
from dataclasses import dataclass

import numpy as np

from data_prep._io import PrepError

FORMAT = "reid-synthetic"
VERSION = 1
PARTS = ("head", "torso", "legs", "feet")
FOLDERS = ("bounding_box_train", "bounding_box_test", "query")
NAME_RE = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")


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
