"""``lwpose convert`` (torch checkpoint → OpenVINO model directory) and ``lwpose import-ir``
(OpenVINO IR → torch checkpoint)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import LwposeError

#: Same as lwpose.model.ARCHITECTURES (not imported here: lwpose.model imports torch).
ARCHITECTURES = ("lightweight-openpose", "human-pose-estimation-0001")
#: Default INT8 calibration set, carried by the package (same as lwpose.convert.quantize.CALIB_DIR,
#: not imported here: that module imports OpenVINO).
CALIB_DIR = Path(__file__).resolve().parents[1] / "convert" / "calib"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert", help="convert a torch checkpoint to an OpenVINO model directory",
        description="Export a Lightweight OpenPose checkpoint to OUT_DIR/model.xml, model.bin and lwpose.json. "
                    "The IR takes u8 NHWC BGR images (input 'image', normalisation (x-128)/256 in the graph) and "
                    "returns the last stage's 'heatmaps' and 'pafs'.")
    p.add_argument("checkpoint", type=Path, help="checkpoint .pth: a state dict, {'state_dict': ...} (original "
                   "training, lwpose import-ir) or {'model': ...} (lwpose train)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT_DIR",
                   help="model directory to write (replaced atomically if it is an existing model directory)")
    p.add_argument("--arch", choices=ARCHITECTURES, help="network architecture (default: detected from the checkpoint keys)")
    p.add_argument("--refinement-stages", type=int, metavar="N",
                   help="number of refinement stages (default: detected from the checkpoint keys)")
    p.add_argument("--precision", choices=("FP32", "FP16", "INT8"), default="FP16",
                   help="FP32: float weights; FP16: weights compressed to half precision; INT8: NNCF post-training "
                        "quantization calibrated on --calib (default: FP16)")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--shape", default="256x456", metavar="HxW",
                       help="fixed input height x width, multiples of 8 (default: 256x456)")
    shape.add_argument("--dynamic", action="store_true", help="dynamic input height and width instead of --shape")
    p.add_argument("--calib", type=Path, metavar="DIR_OR_VIDEO",
                   help="INT8 calibration images: a folder of images or a video (default: the package's own set, "
                        "lwpose/convert/calib/: street scenes at several scales and photos of people; a --dynamic "
                        "model is calibrated at heights 256 and 368)")
    p.add_argument("--calib-size", type=int, default=300, metavar="N",
                   help="number of calibration frames, spread evenly over the source (default: 300)")
    p.add_argument("--check", type=Path, metavar="DATA_DIR",
                   help="after export, compare torch and IR heatmaps/PAFs on the images of DATA_DIR (a "
                        "COCO-format folder: DATA_DIR/images/ and one DATA_DIR/*.json, whose COCO AP is then "
                        "reported for both); with INT8 also the AP of an FP32 export and the INT8/FP32 speed ratio, "
                        "exiting 1 if the AP drops by more than --max-drop (default: no check)")
    p.add_argument("--accuracy-control", type=Path, metavar="DATA_DIR",
                   help="INT8: NNCF accuracy-controlled quantization, reverting quantizers to float until the COCO AP "
                        "on DATA_DIR (a COCO-format folder; not the set you report results on) drops by at most "
                        "--max-drop (default: off)")
    p.add_argument("--max-drop", type=float, default=0.01, metavar="AP",
                   help="largest INT8 AP drop from FP32 that --accuracy-control and --check accept (default: 0.01)")
    p.add_argument("--name", help="register the output in the model store under NAME (default: not registered)")
    p.set_defaults(func=run_convert)

    p = subparsers.add_parser(
        "import-ir", help="import an OpenVINO IR of the Lightweight OpenPose family as a torch checkpoint",
        description="Read an OpenVINO IR (e.g. Open Model Zoo human-pose-estimation-0001, int8 FakeQuantize weights "
                    "and folded BatchNorm), dequantize its weights and write a torch checkpoint "
                    "{'state_dict', 'arch', ...} for lwpose convert / lwpose train. The torch network takes "
                    "(img_bgr - 128) / 256; the IR's own normalisation is folded into the first conv.")
    p.add_argument("model", type=Path, metavar="MODEL.xml", help="OpenVINO IR .xml (its .bin next to it)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="CHECKPOINT.pth", help="checkpoint file to write")
    p.set_defaults(func=run_import_ir)


def parse_shape(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise LwposeError(f"--shape {text!r}: expected HEIGHTxWIDTH, e.g. 256x456") from None
    return height, width


def run_convert(args: argparse.Namespace) -> int:
    shape = None if args.dynamic else parse_shape(args.shape)
    if args.calib_size < 1:
        raise LwposeError(f"--calib-size {args.calib_size}: must be at least 1")
    calib = args.calib
    if args.precision == "INT8" and calib is None:
        if not CALIB_DIR.is_dir():
            raise LwposeError(f"--precision INT8 needs calibration images: pass --calib (no default set {CALIB_DIR})")
        calib = CALIB_DIR
    if args.accuracy_control and args.precision != "INT8":
        raise LwposeError("--accuracy-control applies to --precision INT8 only")
    if not 0 <= args.max_drop < 1:
        raise LwposeError(f"--max-drop {args.max_drop}: must be in [0, 1)")
    check = None
    if args.check:
        from ..eval.coco import coco_folder

        check = coco_folder(args.check, "check", annotations_required=False)
    if check is not None and check[1] is None and args.precision == "INT8":
        raise LwposeError(f"--check {args.check}: INT8 needs one COCO annotations *.json there to compare AP")

    from ..checkpoint import load_network
    from ..convert.export import DEFAULT_SHAPE, export
    from ..media import read_frames

    validation = _validation(args.accuracy_control, shape) if args.accuracy_control else None
    net = load_network(args.checkpoint, args.arch, args.refinement_stages)
    if args.precision == "INT8" and not calib.exists():
        raise LwposeError(f"--calib {calib}: no such folder or video")
    frames = read_frames(calib, args.calib_size) if args.precision == "INT8" else None
    out = export(net, args.output, source=args.checkpoint, precision=args.precision, shape=shape,
                 calibration=frames, name=args.name, validation=validation, max_drop=args.max_drop)
    size = "dynamic" if shape is None else f"{shape[0]}x{shape[1]}"
    print(f"wrote {out} ({net.arch}, {net.num_refinement_stages} refinement stage(s), {args.precision}, {size})")
    if check is not None:
        _check(net, out, check, (shape or DEFAULT_SHAPE)[0])
        if args.precision == "INT8" and not _int8_check(net, args, out, shape):
            return 1
    if args.name:
        from ..store import register as store_register

        print(f"registered {args.name!r}: {store_register(args.name, out)}")
    return 0


def _check(net, out: Path, check: tuple[Path, Path | None], height: int) -> None:
    """Torch vs IR maps on the --check images and, with annotations, both COCO APs (through
    ``lwpose.eval``; ``convert`` and ``eval`` do not import each other, the CLI joins them)."""
    from ..backends.openvino import OpenVINOBackend
    from ..backends.torch import TorchBackend
    from ..convert.compare import compare
    from ..media import image_files, read_frames

    torch_backend = TorchBackend(net, path=out)
    ir = OpenVINOBackend(out, default_precision="f32")
    images = read_frames(check[0], len(image_files(check[0])))
    for name, s in compare(torch_backend, ir, images, height).items():
        print(f"check {name}: max abs diff {s['max_abs_diff']:.2e}, correlation {s['correlation']:.5f} "
              f"({len(images)} images, IR in {ir.precision})")
    if check[1] is not None:
        from ..eval.coco import evaluate
        from ..eval.predict import Predictor

        ap_torch, ap_ir = (evaluate(Predictor(b, height=height), check[0], check[1])["metrics"]["AP"]
                           for b in (torch_backend, ir))
        print(f"check COCO AP at height {height}: torch {ap_torch:.4f}, IR {ap_ir:.4f}")
    ir.close()


def _int8_check(net, args: argparse.Namespace, out: Path, shape: tuple[int, int] | None) -> bool:
    """Print FP32 vs INT8 AP and speed on ``args.check``; False if the drop exceeds ``--max-drop``."""
    import tempfile

    from ..convert.export import export
    from ..convert.quantize import check_heights
    from ..eval.quantized import check_int8

    with tempfile.TemporaryDirectory(prefix="lwpose-fp32-") as tmp:
        fp32 = export(net, Path(tmp) / "fp32", source=args.checkpoint, precision="FP32", shape=shape)
        result = check_int8(fp32, out, args.check, check_heights(shape))
    for height in result.ap_fp32:
        print(f"check INT8 COCO AP at height {height}: FP32 IR {result.ap_fp32[height]:.4f}, "
              f"INT8 IR {result.ap_int8[height]:.4f} (drop {result.ap_fp32[height] - result.ap_int8[height]:+.4f})")
    print(f"check INT8 speed: {result.fps_int8:.1f} vs {result.fps_fp32:.1f} frames/s infer-only ({result.speedup:.2f}x "
          f"FP32, {result.precision} inference)")
    if result.drop > args.max_drop:
        print(f"check FAILED: INT8 loses {result.drop:.4f} AP, more than --max-drop {args.max_drop}")
        return False
    print(f"check passed: INT8 AP drop {result.drop:.4f} <= --max-drop {args.max_drop}")
    return True


def _validation(data_dir: Path, shape: tuple[int, int] | None):
    """NNCF accuracy control's validation on the COCO-format folder ``data_dir`` (``lwpose.eval``;
    ``convert`` and ``eval`` do not import each other, the CLI joins them)."""
    from ..convert.quantize import Validation, check_heights
    from ..eval.quantized import coco_validation

    return Validation(*coco_validation(data_dir, check_heights(shape), shape))


def run_import_ir(args: argparse.Namespace) -> int:
    from ..convert.import_ir import import_ir

    import torch

    out = import_ir(args.model, args.output)
    meta = torch.load(out, map_location="cpu", weights_only=True)
    print(f"wrote {out} ({meta['arch']}, {meta['num_refinement_stages']} refinement stage(s); "
          f"input {meta['input']['normalisation']})")
    return 0
