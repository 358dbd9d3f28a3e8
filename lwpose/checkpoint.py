"""Loading torch checkpoints of the Lightweight OpenPose family into ``lwpose.model`` networks
(for convert, train and checkpoint evaluation).

Accepted files: a plain state dict, ``{"state_dict": ...}`` (original training, ``lwpose
import-ir``) or ``{"model": ...}`` (``lwpose train``), optionally with ``arch`` and
``num_refinement_stages`` entries; a ``module.`` prefix (DataParallel) is stripped.
"""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch

from .errors import LwposeError
from .model import ARCHITECTURES, PoseNet, build, detect_arch


def load_file(path: Path) -> object:
    """The contents of the torch file ``path`` (weights only, on the CPU); LwposeError when unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. about the pickle protocol of a foreign file
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _unpickler_reason(str(exc))
        if reason is not None:
            raise LwposeError(f"cannot read checkpoint {path}: corrupt or not a torch checkpoint (it holds more "
                              f"than tensors and plain data, which lwpose never loads: {reason})") from None
        raise LwposeError(f"cannot read checkpoint {path}: corrupt or not a torch checkpoint "
                          f"(UnpicklingError {_first_line(str(exc))})") from None
    except Exception as exc:  # noqa: BLE001 - a corrupt file makes the unpickler fail in many ways
        detail = " ".join([type(exc).__name__, _first_line(str(exc))])
        raise LwposeError(f"cannot read checkpoint {path}: corrupt or not a torch checkpoint ({detail})") from None


def _unpickler_reason(message: str) -> str | None:
    """What torch's weights-only unpickler rejected, without its advice to load unsafely; None
    when ``message`` is not a weights-only refusal."""
    marker = "WeightsUnpickler error:"
    if marker not in message:
        return None
    detail = message.split(marker, 1)[1].split("Check the documentation", 1)[0]
    return " ".join(detail.split()) or "unsupported content"


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


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
