"""The runtime model: a backend (where the network runs) + :mod:`lwpose.preprocess` (the input
contract) + :mod:`lwpose.decode` (grouping), for u8 BGR frames.

Every entry point (``lwpose infer``, ``run``, the ROS node, the Python API) goes through
:class:`PoseModel`, so preprocessing and grouping exist once. The input height is fixed per model
instance and the width follows each frame's aspect ratio (rounded up to the stride).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import decode, store
from .backends import Backend
from .errors import LwposeError
from .pose import Person, people_from_arrays
from .preprocess import Maps, check_height, input_shape, prepare


class PoseModel:
    """A pose network behind a :class:`lwpose.backends.Backend`.

    Args:
        model: a store name (``human-pose-estimation-0001``), a model directory or an ``.xml``,
            run by an :class:`lwpose.backends.OpenVINOBackend` with ``device``, ``mode``,
            ``nireq`` and ``threads``; ignored when ``backend`` is given.
        height: network input height in pixels; the width follows the frame's aspect ratio.
            Frames of a size :func:`lwpose.preprocess.check_frame_size` refuses are a LwposeError.
        backend: run the network here instead (e.g. a remote server).
    """

    def __init__(self, model: str | Path = store.DEFAULT_MODEL, *, height: int = 256, device: str = "CPU",
                 mode: str = "latency", nireq: int = 0, threads: int = 0, backend: Backend | None = None) -> None:
        if backend is None:
            from .backends.openvino import OpenVINOBackend

            backend = OpenVINOBackend(model, device=device, mode=mode, nireq=nireq, threads=threads)
            self.label = str(backend.path)
        else:
            self.label = backend.name
        self.backend = backend
        self.stride = backend.stride
        self.height = check_height(height, self.stride)

    def input_shape(self, frame_height: int, frame_width: int) -> tuple[int, int]:
        """Network input (height, width) for a frame size: fixed height, width to the aspect ratio."""
        return input_shape(frame_height, frame_width, self.height, self.stride)

    def prepare(self, frame: np.ndarray, shape: tuple[int, int] | None = None) -> tuple[np.ndarray, float]:
        """The (1, H, W, 3) u8 input tensor of a frame and its scale (:func:`lwpose.preprocess.prepare`)."""
        return prepare(frame, self.height, self.stride, shape)

    def compile(self) -> None:
        """Get the backend ready for this model's input height (done on first use otherwise)."""
        self.backend.compile(self.height)

    def infer(self, frame: np.ndarray) -> Maps:
        """Synchronous inference on one frame."""
        tensor, scale = self.prepare(frame)
        heatmaps, pafs = self.backend.infer(tensor)
        return Maps(heatmaps, pafs, scale)

    def people(self, maps: Maps) -> list[Person]:
        """Group the maps into people, in image pixels; maps holding NaN or infinity are a LwposeError."""
        try:  # decode.group checks the maps (one sum per map tells whether all values are finite)
            keypoints, scores = decode.group(maps.heatmaps, maps.pafs, stride=self.stride)
        except ValueError as exc:
            raise LwposeError(f"model {self.label}: its output is unusable: {exc}") from None
        return people_from_arrays(keypoints, scores, maps.scale)

    def __call__(self, frame: np.ndarray) -> list[Person]:
        return self.people(self.infer(frame))

    def close(self) -> None:
        """Free the backend."""
        self.backend.close()
