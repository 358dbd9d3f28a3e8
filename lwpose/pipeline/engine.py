"""The asynchronous scheduler: ONE backend (``PoseModel.backend``) for all streams.

The backend serves every aspect ratio at the model's input height (OpenVINO: one compiled model
with a dynamic width and one infer queue, as fast as a static shape within measurement noise on
CPU, see docs/performance.md). Callers submit BGR frames from their own threads; a frame is
resized once (``PoseModel.prepare``) and handed to ``backend.submit`` once one of the backend's
``capacity`` requests is free. The completion callback groups the maps into people (the Cython
grouping releases the GIL), then results go
through a per-stream reorder buffer so that each stream's tracker, smoother and ``on_result``
see its frames in submission order.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from ..pose import Person
from ..preprocess import Maps
from ..runtime import PoseModel

log = logging.getLogger(__name__)


@dataclass
class Result:
    """One processed frame of one stream."""

    stream: str  # stream name
    index: int  # frame index within the stream (submission order)
    number: int  # frame number in the source (caller-provided; default: index)
    timestamp: float  # caller-provided, seconds
    frame: np.ndarray  # the original BGR frame
    people: list[Person]  # image pixels; tracked and smoothed when enabled
    meta: Any  # caller data (e.g. a ROS header), passed through
    #: seconds: "prepare" (resize), "queue" (wait for a free request), "infer", "decode"
    #: (grouping), "track" (tracking + smoothing), "total" (submit → delivery)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Job:
    """What travels with a request: the frame and its bookkeeping."""

    stream: "_Stream"
    index: int
    number: int
    timestamp: float
    frame: np.ndarray
    meta: Any
    scale: float
    t_submit: float
    timings: dict[str, float]
    t_started: float = 0.0


class _Stream:
    """Per-stream state: frame counter, reorder buffer, tracker and smoother."""

    def __init__(self, name: str, on_result: Callable[[Result], None], track: bool, smooth: bool) -> None:
        self.name = name
        self.on_result = on_result
        self.tracker = self.smoother = None
        if track:
            from ..track import Tracker

            self.tracker = Tracker()
        if track and smooth:
            from ..smooth import PoseSmoother

            self.smoother = PoseSmoother()
        self.next_index = 0
        self.drops = 0
        self.failures = 0  # frames that failed in the backend or in grouping, dropped
        self.count_lock = threading.Lock()  # next_index and drops: never held for long
        self.next_delivery = 0
        self.pending: dict[int, tuple[Result | None, float]] = {}  # index -> (result, submit time)
        self.lock = threading.Lock()  # the reorder buffer and delivery, in order


class AsyncEngine:
    """One backend shared by all streams.

    Args:
        model: the runtime model; its backend runs the network with up to ``backend.capacity``
            requests in flight.
        track: give people track ids (``lwpose.track.Tracker``, one per stream).
        smooth: One Euro smoothing of tracked keypoints (``lwpose.smooth.PoseSmoother``).
        min_score: people with a lower score are left out.

    ``on_result`` callbacks run on the backend's callback threads, one at a time per stream; a slow
    callback holds its request, which is how consumers apply back-pressure.
    """

    def __init__(self, model: PoseModel, *, track: bool = True, smooth: bool = True,
                 min_score: float = 0.0) -> None:
        self.model = model
        self.backend = model.backend
        self.track = track
        self.smooth = smooth
        self.min_score = min_score
        model.compile()
        self.nireq = self.backend.capacity
        # requests not yet claimed by a submit; released once a result is delivered, so "queue"
        # time is the wait for a request and a submit never blocks inside the backend
        self._free = threading.Semaphore(self.nireq)
        self._streams: dict[str, _Stream] = {}
        self._streams_lock = threading.Lock()
        self._closed = False

    # -- streams ---------------------------------------------------------------------------
    def add_stream(self, name: str, on_result: Callable[[Result], None], *, track: bool | None = None,
                   smooth: bool | None = None) -> None:
        """Register a stream; ``track``/``smooth`` override the engine's defaults for it."""
        with self._streams_lock:
            if name in self._streams:
                raise ValueError(f"stream {name!r} already exists")
            track = self.track if track is None else track
            smooth = self.smooth if smooth is None else smooth
            self._streams[name] = _Stream(name, on_result, track, smooth)

    def drops(self, stream: str) -> int:
        """Frames ``try_submit`` refused for ``stream`` because every request was busy."""
        return self._stream(stream).drops

    def failures(self, stream: str) -> int:
        """Frames of ``stream`` dropped because they failed inside the engine (each logged)."""
        return self._stream(stream).failures

    def _stream(self, name: str) -> _Stream:
        try:
            return self._streams[name]
        except KeyError:
            raise ValueError(f"unknown stream {name!r}; call add_stream first") from None

    # -- submission ------------------------------------------------------------------------
    def submit(self, stream: str, frame: np.ndarray, timestamp: float, meta: Any = None,
               number: int | None = None) -> int:
        """Queue a frame, blocking while all requests are busy; returns its index in the stream.
        ``number`` is its frame number in the source (default: the index). A frame that cannot be
        inferred (:func:`lwpose.preprocess.check_frame_size`) raises LwposeError and is not queued."""
        t0 = time.perf_counter()
        st = self._stream(stream)
        self._check_open()
        tensor, scale = self.model.prepare(frame)
        t1 = time.perf_counter()
        self._free.acquire()
        return self._start(st, frame, timestamp, meta, number, tensor, scale, t0, {"prepare": t1 - t0})

    def try_submit(self, stream: str, frame: np.ndarray, timestamp: float, meta: Any = None,
                   number: int | None = None) -> int | None:
        """Queue a frame if a request is free, else count a drop and return None (live sources)."""
        t0 = time.perf_counter()
        st = self._stream(stream)
        self._check_open()
        if not self._free.acquire(blocking=False):
            with st.count_lock:
                st.drops += 1
            return None
        try:
            tensor, scale = self.model.prepare(frame)
        except BaseException:
            self._free.release()
            raise
        t1 = time.perf_counter()
        return self._start(st, frame, timestamp, meta, number, tensor, scale, t0, {"prepare": t1 - t0})

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the engine is closed")

    def _start(self, st: _Stream, frame: np.ndarray, timestamp: float, meta: Any, number: int | None,
               tensor: np.ndarray, scale: float, t_submit: float, timings: dict[str, float]) -> int:
        if self._closed:  # close() ran while the caller held or waited for this request
            self._free.release()
            raise RuntimeError("the engine is closed")
        with st.count_lock:
            index = st.next_index
            st.next_index += 1
        job = _Job(st, index, index if number is None else number, timestamp, frame, meta, scale, t_submit, timings)
        job.t_started = time.perf_counter()
        timings["queue"] = job.t_started - t_submit - timings["prepare"]
        try:
            self.backend.submit(tensor, partial(self._on_done, job))
        except Exception as exc:  # noqa: BLE001 - e.g. an allocation error: drop this frame only
            log.warning("stream %s: frame %d dropped: %s", st.name, job.number, exc)
            with st.count_lock:
                st.failures += 1
            self._free.release()
            self._deliver(st, index, None)  # keep the stream's order going
        except BaseException:
            self._free.release()
            self._deliver(st, index, None)
            raise
        return index

    # -- completion ------------------------------------------------------------------------
    def _on_done(self, job: _Job, outputs: tuple[np.ndarray, np.ndarray] | None, error: BaseException | None) -> None:
        """Backend callback: group, then deliver in order. Never raises into the backend; a frame
        that failed (an allocation error, NaN maps...) is logged and dropped."""
        result = None
        try:
            t0 = time.perf_counter()
            timings = job.timings
            timings["infer"] = t0 - job.t_started
            if error is not None:
                raise error
            people = self.model.people(Maps(*outputs, job.scale))  # in place, no copy
            if self.min_score > 0:
                people = [p for p in people if p.score >= self.min_score]
            timings["decode"] = time.perf_counter() - t0
            result = Result(job.stream.name, job.index, job.number, job.timestamp, job.frame, people, job.meta, timings)
        except Exception as exc:  # noqa: BLE001 - one failed frame never stops its stream or the others
            log.warning("stream %s: frame %d dropped: %s", job.stream.name, job.number, exc)
            with job.stream.count_lock:
                job.stream.failures += 1
        try:
            self._deliver(job.stream, job.index, result, job.t_submit)
        finally:
            self._free.release()

    def _deliver(self, st: _Stream, index: int, result: Result | None, t_submit: float = 0.0) -> None:
        """Put a result in the stream's reorder buffer and hand out every result now in order."""
        with st.lock:
            st.pending[index] = (result, t_submit)
            while st.next_delivery in st.pending:
                ready, submitted = st.pending.pop(st.next_delivery)
                st.next_delivery += 1
                if ready is None:
                    continue
                try:
                    t0 = time.perf_counter()
                    if st.tracker is not None:
                        ready.people = st.tracker.update(ready.people, ready.timestamp)
                    if st.smoother is not None:
                        ready.people = st.smoother.update(ready.people, ready.timestamp)
                    t1 = time.perf_counter()
                    ready.timings["track"] = t1 - t0
                    ready.timings["total"] = t1 - submitted
                    st.on_result(ready)
                except Exception:  # noqa: BLE001 - a failing consumer must not stop the stream
                    log.exception("stream %s: delivering frame %d failed", st.name, ready.index)

    # -- shutdown --------------------------------------------------------------------------
    def close(self) -> None:
        """Refuse new frames, wait for the in-flight ones and deliver their results. Idempotent."""
        self._closed = True
        self.backend.wait()
        for _ in range(self.nireq):  # every callback has finished once all requests are free again
            self._free.acquire()
        for _ in range(self.nireq):
            self._free.release()

    def __enter__(self) -> "AsyncEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
