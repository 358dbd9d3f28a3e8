"""Frame → :class:`Maps` predictors for evaluation: an OpenVINO IR or a torch checkpoint, with
optional multi-scale and flip test-time augmentation.

Preprocessing is the runtime's own (``lwpose.runtime.prepare``: one u8
resize to the input height, right/bottom padding with 128); a network only turns the prepared
u8 NHWC BGR tensor into maps. With one scale and no flip a predictor gives exactly the maps of
``PoseModel.infer``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import LwposeError
from ..runtime import Maps, PoseModel, prepare
from . import tta


class Network(Protocol):
    """Prepared (1, H, W, 3) u8 BGR tensor → maps."""

    stride: int

    def __call__(self, tensor: np.ndarray, scale: float) -> Maps: ...


class IRNetwork:
    """An OpenVINO IR (store name, model directory or .xml), through :class:`PoseModel`."""

    def __init__(self, model: str | Path, device: str = "CPU") -> None:
        self.model = PoseModel(model, device=device)
        self.stride = self.model.stride
        self.name = str(self.model.xml)

    def __call__(self, tensor: np.ndarray, scale: float) -> Maps:
        return self.model.maps(self.model.compile(tensor.shape[1:3])(tensor), scale)


class TorchNetwork:
    """A torch checkpoint of the Lightweight OpenPose family (loaded by
    ``lwpose.convert.checkpoint.load_network``), giving its last stage's maps.

    The input is normalised as the IR does it in its graph: (img - 128) / 256, NCHW float32.
    """

    def __init__(self, checkpoint: str | Path) -> None:
        import torch

        from ..convert.checkpoint import load_network
        from ..model import STRIDE

        self.net = load_network(Path(checkpoint))
        self.stride = STRIDE
        self.name = str(checkpoint)
        self._torch = torch

    def __call__(self, tensor: np.ndarray, scale: float) -> Maps:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(tensor).permute(0, 3, 1, 2).float().sub_(128.0).div_(256.0)
            heatmaps, pafs = self.net(x)[-2:]
        return Maps(heatmaps[0].numpy(), pafs[0].numpy(), scale)


class Predictor:
    """Frame → maps with optional test-time augmentation.

    ``scales`` multiply ``height`` (each rounded to the stride); with ``flip`` every scale also
    runs on the mirrored input. Several runs are averaged with :func:`tta.merge`.
    """

    def __init__(self, network: Network, height: int = 368, scales: tuple[float, ...] = (1.0,), flip: bool = False) -> None:
        stride = network.stride
        if height < stride or height % stride:
            raise LwposeError(f"--height must be a positive multiple of {stride}, not {height}")
        if not scales or any(s <= 0 for s in scales):
            raise LwposeError(f"--scales must be positive numbers, not {list(scales)}")
        heights = [max(stride, round(height * s / stride) * stride) for s in scales]
        if len(set(heights)) != len(heights):
            raise LwposeError(f"--scales {list(scales)} give repeated input heights {heights} at --height {height}")
        self.network = network
        self.heights = heights
        self.flip = flip

    def __call__(self, frame: np.ndarray) -> Maps:
        runs = []
        for height in self.heights:
            tensor, scale = prepare(frame, height, self.network.stride)
            runs.append(self.network(tensor, scale))
            if self.flip:
                runs.append(tta.unflip(self.network(np.ascontiguousarray(tensor[:, :, ::-1]), scale)))
        return runs[0] if len(runs) == 1 else tta.merge(runs)


def network(model: str | Path, device: str = "CPU") -> Network:
    """A ``.pth`` checkpoint as a :class:`TorchNetwork`, anything else (store name, directory,
    ``.xml``) as an :class:`IRNetwork`."""
    if Path(model).suffix in (".pth", ".pt"):
        return TorchNetwork(model)
    return IRNetwork(model, device)
