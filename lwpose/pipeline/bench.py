"""``lwpose bench``: inference-only, end-to-end and synchronous throughput on the same frames and model.

* inference only: the OpenVINO backend's compiled model and an ``AsyncInferQueue`` fed with
  frames that were decoded and resized beforehand; nothing else runs. Once more with a model
  compiled for the video's exact input shape (``infer_static_fps``), to compare with the dynamic width.
* decode and infer: the pipeline's reading half (a thread per stream: video source, resize,
  blocking submit) feeding the same backend, outputs dropped: the limit end to end can reach on
  this machine, as it must decode the video too (``decode_infer_fps``).
* end to end: a :class:`Pipeline` over N copies of the video: read + resize + infer + group +
  track + smooth, results consumed by the calling thread (no display, no files). Its 1-stream
  run gives the image-to-result latency (``latency_ms``: prepare started → result delivered).
* remote (``servers``): end to end again with a :class:`KServeBackend` on those servers: fps,
  client CPU per frame and bytes per frame, beside the local figures.
* synchronous baseline (optional): the straightforward loop read → ``PoseModel(frame)`` (latency
  hint, static shape) → track, one frame at a time.

Every figure is in the returned dict with an explicit name; CPU time per frame (all threads of
this process) is reported too, as it is less sensitive than wall time to other load on the machine.
"""
from __future__ import annotations

import os
import platform
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import openvino as ov

from ..backends.openvino import start
from ..errors import LwposeError
from ..media import read_frames
from ..runtime import PoseModel
from .engine import AsyncEngine
from .pipeline import Pipeline
from .sources import VideoSource

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


def cpu_model() -> str:
    """The CPU's model name (lscpu "Model name", else /proc/cpuinfo, else platform)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, env={**os.environ, "LC_ALL": "C"})
        for line in out.stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def infer_only(compiled: ov.CompiledModel, nireq: int, tensors: list[np.ndarray], repeat: int,
               prefix: str = "infer") -> dict[str, float]:
    """Throughput of a bare infer queue on pre-resized tensors (each sent ``repeat`` times),
    started as the backend starts them."""
    queue = ov.AsyncInferQueue(compiled, nireq)
    for t in tensors[:WARMUP_FRAMES]:
        start(queue, t)
    queue.wait_all()
    with _Clock() as clock:
        for _ in range(repeat):
            for t in tensors:
                start(queue, t)
        queue.wait_all()
    n = len(tensors) * repeat
    return {f"{prefix}_fps": round(n / clock.wall, 2), f"{prefix}_cpu_ms_per_frame": round(clock.cpu / n * 1000, 2)}


def decode_infer(engine: AsyncEngine, source: str, streams: int, frames: int) -> dict[str, float]:
    """The pipeline's reading half alone: per stream a thread reading a :class:`VideoSource`,
    resizing each frame (``engine.prepare``) and submitting it to the engine's backend, which
    blocks while every request is busy; outputs dropped."""
    backend = engine.backend

    def drop(outputs: object, error: BaseException | None) -> None:
        if error is not None:
            raise error  # logged by the backend

    def read() -> None:
        src = VideoSource(source, live=False)
        src.open()
        try:
            for _ in range(frames):
                frame = src.read()
                if frame is None:
                    break
                backend.submit(engine.prepare(frame.image).tensor, drop)
        finally:
            src.close()

    threads = [threading.Thread(target=read) for _ in range(streams)]
    with _Clock() as clock:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        backend.wait()
    n = streams * frames
    return {"decode_infer_fps": round(n / clock.wall, 2), "decode_infer_cpu_ms_per_frame": round(clock.cpu / n * 1000, 2)}


def end_to_end(model: PoseModel, source: str, streams: int, frames: int, fps_limit: float = 0.0) -> dict:
    """Throughput and per-stage latency of a full Pipeline over ``streams`` copies of ``source``."""
    pipeline = Pipeline(model, [source] * streams, names=[f"s{i}" for i in range(streams)], max_frames=frames,
                        fps_limit=fps_limit)
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
        raise LwposeError(f"source {source}: {pipeline.failed[0].error}", param="source")
    n = sum(counts.values())
    if n < streams * frames:
        raise LwposeError(f"source {source}: {streams * frames - n} frames were lost", param="source")
    total = np.asarray(timings["total"]) * 1000
    return {"e2e_fps": round(n / clock.wall, 2), "e2e_cpu_ms_per_frame": round(clock.cpu / n * 1000, 2),
            "latency_ms": {"p50": round(float(np.percentile(total, 50)), 2),
                           "p95": round(float(np.percentile(total, 95)), 2)},
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
                    raise LwposeError(f"source {source}: fewer than frames={frames} frames", param="source")
                tracker.update(model(frame), i / fps)
    finally:
        cap.release()
    return {"sync_fps": round(frames / clock.wall, 2), "sync_cpu_ms_per_frame": round(clock.cpu / frames * 1000, 2)}


def _best(results: list[dict], key: str) -> dict:
    """The fastest of repeated measurements: other load on the machine only ever slows a run down."""
    return max(results, key=lambda r: r[key])


def run_bench(model_spec: str | Path, source: str, *, streams: list[int], frames: int = 300, height: int = 256,
              mode: str = "throughput", nireq: int = 0, threads: int = 0, baseline_sync: bool = False,
              repeats: int = 1, servers: list[str] | None = None) -> dict:
    """All measurements of ``lwpose bench``, as a JSON-ready dict; each figure is the best of
    ``repeats`` runs (inference-only, decode-and-infer and end-to-end runs alternate). With
    ``servers`` (KServe v2 URLs), end to end also runs through them (``remote_*`` keys)."""
    if frames < WARMUP_FRAMES or not streams or min(streams) < 1 or repeats < 1:
        raise LwposeError(f"frames must be >= {WARMUP_FRAMES}, streams and repeats >= 1", param="frames")
    remote = None
    if servers:
        from ..backends.kserve import KServeBackend

        remote = PoseModel(height=height, backend=KServeBackend(list(servers)))
        remote.compile()  # LwposeError naming them when no server is up
    model = PoseModel(model_spec, height=height, mode=mode, nireq=nireq, threads=threads)
    backend = model.backend
    decode_times: list[float] = []
    cpu0 = time.process_time()
    frame_list = read_frames(source, frames, spread=False, decode_times=decode_times)
    decode_cpu = (time.process_time() - cpu0) / max(1, len(frame_list))
    if len(frame_list) < frames:
        raise LwposeError(f"source {source}: has {len(frame_list)} frames, fewer than frames={frames}", param="source")
    engine = AsyncEngine(model)
    tensors = [model.prepare(f)[0] for f in frame_list]
    h, w = frame_list[0].shape[:2]
    decode = _stats_ms(decode_times)
    report: dict = {
        "model": str(backend.path), "backend": backend.name, "source": str(source), "frame_size": [w, h],
        "input_shape": list(model.input_shape(h, w)), "frames_per_stream": frames, "mode": mode,
        "nireq": engine.nireq, "repeats": repeats, "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "openvino": ov.get_version(), "python": platform.python_version(),
        "decode_ms_mean": decode["mean_ms"], "decode_ms_p95": decode["p95_ms"],
        "decode_cpu_ms_per_frame": round(decode_cpu * 1000, 2),
    }
    del frame_list
    # the engine's dynamic-width model against one compiled for this exact shape (docs/performance.md)
    static = backend.compiled(*tensors[0].shape[1:3])
    report.update(_best([infer_only(static, engine.nireq, tensors, 1, "infer_static") for _ in range(repeats)],
                        "infer_static_fps"))
    if baseline_sync:
        report.update(_best([sync_loop(model_spec, source, frames, height) for _ in range(repeats)], "sync_fps"))
    report["runs"] = []
    for n in streams:
        infers, decode_infers, e2es = [], [], []
        for _ in range(repeats):
            infers.append(infer_only(backend.compiled(height), engine.nireq, tensors, n))
            decode_infers.append(decode_infer(engine, source, n, frames))
            e2es.append(end_to_end(model, source, n, frames))
        run = {"streams": n, **_best(infers, "infer_fps"), **_best(decode_infers, "decode_infer_fps"),
               **_best(e2es, "e2e_fps")}
        run["ratio_e2e_to_infer"] = round(run["e2e_fps"] / run["infer_fps"], 3)
        run["ratio_e2e_to_decode_infer"] = round(run["e2e_fps"] / run["decode_infer_fps"], 3)
        if baseline_sync:
            run["ratio_e2e_to_sync"] = round(run["e2e_fps"] / report["sync_fps"], 3)
        if remote is not None:
            run.update(_remote_run(remote, source, n, frames, run["infer_cpu_ms_per_frame"],
                                   report["decode_cpu_ms_per_frame"]))
        report["runs"].append(run)
    one = [r for r in report["runs"] if r["streams"] == 1]
    if one:
        report["latency_ms"] = one[0]["latency_ms"]
    engine.close()
    report["inference_precision"] = backend.precision
    model.close()
    if remote is not None:
        report["servers"] = list(servers or [])
        remote.close()
    report["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    return report


def _remote_run(remote: PoseModel, source: str, streams: int, frames: int, infer_cpu_ms: float,
                decode_cpu_ms: float) -> dict:
    """End to end through the servers: fps, this process's CPU and the bytes per frame."""
    backend = remote.backend
    backend.bytes_sent = backend.bytes_received = 0  # type: ignore[attr-defined]
    e2e = end_to_end(remote, source, streams, frames)
    n = e2e["frames_total"]
    client = e2e["e2e_cpu_ms_per_frame"]
    return {"remote_e2e_fps": e2e["e2e_fps"], "remote_client_cpu_ms_per_frame": client,
            "remote_bytes_sent_per_frame": round(backend.bytes_sent / n),  # type: ignore[attr-defined]
            "remote_bytes_received_per_frame": round(backend.bytes_received / n),  # type: ignore[attr-defined]
            "ratio_remote_client_minus_decode_to_infer_cpu": round((client - decode_cpu_ms) / infer_cpu_ms, 3)}


def format_table(report: dict) -> str:
    """The report as a small text table."""
    lines = [f"{report['source']} {report['frame_size'][0]}x{report['frame_size'][1]} -> input "
             f"{report['input_shape'][0]}x{report['input_shape'][1]}, {report['mode']}, {report['nireq']} requests, "
             f"video decode {report['decode_ms_mean']:.2f} ms/frame"]
    lines.append(f"inference only, static input shape: {report['infer_static_fps']:.1f} frames/s, "
                 f"{report['infer_static_cpu_ms_per_frame']:.1f} CPU ms/frame")
    if "sync_fps" in report:
        lines.append(f"synchronous loop: {report['sync_fps']:.1f} frames/s")
    header = ("streams", "infer fps", "decode+infer fps", "e2e fps", "e2e/infer", "e2e/decode+infer", "e2e/sync",
              "people", "cpu ms/f infer", "cpu ms/f e2e")
    rows = [header]
    for r in report["runs"]:
        rows.append((str(r["streams"]), f"{r['infer_fps']:.1f}", f"{r['decode_infer_fps']:.1f}", f"{r['e2e_fps']:.1f}",
                     f"{r['ratio_e2e_to_infer']:.2f}", f"{r['ratio_e2e_to_decode_infer']:.2f}",
                     f"{r['ratio_e2e_to_sync']:.2f}" if "ratio_e2e_to_sync" in r else "-",
                     f"{r['people_per_frame']:.1f}", f"{r['infer_cpu_ms_per_frame']:.1f}",
                     f"{r['e2e_cpu_ms_per_frame']:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    if "latency_ms" in report:
        lat = report["latency_ms"]
        lines.append(f"image-to-result latency, 1 stream: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms")
    if "servers" in report:
        lines.append(f"remote ({', '.join(report['servers'])}), video decode {report['decode_cpu_ms_per_frame']:.2f} "
                     "CPU ms/frame:")
        for r in report["runs"]:
            lines.append(f"  {r['streams']} stream(s): {r['remote_e2e_fps']:.1f} frames/s (local {r['e2e_fps']:.1f}), "
                         f"client {r['remote_client_cpu_ms_per_frame']:.2f} CPU ms/frame, "
                         f"{r['remote_bytes_sent_per_frame']} B sent / {r['remote_bytes_received_per_frame']} B "
                         f"received per frame, (client - decode) / local inference CPU "
                         f"{r['ratio_remote_client_minus_decode_to_infer_cpu']:.2f}")
    lines.append(f"CPU: {report['cpu_model']}, precision {report['inference_precision']}")
    lines.append("stage latency, ms (mean / p95):")
    for r in report["runs"]:
        stages = ", ".join(f"{k} {v['mean_ms']:.1f}/{v['p95_ms']:.1f}" for k, v in r["stages"].items())
        lines.append(f"  {r['streams']} stream(s): {stages}")
    return "\n".join(lines)
