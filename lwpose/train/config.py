"""Training configuration: one dataclass, loaded from a YAML preset and overridden by flags.

Every field is both a YAML key and a ``lwpose train run`` flag (``batch_size`` ↔
``--batch-size``); the field's ``help`` metadata is the flag's help text. Torch-free, so the
command line can build its parser cheaply.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lwpose.errors import LwposeError
from lwpose.files import load_file


def _opt(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    """All settings of one training run (see docs/train.md)."""

    # data
    train_labels: str | None = _opt(None, "prepared labels (.json) from `lwpose train prepare-labels`")
    train_images: str | None = _opt(None, "folder of the training images (COCO train2017)")
    val_annotations: str | None = _opt(None, "COCO keypoint json for periodic validation (e.g. from "
                                             "`lwpose train make-val-subset`); none disables validation")
    val_images: str | None = _opt(None, "folder of the validation images (COCO val2017)")
    out: str = _opt("runs/train", "run directory: checkpoints/, latest.pth, train.csv, val.csv, config.yaml",
                    metavar="DIR")
    # model and initialisation
    arch: str | None = _opt(None, "network: lightweight-openpose or human-pose-estimation-0001; none takes "
                                  "the architecture of the --init checkpoint, else lightweight-openpose",
                            metavar="NAME")
    num_refinement_stages: int = _opt(1, "refinement stages after the initial stage")
    init: str | None = _opt(None, "weights-only initialisation from any checkpoint (this project's, the "
                                  "original's, `lwpose import-ir` output, ImageNet MobileNetV1): loads the "
                                  "tensors whose names and shapes match and reports the others")
    resume: str | None = _opt(None, "continue a run of this project exactly (model, optimizer, scheduler, "
                                    "iteration, RNG): a checkpoint file or a run directory (its latest.pth)")
    freeze_bn: bool = _opt(False, "keep BatchNorm layers in eval mode (fixed running statistics; their weight "
                                  "and bias still train); needed to fine-tune an imported IR, whose BatchNorms "
                                  "are folded into identity statistics")
    # schedule
    iterations: int = _opt(420000, "stop after this many iterations (optimizer steps)")
    batch_size: int = _opt(80, "images per optimizer step and process (global batch = this x processes)")
    base_lr: float = _opt(4e-5, "Adam learning rate of the base parameter group (others are multiples, "
                                "as in the original)")
    weight_decay: float = _opt(5e-4, "L2 weight decay of the non-depthwise conv weights")
    lr_milestones: list[int] = _opt((100, 200, 260), "epochs after which the learning rate is multiplied "
                                                    "by --lr-gamma", nargs="+", type=int)
    lr_gamma: float = _opt(0.333, "learning-rate factor at each milestone")
    # data pipeline and augmentation
    input_size: int = _opt(368, "square training crop in pixels (a multiple of 8)")
    sigma: float = _opt(7.0, "Gaussian sigma of the keypoint heatmaps, in input pixels")
    paf_thickness: float = _opt(1.0, "half-width of a limb's PAF, in stride-8 cells")
    scale_min: float = _opt(0.5, "smallest random scale multiplier")
    scale_max: float = _opt(1.1, "largest random scale multiplier")
    target_dist: float = _opt(0.6, "the main person's height as a fraction of the crop at scale 1")
    max_rotate: float = _opt(40.0, "largest random rotation in degrees")
    center_perturb: float = _opt(40.0, "largest random shift of the crop centre in pixels")
    flip_prob: float = _opt(0.5, "probability of a horizontal flip (left/right keypoints swapped)")
    num_workers: int = _opt(8, "DataLoader worker processes per training process")
    # bookkeeping
    log_every: int = _opt(100, "iterations between train.csv rows (mean loss over the window)")
    checkpoint_every: int = _opt(5000, "iterations between checkpoints (one is also written at the end)")
    val_every: int = _opt(5000, "iterations between validations (needs --val-annotations)")
    val_height: int = _opt(368, "input height of the network during validation")
    seed: int = _opt(0, "seed of data order, augmentation and initialisation")
    device: str = _opt("auto", "auto (cuda if available), cpu, cuda or cuda:N", metavar="DEVICE")
    amp: bool = _opt(True, "mixed precision on CUDA (always off on the CPU)")
    threads: int = _opt(0, "torch intra-op threads per process; 0 keeps torch's default")
    progress: bool = _opt(True, "progress bar with loss, iterations/s and ETA (rank 0)")

    def validate(self) -> None:
        """Raise LwposeError naming the first bad setting."""
        positive = ("iterations", "batch_size", "input_size", "log_every", "checkpoint_every", "val_every",
                    "val_height", "base_lr", "sigma", "paf_thickness", "scale_min", "scale_max", "target_dist")
        for name in positive:
            if getattr(self, name) <= 0:
                raise LwposeError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("num_refinement_stages", "num_workers", "threads", "weight_decay", "max_rotate",
                     "center_perturb"):
            if getattr(self, name) < 0:
                raise LwposeError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.input_size % 8:
            raise LwposeError(f"input_size must be a multiple of 8, got {self.input_size}")
        if self.scale_min > self.scale_max:
            raise LwposeError(f"scale_min ({self.scale_min}) exceeds scale_max ({self.scale_max})")
        if not 0 <= self.flip_prob <= 1:
            raise LwposeError(f"flip_prob must be in [0, 1], got {self.flip_prob}")
        if not (self.train_labels and self.train_images):
            raise LwposeError("train_labels and train_images are required (--train-labels, --train-images "
                              "or the keys of --config)")
        if self.val_annotations and not self.val_images:
            raise LwposeError("val_annotations is set but val_images is not (--val-images)")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["lr_milestones"] = list(self.lr_milestones)
        return d


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping of a YAML preset; unknown keys and non-mappings raise LwposeError."""
    data = load_file(path, "config", "yaml") or {}
    if not isinstance(data, dict):
        raise LwposeError(f"config file {path} must hold a mapping of settings, got {type(data).__name__}")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise LwposeError(f"config file {path}: unknown keys {', '.join(unknown)}")
    return data


def make_config(yaml_path: str | Path | None = None, base: dict[str, Any] | None = None,
                **overrides: Any) -> TrainConfig:
    """Defaults, then ``base`` (the config stored in a resumed checkpoint), then the YAML preset,
    then the overrides that are not None; validated."""
    values: dict[str, Any] = dict(base or {})
    values.update(load_yaml(yaml_path) if yaml_path else {})
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise LwposeError(f"unknown training settings: {', '.join(unknown)}")
    cfg = TrainConfig(**{name: _coerce(name, value) for name, value in values.items()})
    cfg.validate()
    return cfg


def _coerce(name: str, value: Any) -> Any:
    """``value`` converted to the type of the field's default (YAML reads 4e-5 as a string)."""
    default = FIELDS[name].default
    if value is None:
        return None
    try:
        if name == "lr_milestones":
            return [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if isinstance(value, bool) and isinstance(default, (int, float)):
            raise ValueError(value)
        if isinstance(default, int):
            number = float(value)
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise LwposeError(f"setting {name} has a bad value {value!r}") from None

