"""lwpose check: the committed baselines pass (those of the store's IR and of the models
lwpose convert makes of it) under any inference precision, degraded models and predictions fail,
NaN never passes."""
from __future__ import annotations

import json
import math
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
COCO_368 = ROOT / "baselines/hpe0001-int8-coco-mini-368.json"
CONVERTED_FP32 = ROOT / "baselines/converted-fp32-coco-mini-368.json"


def _params(paths: list[Path]) -> list:
    """Baselines as parameters; those reading ${SHARED} data are marked shared, those with
    test-time augmentation (several inferences an image) slow."""
    params = []
    for path in paths:
        data = json.loads(path.read_text())
        marks = [pytest.mark.shared] if baseline.SHARED in path.read_text() else []
        if data.get("flip") or len(data.get("scales", [1.0])) > 1:
            marks.append(pytest.mark.slow)
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


@pytest.mark.numerics
@pytest.mark.parametrize("path", _params(BASELINES))
def test_committed_baseline_passes(path, ir_path, request, monkeypatch, capsys):
    if request.node.get_closest_marker("shared"):
        monkeypatch.setenv("LWPOSE_SHARED", str(request.getfixturevalue("shared_dir")))
    assert main(["check", "--baseline", str(path)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "PASS: AP" in out and "\nprecision    " in out and "\nprecision    ?" not in out


@pytest.mark.slow
@pytest.mark.numerics
@pytest.mark.parametrize("path", _params(CONVERTED_BASELINES))
def test_converted_baseline_passes(path, converted_home, monkeypatch, capsys):
    """The baseline's store name resolves to the model the documented commands make."""
    monkeypatch.setenv("LWPOSE_HOME", str(converted_home))
    assert main(["check", "--baseline", str(path)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "PASS: AP" in out and f"{converted_home}/models/{baseline.load(path).model}/model.xml" in out


@pytest.mark.parametrize("path", sorted((ROOT / "baselines").glob("*.json")), ids=lambda p: p.stem)
def test_every_baseline_has_a_tolerance_from_its_spread(path):
    """Each committed baseline names its tolerance (docs/accuracy.md: how it comes from the spread
    across inference precisions) and the precision its metrics were recorded under."""
    data = json.loads(path.read_text())
    assert baseline.is_tolerance(data.get("tolerance")) and 0.01 <= data["tolerance"] <= 0.06
    assert data.get("inference_precision") in ("f32", "bf16", "f16")


@pytest.mark.parametrize("path", CONVERTED_BASELINES, ids=[p.stem for p in CONVERTED_BASELINES])
def test_converted_baseline_documents_its_conversion(path):
    """The description gives the exact commands the fixtures run (conftest.CONVERTED)."""
    name = baseline.load(path).model
    description = json.loads(path.read_text())["description"]
    assert name in CONVERTED and "lwpose import-ir $(lwpose models path human-pose-estimation-0001)" in description
    command = " ".join(["lwpose convert build/hpe0001.pth -o", f"build/{name}", *CONVERTED[name], "--name", name])
    assert command in description


@pytest.fixture()
def coco_copy(tmp_path: Path, monkeypatch) -> Path:
    """The coco-mini 368 baseline copied out of the repository, its data written as
    ``${SHARED}/data/coco-mini/...`` with LWPOSE_SHARED=tests (tests/data mirrors ../shared's layout)."""
    monkeypatch.setenv("LWPOSE_SHARED", str(ROOT / "tests"))
    data = json.loads(COCO_368.read_text())
    data["images"] = "${SHARED}/data/coco-mini/images"
    data["annotations"] = "${SHARED}/data/coco-mini/person_keypoints_mini.json"
    copy = tmp_path / "baseline.json"
    copy.write_text(json.dumps(data))
    return copy


@pytest.mark.numerics
def test_degraded_model_fails(coco_copy, ir_path, capsys):
    """The same model at a much smaller input height must fall below the baseline's AP."""
    data = json.loads(coco_copy.read_text())
    data["height"] = 96
    coco_copy.write_text(json.dumps(data))
    assert main(["check", "--baseline", str(coco_copy)]) == 1
    assert "FAIL: AP dropped by" in capsys.readouterr().out


@pytest.mark.numerics
def test_shifted_keypoints_fail(ir_path, coco_mini):
    """Maps shifted by two cells (16 px at the input) give misplaced keypoints: the check fails."""
    base = baseline.load(COCO_368)
    base_path = coco_mini
    predictor = predict.Predictor(OpenVINOBackend(ir_path), height=base.data["height"])

    def shifted(frame: np.ndarray) -> Maps:
        maps = predictor(frame)
        return Maps(np.roll(maps.heatmaps, 2, axis=2), np.roll(maps.pafs, 2, axis=2), maps.scale)

    result = coco.evaluate(shifted, base_path / "images", base_path / "person_keypoints_mini.json")
    ok, report = baseline.compare(base.metrics, result["metrics"], tolerance=base.tolerance)
    assert not ok and report[-1].startswith("FAIL")


@pytest.mark.numerics
def test_update_rewrites_metrics_and_keeps_paths(coco_copy, ir_path, capsys):
    data = json.loads(coco_copy.read_text())
    data["metrics"]["AP"] = 0.99
    coco_copy.write_text(json.dumps(data))
    assert main(["check", "--baseline", str(coco_copy), "--update"]) == 0
    assert f"updated {coco_copy}" in capsys.readouterr().out
    updated = json.loads(coco_copy.read_text())
    committed = baseline.load(COCO_368)
    assert updated["metrics"].keys() == committed.metrics.keys()
    assert abs(updated["metrics"]["AP"] - committed.metrics["AP"]) <= committed.tolerance  # any precision
    assert updated["inference_precision"] in ("f32", "bf16", "f16")
    assert updated["tolerance"] == committed.tolerance
    assert updated["images"] == data["images"] and updated["images"].startswith("${SHARED}")


def test_compare_tolerance():
    ok, report = baseline.compare({"AP": 0.70}, {"AP": 0.695}, tolerance=0.01)
    assert ok and report[-1].startswith("PASS")
    ok, report = baseline.compare({"AP": 0.70}, {"AP": 0.68}, tolerance=0.01)
    assert not ok and "dropped by 0.0200" in report[-1]
    ok, report = baseline.compare({"AP": 0.70}, {"AP": 0.75}, tolerance=0.01)
    assert ok and "--update" in report[-1]


@pytest.mark.parametrize("expected, measured, tolerance", [
    ({"AP": 0.70}, {"AP": math.nan}, 0.01), ({"AP": math.nan}, {"AP": 0.70}, 0.01),
    ({"AP": 0.70}, {"AP": 0.70}, math.nan), ({"AP": 0.70}, {"AP": None}, 0.01), ({"AP": 0.70}, {"AP": 0.70}, -0.01),
    ({"AP": 0.70}, {"AP": 0.70}, math.inf), ({"AP": 1.5}, {"AP": 1.5}, 0.01),
])
def test_nan_never_passes(expected, measured, tolerance):
    ok, report = baseline.compare(expected, measured, tolerance)
    assert not ok and report[-1].startswith("FAIL")


@pytest.mark.parametrize("change, message", [
    ({"tolerance": math.nan}, "tolerance must be a finite number"), ({"tolerance": -0.01}, "tolerance must be"),
    ({"tolerance": "0.01"}, "tolerance must be"), ({"metrics": {"AP": math.nan}}, "metrics.AP must be a number"),
    ({"metrics": {"AP": None}}, "metrics.AP must be a number"),
])
def test_nan_in_a_baseline_file_is_refused(change, message, tmp_path, capsys):
    path = tmp_path / "nan.json"
    path.write_text(json.dumps({**json.loads(COCO_368.read_text()), **change}))  # json writes NaN as NaN
    with pytest.raises(LwposeError, match=message):
        baseline.load(path)
    assert main(["check", "--baseline", str(path), "--tolerance", "nan"]) == 2
    assert "--tolerance must be a finite number" in capsys.readouterr().err


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
    path.write_text(json.dumps({**json.loads(COCO_368.read_text()), "images": "${SHARED}/data/coco-mini/images"}))
    base = baseline.load(path)
    with pytest.raises(LwposeError, match="LWPOSE_SHARED"):
        base.resolve(base.data["images"])
    assert base.resolve("data/x.json") == path.parent / "data/x.json"
    assert baseline.Baseline(path, {"model": "human-pose-estimation-0001"}).model == "human-pose-estimation-0001"
