"""``lwpose bench``: inference-only, end-to-end and synchronous throughput on the same frames and model.

* inference only: the engine's compiled model and an ``AsyncInferQueue`` fed with frames that
  were decoded and resized beforehand; nothing else runs. Once more with a model compiled for
  the video's exact input shape (``infer_static_fps``), to compare with the engine's dynamic width.
* end to end: a :class:`Pipeline` over N copies of the video: read + resize + infer + group +
  track + smooth, results consumed by the calling thread (no display, no files).
* synchronous baseline (optional): the straightforward loop read → ``PoseModel(frame)`` (latency
  hint, static shape) → track, one frame at a time.

Every figure is in the returned dict with an explicit name; CPU time per frame (all threads of
this process) is reported too, as it is less sensitive than wall time to other load on the machine.
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import openvino as ov

from ..errors import LwposeError
from ..runtime import PoseModel
from .engine import AsyncEngine
from .pipeline import Pipeline

STAGES = ("prepare", "queue", "infer", "decode", "track", "total")
WARMUP_FRAMES = 10


class _Clock:
    """Wall and process CPU time between start and stop."""

    def __enter__(self) -> "_Clock":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def _stats_ms(values: list[float]) -> dict[str, float]:
    a = np.asarray(values) * 1000
    return {"mean_ms": round(float(a.mean()), 3), "p95_ms": round(float(np.percentile(a, 95)), 3)}


def read_frames(source: str, count: int) -> tuple[list[np.ndarray], list[float]]:
    """The first ``count`` frames of a video and the decode time of each, seconds."""
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise LwposeError(f"--source {source}: cannot open the video")
    frames, times = [], []
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            ok, frame = cap.read()
            if not ok:
                break
            times.append(time.perf_counter() - t0)
            frames.append(frame)
    finally:
        cap.release()
    if len(frames) < count:
        raise LwposeError(f"--source {source}: has {len(frames)} frames, fewer than --frames {count}")
    return frames, times


def infer_only(compiled: ov.CompiledModel, nireq: int, tensors: list[np.ndarray], repeat: int,
               prefix: str = "infer") -> dict[str, float]:
    """Throughput of a bare infer queue on pre-resized tensors (each sent ``repeat`` times)."""
    queue = ov.AsyncInferQueue(compiled, nireq)
    for t in tensors[:WARMUP_FRAMES]:
        queue.start_async(t, share_inputs=True)
    queue.wait_all()
    with _Clock() as clock:
        for _ in range(repeat):
            for t in tensors:
                queue.start_async(t, share_inputs=True)
        queue.wait_all()
    n = len(tensors) * repeat
    return {f"{prefix}_fps": round(n / clock.wall, 2), f"{prefix}_cpu_ms_per_frame": round(clock.cpu / n * 1000, 2)}


def end_to_end(model: PoseModel, source: str, streams: int, frames: int, nireq: int = 0) -> dict:
    """Throughput and per-stage latency of a full Pipeline over ``streams`` copies of ``source``."""
    pipeline = Pipeline(model, [source] * streams, names=[f"s{i}" for i in range(streams)], max_frames=frames,
                        nireq=nireq)
    timings: dict[str, list[float]] = {s: [] for s in STAGES}
    counts = {f"s{i}": 0 for i in range(streams)}
    people = 0
    with _Clock() as clock:
        for r in pipeline.results():
            counts[r.stream] += 1
            people += len(r.people)
            for s in STAGES:
                timings[s].append(r.timings[s])
    if pipeline.failed:
        raise LwposeError(f"--source {source}: {pipeline.failed[0].error}")
    n = sum(counts.values())
    return {"e2e_fps": round(n / clock.wall, 2), "e2e_cpu_ms_per_frame": round(clock.cpu / n * 1000, 2),
            "frames_total": n, "people_per_frame": round(people / n, 2),
            "stages": {("group" if s == "decode" else s): _stats_ms(v) for s, v in timings.items()}}


def sync_loop(model_spec: str | Path, source: str, frames: int, height: int) -> dict[str, float]:
    """The straightforward loop: read, ``PoseModel(frame)`` (latency hint), track; one frame at a time."""
    from ..track import Tracker

    model = PoseModel(model_spec, height=height, mode="latency")
    cap = cv2.VideoCapture(source)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    tracker = Tracker()
    try:
        ok, frame = cap.read()
        for _ in range(WARMUP_FRAMES):
            model(frame)
        with _Clock() as clock:
            for i in range(frames):
                ok, frame = cap.read()
                if not ok:
                    raise LwposeError(f"--source {source}: fewer than --frames {frames} frames")
                tracker.update(model(frame), i / fps)
    finally:
        cap.release()
    return {"sync_fps": round(frames / clock.wall, 2), "sync_cpu_ms_per_frame": round(clock.cpu / frames * 1000, 2)}


def _best(results: list[dict], key: str) -> dict:
    """The fastest of repeated measurements: other load on the machine only ever slows a run down."""
    return max(results, key=lambda r: r[key])


def run_bench(model_spec: str | Path, source: str, *, streams: list[int], frames: int = 300, height: int = 256,
              mode: str = "throughput", nireq: int = 0, baseline_sync: bool = False, repeats: int = 1) -> dict:
    """All measurements of ``lwpose bench``, as a JSON-ready dict; each figure is the best of
    ``repeats`` runs (inference-only and end-to-end runs alternate)."""
    if frames < WARMUP_FRAMES or not streams or min(streams) < 1 or repeats < 1:
        raise LwposeError(f"--frames must be >= {WARMUP_FRAMES}, --streams and --repeats >= 1")
    model = PoseModel(model_spec, height=height, mode=mode)
    frame_list, decode_times = read_frames(source, frames)
    engine = AsyncEngine(model, nireq=nireq)
    tensors = [model.prepare(f)[0] for f in frame_list]
    h, w = frame_list[0].shape[:2]
    decode = _stats_ms(decode_times)
    report: dict = {
        "model": str(model.xml), "source": str(source), "frame_size": [w, h],
        "input_shape": list(model.input_shape(h, w)), "frames_per_stream": frames, "mode": mode,
        "nireq": engine.nireq, "repeats": repeats, "cpu_count": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
        "openvino": ov.get_version(), "python": platform.python_version(),
        "decode_ms_mean": decode["mean_ms"], "decode_ms_p95": decode["p95_ms"],
    }
    del frame_list
    # the engine's dynamic-width model against one compiled for this exact shape (docs/performance.md)
    static = model.compile(tensors[0].shape[1:3])
    report["inference_precision"] = model.inference_precision
    report.update(_best([infer_only(static, engine.nireq, tensors, 1, "infer_static") for _ in range(repeats)],
                        "infer_static_fps"))
    if baseline_sync:
        report.update(_best([sync_loop(model_spec, source, frames, height) for _ in range(repeats)], "sync_fps"))
    report["runs"] = []
    for n in streams:
        infers, e2es = [], []
        for _ in range(repeats):
            infers.append(infer_only(engine.compiled, engine.nireq, tensors, n))
            e2es.append(end_to_end(model, source, n, frames, nireq))
        run = {"streams": n, **_best(infers, "infer_fps"), **_best(e2es, "e2e_fps")}
        run["ratio_e2e_to_infer"] = round(run["e2e_fps"] / run["infer_fps"], 3)
        if baseline_sync:
            run["ratio_e2e_to_sync"] = round(run["e2e_fps"] / report["sync_fps"], 3)
        report["runs"].append(run)
    engine.close()
    report["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    return report


def format_table(report: dict) -> str:
    """The report as a small text table."""
    lines = [f"{report['source']} {report['frame_size'][0]}x{report['frame_size'][1]} -> input "
             f"{report['input_shape'][0]}x{report['input_shape'][1]}, {report['mode']}, {report['nireq']} requests, "
             f"video decode {report['decode_ms_mean']:.2f} ms/frame"]
    lines.append(f"inference only, static input shape: {report['infer_static_fps']:.1f} frames/s, "
                 f"{report['infer_static_cpu_ms_per_frame']:.1f} CPU ms/frame")
    if "sync_fps" in report:
        lines.append(f"synchronous loop: {report['sync_fps']:.1f} frames/s")
    header = ("streams", "infer fps", "e2e fps", "e2e/infer", "e2e/sync", "people", "cpu ms/f infer", "cpu ms/f e2e")
    rows = [header]
    for r in report["runs"]:
        rows.append((str(r["streams"]), f"{r['infer_fps']:.1f}", f"{r['e2e_fps']:.1f}", f"{r['ratio_e2e_to_infer']:.2f}",
                     f"{r['ratio_e2e_to_sync']:.2f}" if "ratio_e2e_to_sync" in r else "-",
                     f"{r['people_per_frame']:.1f}", f"{r['infer_cpu_ms_per_frame']:.1f}",
                     f"{r['e2e_cpu_ms_per_frame']:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    lines.append("stage latency, ms (mean / p95):")
    for r in report["runs"]:
        stages = ", ".join(f"{k} {v['mean_ms']:.1f}/{v['p95_ms']:.1f}" for k, v in r["stages"].items())
        lines.append(f"  {r['streams']} stream(s): {stages}")
    return "\n".join(lines)
