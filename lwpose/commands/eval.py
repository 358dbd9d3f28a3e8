"""``lwpose eval`` (COCO keypoint AP of a model) and ``lwpose check`` (accuracy regression check
against a baseline file)."""
from __future__ import annotations

import argparse
import json
import sys

from ..errors import LwposeError
from ..fsutil import atomic_write
from . import options


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser(
        "eval", help="COCO keypoint AP of a model on a COCO-format data set",
        description="Run a model on every image of a COCO-format keypoint set with the runtime's "
                    "preprocessing and grouping, and score it with pycocotools COCOeval. Prints AP, "
                    "AP50, AP75, APm, APl, AR and images/s.")
    options.add_model(ev, checkpoints=True)
    ev.add_argument("--images", required=True, metavar="DIR", help="directory holding the images' file_name entries")
    ev.add_argument("--annotations", required=True, metavar="FILE.json",
                    help="COCO person keypoints file (e.g. person_keypoints_val2017.json)")
    options.add_height(ev, options.EVAL_HEIGHT)
    ev.add_argument("--scales", type=float, nargs="+", default=[1.0], metavar="S",
                    help="test-time scales multiplying --height; maps of all scales are averaged on the "
                         "largest scale's grid (default: 1.0 only)")
    ev.add_argument("--flip", action="store_true",
                    help="also run on the mirrored image at each scale and average (default off)")
    options.add_device(ev)
    ev.add_argument("--json", metavar="OUT", help="write configuration, metrics and images/s as JSON "
                                                  "(usable as a `lwpose check` baseline); default: none")
    ev.add_argument("--save-predictions", metavar="FILE.json",
                    help="write the COCO results list (image_id, category_id, keypoints, score); default: none")
    ev.add_argument("--analyze", action="store_true",
                    help="also print the AP lost to each keypoint error kind and the worst images (default off)")
    ev.set_defaults(func=_eval)

    check = sub.add_parser(
        "check", help="re-run a baseline's evaluation; exit 1 if AP dropped",
        description="Re-run the evaluation a baseline file describes (model, data, height, scales, flip) "
                    "and compare: exit 0 when AP is at most --tolerance below the baseline's, 1 when it "
                    "dropped more, 2 on errors. ${SHARED} in the file is $LWPOSE_SHARED.")
    check.add_argument("--baseline", required=True, metavar="FILE.json", help="baseline file, e.g. baselines/NAME.json")
    check.add_argument("--tolerance", type=float, default=None,
                       help="allowed AP drop (default: the baseline's \"tolerance\", else 0.01)")
    check.add_argument("--update", action="store_true",
                       help="write the measured metrics into the baseline file (and exit 0)")
    options.add_device(check)
    check.set_defaults(func=_check)


def _eval(args: argparse.Namespace) -> int:
    from ..eval import baseline

    result = baseline.evaluate_model(args.model, args.images, args.annotations, height=args.height,
                                     scales=tuple(args.scales), flip=args.flip, device=args.device,
                                     progress=sys.stderr.isatty())
    predictions = result.pop("predictions")
    print(_summary(result))
    if args.analyze:
        from ..eval import analyze, coco

        print(analyze.report(analyze.analyze(coco.load_dataset(args.images, args.annotations), predictions)))
    if args.json:
        _write(args.json, json.dumps(result, indent=2) + "\n")
    if args.save_predictions:
        _write(args.save_predictions, json.dumps(predictions) + "\n")
    return 0


def _check(args: argparse.Namespace) -> int:
    from ..eval import baseline

    if args.tolerance is not None and not baseline.is_tolerance(args.tolerance):
        raise LwposeError(f"--tolerance must be a finite number >= 0, not {args.tolerance}")
    base = baseline.load(args.baseline)
    if base.metrics is None and not args.update:
        raise LwposeError(f"--baseline {args.baseline}: has no metrics yet; run with --update to measure them")
    result = base.evaluate(device=args.device, progress=sys.stderr.isatty())
    print(f"baseline {args.baseline}")
    print(_summary(result))
    ok = True
    if base.metrics is not None:
        tolerance = base.tolerance if args.tolerance is None else args.tolerance
        ok, lines = baseline.compare(base.metrics, result["metrics"], tolerance)
        print("\n".join(lines))
    if args.update:
        base.update(result)
        print(f"updated {args.baseline}")
        return 0
    return 0 if ok else 1


def _summary(result: dict) -> str:
    m = result["metrics"]
    tta = f"scales {' '.join(f'{s:g}' for s in result['scales'])}, flip {'on' if result['flip'] else 'off'}"
    metrics = "  ".join(f"{k} {'n/a' if m[k] is None else f'{m[k]:.4f}'}"
                        for k in ("AP", "AP50", "AP75", "APm", "APl", "AR"))
    return (f"model        {result['model']}\n"
            f"data         {result['annotations']} ({result['num_images']} images, {result['num_people']} people, "
            f"{result['num_predictions']} predictions)\n"
            f"input        height {result['height']}, {tta}\n"
            f"precision    {result['inference_precision']}\n"
            f"accuracy     {metrics}\n"
            f"speed        {result['images_per_s']} images/s (prediction + grouping, steady state)")


def _write(path: str, text: str) -> None:
    atomic_write(path, text)
