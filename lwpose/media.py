"""Image and video files: the one image reader, the one frame type, and reading a few frames of
a folder or a video.

Orientation rule: images are read as stored; EXIF orientation is ignored everywhere (infer, run,
eval, training, calibration), as keypoint annotations are made on the stored pixels and a photo
must give the same pixels to every tool.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import LwposeError

#: File suffixes read as images (lower case).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class Frame:
    """One frame of a source."""

    image: np.ndarray  # BGR u8
    number: int  # position in the source (live: frames received, including dropped ones)
    timestamp: float  # seconds: position in a video, wall-clock time for live sources, index for images
    meta: Any = None  # caller data passed through to the result (e.g. a ROS header)


def image_files(folder: str | Path) -> list[Path]:
    """The image files of ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_image(path: str | Path) -> np.ndarray:
    """A BGR image as stored (EXIF orientation ignored). An unreadable file is an LwposeError
    naming it."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise LwposeError(f"{path}: not a readable image")
    return image


def _evenly(items: list, count: int) -> list:
    if len(items) <= count:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def read_frames(source: str | Path, count: int, *, spread: bool = True,
                decode_times: list[float] | None = None) -> list[np.ndarray]:
    """Up to ``count`` BGR frames of a folder of images or a video file: spread evenly over it, or
    with ``spread=False`` the first ones. ``decode_times`` (if given) receives each video frame's
    decode time in seconds. Unreadable images are skipped; LwposeError when nothing is readable."""
    source = Path(source)
    if source.is_dir():
        files = image_files(source)
        frames = []
        for path in _evenly(files, count) if spread else files[:count]:
            try:
                frames.append(read_image(path))
            except LwposeError:
                continue
    elif source.is_file():
        frames = _video_frames(source, count, spread, decode_times)
    else:
        raise LwposeError(f"{source} does not exist")
    if not frames:
        raise LwposeError(f"no readable images or video frames in {source}")
    return frames


def _video_frames(path: Path, count: int, spread: bool, decode_times: list[float] | None) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = set(_evenly(list(range(total)), count)) if total > 0 and spread else set(range(count))
        frames, index = [], 0
        while len(frames) < len(wanted):
            t0 = time.perf_counter()
            if not capture.grab():
                break
            if index in wanted:
                ok, frame = capture.retrieve()
                if ok:
                    frames.append(frame)
                    if decode_times is not None:
                        decode_times.append(time.perf_counter() - t0)
            index += 1
        return frames
    finally:
        capture.release()
