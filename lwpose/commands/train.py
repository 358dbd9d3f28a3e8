"""``lwpose train``: COCO training of Lightweight OpenPose in torch (see docs/train.md).

Steps: ``prepare-labels`` (COCO keypoints → training labels), ``make-val-subset`` (a small
validation json), ``run`` (train; ``torchrun --nproc_per_node N -m lwpose.train run ...`` for
DDP). Every ``run`` setting is a key of the ``--config`` YAML and a flag; flags win.
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from lwpose.train.config import FIELDS

    parser = subparsers.add_parser(
        "train", help="train the network on COCO (torch)",
        description="Train Lightweight OpenPose on COCO keypoints: prepare-labels, make-val-subset, run.")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    steps = parser.add_subparsers(dest="train_step", metavar="STEP")

    prep = steps.add_parser("prepare-labels", help="COCO person keypoints json → training labels (.json)",
                            description="Convert COCO person keypoints (17) to training labels: the 18-keypoint "
                                        "layout with a neck, main and other people per image, crowd and "
                                        "unlabelled-person masks.")
    prep.add_argument("--annotations", required=True, help="COCO person_keypoints_*.json (required)")
    prep.add_argument("--out", default="prepared_train_labels.json",
                      help="output labels file (default: prepared_train_labels.json)")
    prep.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown)")
    prep.set_defaults(func=_prepare_labels)

    subset = steps.add_parser("make-val-subset", help="random-image subset of a COCO keypoints json",
                              description="Write a COCO json with N random images and their annotations, "
                                          "for fast validation during training.")
    subset.add_argument("--annotations", required=True, help="COCO person_keypoints_val2017.json (required)")
    subset.add_argument("--n", type=int, default=250, help="number of images (default: 250)")
    subset.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    subset.add_argument("--out", default="val_subset.json", help="output json (default: val_subset.json)")
    subset.set_defaults(func=_make_val_subset)

    run = steps.add_parser("run", help="train (single process, or DDP under torchrun)",
                           description="Train with the settings of --config, overridden by flags. Under "
                                       "`torchrun --nproc_per_node N -m lwpose.train run ...` each process "
                                       "trains on its share of every batch (DDP).")
    run.add_argument("--config", help="YAML preset, e.g. configs/train-step1-mobilenet.yaml (default: none)")
    for name, field in FIELDS.items():
        run.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None,
                         help=f"{field.metadata['help']} (default: {_shown(field.default)})", **_kind(field))
    run.set_defaults(func=_run)


def _shown(default: object) -> str:
    if default is None:
        return "none"
    if isinstance(default, tuple):
        return " ".join(str(v) for v in default)
    return str(default)


def _kind(field) -> dict:
    """argparse type/nargs/action for a TrainConfig field, from its default."""
    if "nargs" in field.metadata:
        return {"nargs": field.metadata["nargs"], "type": field.metadata["type"], "metavar": "N"}
    default = field.default
    if isinstance(default, bool):
        return {"action": argparse.BooleanOptionalAction}
    if isinstance(default, (int, float)):
        return {"type": type(default), "metavar": "N" if isinstance(default, int) else "X"}
    return {"metavar": field.metadata.get("metavar", "PATH")}


def _prepare_labels(args: argparse.Namespace) -> int:
    from lwpose.train.labels import prepare_labels

    counts = prepare_labels(args.annotations, args.out, progress=not args.no_progress)
    print(f"{args.out}: {counts['samples']} samples in {counts['images']} images ({counts['people']} labelled people)")
    return 0


def _make_val_subset(args: argparse.Namespace) -> int:
    from lwpose.train.labels import make_val_subset

    count = make_val_subset(args.annotations, args.out, n=args.n, seed=args.seed)
    print(f"{args.out}: {args.n} images, {count} annotations")
    return 0


def _run(args: argparse.Namespace) -> int:
    from lwpose.train.config import FIELDS, make_config

    base = None
    if args.resume:
        from lwpose.train.checkpoint import read_resume

        base = read_resume(args.resume)["config"]
    cfg = make_config(args.config, base=base, **{name: getattr(args, name) for name in FIELDS})
    from lwpose.train.loop import train

    last = train(cfg)
    if last is not None:
        print(f"last checkpoint: {last}")
    return 0
