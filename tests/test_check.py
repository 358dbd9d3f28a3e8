"""lwpose check: the committed baselines pass (those of the shared IR and of the models
lwpose convert makes of it), degraded models and predictions fail."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lwpose.cli import main
from lwpose.errors import LwposeError
from lwpose.eval import baseline, coco, predict
from lwpose.backends.openvino import OpenVINOBackend
from lwpose.preprocess import Maps

from conftest import CONVERTED

ROOT = Path(__file__).resolve().parents[1]
#: Baselines of converted models (their model is a store name the conftest fixtures register).
CONVERTED_BASELINES = sorted((ROOT / "baselines").glob("converted-*.json"))
BASELINES = sorted(set((ROOT / "baselines").glob("*.json")) - set(CONVERTED_BASELINES))
OCHUMAN = ROOT / "baselines/hpe0001-int8-ochuman-mini-368.json"
CONVERTED_FP32 = ROOT / "baselines/converted-fp32-coco-mini-368.json"


@pytest.mark.parametrize("path", BASELINES, ids=[p.stem for p in BASELINES])
def test_committed_baseline_passes(path, ir_path, capsys):
    assert main(["check", "--baseline", str(path)]) == 0, capsys.readouterr().out
    assert "PASS: AP" in capsys.readouterr().out


@pytest.mark.parametrize("path", CONVERTED_BASELINES, ids=[p.stem for p in CONVERTED_BASELINES])
def test_converted_baseline_passes(path, converted_home, monkeypatch, capsys):
    """The baseline's store name resolves to the model the documented commands make."""
    monkeypatch.setenv("LWPOSE_HOME", str(converted_home))
    assert main(["check", "--baseline", str(path)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "PASS: AP" in out and f"{converted_home}/models/{baseline.load(path).model}/model.xml" in out


@pytest.mark.parametrize("path", CONVERTED_BASELINES, ids=[p.stem for p in CONVERTED_BASELINES])
def test_converted_baseline_documents_its_conversion(path):
    """The description gives the exact commands the fixtures run (conftest.CONVERTED)."""
    name = baseline.load(path).model
    description = json.loads(path.read_text())["description"]
    assert name in CONVERTED and "lwpose import-ir ../shared/models/" in description
    command = " ".join(["lwpose convert build/hpe0001.pth -o", f"build/{name}", *CONVERTED[name], "--name", name])
    assert command in description


@pytest.fixture()
def ochuman_copy(tmp_path: Path, shared_dir: Path, monkeypatch) -> Path:
    """The ochuman-mini baseline copied out of the repository (${SHARED} from LWPOSE_SHARED)."""
    monkeypatch.setenv("LWPOSE_SHARED", str(shared_dir))
    copy = tmp_path / "baseline.json"
    copy.write_text(OCHUMAN.read_text())
    return copy


def test_degraded_model_fails(ochuman_copy, ir_path, capsys):
    """The same model at a much smaller input height must fall below the baseline's AP."""
    data = json.loads(ochuman_copy.read_text())
    data["height"] = 96
    ochuman_copy.write_text(json.dumps(data))
    assert main(["check", "--baseline", str(ochuman_copy)]) == 1
    assert "FAIL: AP dropped by" in capsys.readouterr().out


def test_int8_against_fp32_baseline_fails(converted_home, shared_dir, tmp_path, monkeypatch, capsys):
    """The INT8 conversion scores below the FP32 one by more than the tolerance: checked against
    the FP32 baseline it fails, so the converted baselines see a quantization regression."""
    monkeypatch.setenv("LWPOSE_HOME", str(converted_home))
    monkeypatch.setenv("LWPOSE_SHARED", str(shared_dir))
    data = json.loads(CONVERTED_FP32.read_text())
    data["model"] = "hpe0001-int8"
    copy = tmp_path / "baseline.json"
    copy.write_text(json.dumps(data))
    assert main(["check", "--baseline", str(copy)]) == 1
    assert "FAIL: AP dropped by" in capsys.readouterr().out


def test_shifted_keypoints_fail(ir_path, shared_dir):
    """Maps shifted by two cells (16 px at the input) give misplaced keypoints: the check fails."""
    base = baseline.load(OCHUMAN)
    base_path = shared_dir / "data/ochuman-mini"
    predictor = predict.Predictor(OpenVINOBackend(ir_path), height=base.data["height"])

    def shifted(frame: np.ndarray) -> Maps:
        maps = predictor(frame)
        return Maps(np.roll(maps.heatmaps, 2, axis=2), np.roll(maps.pafs, 2, axis=2), maps.scale)

    result = coco.evaluate(shifted, base_path / "images", base_path / "person_keypoints_mini.json")
    ok, report = baseline.compare(base.metrics, result["metrics"], tolerance=0.01)
    assert not ok and report[-1].startswith("FAIL")


def test_update_rewrites_metrics_and_keeps_paths(ochuman_copy, ir_path, capsys):
    data = json.loads(ochuman_copy.read_text())
    data["metrics"]["AP"] = 0.99
    ochuman_copy.write_text(json.dumps(data))
    assert main(["check", "--baseline", str(ochuman_copy), "--update"]) == 0
    assert f"updated {ochuman_copy}" in capsys.readouterr().out
    updated = json.loads(ochuman_copy.read_text())
    assert updated["metrics"] == json.loads(OCHUMAN.read_text())["metrics"]
    assert updated["images"] == data["images"] and updated["images"].startswith("${SHARED}")


def test_compare_tolerance():
    ok, report = baseline.compare({"AP": 0.70}, {"AP": 0.695}, tolerance=0.01)
    assert ok and report[-1].startswith("PASS")
    ok, report = baseline.compare({"AP": 0.70}, {"AP": 0.68}, tolerance=0.01)
    assert not ok and "dropped by 0.0200" in report[-1]
    ok, report = baseline.compare({"AP": 0.70}, {"AP": 0.75}, tolerance=0.01)
    assert ok and "--update" in report[-1]


def test_baseline_without_metrics_needs_update(tmp_path, capsys):
    path = tmp_path / "new.json"
    path.write_text(json.dumps({"model": "m.xml", "images": "images", "annotations": "a.json"}))
    assert main(["check", "--baseline", str(path)]) == 2
    assert "--update" in capsys.readouterr().err


def test_bad_baseline_files_are_errors(tmp_path):
    with pytest.raises(LwposeError, match="file not found"):
        baseline.load(tmp_path / "none.json")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"model": "m.xml"}))
    with pytest.raises(LwposeError, match="missing images, annotations"):
        baseline.load(broken)


def test_shared_placeholder_without_shared_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("LWPOSE_SHARED", raising=False)
    path = tmp_path / "repo/baselines/b.json"
    path.parent.mkdir(parents=True)
    path.write_text(OCHUMAN.read_text())
    base = baseline.load(path)
    with pytest.raises(LwposeError, match="LWPOSE_SHARED"):
        base.resolve(base.data["images"])
    assert base.resolve("data/x.json") == path.parent / "data/x.json"
    assert baseline.Baseline(path, {"model": "human-pose-estimation-0001"}).model == "human-pose-estimation-0001"
