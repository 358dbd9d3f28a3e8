"""Remote vs local inference on loopback: what a camera host spends per frame when a server infers.

Starts ``lwpose serve`` on free 127.0.0.1 ports (or uses ``--server URL``), then, on the first
``--frames`` frames of ../shared/media/vtest.avi at ``--height``, measures in this process:

- decode: CPU ms/frame of reading the video alone;
- local inference: CPU ms/frame of OpenVINO inference alone (AsyncInferQueue, throughput mode, on
  prepared tensors), i.e. what the camera host saves;
- remote client: CPU ms/frame of read + prepare + KServeBackend request + grouping, and bytes/frame;
- end-to-end fps of read + prepare + infer + grouping, remote and local.

CPU is ``time.process_time`` (every thread of this process; the server's CPU is not counted). The
target: (remote client - decode) <= 25 % of local inference. Client and server share the CPU here.

    .venv/bin/python benchmarks/remote_bench.py [--frames 150] [--height 256] [--protocol grpc|http]
        [--server URL] [--json benchmarks/results/remote.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LWPOSE_SHARED", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT))  # run from a source checkout without installing

import openvino as ov  # noqa: E402

from lwpose import decode  # noqa: E402
from lwpose.backends import precision  # noqa: E402
from lwpose.backends.kserve import KServeBackend  # noqa: E402
from lwpose.runtime import PoseModel  # noqa: E402


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, height: int) -> tuple[subprocess.Popen, int, int]:
    grpc_port, http_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lwpose", "serve", "--model", model, "--served-name", "hpe",
                             "--height", str(height), "--grpc-port", str(grpc_port), "--http-port", str(http_port)],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(360):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v2/models/hpe/ready", timeout=2):
                return proc, grpc_port, http_port
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("lwpose serve exited")
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("lwpose serve did not get ready")


def read_frames(video: Path, n: int) -> tuple[list, float]:
    """The first n frames and the CPU seconds reading them took."""
    cap = cv2.VideoCapture(str(video))
    t0 = time.process_time()
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cpu = time.process_time() - t0
    cap.release()
    return frames, cpu


def run_stream(video: Path, n: int, model: PoseModel, submit, wait) -> tuple[float, float]:
    """Read, prepare, submit n frames (grouping in the callbacks); CPU and wall seconds."""
    cap = cv2.VideoCapture(str(video))
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        ok, frame = cap.read()
        if not ok:
            break
        tensor, scale = model.prepare(frame)
        submit(tensor)
    wait()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    cap.release()
    return cpu, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--model", default="human-pose-estimation-0001")
    parser.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    parser.add_argument("--server", help="use this server instead of starting lwpose serve")
    parser.add_argument("--video", default=str(SHARED / "media/vtest.avi"))
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args()
    video = Path(args.video)

    proc = None
    url = args.server
    if url is None:
        proc, grpc_port, http_port = start_server(args.model, args.height)
        url = f"grpc://127.0.0.1:{grpc_port}/hpe" if args.protocol == "grpc" else \
            f"http://127.0.0.1:{http_port}/v2/models/hpe"
    try:
        model = PoseModel(args.model, height=args.height, mode="throughput")
        model.config = precision.with_hint(model.config)
        frames, decode_cpu = read_frames(video, args.frames)
        n = len(frames)
        if not n:
            raise SystemExit(f"{video}: no frames (set LWPOSE_SHARED or --video)")
        tensors = [model.prepare(f)[0] for f in frames]

        # local inference alone: one AsyncInferQueue on prepared tensors
        compiled = model.compile((args.height, -1))
        queue = ov.AsyncInferQueue(compiled, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")) + 1)
        queue.start_async(tensors[0])
        queue.wait_all()  # warm-up
        c0 = time.process_time()
        for t in tensors:
            queue.start_async(t)
        queue.wait_all()
        local_infer_cpu = time.process_time() - c0

        # local end to end: read + prepare + infer + group
        def group_local(request: ov.InferRequest, scale: float) -> None:
            maps = model.maps(request, scale)
            decode.group(maps.heatmaps, maps.pafs)

        queue.set_callback(group_local)
        local_cpu, local_wall = run_stream(video, n, model, lambda t: queue.start_async(t, 1.0), queue.wait_all)

        # remote end to end
        backend = KServeBackend([url])
        backend.compile(args.height)
        backend.infer(tensors[0])  # warm-up (connection)
        backend.bytes_sent = backend.bytes_received = 0
        lock = threading.Lock()
        failures = []

        def done(outputs, error) -> None:
            if error is not None:
                with lock:
                    failures.append(error)
                return
            decode.group(*outputs)

        remote_cpu, remote_wall = run_stream(video, n, model, lambda t: backend.submit(t, done), backend.wait)
        sent, received = backend.bytes_sent, backend.bytes_received
        backend.close()
        if failures:
            raise SystemExit(f"{len(failures)} remote requests failed: {failures[0]}")
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)

    ms = 1000.0 / n
    report = {
        "cpu_model": cpu_model(), "shared_machine": True, "frames": n, "height": args.height,
        "input_shape": list(tensors[0].shape), "server": url, "precision": precision.actual(compiled),
        "decode_cpu_ms_per_frame": round(decode_cpu * ms, 2),
        "local_inference_cpu_ms_per_frame": round(local_infer_cpu * ms, 2),
        "remote_client_cpu_ms_per_frame": round(remote_cpu * ms, 2),
        "remote_client_cpu_minus_decode_ms_per_frame": round((remote_cpu - decode_cpu) * ms, 2),
        "ratio_client_minus_decode_to_local_inference": round((remote_cpu - decode_cpu) / local_infer_cpu, 3),
        "target_ratio": 0.25,
        "bytes_sent_per_frame": round(sent / n), "bytes_received_per_frame": round(received / n),
        "local_e2e_cpu_ms_per_frame": round(local_cpu * ms, 2),
        "local_e2e_fps": round(n / local_wall, 1), "remote_e2e_fps": round(n / remote_wall, 1),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
