"""Frame → :class:`Maps` predictors for evaluation: an OpenVINO IR or a torch checkpoint, with
optional multi-scale and flip test-time augmentation.

Preprocessing is the runtime's own (``lwpose.runtime.prepare``: one u8
resize to the input height, right/bottom padding with 128); a network only turns the prepared
u8 NHWC BGR tensor into maps. With one scale and no flip a predictor gives exactly the maps of
``PoseModel.infer``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..errors import LwposeError
from ..runtime import Maps, PoseModel, prepare
from . import tta

if TYPE_CHECKING:
    import torch

#: File suffixes of torch checkpoints (anything else is an OpenVINO model).
CHECKPOINT_SUFFIXES = (".pth", ".pt")


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
    """A torch network of the Lightweight OpenPose family (``lwpose.model``) on ``device``, giving
    its last stage's maps: a checkpoint (:meth:`from_checkpoint`), a converted network, or the
    network being trained.

    The input is normalised as the IR does it in its graph (``lwpose.model.normalise``).
    """

    def __init__(self, net: torch.nn.Module, device: str | torch.device = "cpu", name: str = "torch network") -> None:
        from ..model import STRIDE

        self.net = net
        self.device = device
        self.stride = STRIDE
        self.name = name

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path) -> TorchNetwork:
        """The network of a checkpoint, loaded by ``lwpose.convert.checkpoint.load_network``."""
        from ..convert.checkpoint import load_network

        return cls(load_network(Path(checkpoint)), name=str(checkpoint))

    def __call__(self, tensor: np.ndarray, scale: float) -> Maps:
        import torch

        from ..model import normalise

        with torch.inference_mode():
            x = normalise(torch.from_numpy(tensor).to(self.device).permute(0, 3, 1, 2))
            heatmaps, pafs = self.net(x)[-2:]
        return Maps(heatmaps[0].float().cpu().numpy(), pafs[0].float().cpu().numpy(), scale)


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
    if Path(model).suffix in CHECKPOINT_SUFFIXES:
        return TorchNetwork.from_checkpoint(model)
    return IRNetwork(model, device)
