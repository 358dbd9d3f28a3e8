"""Test-time augmentation: undoing a horizontal flip on the maps, and averaging maps of
several input scales.

Flip: the whole prepared input tensor (image and padding) is mirrored, so map column ``j`` of the
mirrored run lines up exactly with column ``W - 1 - j`` of the plain one. Mirroring swaps left and
right: heatmap channels are permuted with ``flip_permutation()`` (the background channel stays);
the PAF pair of each limb comes from its mirrored limb's pair, with the x component negated.

Scales: each run's maps are resized (bilinear, pixel centres aligned) by the ratio of its
image→input scale to the largest one, then cropped or edge-padded to the largest run's map size,
and averaged there; grouping then runs once on that finest grid.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..pose import LIMB_PAF_CHANNELS, LIMBS, flip_permutation
from ..preprocess import Maps


def _paf_flip() -> tuple[np.ndarray, np.ndarray]:
    """(source channel, sign) for each of the 38 PAF channels of an unflipped map."""
    perm = flip_permutation()
    source = np.arange(2 * len(LIMBS))
    sign = np.ones(2 * len(LIMBS), np.float32)
    for (a, b), (cx, cy) in zip(LIMBS, LIMB_PAF_CHANNELS):
        mx, my = LIMB_PAF_CHANNELS[LIMBS.index((perm[a], perm[b]))]
        source[cx], source[cy] = mx, my
        sign[cx] = -1.0
    return source, sign


#: Heatmap channel order after a flip (18 keypoints, then the background channel).
HEATMAP_FLIP = np.array([*flip_permutation(), len(flip_permutation())])
PAF_FLIP, PAF_SIGN = _paf_flip()


def unflip(maps: Maps) -> Maps:
    """The maps of a horizontally mirrored input, brought back to the unmirrored input."""
    heatmaps = maps.heatmaps[HEATMAP_FLIP, :, ::-1]
    pafs = maps.pafs[PAF_FLIP, :, ::-1] * PAF_SIGN[:, None, None]
    return Maps(np.ascontiguousarray(heatmaps), np.ascontiguousarray(pafs), maps.scale)


def merge(runs: list[Maps]) -> Maps:
    """Average maps of the same image at different scales (and flips) on the finest run's grid."""
    finest = max(runs, key=lambda m: m.scale)
    height, width = finest.heatmaps.shape[1:]
    split = finest.heatmaps.shape[0]
    total = np.zeros((height, width, split + finest.pafs.shape[0]), np.float32)
    for run in runs:
        hwc = np.ascontiguousarray(np.concatenate([run.heatmaps, run.pafs]).transpose(1, 2, 0), dtype=np.float32)
        if run.scale != finest.scale:
            ratio = finest.scale / run.scale
            hwc = cv2.resize(hwc, None, fx=ratio, fy=ratio, interpolation=cv2.INTER_LINEAR)
            hwc = _fit(hwc, height, width)
        total += hwc
    total /= len(runs)
    chw = total.transpose(2, 0, 1)
    return Maps(np.ascontiguousarray(chw[:split]), np.ascontiguousarray(chw[split:]), finest.scale)


def _fit(hwc: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crop the bottom/right or replicate the last row/column to ``height`` × ``width``."""
    hwc = hwc[:height, :width]
    pad_h, pad_w = height - hwc.shape[0], width - hwc.shape[1]
    if pad_h or pad_w:
        hwc = np.pad(hwc, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return hwc
