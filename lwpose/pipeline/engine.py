"""The asynchronous scheduler: ONE backend (``PoseModel.backend``) for all streams.

The backend serves every aspect ratio at the model's input height (OpenVINO: one compiled model
with a dynamic width and one infer queue, as fast as a static shape within measurement noise on
CPU, see docs/performance.md). Callers submit BGR frames from their own threads; a frame is
resized once (:meth:`AsyncEngine.prepare`, which callers may run ahead of time, e.g. while every
request is busy) and handed to ``backend.submit``, whose ``capacity`` requests are the only
bound on the frames in flight (it blocks, or refuses for ``try_submit``). The completion
callback groups the maps into people (Cython grouping), then results go
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

import cv2
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
    #: seconds: "prepare" (resize), "queue" (prepared → request started: read-ahead and the wait for
    #: a free request), "infer", "decode" (grouping), "track" (tracking + smoothing), "total"
    #: (prepare started → delivery: the image-to-result latency)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Prepared:
    """A frame resized for the network (:meth:`AsyncEngine.prepare`), ready to submit."""

    frame: np.ndarray  # the original BGR frame
    tensor: np.ndarray  # (1, H, W, 3) u8 network input
    scale: float  # image pixels -> network-input pixels
    t_prepare: float  # perf_counter when preparing started (the start of the frame's latency)
    prepare_time: float  # seconds


class _Job:
    """What travels with a request: the frame and its bookkeeping."""

    __slots__ = ("stream", "index", "number", "timestamp", "meta", "prepared", "timings", "t_started")

    def __init__(self, stream: "_Stream", index: int, number: int, timestamp: float, meta: Any,
                 prepared: Prepared) -> None:
        self.stream = stream
        self.index = index
        self.number = number
        self.timestamp = timestamp
        self.meta = meta
        self.prepared = prepared
        self.timings = {"prepare": prepared.prepare_time}
        self.t_started = 0.0


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
        self.count_lock = threading.Lock()  # drops and failures
        self.submit_lock = threading.Lock()  # next_index: frames get indices in the order they start
        self.next_delivery = 0
        self.pending: dict[int, tuple[Result | None, float]] = {}  # index -> (result or None if dropped, t_prepare)
        self.lock = threading.Lock()  # the reorder buffer and delivery, in order


class AsyncEngine:
    """One backend shared by all streams.

    Args:
        model: the runtime model; its backend runs the network with up to ``backend.capacity``
            requests in flight (the engine adds no bound of its own).
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
        configure_threads()
        model.compile()
        self.nireq = self.backend.capacity
        # requests started and not finished: lets try_submit refuse before resizing a frame
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self._freed = threading.Condition(self._in_flight_lock)  # notified when a request finishes...
        self._free_waiters = 0  # ...if wait_free is waiting (a Condition costs per frame otherwise)
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
    def prepare(self, frame: np.ndarray) -> Prepared:
        """Resize a BGR frame for the network (any thread, any time before submitting it). A frame
        that cannot be inferred (:func:`lwpose.preprocess.check_frame_size`) raises LwposeError."""
        t0 = time.perf_counter()
        tensor, scale = self.model.prepare(frame)
        return Prepared(frame, tensor, scale, t0, time.perf_counter() - t0)

    def submit(self, stream: str, frame: np.ndarray | Prepared, timestamp: float, meta: Any = None,
               number: int | None = None) -> int:
        """Queue a frame (or a :class:`Prepared` one), blocking while all requests are busy;
        returns its index in the stream. ``number`` is its frame number in the source (default:
        the index). A frame that cannot be inferred raises LwposeError and is not queued."""
        st = self._stream(stream)
        self._check_open()
        prepared = frame if isinstance(frame, Prepared) else self.prepare(frame)
        index = self._start(st, prepared, timestamp, meta, number, block=True)
        assert index is not None
        return index

    def try_submit(self, stream: str, frame: np.ndarray | Prepared, timestamp: float, meta: Any = None,
                   number: int | None = None) -> int | None:
        """Queue a frame if a request is free, else count a drop and return None (live sources)."""
        st = self._stream(stream)
        self._check_open()
        index = None
        if self._in_flight < self.nireq:  # else refuse without resizing the frame
            prepared = frame if isinstance(frame, Prepared) else self.prepare(frame)
            index = self._start(st, prepared, timestamp, meta, number, block=False)
        if index is None:
            with st.count_lock:
                st.drops += 1
        return index

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the engine is closed")

    def _start(self, st: _Stream, prepared: Prepared, timestamp: float, meta: Any, number: int | None,
               *, block: bool) -> int | None:
        """Hand a prepared frame to the backend; its index, or None when ``block`` is False and no
        request is free. A backend error drops this frame only (logged, counted)."""
        with st.submit_lock:  # the stream's indices follow the order its frames start in
            index = st.next_index
            job = _Job(st, index, index if number is None else number, timestamp, meta, prepared)
            with self._in_flight_lock:
                self._in_flight += 1
            t0 = job.t_started = time.perf_counter()
            ready = prepared.t_prepare + prepared.prepare_time
            job.timings["queue"] = t0 - ready  # then the wait for a request too, unless the callback already ran
            try:
                started = self.backend.submit(prepared.tensor, partial(self._on_done, job), block=block)
            except Exception as exc:  # noqa: BLE001 - e.g. an allocation error: drop this frame only
                log.warning("stream %s: frame %d dropped: %s", st.name, job.number, exc)
                with st.count_lock:
                    st.failures += 1
                started = None
            except BaseException:
                self._finished()
                raise
            if started is False:
                self._finished()
                return None
            st.next_index = index + 1
            if started and "infer" not in job.timings:
                t1 = time.perf_counter()
                job.timings["queue"] = t1 - ready
                job.t_started = t1
        if started is None:
            self._finished()
            self._deliver(st, index, None)  # keep the stream's order going
        return index

    def _finished(self) -> None:
        with self._in_flight_lock:
            self._in_flight -= 1
            if self._free_waiters:
                self._freed.notify_all()

    def wait_free(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a free request; whether one is free."""
        with self._in_flight_lock:
            self._free_waiters += 1
            try:
                return self._freed.wait_for(lambda: self._in_flight < self.nireq, timeout)
            finally:
                self._free_waiters -= 1

    # -- completion ------------------------------------------------------------------------
    def _on_done(self, job: _Job, outputs: tuple[np.ndarray, np.ndarray] | None, error: BaseException | None) -> None:
        """Backend callback: group, then deliver in order. Never raises into the backend; a frame
        that failed (an allocation error, NaN maps...) is logged and dropped."""
        result = None
        st = job.stream
        prepared = job.prepared
        try:
            t0 = time.perf_counter()
            if error is not None:
                raise error
            people = self.model.people(Maps(outputs[0], outputs[1], prepared.scale))  # in place, no copy
            if self.min_score > 0:
                people = [p for p in people if p.score >= self.min_score]
            timings = job.timings
            timings["infer"] = t0 - job.t_started
            timings["decode"] = time.perf_counter() - t0
            result = Result(st.name, job.index, job.number, job.timestamp, prepared.frame, people, job.meta, timings)
        except Exception as exc:  # noqa: BLE001 - one failed frame never stops its stream or the others
            log.warning("stream %s: frame %d dropped: %s", st.name, job.number, exc)
            with st.count_lock:
                st.failures += 1
        try:
            self._deliver(st, job.index, result, prepared.t_prepare)
        finally:
            self._finished()

    def _deliver(self, st: _Stream, index: int, result: Result | None, t_origin: float = 0.0) -> None:
        """Put a result in the stream's reorder buffer and hand out every result now in order."""
        with st.lock:
            if index != st.next_delivery:  # an earlier frame is still in flight
                st.pending[index] = (result, t_origin)
                return
            ready: Result | None = result
            while True:
                st.next_delivery += 1
                if ready is not None:
                    self._hand_out(st, ready, t_origin)
                if st.next_delivery not in st.pending:
                    return
                ready, t_origin = st.pending.pop(st.next_delivery)

    @staticmethod
    def _hand_out(st: _Stream, result: Result, t_origin: float) -> None:
        """Track, smooth and give one result to the stream's ``on_result`` (in frame order)."""
        try:
            t0 = time.perf_counter()
            if st.tracker is not None:
                result.people = st.tracker.update(result.people, result.timestamp)
            if st.smoother is not None:
                result.people = st.smoother.update(result.people, result.timestamp)
            t1 = time.perf_counter()
            result.timings["track"] = t1 - t0
            result.timings["total"] = t1 - t_origin
            st.on_result(result)
        except Exception:  # noqa: BLE001 - a failing consumer must not stop the stream
            log.exception("stream %s: delivering frame %d failed", st.name, result.index)

    # -- shutdown --------------------------------------------------------------------------
    def close(self) -> None:
        """Refuse new frames, wait for the in-flight ones and deliver their results. Idempotent."""
        self._closed = True
        self.backend.wait()

    def __enter__(self) -> "AsyncEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def configure_threads() -> None:
    """One OpenCV thread per caller: frames are resized on the readers' threads, in parallel with
    inference, which keeps every core busy; OpenCV's own thread pool would only compete with it
    (docs/performance.md)."""
    cv2.setNumThreads(1)
