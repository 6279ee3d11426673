"""The Numba kernel of :func:`reid_tf.image_io.crop_and_resize`.

``tf.image.crop_and_resize`` (bilinear) for one image, in float32 with
TensorFlow's order of operations: along x on the two source rows, then
along y. The x pass runs once per source row that an output row uses; the y
pass is a contiguous loop. Runs without the GIL, so the PyDataset's loader
threads resample in parallel.
"""

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def resample_bilinear(image, ys, xs, out):
    """Fills ``out`` [h, w, C] (C-contiguous) with ``image`` [H, W, C] (float32)
    sampled at rows ``ys`` [h] and columns ``xs`` [w] (float32 source
    coordinates, 0 = first pixel centre); a row or column outside the image
    gives zeros."""
    H, W, C = image.shape
    h, w = ys.shape[0], xs.shape[0]
    y_max, x_max = np.float32(H - 1), np.float32(W - 1)
    used = np.zeros(H, np.bool_)
    for y in range(h):
        if not (ys[y] < 0 or ys[y] > y_max):
            used[int(np.floor(ys[y]))] = True
            used[int(np.ceil(ys[y]))] = True
    # x pass: rows[r, x, c] = TensorFlow's `top` (or `bottom`) value of source row r
    rows = np.zeros((H, w, C), np.float32)
    for x in range(w):
        in_x = xs[x]
        if in_x < 0 or in_x > x_max:
            continue  # zeros: the output column is zero on every row
        left, right = int(np.floor(in_x)), int(np.ceil(in_x))
        x_lerp = in_x - np.float32(left)
        for r in range(H):
            if used[r]:
                for c in range(C):
                    a = image[r, left, c]
                    rows[r, x, c] = a + (image[r, right, c] - a) * x_lerp
    flat_rows = rows.reshape(H, w * C)
    flat_out = out.reshape(h, w * C)
    for y in range(h):
        in_y = ys[y]
        if in_y < 0 or in_y > y_max:
            flat_out[y, :] = 0
            continue
        top, bottom = int(np.floor(in_y)), int(np.ceil(in_y))
        y_lerp = in_y - np.float32(top)
        upper, lower = flat_rows[top], flat_rows[bottom]
        for k in range(w * C):
            flat_out[y, k] = upper[k] + (lower[k] - upper[k]) * y_lerp
