"""OpenVINO IR → torch checkpoint, for IRs of the Lightweight OpenPose family.

The importer reads the graph, evaluates the (possibly quantized or compressed) weight and bias
subgraphs on their constants, and maps the convolutions to the torch modules of the matching
architecture (``lwpose.model``):

* trunk convolutions (everything but the heatmap/PAF heads) form a chain and are taken in
  topological order; after the last trunk conv of each stage come its heads, heatmaps (19
  channels) first, then PAFs (38), as registered in the torch modules;
* a bias folded from a BatchNorm goes into an identity BatchNorm (weight 1, running mean 0,
  running variance ``1 - eps``, bias = the folded bias) or the conv bias where the module has one;
* the input normalisation in the graph (``x * scale + offset`` per channel before the first
  conv) is folded into the first conv, so the torch network takes ``(img - 128) / 256`` like
  the original; the mean must be 128;
* a refinement stage's input concatenation is permuted to the torch order
  [features, heatmaps, pafs] (human-pose-estimation-0001 concatenates [pafs, heatmaps, features]).
Activation quantization (FakeQuantize on activations) is dropped: the result is a float network.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import torch
from torch import nn

from .. import __version__
from ..errors import LwposeError
from ..fsutil import atomic_output, refuse_inputs
from ..model import ARCHITECTURES, NUM_HEATMAPS, NUM_PAFS, PoseNet, build
from ..preprocess import INPUT_MEAN, INPUT_SCALE
from ..store import sha256

CONV_TYPES = ("Convolution", "GroupConvolution")
ACTIVATIONS = {"Relu": nn.ReLU, "Elu": nn.ELU}


@dataclass
class IrConv:
    """One convolution of the IR with its dequantized parameters (torch layouts)."""

    node: ov.Node
    weight: np.ndarray
    bias: np.ndarray | None
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[int, ...]
    groups: int
    activation: type[nn.Module] | None
    parents: list[ov.Node]

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def name(self) -> str:
        return self.node.get_friendly_name()


@dataclass
class TorchConv:
    """A Conv2d of the torch network with the BatchNorm and activation that follow it."""

    name: str
    conv: nn.Conv2d
    bn_name: str | None
    activation: type[nn.Module] | None


def torch_convs(net: nn.Module) -> list[TorchConv]:
    """The network's convolutions in registration (= forward) order."""
    found = []
    for prefix, module in net.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for i, (name, child) in enumerate(children):
            if not isinstance(child, nn.Conv2d):
                continue
            bn_name, act = None, None
            for next_name, follower in children[i + 1:]:
                if isinstance(follower, nn.Conv2d):
                    break
                if isinstance(follower, nn.BatchNorm2d):
                    bn_name = f"{prefix}.{next_name}"
                elif type(follower) in ACTIVATIONS.values():
                    act = type(follower)
            found.append(TorchConv(f"{prefix}.{name}", child, bn_name, act))
    return found


def key(node: ov.Node) -> str:
    """A stable identity for a graph node (Python wrappers of one node differ)."""
    return node.get_name()


class _Graph:
    """Helpers over an ov.Model: constant subgraphs, data-path walks, consumers."""

    def __init__(self, model: ov.Model) -> None:
        self.model = model
        self._const: set[str] = set()  # nodes computed from constants only
        for node in model.get_ordered_ops():  # topological: inputs come first
            inputs = [key(i.get_source_output().get_node()) for i in node.inputs()]
            if node.get_type_name() == "Constant" or (inputs and all(i in self._const for i in inputs)):
                self._const.add(key(node))

    def is_const(self, node: ov.Node) -> bool:
        return key(node) in self._const

    def evaluate(self, outputs: list[ov.Output]) -> list[np.ndarray]:
        """Values of constant subgraphs (FakeQuantize, Convert, Multiply … on constants) in float32."""
        if not outputs:
            return []
        model = ov.Model([ops.convert(o, "f32").output(0) for o in outputs], [], "constants")
        result = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})({})
        return [np.asarray(result[i], dtype=np.float32) for i in range(len(outputs))]

    def data_inputs(self, node: ov.Node) -> list[ov.Node]:
        return [i.get_source_output().get_node() for i in node.inputs()
                if not self.is_const(i.get_source_output().get_node())]

    @staticmethod
    def consumers(node: ov.Node) -> list[ov.Node]:
        return [t.get_node() for out in node.outputs() for t in out.get_target_inputs()]

    def skip_fake_quantize(self, output: ov.Output) -> ov.Output:
        """The producer of ``output`` with activation FakeQuantize / Convert nodes skipped."""
        while output.get_node().get_type_name() in ("FakeQuantize", "Convert") and not self.is_const(output.get_node()):
            output = output.get_node().input(0).get_source_output()
        return output

    def parent_convs(self, node: ov.Node) -> list[ov.Node]:
        """Nearest convolutions upstream of ``node``'s data inputs."""
        return self.producer_convs(self.data_inputs(node))

    def producer_convs(self, todo: list[ov.Node]) -> list[ov.Node]:
        """Nearest convolutions at or upstream of the nodes ``todo``."""
        found, seen = [], set()
        while todo:
            current = todo.pop()
            if key(current) in seen:
                continue
            seen.add(key(current))
            if current.get_type_name() in CONV_TYPES:
                found.append(current)
            else:
                todo.extend(self.data_inputs(current))
        return found


def _read(xml_path: Path) -> ov.Model:
    if not xml_path.is_file():
        raise LwposeError(f"IR file {xml_path} does not exist")
    if xml_path.suffix.lower() != ".xml":
        raise LwposeError(f"{xml_path} is not an OpenVINO IR .xml file")
    try:
        return ov.Core().read_model(str(xml_path))
    except RuntimeError as exc:  # the last non-empty line of OpenVINO's message says what is wrong
        reason = [line for line in str(exc).splitlines() if line.strip()][-1]
        raise LwposeError(f"cannot read OpenVINO IR {xml_path}: {reason}") from None


def _ir_convs(graph: _Graph) -> list[IrConv]:
    nodes = [op for op in graph.model.get_ordered_ops() if op.get_type_name() in CONV_TYPES]
    weights_out, bias_add, activation = [], [], []
    for node in nodes:
        weights_out.append(node.input(1).get_source_output())
        tail, bias = node, None
        users = graph.consumers(node)
        if len(users) == 1 and users[0].get_type_name() == "Add":
            other = [i.get_source_output() for i in users[0].inputs() if key(i.get_source_output().get_node()) != key(node)]
            if len(other) == 1 and graph.is_const(other[0].get_node()):
                bias, tail = other[0], users[0]
        bias_add.append(bias)
        acts = {ACTIVATIONS[u.get_type_name()] for u in graph.consumers(tail) if u.get_type_name() in ACTIVATIONS}
        activation.append(acts.pop() if len(acts) == 1 else None)
    values = graph.evaluate(weights_out + [b for b in bias_add if b is not None])
    weights, biases = values[:len(nodes)], iter(values[len(nodes):])
    convs = []
    for node, w, bias, act in zip(nodes, weights, bias_add, activation):
        attrs = node.get_attributes()
        groups = 1
        if node.get_type_name() == "GroupConvolution":  # (G, O/G, I/G, kh, kw) → (O, I/G, kh, kw)
            groups = int(w.shape[0])
            w = w.reshape(w.shape[0] * w.shape[1], *w.shape[2:])
        if list(attrs["pads_begin"]) != list(attrs["pads_end"]) or attrs.get("auto_pad", "explicit") not in ("explicit", "notset"):
            raise LwposeError(f"IR convolution {node.get_friendly_name()} has asymmetric or automatic padding")
        convs.append(IrConv(node, w, None if bias is None else next(biases).reshape(-1), tuple(attrs["strides"]),
                            tuple(attrs["dilations"]), tuple(attrs["pads_begin"]), groups, act,
                            graph.parent_convs(node)))
    return convs


def _canonical_order(convs: list[IrConv]) -> list[IrConv]:
    """Trunk convs in topological order, each stage's heads (heatmaps, then PAFs) after its last trunk conv."""
    position = {key(c.node): i for i, c in enumerate(convs)}
    heads: dict[str, list[tuple[bool, IrConv, IrConv]]] = {}
    in_heads = set()
    for final in convs:
        if final.out_channels not in (NUM_HEATMAPS, NUM_PAFS):
            continue
        hidden = convs[position[key(final.parents[0])]] if len(final.parents) == 1 else None
        if hidden is None or not hidden.parents:
            raise LwposeError(f"IR convolution {final.name} does not look like a heatmap/PAF head")
        anchor = max(hidden.parents, key=lambda p: position[key(p)])
        heads.setdefault(key(anchor), []).append((final.out_channels != NUM_HEATMAPS, hidden, final))
        in_heads.update((key(hidden.node), key(final.node)))
    ordered = []
    for conv in convs:
        if key(conv.node) in in_heads:
            continue
        ordered.append(conv)
        for _, hidden, final in sorted(heads.pop(key(conv.node), []), key=lambda h: h[0]):
            ordered.extend((hidden, final))
    if heads:
        raise LwposeError("IR heads hang off a head convolution: not a Lightweight OpenPose graph")
    return ordered


def _input_normalisation(graph: _Graph, first: IrConv) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (scale, offset) with ``first conv input = x * scale + offset`` for raw pixels x."""
    source = graph.skip_fake_quantize(first.node.input(0).get_source_output())
    params = graph.model.get_parameters()
    if len(params) != 1:
        raise LwposeError(f"IR has {len(params)} inputs, expected 1 image input")
    sub = ov.Model([ops.convert(source, "f32").output(0)], params, "normalisation")
    shape = [d.get_length() if d.is_static else 16 for d in params[0].get_output_partial_shape(0)]
    sub.reshape({sub.inputs[0]: shape})
    compiled = ov.Core().compile_model(sub, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    dtype = params[0].get_output_element_type(0).to_dtype()
    low, high = (np.asarray(compiled({0: np.full(shape, v, dtype=dtype)})[0]) for v in (0, 255))
    cy, cx = low.shape[2] // 2, low.shape[3] // 2
    offset = low[0, :, cy, cx].astype(np.float64)
    return (high[0, :, cy, cx] - offset) / 255.0, offset


def _concat_permutation(graph: _Graph, conv: IrConv, by_node: dict[str, IrConv]) -> np.ndarray | None:
    """Input-channel permutation bringing a refinement stage's concat to [features, heatmaps, pafs]."""
    source = graph.skip_fake_quantize(conv.node.input(0).get_source_output()).get_node()
    if source.get_type_name() != "Concat":
        return None
    parts, start = [], 0
    for inp in source.inputs():
        channels = inp.get_source_output().get_partial_shape()[1].get_length()
        kinds = {by_node[key(p)].out_channels for p in graph.producer_convs([inp.get_source_output().get_node()])}
        rank = 1 if kinds == {NUM_HEATMAPS} else 2 if kinds == {NUM_PAFS} else 0
        parts.append((rank, np.arange(start, start + channels)))
        start += channels
    return np.concatenate([idx for _, idx in sorted(parts, key=lambda p: p[0])])


def _name(activation: type[nn.Module] | None) -> str | None:
    return activation.__name__ if activation else None


def _match(convs: list[IrConv]) -> tuple[PoseNet, list[TorchConv]]:
    """The torch network whose convolutions match ``convs`` (checked one by one)."""
    errors = []
    for arch in ARCHITECTURES:
        fixed = len(torch_convs(build(arch, 0)))
        stages, rest = divmod(len(convs) - fixed, 19)
        if rest or stages < 0:
            errors.append(f"{arch} has {fixed} + 19 per refinement stage")
            continue
        net = build(arch, stages).eval()
        targets = torch_convs(net)
        for i, (ir, tc) in enumerate(zip(convs, targets)):
            c = tc.conv
            want = (tuple(c.weight.shape), c.stride, c.dilation, c.padding, c.groups, _name(tc.activation))
            got = (ir.weight.shape, ir.stride, ir.dilation, ir.padding, ir.groups, _name(ir.activation))
            if want != got:
                errors.append(f"{arch}: convolution #{i} {ir.name} is {got}, {tc.name} needs {want}")
                break
        else:
            return net, targets
    raise LwposeError(f"not an IR of the Lightweight OpenPose family: {len(convs)} convolutions; " + "; ".join(errors))


def ir_network(xml_path: Path) -> tuple[PoseNet, dict]:
    """The torch network holding the weights of the IR ``xml_path``, and notes on its input normalisation."""
    graph = _Graph(_read(Path(xml_path)))
    convs = _ir_convs(graph)
    if not convs:
        raise LwposeError(f"{xml_path} has no convolutions: not an IR of the Lightweight OpenPose family")
    convs = _canonical_order(convs)
    net, targets = _match(convs)
    scale, offset = _input_normalisation(graph, convs[0])
    mean = -offset / scale
    if np.any(scale <= 0) or np.any(np.abs(mean - INPUT_MEAN) > 0.5):
        raise LwposeError(f"{xml_path}: input normalisation has mean {mean.round(2).tolist()} and scale "
                          f"{(1 / scale).round(2).tolist()}; the importer needs mean 128")
    by_node = {key(c.node): c for c in convs}
    state = net.state_dict()
    for i, (ir, tc) in enumerate(zip(convs, targets)):
        weight = ir.weight
        if i == 0:  # raw pixels * scale + offset  ==  ((x - 128) / 256) * (256 * scale)
            weight = weight * (INPUT_SCALE * scale).reshape(1, -1, 1, 1)
        permutation = _concat_permutation(graph, ir, by_node)
        if permutation is not None:
            weight = weight[:, permutation]
        state[f"{tc.name}.weight"] = torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32))
        bias = torch.from_numpy(ir.bias) if ir.bias is not None else torch.zeros(ir.out_channels)
        if tc.conv.bias is not None:
            state[f"{tc.name}.bias"] = bias
            bias = torch.zeros_like(bias)
        if tc.bn_name is not None:
            bn = net.get_submodule(tc.bn_name)
            state[f"{tc.bn_name}.weight"] = torch.ones_like(bias)
            state[f"{tc.bn_name}.bias"] = bias
            state[f"{tc.bn_name}.running_mean"] = torch.zeros_like(bias)
            state[f"{tc.bn_name}.running_var"] = torch.full_like(bias, 1.0 - bn.eps)
        elif bool(bias.abs().max() > 0):
            raise LwposeError(f"IR convolution {ir.name} has a bias but {tc.name} cannot hold one")
    net.load_state_dict(state)
    notes = {"input_mean": mean.tolist(), "input_scale": (1 / scale).tolist(),
             "normalisation": "(img_bgr - 128) / 256, NCHW float32, outside the network"}
    return net, notes


def import_ir(xml_path: Path, out_path: Path) -> Path:
    """Write the torch checkpoint of the IR ``xml_path`` to ``out_path`` and return ``out_path``.

    The checkpoint is ``{"state_dict", "arch", "num_refinement_stages", "input", "source",
    "lwpose_version"}``; ``lwpose convert`` and ``lwpose train`` read it.
    """
    xml_path, out_path = Path(xml_path), Path(out_path)
    refuse_inputs(out_path, [xml_path, xml_path.with_suffix(".bin")], flag="-o")
    net, notes = ir_network(xml_path)
    checkpoint = {
        "state_dict": net.state_dict(),
        "arch": net.arch,
        "num_refinement_stages": net.num_refinement_stages,
        "input": notes,
        "source": {"path": str(xml_path.resolve()), "sha256": sha256(xml_path),
                   "weights_sha256": sha256(xml_path.with_suffix(".bin"))},
        "lwpose_version": __version__,
    }
    with atomic_output(out_path, flag="-o") as tmp:
        torch.save(checkpoint, tmp)
    return out_path
