"""Grouping of the network's heatmaps and PAFs into people (see docs/decoding.md).

``group`` validates the maps once and runs either the Cython extension ``_grouping`` (built by
setup.py) or the numpy reference; both give identical results and refuse the same maps.
"""
from __future__ import annotations

import numpy as np

from lwpose.decode import reference

try:
    from lwpose.decode import _grouping
except ImportError:  # extension not built
    _grouping = None

BACKENDS = ("auto", "cython", "reference")


def group(heatmaps: np.ndarray, pafs: np.ndarray, *, stride: int = 8, backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Group one frame's maps into people.

    heatmaps: (19, H, W) (or (18, H, W)) float32 as the network outputs them, batch removed;
    pafs: (38, H, W). Returns keypoints (N, 18, 3) float32 (x, y, score) in network-input pixels,
    x = stride * (map x + 0.5) - 0.5, missing keypoints (-1, -1, 0), and scores (N,) float32,
    sorted by decreasing score. backend: "auto" (Cython if built, else reference), "cython",
    "reference". Bad maps raise ValueError naming the problem.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "cython" and _grouping is None:
        raise RuntimeError("the Cython grouping is not built; run `python setup.py build_ext --inplace`")
    if backend == "reference" or _grouping is None:
        return reference.decode(*reference.validate_maps(heatmaps, pafs, stride), stride)
    hm, paf = reference.validate_maps(heatmaps, pafs, stride, finite=False)
    if not (_grouping.all_finite(hm) and _grouping.all_finite(paf)):  # a bit test in C, no sums
        reference.check_finite(hm, paf)
    return _grouping.decode(hm, paf, stride)
