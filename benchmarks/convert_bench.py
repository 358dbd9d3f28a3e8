"""Conversion benchmark: import the shared IR, export FP32 and INT8 (NNCF), measure parity and speed.

    python benchmarks/convert_bench.py [--calib-size 100] [--json results.json]

Steps, each timed: ``import_ir`` of the Open Model Zoo IR, FP32 export, INT8 export calibrated on
``--calib``. Parity: heatmap/PAF max abs difference and correlation against the imported torch
network on coco-mini (IRs run in f32 so only the conversion is measured), and COCO AP of every
model via ``lwpose.eval`` at height 256. Speed: FP32 and INT8 IRs (and the source IR) compiled
with the runtime's defaults (latency hint), timed in interleaved rounds in one process so the
machine load affects all alike; the median frames/s of the rounds is reported.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import openvino as ov

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lwpose.convert.compare import IrRunner, coco_ap, compare  # noqa: E402
from lwpose.convert.export import export  # noqa: E402
from lwpose.convert.frames import read_frames  # noqa: E402
from lwpose.convert.import_ir import import_ir  # noqa: E402
from lwpose.convert.checkpoint import load_network  # noqa: E402
from lwpose.eval.predict import IRNetwork, TorchNetwork  # noqa: E402
from lwpose.media import image_files  # noqa: E402

SHARED = ROOT.parent / "shared"


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, round(time.perf_counter() - start, 2)


def speed(models: dict[str, Path], rounds: int, iterations: int) -> dict[str, float]:
    """Median frames/s per model over interleaved rounds of ``iterations`` synchronous inferences.

    Models run with the runtime's settings (latency hint, the CPU plugin's default precision, bf16
    on CPUs with AVX512-BF16/AMX); ``fp32-f32`` is the FP32 IR forced to f32 arithmetic.
    """
    core = ov.Core()
    latency = {"PERFORMANCE_HINT": "LATENCY"}
    compiled = {name: core.compile_model(str(xml), "CPU", latency) for name, xml in models.items()}
    compiled["fp32-f32"] = core.compile_model(str(models["fp32"]), "CPU", {**latency, "INFERENCE_PRECISION_HINT": "f32"})
    inputs = {}
    for name, model in compiled.items():
        dims = model.input(0).get_shape()
        x = np.random.default_rng(0).integers(0, 255, size=tuple(dims))
        inputs[name] = x.astype(model.input(0).get_element_type().to_dtype())
    fps: dict[str, list[float]] = {name: [] for name in compiled}
    for name, model in compiled.items():  # warm-up
        request = model.create_infer_request()
        for _ in range(5):
            request.infer({0: inputs[name]})
    for _ in range(rounds):
        for name, model in compiled.items():
            request = model.create_infer_request()
            start = time.perf_counter()
            for _ in range(iterations):
                request.infer({0: inputs[name]})
            fps[name].append(iterations / (time.perf_counter() - start))
    return {name: round(statistics.median(values), 1) for name, values in fps.items()}


def run(args: argparse.Namespace, work: Path, shape: tuple[int, int]) -> dict:
    results: dict = {"import_s": None, "export_fp32_s": None, "export_int8_s": None}
    checkpoint = work / "imported.pth"
    if not checkpoint.is_file():
        _, results["import_s"] = timed(import_ir, args.ir, checkpoint)
    net = load_network(checkpoint)
    if not (work / "fp32/model.xml").is_file():
        _, results["export_fp32_s"] = timed(export, net, work / "fp32", source=checkpoint, precision="FP32", shape=shape)
    if not (work / "int8/model.xml").is_file():
        frames = read_frames(args.calib, args.calib_size)
        _, results["export_int8_s"] = timed(export, net, work / "int8", source=checkpoint, precision="INT8",
                                            shape=shape, calibration=frames)
    models = {"source": args.ir, "fp32": work / "fp32/model.xml", "int8": work / "int8/model.xml"}
    images_dir = args.data / "images"
    images = read_frames(images_dir, len(image_files(images_dir)))
    results["parity_vs_torch"] = {name: compare(net, IrRunner(xml), images) for name, xml in models.items()}
    annotations = next(args.data.glob("*.json"))
    networks = {"torch": TorchNetwork(net), **{name: IRNetwork(xml) for name, xml in models.items()}}
    results["coco_ap_256"] = {name: coco_ap(n, images_dir, annotations, 256) for name, n in networks.items()}
    results["fps"] = speed(models, args.rounds, args.iterations)
    results["int8_speedup_vs_fp32"] = round(results["fps"]["int8"] / results["fps"]["fp32"], 2)
    results["int8_speedup_vs_fp32_f32"] = round(results["fps"]["int8"] / results["fps"]["fp32-f32"], 2)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ir", type=Path, default=SHARED / "models/human-pose-estimation-0001/FP16-INT8/human-pose-estimation-0001.xml")
    parser.add_argument("--data", type=Path, default=SHARED / "data/coco-mini", help="COCO-format folder for parity and AP")
    parser.add_argument("--calib", type=Path, default=ROOT / "samples/sample.mp4", help="INT8 calibration images or video")
    parser.add_argument("--calib-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--work", type=Path, help="keep the outputs here; conversions already there are reused "
                        "(their times are then null) (default: a temporary directory)")
    args = parser.parse_args()
    shape = (256, 456)
    results: dict = {"shape": list(shape), "calib": str(args.calib), "calib_size": args.calib_size}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        results.update(run(args, work, shape))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
