"""The runtime model: an OpenVINO IR of the Lightweight OpenPose family, ready for u8 BGR frames.

Every entry point (``lwpose infer``, ``run``, ``eval``, the ROS node, the Python API) goes
through :class:`PoseModel`, so preprocessing and grouping exist once. The IR is wrapped with a
PrePostProcessor so that it takes u8 NHWC BGR frames as OpenCV gives them; normalisation happens
inside the graph. The input height is fixed per model instance and the width follows each
frame's aspect ratio (rounded up to the stride); one compiled model is cached per input shape.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import openvino as ov

from . import decode, store
from .backends import precision
from .errors import LwposeError
from .pose import Person, people_from_arrays

#: Pixel value of the padding: 128 is zero after the (x - 128) / 256 normalisation.
PAD_VALUE = 128
MODES = {"latency": "LATENCY", "throughput": "THROUGHPUT"}


@dataclass
class Maps:
    """Network outputs for one frame: heatmaps (19, H/8, W/8), PAFs (38, H/8, W/8), and the
    scale from image pixels to network-input pixels."""

    heatmaps: np.ndarray
    pafs: np.ndarray
    scale: float


class PoseModel:
    """A pose network on an OpenVINO device.

    Args:
        model: a store name (``human-pose-estimation-0001``), a model directory or an ``.xml``.
        height: network input height in pixels; the width follows the frame's aspect ratio.
        device: OpenVINO device name.
        mode: ``latency`` (one request at a time, all cores) or ``throughput`` (several streams).
        nireq: number of infer requests the hint should plan for (0 = OpenVINO's choice).
        threads: inference threads (0 = all cores).
    """

    def __init__(self, model: str | Path = store.DEFAULT_MODEL, *, height: int = 256, device: str = "CPU",
                 mode: str = "latency", nireq: int = 0, threads: int = 0, core: ov.Core | None = None) -> None:
        if mode not in MODES:
            raise LwposeError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.xml = store.resolve(model)
        self.meta = store.metadata(self.xml)
        self.stride = int(self.meta.get("stride", 8))
        if height < self.stride or height % self.stride:
            raise LwposeError(f"--height must be a positive multiple of {self.stride}, not {height}")
        self.height = height
        self.device = device
        self.core = core or ov.Core()
        self.config: dict[str, str] = precision.with_hint({"PERFORMANCE_HINT": MODES[mode]})
        if nireq:
            self.config["PERFORMANCE_HINT_NUM_REQUESTS"] = str(nireq)
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = str(threads)
        try:
            self._model = self._with_preprocessing(self.core.read_model(self.xml))
        except RuntimeError as exc:
            raise LwposeError(f"cannot read model {self.xml}: {str(exc).splitlines()[0]}") from None
        self._compiled: dict[tuple[int, int], ov.CompiledModel] = {}
        self._lock = threading.Lock()
        # positions of the heatmaps and PAFs among the outputs (the same in every compiled model)
        self._output_index = self._output_positions(self._model)

    @property
    def inference_precision(self) -> str:
        """The precision the float layers of the compiled models run in (``f32``, ``bf16``…); ``?``
        before the first compile."""
        with self._lock:
            return next((precision.actual(c) for c in self._compiled.values()), "?")

    def _output_positions(self, model: ov.Model) -> tuple[int, int]:
        """Positions of the heatmaps and PAF outputs named by the metadata."""
        ports = [out.get_names() for out in model.outputs]
        positions = []
        for role in ("heatmaps", "pafs"):
            name = self.meta["outputs"][role]
            found = [i for i, names in enumerate(ports) if name in names]
            if not found:
                raise LwposeError(f"{self.xml}: output {name!r} ({role}) not found; not a Lightweight OpenPose IR?")
            positions.append(found[0])
        return positions[0], positions[1]

    def _with_preprocessing(self, model: ov.Model) -> ov.Model:
        """Make the model take u8 NHWC BGR frames, whatever its own input is."""
        spec = self.meta["input"]
        if spec["layout"] == "NHWC" and spec["element_type"] == "u8" and spec["normalisation_in_graph"]:
            return model
        ppp = ov.preprocess.PrePostProcessor(model)
        inp = ppp.input()
        inp.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
        inp.model().set_layout(ov.Layout(spec["layout"]))
        inp.preprocess().convert_element_type(ov.Type.f32)
        if not spec["normalisation_in_graph"]:
            inp.preprocess().mean(float(spec["mean"])).scale(float(spec["scale"]))
        return ppp.build()

    def input_shape(self, frame_height: int, frame_width: int) -> tuple[int, int]:
        """Network input (height, width) for a frame size: fixed height, width to the aspect ratio."""
        return input_shape(frame_height, frame_width, self.height, self.stride)

    def prepare(self, frame: np.ndarray, shape: tuple[int, int] | None = None) -> tuple[np.ndarray, float]:
        """The (1, H, W, 3) u8 input tensor of a frame and its scale (see :func:`prepare`)."""
        return prepare(frame, self.height, self.stride, shape)

    def compile(self, shape: tuple[int, int]) -> ov.CompiledModel:
        """The compiled model for an input (height, width), compiled once and cached."""
        with self._lock:
            compiled = self._compiled.get(shape)
            if compiled is None:
                model = self._model.clone()
                model.reshape({model.input().get_any_name(): ov.PartialShape([1, shape[0], shape[1], 3])})
                try:
                    compiled = self.core.compile_model(model, self.device, self.config)
                except RuntimeError as exc:
                    raise LwposeError(f"cannot compile {self.xml} for device {self.device!r}: "
                                      f"{str(exc).splitlines()[0]}") from None
                self._compiled[shape] = compiled
            return compiled

    def maps(self, outputs: Mapping | ov.InferRequest, scale: float) -> Maps:
        """Pick heatmaps and PAFs out of an inference result (an ``OVDict`` or request results),
        or out of a finished infer request without copying (valid until the request runs again)."""
        i_hm, i_paf = self._output_index
        if isinstance(outputs, Mapping):
            hm, paf = outputs[i_hm], outputs[i_paf]
        else:
            hm, paf = outputs.get_output_tensor(i_hm).data, outputs.get_output_tensor(i_paf).data
        return Maps(np.asarray(hm)[0], np.asarray(paf)[0], scale)

    def infer(self, frame: np.ndarray) -> Maps:
        """Synchronous inference on one frame."""
        tensor, scale = self.prepare(frame)
        compiled = self.compile(tensor.shape[1:3])
        return self.maps(compiled(tensor), scale)

    def people(self, maps: Maps) -> list[Person]:
        """Group the maps into people, in image pixels."""
        keypoints, scores = decode.group(maps.heatmaps, maps.pafs, stride=self.stride)
        return people_from_arrays(keypoints, scores, maps.scale)

    def __call__(self, frame: np.ndarray) -> list[Person]:
        return self.people(self.infer(frame))


def input_shape(frame_height: int, frame_width: int, height: int, stride: int) -> tuple[int, int]:
    """Network input (height, width) for a frame size: ``height``, and the width that keeps the
    aspect ratio, rounded up to the stride."""
    width = frame_width * height / frame_height
    return height, max(stride, math.ceil(width / stride) * stride)


def prepare(frame: np.ndarray, height: int, stride: int, shape: tuple[int, int] | None = None) -> tuple[np.ndarray, float]:
    """Resize a BGR u8 frame once to the input height and pad it on the right (with PAD_VALUE)
    to ``shape``'s width (default: :func:`input_shape`).

    Returns the (1, H, W, 3) u8 tensor and the scale from image to network-input pixels.
    """
    frame = as_bgr(frame)
    h, w = shape or input_shape(*frame.shape[:2], height, stride)
    scale = h / frame.shape[0]
    new_w = min(w, max(1, round(frame.shape[1] * scale)))
    tensor = np.empty((1, h, w, 3), dtype=np.uint8)
    view = tensor[0, :, :new_w]
    resized = cv2.resize(frame, (new_w, h), dst=view, interpolation=cv2.INTER_LINEAR)  # in place
    if resized is not view:  # OpenCV could not write into the view
        view[...] = resized
    tensor[0, :, new_w:] = PAD_VALUE
    return tensor, scale


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """A frame as contiguous u8 BGR: grey and BGRA are converted, anything else is a ValueError."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.size == 0:
        raise ValueError("a frame must be a non-empty uint8 numpy array")
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return np.ascontiguousarray(frame)
    raise ValueError(f"a frame must be HxW, HxWx1, HxWx3 or HxWx4, not {frame.shape}")
