"""Optimizer and learning-rate schedule of the original Lightweight OpenPose training.

Adam (base lr 4e-5, L2 weight decay 5e-4 on non-depthwise conv weights only) with per-group
learning-rate multipliers: biases ×2 (BatchNorm biases included); in the refinement stages conv
weights ×4 and conv biases ×8. The learning rate is multiplied by 0.333 after epochs 100, 200
and 260 (here converted to iterations with the run's epoch length).
"""
from __future__ import annotations

import torch
from torch import nn

#: Network parts and the learning-rate multiplier of their conv weights.
PARTS = {"model": 1.0, "cpm": 1.0, "initial_stage": 1.0, "refinement_stages": 4.0}


def param_groups(net: nn.Module, base_lr: float, weight_decay: float) -> list[dict]:
    """Adam parameter groups: one per (learning rate, weight decay) combination."""
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for part, weight_mult in PARTS.items():
        for module in getattr(net, part).modules():
            for name, param in module.named_parameters(recurse=False):
                lr, decay = _rule(module, name, weight_mult)
                groups.setdefault((base_lr * lr, weight_decay * decay), []).append(param)
    counted = sum(len(p) for p in groups.values())
    total = len(list(net.parameters()))
    if counted != total:
        raise RuntimeError(f"{total - counted} parameters are outside the parts {', '.join(PARTS)}")
    return [{"params": params, "lr": lr, "weight_decay": wd} for (lr, wd), params in groups.items()]


def _rule(module: nn.Module, name: str, weight_mult: float) -> tuple[float, float]:
    """(lr multiplier, weight-decay multiplier) of one parameter, as in the original training."""
    if isinstance(module, nn.BatchNorm2d):
        return (2.0 if name == "bias" else 1.0), 0.0
    depthwise = isinstance(module, nn.Conv2d) and module.groups > 1
    if name == "bias":
        return 2.0 * weight_mult, 0.0
    return (1.0 if depthwise else weight_mult), (0.0 if depthwise else 1.0)


def make_optimizer(net: nn.Module, base_lr: float, weight_decay: float) -> torch.optim.Adam:
    return torch.optim.Adam(param_groups(net, base_lr, weight_decay), lr=base_lr, weight_decay=weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, milestones_epochs: list[int], gamma: float,
                   iters_per_epoch: int) -> torch.optim.lr_scheduler.MultiStepLR:
    """Step-per-iteration schedule with the epoch milestones converted to iterations."""
    milestones = [m * iters_per_epoch for m in milestones_epochs]
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=gamma)
