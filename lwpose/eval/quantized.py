"""Accuracy of quantized models: the FP32-vs-INT8 check of ``lwpose convert --check`` and the COCO
validation NNCF's accuracy control quantizes against (``--accuracy-control``).

Both IRs run through the same backend code in the same inference precision
(``LWPOSE_INFERENCE_PRECISION``), so the AP drop and the speed ratio compare like with like.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.openvino import OpenVINOBackend
from ..media import read_image
from ..preprocess import Maps, fit, prepare
from .coco import coco_folder, dataset_image, evaluate_dataset, load_dataset
from .predict import Predictor


@dataclass
class CheckResult:
    """FP32 vs INT8 IR on one COCO-format set: AP per input height, infer-only frames/s."""

    ap_fp32: dict[int, float]
    ap_int8: dict[int, float]
    fps_fp32: float
    fps_int8: float
    precision: str

    @property
    def drop(self) -> float:
        """The largest AP drop over the heights (negative: INT8 scores higher everywhere)."""
        return max(self.ap_fp32[h] - self.ap_int8[h] for h in self.ap_fp32)

    @property
    def speedup(self) -> float:
        return self.fps_int8 / self.fps_fp32


def check_int8(fp32_dir: Path, int8_dir: Path, data_dir: Path, heights: tuple[int, ...],
               seconds: float = 1.0, rounds: int = 3) -> CheckResult:
    """COCO AP of both model directories at every height, and their infer-only throughput
    (async queue, throughput hint) on the first image at ``heights[0]``, alternating ``rounds``
    times for ``seconds`` each and keeping each model's best, so both see the same machine load."""
    dataset = load_dataset(*coco_folder(data_dir, "check"))
    backends = [OpenVINOBackend(d, mode="throughput") for d in (fp32_dir, int8_dir)]
    try:
        aps = [{h: evaluate_dataset(Predictor(b, height=h), dataset, stride=b.stride)["metrics"]["AP"] or 0.0
                for h in heights} for b in backends]
        tensor = prepare(read_image(dataset.path(dataset.images[0])), heights[0], backends[0].stride)[0]
        best = [0.0, 0.0]
        for _ in range(rounds):
            for i, backend in enumerate(backends):
                best[i] = max(best[i], _throughput(backend, tensor, seconds))
        return CheckResult(aps[0], aps[1], best[0], best[1], backends[1].precision)
    finally:
        for backend in backends:
            backend.close()


def _throughput(backend: OpenVINOBackend, tensor: np.ndarray, seconds: float) -> float:
    """Inferences per second with the backend's requests all in flight, outputs dropped."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        backend.submit(tensor, lambda outputs, error: None)
        count += 1
    backend.wait()
    return count / (time.perf_counter() - start)


def coco_validation(data_dir: Path, heights: tuple[int, ...], shape: tuple[int, int] | None
                    ) -> tuple[list[dict], Callable[[dict], np.ndarray], Callable[[Any, Iterable[dict]], tuple[float, None]]]:
    """What NNCF's accuracy control needs for a COCO-format folder: the validation items (image
    entries), each item's model input, and ``validate(compiled_model, items)`` → (mean COCO AP over
    ``heights``, None). ``shape`` (H, W) for a fixed-shape model, None for a dynamic one."""
    dataset = load_dataset(*coco_folder(data_dir, "accuracy_control"))

    def model_input(image: dict) -> np.ndarray:
        return _network_input(dataset_image(dataset.path(image), image), heights[0], shape)[0]

    def validate(compiled: Any, items: Iterable[dict]) -> tuple[float, None]:
        subset = dataclasses.replace(dataset, images=list(items))
        aps = [evaluate_dataset(_CompiledPredictor(compiled, height, shape), subset)["metrics"]["AP"] or 0.0
               for height in heights]
        return float(np.mean(aps)), None

    return dataset.images, model_input, validate


class _CompiledPredictor:
    """BGR frame → :class:`Maps` with an OpenVINO compiled model made by ``lwpose convert``
    (outputs named ``heatmaps`` and ``pafs``), as NNCF hands it to the validation function."""

    def __init__(self, compiled: Any, height: int, shape: tuple[int, int] | None) -> None:
        self.compiled, self.height, self.shape = compiled, height, shape

    def __call__(self, frame: np.ndarray) -> Maps:
        tensor, scale = _network_input(frame, self.height, self.shape)
        result = self.compiled(tensor)
        return Maps(np.asarray(result["heatmaps"])[0], np.asarray(result["pafs"])[0], scale)


def _network_input(frame: np.ndarray, height: int, shape: tuple[int, int] | None) -> tuple[np.ndarray, float]:
    """(1, H, W, 3) input of a fixed-shape model (``shape`` (H, W): the frame fitted to it) or of a
    dynamic one (prepared at ``height``), and the scale from image to network-input pixels."""
    if shape:
        return fit(frame, *shape)[None], min(s / f for s, f in zip(shape, frame.shape))
    return prepare(frame, height)
