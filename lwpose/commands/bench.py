"""``lwpose bench``: how close end-to-end throughput gets to inference alone, for 1 and N streams."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..errors import LwposeError
from . import options

#: Without --source: this video below $LWPOSE_SHARED.
SHARED_VIDEO = "media/vtest.avi"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "bench", help="measure inference-only vs end-to-end throughput",
        description="Measure, on the same frames and model: inference-only throughput (the shared infer queue "
                    "fed with pre-resized frames), end-to-end throughput (read + resize + infer + group + track, "
                    "no display) with per-stage latency, a decode-and-infer loop (the readers feeding the same "
                    "queue, outputs dropped), video decode time, and their ratios, for each --streams count; "
                    "with --server, end to end again through those servers (fps, client CPU and bytes per "
                    "frame). Prints a table; --json writes every figure with explicit names.")
    options.add_model(parser)
    parser.add_argument("--source", metavar="VIDEO", help=f"video to read (default: $LWPOSE_SHARED/{SHARED_VIDEO})")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 4], metavar="N",
                        help="stream counts to measure; N streams read N copies of the video at once "
                             "(default 1 4)")
    parser.add_argument("--frames", type=int, default=300,
                        help="frames per stream (default %(default)s)")
    options.add_height(parser)
    options.add_execution(parser)
    options.add_server(parser)
    parser.add_argument("--baseline-sync", action="store_true",
                        help="also time a synchronous loop (read, infer, group, track one frame at a time) "
                             "and report end-to-end / synchronous (default off)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run each measurement this many times (inference-only and end-to-end alternating) "
                             "and keep the fastest, to filter out other load on the machine (default %(default)s)")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT (default: none)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..pipeline.bench import format_table, run_bench

    source = args.source
    if source is None:
        if not os.environ.get("LWPOSE_SHARED"):
            raise LwposeError(f"no video: pass --source VIDEO (or set LWPOSE_SHARED to use its {SHARED_VIDEO})")
        source = str(Path(os.environ["LWPOSE_SHARED"]) / SHARED_VIDEO)
    if not Path(source).is_file():
        raise LwposeError(f"--source {source}: no such file")
    report = run_bench(args.model, source, streams=args.streams, frames=args.frames, height=args.height,
                       mode=args.mode, nireq=args.nireq, threads=args.threads, baseline_sync=args.baseline_sync,
                       repeats=args.repeats, servers=args.server)
    print(format_table(report))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        except OSError as exc:
            raise LwposeError(f"--json {args.json}: cannot write it ({exc.strerror})") from None
        print(f"wrote {args.json}")
    return 0
