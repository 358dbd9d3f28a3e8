"""``lwpose run SOURCE...``: poses on videos, image folders, cameras and network streams, all at once."""
from __future__ import annotations

import argparse
import logging
import math
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LwposeError
from ..fsutil import Terminated
from ..pipeline.defaults import DEFAULT_RECONNECT, MAX_BACKOFF, NETWORK_TIMEOUT
from . import options

if TYPE_CHECKING:
    from ..pipeline import Pipeline

log = logging.getLogger("lwpose.run")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "run", help="estimate poses on videos, image folders, cameras and streams",
        description="Run pose estimation on one or more sources at once, sharing one compiled model and one "
                    "OpenVINO infer queue. Each source is a stream with its own reader, tracker and outputs: "
                    "OUT/<stream>.jsonl (one JSON object a frame: stream, frame, timestamp, people) and, with "
                    "--save-video, OUT/<stream>.mp4, each replacing an earlier file only once complete. Ctrl-C or "
                    "SIGTERM stops reading, finishes the frames in flight and completes every output. A stream "
                    "that fails is reported by name while the others go on; the exit status is then 2.")
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="video file, image folder or glob ('imgs/*.jpg'), camera index (0) or device "
                             "(/dev/video0), or network stream (rtsp://..., http://...)")
    options.add_model(parser)
    options.add_height(parser)
    options.add_execution(parser)
    options.add_server(parser)
    parser.add_argument("--out", default="runs/run", metavar="DIR",
                        help="output directory for <stream>.jsonl and <stream>.mp4 (default %(default)s)")
    parser.add_argument("--save-video", action="store_true",
                        help="also write each stream's annotated frames to OUT/<stream>.mp4 (default off)")
    parser.add_argument("--show", action="store_true",
                        help="show the annotated streams in a window, tiled; q or Esc stops "
                             "(needs OpenCV with GUI support; default off)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars, only log messages and the summary (default off)")
    parser.add_argument("--max-frames", type=int, default=0, metavar="N",
                        help="stop each stream after N processed frames (default 0: no limit)")
    parser.add_argument("--start", type=int, default=0, metavar="N",
                        help="index of the first frame of video files and image folders (default 0)")
    parser.add_argument("--fps-limit", type=float, default=0.0, metavar="FPS",
                        help="process at most FPS frames a second per stream: files are paced, live sources "
                             "skip frames (default 0: no limit)")
    parser.add_argument("--reconnect", type=int, default=DEFAULT_RECONNECT, metavar="N",
                        help="times in a row to reopen a camera or network stream that stopped, waiting 1, 2, "
                             f"4... s (at most {MAX_BACKOFF:g} s) in between; the count starts again once a frame "
                             "arrives (default %(default)s; 0: give up at once)")
    parser.add_argument("--timeout", type=float, default=NETWORK_TIMEOUT, metavar="SECONDS",
                        help="seconds a network stream may take to open and to deliver each frame before it "
                             "counts as stalled (default %(default)s)")
    parser.add_argument("--min-score", type=float, default=0.0,
                        help="leave out people whose score is below this (default %(default)s: keep all)")
    parser.add_argument("--no-track", action="store_true",
                        help="no track ids (and so no smoothing); image folders are never tracked (default: track)")
    parser.add_argument("--no-smooth", action="store_true",
                        help="no One Euro smoothing of tracked keypoints (default: smooth)")
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    for name in ("nireq", "threads", "max_frames", "start", "reconnect"):
        if getattr(args, name) < 0:
            raise LwposeError(f"--{name.replace('_', '-')} must be >= 0, not {getattr(args, name)}")
    if not (math.isfinite(args.fps_limit) and args.fps_limit >= 0):
        raise LwposeError(f"--fps-limit must be >= 0, not {args.fps_limit}")
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        raise LwposeError(f"--timeout must be a positive number of seconds, not {args.timeout}")
    if not math.isfinite(args.min_score):
        raise LwposeError(f"--min-score must be a number, not {args.min_score}")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from ..pipeline import Pipeline, StreamInfo, sinks
    from ..pipeline.engine import Result

    _check(args)
    if args.show:
        sinks.check_display()
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LwposeError(f"--out {out}: cannot create it ({exc.strerror})") from None
    pipeline = Pipeline(args.model, args.sources, height=args.height, mode=args.mode, nireq=args.nireq,
                        threads=args.threads, track=not args.no_track, smooth=not args.no_smooth,
                        min_score=args.min_score, max_frames=args.max_frames, start=args.start,
                        fps_limit=args.fps_limit, reconnect=args.reconnect, timeout=args.timeout,
                        server=args.server)
    names = list(pipeline.streams)
    files: list[sinks.JsonLinesSink | sinks.VideoSink] = []
    bars = {n: tqdm(desc=n, total=None, unit="frame", position=i, dynamic_ncols=True,
                    disable=True if args.quiet else None) for i, n in enumerate(names)}

    def stream_sinks(info: StreamInfo) -> list[sinks.Sink]:
        own: list[sinks.Sink] = [sinks.JsonLinesSink(out / f"{info.name}.jsonl")]
        if args.save_video:
            fps = args.fps_limit if info.live and args.fps_limit else info.fps
            own.append(sinks.VideoSink(out / f"{info.name}.mp4", fps))
        files.extend(own)
        return own

    def progress(result: Result, info: StreamInfo) -> None:
        bar = bars[result.stream]
        if bar.total is None and info.length is not None:
            bar.total = info.length
        bar.set_postfix(people=len(result.people), drops=info.drops, refresh=False)
        bar.update()

    def on_signal(signum: int, _frame: object) -> None:
        log.warning("%s: finishing the frames in flight (again to abort)", signal.Signals(signum).name)
        pipeline.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, abort)

    def abort(signum: int, _frame: object) -> None:  # a second SIGTERM: the outputs are still completed
        raise Terminated(signal.Signals(signum).name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    log.info("%d stream(s), %d infer requests (%s, %s), outputs in %s", len(names), pipeline.engine.nireq,
             pipeline.model.backend.name, pipeline.model.backend.precision, out)
    shared = [sinks.WindowSink(names, pipeline.stop)] if args.show else []
    try:
        with logging_redirect_tqdm():
            elapsed = pipeline.run(shared, stream_sinks=stream_sinks, progress=progress)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for bar in bars.values():
            bar.close()
    _summary(pipeline, elapsed, out)
    for sink in files:
        if sink.written:
            print(f"wrote {sink.path}")
    return 2 if pipeline.failed else 0


def _summary(pipeline: "Pipeline", elapsed: float, out: Path) -> None:
    """A table of the streams and a total line, on stdout."""
    rows = [("stream", "status", "frames", "people/frame", "drops", "frames/s")]  # drops: live frames skipped
    total = 0
    for name, info in pipeline.streams.items():
        n = info.delivered
        total += n
        rows.append((name, info.status, str(n), f"{info.people / n:.1f}" if n else "-",
                     str(info.drops), f"{n / elapsed:.1f}" if elapsed > 0 else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print(f"{total} frames in {elapsed:.1f} s ({total / elapsed if elapsed > 0 else 0:.1f} frames/s); outputs in {out}")
    for info in pipeline.failed:
        print(f"failed: {info.name} ({info.spec}): {info.error}")
