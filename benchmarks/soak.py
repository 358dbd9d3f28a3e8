"""Memory soak test: many frames over several streams through one Pipeline; RSS must stay flat.

Each stream loops over the video (reopening it at the end) until the stream has its share of
the frames; every result is serialised as a JSON line (to /dev/null), as ``lwpose run`` does.
RSS is sampled every ``--sample`` frames. The pass criterion is the growth from the end of the
warm-up (the first ``--warmup`` frames: OpenVINO and the allocator reach their working set)
to the end; the growth from the very start is reported too.

    python benchmarks/soak.py --model ../shared/models/.../human-pose-estimation-0001.xml --json soak.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a source checkout without installing

from lwpose.pipeline import Pipeline  # noqa: E402
from lwpose.pipeline.sinks import json_line  # noqa: E402
from lwpose.pipeline.sources import Frame, VideoSource  # noqa: E402

MB = 1024 * 1024


class LoopingVideo(VideoSource):
    """A video file read over and over, with frame numbers and timestamps that keep increasing."""

    def __init__(self, spec: str) -> None:
        super().__init__(spec, live=False)
        self._count = 0

    def read(self) -> Frame | None:
        frame = super().read()
        if frame is None:
            self.close()
            self.open()
            frame = super().read()
            if frame is None:
                return None
        number, self._count = self._count, self._count + 1
        return Frame(frame.image, number, number / (self.fps or 30))


def rss() -> int:
    return psutil.Process().memory_info().rss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="human-pose-estimation-0001", help="model name, directory or .xml")
    parser.add_argument("--source", default="../shared/media/vtest.avi", help="video to loop over")
    parser.add_argument("--streams", type=int, default=4, help="streams (default %(default)s)")
    parser.add_argument("--frames", type=int, default=5000, help="frames over all streams (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=200, help="frames before the reference RSS (default %(default)s)")
    parser.add_argument("--sample", type=int, default=250, help="frames between RSS samples (default %(default)s)")
    parser.add_argument("--limit-mb", type=float, default=20.0, help="allowed growth, MB (default %(default)s)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if not Path(args.source).is_file():
        parser.error(f"--source {args.source}: no such file")

    per_stream = -(-args.frames // args.streams)
    pipeline = Pipeline(args.model, [LoopingVideo(args.source) for _ in range(args.streams)],
                        names=[f"s{i}" for i in range(args.streams)], max_frames=per_stream)
    rss_start = rss()
    samples = [(0, rss_start)]
    rss_warm = None
    people = 0
    t0 = time.perf_counter()
    with open(os.devnull, "w") as sink:
        for n, r in enumerate(pipeline.results(), 1):
            sink.write(json_line(r.stream, r.meta, r.timestamp, r.people) + "\n")
            people += len(r.people)
            if n == args.warmup:
                rss_warm = rss()
            if n % args.sample == 0:
                samples.append((n, rss()))
                print(f"{n} frames, RSS {samples[-1][1] / MB:.1f} MB", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - t0
    rss_end = rss()
    total = sum(s.delivered for s in pipeline.streams.values())
    growth = (rss_end - (rss_warm or rss_start)) / MB
    report = {
        "streams": args.streams, "frames": total, "seconds": round(elapsed, 1), "fps": round(total / elapsed, 2),
        "people_per_frame": round(people / max(1, total), 2), "warmup_frames": args.warmup,
        "rss_start_mb": round(rss_start / MB, 1), "rss_after_warmup_mb": round((rss_warm or rss_start) / MB, 1),
        "rss_end_mb": round(rss_end / MB, 1), "rss_growth_mb": round(growth, 1),
        "rss_growth_from_start_mb": round((rss_end - rss_start) / MB, 1), "limit_mb": args.limit_mb,
        "passed": growth < args.limit_mb and not pipeline.failed,
        "rss_samples_mb": [[n, round(b / MB, 1)] for n, b in samples],
        "failed_streams": {s.name: s.error for s in pipeline.failed},
    }
    print(json.dumps({k: v for k, v in report.items() if k != "rss_samples_mb"}, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
