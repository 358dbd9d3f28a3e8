"""INT8 quantization ablation: COCO AP of INT8 recipes vs the FP32 IR, all run in f32.

    python benchmarks/int8_ablation.py build/hpe0001.pth --eval ../shared/data/coco-mini ../shared/data/coco-val-dev \
        --omz ../shared/models/human-pose-estimation-0001/FP16-INT8/human-pose-estimation-0001.xml \
        --accuracy-data ../shared/data/ochuman-mini --work /tmp/ablation --json results.json [--only NAME ...]

Every model is a dynamic export (``convert --dynamic``) evaluated at heights 256 and 368 without
TTA on the --eval sets merged into one (their images and people pooled), float layers in f32
(``LWPOSE_INFERENCE_PRECISION=f32`` is set here, so the CPU's bf16 default does not blur FP32 vs INT8).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import openvino as ov

from lwpose.backends.openvino import OpenVINOBackend
from lwpose.checkpoint import load_network
from lwpose.convert import quantize as q
from lwpose.convert.export import export, to_openvino
from lwpose.eval.coco import coco_folder, evaluate
from lwpose.eval.predict import Predictor
from lwpose.eval.quantized import coco_validation
from lwpose.media import read_frames

os.environ["LWPOSE_INFERENCE_PRECISION"] = "f32"

HEIGHTS = (256, 368)
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "sample.mp4"


def configs(accuracy_data: Path | None, vtest: Path) -> dict[str, dict]:
    """name → (calibration source, frame count, per-height calibration?, recipe, accuracy control?)."""
    base = {"calib": q.CALIB_DIR, "count": 300, "heights": True, "recipe": q.Recipe(preset="performance")}
    return {
        "old default (sample.mp4, 256x456 only, performance)": {
            **base, "calib": SAMPLE, "heights": False},
        "calib set, 256+368, performance": base,
        "calib set, 256+368, mixed": {**base, "recipe": q.Recipe(preset="mixed")},
        "calib set, performance, full bias correction": {
            **base, "recipe": q.Recipe(preset="performance", fast_bias_correction=False)},
        "calib set, performance, heads float": {**base, "recipe": q.Recipe(preset="performance", keep_float=("heads",))},
        "calib set, performance, first+heads float": {
            **base, "recipe": q.Recipe(preset="performance", keep_float=("first", "heads"))},
        "calib set, mixed, heads float": {**base, "recipe": q.Recipe(preset="mixed", keep_float=("heads",))},
        "vtest.avi 150 frames, 256+368, performance": {**base, "calib": vtest, "count": 150},
        "calib set + accuracy control (ochuman-mini, 0.01), performance": {**base, "accuracy": accuracy_data},
    }


def merged(eval_dirs: list[Path], work: Path) -> tuple[Path, Path]:
    """One COCO json pooling the --eval sets (absolute file names)."""
    out = {"images": [], "annotations": [], "categories": None}
    for data_dir in eval_dirs:
        images_dir, annotations = coco_folder(data_dir, "eval")
        data = json.loads(annotations.read_text())
        out["categories"] = out["categories"] or data["categories"]
        out["images"] += [{**im, "file_name": str((images_dir / im["file_name"]).resolve())} for im in data["images"]]
        out["annotations"] += data["annotations"]
    path = work / "eval.json"
    path.write_text(json.dumps(out))
    return work, path


def ap_f32(model: Path, images_dir: Path, annotations: Path) -> dict[int, float]:
    backend = OpenVINOBackend(model)
    try:
        return {h: evaluate(Predictor(backend, height=h), images_dir, annotations)["metrics"]["AP"] for h in HEIGHTS}
    finally:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--eval", type=Path, nargs="+", required=True)
    parser.add_argument("--omz", type=Path)
    parser.add_argument("--accuracy-data", type=Path)
    parser.add_argument("--vtest", type=Path, default=Path("../shared/media/vtest.avi"))
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = json.loads(args.json.read_text()) if args.json.is_file() else {}
    images_dir, annotations = merged(args.eval, args.work)
    net = load_network(args.checkpoint)

    def record(name: str, model: Path, seconds: float | None = None) -> None:
        results[name] = {"AP": ap_f32(model, images_dir, annotations), "quantize_s": seconds}
        print(name, results[name], flush=True)
        args.json.write_text(json.dumps(results, indent=2))

    fp32 = args.work / "fp32"
    if "FP32" not in results:
        export(net, fp32, source=args.checkpoint, precision="FP32", shape=None)
        record("FP32", fp32)
    if args.omz and "OMZ FP16-INT8" not in results:
        record("OMZ FP16-INT8", args.omz)
    todo = configs(args.accuracy_data, args.vtest)
    for name in args.only or list(todo):
        c = todo[name]
        if name in results:
            continue
        source = c["calib"]
        frames = read_frames(source, c["count"])
        tensors = q.calibration_tensors(frames, None if c["heights"] else (256, 456))
        start = time.perf_counter()
        model = to_openvino(net, None)
        if c.get("accuracy"):
            validation = q.Validation(*coco_validation(c["accuracy"], HEIGHTS, None))
            model = q.quantize_with_accuracy_control(model, tensors, validation, 0.01, c["recipe"])
        else:
            model = q.quantize(model, tensors, c["recipe"])
        seconds = round(time.perf_counter() - start, 1)
        out = args.work / f"int8-{list(todo).index(name)}"
        out.mkdir(exist_ok=True)
        ov.save_model(model, out / "model.xml")
        shutil.copy(fp32 / "lwpose.json", out / "lwpose.json")
        record(name, out, seconds)
        results[name]["calibration_tensors"] = len(tensors)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
