"""Drawing people on BGR frames, and tiling several streams into one image."""
from __future__ import annotations

import colorsys
import math

import cv2
import numpy as np

from .pose import NUM_KEYPOINTS, SKELETON, Person


def _palette(n: int) -> list[tuple[int, int, int]]:
    """``n`` saturated BGR colours spread around the hue circle."""
    rgb = (colorsys.hsv_to_rgb(i / n, 0.85, 1.0) for i in range(n))
    return [(round(b * 255), round(g * 255), round(r * 255)) for r, g, b in rgb]


#: One colour a skeleton limb.
LIMB_COLORS = _palette(len(SKELETON))


def _joint_colors() -> list[tuple[int, int, int]]:
    """A joint takes the colour of the limb that ends at it; the root (neck) is white."""
    colors = [(255, 255, 255)] * NUM_KEYPOINTS
    for (_, child), color in zip(SKELETON, LIMB_COLORS):
        colors[child] = color
    return colors


JOINT_COLORS = _joint_colors()


def draw_people(image: np.ndarray, people: list[Person], *, draw_ids: bool = True,
                min_score: float = 0.0) -> np.ndarray:
    """Draw skeletons on a BGR u8 ``image`` in place and return it.

    Keypoints with a score not above ``min_score`` are left out, and so are their limbs. With
    ``draw_ids``, a tracked person (``track_id`` ≥ 0) gets a label with its id above its box.
    Line widths and the label size follow the image size; joints shrink for small people so
    that their limbs stay visible.
    """
    size = max(image.shape[:2])
    thickness = max(1, round(size / 400))
    for person in people:
        kps = person.keypoints
        shown = kps[:, 2] > min_score
        pts = [(round(float(x)), round(float(y))) for x, y in kps[:, :2]]
        radius = max(1, min(thickness + 2, round(max(person.bbox[2:]) / 40)))
        for (a, b), color in zip(SKELETON, LIMB_COLORS):
            if shown[a] and shown[b]:
                cv2.line(image, pts[a], pts[b], color, thickness, cv2.LINE_AA)
        for k in np.flatnonzero(shown):
            cv2.circle(image, pts[k], radius, JOINT_COLORS[k], -1, cv2.LINE_AA)
        if draw_ids and person.track_id >= 0 and shown.any():
            _label(image, str(person.track_id), person.bbox, thickness)
    return image


def _label(image: np.ndarray, text: str, bbox: tuple[float, float, float, float], thickness: int) -> None:
    """White text on a dark box centred just above ``bbox``."""
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness + 0.2
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    x = max(0, round(bbox[0] + (bbox[2] - tw) / 2))
    y = max(th + base, round(bbox[1]) - 4)
    cv2.rectangle(image, (x, y - th - base), (x + tw + 2, y + base // 2), (40, 40, 40), -1)
    cv2.putText(image, text, (x + 1, y - base // 2), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def tile(frames: list[np.ndarray], cols: int | None = None) -> np.ndarray:
    """Frames side by side in a grid of ``cols`` columns (default: about square).

    Every cell has the first frame's size; other frames are scaled to fit and centred on black.
    Grey frames are converted to BGR.
    """
    if not frames:
        raise ValueError("tile() needs at least one frame")
    cols = cols or math.ceil(math.sqrt(len(frames)))
    rows = math.ceil(len(frames) / cols)
    h, w = frames[0].shape[:2]
    grid = np.zeros((rows * h, cols * w, 3), np.uint8)
    for i, frame in enumerate(frames):
        if frame.ndim == 2 or frame.shape[2] == 1:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        fh, fw = frame.shape[:2]
        if (fh, fw) != (h, w):
            s = min(h / fh, w / fw)
            fh, fw = max(1, round(fh * s)), max(1, round(fw * s))
            frame = cv2.resize(frame, (fw, fh), interpolation=cv2.INTER_AREA)
        y, x = (i // cols) * h + (h - fh) // 2, (i % cols) * w + (w - fw) // 2
        grid[y:y + fh, x:x + fw] = frame
    return grid
