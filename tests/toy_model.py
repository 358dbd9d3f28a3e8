"""Tiny IRs with the pose network's interface and broken outputs (wrong channel count, NaN maps),
built with OpenVINO's opset: the real runtime loads and runs them."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops

from lwpose import store


def toy_model_dir(directory: Path, *, heatmap_channels: int = 19, nan: bool = False) -> Path:
    """A model directory (model.xml/.bin + lwpose.json) whose outputs are 1/8 of the input size,
    ``heatmap_channels`` heatmaps and 38 PAFs; every value NaN when ``nan``."""
    meta = json.loads(json.dumps(store.KNOWN_MODELS[store.DEFAULT_MODEL].metadata))
    data = ops.parameter([1, 3, -1, -1], np.float32, name=meta["input"]["name"])
    pooled = ops.avg_pool(data, [8, 8], [0, 0], [0, 0], [8, 8], exclude_pad=True)
    outputs = []
    for role, channels in (("heatmaps", heatmap_channels), ("pafs", 38)):
        weights = ops.constant(np.full((channels, 3, 1, 1), np.nan if nan else 0.001, np.float32))
        out = ops.convolution(pooled, weights, [1, 1], [0, 0], [0, 0], [1, 1])
        out.output(0).get_tensor().set_names({meta["outputs"][role]})
        outputs.append(out)
    directory.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.Model(outputs, [data], "toy"), directory / "model.xml", compress_to_fp16=False)
    (directory / "lwpose.json").write_text(json.dumps(meta))
    return directory
