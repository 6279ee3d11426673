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
``market1501`` converter prepares them (naming the dataset ``synthetic``,
:func:`is_synthetic_folder`). See docs/synthetic.md.

Rendering is vectorised NumPy and the output is byte-identical for the same
seed and knobs (each image draws from its own seeded generator).

Modules: ``config`` (knobs, format constants), ``palette``, ``identities``
(specs, look-alike pairs), ``scene`` (cameras, backgrounds, occluders),
``render`` (templates and images), ``plan`` (which image is what), ``writer``
(:func:`generate`), ``cache`` (:func:`prepare`, :func:`prepare_cached`,
:func:`cache_key`), ``sheet`` (:func:`contact_sheet`) and ``cli``.
"""

from .cache import cache_key, prepare, prepare_cached
from .cli import add_arguments, main, run
from .config import FOLDERS, FORMAT, KNOB_HELP, NAME_RE, PARTS, VERSION, SyntheticConfig
from .identities import make_identities, visibly_different
from .render import render_image, render_template
from .scene import Camera, make_cameras
from .sheet import contact_sheet
from .writer import generate, is_synthetic_folder

__all__ = [
    "FOLDERS",
    "FORMAT",
    "KNOB_HELP",
    "NAME_RE",
    "PARTS",
    "VERSION",
    "Camera",
    "SyntheticConfig",
    "add_arguments",
    "cache_key",
    "contact_sheet",
    "generate",
    "is_synthetic_folder",
    "main",
    "make_cameras",
    "make_identities",
    "prepare",
    "prepare_cached",
    "render_image",
    "render_template",
    "run",
    "visibly_different",
]
