"""lwpose import-ir / lwpose convert on the store's IR: exactness, parity, metadata, bad inputs.
Map comparisons run the IRs in f32 whatever LWPOSE_INFERENCE_PRECISION says: exactness is the point."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")
pytest.importorskip("nncf")
ov = pytest.importorskip("openvino")

from lwpose.cli import main  # noqa: E402
from lwpose.backends.openvino import OpenVINOBackend  # noqa: E402
from lwpose.backends.torch import TorchBackend  # noqa: E402
from lwpose.checkpoint import load_network  # noqa: E402
from lwpose.convert.compare import compare  # noqa: E402
from lwpose.media import read_frames  # noqa: E402
from lwpose.preprocess import fit  # noqa: E402
from lwpose.media import image_files  # noqa: E402
from lwpose.convert.import_ir import _Graph, import_ir  # noqa: E402
from lwpose.pose import KEYPOINTS_18  # noqa: E402


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("convert")


@pytest.fixture(scope="module")
def net(imported_checkpoint: Path):
    return load_network(imported_checkpoint)


@pytest.fixture(scope="module")
def images(coco_mini: Path) -> list[np.ndarray]:
    return read_frames(coco_mini / "images", len(image_files(coco_mini / "images")))


def test_import_checkpoint_contents(imported_checkpoint: Path, ir_path: Path) -> None:
    data = torch.load(imported_checkpoint, map_location="cpu", weights_only=True)
    assert data["arch"] == "human-pose-estimation-0001" and data["num_refinement_stages"] == 1
    assert data["input"]["input_mean"] == pytest.approx([128.0] * 3, abs=0.01)
    assert data["input"]["input_scale"] == pytest.approx([255.0] * 3, abs=0.1)  # the OMZ IR divides by 255
    assert data["source"]["path"] == str(ir_path.resolve()) and len(data["source"]["sha256"]) == 64


def test_import_is_exact_without_activation_quantization(net, ir_path: Path, images) -> None:
    """With the IR's activation FakeQuantize removed and f32 inference, torch and IR agree to float precision."""
    model = ov.Core().read_model(ir_path)
    graph = _Graph(model)
    for op in model.get_ordered_ops():
        if op.get_type_name() == "FakeQuantize" and not graph.is_const(op):
            op.output(0).replace(op.input_value(0))
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    image = fit(images[0], 256, 456)
    result = compiled(image.transpose(2, 0, 1)[None].astype(np.float32))
    heatmaps, pafs = (m[None] for m in TorchBackend(net).infer(image[None]))
    assert np.abs(heatmaps - result["Mconv7_stage2_L2"]).max() < 1e-4
    assert np.abs(pafs - result["Mconv7_stage2_L1"]).max() < 1e-4


def test_imported_matches_source_ir(net, ir_path: Path, images) -> None:
    stats = compare(TorchBackend(net), OpenVINOBackend(ir_path, default_precision="f32"), images, 256)
    assert stats["heatmaps"]["correlation"] >= 0.99
    assert stats["pafs"]["correlation"] >= 0.99


def test_fp32_round_trip(fp32_model: Path, net, images, imported_checkpoint: Path, work: Path) -> None:
    stats = compare(TorchBackend(net), OpenVINOBackend(fp32_model / "model.xml", default_precision="f32"), images, 256)
    assert stats["heatmaps"]["max_abs_diff"] <= 1e-3 and stats["pafs"]["max_abs_diff"] <= 1e-3
    # IR → torch → IR → torch gives the same weights
    again = torch.load(import_ir(fp32_model / "model.xml", work / "again.pth"), weights_only=True)["state_dict"]
    first = torch.load(imported_checkpoint, weights_only=True)["state_dict"]
    assert max(float((first[k].float() - again[k].float()).abs().max()) for k in first) < 1e-5


def test_metadata(fp32_model: Path, imported_checkpoint: Path) -> None:
    meta = json.loads((fp32_model / "lwpose.json").read_text())
    assert meta["format"] == 1 and meta["name"] == "hpe0001-fp32" and meta["precision"] == "FP32"
    assert meta["architecture"] == "human-pose-estimation-0001" and meta["num_refinement_stages"] == 1
    assert meta["keypoints"] == list(KEYPOINTS_18) and meta["stride"] == 8
    assert meta["input"] == {"name": "image", "layout": "NHWC", "element_type": "u8", "color": "BGR",
                             "normalisation_in_graph": True, "mean": 128, "scale": 256, "shape": [1, 256, 456, 3]}
    assert meta["outputs"] == {"heatmaps": "heatmaps", "pafs": "pafs"}
    assert meta["source"]["path"] == str(imported_checkpoint.resolve()) and len(meta["source"]["sha256"]) == 64
    model = ov.Core().read_model(fp32_model / "model.xml")
    assert model.input(0).get_any_name() == "image" and model.input(0).get_element_type() == ov.Type.u8
    assert {o.get_any_name() for o in model.outputs} == {"heatmaps", "pafs"}
    assert sorted(p.name for p in fp32_model.parent.iterdir() if p.name.startswith(".hpe0001")) == []


def test_dynamic_check_and_register(imported_checkpoint: Path, work: Path, net, images, coco_mini: Path,
                                    monkeypatch, capsys) -> None:
    monkeypatch.setenv("LWPOSE_HOME", str(work / "home"))
    out = work / "dynamic"
    assert main(["convert", str(imported_checkpoint), "-o", str(out), "--dynamic", "--check", str(coco_mini),
                 "--name", "mine"]) == 0
    text = capsys.readouterr().out
    assert "FP16, dynamic" in text and "check heatmaps: max abs diff" in text and "check pafs" in text
    assert "COCO AP at height 256: torch" in text
    assert json.loads((out / "lwpose.json").read_text())["input"]["shape"] == "dynamic"
    assert (work / "home/models/mine/lwpose.json").is_file()
    ir = OpenVINOBackend(out / "model.xml", default_precision="f32")
    assert ir.meta["input"]["shape"] == "dynamic"
    for shape in ((128, 224), (192, 344)):
        ir_heatmaps, ir_pafs = ir.infer(fit(images[1], *shape)[None])
        heatmaps, pafs = TorchBackend(net).infer(fit(images[1], *shape)[None])
        assert ir_heatmaps.shape == heatmaps.shape == (19, shape[0] // 8, shape[1] // 8)
        assert np.abs(heatmaps - ir_heatmaps).max() <= 2e-2 and np.abs(pafs - ir_pafs).max() <= 2e-2  # FP16 weights


@pytest.mark.numerics
def test_int8(int8_model: Path, net, images) -> None:
    model = ov.Core().read_model(int8_model / "model.xml")
    assert any(op.get_type_name() == "FakeQuantize" for op in model.get_ordered_ops())
    assert json.loads((int8_model / "lwpose.json").read_text())["precision"] == "INT8"
    stats = compare(TorchBackend(net), OpenVINOBackend(int8_model / "model.xml", default_precision="f32"), images, 256)  # measured: 0.99983 and 0.99737
    assert stats["heatmaps"]["correlation"] >= 0.999 and stats["pafs"]["correlation"] >= 0.99


@pytest.fixture(scope="module")
def bad_cases(work: Path, imported_checkpoint: Path, ir_path: Path) -> dict[str, tuple[list[str], str]]:
    """CLI arguments (without -o unless the output is the point) and the expected message, per bad input."""
    import openvino.opset13 as ops

    (work / "corrupt.pth").write_bytes(b"\x80\x02not a pickle" * 10)
    (work / "a_file").write_text("x")
    (work / "unannotated").mkdir()
    cv2.imwrite(str(work / "unannotated/a.jpg"), np.zeros((16, 16, 3), np.uint8))
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, work / "other.pth")
    x = ops.parameter([1, 3, 8, 8], np.float32)
    conv = ops.convolution(x, ops.constant(np.ones((4, 3, 3, 3), np.float32)), [1, 1], [1, 1], [1, 1], [1, 1])
    ov.save_model(ov.Model([conv], [x]), work / "other.xml")
    checkpoint = str(imported_checkpoint)
    return {
        "missing checkpoint": (["convert", str(work / "nope.pth")], "does not exist"),
        "corrupt checkpoint": (["convert", str(work / "corrupt.pth")], "corrupt or not a torch checkpoint"),
        "not this family": (["convert", str(work / "other.pth")], "not a Lightweight OpenPose state dict"),
        "wrong architecture": (["convert", checkpoint, "--arch", "lightweight-openpose"],
                               "unexpected: cpm.reduce.0.weight"),
        "wrong stages": (["convert", checkpoint, "--refinement-stages", "3"], "missing: refinement_stages.1."),
        "bad shape": (["convert", checkpoint, "--shape", "250x456"], "multiples of 8"),
        "missing calibration": (["convert", checkpoint, "--precision", "INT8", "--calib", str(work / "nowhere")],
                                "no such folder or video"),
        "accuracy control without INT8": (["convert", checkpoint, "--accuracy-control", str(work)],
                                          "--accuracy-control applies to --precision INT8 only"),
        "accuracy control without annotations": (["convert", checkpoint, "--precision", "INT8", "--accuracy-control",
                                                  str(work / "unannotated")], "expected one COCO annotations *.json"),
        "INT8 check without annotations": (["convert", checkpoint, "--precision", "INT8",
                                            "--check", str(work / "unannotated")], "INT8 needs one COCO annotations"),
        "unwritable output": (["convert", checkpoint, "-o", str(work / "a_file/out")], "cannot write output"),
        "output is a file": (["convert", checkpoint, "-o", str(work / "a_file")], "not a model directory"),
        "IR of another network": (["import-ir", str(work / "other.xml")], "not an IR of the Lightweight OpenPose family"),
        "IR missing": (["import-ir", str(work / "nope.xml")], "does not exist"),
        "IR unwritable output": (["import-ir", str(ir_path), "-o", str(work / "a_file/x.pth")], "cannot write it"),
    }


@pytest.mark.parametrize("case", ["missing checkpoint", "corrupt checkpoint", "not this family", "wrong architecture",
                                  "wrong stages", "bad shape", "missing calibration", "accuracy control without INT8",
                                  "accuracy control without annotations", "INT8 check without annotations",
                                  "unwritable output",
                                  "output is a file", "IR of another network", "IR missing", "IR unwritable output"])
def test_bad_input(case: str, bad_cases, work: Path, capsys) -> None:
    argv, message = bad_cases[case]
    out = work / f"bad-{case.replace(' ', '-')}"
    if "-o" not in argv:
        argv = [*argv, "-o", str(out)]
    before = {p.name for p in work.iterdir()}
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lwpose {argv[0]}: error: ") and message in err and "Traceback" not in err
    assert not out.exists()
    assert {p.name for p in work.iterdir()} == before


@pytest.mark.slow
@pytest.mark.parametrize(("max_drop", "code"), [("0.001", 1), ("0.99", 0)])
def test_int8_check_gate(imported_checkpoint: Path, coco_mini: Path, work: Path, max_drop: str, code: int,
                         monkeypatch, capsys) -> None:
    """An INT8 model calibrated on one black image loses AP: ``--check`` exits 1 unless --max-drop allows it,
    and a failing model is not registered."""
    monkeypatch.setenv("LWPOSE_HOME", str(work / "gate-home"))
    calib = work / "black"
    calib.mkdir(exist_ok=True)
    cv2.imwrite(str(calib / "black.png"), np.zeros((256, 456, 3), np.uint8))
    out = work / f"gate-{max_drop}"
    assert main(["convert", str(imported_checkpoint), "-o", str(out), "--precision", "INT8", "--calib", str(calib),
                 "--check", str(coco_mini), "--max-drop", max_drop, "--name", "gate"]) == code
    text = capsys.readouterr().out
    assert "check INT8 COCO AP at height 256: FP32 IR" in text and "frames/s infer-only" in text
    assert ("check FAILED: INT8 loses" in text) == (code == 1)
    assert (out / "model.xml").is_file()
    assert (work / "gate-home/models/gate/lwpose.json").is_file() == (code == 0)
