"""Shared fixtures: paths into ../shared (skipping cleanly when it is absent)."""
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
