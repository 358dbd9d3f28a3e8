"""Accuracy baselines: a JSON file naming an evaluation (model, data, height, TTA) and the
metrics it reached; ``lwpose check`` re-runs it and fails when AP dropped.

A baseline file::

    {"description": "...", "model": "${SHARED}/models/.../human-pose-estimation-0001.xml",
     "images": "${SHARED}/data/coco-mini/images",
     "annotations": "${SHARED}/data/coco-mini/person_keypoints_mini.json",
     "height": 368, "scales": [1.0], "flip": false, "tolerance": 0.01, "metrics": {"AP": 0.8162, ...}}

``${SHARED}`` is ``$LWPOSE_SHARED`` or else the ``shared`` directory beside the repository that
holds the baseline (``<repo>/baselines/NAME.json`` → ``<repo>/../shared``); other relative paths
are relative to the baseline file. ``model`` is a path (it has a ``/`` or ends in ``.xml``,
``.pth``, ``.pt``) or a model store name. ``tolerance`` (optional, default
:data:`DEFAULT_TOLERANCE`) is the AP drop the check allows; docs/accuracy.md says how each was
set from the spread across inference precisions. ``lwpose eval --json`` writes files of the
same shape. A NaN anywhere it is compared never passes: NaN tolerances and metrics are refused.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import LwposeError
from . import coco, predict

SHARED = "${SHARED}"
#: The metric the check gates on; the others are reported.
GATED_METRIC = "AP"
#: The AP drop allowed when neither the baseline nor the command line gives a tolerance.
DEFAULT_TOLERANCE = 0.01
MODEL_SUFFIXES = (".xml", *predict.CHECKPOINT_SUFFIXES)


def evaluate_model(model: str | Path, images: str | Path, annotations: str | Path, *, height: int = 368,
                   scales: tuple[float, ...] = (1.0,), flip: bool = False, device: str = "CPU",
                   progress: bool = False) -> dict:
    """Evaluate a model (store name, IR or ``.pth`` checkpoint) on a COCO keypoint set.

    Returns the configuration and :func:`coco.evaluate`'s result (``metrics``, ``images_per_s``,
    counts, ``predictions``), plus the versions used.
    """
    dataset = coco.load_dataset(images, annotations)  # data errors before the model loads
    network = predict.network(model, device)
    predictor = predict.Predictor(network, height, tuple(scales), flip)
    result = coco.evaluate_dataset(predictor, dataset, stride=network.stride, progress=progress)
    return {"model": network.name, "images": str(images), "annotations": str(annotations), "height": height,
            "scales": list(scales), "flip": flip, "device": device, "inference_precision": _precision(network),
            **result, "versions": _versions(network)}


def _precision(network: predict.Network) -> str:
    """The precision the network's float layers ran in: OpenVINO's actual one, f32 for torch."""
    return network.model.inference_precision if isinstance(network, predict.IRNetwork) else "f32"


def _versions(network: predict.Network) -> dict:
    import openvino

    versions = {"lwpose": __version__, "openvino": openvino.get_version()}
    if isinstance(network, predict.TorchNetwork):
        import torch

        versions["torch"] = torch.__version__
    return versions


def shared_dir(baseline: Path) -> Path:
    """What ``${SHARED}`` stands for in ``baseline``."""
    env = os.environ.get("LWPOSE_SHARED")
    return Path(env) if env else baseline.resolve().parent.parent.parent / "shared"


@dataclass
class Baseline:
    """A baseline file: its raw JSON (written back as is, paths unexpanded) and its location."""

    path: Path
    data: dict

    def resolve(self, value: str) -> Path:
        """A path of the file with ``${SHARED}`` expanded, relative to the baseline file."""
        if SHARED in value:
            shared = shared_dir(self.path)
            if not shared.is_dir():
                raise LwposeError(f"baseline {self.path}: {SHARED} is {shared}, which is missing "
                                  "(set LWPOSE_SHARED to the shared data directory)")
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
        self.path.write_text(json.dumps(self.data, indent=2) + "\n")


def load(path: str | Path) -> Baseline:
    path = Path(path)
    if not path.is_file():
        raise LwposeError(f"--baseline {path}: file not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LwposeError(f"--baseline {path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise LwposeError(f"--baseline {path}: not a JSON object")
    missing = [k for k in ("model", "images", "annotations") if not isinstance(data.get(k), str)]
    if missing:
        raise LwposeError(f"--baseline {path}: missing {', '.join(missing)} (paths or a model name)")
    if "tolerance" in data and not is_tolerance(data["tolerance"]):
        raise LwposeError(f"--baseline {path}: tolerance must be a finite number >= 0, not {data['tolerance']!r}")
    metrics = data.get("metrics")
    if metrics is not None and not (isinstance(metrics, dict) and _is_ap(metrics.get(GATED_METRIC))):
        raise LwposeError(f"--baseline {path}: metrics.{GATED_METRIC} must be a number in [0, 1] "
                          "(run with --update to measure it)")
    return Baseline(path, data)


def is_tolerance(value: object) -> bool:
    """A finite number >= 0 (not NaN, not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _is_ap(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0


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
