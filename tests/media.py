"""Test media made from the shared video."""
from __future__ import annotations

from pathlib import Path

import cv2


def write_clip(video: Path, path: Path, frames: int) -> Path:
    """The first ``frames`` frames of ``video`` as an MJPG AVI."""
    cap = cv2.VideoCapture(str(video))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (768, 576))
    for _ in range(frames):
        writer.write(cap.read()[1])
    writer.release()
    cap.release()
    return path
