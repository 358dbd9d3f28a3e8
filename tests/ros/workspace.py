"""Locate the catkin workspace and make its Python packages importable, or skip the module."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WS = ROOT / "ros_ws"
DIST = WS / "devel" / "lib" / "python3" / "dist-packages"


def require_workspace() -> None:
    """Skip the calling test module unless rospy and the built workspace are there; then put the
    workspace's packages (lwpose_msgs, lwpose_ros) on sys.path."""
    pytest.importorskip("rospy", reason="rospy (ROS1) is not installed")
    if not (DIST / "lwpose_msgs").is_dir():
        pytest.skip(f"catkin workspace not built ({DIST} missing; run `make ros`)", allow_module_level=True)
    if str(DIST) not in sys.path:
        sys.path.insert(0, str(DIST))


def require_roscore() -> None:
    """Skip unless the roscore and roslaunch commands exist."""
    for tool in ("roscore", "roslaunch"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found (install ROS1: ros-core)", allow_module_level=True)
