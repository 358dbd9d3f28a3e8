"""INT8 post-training quantization (NNCF) of an exported model, and the check of its accuracy.

The default calibration set, ``calib/`` next to this module, is carried by the package (sources
and licences in its README.md). A dynamic model is calibrated at every height of
:data:`CALIB_HEIGHTS` (the heights users run), a fixed-shape model at its own shape.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openvino as ov

from ..backends import precision
from ..errors import LwposeError
from ..model import STRIDE
from ..runtime import Maps, prepare
from .frames import fit

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
    return [prepare(frame, height, STRIDE)[0] for frame in frames for height in CALIB_HEIGHTS]


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


def quantize_with_accuracy_control(model: ov.Model, tensors: list[np.ndarray], data_dir: Path,
                                   shape: tuple[int, int] | None, max_drop: float,
                                   recipe: Recipe = DEFAULT_RECIPE) -> ov.Model:
    """:func:`quantize`, then NNCF's accuracy control: quantizers are reverted to float, most harmful
    first, until the mean COCO AP over the check heights on ``data_dir`` (a COCO-format folder)
    drops by at most ``max_drop`` from the float model's."""
    import nncf

    from ..eval.coco import evaluate_dataset, load_dataset

    images_dir, annotations = coco_folder(data_dir, "--accuracy-control")
    dataset = load_dataset(images_dir, annotations)
    heights = check_heights(shape)

    def validate(compiled: ov.CompiledModel, items: Iterable[dict]) -> tuple[float, None]:
        subset = dataclasses.replace(dataset, images=list(items))
        aps = [evaluate_dataset(_CompiledPredictor(compiled, height, shape), subset)["metrics"]["AP"] or 0.0
               for height in heights]
        return float(np.mean(aps)), None

    def model_input(image: dict) -> np.ndarray:
        from ..eval.coco import read_image

        frame = read_image(dataset.path(image), image)
        return fit(frame, *shape)[None] if shape else prepare(frame, heights[0], STRIDE)[0]

    return nncf.quantize_with_accuracy_control(
        model, nncf.Dataset(tensors), nncf.Dataset(dataset.images, model_input), validate, max_drop=max_drop,
        **_nncf_options(model, recipe, len(tensors)))


class _CompiledPredictor:
    """BGR frame → :class:`Maps` with a compiled model of ours (outputs ``heatmaps``, ``pafs``)."""

    def __init__(self, compiled: ov.CompiledModel, height: int, shape: tuple[int, int] | None) -> None:
        self.compiled, self.height, self.shape = compiled, height, shape

    def __call__(self, frame: np.ndarray) -> Maps:
        if self.shape:
            tensor, scale = fit(frame, *self.shape)[None], min(s / f for s, f in zip(self.shape, frame.shape))
        else:
            tensor, scale = prepare(frame, self.height, STRIDE)
        result = self.compiled(tensor)
        return Maps(np.asarray(result["heatmaps"])[0], np.asarray(result["pafs"])[0], scale)


def coco_folder(data_dir: Path, flag: str) -> tuple[Path, Path]:
    """(images folder, annotations json) of a COCO-format folder: ``images/`` (or the folder
    itself) and exactly one ``*.json``."""
    from ..media import image_files

    data_dir = Path(data_dir)
    folder = data_dir / "images" if (data_dir / "images").is_dir() else data_dir
    if not folder.is_dir() or not image_files(folder):
        raise LwposeError(f"{flag} {data_dir}: no images in {folder}")
    annotations = sorted(data_dir.glob("*.json"))
    if len(annotations) != 1:
        raise LwposeError(f"{flag} {data_dir}: expected one COCO annotations *.json, found {len(annotations)}")
    return folder, annotations[0]


def check_heights(shape: tuple[int, int] | None) -> tuple[int, ...]:
    """Input heights a model is checked at: its own, or :data:`CALIB_HEIGHTS` for a dynamic model."""
    return (shape[0],) if shape else CALIB_HEIGHTS


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
    """COCO AP of both model directories at every height (``lwpose.eval``, runtime grouping), and
    their infer-only throughput (async queue, throughput hint) on the first image at ``heights[0]``,
    alternating ``rounds`` times for ``seconds`` each and keeping each model's best, so both see
    the same machine load. Both run in the same inference precision (``LWPOSE_INFERENCE_PRECISION``)."""
    from ..convert.compare import coco_ap
    from ..eval.coco import read_image
    from ..eval.predict import IRNetwork
    from ..media import image_files
    from ..runtime import PoseModel

    images_dir, annotations = coco_folder(data_dir, "--check")
    aps = [{h: coco_ap(IRNetwork(d), images_dir, annotations, h) for h in heights} for d in (fp32_dir, int8_dir)]
    frame = read_image(image_files(images_dir)[0])
    models = [PoseModel(d, height=heights[0], mode="throughput") for d in (fp32_dir, int8_dir)]
    tensor = models[0].prepare(frame)[0]
    compiled = [m.compile(tensor.shape[1:3]) for m in models]
    best = [0.0, 0.0]
    for _ in range(rounds):
        for i, c in enumerate(compiled):
            best[i] = max(best[i], _throughput(c, tensor, seconds))
    return CheckResult(aps[0], aps[1], best[0], best[1], precision.actual(compiled[1]))


def _throughput(compiled: ov.CompiledModel, tensor: np.ndarray, seconds: float) -> float:
    """Inferences per second of ``compiled`` on ``tensor`` with all its optimal requests in flight."""
    queue = ov.AsyncInferQueue(compiled)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        queue.start_async({0: tensor})
        count += 1
    queue.wait_all()
    return count / (time.perf_counter() - start)
