"""Shared fixtures: the model from the model store, the fixtures in the repository (coco-mini in
tests/data, the clip tests/data/vtest-60.mp4), paths into ../shared for tests marked ``shared`` (skipped,
with the reason printed, when it is absent), and the models ``lwpose import-ir`` /
``lwpose convert`` make of the store's IR (once per session)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before any test imports gRPC (tritonclient): its fork handlers can crash the many later
# subprocess forks of this process (grpc/grpc#29044); lwpose's KServeBackend sets the same.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LWPOSE_SHARED", ROOT.parent / "shared"))
#: The model every test runs (``make setup`` installs it into the store).
MODEL = "human-pose-estimation-0001"
#: The first 60 frames of vtest.avi (768x576, 10 frames/s, 2-7 people found a frame; tests/data/README.md).
CLIP = ROOT / "tests/data/vtest-60.mp4"
#: Fixtures that need ../shared: a test using one must be marked ``shared``.
SHARED_FIXTURES = {"shared_dir", "vtest_path"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a test that needs ../shared without the ``shared`` marker (it would skip unseen)."""
    unmarked = [item.nodeid for item in items
                if SHARED_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("shared")]
    if unmarked:
        raise pytest.UsageError(f"tests using {sorted(SHARED_FIXTURES)} must be marked shared: {unmarked}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("shared") and not SHARED.is_dir():
        pytest.skip(f"needs the shared data directory {SHARED} (set LWPOSE_SHARED), which is absent")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (or $LWPOSE_SHARED); only for tests marked ``shared``."""
    return SHARED


@pytest.fixture(scope="session")
def vtest_path(shared_dir: Path) -> Path:
    """The full 795-frame vtest.avi (768x576)."""
    return shared_dir / "media/vtest.avi"


@pytest.fixture(scope="session")
def ir_path() -> Path:
    """The store's ``model.xml`` of human-pose-estimation-0001 (the Open Model Zoo IR, renamed)."""
    from lwpose import store
    from lwpose.errors import LwposeError

    try:
        return store.resolve(MODEL)
    except LwposeError as exc:
        pytest.fail(f"{exc} (make setup installs it; LWPOSE_MODEL_MIRROR=DIR make setup from a mirror)")


@pytest.fixture(scope="session")
def video_path() -> Path:
    """A short real video in the repository: :data:`CLIP`."""
    return CLIP


@pytest.fixture(scope="session")
def coco_mini() -> Path:
    """4 COCO val2017 images with their 14 person annotations (tests/data/README.md)."""
    return ROOT / "tests/data/coco-mini"


@pytest.fixture(scope="session")
def pose_model(ir_path: Path):
    """A latency-mode PoseModel on the store's IR at height 256 (compiled once per session)."""
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
    """``lwpose import-ir`` of the store's IR: ``hpe0001.pth`` in a session directory."""
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
