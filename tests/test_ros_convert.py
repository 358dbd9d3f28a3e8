"""Pure functions of the ROS node (no roscore): message conversion, deprojection, output messages."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from ros.workspace import require_workspace

require_workspace()
pytestmark = pytest.mark.ros

from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

from lwpose.errors import LwposeError  # noqa: E402
from lwpose.pose import KEYPOINTS_18, Person  # noqa: E402
from lwpose_ros import convert, messages  # noqa: E402
from lwpose_ros.node import Params  # noqa: E402
from lwpose_ros.video_publisher import pinhole_info  # noqa: E402

RNG = np.random.default_rng(0)
BGR = RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)


def image_msg(pixels: np.ndarray, encoding: str, pad: int = 0, **fields) -> Image:
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1)
    rows = np.concatenate([rows, np.zeros((h, pad), np.uint8)], axis=1) if pad else rows
    msg = Image(height=h, width=w, encoding=encoding, step=rows.shape[1], data=rows.tobytes())
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


@pytest.mark.parametrize("encoding, code", [
    ("bgr8", None), ("rgb8", cv2.COLOR_BGR2RGB), ("bgra8", cv2.COLOR_BGR2BGRA), ("rgba8", cv2.COLOR_BGR2RGBA)])
def test_color_encodings_give_bgr(encoding, code):
    pixels = BGR if code is None else cv2.cvtColor(BGR, code)
    for pad in (0, 3):  # rows may be padded (step > width x channels)
        out = convert.image_to_bgr(image_msg(pixels, encoding, pad))
        assert out.dtype == np.uint8 and out.flags.c_contiguous
        np.testing.assert_array_equal(out, BGR)


def test_mono8_becomes_grey_bgr():
    grey = BGR[:, :, 0]
    out = convert.image_to_bgr(image_msg(grey, "mono8"))
    assert out.shape == (6, 5, 3)
    np.testing.assert_array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))


@pytest.mark.parametrize("msg, reason", [
    (image_msg(BGR, "32FC1"), "unsupported encoding '32FC1'"),
    (image_msg(BGR, "bgr8", data=bytes(10)), "data has 10 bytes, expected step x height = 90"),
    (image_msg(BGR, "rgb8", step=2), "step 2 is smaller"),
    (Image(encoding="bgr8"), "empty image"),
])
def test_bad_images_raise_with_reason(msg, reason):
    with pytest.raises(convert.BadMessage, match=reason):
        convert.image_to_bgr(msg)


def test_compressed_png_round_trip_and_garbage():
    msg = CompressedImage(format="bgr8; png compressed", data=cv2.imencode(".png", BGR)[1].tobytes())
    np.testing.assert_array_equal(convert.compressed_to_bgr(msg), BGR)
    for data in (b"", b"not an image"):
        with pytest.raises(convert.BadMessage):
            convert.compressed_to_bgr(CompressedImage(format="jpeg", data=data))


def test_bgr_to_image_round_trip():
    header = Header(frame_id="cam")
    msg = convert.bgr_to_image(BGR, header)
    assert (msg.encoding, msg.step, msg.header.frame_id) == ("bgr8", 15, "cam")
    np.testing.assert_array_equal(convert.image_to_bgr(msg), BGR)


def test_depth_encodings_in_metres():
    mm = np.array([[2000, 0], [1500, 65535]], np.uint16)
    for bigendian in (0, 1):
        raw = mm.astype(">u2" if bigendian else "<u2").view(np.uint8).reshape(2, 4)
        depth = convert.depth_to_metres(image_msg(raw.reshape(2, 2, 2), "16UC1", is_bigendian=bigendian))
        np.testing.assert_allclose(depth, [[2.0, np.nan], [1.5, 65.535]], rtol=1e-6)
    metres = np.array([[2.0, np.nan], [-1.0, 0.5]], np.float32)
    depth = convert.depth_to_metres(image_msg(metres.view(np.uint8).reshape(2, 2, 4), "32FC1"))
    np.testing.assert_allclose(depth, [[2.0, np.nan], [np.nan, 0.5]])


def test_depth_without_valid_pixel_is_bad():
    nan = np.full((2, 2), np.nan, np.float32)
    with pytest.raises(convert.BadMessage, match="no valid pixel"):
        convert.depth_to_metres(image_msg(nan.view(np.uint8).reshape(2, 2, 4), "32FC1"))
    with pytest.raises(convert.BadMessage, match="unsupported depth encoding"):
        convert.depth_to_metres(image_msg(BGR, "bgr8"))


def camera_info(w: int = 640, h: int = 480, f: float = 500.0) -> CameraInfo:
    return CameraInfo(width=w, height=h, K=[f, 0, w / 2, 0, f, h / 2, 0, 0, 1])


def keypoints(*uv: tuple[float, float]) -> np.ndarray:
    kps = np.tile(np.float32([-1, -1, 0]), (18, 1))
    for i, (u, v) in enumerate(uv):
        kps[i] = (u, v, 0.9)
    return kps


def test_deproject_plane_is_robust_to_holes_and_outliers():
    depth = np.full((480, 640), 2.0, np.float32)
    depth[98:103, 318:323] = np.nan  # hole around the 2nd keypoint except ...
    depth[100, 322] = 2.0  # ... one valid pixel left
    depth[200:202, 400:402] = 9.0  # 4 outliers in the 25-pixel window of the 3rd keypoint
    depth[300:320, 100:120] = np.nan  # no depth at all around the 4th keypoint
    camera = convert.Pinhole.from_camera_info(camera_info())
    kps = keypoints((100, 50), (320, 100), (401, 201), (110, 310))
    xyz = convert.deproject(kps, (640, 480), depth, camera, window=5)
    for i in range(3):
        u, v = kps[i, :2]
        np.testing.assert_allclose(xyz[i], [(u - 320) * 2 / 500, (v - 240) * 2 / 500, 2.0], rtol=1e-6)
    assert np.isnan(xyz[3:]).all()  # no valid depth, and keypoints that were not found


def test_sample_is_the_median_of_valid_window_pixels():
    grid = RNG.normal(size=(30, 40, 2)).astype(np.float32)
    grid[RNG.random((30, 40)) < 0.3] = np.nan
    kps = np.c_[RNG.uniform(-2, 42, 200), RNG.uniform(-2, 32, 200), RNG.random(200) > 0.2].astype(np.float32)
    for window in (1, 4, 5):
        got = convert.sample(kps.reshape(10, 20, 3), (40, 30), grid, window).reshape(200, 2)
        for (x, y, score), value in zip(kps, got):
            col, row, half = int(np.rint(x)), int(np.rint(y)), window // 2
            inside = 0 <= col < 40 and 0 <= row < 30
            patch = grid[max(0, row - half):row + window - half, max(0, col - half):col + window - half].reshape(-1, 2)
            patch = patch[np.isfinite(patch).all(axis=1)]
            if score and inside and len(patch):
                np.testing.assert_allclose(value, np.median(patch, axis=0), rtol=1e-6)
            else:
                assert np.isnan(value).all()


def test_deproject_scales_depth_and_intrinsics_to_the_image():
    depth = np.full((240, 320), 3.0, np.float32)  # registered depth at half the colour resolution
    camera = convert.Pinhole.from_camera_info(camera_info(320, 240, 250.0))  # its intrinsics
    xyz = convert.deproject(keypoints((640, 120)), (1280, 960), depth, camera)
    np.testing.assert_allclose(xyz[0], [(640 - 640) * 3 / 1000, (120 - 480) * 3 / 1000, 3.0], atol=1e-6)


def test_uncalibrated_camera_info_is_bad():
    with pytest.raises(convert.BadMessage, match="not calibrated"):
        convert.Pinhole.from_camera_info(CameraInfo(width=640, height=480))


def cloud_msg(xyz: np.ndarray) -> PointCloud2:
    """An organised cloud with an extra rgb field, so points are 16 bytes apart."""
    h, w = xyz.shape[:2]
    points = np.zeros((h, w), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<f4")])
    for i, n in enumerate("xyz"):
        points[n] = xyz[..., i]
    fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1) for i, n in enumerate("xyzr")]
    fields[3].name = "rgb"
    return PointCloud2(height=h, width=w, fields=fields, is_bigendian=False, point_step=16, row_step=16 * w,
                       data=points.tobytes(), is_dense=False)


def test_organised_cloud_to_xyz_and_points_at_keypoints():
    xyz = RNG.normal(size=(4, 6, 3)).astype(np.float32)
    xyz[1, 2] = np.nan
    out = convert.cloud_to_xyz(cloud_msg(xyz))
    np.testing.assert_array_equal(out, xyz)
    pts = convert.points_at(keypoints((4, 3), (2, 1)), (6, 4), out, window=1)
    np.testing.assert_array_equal(pts[0], xyz[3, 4])
    assert np.isnan(pts[1:]).all()  # keypoint on a NaN point, and missing keypoints
    flat = cloud_msg(xyz[:1])
    with pytest.raises(convert.BadMessage, match="not organised"):
        convert.cloud_to_xyz(flat)


def people_2() -> list[Person]:
    a = Person(keypoints((100, 100), (100, 150), (80, 150), (70, 200), (60, 250), (120, 150)), 0.9, track_id=3)
    b = Person(keypoints((300, 100), (300, 150)), 0.5, track_id=7)
    return [a, b]


def test_persons_msg_marks_positions_only_where_valid():
    people = people_2()
    positions = np.full((2, 18, 3), np.nan, np.float32)
    positions[0, 1] = (0.1, 0.2, 2.0)
    msg = messages.persons_msg(Header(frame_id="cam"), people, positions)
    assert [p.track_id for p in msg.persons] == [3, 7]
    assert len(msg.persons[0].keypoints) == 18 and msg.persons[0].keypoints[5].name == KEYPOINTS_18[5]
    neck = msg.persons[0].keypoints[1]
    assert neck.has_position and (neck.position.x, neck.position.y, neck.position.z) == pytest.approx((0.1, 0.2, 2.0))
    assert not any(k.has_position for p in msg.persons for k in p.keypoints if k is not neck)
    assert msg.persons[1].keypoints[1].x == 300 and msg.persons[1].keypoints[5].score == 0
    flat = messages.persons_msg(Header(), people, None)
    assert not any(k.has_position for p in flat.persons for k in p.keypoints)


def test_markers_per_track_and_deleted_when_gone():
    people = people_2()
    first, shown = messages.markers_msg(Header(frame_id="cam"), people, None, set())
    assert shown == {3, 7}
    kinds = {(m.ns, m.id): m for m in first.markers}
    assert set(kinds) == {("skeleton", 3), ("joints", 3), ("skeleton", 7), ("joints", 7)}
    assert len(kinds["joints", 3].points) == 6
    assert len(kinds["skeleton", 3].points) == 2 * 5  # limbs neck-nose, neck-rsho, rsho-relb, relb-rwri, neck-lsho
    first_joint = kinds["joints", 3].points[0]
    assert (first_joint.x, first_joint.y, first_joint.z) == pytest.approx((0.1, 0.1, 0.0))  # image plane, 1 px = 1 mm
    second, shown = messages.markers_msg(Header(frame_id="cam"), people[1:], None, shown)
    assert shown == {7}
    deleted = {(m.ns, m.id) for m in second.markers if m.action == Marker.DELETE}
    assert deleted == {("skeleton", 3), ("joints", 3)}


def test_poses_are_3d_torso_centres():
    people = people_2()
    positions = np.full((2, 18, 3), np.nan, np.float32)
    positions[0, 1] = (0.0, 0.0, 2.0)  # neck
    positions[0, 2] = (-0.2, 0.0, 2.2)  # right shoulder
    positions[0, 0] = (5.0, 5.0, 5.0)  # nose: not torso, ignored
    msg = messages.poses_msg(Header(), people, positions)
    assert len(msg.poses) == 1  # the second person has no valid 3D point
    p = msg.poses[0]
    assert (p.position.x, p.position.y, p.position.z, p.orientation.w) == pytest.approx((-0.1, 0.0, 2.1, 1.0))
    assert len(messages.poses_msg(Header(), people, None).poses) == 2


def test_video_publisher_camera_info_projects_consistently():
    info = pinhole_info(768, 576, 60.0, Header())
    cam = convert.Pinhole.from_camera_info(info)
    assert cam.fx == pytest.approx(384 / np.tan(np.radians(30)))
    assert (cam.cx, cam.cy) == (383.5, 287.5)


def test_params_are_validated():
    Params().validate()
    for bad in (dict(transport="theora"), dict(depth_source="lidar"), dict(depth_window=4),
                dict(cameras=["a", "a"]), dict(slop=0)):
        with pytest.raises(LwposeError, match="~"):
            Params(**bad).validate()
