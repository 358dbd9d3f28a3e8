"""Torch networks of the Lightweight OpenPose family (training, export, IR import).

Two architectures share one backbone and one head layout:

* ``lightweight-openpose``: the network of the original Lightweight OpenPose training code;
  its ``state_dict`` keys and shapes are those of the original, so a checkpoint such as
  ``checkpoint_iter_370000.pth`` (``{"state_dict": ...}``) loads unchanged.
* ``human-pose-estimation-0001``: Intel's Open Model Zoo variant. Same backbone and stages,
  a different CPM: a 1x1 ``align`` and a 1x1 ``reduce`` conv, three depthwise/pointwise blocks,
  ELU activations and biases throughout, a residual add of the ``align`` output, a 3x3 conv.

Backbone: MobileNetV1 to conv5_5 at stride 8 (conv4_2 has stride 1 and conv5_1 is dilated
by 2 instead, "the conv4_2 dilation trick"). The network takes BGR images normalised as
``(img - 128) / 256`` in NCHW float32; ``forward`` returns the list of per-stage maps
``[heatmaps_0, pafs_0, heatmaps_1, pafs_1, ...]`` (19 heatmaps incl. background, 38 PAF
channels, stride 8); the last two are the final prediction. The input contract (stride,
normalisation) is :mod:`lwpose.preprocess`; :mod:`lwpose.checkpoint` loads checkpoints.
"""
from __future__ import annotations

import torch
from torch import nn

from .preprocess import INPUT_MEAN, INPUT_SCALE

NUM_HEATMAPS = 19
NUM_PAFS = 38
NUM_CHANNELS = 128

LIGHTWEIGHT_OPENPOSE = "lightweight-openpose"
HUMAN_POSE_ESTIMATION_0001 = "human-pose-estimation-0001"
ARCHITECTURES = (LIGHTWEIGHT_OPENPOSE, HUMAN_POSE_ESTIMATION_0001)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """u8 BGR images (N, 3, H, W) → the network input ``(img - 128) / 256``, a new float32 tensor."""
    return images.to(torch.float32, copy=True).sub_(INPUT_MEAN).div_(INPUT_SCALE)


def conv(cin: int, cout: int, kernel: int = 3, *, stride: int = 1, dilation: int = 1, bias: bool = True,
         bn: bool = False, act: type[nn.Module] | None = nn.ReLU, groups: int = 1) -> nn.Sequential:
    """Conv2d ("same" padding) [+ BatchNorm2d] [+ activation], as one Sequential."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, dilation * (kernel - 1) // 2, dilation,
                                         groups=groups, bias=bias)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


def conv_dw(cin: int, cout: int, *, stride: int = 1, dilation: int = 1, bn: bool = True,
            act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Depthwise 3x3 + pointwise 1x1, each followed by [BatchNorm2d] and the activation.

    With ``bn`` the convs have no bias (MobileNet blocks: keys ``.0``, ``.1``, ``.3``, ``.4``);
    without it they have biases (CPM blocks: keys ``.0``, ``.2``).
    """
    return nn.Sequential(*conv(cin, cin, 3, stride=stride, dilation=dilation, bias=not bn, bn=bn, act=act, groups=cin),
                         *conv(cin, cout, 1, bias=not bn, bn=bn, act=act))


def mobilenet_backbone() -> nn.Sequential:
    """MobileNetV1 conv1 … conv5_5 at stride 8 (512 channels)."""
    return nn.Sequential(
        conv(3, 32, stride=2, bias=False, bn=True),
        conv_dw(32, 64),
        conv_dw(64, 128, stride=2),
        conv_dw(128, 128),
        conv_dw(128, 256, stride=2),
        conv_dw(256, 256),
        conv_dw(256, 512),  # conv4_2: stride 1 instead of 2 ...
        conv_dw(512, 512, dilation=2),  # ... conv5_1: dilation 2 keeps the receptive field
        conv_dw(512, 512),
        conv_dw(512, 512),
        conv_dw(512, 512),
        conv_dw(512, 512),
    )


class Cpm(nn.Module):
    """The original CPM: align (1x1, ReLU), three bias-free dw/pw blocks with ELU, residual, 3x3."""

    def __init__(self, cin: int = 512, cout: int = NUM_CHANNELS) -> None:
        super().__init__()
        self.align = conv(cin, cout, 1)
        self.trunk = nn.Sequential(*(nn.Sequential(
            *conv(cout, cout, 3, bias=False, act=nn.ELU, groups=cout),
            *conv(cout, cout, 1, bias=False, act=nn.ELU)) for _ in range(3)))
        self.conv = conv(cout, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.align(x)
        return self.conv(x + self.trunk(x))


class CpmHpe0001(nn.Module):
    """The CPM of human-pose-estimation-0001: align and reduce (1x1, ELU), three dw/pw blocks
    with biases and ELU, residual add of the align output, 3x3 conv with ReLU."""

    def __init__(self, cin: int = 512, cout: int = NUM_CHANNELS) -> None:
        super().__init__()
        self.align = conv(cin, cout, 1, act=nn.ELU)
        self.reduce = conv(cout, cout, 1, act=nn.ELU)
        self.trunk = nn.Sequential(*(conv_dw(cout, cout, bn=False, act=nn.ELU) for _ in range(3)))
        self.conv = conv(cout, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.align(x)
        return self.conv(x + self.trunk(self.reduce(x)))


class InitialStage(nn.Module):
    """Three 3x3 convs, then a heatmap head and a PAF head (1x1 → 512 → 1x1)."""

    def __init__(self, channels: int = NUM_CHANNELS) -> None:
        super().__init__()
        self.trunk = nn.Sequential(*(conv(channels, channels) for _ in range(3)))
        self.heatmaps = nn.Sequential(conv(channels, 512, 1), conv(512, NUM_HEATMAPS, 1, act=None))
        self.pafs = nn.Sequential(conv(channels, 512, 1), conv(512, NUM_PAFS, 1, act=None))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.trunk(x)
        return [self.heatmaps(x), self.pafs(x)]


class RefinementStageBlock(nn.Module):
    """1x1 conv, then 3x3 and dilated 3x3 convs with BatchNorm, with a residual connection."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.initial = conv(cin, cout, 1)
        self.trunk = nn.Sequential(conv(cout, cout, bn=True), conv(cout, cout, dilation=2, bn=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.initial(x)
        return x + self.trunk(x)


class RefinementStage(nn.Module):
    """Five residual blocks on [features, heatmaps, pafs], then heatmap and PAF heads."""

    def __init__(self, cin: int, channels: int = NUM_CHANNELS) -> None:
        super().__init__()
        self.trunk = nn.Sequential(RefinementStageBlock(cin, channels),
                                   *(RefinementStageBlock(channels, channels) for _ in range(4)))
        self.heatmaps = nn.Sequential(conv(channels, channels, 1), conv(channels, NUM_HEATMAPS, 1, act=None))
        self.pafs = nn.Sequential(conv(channels, channels, 1), conv(channels, NUM_PAFS, 1, act=None))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.trunk(x)
        return [self.heatmaps(x), self.pafs(x)]


class PoseNet(nn.Module):
    """Backbone + CPM + initial stage + refinement stages; ``arch`` names the architecture."""

    def __init__(self, arch: str, cpm: nn.Module, num_refinement_stages: int) -> None:
        super().__init__()
        self.arch = arch
        self.num_refinement_stages = num_refinement_stages
        self.model = mobilenet_backbone()
        self.cpm = cpm
        self.initial_stage = InitialStage()
        self.refinement_stages = nn.ModuleList(
            RefinementStage(NUM_CHANNELS + NUM_HEATMAPS + NUM_PAFS) for _ in range(num_refinement_stages))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.cpm(self.model(x))
        outputs = self.initial_stage(features)
        for stage in self.refinement_stages:
            outputs.extend(stage(torch.cat([features, outputs[-2], outputs[-1]], dim=1)))
        return outputs


def lightweight_openpose(num_refinement_stages: int = 1) -> PoseNet:
    """The original Lightweight OpenPose network (keys of ``checkpoint_iter_370000.pth``)."""
    return PoseNet(LIGHTWEIGHT_OPENPOSE, Cpm(), num_refinement_stages)


def human_pose_estimation_0001(num_refinement_stages: int = 1) -> PoseNet:
    """The Open Model Zoo ``human-pose-estimation-0001`` network (its IR has 1 refinement stage)."""
    return PoseNet(HUMAN_POSE_ESTIMATION_0001, CpmHpe0001(), num_refinement_stages)


def build(arch: str, num_refinement_stages: int = 1) -> PoseNet:
    """The network ``arch`` (one of ``ARCHITECTURES``) with ``num_refinement_stages`` stages."""
    builders = {LIGHTWEIGHT_OPENPOSE: lightweight_openpose, HUMAN_POSE_ESTIMATION_0001: human_pose_estimation_0001}
    if arch not in builders:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return builders[arch](num_refinement_stages)


def detect_arch(state_dict: dict[str, torch.Tensor]) -> tuple[str, int] | None:
    """(architecture, number of refinement stages) guessed from state-dict keys, or None."""
    if "cpm.align.0.weight" not in state_dict:
        return None
    arch = HUMAN_POSE_ESTIMATION_0001 if "cpm.reduce.0.weight" in state_dict else LIGHTWEIGHT_OPENPOSE
    stages = {int(key.split(".")[1]) for key in state_dict if key.startswith("refinement_stages.")}
    return arch, max(stages) + 1 if stages else 0
