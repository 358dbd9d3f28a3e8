"""Frame → :class:`Maps` for evaluation: any :class:`lwpose.backends.Backend` (an OpenVINO IR, a
torch checkpoint, the network being trained) with optional multi-scale and flip test-time
augmentation.

Preprocessing is the runtime's own (:func:`lwpose.preprocess.prepare`: one u8 resize to the input
height, right padding with 128); with one scale and no flip a predictor gives exactly the maps of
``PoseModel.infer``.
"""
from __future__ import annotations

import numpy as np

from ..backends import Backend
from ..errors import LwposeError
from ..preprocess import Maps, check_height, prepare
from . import tta


class Predictor:
    """Frame → maps with optional test-time augmentation.

    ``scales`` multiply ``height`` (each rounded to the stride); with ``flip`` every scale also
    runs on the mirrored input. Several runs are averaged with :func:`tta.merge`.
    """

    def __init__(self, backend: Backend, height: int = 368, scales: tuple[float, ...] = (1.0,), flip: bool = False) -> None:
        stride = backend.stride
        check_height(height, stride)
        if not scales or any(s <= 0 for s in scales):
            raise LwposeError(f"scales must be positive numbers, not {list(scales)}", param="scales")
        heights = [max(stride, round(height * s / stride) * stride) for s in scales]
        if len(set(heights)) != len(heights):
            raise LwposeError(f"scales {list(scales)} give repeated input heights {heights} at height {height}",
                              param="scales")
        self.backend = backend
        self.heights = heights
        self.flip = flip

    def _run(self, tensor: np.ndarray, scale: float) -> Maps:
        heatmaps, pafs = self.backend.infer(tensor)
        return Maps(heatmaps, pafs, scale)

    def __call__(self, frame: np.ndarray) -> Maps:
        runs = []
        for height in self.heights:
            tensor, scale = prepare(frame, height, self.backend.stride)
            runs.append(self._run(tensor, scale))
            if self.flip:
                runs.append(tta.unflip(self._run(np.ascontiguousarray(tensor[:, :, ::-1]), scale)))
        return runs[0] if len(runs) == 1 else tta.merge(runs)
