"""Torch network vs OpenVINO IR on the same images: heatmap and PAF differences."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import torch

from ..backends.precision import with_hint
from ..errors import LwposeError
from ..model import NUM_HEATMAPS, NUM_PAFS, STRIDE, PoseNet, normalise
from ..runtime import input_shape
from .export import DEFAULT_SHAPE
from .frames import fit

MapPair = tuple[np.ndarray, np.ndarray]


def torch_maps(net: PoseNet, image: np.ndarray) -> MapPair:
    """(heatmaps, pafs) of the last stage for a u8 BGR HxWx3 ``image``, as (1, C, h, w) float32."""
    x = normalise(torch.from_numpy(image).permute(2, 0, 1)[None])
    with torch.no_grad():
        outputs = net(x)
    return outputs[-2].numpy(), outputs[-1].numpy()


class IrRunner:
    """Runs an IR of this family on u8 BGR images: ours (u8 NHWC ``image``) or Open Model Zoo's
    (f32 NCHW raw BGR). Outputs are told apart by channel count (19 heatmaps, 38 PAFs).

    Float layers run in ``precision``; by default in $LWPOSE_INFERENCE_PRECISION when set, else in
    f32 (not the CPU plugin's own default: bf16 on CPUs with AVX512-BF16/AMX changes the maps by
    ~1e-2 and would hide conversion errors).
    """

    def __init__(self, xml_path: Path, precision: str | None = None) -> None:
        hint = {"INFERENCE_PRECISION_HINT": precision} if precision else with_hint({"INFERENCE_PRECISION_HINT": "f32"})
        self.compiled = ov.Core().compile_model(str(xml_path), "CPU", hint)
        dims = [d.get_length() if d.is_static else None for d in self.compiled.input(0).get_partial_shape()]
        self.nhwc = dims[3] == 3
        self.dtype = self.compiled.input(0).get_element_type().to_dtype()
        height, width = dims[1:3] if self.nhwc else dims[2:4]
        self.static = (height, width) if height and width else None
        by_channels = {o.get_partial_shape()[1].get_length(): o for o in self.compiled.outputs}
        if NUM_HEATMAPS not in by_channels or NUM_PAFS not in by_channels:
            raise LwposeError(f"{xml_path} has no {NUM_HEATMAPS}-channel heatmap and {NUM_PAFS}-channel PAF outputs")
        self.heatmaps, self.pafs = by_channels[NUM_HEATMAPS], by_channels[NUM_PAFS]

    def input_shape(self, image: np.ndarray, height: int = DEFAULT_SHAPE[0]) -> tuple[int, int]:
        """The IR's (H, W), or for a dynamic IR ``height`` and a width fitting the image's aspect."""
        return self.static or input_shape(*image.shape[:2], height, STRIDE)

    def __call__(self, image: np.ndarray) -> MapPair:
        """(heatmaps, pafs) for a u8 BGR image already fitted to ``input_shape``."""
        x = image[None] if self.nhwc else image.transpose(2, 0, 1)[None]
        result = self.compiled(np.ascontiguousarray(x, dtype=self.dtype))
        return np.asarray(result[self.heatmaps]), np.asarray(result[self.pafs])


def compare(net: PoseNet, runner: IrRunner, images: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """Max abs difference and correlation (pooled over ``images``) of torch vs IR maps."""
    pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"heatmaps": [], "pafs": []}
    for image in images:
        fitted = fit(image, *runner.input_shape(image))
        for name, a, b in zip(pairs, torch_maps(net, fitted), runner(fitted)):
            pairs[name].append((a, b))
    stats = {}
    for name, maps in pairs.items():
        a = np.concatenate([m[0].ravel() for m in maps])
        b = np.concatenate([m[1].ravel() for m in maps])
        stats[name] = {"max_abs_diff": float(np.abs(a - b).max()), "correlation": float(np.corrcoef(a, b)[0, 1])}
    return stats


def coco_ap(network, images_dir: Path, annotations: Path, height: int) -> float:
    """COCO keypoint AP of an ``lwpose.eval.predict.Network`` (runtime preprocessing and grouping)."""
    from ..eval.coco import evaluate
    from ..eval.predict import Predictor

    return evaluate(Predictor(network, height=height), images_dir, annotations)["metrics"]["AP"]
