"""Integration: a private roscore, the real pose node started by its launch files, real frames.

One roscore and four launches per module (started together so their model compilations
overlap): ``multi`` (multi_camera.launch, cameras cam_a and cam_b, raw images), ``rgbd``
(rgbd.launch, compressed colour + 16UC1/32FC1 depth + camera_info), ``points``
(multi_camera.launch with an organised PointCloud2) and ``demo`` (demo.launch: video_publisher
+ node). The test process is a rospy node publishing frames and waiting for the
answers, stamp by stamp.
"""
from __future__ import annotations

import os
import subprocess
import time

import cv2
import numpy as np
import pytest

from ros.workspace import ROOT, WS, require_roscore, require_workspace

require_workspace()
require_roscore()
pytestmark = [pytest.mark.ros, pytest.mark.filterwarnings("ignore:notifyAll:DeprecationWarning")]

import rospy  # noqa: E402
from geometry_msgs.msg import PoseArray  # noqa: E402
from lwpose_msgs.msg import PersonArray  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from lwpose_ros import harness  # noqa: E402
from ros.client import Collector, Rosout, Stamps, compressed, image, wait_connected  # noqa: E402

FIRST_ANSWER_TIMEOUT = 90.0  # the node's start: imports and model compilation, on a busy machine
ANSWER_TIMEOUT = 20.0
F, CX, CY = 600.0, 383.5, 287.5  # pinhole of the synthetic depth camera (768x576 like vtest)


@pytest.fixture(scope="module")
def frames(video_path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video_path))
    out = [cap.read()[1] for _ in range(13)][1:]  # the first frame shows only 2 of the pedestrians
    cap.release()
    assert all(f is not None for f in out)
    return out


@pytest.fixture(scope="module")
def ros(tmp_path_factory, ir_path):
    """roscore, the four launches, and this process as a rospy node (all torn down at the end)."""
    logs = tmp_path_factory.mktemp("ros")
    port = harness.free_port()
    env = harness.workspace_env(WS, port, logs, pythonpath=(str(ROOT),))
    core = harness.Roscore(port, env, logs / "roscore.log")
    launches = {
        "multi": harness.roslaunch("lwpose_ros", "multi_camera.launch",
                                   {"cameras": "[cam_a, cam_b]", "model": ir_path, "name": "multi"}, env,
                                   logs / "multi.log"),
        "rgbd": harness.roslaunch("lwpose_ros", "rgbd.launch",
                                  {"camera": "rgbd_cam", "transport": "compressed", "model": ir_path, "name": "rgbd"},
                                  env, logs / "rgbd.log"),
        "points": harness.roslaunch("lwpose_ros", "multi_camera.launch",
                                    {"cameras": "[pc_cam]", "depth_source": "points", "model": ir_path,
                                     "name": "points"}, env, logs / "points.log"),
        "demo": harness.roslaunch("lwpose_ros", "demo.launch", {"model": ir_path}, env, logs / "demo.log"),
    }
    saved = {k: os.environ.get(k) for k in ("ROS_MASTER_URI", "ROS_HOSTNAME", "ROS_HOME", "ROS_LOG_DIR")}
    os.environ.update({k: env[k] for k in saved})
    rospy.init_node("lwpose_test", anonymous=True, disable_signals=True)
    try:
        yield {"env": env, "launches": launches, "rosout": Rosout()}
    finally:
        rospy.signal_shutdown("tests done")
        for launch in launches.values():
            launch.stop()
        core.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Camera:
    """Publishers of one camera and collectors of the node's outputs for it."""

    def __init__(self, image_topic: str, out_ns: str, image_type=Image, depth_topic: str = "", depth_type=Image,
                 info_topic: str = "") -> None:
        self.image = rospy.Publisher(image_topic, image_type, queue_size=10)
        self.depth = rospy.Publisher(depth_topic, depth_type, queue_size=10) if depth_topic else None
        self.info = rospy.Publisher(info_topic, CameraInfo, queue_size=10) if info_topic else None
        self.persons = Collector(f"{out_ns}/persons", PersonArray)
        self.markers = Collector(f"{out_ns}/markers", MarkerArray)
        self.poses = Collector(f"{out_ns}/people_poses", PoseArray)
        self.ready = False

    def connect(self) -> None:
        items = [p for p in (self.image, self.depth, self.info) if p is not None]
        wait_connected(items + [self.persons.sub, self.markers.sub, self.poses.sub], FIRST_ANSWER_TIMEOUT)

    def ask(self, msg, depth=None, info: CameraInfo | None = None) -> PersonArray:
        """Publish a frame (and its depth and camera_info) and wait for its PersonArray."""
        if not self.ready:
            self.connect()
        if depth is not None:
            self.depth.publish(depth)
        if info is not None:
            self.info.publish(info)
        self.image.publish(msg)
        answer = self.persons.stamped(msg.header.stamp, ANSWER_TIMEOUT if self.ready else FIRST_ANSWER_TIMEOUT)
        self.ready = True
        return answer


@pytest.fixture(scope="module")
def cams(ros):
    return {
        "cam_a": Camera("/cam_a/image", "/multi/cam_a"),
        "cam_b": Camera("/cam_b/image", "/multi/cam_b"),
        "rgbd": Camera("/rgbd_cam/color/image_raw/compressed", "/rgbd", CompressedImage,
                       depth_topic="/rgbd_cam/aligned_depth_to_color/image_raw",
                       info_topic="/rgbd_cam/aligned_depth_to_color/camera_info"),
        "points": Camera("/pc_cam/image", "/points/pc_cam", depth_topic="/pc_cam/points", depth_type=PointCloud2),
    }


def depth_msg(metres: np.ndarray, stamp, encoding: str = "16UC1") -> Image:
    data = (metres * 1000).astype("<u2") if encoding == "16UC1" else metres.astype("<f4")
    return Image(header=Header(stamp=stamp, frame_id="cam"), height=data.shape[0], width=data.shape[1],
                 encoding=encoding, step=data.shape[1] * data.itemsize, data=data.tobytes())


def info_msg(stamp, f: float = F) -> CameraInfo:
    return CameraInfo(header=Header(stamp=stamp, frame_id="cam"), width=768, height=576,
                      K=[f, 0, CX, 0, f, CY, 0, 0, 1])


def found_keypoints(answer: PersonArray):
    return [k for p in answer.persons for k in p.keypoints if k.score > 0]


def test_video_frames_give_tracked_people_and_markers(cams, frames):
    cam, stamps = cams["cam_a"], Stamps()
    answers = [cam.ask(image(f, stamps.next())) for f in frames]
    counts = [len(a.persons) for a in answers]
    assert min(counts) >= 3, counts
    ids = [{p.track_id for p in a.persons} for a in answers]
    assert all(i >= 0 for s in ids for i in s)
    # ids persist from frame to frame (how well is lwpose.track's business; these are loose bounds)
    kept = [len(a & b) / len(b) for a, b in zip(ids[:8], ids[1:8])]
    assert np.mean(kept) >= 0.6, ids
    assert set.intersection(*ids[:8]), ids
    last = answers[-1]
    assert last.header.frame_id == "cam" and len(last.persons[0].keypoints) == 18
    markers = cam.markers.stamped(last.header.stamp, ANSWER_TIMEOUT)
    shown = {(m.ns, m.id) for m in markers.markers if m.action == Marker.ADD}
    assert shown == {(ns, p.track_id) for p in last.persons for ns in ("skeleton", "joints")}
    poses = cam.poses.stamped(last.header.stamp, ANSWER_TIMEOUT)
    assert len(poses.poses) == len(last.persons)


def test_overlay_only_while_watched(cams, frames):
    cam, stamps = cams["cam_a"], Stamps()
    overlay = Collector("/multi/cam_a/overlay", Image)
    wait_connected([overlay.sub])
    stamp = stamps.next()
    cam.ask(image(frames[0], stamp))
    msg = overlay.stamped(stamp, ANSWER_TIMEOUT)
    assert (msg.width, msg.height, msg.encoding) == (768, 576, "bgr8")
    drawn = np.frombuffer(msg.data, np.uint8).reshape(576, 768, 3)
    assert np.any(drawn != frames[0])  # skeletons were drawn


def test_two_cameras_publish_in_their_namespaces(cams, frames):
    stamps = Stamps()
    for cam in (cams["cam_a"], cams["cam_b"]):
        cam.connect()
    sent = {}
    for name, frame in (("cam_a", frames[0]), ("cam_b", cv2.flip(frames[5], 1))):
        sent[name] = stamps.next()
        cams[name].image.publish(image(frame, sent[name]))
    for name in sent:
        answer = cams[name].persons.stamped(sent[name], FIRST_ANSWER_TIMEOUT)
        assert len(answer.persons) >= 3
    assert not any(m.header.stamp == sent["cam_b"] for m in cams["cam_a"].persons.msgs)


def test_depth_plane_gives_3d_keypoints(cams, frames):
    cam, stamps = cams["rgbd"], Stamps()
    plane = np.full((576, 768), 2.0, np.float32)
    with_holes = plane.copy()
    with_holes[::7, ::5] = np.nan  # 32FC1 marks missing depth with NaN
    for i, (depth, encoding) in enumerate(((plane, "16UC1"), (with_holes, "32FC1"))):
        stamp = stamps.next()
        answer = cam.ask(compressed(frames[i], stamp), depth_msg(depth, stamp, encoding), info_msg(stamp))
        kps = found_keypoints(answer)
        assert len(kps) >= 20
        inside = [k for k in kps if 0 <= round(k.x) < 768 and 0 <= round(k.y) < 576]
        assert inside and all(k.has_position for k in inside)
        for k in inside:
            assert k.position.z == pytest.approx(2.0, abs=1e-3)
            assert k.position.x == pytest.approx((k.x - CX) * 2.0 / F, abs=1e-3)
            assert k.position.y == pytest.approx((k.y - CY) * 2.0 / F, abs=1e-3)
        assert not any(k.has_position for p in answer.persons for k in p.keypoints if k.score == 0)
    markers = cam.markers.stamped(stamp, ANSWER_TIMEOUT)
    zs = [p.z for m in markers.markers if m.ns == "joints" for p in m.points]
    assert zs and np.allclose(zs, 2.0, atol=1e-3)
    poses = cam.poses.stamped(stamp, ANSWER_TIMEOUT)
    assert poses.poses and all(abs(p.position.z - 2.0) < 1e-3 for p in poses.poses)


def cloud_msg(stamp) -> PointCloud2:
    """An organised float32 x, y, z cloud of a wall at z = 2 m seen by the pinhole F, CX, CY."""
    v, u = np.mgrid[0:576, 0:768].astype(np.float32)
    xyz = np.stack([(u - CX) * 2.0 / F, (v - CY) * 2.0 / F, np.full_like(u, 2.0)], axis=-1)
    fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1) for i, n in enumerate("xyz")]
    return PointCloud2(header=Header(stamp=stamp, frame_id="cam"), height=576, width=768, fields=fields,
                       is_bigendian=False, point_step=12, row_step=12 * 768, data=xyz.astype("<f4").tobytes(),
                       is_dense=True)


def test_organised_point_cloud_gives_3d_keypoints(cams, frames):
    cam, stamp = cams["points"], Stamps().next()
    answer = cam.ask(image(frames[0], stamp), cloud_msg(stamp))
    inside = [k for k in found_keypoints(answer) if 0 <= round(k.x) < 768 and 0 <= round(k.y) < 576]
    assert len(inside) >= 20 and all(k.has_position for k in inside)
    for k in inside:  # the median of a symmetric window of a plane is its centre (up to borders)
        assert (k.position.x, k.position.y, k.position.z) == pytest.approx(
            ((k.x - CX) * 2.0 / F, (k.y - CY) * 2.0 / F, 2.0), abs=0.01)


BAD_IMAGES = {
    "unsupported encoding": lambda s: Image(header=Header(stamp=s), height=2, width=2, encoding="yuv422", step=4,
                                            data=bytes(8)),
    "data has 5 bytes": lambda s: Image(header=Header(stamp=s), height=2, width=2, encoding="bgr8", step=6,
                                        data=bytes(5)),
    "empty image": lambda s: Image(header=Header(stamp=s), encoding="bgr8"),
}


@pytest.mark.parametrize("reason", BAD_IMAGES)
def test_bad_image_is_reported_and_the_next_frame_answered(ros, cams, frames, reason):
    cam, stamps = cams["cam_b"], Stamps()
    cam.ask(image(frames[1], stamps.next()))  # up and answering
    cam.image.publish(BAD_IMAGES[reason](stamps.next()))
    ros["rosout"].warning("/multi", "/cam_b/image", reason)
    assert len(cam.ask(image(frames[2], stamps.next())).persons) >= 3


def test_bad_rgbd_messages_are_reported_and_survived(ros, cams, frames):
    cam, stamps, rosout = cams["rgbd"], Stamps(), ros["rosout"]
    good_depth = np.full((576, 768), 2.0, np.float32)
    cam.ask(compressed(frames[0], s := stamps.next()), depth_msg(good_depth, s), info_msg(s))

    s = stamps.next()  # depth without any valid pixel: 2D answer, warning on the depth topic
    answer = cam.ask(compressed(frames[1], s), depth_msg(np.full((576, 768), np.nan), s, "32FC1"), info_msg(s))
    assert answer.persons and not any(k.has_position for p in answer.persons for k in p.keypoints)
    rosout.warning("/rgbd", "/rgbd_cam/aligned_depth_to_color/image_raw", "no valid pixel")

    s = stamps.next()  # uncalibrated camera_info: 2D answer, warning on the camera_info topic
    answer = cam.ask(compressed(frames[2], s), depth_msg(good_depth, s), info_msg(s, f=0.0))
    assert answer.persons and not any(k.has_position for p in answer.persons for k in p.keypoints)
    rosout.warning("/rgbd", "/rgbd_cam/aligned_depth_to_color/camera_info", "not calibrated")

    s = stamps.next()  # undecodable compressed image: warning on the image topic
    cam.image.publish(CompressedImage(header=Header(stamp=s), format="jpeg", data=b"\xff\xd8 garbage"))
    cam.depth.publish(depth_msg(good_depth, s))
    cam.info.publish(info_msg(s))
    rosout.warning("/rgbd", "/rgbd_cam/color/image_raw/compressed", "cannot decode")

    start = len(rosout.msgs)  # camera_info missing: images and depth alone are not processed
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        s = stamps.next()
        cam.depth.publish(depth_msg(good_depth, s))
        cam.image.publish(compressed(frames[3], s))
        time.sleep(0.2)
        if any("none matched" in m.msg for m in rosout.msgs[start:]):
            break
    rosout.warning("/rgbd", "/rgbd_cam/color/image_raw/compressed", "none matched", "camera_info", timeout=0,
                   since=start)
    assert not any(m.header.stamp == s for m in cam.persons.msgs)

    answer = cam.ask(compressed(frames[4], s := stamps.next()), depth_msg(good_depth, s), info_msg(s))
    assert any(k.has_position for k in found_keypoints(answer))


def test_demo_launch_publishes_people_from_the_video(ros):
    answers = Collector("/pose_estimator/persons", PersonArray)
    answer = answers.wait_for(lambda m: len(m.persons) >= 1, FIRST_ANSWER_TIMEOUT)
    assert answer.header.frame_id == "camera"
    info = Collector("/camera/camera_info", CameraInfo).wait_for(lambda m: True, ANSWER_TIMEOUT)
    assert (info.width, info.height) == (640, 480) and info.K[0] > 0


@pytest.mark.parametrize("param, message", [("_transport:=theora", "~transport must be one of raw, compressed"),
                                            ("_model:=/nonexistent/model.xml", "model file /nonexistent/model.xml")])
def test_invalid_parameter_is_fatal_and_named(ros, param, message):
    name = "bad" + param.split(":=")[0]  # one node per case: private parameters stay on the server
    run = subprocess.run(["rosrun", "lwpose_ros", "pose_node", param, f"__name:={name}"], env=ros["env"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and message in run.stdout + run.stderr, run.stdout + run.stderr
    assert "Traceback" not in run.stderr


def test_rosnode_kill_exits_cleanly(ros, cams, frames):
    cam, launch = cams["cam_a"], ros["launches"]["multi"]
    cam.ask(image(frames[0], Stamps().next()))
    cam.image.publish(image(frames[1], Stamps().next()))  # possibly in flight at the kill
    subprocess.run(["rosnode", "kill", "/multi"], env=ros["env"], check=True, capture_output=True, timeout=30)
    launch.proc.wait(30)  # the node is required: roslaunch ends with it
    out = launch.output()
    assert "/cam_a/image: " in out and "frames processed" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]


def test_sigint_exits_cleanly(ros, cams, frames):
    cam, launch = cams["rgbd"], ros["launches"]["rgbd"]
    s = Stamps().next()
    cam.ask(compressed(frames[0], s), depth_msg(np.full((576, 768), 2.0), s), info_msg(s))
    assert launch.stop() == 0
    out = launch.output()
    assert "frames processed" in out and "Traceback" not in out, out[-3000:]
