"""Training checkpoints: weights-only initialisation from any checkpoint, full save/resume.

A checkpoint of this project is ``{"model", "arch", "num_refinement_stages", "optimizer",
"scheduler", "scaler", "iteration", "rng", "config", "lwpose_version"}``; it loads with
``torch.load(weights_only=True)``. Every save also points the run's ``latest.pth`` link at it.
"""
from __future__ import annotations

import logging
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lwpose import __version__
from lwpose.checkpoint import load_file, read_checkpoint
from lwpose.errors import LwposeError
from lwpose.fsutil import atomic_output
from lwpose.model import ARCHITECTURES, detect_arch

log = logging.getLogger(__name__)

LATEST = "latest.pth"
CHECKPOINT_DIR = "checkpoints"
_RESUME_KEYS = ("model", "arch", "num_refinement_stages", "optimizer", "scheduler", "scaler", "iteration", "rng",
                "config")


def checkpoint_arch(path: str | Path) -> str | None:
    """The architecture a checkpoint declares or its keys imply, or None."""
    state, meta = read_checkpoint(Path(path))
    if meta.get("arch") in ARCHITECTURES:
        return meta["arch"]
    detected = detect_arch(state)
    return detected[0] if detected else None


def init_weights(net: nn.Module, path: str | Path) -> dict[str, list[str]]:
    """Load the tensors of checkpoint ``path`` whose names and shapes match ``net``; log and
    return the rest (``missing`` from the file, ``mismatched`` shapes, ``unused`` file entries)."""
    source, _ = read_checkpoint(Path(path))
    target = net.state_dict()
    matched = {k: v for k, v in source.items() if k in target and v.shape == target[k].shape}
    if not matched:
        raise LwposeError(f"init {path}: none of its {len(source)} tensors matches the network "
                          f"(first keys: {', '.join(list(source)[:3])})", param="init")
    net.load_state_dict({**target, **matched})
    report = {
        "missing": [k for k in target if k not in source],
        "mismatched": [k for k in target if k in source and k not in matched],
        "unused": [k for k in source if k not in target],
    }
    log.info("init from %s: loaded %d of the network's %d tensors", path, len(matched), len(target))
    for what, keys in report.items():
        if keys:
            log.info("init: %s %d tensors: %s", what, len(keys), _summary(keys))
    return report


def folded_batchnorms(net: nn.Module) -> int:
    """Number of BatchNorm layers holding folded identity statistics (mean 0, variance 1 - eps,
    weight 1), as ``lwpose import-ir`` writes them; train-mode BatchNorm would change the network."""
    def folded(bn: nn.BatchNorm2d) -> bool:
        return bn.running_mean is not None and not bn.running_mean.any() \
            and bool((bn.running_var == 1 - bn.eps).all()) and bool((bn.weight == 1).all())

    return sum(1 for m in net.modules() if isinstance(m, nn.BatchNorm2d) and folded(m))


def _summary(keys: list[str]) -> str:
    """Keys grouped by their first two name parts, e.g. 'refinement_stages.1 (88)'."""
    groups = Counter(".".join(k.split(".")[:2]) for k in keys)
    return ", ".join(f"{g} ({n})" for g, n in groups.items())


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch global RNG states in weights-only-loadable types."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached": float(cached)}}


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))


def save_checkpoint(out: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus rng and version) as checkpoints/iter_NNNNNNN.pth and relink latest.pth."""
    path = out / CHECKPOINT_DIR / f"iter_{state['iteration']:07d}.pth"
    with atomic_output(path) as tmp:
        torch.save({**state, "rng": rng_state(), "lwpose_version": __version__}, tmp)
    link = out / LATEST
    tmp_link = out / (LATEST + ".tmp")
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(path.relative_to(out))
    os.replace(tmp_link, link)
    return path


def resolve_resume(path: str | Path) -> Path:
    """A checkpoint file, or a run directory's latest.pth."""
    path = Path(path)
    if path.is_dir():
        path = path / LATEST
    if not path.is_file():
        raise LwposeError(f"resume {path}: no such checkpoint", param="resume")
    return path


def read_resume(path: str | Path) -> dict[str, Any]:
    """A full training checkpoint of this project (LwposeError for anything else)."""
    path = resolve_resume(path)
    data = load_file(path)
    if not isinstance(data, dict) or any(k not in data for k in _RESUME_KEYS):
        raise LwposeError(f"resume {path}: not a training checkpoint of lwpose (needs "
                          f"{', '.join(_RESUME_KEYS)}); use --init to start from its weights", param="resume")
    return data
