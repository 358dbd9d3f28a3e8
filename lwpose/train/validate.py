"""Periodic COCO validation of the network being trained, through ``lwpose.eval`` (the same
preprocessing, grouping and COCOeval as ``lwpose eval``). Optional: without ``lwpose.eval``
validation is skipped with a log line."""
from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)


def _eval_modules() -> tuple[Any, Any] | None:
    try:
        from lwpose.eval import coco, predict  # noqa: F401 - optional part of the package
    except ImportError as exc:
        log.info("validation skipped: lwpose.eval is not available (%s)", exc)
        return None
    return coco, predict


def check_val_set(images_dir: str, annotations: str) -> bool:
    """Fail early (LwposeError) on a bad validation set; False when lwpose.eval is missing."""
    modules = _eval_modules()
    if modules is None:
        return False
    from lwpose.errors import LwposeError

    try:
        modules[0].load_dataset(images_dir, annotations)
    except LwposeError as exc:  # name the training settings, not eval's parameters
        if exc.param is None:
            raise
        raise LwposeError(exc.worded(f"val_{exc.param}"), param=f"val_{exc.param}") from None
    return True


def validate(net: nn.Module, device: torch.device, images_dir: str, annotations: str,
             height: int) -> dict[str, float | None] | None:
    """COCO keypoint metrics (AP, AP50, ...) of ``net``, or None when lwpose.eval is missing."""
    modules = _eval_modules()
    if modules is None:
        return None
    coco, predict = modules
    was_training = net.training
    net.eval()
    try:
        from lwpose.backends.torch import TorchBackend

        result = coco.evaluate(predict.Predictor(TorchBackend(net, device), height=height), images_dir, annotations)
    finally:
        net.train(was_training)
    return result["metrics"]
