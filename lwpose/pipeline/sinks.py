"""Where results go: the :class:`Sink` protocol and the sinks of ``lwpose run`` (JSON lines,
annotated video, a live window). Other front ends add their own (the ROS publishers).

The file sinks write under a temporary name beside their output (:class:`lwpose.fsutil.AtomicFile`)
and replace it when closed, so an earlier output is only ever replaced by a complete new one: a
sink that received no frame (its source failed to open) or failed to write (a full disk) leaves
the earlier file untouched."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from ..draw import draw_people, tile
from ..errors import LwposeError
from ..fsutil import AtomicFile
from ..pose import Person
from .engine import Result

#: Frame rate of saved videos when the source has none (cameras often report 0).
DEFAULT_VIDEO_FPS = 25.0


@runtime_checkable
class Sink(Protocol):
    """Receives the results of a pipeline, one at a time, each stream in frame order."""

    def write(self, result: Result) -> None:
        """Handle one result (called on the pipeline's consuming thread)."""

    def close(self) -> None:
        """Flush and release; called once after the last result, also after an error."""


def json_line(stream: str, frame: int, timestamp: float, people: list[Person]) -> str:
    """One JSON-lines record: ``{"stream", "frame", "timestamp", "people": [Person.to_dict()]}``."""
    return json.dumps({"stream": stream, "frame": frame, "timestamp": round(timestamp, 6),
                       "people": [p.to_dict() for p in people]}, separators=(",", ":"))


class _FileSink:
    """An output file replaced on close if at least one frame was written and no write failed."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._out = AtomicFile(self.path)
        self.frames = 0
        self._failed = False
        #: the output was replaced by the new file
        self.written = False

    def write(self, result: Result) -> None:
        try:
            self._write(result)
        except OSError as exc:
            self._failed = True
            raise self._out.error(exc) from None
        self.frames += 1

    def _write(self, result: Result) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Close the writer."""

    def close(self) -> None:
        try:
            self._release()
        except OSError as exc:
            self._out.discard()
            raise self._out.error(exc) from None
        if self._failed or not self.frames:
            self._out.discard()
            return
        self._out.commit()
        self.written = True


class JsonLinesSink(_FileSink):
    """One line a frame, flushed at once (an interrupted run still ends with whole lines)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._file = open(self._out.tmp, "w", encoding="utf-8")

    def _write(self, result: Result) -> None:
        self._file.write(json_line(result.stream, result.number, result.timestamp, result.people) + "\n")
        self._file.flush()

    def _release(self) -> None:
        self._file.close()


class VideoSink(_FileSink):
    """An MP4 video of the annotated frames; opened on the first frame, at its size."""

    def __init__(self, path: Path, fps: float) -> None:
        super().__init__(path)
        self.fps = fps if fps > 0 else DEFAULT_VIDEO_FPS
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] = (0, 0)

    def _write(self, result: Result) -> None:
        image = draw_people(result.frame.copy(), result.people)
        if self._writer is None:
            self._size = (image.shape[1], image.shape[0])
            self._writer = cv2.VideoWriter(str(self._out.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self._size)
            if not self._writer.isOpened():
                self._failed = True
                raise LwposeError(f"cannot write video {self.path} (no mp4v encoder in this OpenCV build?)")
        if (image.shape[1], image.shape[0]) != self._size:  # a live source reconnected at another size
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)

    def _release(self) -> None:
        """Finish the video, and check it can be read back (the writer reports no error itself)."""
        if self._writer is None:
            return
        self._writer.release()
        if self._failed:
            return
        check = cv2.VideoCapture(str(self._out.tmp))
        readable = check.isOpened() and check.get(cv2.CAP_PROP_FRAME_COUNT) >= 1
        check.release()
        if not readable:
            self._failed = True
            raise OSError(f"the video is unreadable after {self.frames} frames (disk full?)")


def check_display() -> None:
    """Raise LwposeError if this OpenCV cannot open windows (``show``)."""
    gui = next((line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
                if line.strip().startswith("GUI:")), "")
    if gui.upper() in ("", "NONE"):
        raise LwposeError("show needs OpenCV with GUI support, but this is a headless build "
                          "(opencv-python-headless); install opencv-python instead, or save a video", param="show")
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise LwposeError("show needs a display, but neither DISPLAY nor WAYLAND_DISPLAY is set", param="show")


class WindowSink:
    """A live window with the newest annotated frame of every stream, tiled (``lwpose.draw.tile``);
    ``on_quit`` is called when the user presses q or Esc."""

    TITLE = "lwpose"

    def __init__(self, streams: list[str], on_quit: Callable[[], None]) -> None:
        self._latest: dict[str, np.ndarray | None] = dict.fromkeys(streams)
        self._on_quit = on_quit

    def write(self, result: Result) -> None:
        self._latest[result.stream] = draw_people(result.frame.copy(), result.people)
        frames = [f for f in self._latest.values() if f is not None]
        cv2.imshow(self.TITLE, tile(frames) if len(frames) > 1 else frames[0])
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self._on_quit()

    def close(self) -> None:
        cv2.destroyAllWindows()
