"""Network runners behind one interface (:class:`Backend`): :class:`OpenVINOBackend` (local
device) and :class:`TorchBackend` (checkpoints), loaded lazily so that importing this package
imports neither OpenVINO nor torch; :func:`open_backend` picks one for a model argument."""
from __future__ import annotations

import importlib
from pathlib import Path

from .base import Backend, Done, Outputs

#: File suffixes of torch checkpoints (anything else is an OpenVINO model).
CHECKPOINT_SUFFIXES = (".pth", ".pt")

_LAZY = {"OpenVINOBackend": ".openvino", "TorchBackend": ".torch"}
__all__ = ["Backend", "Done", "Outputs", "CHECKPOINT_SUFFIXES", "open_backend", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_backend(model: str | Path, *, device: str = "CPU", **options) -> Backend:
    """A ``.pth``/``.pt`` checkpoint as a :class:`TorchBackend` (``device`` ``CPU`` → torch
    ``cpu``), anything else (store name, model directory, ``.xml``) as an :class:`OpenVINOBackend`
    with ``options`` (mode, nireq, threads)."""
    if Path(model).suffix in CHECKPOINT_SUFFIXES:
        from .torch import TorchBackend

        return TorchBackend.from_checkpoint(model, device.lower())
    from .openvino import OpenVINOBackend

    return OpenVINOBackend(model, device=device, **options)
