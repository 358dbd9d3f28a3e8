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
from ..fsutil import sigterm_as_interrupt
from ..model import PoseNet
from ..pose import KEYPOINTS_18
from ..preprocess import INPUT_MEAN, INPUT_SCALE, STRIDE
from ..store import RT_INFO_KEY, sha256
from .quantize import DEFAULT_RECIPE, Recipe, Validation, calibration_tensors, quantize, quantize_with_accuracy_control

PRECISIONS = ("FP32", "FP16", "INT8")
DEFAULT_SHAPE = (256, 456)
METADATA = "lwpose.json"
#: The files an export writes; other files in an existing model directory are kept.
WRITTEN = ("model.xml", "model.bin", METADATA)


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
    ``lwpose.json``); its files other than :data:`WRITTEN` are carried over (hard links). On any
    error, Ctrl-C or SIGTERM the temporary directory is removed and ``out_dir`` is untouched.
    """
    given, out_dir = out_dir, Path(out_dir).resolve()
    cwd = Path.cwd().resolve()
    if out_dir == cwd or out_dir in cwd.parents:
        raise LwposeError(f"-o {given} is the working directory (or holds it), which would be replaced as a whole; "
                          "name a directory below it, e.g. -o ./model")
    if out_dir.exists() and not (out_dir.is_dir() and (not any(out_dir.iterdir()) or (out_dir / METADATA).is_file())):
        raise LwposeError(f"output {out_dir} exists and is not a model directory; choose another -o")
    with sigterm_as_interrupt():
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
            if out_dir.exists():
                _carry_over(out_dir, staging)
            _swap(staging, out_dir)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise LwposeError(f"cannot write output directory {out_dir}: {exc.strerror or exc}") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def _carry_over(old: Path, staging: Path) -> None:
    """Hard-link (or copy) the entries of ``old`` that the export did not write into ``staging``."""
    for entry in old.iterdir():
        target = staging / entry.name
        if entry.name in WRITTEN or target.exists():
            continue
        if entry.is_symlink():
            target.symlink_to(os.readlink(entry))
        elif entry.is_dir():
            shutil.copytree(entry, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, target)


def _link_or_copy(src: str | Path, dst: str | Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _swap(staging: Path, out_dir: Path) -> None:
    """Put ``staging`` in place of ``out_dir`` (two renames; the old one is restored on failure)."""
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    old = out_dir.with_name(f"{staging.name}.old")
    out_dir.rename(old)
    try:
        staging.rename(out_dir)
    except BaseException:
        old.rename(out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def export(net: PoseNet, out_dir: Path, *, source: Path, precision: str = "FP32",
           shape: tuple[int, int] | None = DEFAULT_SHAPE, calibration: list[np.ndarray] | None = None,
           name: str | None = None, recipe: Recipe = DEFAULT_RECIPE, validation: Validation | None = None,
           max_drop: float = 0.01) -> Path:
    """Write the model directory ``out_dir`` for ``net`` and return it.

    ``shape`` (H, W) or None for dynamic H and W. INT8 needs ``calibration`` (BGR frames, see
    ``quantize.calibration_tensors``) and uses ``recipe``; with ``validation`` (NNCF accuracy
    control) quantizers are reverted until its metric drops by at most ``max_drop``.
    """
    if precision not in PRECISIONS:
        raise LwposeError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}", param="precision")
    if precision == "INT8" and not calibration:
        raise LwposeError("precision INT8 needs calibration frames", param="precision")
    if shape is not None and (shape[0] % STRIDE or shape[1] % STRIDE or min(shape) <= 0):
        raise LwposeError(f"shape {shape[0]}x{shape[1]}: height and width must be positive multiples of {STRIDE}", param="shape")
    out_dir = Path(out_dir)
    with staged_directory(out_dir) as staging:
        model = to_openvino(net, shape)
        if precision == "INT8":
            tensors = calibration_tensors(calibration, shape)
            if validation is None:
                model = quantize(model, tensors, recipe)
            else:
                model = quantize_with_accuracy_control(model, tensors, validation, max_drop, recipe)
        meta = metadata(net, name or out_dir.name, shape, precision, source)
        model.set_rt_info(json.dumps(meta), [RT_INFO_KEY])  # a bare .xml describes itself too
        ov.save_model(model, staging / "model.xml", compress_to_fp16=precision == "FP16")
        (staging / METADATA).write_text(json.dumps(meta, indent=2) + "\n")
    return out_dir
