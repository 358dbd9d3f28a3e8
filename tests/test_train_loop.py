"""End to end: import the real IR → fine-tune it on coco-mini (with validation) → convert the
training checkpoint → ``lwpose run`` on images."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from lwpose.cli import main
from lwpose.train.labels import prepare_labels

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.training
@pytest.mark.numerics
def test_finetune_imported_ir_then_convert_and_run(ir_path: Path, coco_mini: Path, tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    annotations, images = coco_mini / "person_keypoints_mini.json", coco_mini / "images"
    try:
        assert main(["import-ir", str(ir_path), "-o", str(tmp_path / "hpe0001.pth")]) == 0
        prepare_labels(annotations, tmp_path / "labels.json", progress=False)
        run = tmp_path / "finetune"
        assert main(["train", "run", "--config", str(ROOT / "configs/finetune-hpe0001.yaml"),
                     "--init", str(tmp_path / "hpe0001.pth"), "--train-labels", str(tmp_path / "labels.json"),
                     "--train-images", str(images), "--val-annotations", str(annotations), "--val-images", str(images),
                     "--val-height", "256", "--out", str(run), "--iterations", "2", "--val-every", "2",
                     "--input-size", "128", "--batch-size", "2", "--num-workers", "0", "--threads", "1",
                     "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    with open(run / "val.csv") as f:
        val = list(csv.DictReader(f))
    assert [r["iteration"] for r in val] == ["2"]
    assert float(val[0]["AP"]) >= 0.6  # the real weights survive fine-tuning (float IR import: ~0.68 at 256)

    model_dir = tmp_path / "model"
    assert main(["convert", str(run / "latest.pth"), "-o", str(model_dir), "--precision", "FP32",
                 "--shape", "256x456"]) == 0
    out = tmp_path / "poses"
    assert main(["run", str(images), "--model", str(model_dir), "--height", "256", "--out", str(out),
                 "--quiet", "--threads", "1"]) == 0
    frames = [json.loads(line) for line in (out / "images.jsonl").read_text().splitlines()]
    assert len(frames) == 4
    assert all(frame["people"] for frame in frames)
