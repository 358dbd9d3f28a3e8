"""The model store and the runtime model: fetch from a mirror, checksums, resolution, preprocessing."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lwpose import store
from lwpose.errors import LwposeError
from lwpose.preprocess import as_bgr
from lwpose.runtime import PoseModel


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LWPOSE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LWPOSE_MODEL_MIRROR", raising=False)
    return tmp_path / "home"


@pytest.mark.shared
def test_fetch_from_mirror_verifies_and_writes_metadata(home, shared_dir):
    target = store.fetch(mirror=shared_dir / "models")
    assert target == home / "models" / store.DEFAULT_MODEL
    assert (target / "model.bin").is_file()
    meta = json.loads((target / "lwpose.json").read_text())
    assert meta["outputs"] == {"heatmaps": "Mconv7_stage2_L2", "pafs": "Mconv7_stage2_L1"}
    assert store.installed() == [store.DEFAULT_MODEL]
    assert store.resolve(store.DEFAULT_MODEL) == target / "model.xml"


@pytest.mark.shared
def test_fetch_rejects_a_corrupt_mirror(home, shared_dir, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(shared_dir / "models", mirror)
    sub = mirror / store.KNOWN_MODELS[store.DEFAULT_MODEL].subdir
    (sub / "human-pose-estimation-0001.bin").chmod(0o644)
    with open(sub / "human-pose-estimation-0001.bin", "r+b") as f:
        f.write(b"\0\0\0\0")
    with pytest.raises(LwposeError, match="sha256"):
        store.fetch(mirror=mirror)
    assert store.installed() == []  # nothing half-installed


def test_resolve_errors_name_the_model(home):
    with pytest.raises(LwposeError, match="lwpose models fetch"):
        store.resolve(store.DEFAULT_MODEL)
    with pytest.raises(LwposeError, match="nope.xml"):
        store.resolve("nope.xml")


def test_register_copies_a_model_directory(home, ir_path, tmp_path):
    src = tmp_path / "converted"
    src.mkdir()
    shutil.copy(ir_path, src / "model.xml")
    shutil.copy(ir_path.with_suffix(".bin"), src / "model.bin")
    (src / "lwpose.json").write_text(json.dumps(store.KNOWN_MODELS[store.DEFAULT_MODEL].metadata))
    assert store.register("mine", src) == home / "models" / "mine"
    assert PoseModel("mine").backend.meta["stride"] == 8
    with pytest.raises(LwposeError, match="model.xml is missing"):
        store.register("bad", tmp_path)
    with pytest.raises(LwposeError, match="invalid model name ''"):
        store.register("", src)  # would name the store itself
    assert [p.name for p in (home / "models").iterdir()] == ["mine"]  # no temporary directory left
    (src / "lwpose.json").write_text("[]")
    with pytest.raises(LwposeError, match="not lwpose model metadata"):
        store.metadata(src / "model.xml")


@pytest.mark.shared
def test_models_cli(home, shared_dir):
    run = lambda *a: subprocess.run([sys.executable, "-m", "lwpose", "models", *a], capture_output=True, text=True)
    fetched = run("fetch", "--mirror", str(shared_dir / "models"))
    assert fetched.returncode == 0, fetched.stderr
    assert "installed" in run("list").stdout
    assert run("path", store.DEFAULT_MODEL).stdout.strip().endswith("model.xml")
    missing = run("path", "no-such-model")
    assert missing.returncode == 2 and "no-such-model" in missing.stderr and "Traceback" not in missing.stderr


def test_input_shape_follows_aspect_ratio(pose_model):
    assert pose_model.input_shape(576, 768) == (256, 344)
    assert pose_model.input_shape(480, 640) == (256, 344)
    assert pose_model.input_shape(1000, 100) == (256, 32)
    tensor, scale = pose_model.prepare(np.zeros((576, 768, 3), np.uint8))
    assert tensor.shape == (1, 256, 344, 3) and tensor.dtype == np.uint8
    assert scale == pytest.approx(256 / 576)
    assert (tensor[0, :, 341:] == 128).all()  # right padding is zero after normalisation


def test_infer_gives_maps_at_stride_8(pose_model, video_path):
    import cv2

    ok, frame = cv2.VideoCapture(str(video_path)).read()
    maps = pose_model.infer(frame)
    assert maps.heatmaps.shape == (19, 32, 43) and maps.pafs.shape == (38, 32, 43)
    assert np.isfinite(maps.heatmaps).all()
    assert maps.heatmaps[18].mean() > 0.5  # the background channel dominates


def test_bad_parameters_and_frames(ir_path):
    with pytest.raises(LwposeError, match="height"):
        PoseModel(ir_path, height=250)
    with pytest.raises(LwposeError, match="mode"):
        PoseModel(ir_path, mode="fast")
    with pytest.raises(LwposeError, match="device 'NO_SUCH_DEVICE'"):
        PoseModel(ir_path, device="NO_SUCH_DEVICE").infer(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError):
        as_bgr(np.zeros((4, 4, 3), np.float32))
    assert as_bgr(np.zeros((4, 4), np.uint8)).shape == (4, 4, 3)


def test_runtime_does_not_import_torch(ir_path, video_path):
    code = (
        "import sys, cv2, lwpose, lwpose.cli, lwpose.pipeline\n"
        "from lwpose.runtime import PoseModel\n"
        "lwpose.cli.build_parser()\n"
        f"m = PoseModel({str(ir_path)!r})\n"
        f"ok, f = cv2.VideoCapture({str(video_path)!r}).read()\n"
        "m(f)\n"
        "bad = [n for n in ('torch', 'nncf', 'pycocotools') if n in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_bare_xml_describes_itself_through_rt_info(ir_path, tmp_path):
    """``lwpose convert`` writes the metadata into the IR's rt_info too; a bare .xml then loads."""
    import json

    import openvino as ov

    from lwpose import store

    model = ov.Core().read_model(ir_path)
    model.set_rt_info(json.dumps(dict(store.KNOWN_MODELS["human-pose-estimation-0001"].metadata, name="bare")),
                      [store.RT_INFO_KEY])
    ov.save_model(model, tmp_path / "bare.xml")
    assert store.metadata(tmp_path / "bare.xml")["name"] == "bare"
    assert PoseModel(tmp_path / "bare.xml").backend.meta["name"] == "bare"
