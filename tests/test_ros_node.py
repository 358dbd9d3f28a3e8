"""Integration: a private roscore, the real pose node started by its launch files, real frames.

One roscore and four launches per module (started together so their model compilations
overlap): ``multi`` (multi_camera.launch, one camera namespace per test so no test sees another's
tracks), ``rgbd`` (rgbd.launch, compressed colour + 16UC1/32FC1 depth + camera_info, ROS4HRI
bodies), ``points`` (multi_camera.launch with an organised PointCloud2 and ``~target_frame``) and
``demo`` (demo.launch: video_publisher + node). The test process is a rospy node publishing
frames and waiting for the answers, stamp by stamp. What the node finds is compared with the
in-process reference (``AsyncEngine`` over ``PoseModel``, same model, height and tracking) on the
same frames, never with counts read off one machine.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import time

import cv2
import numpy as np
import pytest

from ros.workspace import ROOT, WS, require_roscore, require_workspace

require_workspace()
require_roscore()
pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.filterwarnings("ignore:notifyAll:DeprecationWarning")]

import rospy  # noqa: E402
from geometry_msgs.msg import PoseArray  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import TransformStamped  # noqa: E402
from hri_msgs.msg import IdsList, Skeleton2D  # noqa: E402
from lwpose_msgs.msg import PersonArray  # noqa: E402
from people_msgs.msg import People  # noqa: E402
from spencer_tracking_msgs.msg import DetectedPersons  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from lwpose_ros import harness  # noqa: E402
from ros.client import Collector, Rosout, Stamps, compressed, image, wait_connected  # noqa: E402

FIRST_ANSWER_TIMEOUT = 90.0  # the node's start: imports and model compilation, on a busy machine
ANSWER_TIMEOUT = 20.0
F, CX, CY = 600.0, 383.5, 287.5  # pinhole of the synthetic depth camera (768x576 like vtest)
#: one namespace per test of the ``multi`` node (its own tracker), plus cam_diag left silent
MULTI_CAMERAS = ("cam_ref", "cam_overlay", "cam_two_a", "cam_two_b", "cam_bad", "cam_deaf", "cam_diag", "cam_kill")
#: keypoints of the node vs the in-process reference, pixels. Measured: at most 6.1e-5 px over the
#: 36 people of the 12 frames (Intel Xeon with AMX, default bf16, height 256); the margin covers
#: another request count (nireq) changing kernel scheduling, never another model or precision.
KEYPOINT_TOL = 1.0


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
                                   {"cameras": f"[{', '.join(MULTI_CAMERAS)}]", "model": ir_path, "name": "multi"},
                                   env, logs / "multi.log"),
        "rgbd": harness.roslaunch("lwpose_ros", "rgbd.launch",
                                  {"camera": "rgbd_cam", "transport": "compressed", "model": ir_path, "name": "rgbd",
                                   "hri": "true"}, env, logs / "rgbd.log"),
        "points": harness.roslaunch("lwpose_ros", "multi_camera.launch",
                                    {"cameras": "[pc_cam]", "depth_source": "points", "model": ir_path,
                                     "name": "points", "target_frame": "base_link"}, env, logs / "points.log"),
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
        self.people = Collector(f"{out_ns}/people", People) if depth_topic else None
        self.detected = Collector(f"{out_ns}/detected_persons", DetectedPersons) if depth_topic else None
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
        **{name: Camera(f"/{name}/image", f"/multi/{name}") for name in MULTI_CAMERAS},
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


@pytest.fixture(scope="module")
def reference(ir_path, frames):
    """The in-process results on ``frames`` (one stream, tracked and smoothed as the node does)."""
    from lwpose.pipeline.engine import AsyncEngine
    from lwpose.runtime import PoseModel

    results = []
    with AsyncEngine(PoseModel(ir_path, height=256, mode="latency")) as engine:
        engine.add_stream("ref", results.append)
        for i, frame in enumerate(frames):
            engine.submit("ref", frame, 0.1 * (i + 1))
    return [r.people for r in sorted(results, key=lambda r: r.index)]


def as_array(person_msg) -> np.ndarray:
    return np.array([(k.x, k.y, k.score) for k in person_msg.keypoints], np.float32)


def assert_same_people(answer: PersonArray, people, ids: bool = True) -> None:
    """The node's people are the reference's: same number, keypoints within KEYPOINT_TOL, and
    (``ids``) the same track id for every whole pose."""
    assert len(answer.persons) == len(people), (len(answer.persons), len(people))
    for msg, ref in zip(answer.persons, people):
        got = as_array(msg)
        assert np.array_equal(got[:, 2] > 0, ref.found)
        assert np.abs(got[ref.found, :2] - ref.keypoints[ref.found, :2]).max() <= KEYPOINT_TOL
        assert msg.score == pytest.approx(ref.score, rel=0.01, abs=0.01)
        if ids and ref.track_id >= 0:
            assert msg.track_id == ref.track_id
        assert msg.track_id >= -1


@pytest.mark.numerics
def test_node_matches_the_in_process_reference(cams, frames, reference):
    cam, stamps = cams["cam_ref"], Stamps()
    answers = [cam.ask(image(f, stamps.next())) for f in frames]
    for answer, people in zip(answers, reference):
        assert_same_people(answer, people)
    last = answers[-1]
    assert last.header.frame_id == "cam" and all(len(p.keypoints) == 18 for p in last.persons)
    markers = cam.markers.stamped(last.header.stamp, ANSWER_TIMEOUT)
    shown = {(m.ns, m.id) for m in markers.markers if m.action == Marker.ADD}
    assert shown == {(ns, p.track_id if p.track_id >= 0 else -1 - i) for i, p in enumerate(last.persons)
                     for ns in ("skeleton", "joints")}
    poses = cam.poses.stamped(last.header.stamp, ANSWER_TIMEOUT)
    assert len(poses.poses) == len(last.persons)


@pytest.mark.numerics
def test_server_parameter_infers_on_a_kserve_server(ros, frames, reference, ir_path, tmp_path):
    """``~server``: the node sends its frames to an ``lwpose serve`` on 127.0.0.1 and finds the
    people the in-process reference finds (the same network, as on the node's own CPU)."""
    pytest.importorskip("tritonclient.grpc", reason="~server needs tritonclient (pip install 'lwpose[remote]')")
    if importlib.util.find_spec("kserve") is None:
        pytest.skip("lwpose serve needs kserve (pip install 'lwpose[serve]')")
    from tests.serving import Served

    served = Served(ir_path)
    launch = None
    try:
        served.wait_ready()
        launch = harness.roslaunch("lwpose_ros", "multi_camera.launch",
                                   {"cameras": "[cam_remote]", "model": ir_path, "name": "remote",
                                    "server": served.grpc}, ros["env"], tmp_path / "remote.log")
        cam, stamps = Camera("/cam_remote/image", "/remote/cam_remote"), Stamps()
        for answer, people in zip([cam.ask(image(f, stamps.next())) for f in frames[:4]], reference):
            assert_same_people(answer, people)
    finally:
        if launch is not None:
            launch.stop()
        served.stop()


def test_overlay_only_while_watched(cams, frames):
    cam, stamps = cams["cam_overlay"], Stamps()
    overlay = Collector("/multi/cam_overlay/overlay", Image)
    wait_connected([overlay.sub])
    stamp = stamps.next()
    cam.ask(image(frames[0], stamp))
    msg = overlay.stamped(stamp, ANSWER_TIMEOUT)
    assert (msg.width, msg.height, msg.encoding) == (768, 576, "bgr8")
    drawn = np.frombuffer(msg.data, np.uint8).reshape(576, 768, 3)
    assert np.any(drawn != frames[0])  # skeletons were drawn


def test_two_cameras_publish_in_their_namespaces(cams, frames, reference):
    stamps = Stamps()
    for name in ("cam_two_a", "cam_two_b"):
        cams[name].connect()
    sent = {}
    for name, k in (("cam_two_a", 0), ("cam_two_b", 5)):
        sent[name] = stamps.next()
        cams[name].image.publish(image(frames[k], sent[name]))
    for name, k in (("cam_two_a", 0), ("cam_two_b", 5)):
        answer = cams[name].persons.stamped(sent[name], FIRST_ANSWER_TIMEOUT)
        assert len(answer.persons) == len(reference[k])
    assert not any(m.header.stamp == sent["cam_two_b"] for m in cams["cam_two_a"].persons.msgs)


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
    people = cam.people.stamped(stamp, ANSWER_TIMEOUT)
    assert {p.name for p in people.people} <= {str(p.track_id) for p in answer.persons}
    assert len(people.people) == len(poses.poses)
    assert all(abs(p.position.z - 2.0) < 1e-3 and 0 <= p.reliability <= 1 for p in people.people)
    detected = cam.detected.stamped(stamp, ANSWER_TIMEOUT)
    assert len(detected.detections) == len(poses.poses) and detected.header.frame_id == "cam"
    ids = [d.detection_id for d in detected.detections]
    assert ids == sorted(set(ids)) and all(d.modality == "rgbd" for d in detected.detections)
    for d in detected.detections:
        assert d.pose.pose.position.z == pytest.approx(2.0, abs=1e-3)
        assert 0 < d.pose.covariance[0] == d.pose.covariance[7] == d.pose.covariance[14] < 9999 < d.pose.covariance[35]


def test_hri_bodies_tracked_with_skeletons_and_tf_frames_and_removed_when_gone(ros, cams, frames):
    import tf2_ros

    cam, stamps = cams["rgbd"], Stamps()
    tracked = Collector("/humans/bodies/tracked", IdsList)
    buffer = tf2_ros.Buffer()
    listener = tf2_ros.TransformListener(buffer)  # noqa: F841 - fills the buffer
    plane = np.full((576, 768), 2.0, np.float32)
    answers, lists = [], []
    for k in range(4):
        s = stamps.next()
        answers.append(cam.ask(compressed(frames[k], s), depth_msg(plane, s), info_msg(s)))
        lists.append(tracked.stamped(s, ANSWER_TIMEOUT))
    for answer, ids in zip(answers, lists):
        assert sorted(ids.ids) == sorted(f"b{p.track_id}" for p in answer.persons if p.track_id >= 0)
    stable = set(lists[0].ids) & set(lists[-1].ids)
    assert stable, [m.ids for m in lists]  # ids stay while the people stay
    body = sorted(stable)[0]
    person = next(p for p in answers[-1].persons if f"b{p.track_id}" == body)
    skeleton = Collector(f"/humans/bodies/{body}/skeleton2d", Skeleton2D)
    wait_connected([skeleton.sub])
    s = stamps.next()
    cam.ask(compressed(frames[3], s), depth_msg(plane, s), info_msg(s))
    msg = skeleton.stamped(s, ANSWER_TIMEOUT)
    assert len(msg.skeleton) == 18
    again = next(p for p in cam.persons.stamped(s, ANSWER_TIMEOUT).persons if f"b{p.track_id}" == body)
    by_name = {k.name: k for k in again.keypoints}
    for slot, name in ((Skeleton2D.NECK, "neck"), (Skeleton2D.LEFT_EYE, "left_eye"), (Skeleton2D.RIGHT_EAR, "right_ear")):
        k = by_name[name]
        if k.score > 0:
            assert (msg.skeleton[slot].x, msg.skeleton[slot].y) == pytest.approx((k.x / 768, k.y / 576), abs=1e-4)
    tf = buffer.lookup_transform("cam", f"body_{body}", s, rospy.Duration(ANSWER_TIMEOUT))
    assert tf.transform.translation.z == pytest.approx(2.0, abs=1e-3)
    assert person.track_id >= 0
    s = stamps.next()  # nobody in view: every body leaves the list
    cam.ask(compressed(np.zeros_like(frames[0]), s), depth_msg(plane, s), info_msg(s))
    assert tracked.stamped(s, ANSWER_TIMEOUT).ids == []


def cloud_msg(stamp) -> PointCloud2:
    """An organised float32 x, y, z cloud of a wall at z = 2 m seen by the pinhole F, CX, CY."""
    v, u = np.mgrid[0:576, 0:768].astype(np.float32)
    xyz = np.stack([(u - CX) * 2.0 / F, (v - CY) * 2.0 / F, np.full_like(u, 2.0)], axis=-1)
    fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1) for i, n in enumerate("xyz")]
    return PointCloud2(header=Header(stamp=stamp, frame_id="cam"), height=576, width=768, fields=fields,
                       is_bigendian=False, point_step=12, row_step=12 * 768, data=xyz.astype("<f4").tobytes(),
                       is_dense=True)


def test_organised_point_cloud_gives_3d_keypoints_in_the_target_frame(ros, cams, frames):
    import tf2_ros

    cam, stamps = cams["points"], Stamps()
    s = stamps.next()  # no transform cam -> base_link yet: a warning, 2D only
    answer = cam.ask(image(frames[0], s), cloud_msg(s))
    assert answer.header.frame_id == "base_link" and answer.persons
    assert not any(k.has_position for p in answer.persons for k in p.keypoints)
    ros["rosout"].warning("/points", "cam -> base_link", "transform unavailable")

    static = tf2_ros.StaticTransformBroadcaster()  # camera 1 m up, looking along base_link's x
    t = TransformStamped(child_frame_id="cam")
    t.header.frame_id, t.header.stamp = "base_link", rospy.Time.now()
    t.transform.translation.z = 1.0
    t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z, t.transform.rotation.w = -0.5, 0.5, -0.5, 0.5
    static.sendTransform(t)
    for _ in range(50):  # the node's tf listener gets the static transform
        s = stamps.next()
        answer = cam.ask(image(frames[0], s), cloud_msg(s))
        if any(k.has_position for k in found_keypoints(answer)):
            break
    inside = [k for k in found_keypoints(answer) if 0 <= round(k.x) < 768 and 0 <= round(k.y) < 576]
    assert len(inside) >= 20 and all(k.has_position for k in inside)
    for k in inside:  # optical (x right, y down, z forward) -> base_link (x forward, y left, z up)
        x, y, z = (k.x - CX) * 2.0 / F, (k.y - CY) * 2.0 / F, 2.0
        assert (k.position.x, k.position.y, k.position.z) == pytest.approx((z, -x, 1.0 - y), abs=0.01)


BAD_IMAGES = {
    "unsupported encoding": lambda s: Image(header=Header(stamp=s), height=2, width=2, encoding="yuv422", step=4,
                                            data=bytes(8)),
    "data has 5 bytes": lambda s: Image(header=Header(stamp=s), height=2, width=2, encoding="bgr8", step=6,
                                        data=bytes(5)),
    "empty image": lambda s: Image(header=Header(stamp=s), encoding="bgr8"),
}


@pytest.mark.parametrize("reason", BAD_IMAGES)
def test_bad_image_is_reported_and_the_next_frame_answered(ros, cams, frames, reference, reason):
    cam, stamps = cams["cam_bad"], Stamps()
    cam.ask(image(frames[1], stamps.next()))  # up and answering
    cam.image.publish(BAD_IMAGES[reason](stamps.next()))
    ros["rosout"].warning("/multi", "/cam_bad/image", reason)
    assert len(cam.ask(image(frames[2], stamps.next())).persons) == len(reference[2])


def test_frame_the_model_cannot_take_is_dropped_and_the_node_stays_responsive(ros, cams, frames, reference):
    """A 1x2000 bgr8 image once made the node deaf (an OpenVINO allocation error stuck in the engine)."""
    cam, stamps = cams["cam_deaf"], Stamps()
    cam.ask(image(frames[1], stamps.next()))
    for _ in range(3):
        cam.image.publish(image(np.zeros((1, 2000, 3), np.uint8), stamps.next()))
    ros["rosout"].warning("/multi", "/cam_deaf/image", "2000x1", "dropped")
    for k in (2, 3):
        assert len(cam.ask(image(frames[k], stamps.next())).persons) == len(reference[k])


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

    s = stamps.next()  # depth of another size than the image: 2D answer, warning on the depth topic
    answer = cam.ask(compressed(frames[2], s), depth_msg(np.full((288, 384), 2.0), s), info_msg(s))
    assert answer.persons and not any(k.has_position for p in answer.persons for k in p.keypoints)
    rosout.warning("/rgbd", "/rgbd_cam/aligned_depth_to_color/image_raw", "384x288", "same size")

    s = stamps.next()  # K with inf: 2D answer, warning on the camera_info topic
    answer = cam.ask(compressed(frames[2], s), depth_msg(good_depth, s), info_msg(s, f=float("inf")))
    assert answer.persons and not any(k.has_position for p in answer.persons for k in p.keypoints)
    rosout.warning("/rgbd", "/rgbd_cam/aligned_depth_to_color/camera_info", "non-finite")

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


@pytest.mark.parametrize("program, param, message", [
    ("pose_node", "_transport:=theora", "~transport must be one of raw, compressed"),
    ("pose_node", "_model:=/nonexistent/model.xml", "model file /nonexistent/model.xml"),
    ("pose_node", "_min_score:=nan", "~min_score must be a finite number"),
    ("pose_node", "_height:=800000", "~height must be between"),
    ("pose_node", "_cameras:=5", "~cameras must be a list"),
    ("video_publisher", "_rate:=fast", "~rate must be a number"),
    ("video_publisher", "_fov:=wide", "~fov must be a number"),
])
def test_invalid_parameter_is_fatal_and_named(ros, program, param, message):
    name = f"bad_{program}{param.split(':=')[0]}"  # one node per case: private parameters stay on the server
    run = subprocess.run(["rosrun", "lwpose_ros", program, param, f"__name:={name}"], env=ros["env"],
                         capture_output=True, text=True, timeout=60)
    out = run.stdout + run.stderr
    assert run.returncode == 2 and message in out, out
    assert "Traceback" not in out and len([line for line in out.splitlines() if "FATAL" in line]) == 1, out


def test_diagnostics_warn_while_silent_and_report_ok_while_processing(cams, frames):
    cam, stamps = cams["cam_diag"], Stamps()
    diagnostics = Collector("/diagnostics", DiagnosticArray)
    name = "multi: /cam_diag/image"

    def status(pred, since=0):
        msg = diagnostics.wait_for(lambda m: any(s.name == name and pred(s) for s in m.status), ANSWER_TIMEOUT, since)
        return next(s for s in msg.status if s.name == name)

    silent = status(lambda s: True)
    assert silent.level == DiagnosticStatus.WARN and "no image" in silent.message
    since = len(diagnostics.msgs)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # a camera at about 4 Hz, every frame answered
        cam.ask(image(frames[0], stamps.next()))
        time.sleep(0.2)
        if any(s.name == name and s.level == DiagnosticStatus.OK for m in diagnostics.msgs[since:] for s in m.status):
            break
    ok = status(lambda s: s.level == DiagnosticStatus.OK, since)
    values = {v.key: v.value for v in ok.values}
    assert float(values["processed rate (Hz)"]) > 0 and float(values["latency p95 (ms)"]) >= float(values["latency p50 (ms)"])
    assert {"input rate (Hz)", "dropped frames", "model", "precision"} <= set(values)


def test_rosnode_kill_exits_cleanly(ros, cams, frames):
    cam, launch = cams["cam_kill"], ros["launches"]["multi"]
    cam.ask(image(frames[0], Stamps().next()))
    cam.image.publish(image(frames[1], Stamps().next()))  # possibly in flight at the kill
    subprocess.run(["rosnode", "kill", "/multi"], env=ros["env"], check=True, capture_output=True, timeout=30)
    launch.proc.wait(30)  # the node is required: roslaunch ends with it
    out = launch.output()
    assert "/cam_kill/image: " in out and "frames processed" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]


def test_sigint_exits_cleanly(ros, cams, frames):
    cam, launch = cams["rgbd"], ros["launches"]["rgbd"]
    s = Stamps().next()
    cam.ask(compressed(frames[0], s), depth_msg(np.full((576, 768), 2.0), s), info_msg(s))
    assert launch.stop() == 0
    out = launch.output()
    assert "frames processed" in out and "Traceback" not in out, out[-3000:]
