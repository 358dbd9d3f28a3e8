"""Outputs of ``lwpose run``: JSON lines, annotated video, a live window."""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from ..draw import tile
from ..errors import LwposeError
from ..pose import Person
from .engine import Result

#: Frame rate of saved videos when the source has none (cameras often report 0).
DEFAULT_VIDEO_FPS = 25.0


def json_line(stream: str, frame: int, timestamp: float, people: list[Person]) -> str:
    """One JSON-lines record: ``{"stream", "frame", "timestamp", "people": [Person.to_dict()]}``."""
    return json.dumps({"stream": stream, "frame": frame, "timestamp": round(timestamp, 6),
                       "people": [p.to_dict() for p in people]}, separators=(",", ":"))


class JsonLinesSink:
    """One line a frame, flushed at once so an interrupted run leaves whole lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = open(path, "w", encoding="utf-8")
        except OSError as exc:
            raise LwposeError(f"cannot write {path} ({exc.strerror})") from None

    def write(self, result: Result) -> None:
        self._file.write(json_line(result.stream, result.meta, result.timestamp, result.people) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class VideoSink:
    """An MP4 video of the annotated frames; opened on the first frame, at its size."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps if fps > 0 else DEFAULT_VIDEO_FPS
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] = (0, 0)

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            self._size = (image.shape[1], image.shape[0])
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self._size)
            if not self._writer.isOpened():
                raise LwposeError(f"cannot write video {self.path} (no mp4v encoder in this OpenCV build?)")
        if (image.shape[1], image.shape[0]) != self._size:  # a live source reconnected at another size
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


def check_display() -> None:
    """Raise LwposeError if this OpenCV cannot open windows (``--show``)."""
    gui = next((line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
                if line.strip().startswith("GUI:")), "")
    if gui.upper() in ("", "NONE"):
        raise LwposeError("--show needs OpenCV with GUI support, but this is a headless build "
                          "(opencv-python-headless); install opencv-python instead, or use --save-video")
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise LwposeError("--show needs a display, but neither DISPLAY nor WAYLAND_DISPLAY is set")


class Window:
    """A live window with the newest frame of every stream, tiled (``lwpose.draw.tile``)."""

    TITLE = "lwpose"

    def __init__(self, streams: list[str]) -> None:
        self._latest: dict[str, np.ndarray | None] = dict.fromkeys(streams)

    def show(self, stream: str, image: np.ndarray) -> bool:
        """Update ``stream``'s tile and redraw; False once the user pressed q or Esc."""
        self._latest[stream] = image
        frames = [f for f in self._latest.values() if f is not None]
        cv2.imshow(self.TITLE, tile(frames) if len(frames) > 1 else frames[0])
        return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)

    def close(self) -> None:
        cv2.destroyAllWindows()
