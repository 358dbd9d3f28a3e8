"""``video_publisher``: publish a video file as a camera would, for robot-free demos and tests.

Publishes ``image`` (``sensor_msgs/Image``, bgr8) and ``camera_info`` (a pinhole model from the
``~fov`` horizontal field of view) with the same stamp, at the video's frame rate.

Parameters: ``~video`` (path, required), ``~rate`` (Hz, 0 = the file's frame rate), ``~loop``
(restart at the end, default true), ``~frame_id`` (default ``camera``), ``~fov`` (horizontal
field of view in degrees, default 60); checked at start (:class:`lwpose_ros.params.VideoParams`).
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import rospy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from lwpose.errors import LwposeError

from .convert import bgr_to_image
from .params import VideoParams


def pinhole_info(width: int, height: int, fov_deg: float, header: Header) -> CameraInfo:
    """A distortion-free ``CameraInfo`` with square pixels, centred, of horizontal FOV ``fov_deg``."""
    f = width / 2 / math.tan(math.radians(fov_deg) / 2)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    info = CameraInfo(header=header, width=width, height=height, distortion_model="plumb_bob")
    info.D = [0.0] * 5
    info.K = [f, 0, cx, 0, f, cy, 0, 0, 1]
    info.R = [1, 0, 0, 0, 1, 0, 0, 0, 1]
    info.P = [f, 0, cx, 0, 0, f, cy, 0, 0, 0, 1, 0]
    return info


def main() -> int:
    rospy.init_node("video_publisher")
    try:
        params = VideoParams.from_ros()
    except LwposeError as exc:
        rospy.logfatal(f"{rospy.get_name()}: {exc}")
        return 2
    video = params.video
    if not video or not Path(video).is_file():
        rospy.logfatal(f"~video: video file {video!r} not found")
        return 2
    cap = cv2.VideoCapture(video)
    if not cap.isOpened():
        rospy.logfatal(f"~video: {video!r} is not a readable video")
        return 2
    fps = cap.get(cv2.CAP_PROP_FPS)
    rate_hz = params.rate or (fps if fps > 0 else 30.0)
    loop, frame_id, fov = params.loop, params.frame_id, params.fov
    image_pub = rospy.Publisher("image", Image, queue_size=2)
    info_pub = rospy.Publisher("camera_info", CameraInfo, queue_size=2)
    rospy.loginfo(f"publishing {video} at {rate_hz:.1f} Hz on {image_pub.resolved_name}")
    rate = rospy.Rate(rate_hz)
    published = 0
    try:
        while not rospy.is_shutdown():
            ok, frame = cap.read()
            if not ok:
                if not loop or published == 0:
                    break
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                continue
            header = Header(stamp=rospy.Time.now(), frame_id=frame_id)
            image_pub.publish(bgr_to_image(frame, header))
            info_pub.publish(pinhole_info(frame.shape[1], frame.shape[0], fov, header))
            published += 1
            rate.sleep()
    except rospy.ROSInterruptException:
        pass
    finally:
        cap.release()
    return 0
