"""The one interface every network runner implements: local OpenVINO, torch checkpoints, remote
KServe v2 servers. The runtime, the pipeline, ``lwpose eval`` and ``convert --check`` only talk to
a :class:`Backend`; nothing above this seam knows where the network runs.

Inputs are prepared by :mod:`lwpose.preprocess`: a (1, H, W, 3) u8 BGR tensor, H the input
height, W any multiple of the stride. Outputs are the last stage's heatmaps and PAFs.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

#: (heatmaps (19, H/stride, W/stride), pafs (38, H/stride, W/stride)), float32.
Outputs = tuple[np.ndarray, np.ndarray]
#: Completion callback: ``done(outputs, None)`` or ``done(None, error)``, called exactly once per
#: submitted tensor, on a backend thread. ``outputs`` may be views into the backend's buffers,
#: valid only until the callback returns.
Done = Callable[[Outputs | None, BaseException | None], None]


@runtime_checkable
class Backend(Protocol):
    """Runs the pose network on prepared input tensors."""

    #: what runs the network, for logs and JSON: ``openvino:CPU``, ``torch:cpu``, ``kserve:grpc://…``
    name: str
    #: the floating-point precision inference actually runs in (``f32``, ``bf16``, ``f16``, ``?``)
    precision: str
    #: network stride: output cells per input pixel
    stride: int
    #: requests in flight at most; ``submit`` blocks (or refuses) beyond it
    capacity: int

    def compile(self, height: int) -> None:
        """Get ready for inputs ``height`` pixels high and of any width (idempotent, bounded cache)."""

    def infer(self, tensor: np.ndarray) -> Outputs:
        """Synchronous inference; the returned arrays belong to the caller."""

    def submit(self, tensor: np.ndarray, done: Done, *, block: bool = True) -> bool:
        """Start one inference, calling ``done`` when it ends. With ``block=False``, return False
        at once (starting nothing) when ``capacity`` requests are in flight. The backend keeps
        ``tensor`` alive until ``done`` has returned."""

    def wait(self) -> None:
        """Return once every submitted request's ``done`` has returned."""

    def close(self) -> None:
        """Wait for the requests in flight, then free the backend's resources. Idempotent."""
