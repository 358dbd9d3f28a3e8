"""Where the end-to-end pipeline spends CPU beyond decode + infer: three loops on one model,
alternated, each reading the same video in one reader thread.

* ``decode_infer``: read, resize, submit to the backend, outputs dropped (``lwpose bench``'s limit);
* ``engine``: the same frames through :class:`AsyncEngine` (grouping, people, reorder, tracking,
  smoothing), results dropped in the completion callback;
* ``pipeline``: a :class:`Pipeline` whose results the calling thread consumes (``lwpose bench``'s
  end to end: the engine plus the hand-off to the consuming thread).

Per loop: frames/s, process CPU, system CPU and context switches (voluntary: a thread blocked,
e.g. on a queue or on the GIL; involuntary: preempted) per frame, medians over the repeats.

    LWPOSE_SHARED=../shared python benchmarks/pipeline_overhead.py --height 160 --json overhead.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a source checkout without installing

from lwpose.pipeline.bench import cpu_model, decode_infer, end_to_end  # noqa: E402
from lwpose.pipeline.engine import AsyncEngine  # noqa: E402
from lwpose.pipeline.sources import VideoSource  # noqa: E402
from lwpose.runtime import PoseModel  # noqa: E402
from lwpose.store import DEFAULT_MODEL  # noqa: E402


def engine_only(engine: AsyncEngine, source: str, frames: int, name: str) -> None:
    """One reader thread submitting ``frames`` frames to the engine; results dropped."""
    engine.add_stream(name, lambda result: None)
    src = VideoSource(source, live=False)
    src.open()

    def read() -> None:
        for _ in range(frames):
            frame = src.read()
            if frame is None:
                break
            engine.submit(name, frame.image, frame.timestamp, None, frame.number)

    try:
        reader = threading.Thread(target=read)
        reader.start()
        reader.join()
        engine.backend.wait()
    finally:
        src.close()


def measure(run: Callable[[], object], frames: int) -> dict[str, float]:
    """Wall, CPU and scheduler figures of one run, per frame."""
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    run()
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    return {"fps": frames / wall, "cpu_ms": cpu / frames * 1000, "sys_ms": (r1.ru_stime - r0.ru_stime) / frames * 1000,
            "voluntary_switches": (r1.ru_nvcsw - r0.ru_nvcsw) / frames,
            "involuntary_switches": (r1.ru_nivcsw - r0.ru_nivcsw) / frames}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model name, directory or .xml (default: %(default)s)")
    parser.add_argument("--source", default=os.path.join(os.environ.get("LWPOSE_SHARED", "../shared"), "media", "vtest.avi"),
                        help="video file (default: $LWPOSE_SHARED/media/vtest.avi, LWPOSE_SHARED defaulting to ../shared)")
    parser.add_argument("--height", type=int, default=256, help="network input height (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=700, help="frames per run (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="alternating runs of each loop (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    source = args.source
    model = PoseModel(args.model, height=args.height)
    engine = AsyncEngine(model)
    loops = {
        "decode_infer": lambda i: decode_infer(engine, source, 1, args.frames),
        "engine": lambda i: engine_only(engine, source, args.frames, f"run{i}"),
        "pipeline": lambda i: end_to_end(model, source, 1, args.frames),
    }
    for name, loop in loops.items():  # warm-up
        loop(-1 - list(loops).index(name))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in loops}
    for i in range(args.repeats):
        for name, loop in loops.items():
            runs[name].append(measure(lambda: loop(i), args.frames))
    engine.close()
    model.close()
    report = {"cpu_model": cpu_model(), "height": args.height, "frames": args.frames, "repeats": args.repeats,
              "source": source, "loops": {}}
    print(f"{source}, height {args.height}, {args.frames} frames x {args.repeats} alternating runs, "
          f"CPU {report['cpu_model']}; medians per frame:")
    print(f"{'loop':<14}{'fps':>8}{'CPU ms':>9}{'sys ms':>9}{'vol. sw':>9}{'invol. sw':>11}")
    for name, values in runs.items():
        med = {k: round(statistics.median(v[k] for v in values), 3) for k in values[0]}
        med["fps_runs"] = [round(v["fps"], 1) for v in values]
        report["loops"][name] = med
        print(f"{name:<14}{med['fps']:>8.1f}{med['cpu_ms']:>9.2f}{med['sys_ms']:>9.3f}"
              f"{med['voluntary_switches']:>9.2f}{med['involuntary_switches']:>11.2f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
