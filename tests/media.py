"""Test media made from a video (the repository's clip)."""
from __future__ import annotations

from pathlib import Path

import cv2


def write_clip(video: Path, path: Path, frames: int) -> Path:
    """The first ``frames`` frames of ``video`` as an MJPG AVI of the same size."""
    cap = cv2.VideoCapture(str(video))
    size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for _ in range(frames):
        writer.write(cap.read()[1])
    writer.release()
    cap.release()
    return path
