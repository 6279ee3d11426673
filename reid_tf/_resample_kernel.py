"""The Numba kernel of :func:`reid_tf.image_io.crop_and_resize`.

``tf.image.crop_and_resize`` (bilinear) for one image, in float32 with
TensorFlow's order of operations: along x on the two source rows, then
along y. Runs without the GIL, so the PyDataset's loader threads resample in
parallel.
"""

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def resample_bilinear(image, ys, xs, out):
    """Fills ``out`` [h, w, C] with ``image`` [H, W, C] (float32) sampled at rows
    ``ys`` [h] and columns ``xs`` [w] (float32 source coordinates, 0 = first
    pixel centre); a row or column outside the image gives zeros."""
    H, W, C = image.shape
    y_max, x_max = np.float32(H - 1), np.float32(W - 1)
    for y in range(ys.shape[0]):
        in_y = ys[y]
        if in_y < 0 or in_y > y_max:
            out[y, :, :] = 0
            continue
        top, bottom = int(np.floor(in_y)), int(np.ceil(in_y))
        y_lerp = in_y - np.float32(top)
        for x in range(xs.shape[0]):
            in_x = xs[x]
            if in_x < 0 or in_x > x_max:
                out[y, x, :] = 0
                continue
            left, right = int(np.floor(in_x)), int(np.ceil(in_x))
            x_lerp = in_x - np.float32(left)
            for c in range(C):
                top_left, top_right = image[top, left, c], image[top, right, c]
                bottom_left, bottom_right = image[bottom, left, c], image[bottom, right, c]
                upper = top_left + (top_right - top_left) * x_lerp
                lower = bottom_left + (bottom_right - bottom_left) * x_lerp
                out[y, x, c] = upper + (lower - upper) * y_lerp
