"""Test media made from a video (the repository's clip)."""
from __future__ import annotations

from pathlib import Path

import cv2


def write_clip(video: Path, path: Path, frames: int) -> Path:
    """``frames`` frames of ``video`` (from its start, played back and forth when it is shorter) as
    an MJPG AVI of the same size."""
    cap = cv2.VideoCapture(str(video))
    size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    source = []
    while len(source) < frames and (image := cap.read()[1]) is not None:
        source.append(image)
    cycle = source + source[-2:0:-1]  # back and forth: no jump in the motion
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for i in range(frames):
        writer.write(cycle[i % len(cycle)])
    writer.release()
    cap.release()
    return path
