"""Stride-8 training targets, vectorised over people, keypoints and limbs.

Coordinates follow the decoder's convention (``lwpose.decode``): map cell (i, j) covers the input
pixel centre x = stride * (j + 0.5) - 0.5, y = stride * (i + 0.5) - 0.5.

* heatmaps (19, h, w): per keypoint type, the sum over people of Gaussians exp(-d² / 2σ²) (σ in
  input pixels, values below 0.01 dropped), clipped to 1; the last channel is the background
  1 - max over keypoint channels.
* PAFs (38, h, w): per limb of ``LIMBS`` in its ``LIMB_PAF_CHANNELS`` pair, the unit vector from
  the limb's first to its second keypoint on the cells within ``thickness`` cells of the segment
  (and inside its bounding box grown by ``thickness``); where people overlap, the mean vector.

A keypoint takes part when its visibility is > 0 (labelled).
"""
from __future__ import annotations

import numpy as np

from lwpose.pose import LIMB_PAF_CHANNELS, LIMBS, NUM_KEYPOINTS
from lwpose.preprocess import STRIDE

#: Gaussian values below exp(-GAUSSIAN_CUTOFF) (= 0.01) are set to zero.
GAUSSIAN_CUTOFF = np.log(100.0)
_LIMB_A = np.array([a for a, _ in LIMBS])
_LIMB_B = np.array([b for _, b in LIMBS])
_PAF_CHANNELS = np.array(LIMB_PAF_CHANNELS)


def cell_centers(size: int, stride: int = STRIDE) -> np.ndarray:
    """Input-pixel coordinates of the centres of ``size`` map cells."""
    return stride * (np.arange(size, dtype=np.float32) + 0.5) - 0.5


def heatmaps(keypoints: np.ndarray, shape: tuple[int, int], stride: int = STRIDE,
             sigma: float = 7.0) -> np.ndarray:
    """(19, h, w) float32 keypoint heatmaps + background for (P, 18, 3) keypoints in input pixels."""
    h, w = shape
    keypoints = np.asarray(keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 3)
    maps = np.zeros((NUM_KEYPOINTS + 1, h, w), np.float32)
    person, kind = np.nonzero(keypoints[:, :, 2] > 0)
    if len(kind):
        x, y = keypoints[person, kind, 0], keypoints[person, kind, 1]
        dx2 = (cell_centers(w, stride)[None, :] - x[:, None]) ** 2  # (n, w)
        dy2 = (cell_centers(h, stride)[None, :] - y[:, None]) ** 2  # (n, h)
        exponent = (dy2[:, :, None] + dx2[:, None, :]) / np.float32(2 * sigma * sigma)  # (n, h, w)
        gauss = np.where(exponent > GAUSSIAN_CUTOFF, np.float32(0), np.exp(-exponent))
        maps[:NUM_KEYPOINTS] = np.minimum(_sum_by(kind, NUM_KEYPOINTS, gauss), 1)
    maps[NUM_KEYPOINTS] = 1 - maps[:NUM_KEYPOINTS].max(axis=0)
    return maps


def pafs(keypoints: np.ndarray, shape: tuple[int, int], stride: int = STRIDE,
         thickness: float = 1.0) -> np.ndarray:
    """(38, h, w) float32 part affinity fields for (P, 18, 3) keypoints in input pixels."""
    h, w = shape
    keypoints = np.asarray(keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 3)
    maps = np.zeros((2 * len(LIMBS), h, w), np.float32)  # channels of limbs absent stay zero
    cells = (keypoints[:, :, :2] + 0.5) / stride - 0.5  # map-cell coordinates
    a, b = cells[:, _LIMB_A], cells[:, _LIMB_B]  # (P, L, 2)
    vec = b - a
    length = np.linalg.norm(vec, axis=2)
    ok = (keypoints[:, _LIMB_A, 2] > 0) & (keypoints[:, _LIMB_B, 2] > 0) & (length > 1e-7)
    person, limb = np.nonzero(ok)
    if len(limb) == 0:
        return maps
    a, b = a[person, limb], b[person, limb]  # (n, 2)
    unit = vec[person, limb] / length[person, limb, None]
    gx = np.arange(w, dtype=np.float32)[None, None, :] - a[:, 0, None, None]  # (n, 1, w): x - a_x
    gy = np.arange(h, dtype=np.float32)[None, :, None] - a[:, 1, None, None]  # (n, h, 1)
    across = np.abs(gx * unit[:, 1, None, None] - gy * unit[:, 0, None, None])  # distance to the line
    lo, hi = np.minimum(a, b) - thickness, np.maximum(a, b) + thickness
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[None, :]
    in_x = (xs >= lo[:, 0, None]) & (xs <= hi[:, 0, None])  # (n, w)
    in_y = (ys >= lo[:, 1, None]) & (ys <= hi[:, 1, None])  # (n, h)
    on = (across <= thickness) & in_y[:, :, None] & in_x[:, None, :]  # (n, h, w)
    count = np.maximum(_sum_by(limb, len(LIMBS), on.astype(np.float32)), 1)
    for axis in (0, 1):
        maps[_PAF_CHANNELS[:, axis]] = _sum_by(limb, len(LIMBS), on * unit[:, axis, None, None]) / count
    return maps


def _sum_by(groups: np.ndarray, n_groups: int, values: np.ndarray) -> np.ndarray:
    """(n_groups, h, w) sums of the (n, h, w) ``values`` by their group index."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    sums = np.zeros((n_groups, *values.shape[1:]), np.float32)
    sums[sorted_groups[starts]] = np.add.reduceat(values[order], starts, axis=0)
    return sums
