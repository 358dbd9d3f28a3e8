"""Accuracy baselines: a JSON file naming an evaluation (model, data, height, TTA) and the
metrics it reached; ``lwpose check`` re-runs it and fails when AP dropped.

A baseline file::

    {"description": "...", "model": "${SHARED}/models/.../human-pose-estimation-0001.xml",
     "images": "${SHARED}/data/coco-mini/images",
     "annotations": "${SHARED}/data/coco-mini/person_keypoints_mini.json",
     "height": 368, "scales": [1.0], "flip": false, "tolerance": 0.01, "metrics": {"AP": 0.8162, ...}}

``${SHARED}`` is ``$LWPOSE_SHARED`` (an error when unset); other relative paths are relative to
the baseline file. ``model`` is a path (it has a ``/`` or ends in ``.xml``, ``.pth``, ``.pt``) or
a model store name. ``tolerance`` (optional, default :data:`DEFAULT_TOLERANCE`) is the AP drop the
check allows; docs/accuracy.md says how each was set from the spread across inference precisions.
``lwpose eval --json`` writes files of the same shape. A NaN anywhere it is compared never passes:
NaN tolerances and metrics are refused.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..backends import CHECKPOINT_SUFFIXES, Backend, open_backend
from ..errors import LwposeError
from ..files import load_file
from ..fsutil import atomic_write
from . import coco, predict

SHARED = "${SHARED}"
#: The metric the check gates on; the others are reported.
GATED_METRIC = "AP"
MODEL_SUFFIXES = (".xml", *CHECKPOINT_SUFFIXES)
#: The environment variable ``${SHARED}`` stands for.
SHARED_ENV = "LWPOSE_SHARED"
#: The AP drop allowed when neither the baseline nor the command line gives a tolerance.
DEFAULT_TOLERANCE = 0.01


def evaluate_model(model: str | Path, images: str | Path, annotations: str | Path, *, height: int = 368,
                   scales: tuple[float, ...] = (1.0,), flip: bool = False, device: str = "CPU",
                   progress: bool = False) -> dict:
    """Evaluate a model (store name, IR or ``.pth`` checkpoint) on a COCO keypoint set.

    Returns the configuration and :func:`coco.evaluate`'s result (``metrics``, ``images_per_s``,
    counts, ``predictions``), the backend's ``inference_precision``, plus the versions used.
    """
    dataset = coco.load_dataset(images, annotations)  # data errors before the model loads
    backend = open_backend(model, device=device)
    try:
        predictor = predict.Predictor(backend, height, tuple(scales), flip)
        result = coco.evaluate_dataset(predictor, dataset, stride=backend.stride, progress=progress)
    finally:
        backend.close()
    return {"model": str(getattr(backend, "path", model)), "images": str(images), "annotations": str(annotations),
            "height": height, "scales": list(scales), "flip": flip, "device": device,
            "inference_precision": backend.precision, **result, "versions": _versions(backend)}


def _versions(backend: Backend) -> dict:
    versions = {"lwpose": __version__}
    if backend.name.startswith("openvino"):
        import openvino

        versions["openvino"] = openvino.get_version()
    if backend.name.startswith("torch"):
        import torch

        versions["torch"] = torch.__version__
    return versions


def shared_dir() -> Path:
    """What ``${SHARED}`` stands for: ``$LWPOSE_SHARED``; LwposeError when unset."""
    env = os.environ.get(SHARED_ENV)
    if not env:
        raise LwposeError(f"{SHARED_ENV} is not set; a baseline path uses {SHARED}: set it to the shared data directory")
    return Path(env)


@dataclass
class Baseline:
    """A baseline file: its raw JSON (written back as is, paths unexpanded) and its location."""

    path: Path
    data: dict

    def resolve(self, value: str) -> Path:
        """A path of the file with ``${SHARED}`` expanded, relative to the baseline file."""
        if SHARED in value:
            shared = shared_dir()
            if not shared.is_dir():
                raise LwposeError(f"baseline {self.path}: {SHARED} is {shared} ({SHARED_ENV}), which is missing")
            value = value.replace(SHARED, str(shared))
        path = Path(value)
        return path if path.is_absolute() else self.path.parent / path

    @property
    def model(self) -> str | Path:
        model = self.data["model"]
        is_path = "/" in model or Path(model).suffix in MODEL_SUFFIXES
        return self.resolve(model) if is_path else model

    @property
    def metrics(self) -> dict | None:
        return self.data.get("metrics")

    @property
    def tolerance(self) -> float:
        """The allowed AP drop the file gives, else :data:`DEFAULT_TOLERANCE`."""
        return self.data.get("tolerance", DEFAULT_TOLERANCE)

    def evaluate(self, device: str = "CPU", progress: bool = False) -> dict:
        """Run the evaluation the baseline describes."""
        d = self.data
        return evaluate_model(self.model, self.resolve(d["images"]), self.resolve(d["annotations"]),
                              height=d.get("height", 368), scales=tuple(d.get("scales", [1.0])),
                              flip=d.get("flip", False), device=device, progress=progress)

    def update(self, result: dict) -> None:
        """Store a result's metrics, precision and versions in the file; the configuration and the
        tolerance stay as written."""
        self.data["metrics"] = result["metrics"]
        self.data["inference_precision"] = result["inference_precision"]
        self.data["versions"] = result["versions"]
        atomic_write(self.path, json.dumps(self.data, indent=2) + "\n", flag="--baseline")


def load(path: str | Path) -> Baseline:
    path = Path(path)
    data = load_file(path, "baseline", "json")
    if not isinstance(data, dict):
        raise LwposeError(f"baseline {path}: not a JSON object", param="baseline")
    missing = [k for k in ("model", "images", "annotations") if not isinstance(data.get(k), str)]
    if missing:
        raise LwposeError(f"baseline {path}: missing {', '.join(missing)} (paths or a model name)", param="baseline")
    _check_fields(data, path)
    return Baseline(path, data)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_fields(data: dict, path: Path) -> None:
    """LwposeError naming the file and field for a configuration or metric of the wrong type."""
    def bad(field: str, rule: str, value: object) -> LwposeError:
        return LwposeError(f"baseline {path}: {field} must be {rule}, got {json.dumps(value)}", param="baseline")

    height = data.get("height", 368)
    if not isinstance(height, int) or isinstance(height, bool) or height <= 0:
        raise bad("height", "a positive integer", height)
    scales = data.get("scales", [1.0])
    if not isinstance(scales, list) or not scales or not all(_finite(s) and s > 0 for s in scales):
        raise bad("scales", "a non-empty list of positive numbers", scales)
    if not isinstance(data.get("flip", False), bool):
        raise bad("flip", "true or false", data["flip"])
    if "tolerance" in data and not is_tolerance(data["tolerance"]):
        raise bad("tolerance", "a finite number >= 0", data["tolerance"])
    metrics = data.get("metrics")
    if metrics is None:
        return
    if not isinstance(metrics, dict):
        raise bad("metrics", "an object", metrics)
    if not _is_ap(metrics.get(GATED_METRIC)):
        raise bad(f"metrics.{GATED_METRIC}", "a number in [0, 1] (run with --update to measure it)",
                  metrics.get(GATED_METRIC))
    for name, value in metrics.items():
        if value is not None and not _is_ap(value):
            raise bad(f"metrics.{name}", "a number in [0, 1] or null", value)


def is_tolerance(value: object) -> bool:
    """A finite number >= 0 (not NaN, not a bool)."""
    return _finite(value) and value >= 0


def _is_ap(value: object) -> bool:
    return _finite(value) and 0.0 <= value <= 1.0


def compare(expected: dict, measured: dict, tolerance: float) -> tuple[bool, list[str]]:
    """Whether ``measured`` passes against ``expected`` metrics, and a readable report.

    Only :data:`GATED_METRIC` gates: it fails when it is more than ``tolerance`` below the
    baseline, or when either value or the tolerance is not a number in range (NaN fails). A metric
    that is None (no ground truth in that area range) is shown as n/a.
    """
    lines = [f"{'metric':<7}{'baseline':>10}{'now':>10}{'change':>10}"]
    for name in coco.METRICS:
        old, new = expected.get(name), measured.get(name)
        change = f"{new - old:+.4f}" if old is not None and new is not None else ""
        lines.append(f"{name:<7}{_fmt(old):>10}{_fmt(new):>10}{change:>10}")
    old, new = expected.get(GATED_METRIC), measured.get(GATED_METRIC)
    if not _is_ap(old):
        return False, lines + [f"FAIL: the baseline's {GATED_METRIC} is {old!r}, not a number in [0, 1]"]
    if not _is_ap(new):
        return False, lines + [f"FAIL: the measured {GATED_METRIC} is {new!r}, not a number in [0, 1]"]
    if not is_tolerance(tolerance):
        return False, lines + [f"FAIL: the tolerance is {tolerance!r}, not a finite number >= 0"]
    drop = old - new
    if not drop <= tolerance + 1e-9:
        return False, lines + [f"FAIL: {GATED_METRIC} dropped by {drop:.4f} ({old:.4f} → {new:.4f}), "
                               f"more than the tolerance {tolerance:.4f}"]
    verdict = f"PASS: {GATED_METRIC} {new:.4f} vs baseline {old:.4f} (tolerance {tolerance:.4f})"
    if -drop > tolerance:
        verdict += "; it improved, raise the baseline with --update"
    return True, lines + [verdict]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
