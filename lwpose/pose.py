"""Pose types, keypoint names, skeleton and the COCO-18 → COCO-17 mapping.

The 18-keypoint layout is the one of OpenPose / Lightweight OpenPose (COCO's 17 plus a neck),
in the channel order of the network's heatmaps.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KEYPOINTS_18: tuple[str, ...] = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)
NUM_KEYPOINTS = len(KEYPOINTS_18)

KEYPOINTS_17: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
#: For each COCO-17 keypoint, its index in the 18-keypoint layout (the neck has no COCO twin).
COCO17_FROM_18: tuple[int, ...] = tuple(KEYPOINTS_18.index(n) for n in KEYPOINTS_17)

#: Limbs (keypoint pairs) in the order of the network's PAF pairs, and the PAF channels
#: (x, y) that score each limb. The last two are the ear-shoulder limbs used for grouping only.
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
    (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)
LIMB_PAF_CHANNELS: tuple[tuple[int, int], ...] = (
    (12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5), (6, 7),
    (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37), (18, 19), (26, 27),
)
#: Limbs drawn for a skeleton (the ear-shoulder grouping limbs are left out).
SKELETON: tuple[tuple[int, int], ...] = LIMBS[:17]

#: Left/right keypoint pairs, for horizontal flips.
FLIP_PAIRS: tuple[tuple[int, int], ...] = ((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17))


def flip_permutation() -> list[int]:
    """Index permutation of the 18 keypoints that swaps left and right."""
    perm = list(range(NUM_KEYPOINTS))
    for a, b in FLIP_PAIRS:
        perm[a], perm[b] = b, a
    return perm


@dataclass
class Person:
    """One detected person.

    ``keypoints`` is an (18, 3) float32 array of x, y, score in image pixels; a missing keypoint
    has score 0 (and x = y = -1). ``bbox`` is (x, y, w, h) around the found keypoints.
    """

    keypoints: np.ndarray
    score: float
    track_id: int = -1
    bbox: tuple[float, float, float, float] = field(default=(0.0, 0.0, 0.0, 0.0))

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32).reshape(NUM_KEYPOINTS, 3)
        if self.bbox == (0.0, 0.0, 0.0, 0.0):
            self.bbox = bbox_of(self.keypoints)

    @property
    def found(self) -> np.ndarray:
        """Boolean mask of the keypoints that were found."""
        return self.keypoints[:, 2] > 0

    def coco17(self) -> np.ndarray:
        """(17, 3) keypoints in COCO order."""
        return self.keypoints[list(COCO17_FROM_18)]

    def to_dict(self) -> dict:
        """JSON-ready dict: keypoints as [[x, y, score] × 18], score, bbox, track_id."""
        return {
            "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)] for x, y, s in self.keypoints],
            "score": round(float(self.score), 4),
            "bbox": [round(float(v), 2) for v in self.bbox],
            "track_id": int(self.track_id),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Person":
        return cls(np.asarray(d["keypoints"], np.float32), float(d["score"]), int(d.get("track_id", -1)),
                   tuple(d["bbox"]) if "bbox" in d else (0.0, 0.0, 0.0, 0.0))


def bbox_of(keypoints: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, w, h) of the found keypoints; zeros when none is found."""
    return bboxes_of(keypoints[None])[0]


def people_from_arrays(keypoints: np.ndarray, scores: np.ndarray, scale: float = 1.0) -> list[Person]:
    """Build people from the grouping's arrays, mapping network-input pixels to image pixels
    (the inverse of a resize by ``scale``: pixel centres map to pixel centres)."""
    kps = np.array(keypoints, dtype=np.float32).reshape(-1, NUM_KEYPOINTS, 3)
    if not len(kps):
        return []
    found = kps[:, :, 2] > 0
    kps[:, :, :2] = np.where(found[:, :, None], (kps[:, :, :2] + 0.5) / scale - 0.5, -1.0)
    kps[:, :, 2] = np.where(found, kps[:, :, 2], 0.0)
    return [Person(k, s, bbox=b) for k, s, b in zip(kps, np.asarray(scores, np.float64).tolist(), bboxes_of(kps))]


def bboxes_of(keypoints: np.ndarray) -> list[tuple[float, float, float, float]]:
    """:func:`bbox_of` for each pose of an (N, 18, 3) array, in one vectorised step."""
    found = keypoints[:, :, 2:] > 0
    xy = keypoints[:, :, :2]
    lo = np.where(found, xy, np.inf).min(axis=1)
    hi = np.where(found, xy, -np.inf).max(axis=1)
    boxes = np.where(found.any(axis=1), np.concatenate([lo, hi - lo], axis=1), 0.0)
    return [tuple(b) for b in boxes.tolist()]
