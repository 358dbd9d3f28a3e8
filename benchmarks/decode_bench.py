"""Benchmark the grouping: Cython vs numpy reference on the same real network maps.

Infers ``--frames`` frames of ../shared/media/vtest.avi once at ``--height`` (maps kept in
memory), then times ``lwpose.decode.group`` (validation included) per frame with each backend and
prints mean / median / p95 milliseconds, their ratio and people per frame; ``--json`` writes the
numbers. Each frame's time is the fastest of ``--repeats`` runs, which filters out preemption on
a shared machine; ``--repeats 1`` gives raw single-run times.

    .venv/bin/python benchmarks/decode_bench.py [--frames 100] [--height 256] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))  # run from a source checkout without installing

from lwpose.decode import group  # noqa: E402
from lwpose.runtime import PoseModel  # noqa: E402


def load_maps(video: Path, ir: Path, frames: int, height: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Heatmaps and PAFs of the first `frames` frames of `video`."""
    model = PoseModel(ir, height=height)
    cap = cv2.VideoCapture(str(video))
    maps = []
    while len(maps) < frames:
        ok, frame = cap.read()
        if not ok:
            break
        m = model.infer(frame)
        maps.append((np.array(m.heatmaps), np.array(m.pafs)))
    cap.release()
    if not maps:
        raise SystemExit(f"decode_bench: error: no frame could be read from {video}")
    return maps


def time_backend(maps: list[tuple[np.ndarray, np.ndarray]], backend: str, repeats: int) -> tuple[np.ndarray, list[int]]:
    """Per-frame wall times in ms (best of `repeats` per frame) and people counts."""
    group(*maps[0], backend=backend)  # warm-up: first-call costs are not per-frame costs
    times, people = [], []
    for hm, paf in maps:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            keypoints, _ = group(hm, paf, backend=backend)
            best = min(best, time.perf_counter() - t0)
        times.append(best * 1e3)
        people.append(len(keypoints))
    return np.array(times), people


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="number of video frames to decode (default: 100)")
    parser.add_argument("--height", type=int, default=256, help="network input height in pixels (default: 256)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per frame and backend, the fastest is kept (default: 3)")
    parser.add_argument("--video", type=Path, default=SHARED / "media/vtest.avi",
                        help="input video (default: ../shared/media/vtest.avi)")
    parser.add_argument("--model", type=Path,
                        default=SHARED / "models/human-pose-estimation-0001/FP16-INT8/human-pose-estimation-0001.xml",
                        help="OpenVINO IR xml (default: the shared human-pose-estimation-0001 INT8 IR)")
    parser.add_argument("--json", type=Path, help="write the results to this JSON file (default: none)")
    args = parser.parse_args()

    maps = load_maps(args.video, args.model, args.frames, args.height)
    ref_ms, ref_people = time_backend(maps, "reference", args.repeats)
    cy_ms, cy_people = time_backend(maps, "cython", args.repeats)
    if ref_people != cy_people:
        raise SystemExit("decode_bench: error: the backends found different people")
    result = {
        "frames": len(maps),
        "height": args.height,
        "map_shape": list(maps[0][0].shape[1:]),
        "repeats": args.repeats,
        "people_per_frame_mean": float(np.mean(cy_people)),
        "decode_ms_mean_cython": float(cy_ms.mean()),
        "decode_ms_median_cython": float(np.median(cy_ms)),
        "decode_ms_p95_cython": float(np.percentile(cy_ms, 95)),
        "decode_ms_mean_reference": float(ref_ms.mean()),
        "decode_ms_median_reference": float(np.median(ref_ms)),
        "decode_ms_p95_reference": float(np.percentile(ref_ms, 95)),
        "ratio_reference_to_cython": float(ref_ms.mean() / cy_ms.mean()),
    }
    print(f"{result['frames']} frames at height {args.height} (maps {result['map_shape'][0]}x{result['map_shape'][1]}), "
          f"{result['people_per_frame_mean']:.2f} people/frame")
    for name in ("cython", "reference"):
        print(f"  {name:9s}: mean {result[f'decode_ms_mean_{name}']:.3f} ms, median {result[f'decode_ms_median_{name}']:.3f} ms, "
              f"p95 {result[f'decode_ms_p95_{name}']:.3f} ms")
    print(f"  reference / cython: {result['ratio_reference_to_cython']:.1f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
