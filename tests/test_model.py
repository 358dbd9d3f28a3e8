"""Torch networks: original state-dict layout, output shapes, the human-pose-estimation-0001 variant."""
from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from lwpose.preprocess import STRIDE  # noqa: E402
from lwpose.model import (  # noqa: E402
    HUMAN_POSE_ESTIMATION_0001, LIGHTWEIGHT_OPENPOSE, NUM_HEATMAPS, NUM_PAFS, build, detect_arch,
    human_pose_estimation_0001, lightweight_openpose,
)


def reference_state_dict(shared_dir: Path, stages: int) -> dict[str, tuple[int, ...]]:
    entries = {}
    for line in (shared_dir / "reference/lightweight-openpose-state-dict.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        n, key, shape = line.split(" ", 2)
        if int(n) == stages:
            entries[key] = tuple(ast.literal_eval(shape))
    return entries


@pytest.mark.shared
@pytest.mark.parametrize("stages", [1, 3])
def test_state_dict_equals_original(shared_dir: Path, stages: int) -> None:
    expected = reference_state_dict(shared_dir, stages)
    got = {k: tuple(v.shape) for k, v in lightweight_openpose(stages).state_dict().items()}
    assert list(got) == list(expected)
    assert got == expected


@pytest.mark.parametrize("factory,stages", [(lightweight_openpose, 1), (lightweight_openpose, 3),
                                            (human_pose_estimation_0001, 1)])
def test_output_shapes(factory, stages: int) -> None:
    net = factory(stages).eval()
    with torch.no_grad():
        outputs = net(torch.zeros(1, 3, 64, 96))
    assert len(outputs) == 2 * (stages + 1)
    for heatmaps, pafs in zip(outputs[::2], outputs[1::2]):
        assert heatmaps.shape == (1, NUM_HEATMAPS, 64 // STRIDE, 96 // STRIDE)
        assert pafs.shape == (1, NUM_PAFS, 64 // STRIDE, 96 // STRIDE)


def test_detect_arch() -> None:
    assert detect_arch(lightweight_openpose(3).state_dict()) == (LIGHTWEIGHT_OPENPOSE, 3)
    assert detect_arch(human_pose_estimation_0001().state_dict()) == (HUMAN_POSE_ESTIMATION_0001, 1)
    assert detect_arch({"foo": torch.zeros(1)}) is None
    with pytest.raises(ValueError):
        build("resnet")


def ir_conv_shapes(ir_path: Path, name_prefix: str = "") -> list[tuple[int, ...]]:
    """Weight shapes (torch layout) of the IR's convolutions, in graph order."""
    import openvino as ov

    shapes = []
    for op in ov.Core().read_model(ir_path).get_ordered_ops():
        if op.get_type_name() not in ("Convolution", "GroupConvolution") or not op.get_friendly_name().startswith(name_prefix):
            continue
        shape = tuple(op.input(1).get_shape())
        if op.get_type_name() == "GroupConvolution":
            shape = (shape[0] * shape[1], *shape[2:])
        shapes.append(shape)
    return shapes


def test_hpe0001_matches_ir_convolutions(ir_path: Path) -> None:
    net = human_pose_estimation_0001()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert Counter(tuple(c.weight.shape) for c in convs) == Counter(ir_conv_shapes(ir_path))
    cpm = [tuple(m.weight.shape) for m in net.cpm.modules() if isinstance(m, torch.nn.Conv2d)]
    assert cpm == ir_conv_shapes(ir_path, "conv4_")[-len(cpm):]  # conv4_3_CPM/* then conv4_4_CPM
    assert isinstance(net.cpm.align[1], torch.nn.ELU) and isinstance(net.cpm.conv[1], torch.nn.ReLU)
