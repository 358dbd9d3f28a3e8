"""Torch network → OpenVINO model directory (``model.xml``, ``model.bin``, ``lwpose.json``).

The IR takes ``image``: u8, NHWC, BGR; the normalisation ``(x - 128) / 256`` is in the graph
(PrePostProcessor). Only the last stage is kept; its outputs are named ``heatmaps`` and ``pafs``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator

import numpy as np
import openvino as ov
import torch
from torch import nn

from .. import __version__
from ..errors import LwposeError
from ..model import INPUT_MEAN, INPUT_SCALE, STRIDE, PoseNet
from ..pose import KEYPOINTS_18
from ..store import sha256
from .quantize import DEFAULT_RECIPE, Recipe, calibration_tensors, quantize, quantize_with_accuracy_control

PRECISIONS = ("FP32", "FP16", "INT8")
DEFAULT_SHAPE = (256, 456)
METADATA = "lwpose.json"


class LastStage(nn.Module):
    """The network with only the final (heatmaps, pafs) as outputs."""

    def __init__(self, net: PoseNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = self.net(x)
        return outputs[-2], outputs[-1]


def to_openvino(net: PoseNet, shape: tuple[int, int] | None) -> ov.Model:
    """The OpenVINO model of ``net`` at input ``shape`` (H, W), or dynamic H and W if None."""
    height, width = shape or DEFAULT_SHAPE
    input_shape = ov.PartialShape([1, 3, -1, -1] if shape is None else [1, 3, height, width])
    with torch.no_grad():
        model = ov.convert_model(LastStage(net.eval()), example_input=torch.zeros(1, 3, height, width),
                                 input=[(input_shape, ov.Type.f32)])
    model.inputs[0].get_tensor().set_names({"image"})
    model.get_parameters()[0].set_friendly_name("image")
    for output, name in zip(model.outputs, ("heatmaps", "pafs")):
        output.get_tensor().set_names({name})
        output.get_node().set_friendly_name(name)
    ppp = ov.preprocess.PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32).mean(INPUT_MEAN).scale(INPUT_SCALE)
    return ppp.build()


def metadata(net: PoseNet, name: str, shape: tuple[int, int] | None, precision: str, source: Path) -> dict:
    """The ``lwpose.json`` contents (read by ``lwpose.store``)."""
    return {
        "format": 1,
        "name": name,
        "architecture": net.arch,
        "num_refinement_stages": net.num_refinement_stages,
        "keypoints": list(KEYPOINTS_18),
        "stride": STRIDE,
        "input": {"name": "image", "layout": "NHWC", "element_type": "u8", "color": "BGR",
                  "normalisation_in_graph": True, "mean": INPUT_MEAN, "scale": INPUT_SCALE,
                  "shape": [1, shape[0], shape[1], 3] if shape else "dynamic"},
        "outputs": {"heatmaps": "heatmaps", "pafs": "pafs"},
        "precision": precision,
        "source": {"path": str(Path(source).resolve()), "sha256": sha256(source)},
        "lwpose_version": __version__,
    }


@contextmanager
def staged_directory(out_dir: Path) -> Iterator[Path]:
    """A temporary directory next to ``out_dir`` that replaces it when the block succeeds.

    An existing ``out_dir`` is replaced only if it is empty or a model directory (has
    ``lwpose.json``); on any error the temporary directory is removed and ``out_dir`` is untouched.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not (out_dir.is_dir() and (not any(out_dir.iterdir()) or (out_dir / METADATA).is_file())):
        raise LwposeError(f"output {out_dir} exists and is not a model directory; choose another -o")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
        umask = os.umask(0o022)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; the model directory is not
    except OSError as exc:
        raise LwposeError(f"cannot write output directory {out_dir}: {exc.strerror or exc}") from None
    try:
        yield staging
        old = out_dir.with_name(f"{staging.name}.old")
        if out_dir.exists():
            out_dir.rename(old)
        staging.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def export(net: PoseNet, out_dir: Path, *, source: Path, precision: str = "FP32",
           shape: tuple[int, int] | None = DEFAULT_SHAPE, calibration: list[np.ndarray] | None = None,
           name: str | None = None, recipe: Recipe = DEFAULT_RECIPE, accuracy_control: Path | None = None,
           max_drop: float = 0.01) -> Path:
    """Write the model directory ``out_dir`` for ``net`` and return it.

    ``shape`` (H, W) or None for dynamic H and W. INT8 needs ``calibration`` (BGR frames, see
    ``quantize.calibration_tensors``) and uses ``recipe``; with ``accuracy_control`` (a COCO-format
    folder) quantizers are reverted until the AP there drops by at most ``max_drop``.
    """
    if precision not in PRECISIONS:
        raise LwposeError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "INT8" and not calibration:
        raise LwposeError("--precision INT8 needs calibration frames (--calib)")
    if shape is not None and (shape[0] % STRIDE or shape[1] % STRIDE or min(shape) <= 0):
        raise LwposeError(f"--shape {shape[0]}x{shape[1]}: height and width must be positive multiples of {STRIDE}")
    out_dir = Path(out_dir)
    with staged_directory(out_dir) as staging:
        model = to_openvino(net, shape)
        if precision == "INT8":
            tensors = calibration_tensors(calibration, shape)
            if accuracy_control is None:
                model = quantize(model, tensors, recipe)
            else:
                model = quantize_with_accuracy_control(model, tensors, accuracy_control, shape, max_drop, recipe)
        ov.save_model(model, staging / "model.xml", compress_to_fp16=precision == "FP16")
        meta = metadata(net, name or out_dir.name, shape, precision, source)
        (staging / METADATA).write_text(json.dumps(meta, indent=2) + "\n")
    return out_dir
