"""Shared fixtures: paths into ../shared (skipping cleanly when it is absent) and the models
``lwpose import-ir`` / ``lwpose convert`` make of the shared IR (once per session)."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__import__("os").environ.get("LWPOSE_SHARED", ROOT.parent / "shared"))
IR_XML = SHARED / "models/human-pose-estimation-0001/FP16-INT8/human-pose-estimation-0001.xml"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is missing")
    return SHARED


@pytest.fixture(scope="session")
def ir_path(shared_dir: Path) -> Path:
    if not IR_XML.is_file():
        pytest.skip(f"{IR_XML} is missing")
    return IR_XML


@pytest.fixture(scope="session")
def video_path(shared_dir: Path) -> Path:
    return shared_dir / "media/vtest.avi"


@pytest.fixture(scope="session")
def coco_mini(shared_dir: Path) -> Path:
    return shared_dir / "data/coco-mini"


@pytest.fixture(scope="session")
def pose_model(ir_path: Path):
    """A latency-mode PoseModel on the shared IR at height 256 (compiled once per session)."""
    from lwpose.runtime import PoseModel

    return PoseModel(ir_path, height=256)


#: The converted models that ``baselines/converted-*.json`` name: store name → ``lwpose convert``
#: options after ``build/hpe0001.pth -o build/NAME``, run from the repository root. Each baseline's
#: description and docs/accuracy.md give the same commands (a test in test_check.py compares).
CONVERTED = {
    "hpe0001-fp32": ["--precision", "FP32"],
    "hpe0001-int8": ["--precision", "INT8"],
}


@pytest.fixture(scope="session")
def imported_checkpoint(ir_path: Path, tmp_path_factory) -> Path:
    """``lwpose import-ir`` of the shared IR: ``hpe0001.pth`` in a session directory."""
    pytest.importorskip("torch")
    from lwpose.cli import main

    out = tmp_path_factory.mktemp("converted") / "hpe0001.pth"
    assert main(["import-ir", str(ir_path), "-o", str(out)]) == 0
    return out


def _convert(checkpoint: Path, name: str) -> Path:
    """Run ``lwpose convert`` with ``CONVERTED[name]`` from the repository root, registering the
    model as ``name`` in the store ``converted_home``; returns the model directory."""
    from lwpose.cli import main

    out = checkpoint.parent / name
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        patch.setenv("LWPOSE_HOME", str(checkpoint.parent / "home"))
        assert main(["convert", str(checkpoint), "-o", str(out), *CONVERTED[name], "--name", name]) == 0
    return out


@pytest.fixture(scope="session")
def fp32_model(imported_checkpoint: Path) -> Path:
    """The FP32 model directory (256x456) converted from ``imported_checkpoint``, registered as hpe0001-fp32."""
    return _convert(imported_checkpoint, "hpe0001-fp32")


@pytest.fixture(scope="session")
def int8_model(imported_checkpoint: Path) -> Path:
    """The NNCF INT8 model directory (256x456, the default calibration set), registered as hpe0001-int8."""
    pytest.importorskip("nncf")
    return _convert(imported_checkpoint, "hpe0001-int8")


@pytest.fixture(scope="session")
def converted_home(fp32_model: Path, int8_model: Path) -> Path:
    """The LWPOSE_HOME holding hpe0001-fp32 and hpe0001-int8 (set it to check their baselines)."""
    return fp32_model.parent / "home"
