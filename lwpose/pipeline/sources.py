"""Frame sources: video files, image folders or globs, cameras, network streams, and frames
pushed by the caller (:class:`PushSource`, e.g. a ROS camera topic).

``open_source(spec)`` tells the kinds apart; every source has ``open()``, ``read()`` and
``close()``. ``read()`` returns the next :class:`Frame`, ``None`` at the regular end, and raises
:class:`SourceError` when the source breaks (an unreadable file, a video that ends before its
announced length, a camera or network stream that stops delivering).
"""
from __future__ import annotations

import glob
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import LwposeError
from ..media import IMAGE_SUFFIXES, Frame, image_files, read_image
from .defaults import NETWORK_TIMEOUT

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
#: FFmpeg threads decoding a video file (docs/performance.md).
FILE_DECODE_THREADS = 1

log = logging.getLogger(__name__)


class SourceError(Exception):
    """A source could not be opened or broke while reading; the message says why."""


class Source:
    """Base class: a named source of frames."""

    #: live sources (cameras, network streams) drop stale frames and may reconnect.
    live = False
    #: a live source that can hand over a newer frame without blocking (:meth:`newer`): while
    #: every request is busy the pipeline keeps its newest frame instead of dropping it.
    holds_newest = False
    #: frames are unrelated pictures (image folders): no tracking or smoothing across them.
    independent = False
    #: opened through FFmpeg's network protocols, whose opens hold a lock inside OpenCV that every
    #: other OpenCV open waits for (the pipeline opens local sources first).
    network = False

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def open(self, start: int = 0) -> None:
        """Open the source at frame ``start`` (ignored by live sources); raises SourceError."""
        raise NotImplementedError

    def read(self) -> Frame | None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the source; it may be opened again (reconnection)."""

    def describe(self, frame: Frame) -> str:
        """How messages name a frame of this source."""
        return f"frame {frame.number}"

    def newer(self) -> Frame | None:
        """A frame that arrived since the last read, without blocking (None: none, or this source
        cannot tell; only sources with :attr:`holds_newest` return frames)."""
        return None

    def interrupt(self) -> None:
        """Wake a ``read()`` blocked waiting for frames, which then returns None (the pipeline
        stops). Sources whose reads end on their own need nothing."""

    @property
    def fps(self) -> float:
        """Nominal frame rate, 0 when unknown."""
        return 0.0

    @property
    def length(self) -> int | None:
        """Number of frames from the start position, when known."""
        return None


class VideoSource(Source):
    """A video file, a camera (index or ``/dev/videoN``) or a network stream, through OpenCV.

    ``timeout``: seconds a network stream may take to open and to deliver each frame. Frame
    numbers of a live source go on counting across reopenings (reconnections)."""

    def __init__(self, spec: str, live: bool, timeout: float = NETWORK_TIMEOUT) -> None:
        super().__init__(spec)
        if not timeout > 0 or timeout == float("inf"):
            raise LwposeError(f"timeout must be a positive number of seconds, not {timeout!r}", param="timeout")
        self.live = live
        self.network = spec.startswith(NETWORK_SCHEMES)
        self.timeout = timeout
        self._cap: cv2.VideoCapture | None = None
        self._number = 0
        self._expected: int | None = None
        self._read_count = 0
        self._fps = 0.0

    def open(self, start: int = 0) -> None:
        if not self.live and not Path(self.spec).is_file():
            raise SourceError(f"{self.spec}: no such file")
        if self.spec.isdigit():
            cap = cv2.VideoCapture(int(self.spec))
        elif self.network:
            ms = max(1, round(self.timeout * 1000))
            cap = cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        else:  # one decoding thread: the pipeline decodes streams in parallel and inference fills the cores
            cap = cv2.VideoCapture(self.spec, cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, FILE_DECODE_THREADS])
        if not cap.isOpened():
            cap.release()
            if not self.live:
                what = "not a readable video (corrupt, truncated or unsupported format?)"
            elif self.network:
                what = f"cannot open (no stream within {self.timeout:g} s)"
            else:
                what = "cannot open"
            raise SourceError(f"{self.spec}: {what}")
        self._cap = cap
        self._fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        if not self.live:
            self._number = 0
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            if start > 0:
                cap.set(cv2.CAP_PROP_POS_FRAMES, start)
                self._number = start
            self._expected = max(0, count - start) if count > 0 else None
        self._read_count = 0

    def read(self) -> Frame | None:
        assert self._cap is not None, "open() first"
        ok, image = self._cap.read()
        if not ok or image is None:
            if self.network:
                raise SourceError(f"{self.spec}: no frame within {self.timeout:g} s (stream stalled or ended)")
            if self.live:
                raise SourceError(f"{self.spec}: stream stopped delivering frames")
            if self._expected and self._read_count < self._expected - max(2, self._expected // 100):
                raise SourceError(f"{self.spec}: ended after {self._read_count} of {self._expected} frames "
                                  "(truncated or corrupt file?)")
            return None
        number = self._number
        self._number += 1
        self._read_count += 1
        if self.live:
            timestamp = time.time()
        elif self._fps > 0:
            timestamp = number / self._fps
        else:
            timestamp = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000
        return Frame(image, number, timestamp)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def length(self) -> int | None:
        return None if self.live else self._expected


class ImageSource(Source):
    """Images of a folder (sorted by name) or of a glob pattern, as independent pictures
    (frame timestamps are their indices)."""

    independent = True

    def __init__(self, spec: str) -> None:
        super().__init__(spec)
        self._files: list[str] = []
        self._next = 0
        self._length: int | None = None

    def open(self, start: int = 0) -> None:
        if os.path.isdir(self.spec):
            files = [str(p) for p in image_files(self.spec)]
        else:
            files = sorted(f for f in glob.glob(self.spec, recursive=True) if f.lower().endswith(IMAGE_SUFFIXES))
        if not files:
            raise SourceError(f"{self.spec}: no images ({', '.join(IMAGE_SUFFIXES)})")
        self._files = files
        self._next = start
        self._length = max(0, len(files) - start)

    def read(self) -> Frame | None:
        """The next readable image; unreadable files are logged and skipped."""
        while self._next < len(self._files):
            number = self._next
            self._next += 1
            try:
                return Frame(read_image(self._files[number]), number, float(number))
            except LwposeError as exc:
                log.warning("%s, skipped", exc)
        return None

    def describe(self, frame: Frame) -> str:
        return self._files[frame.number]

    @property
    def length(self) -> int | None:
        return self._length


class PushSource(Source):
    """A live source fed by the caller: :meth:`push` a frame whenever one arrives (a ROS camera
    callback, a socket...). ``read()`` returns the newest frame pushed since the last read; older
    ones are dropped and counted (:attr:`dropped`), so inference always works on the latest
    picture. :meth:`end` finishes the stream once the frames pushed so far are read."""

    live = True
    holds_newest = True

    def __init__(self, spec: str = "push", fps: float = 0.0) -> None:
        super().__init__(spec)
        self._fps = fps
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._received = 0
        self._ended = False
        self._interrupted = False
        #: frames replaced by a newer one before they were read
        self.dropped = 0

    def push(self, image: np.ndarray, timestamp: float, meta: Any = None) -> None:
        """Offer a BGR frame taken at ``timestamp`` seconds; ``meta`` comes back in its result."""
        with self._cond:
            if self._latest is not None:
                self.dropped += 1
            self._latest = Frame(image, self._received, timestamp, meta)
            self._received += 1
            self._cond.notify()

    def end(self) -> None:
        """No more frames: ``read()`` returns None once the pending frame is read."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def open(self, start: int = 0) -> None:
        with self._cond:
            self._interrupted = False

    def read(self) -> Frame | None:
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None or self._ended or self._interrupted)
            frame, self._latest = self._latest, None
            return None if self._interrupted else frame

    def newer(self) -> Frame | None:
        """The frame pushed since the last read, if any; the frame the caller holds counts as dropped."""
        with self._cond:
            frame, self._latest = self._latest, None
            if frame is not None:
                self.dropped += 1
            return frame

    def interrupt(self) -> None:
        with self._cond:
            self._interrupted = True
            self._cond.notify_all()

    @property
    def fps(self) -> float:
        return self._fps


def open_source(spec: str, timeout: float = NETWORK_TIMEOUT) -> Source:
    """The source for a command-line argument (not opened yet).

    ``0``/``/dev/video0`` → camera; ``rtsp://`` ``http://`` ... → network stream (``timeout``:
    seconds to open and to deliver each frame); a folder or a pattern with ``*``/``?``/``[`` →
    images; anything else → a video file.
    """
    if spec.isdigit() or re.fullmatch(r"/dev/video\d+", spec):
        return VideoSource(spec, live=True)
    if spec.startswith(NETWORK_SCHEMES):
        return VideoSource(spec, live=True, timeout=timeout)
    if os.path.isdir(spec) or glob.has_magic(spec) or spec.lower().endswith(IMAGE_SUFFIXES):
        return ImageSource(spec)
    return VideoSource(spec, live=False)


def stream_names(specs: list[str]) -> list[str]:
    """Short, file-name-safe, unique stream names: ``walk`` for ``clips/walk.mp4``, ``cam0``
    for camera 0, ``host_live`` for ``rtsp://host/live``; repeats get ``-2``, ``-3``..."""
    names: list[str] = []
    for spec in specs:
        if spec.isdigit():
            base = f"cam{spec}"
        elif spec.startswith(NETWORK_SCHEMES):
            base = spec.split("://", 1)[1].split("?", 1)[0].split("@")[-1]
        else:
            stripped = spec.rstrip("/")
            base = Path(stripped).stem if not glob.has_magic(stripped) else Path(stripped).parent.name
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("._") or "stream"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names
