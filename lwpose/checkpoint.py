"""Loading torch checkpoints of the Lightweight OpenPose family into ``lwpose.model`` networks
(for convert, train and checkpoint evaluation).

Accepted files: a plain state dict, ``{"state_dict": ...}`` (original training, ``lwpose
import-ir``) or ``{"model": ...}`` (``lwpose train``), optionally with ``arch`` and
``num_refinement_stages`` entries; a ``module.`` prefix (DataParallel) is stripped.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .errors import LwposeError
from .model import ARCHITECTURES, PoseNet, build, detect_arch


def load_file(path: Path) -> object:
    """The contents of the torch file ``path`` (weights only, on the CPU); LwposeError when unreadable."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt file makes the unpickler fail in many ways
        detail = " ".join([type(exc).__name__, *str(exc).strip().splitlines()[:1]])
        raise LwposeError(f"cannot read checkpoint {path}: corrupt or not a torch checkpoint ({detail})") from None


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(state dict, the checkpoint's other entries) of the file ``path``."""
    path = Path(path)
    if not path.is_file():
        raise LwposeError(f"checkpoint {path} does not exist")
    data = load_file(path)
    if not isinstance(data, dict):
        raise LwposeError(f"checkpoint {path} holds a {type(data).__name__}, not a state dict")
    meta: dict = {}
    for entry in ("state_dict", "model"):
        if isinstance(data.get(entry), dict):
            meta = {k: v for k, v in data.items() if k != entry}
            data = data[entry]
            break
    state = {k.removeprefix("module."): v for k, v in data.items()}
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LwposeError(f"checkpoint {path} has no state dict (expected tensors under 'state_dict' or 'model')")
    return state, meta


def load_network(path: Path, arch: str | None = None, num_refinement_stages: int | None = None) -> PoseNet:
    """The network of checkpoint ``path`` in eval mode; ``arch``/stages default to what the keys say."""
    state, meta = read_checkpoint(path)
    detected = detect_arch(state)
    if detected is None and (arch is None or num_refinement_stages is None):
        raise LwposeError(f"checkpoint {path} is not a Lightweight OpenPose state dict (no key cpm.align.0.weight); "
                          f"first keys: {', '.join(list(state)[:3])}")
    arch = arch or meta.get("arch") or detected[0]
    stages = num_refinement_stages if num_refinement_stages is not None else detected[1]
    if arch not in ARCHITECTURES:
        raise LwposeError(f"checkpoint {path}: unknown architecture {arch!r} (choose {', '.join(ARCHITECTURES)})")
    net = build(arch, stages)
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (needs {tuple(v.shape)})" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        problems = [f"{label}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
                    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
        raise LwposeError(f"checkpoint {path} does not match {arch} with {stages} refinement stage(s): "
                          + "; ".join(problems))
    net.load_state_dict(state)
    return net.eval()
