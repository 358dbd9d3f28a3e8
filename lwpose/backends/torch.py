""":class:`TorchBackend`: a torch network of the Lightweight OpenPose family (a checkpoint, a
converted network or the network being trained), for evaluation. Imports torch; loaded lazily by
``lwpose.backends`` so the runtime stays torch-free."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..preprocess import STRIDE
from .base import Done, Outputs


class TorchBackend:
    """The last stage's maps of ``net`` on a torch ``device``; the input is normalised as the IR
    does it in its graph (``lwpose.model.normalise``). Synchronous: ``submit`` runs at once."""

    stride = STRIDE
    capacity = 1

    def __init__(self, net: torch.nn.Module, device: str | torch.device = "cpu", path: Path | None = None) -> None:
        self.net = net
        self.device = device
        self.path = path
        self.name = f"torch:{device}"
        self.precision = "f32"

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, device: str = "cpu") -> TorchBackend:
        """The network of a checkpoint (:func:`lwpose.checkpoint.load_network`)."""
        from ..checkpoint import load_network

        return cls(load_network(Path(checkpoint)).to(device), device, Path(checkpoint))

    def compile(self, height: int) -> None:
        """Nothing to do: torch runs any shape."""

    def infer(self, tensor: np.ndarray) -> Outputs:
        from ..model import normalise

        with torch.inference_mode():
            x = normalise(torch.from_numpy(tensor).to(self.device).permute(0, 3, 1, 2))
            heatmaps, pafs = self.net(x)[-2:]
        return heatmaps[0].float().cpu().numpy(), pafs[0].float().cpu().numpy()

    def submit(self, tensor: np.ndarray, done: Done, *, block: bool = True) -> bool:
        try:
            outputs = self.infer(tensor)
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            done(None, exc)
            return True
        done(outputs, None)
        return True

    def wait(self) -> None:
        """Nothing in flight: ``submit`` is synchronous."""

    def close(self) -> None:
        """Nothing to free."""
