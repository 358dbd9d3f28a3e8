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
from hri_msgs.msg import Skeleton2D  # noqa: E402
from lwpose_ros import convert, messages, sinks_hri, sinks_people, transform  # noqa: E402
from lwpose_ros.params import Params, VideoParams  # noqa: E402
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


@pytest.mark.parametrize("bad, name", [
    (dict(transport="theora"), "~transport"), (dict(depth_source="lidar"), "~depth_source"),
    (dict(depth_window=4), "~depth_window"), (dict(cameras=["a", "a"]), "~cameras"), (dict(slop=0), "~slop"),
    (dict(cameras=5), "~cameras"), (dict(cameras=[1, 2]), "~cameras"), (dict(min_score=float("nan")), "~min_score"),
    (dict(min_score="nan"), "~min_score"), (dict(min_score=-1), "~min_score"), (dict(height=800000), "~height"),
    (dict(height=250), "~height"), (dict(height="abc"), "~height"), (dict(height=256.5), "~height"),
    (dict(nireq=-1), "~nireq"), (dict(track="yes"), "~track"), (dict(hri=1), "~hri"), (dict(mode="fast"), "~mode"),
    (dict(target_frame=3), "~target_frame"), (dict(diagnostics_period=0), "~diagnostics_period"),
    (dict(queue_size=0), "~queue_size"), (dict(model=""), "~model"),
])
def test_params_are_validated_with_one_line_naming_the_parameter(bad, name):
    Params().validate()
    with pytest.raises(LwposeError) as err:
        Params(**bad).validate()
    assert str(err.value).startswith(name) and "\n" not in str(err.value)


def test_params_normalise_camera_strings_and_numbers():
    p = Params(cameras="front, /back", height="320", min_score=1)
    p.validate()
    assert (p.cameras, p.height, p.min_score) == (["front", "back"], 320, 1.0)


@pytest.mark.parametrize("bad, name", [(dict(rate="fast"), "~rate"), (dict(fov="wide"), "~fov"), (dict(fov=0), "~fov"),
                                       (dict(rate=float("inf")), "~rate"), (dict(loop="no"), "~loop"),
                                       (dict(video=3), "~video")])
def test_video_publisher_params_are_validated(bad, name):
    VideoParams().validate()
    with pytest.raises(LwposeError) as err:
        VideoParams(**bad).validate()
    assert str(err.value).startswith(name)


@pytest.mark.parametrize("k", [[np.inf, 0, 383.5, 0, 600, 287.5, 0, 0, 1], [600, 0, np.nan, 0, 600, 287.5, 0, 0, 1]])
def test_camera_info_with_non_finite_k_is_bad(k):
    with pytest.raises(convert.BadMessage, match="non-finite"):
        convert.Pinhole.from_camera_info(CameraInfo(width=768, height=576, K=k))


def test_registered_data_must_have_the_image_size():
    convert.check_registered("depth image", (768, 576), (768, 576))
    with pytest.raises(convert.BadMessage, match="depth image is 384x288 but the image is 768x576"):
        convert.check_registered("depth image", (384, 288), (768, 576))


def test_rep155_skeleton_order_swaps_eyes_and_ears_and_normalises():
    kps = np.zeros((18, 3), np.float32)
    for k, name in enumerate(KEYPOINTS_18):
        kps[k] = (10 * k + 5, 20, 0.5)
    kps[KEYPOINTS_18.index("left_ankle"), 2] = 0  # missing
    person = Person(kps, 1.0, track_id=3)
    points = sinks_hri.skeleton_points(person, 200, 40)
    assert len(points) == 18
    for slot, name in ((Skeleton2D.NOSE, "nose"), (Skeleton2D.LEFT_EYE, "left_eye"), (Skeleton2D.RIGHT_EYE, "right_eye"),
                       (Skeleton2D.LEFT_EAR, "left_ear"), (Skeleton2D.RIGHT_EAR, "right_ear"),
                       (Skeleton2D.RIGHT_WRIST, "right_wrist")):
        k = KEYPOINTS_18.index(name)
        assert (points[slot].x, points[slot].y, points[slot].c) == pytest.approx(((10 * k + 5) / 200, 0.5, 0.5))
    assert (points[Skeleton2D.LEFT_ANKLE].x, points[Skeleton2D.LEFT_ANKLE].c) == (0.0, 0.0)
    roi = sinks_hri.roi(person, 200, 40, Header())
    assert 0 <= roi.xmin < roi.xmax <= 1 and 0 <= roi.ymin <= roi.ymax <= 1 and roi.c == pytest.approx(0.5)


def test_detection_covariance_grows_with_distance_and_leaves_orientation_unset():
    near, far = (np.array(sinks_people.covariance(d)).reshape(6, 6) for d in (1.0, 5.0))
    assert 0 < near[0, 0] < far[0, 0] and near[0, 0] == near[1, 1] == near[2, 2]
    assert far[3, 3] > 9999 and np.count_nonzero(far - np.diag(np.diag(far))) == 0


def test_transform_apply_rotates_and_translates():
    half = np.sqrt(0.5)  # 90 degrees about z
    rt = (transform.rotation(0.0, 0.0, half, half), np.array([1.0, 2.0, 3.0]))
    moved = transform.apply(np.array([[1.0, 0.0, 0.0], [np.nan, 0, 0]]), rt)
    assert moved[0] == pytest.approx([1.0, 3.0, 3.0]) and np.isnan(moved[1]).all()


# md5sums of upstream's definitions, as published in code generated from them:
# hri_msgs (ros4hri/hri_msgs, ROS1 0.x line) by iviz (iviz_msgs Messages/HriMsgs/*.cs, "Md5Sum")
# and rosserial (hri_msgs/IdsList.h getMD5); people_msgs/People (wg-perception/people) and
# spencer_tracking_msgs/DetectedPerson(s) (spencer-project/spencer_people_tracking) by gennodejs
# (msg/*.js, md5sum()).
UPSTREAM_MD5 = {
    "hri_msgs/IdsList": "84a63f55b5676f78b625e8a8bb809fe5",
    "hri_msgs/NormalizedPointOfInterest2D": "eb224da30b2d872f41cf40e039cdb0d6",
    "hri_msgs/NormalizedRegionOfInterest2D": "33eb96af02d4b1dd1457132b5c2149c2",
    "hri_msgs/Skeleton2D": "efedc2dc59671380a1d9b497f0740be4",
    "people_msgs/People": "18722f4b8db20cc2369740732357847b",
    "spencer_tracking_msgs/DetectedPerson": "62855d424a3d5f142c0e8f5f63be52fe",
    "spencer_tracking_msgs/DetectedPersons": "38e416cebb5dfd7363bde91113e7f3bd",
}


@pytest.mark.parametrize("msg_type", UPSTREAM_MD5)
def test_message_md5sums_match_upstream(msg_type):
    import importlib

    package, name = msg_type.split("/")
    cls = getattr(importlib.import_module(f"{package}.msg"), name)
    assert (cls._type, cls._md5sum) == (msg_type, UPSTREAM_MD5[msg_type])
