"""``Pipeline``: several sources through one :class:`AsyncEngine`, as a Python iterator or
:meth:`Pipeline.run` into sinks (``lwpose run`` is a thin command line over the latter).

Each source gets a reader thread that feeds the shared engine: it decodes and resizes the next
frame while every request is busy, then files wait for a free request (no frame is lost) and
live sources drop the frame instead (the next one read is newer). Results come back to the
iterating thread through one bounded queue, each stream in frame order; a slow consumer therefore
slows the readers down instead of piling frames up.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LwposeError
from ..media import Frame
from ..pose import Person
from ..runtime import PoseModel
from ..store import DEFAULT_MODEL
from .engine import AsyncEngine, Result
from .sinks import Sink
from . import defaults
from .defaults import DEFAULT_RECONNECT, NETWORK_TIMEOUT
from .sources import Source, SourceError, open_source, stream_names

log = logging.getLogger(__name__)

#: Seconds the readers get to notice a stop before the engine is closed without them
#: (a reader can be stuck in a blocking camera or network read).
STOP_GRACE = 2.0
_DONE = object()
#: Seconds between checks for a stop while a held live frame waits for a free request.
HOLD_WAIT = 0.1


@dataclass
class StreamInfo:
    """What happened to one stream (updated live by its reader thread)."""

    name: str
    source: Source
    status: str = "pending"  # pending, running, done, stopped, failed
    error: str = ""
    submitted: int = 0  # frames sent to the engine
    delivered: int = 0  # results handed out
    reconnects: int = 0
    drops: int = 0  # live frames skipped because every request was busy
    rejected: int = 0  # frames that could not be inferred (degenerate size), dropped with a warning
    people: int = 0  # people in the results handed out
    max_frames: int = 0  # the pipeline's limit per stream (0 = none)

    @property
    def spec(self) -> str:
        """The source as given (path, URL, camera)."""
        return self.source.spec

    @property
    def live(self) -> bool:
        """A camera, network stream or pushed frames (frames may be dropped)."""
        return self.source.live

    @property
    def fps(self) -> float:
        """Nominal frame rate of the source, 0 when unknown."""
        return self.source.fps

    @property
    def length(self) -> int | None:
        """Frames this stream will process, when known (source length within ``max_frames``)."""
        length = self.source.length
        if length is None:
            return self.max_frames or None
        return min(length, self.max_frames) if self.max_frames else length


class Pipeline:
    """Pose estimation on several sources at once with one compiled model and one infer queue.

    Iterating yields ``(stream_id, frame_number, frame, people)``; :meth:`results` yields the full
    :class:`Result`; :meth:`run` writes every result to sinks. Use it as a context manager, or
    call :meth:`close`, so threads stop if the iteration is abandoned.

    Args:
        model: a :class:`PoseModel` (its backend's capacity bounds the frames in flight), or a
            model name / directory / ``.xml`` for a new one built with ``height``, ``mode``,
            ``nireq`` (requests in flight, 0 = OpenVINO's optimal number + 1) and ``threads``
            (None: the default store model).
        server: KServe v2 URLs (``grpc://HOST:PORT/MODEL``, ``http://HOST:PORT/v2/models/MODEL``):
            infer there instead, spreading the requests over them (a :class:`KServeBackend`;
            ``nireq``: requests in flight, 0 = 4 per server; ``model`` is then not used). LwposeError
            naming them when none is up.
        sources: video files, image folders or globs, camera indices (``0``, ``/dev/video0``),
            network URLs (``rtsp://``, ``http://``), or :class:`Source` objects.
        names: stream names (default: derived from the sources, unique).
        track, smooth: per-stream tracking and One Euro smoothing (image folders never, as their
            pictures are unrelated).
        min_score: leave out people scoring lower.
        max_frames: stop each stream after this many processed frames (0 = no limit).
        start: first frame index of files and image folders.
        fps_limit: at most this many frames a second per stream (0 = as fast as possible);
            files are paced, live sources skip frames.
        reconnect: attempts in a row to reopen a live source that stopped (0 = none), waiting
            1, 2, 4... s (at most MAX_BACKOFF) in between; the count starts again once a frame is read.
        timeout: seconds a network stream may take to open and to deliver each frame.
        buffer: results waiting for the consumer before the readers are slowed down.
    """

    def __init__(self, model: PoseModel | str | Path | None, sources: Sequence[str | Path | Source] | str | Path, *,
                 names: Sequence[str] | None = None, height: int = 256, mode: str = "throughput", nireq: int = 0,
                 threads: int = 0, track: bool = True, smooth: bool = True, min_score: float = 0.0,
                 max_frames: int = 0, start: int = 0, fps_limit: float = 0.0, reconnect: int = DEFAULT_RECONNECT,
                 timeout: float = NETWORK_TIMEOUT, buffer: int = 8, server: Sequence[str] | None = None) -> None:
        if isinstance(sources, (str, Path, Source)):
            sources = [sources]
        srcs = [s if isinstance(s, Source) else open_source(str(s), timeout) for s in sources]
        if not srcs:
            raise ValueError("a Pipeline needs at least one source")
        names = list(names) if names is not None else stream_names([s.spec for s in srcs])
        if len(names) != len(srcs) or len(set(names)) != len(names):
            raise ValueError("names must be unique, one per source")
        self._owns_model = not isinstance(model, PoseModel)  # closed with the pipeline
        if server:
            if isinstance(model, PoseModel):
                raise ValueError("pass either a PoseModel or server URLs, not both")
            from ..backends.kserve import KServeBackend

            model = PoseModel(height=height, backend=KServeBackend(list(server), capacity=nireq))
        elif not isinstance(model, PoseModel):
            model = PoseModel(model or DEFAULT_MODEL, height=height, mode=mode, nireq=nireq, threads=threads)
        self.model = model
        try:
            self.engine = AsyncEngine(model, track=track, smooth=smooth, min_score=min_score)
        except BaseException:
            if server:
                model.close()
            raise
        self.streams = {n: StreamInfo(n, s, max_frames=max_frames) for n, s in zip(names, srcs)}
        for info in self.streams.values():
            independent = info.source.independent
            self.engine.add_stream(info.name, self._on_result, track=False if independent else None,
                                   smooth=False if independent else None)
        self.max_frames = max_frames
        self.start = start
        self.fps_limit = fps_limit
        self.reconnect = reconnect
        # results for the consumer: a C-level queue (cheap hand-offs) bounded by the tokens of
        # another one (one per free place; cheaper per frame than threading.Semaphore)
        self._out: queue.SimpleQueue = queue.SimpleQueue()
        self._room: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(max(1, buffer)):
            self._room.put(None)
        self._stop = threading.Event()
        self._stop_time = 0.0
        self._abandoned = False
        #: set once a stream's first open returned; network streams wait for the local ones
        self._opened = {n: threading.Event() for n in self.streams}
        self._readers: list[threading.Thread] = []
        self._supervisor: threading.Thread | None = None
        self._finished = False

    # -- public API ------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[str, int, np.ndarray, list[Person]]]:
        for r in self.results():
            yield r.stream, r.number, r.frame, r.people

    def run(self, sinks: Iterable[Sink] = (), *, stream_sinks: Callable[[StreamInfo], Iterable[Sink]] | None = None,
            progress: Callable[[Result, StreamInfo], None] | None = None) -> float:
        """Process every stream to its end (or :meth:`stop`), writing each result to ``sinks``
        and to the sinks ``stream_sinks(info)`` made for its stream, then calling ``progress``.
        Closes the pipeline and every sink, also after an error (the first error closing a sink is
        raised unless the run failed itself; the others are logged), and returns the elapsed seconds; :attr:`streams`
        holds each stream's status and counts, :attr:`failed` the streams that failed."""
        shared = list(sinks)
        own: dict[str, list[Sink]] = {}
        errors: list[BaseException] = []  # the run's own error first, if any
        t0 = time.perf_counter()
        try:
            for info in self.streams.values():  # inside the try: a sink that fails to open still closes the rest
                own[info.name] = list(stream_sinks(info)) if stream_sinks else []
            for result in self.results():
                info = self.streams[result.stream]
                for sink in (*own[result.stream], *shared):
                    sink.write(result)
                if progress is not None:
                    progress(result, info)
        except BaseException as exc:
            errors.append(exc)
            raise
        finally:
            elapsed = time.perf_counter() - t0
            self.close()
            for sink in [*(s for group in own.values() for s in group), *shared]:
                try:
                    sink.close()
                except Exception as exc:  # noqa: BLE001 - every sink is closed
                    if errors:
                        log.warning("%s", exc)
                    errors.append(exc)
        if errors:  # here only when closing failed
            raise errors[0]
        return elapsed

    def results(self) -> Iterator[Result]:
        """Results of all streams as they complete (each stream in frame order), until every
        stream has ended or :meth:`stop` was called and the frames in flight are done."""
        if self._supervisor is not None:
            raise RuntimeError("a Pipeline can be iterated once")
        self._launch()
        try:
            while True:
                item = self._out.get()
                if item is _DONE:
                    self._finished = True
                    break
                self._room.put(None)
                yield item
        finally:
            self.close()

    def stop(self) -> None:
        """Stop reading; frames already submitted are still processed and delivered."""
        if not self._stop.is_set():
            self._stop_time = time.monotonic()
            self._stop.set()
            for info in self.streams.values():
                info.source.interrupt()

    def close(self) -> None:
        """Stop, discard undelivered results, wait for the threads. Idempotent."""
        self.stop()
        if self._supervisor is None:
            self._close_engine()
            return
        self._abandoned = True
        while not self._finished:
            if self._out.get() is _DONE:
                self._finished = True
            else:
                self._room.put(None)
        self._supervisor.join()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def failed(self) -> list[StreamInfo]:
        return [s for s in self.streams.values() if s.status == "failed"]

    # -- threads ---------------------------------------------------------------------------
    def _launch(self) -> None:
        for info in self.streams.values():
            reader = threading.Thread(target=self._read, args=(info,), name=f"lwpose-read-{info.name}", daemon=True)
            self._readers.append(reader)
            reader.start()
        self._supervisor = threading.Thread(target=self._supervise, name="lwpose-supervisor", daemon=True)
        self._supervisor.start()

    def _supervise(self) -> None:
        """Wait for the readers (or the stop grace period), then drain the engine and end the output."""
        try:
            for info, t in zip(self.streams.values(), self._readers):
                while t.is_alive():
                    t.join(0.1)
                    if self._stop.is_set() and time.monotonic() - self._stop_time > STOP_GRACE:
                        log.warning("stream %s did not stop in time; closing without it", info.name)
                        break
            self._close_engine()
        finally:
            for info in self.streams.values():  # a reader left behind: it ends with the run
                if info.status in ("pending", "running"):
                    info.status = "stopped"
            self._abandoned = True  # a late frame of a stuck reader has nobody to go to
            self._out.put(_DONE)

    def _close_engine(self) -> None:
        self.engine.close()
        if self._owns_model:
            self.model.close()

    def _on_result(self, result: Result) -> None:
        info = self.streams[result.stream]
        info.delivered += 1
        info.people += len(result.people)
        while not self._abandoned:
            try:
                self._room.get(timeout=0.1)
            except queue.Empty:
                continue
            self._out.put(result)
            return

    def _open_first(self, info: StreamInfo) -> bool:
        """The stream's first open; False if the pipeline stopped first. A network stream waits
        until every local source is open, as OpenCV opens them one at a time: a stalled URL then
        never holds up another stream."""
        try:
            if info.source.network:
                for name, opened in self._opened.items():
                    while not self.streams[name].source.network and not opened.wait(0.1):
                        if self._stop.is_set():
                            return False
            info.source.open(self.start)
            return True
        finally:
            self._opened[info.name].set()

    def _read(self, info: StreamInfo) -> None:
        """Reader thread of one stream: open, read, prepare, submit, reconnect when live."""
        src = info.source
        try:
            if not self._open_first(info):
                info.status = "stopped"
                return
            info.status = "running"
            log.debug("stream %s: opened %s", info.name, src.spec)
            interval = 1.0 / self.fps_limit if self.fps_limit > 0 else 0.0
            due = time.monotonic()
            attempts = 0  # reopenings since the last frame read
            while not self._stop.is_set() and not (self.max_frames and info.submitted >= self.max_frames):
                try:
                    frame = src.read()
                except SourceError as exc:
                    if not src.live:
                        raise
                    attempts = self._reopen(info, exc, attempts)
                    continue
                if frame is None:
                    break
                attempts = 0
                if interval:
                    now = time.monotonic()
                    if now < due:
                        if src.live:
                            continue
                        if self._stop.wait(due - now):
                            break
                    due = max(due + interval, time.monotonic())
                try:  # the frame is resized before waiting for a request (read-ahead of one frame)
                    if src.live:
                        if not self._submit_live(info, frame):
                            continue
                    else:
                        self.engine.submit(info.name, frame.image, frame.timestamp, frame.meta, frame.number)
                except (LwposeError, ValueError) as exc:  # this frame only (a degenerate size...)
                    info.rejected += 1
                    log.warning("stream %s: %s dropped: %s", info.name, src.describe(frame), exc)
                    continue
                info.submitted += 1
            info.status = "stopped" if self._stop.is_set() else "done"
        except SourceError as exc:
            info.status, info.error = "failed", str(exc)
            log.error("stream %s failed: %s", info.name, exc)
        except Exception as exc:  # noqa: BLE001 - one broken stream must not stop the others
            info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("stream %s failed", info.name)
        finally:
            src.close()

    def _submit_live(self, info: StreamInfo, frame: Frame) -> bool:
        """Submit a live frame if a request is free. While every request is busy, a source that
        holds its newest frame (:class:`PushSource`) waits for one, swapping in any newer frame;
        other live sources drop the frame, as their next read is newer. Whether it was submitted."""
        src = info.source
        if src.holds_newest:
            while not self.engine.wait_free(HOLD_WAIT):
                if self._stop.is_set():
                    return False
                frame = src.newer() or frame
            frame = src.newer() or frame
        if self.engine.try_submit(info.name, frame.image, frame.timestamp, frame.meta, frame.number) is None:
            info.drops += 1
            return False
        return True

    def _reopen(self, info: StreamInfo, error: SourceError, attempts: int) -> int:
        """Reopen a live source with exponential backoff, counting on from ``attempts`` made since
        its last frame; return the new count, or raise SourceError when giving up."""
        info.source.close()
        while attempts < self.reconnect:
            attempts += 1
            delay = min(defaults.MAX_BACKOFF, 2.0 ** (attempts - 1))
            log.warning("stream %s: %s; reconnecting in %.0f s (attempt %d of %d)",
                        info.name, error, delay, attempts, self.reconnect)
            if self._stop.wait(delay):
                return attempts
            try:
                info.source.open()
            except SourceError as exc:
                error = exc
                continue
            info.reconnects += 1
            log.info("stream %s: reconnected", info.name)
            return attempts
        raise SourceError(f"{error}; gave up after {self.reconnect} reconnection attempts")
