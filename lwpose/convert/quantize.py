"""INT8 post-training quantization (NNCF) of an exported model.

The default calibration set, ``calib/`` next to this module, is carried by the package (sources
and licences in its README.md). A dynamic model is calibrated at every height of
:data:`CALIB_HEIGHTS` (the heights users run), a fixed-shape model at its own shape.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from ..errors import LwposeError
from ..preprocess import fit, prepare

#: The default calibration images (vtest.avi scenes at several scales, OpenCV photos of people).
CALIB_DIR = Path(__file__).resolve().parent / "calib"
#: Input heights a dynamic model is calibrated and checked at.
CALIB_HEIGHTS = (256, 368)
PRESETS = ("performance", "mixed")
#: Parts of the network that can be left in floating point (``Recipe.keep_float``).
FLOAT_PARTS = ("first", "heads")


@dataclass(frozen=True)
class Recipe:
    """NNCF settings. ``keep_float``: parts left unquantized (``first``: the first convolution,
    ``heads``: the last stage's two output convolutions)."""

    preset: str = "performance"
    fast_bias_correction: bool = True
    keep_float: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise LwposeError(f"preset {self.preset!r}: choose one of {', '.join(PRESETS)}")
        unknown = set(self.keep_float) - set(FLOAT_PARTS)
        if unknown:
            raise LwposeError(f"keep_float {sorted(unknown)}: choose from {', '.join(FLOAT_PARTS)}")


#: The recipe ``lwpose convert --precision INT8`` uses (chosen by the ablation in docs/convert.md).
DEFAULT_RECIPE = Recipe()


def calibration_tensors(frames: list[np.ndarray], shape: tuple[int, int] | None) -> list[np.ndarray]:
    """(1, H, W, 3) u8 inputs: each BGR frame fitted to ``shape`` (H, W), or for a dynamic model
    (``shape`` None) prepared like the runtime at every height of :data:`CALIB_HEIGHTS`."""
    if shape is not None:
        return [fit(frame, *shape)[None] for frame in frames]
    return [prepare(frame, height)[0] for frame in frames for height in CALIB_HEIGHTS]


def ignored_scope(model: ov.Model, keep_float: Iterable[str]):
    """The ``nncf.IgnoredScope`` of the convolutions named by ``keep_float`` (see :class:`Recipe`)."""
    import nncf

    names = []
    if "first" in keep_float:
        first = next(op for op in model.get_ordered_ops() if op.get_type_name() == "Convolution")
        names.append(first.get_friendly_name())
    if "heads" in keep_float:
        names += _head_convolutions(model)
    return nncf.IgnoredScope(names=names) if names else None


def _head_convolutions(model: ov.Model) -> list[str]:
    """Friendly names of the convolutions producing the model outputs (through bias Adds)."""
    names = []
    for output in model.outputs:
        node = output.get_node().input_value(0).get_node()
        while node.get_type_name() != "Convolution":
            node = node.input_value(0).get_node()
        names.append(node.get_friendly_name())
    return names


def _nncf_options(model: ov.Model, recipe: Recipe, subset_size: int) -> dict:
    import nncf

    preset = nncf.QuantizationPreset.MIXED if recipe.preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE
    return {"preset": preset, "subset_size": subset_size, "fast_bias_correction": recipe.fast_bias_correction,
            "ignored_scope": ignored_scope(model, recipe.keep_float)}


def quantize(model: ov.Model, tensors: list[np.ndarray], recipe: Recipe = DEFAULT_RECIPE) -> ov.Model:
    """The INT8 model of ``model`` calibrated on its input ``tensors`` (see :func:`calibration_tensors`)."""
    import nncf

    return nncf.quantize(model, nncf.Dataset(tensors), **_nncf_options(model, recipe, len(tensors)))


@dataclass
class Validation:
    """What NNCF's accuracy control measures a quantized model on (``lwpose.eval.quantized.coco_validation``
    builds it for a COCO-format folder): the validation items, each item's model input, and
    ``validate(compiled_model, items)`` → (metric, per-item values or None)."""

    items: list
    model_input: Callable[[Any], np.ndarray]
    validate: Callable[[Any, Iterable], tuple[float, Any]]


def quantize_with_accuracy_control(model: ov.Model, tensors: list[np.ndarray], validation: Validation,
                                   max_drop: float, recipe: Recipe = DEFAULT_RECIPE) -> ov.Model:
    """:func:`quantize`, then NNCF's accuracy control: quantizers are reverted to float, most harmful
    first, until the validation metric drops by at most ``max_drop`` from the float model's."""
    import nncf

    return nncf.quantize_with_accuracy_control(
        model, nncf.Dataset(tensors), nncf.Dataset(validation.items, validation.model_input), validation.validate,
        max_drop=max_drop, **_nncf_options(model, recipe, len(tensors)))


def check_heights(shape: tuple[int, int] | None) -> tuple[int, ...]:
    """Input heights a model is checked at: its own, or :data:`CALIB_HEIGHTS` for a dynamic model."""
    return (shape[0],) if shape else CALIB_HEIGHTS
