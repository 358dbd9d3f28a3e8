"""Images for calibration and checks: reading folders and videos, fitting to a network input."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import LwposeError
from ..media import image_files
from ..runtime import PAD_VALUE

def fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` scaled to fit ``height`` x ``width`` (aspect kept), padded right/bottom like the
    runtime pads (``PAD_VALUE``, zero after normalisation)."""
    scale = min(height / image.shape[0], width / image.shape[1])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    out = np.full((height, width, 3), PAD_VALUE, np.uint8)
    out[:resized.shape[0], :resized.shape[1]] = resized[:height, :width]
    return out


def _evenly(items: list, count: int) -> list:
    if len(items) <= count:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def read_frames(source: Path, count: int) -> list[np.ndarray]:
    """Up to ``count`` BGR frames spread evenly over a folder of images or a video file."""
    source = Path(source)
    if source.is_dir():
        frames = [cv2.imread(str(p)) for p in _evenly(image_files(source), count)]
        frames = [f for f in frames if f is not None]
    elif source.is_file():
        frames = _video_frames(source, count)
    else:
        raise LwposeError(f"calibration source {source} does not exist")
    if not frames:
        raise LwposeError(f"no readable images or video frames in {source}")
    return frames


def _video_frames(path: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = set(_evenly(list(range(total)), count)) if total > 0 else set(range(count))
        frames, index = [], 0
        while len(frames) < len(wanted) and capture.grab():
            if index in wanted:
                ok, frame = capture.retrieve()
                if ok:
                    frames.append(frame)
            index += 1
        return frames
    finally:
        capture.release()
