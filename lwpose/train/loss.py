"""Masked L2 loss of the original: sum over stages of ½‖(output − target)·mask‖² / batch size,
for heatmaps and PAFs alike."""
from __future__ import annotations

import torch


def masked_l2(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """½ Σ ((output − target) · mask)² / batch; ``mask`` (N, 1, h, w) broadcasts over channels."""
    diff = (output.float() - target) * mask
    return (diff * diff).sum() / 2 / output.shape[0]


def stage_losses(outputs: list[torch.Tensor], heatmaps: torch.Tensor, pafs: torch.Tensor,
                 mask: torch.Tensor) -> list[torch.Tensor]:
    """[heatmaps loss, PAF loss] of every stage, in the network's output order."""
    return [masked_l2(out, heatmaps if k % 2 == 0 else pafs, mask) for k, out in enumerate(outputs)]
