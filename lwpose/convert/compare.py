"""Torch network vs OpenVINO IR on the same images: heatmap and PAF differences, both networks run
through :mod:`lwpose.backends` on the runtime's preprocessing (:func:`lwpose.preprocess.prepare`)."""
from __future__ import annotations

import numpy as np

from ..backends import Backend
from ..preprocess import prepare


def compare(reference: Backend, candidate: Backend, images: list[np.ndarray], height: int) -> dict[str, dict[str, float]]:
    """Max abs difference and correlation (pooled over ``images``) of two backends' maps, each
    image prepared at input ``height``."""
    pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"heatmaps": [], "pafs": []}
    for image in images:
        tensor, _ = prepare(image, height, reference.stride)
        for name, a, b in zip(pairs, reference.infer(tensor), candidate.infer(tensor)):
            pairs[name].append((a, b))
    stats = {}
    for name, maps in pairs.items():
        a = np.concatenate([m[0].ravel() for m in maps])
        b = np.concatenate([m[1].ravel() for m in maps])
        stats[name] = {"max_abs_diff": float(np.abs(a - b).max()), "correlation": float(np.corrcoef(a, b)[0, 1])}
    return stats
