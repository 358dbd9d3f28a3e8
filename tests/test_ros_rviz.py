"""RViz, seen: ``demo.launch rviz:=true`` under Xvfb, a screenshot showing the skeleton markers.

Xvfb keeps its screen in an XWD file (``-fbdir``), read here with numpy. Set
``LWPOSE_RVIZ_SCREENSHOT=FILE.png`` to keep the screenshot (docs/img/rviz_demo.png was made so).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from ros.workspace import WS, ROOT, require_roscore, require_workspace

require_workspace()
require_roscore()
pytestmark = [pytest.mark.ros, pytest.mark.slow]

from lwpose_ros import harness  # noqa: E402

SIZE = (1280, 800)


def read_xwd(path: Path) -> np.ndarray:
    """The BGR image of a 24/32-bit TrueColor XWD file (Xvfb's screen)."""
    data = path.read_bytes()
    fields = np.frombuffer(data[:100], ">u4")
    header_size, width, height, bits, bytes_per_line, ncolors = (int(fields[i]) for i in (0, 4, 5, 11, 12, 19))
    assert bits == 32, bits
    start = header_size + 12 * ncolors
    pixels = np.frombuffer(data[start:start + bytes_per_line * height], np.uint8).reshape(height, bytes_per_line // 4, 4)
    return np.ascontiguousarray(pixels[:, :width, :3])  # little-endian BGRX


def wait_for_skeleton_markers(env: dict, timeout: float) -> None:
    """Until the node publishes a marker with points (``rostopic echo`` in a subprocess: this
    process may already be a rospy node of another test module's master, and rospy allows one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            out = subprocess.run(["rostopic", "echo", "-n", "1", "/pose_estimator/markers"], env=env,
                                 capture_output=True, text=True, timeout=30).stdout
        except subprocess.TimeoutExpired:
            continue
        if re.search(r"points:\s*\n\s*-", out):
            return
    raise AssertionError(f"no skeleton markers in {timeout} s")


def test_rviz_shows_the_skeleton_markers(tmp_path, ir_path):
    if shutil.which("Xvfb") is None or shutil.which("rviz") is None:
        pytest.skip("Xvfb or rviz not installed (apt-get install xvfb rviz)")
    display = f":{harness.free_port() % 1000 + 100}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{SIZE[0]}x{SIZE[1]}x24", "-fbdir", str(tmp_path),
                             "+extension", "GLX", "-nolisten", "tcp"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    port = harness.free_port()
    env = harness.workspace_env(WS, port, tmp_path, pythonpath=(str(ROOT),))
    env.update(DISPLAY=display, LIBGL_ALWAYS_SOFTWARE="1")
    core = harness.Roscore(port, env, tmp_path / "roscore.log")
    launch = harness.roslaunch("lwpose_ros", "demo.launch", {"model": ir_path, "rviz": "true"}, env,
                               tmp_path / "demo.log")
    try:
        wait_for_skeleton_markers(env, 120)
        time.sleep(15)  # RViz up, subscribed and rendering (software OpenGL on a busy machine)
        screen = read_xwd(tmp_path / "Xvfb_screen0")
        assert launch.running(), launch.output()[-3000:]
    finally:
        launch.stop()
        core.stop()
        xvfb.terminate()
        xvfb.wait(10)
    if os.environ.get("LWPOSE_RVIZ_SCREENSHOT"):
        cv2.imwrite(os.environ["LWPOSE_RVIZ_SCREENSHOT"], screen)
    hsv = cv2.cvtColor(screen, cv2.COLOR_BGR2HSV)
    vivid = (hsv[..., 1] > 180) & (hsv[..., 2] > 200)  # the markers' track colours (saturation 0.85)
    assert vivid.sum() > 500, vivid.sum()
