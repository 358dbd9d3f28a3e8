"""``pose_node``: multi-person pose estimation on one or several ROS cameras (see docs/ros.md).

One :class:`lwpose.pipeline.engine.AsyncEngine` (one compiled model, one async infer queue) serves
every camera, exactly as ``lwpose run`` does. Subscriber callbacks only convert the image and
park it as the camera's pending frame (a newer frame replaces it and counts as a drop); one
submitter thread hands pending frames to the engine with ``try_submit`` whenever a request is
free, round-robin over cameras, so the newest frame of each camera is always the next processed.
Results are published from the engine's result callback.
"""
from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import message_filters
import numpy as np
import rospy
from geometry_msgs.msg import PoseArray
from lwpose.draw import draw_people
from lwpose.errors import LwposeError
from lwpose_msgs.msg import PersonArray
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from . import convert, messages

if TYPE_CHECKING:
    from lwpose.pipeline.engine import AsyncEngine, Result

TRANSPORTS = ("raw", "compressed")
DEPTH_SOURCES = ("none", "depth", "points")
WARN_PERIOD = 5.0  # seconds between two identical warnings about one topic
SYNC_WATCHDOG = 2.0  # seconds of images without synchronised depth before warning
RETRY_WAIT = 0.002  # seconds the submitter waits for a free request before retrying


@dataclass
class Params:
    """The node's private parameters (documented in docs/ros.md)."""

    model: str = "human-pose-estimation-0001"
    height: int = 256
    mode: str = "latency"
    nireq: int = 0
    track: bool = True
    smooth: bool = True
    min_score: float = 0.0
    queue_size: int = 2
    slop: float = 0.05
    frame_id: str = ""
    transport: str = "raw"
    cameras: list[str] = field(default_factory=list)
    depth_source: str = "none"
    depth_window: int = 5

    @classmethod
    def from_ros(cls) -> "Params":
        """Read ``~name`` for every field, keeping the defaults above, and validate."""
        values = {}
        for name, default in vars(cls()).items():
            value = rospy.get_param(f"~{name}", default)
            if isinstance(default, bool) and not isinstance(value, bool):
                raise LwposeError(f"~{name} must be true or false, not {value!r}")
            if isinstance(default, (int, float, str)) and not isinstance(default, bool):
                try:
                    value = type(default)(value)
                except (TypeError, ValueError):
                    raise LwposeError(f"~{name} must be of type {type(default).__name__}, not {value!r}") from None
            values[name] = value
        cameras = values["cameras"]
        if isinstance(cameras, str):
            cameras = cameras.replace(",", " ").split()
        values["cameras"] = [str(c).strip("/") for c in cameras]
        params = cls(**values)
        params.validate()
        return params

    def validate(self) -> None:
        for name, allowed in (("transport", TRANSPORTS), ("depth_source", DEPTH_SOURCES)):
            if getattr(self, name) not in allowed:
                raise LwposeError(f"~{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if self.queue_size < 1:
            raise LwposeError(f"~queue_size must be at least 1, not {self.queue_size}")
        if self.slop <= 0:
            raise LwposeError(f"~slop must be positive (seconds), not {self.slop}")
        if self.depth_window < 1 or self.depth_window % 2 == 0:
            raise LwposeError(f"~depth_window must be a positive odd number of pixels, not {self.depth_window}")
        if len(set(self.cameras)) != len(self.cameras) or "" in self.cameras:
            raise LwposeError(f"~cameras must be distinct non-empty namespaces, not {self.cameras}")


@dataclass
class Frame:
    """A converted image with what its result needs: header and the raw 3D messages."""

    image: np.ndarray
    header: Header
    depth: Image | PointCloud2 | None = None
    info: CameraInfo | None = None


class Warnings:
    """Throttled warnings: the same (topic, reason) at most once per ``period`` seconds."""

    def __init__(self, period: float = WARN_PERIOD) -> None:
        self.period = period
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def __call__(self, topic: str, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get((topic, reason), -np.inf) < self.period:
                return
            self._last[(topic, reason)] = now
        rospy.logwarn(f"{topic}: {reason}")


class Camera:
    """One camera namespace: its subscriptions and publishers, pending frame and counters."""

    def __init__(self, name: str, params: Params, offer, warn: Warnings) -> None:
        self.name = name or "camera"
        self.params = params
        self._offer = offer
        self._warn = warn
        ns = f"{name}/" if name else ""
        self.image_topic = rospy.resolve_name(ns + ("image/compressed" if params.transport == "compressed" else "image"))
        self.depth_topic = rospy.resolve_name(ns + ("points" if params.depth_source == "points" else "depth"))
        self.info_topic = rospy.resolve_name(ns + "camera_info")
        self.pending: Frame | None = None
        self.processed = 0
        self.dropped = 0
        self.marker_ids: set[int] = set()
        self.unmatched_since: float | None = None  # first image since depth last matched one
        self.persons_pub = rospy.Publisher(f"~{ns}persons", PersonArray, queue_size=5)
        self.markers_pub = rospy.Publisher(f"~{ns}markers", MarkerArray, queue_size=5)
        self.poses_pub = rospy.Publisher(f"~{ns}people_poses", PoseArray, queue_size=5)
        self.overlay_pub = rospy.Publisher(f"~{ns}overlay", Image, queue_size=2)
        self._subscribe()

    def _subscribe(self) -> None:
        p = self.params
        image_type = CompressedImage if p.transport == "compressed" else Image
        opts = dict(queue_size=p.queue_size, buff_size=1 << 24, tcp_nodelay=True)
        if p.depth_source == "none":
            self.subscribers = [rospy.Subscriber(self.image_topic, image_type, self._on_image, **opts)]
            return
        image_sub = message_filters.Subscriber(self.image_topic, image_type, **opts)
        self.subscribers = [image_sub]
        if p.depth_source == "depth":
            self.subscribers += [message_filters.Subscriber(self.depth_topic, Image, **opts),
                                 message_filters.Subscriber(self.info_topic, CameraInfo, queue_size=p.queue_size)]
        else:
            self.subscribers.append(message_filters.Subscriber(self.depth_topic, PointCloud2, **opts))
        self.sync = message_filters.ApproximateTimeSynchronizer(self.subscribers, max(p.queue_size, 5), p.slop)
        self.sync.registerCallback(self._on_synced)
        image_sub.registerCallback(self._check_synced)

    def _convert(self, msg) -> np.ndarray | None:
        try:
            if isinstance(msg, CompressedImage):
                return convert.compressed_to_bgr(msg)
            return convert.image_to_bgr(msg)
        except convert.BadMessage as exc:
            self._warn(self.image_topic, str(exc))
            return None

    def _on_image(self, msg) -> None:
        image = self._convert(msg)
        if image is not None:
            self._offer(self, Frame(image, msg.header))

    def _on_synced(self, msg, depth, info: CameraInfo | None = None) -> None:
        self.unmatched_since = None
        image = self._convert(msg)
        if image is not None:
            self._offer(self, Frame(image, msg.header, depth, info))

    def _check_synced(self, msg) -> None:
        now = time.monotonic()
        if self.unmatched_since is None:
            self.unmatched_since = now
        elif now - self.unmatched_since > SYNC_WATCHDOG:
            others = self.depth_topic + (f" and {self.info_topic}" if self.params.depth_source == "depth" else "")
            self._warn(self.image_topic, f"images arrive but none matched {others} within ~slop = "
                                         f"{self.params.slop} s for {SYNC_WATCHDOG} s; nothing is published")

    def positions(self, frame: Frame, people: list) -> np.ndarray | None:
        """(N, 18, 3) keypoint positions in metres (NaN = none), or None without 3D."""
        if self.params.depth_source == "none":
            return None
        keypoints = np.stack([p.keypoints for p in people]) if people else np.zeros((0, 18, 3), np.float32)
        size = (frame.image.shape[1], frame.image.shape[0])
        window = self.params.depth_window
        topic = self.depth_topic
        try:
            if self.params.depth_source == "points":
                return convert.points_at(keypoints, size, convert.cloud_to_xyz(frame.depth), window)
            topic = self.info_topic
            camera = convert.Pinhole.from_camera_info(frame.info)
            topic = self.depth_topic
            return convert.deproject(keypoints, size, convert.depth_to_metres(frame.depth), camera, window)
        except convert.BadMessage as exc:
            self._warn(topic, str(exc))
            return np.full(keypoints.shape, np.nan, np.float32)


class PoseNode:
    """The node: cameras sharing one engine, a submitter thread and the publishing callbacks."""

    def __init__(self, params: Params, engine: "AsyncEngine") -> None:
        self.params = params
        self.engine = engine
        self.warn = Warnings()
        self._cond = threading.Condition()
        self._stopping = False
        self._next = 0
        self.cameras = [Camera(name, params, self._offer, self.warn) for name in (params.cameras or [""])]
        for cam in self.cameras:
            engine.add_stream(cam.name, partial(self._publish, cam))
        self._thread = threading.Thread(target=self._submit_loop, name="lwpose-submit", daemon=True)
        self._thread.start()

    def _offer(self, cam: Camera, frame: Frame) -> None:
        """Make ``frame`` the camera's pending frame; a frame it replaces is dropped."""
        with self._cond:
            if self._stopping:
                return
            if cam.pending is not None:
                cam.dropped += 1
            cam.pending = frame
            self._cond.notify_all()

    def _take(self) -> tuple[Camera, Frame] | None:
        """The next pending frame, round-robin over cameras; None once stopping."""
        with self._cond:
            while not self._stopping:
                n = len(self.cameras)
                for k in range(n):
                    cam = self.cameras[(self._next + k) % n]
                    if cam.pending is not None:
                        self._next = (self._next + k + 1) % n
                        frame, cam.pending = cam.pending, None
                        return cam, frame
                self._cond.wait()
            return None

    def _submit_loop(self) -> None:
        while (item := self._take()) is not None:
            cam, frame = item
            stamp = frame.header.stamp.to_sec() or time.time()
            try:
                index = self.engine.try_submit(cam.name, frame.image, stamp, frame)
            except RuntimeError as exc:  # the engine failed (logged with its cause): stop the node
                rospy.logfatal(f"inference failed, shutting down: {exc!r} (cause: {exc.__cause__!r})")
                rospy.signal_shutdown("inference failed")
                return
            except Exception as exc:  # noqa: BLE001 - this frame cannot be prepared; go on with the next
                self.warn(cam.image_topic, f"frame rejected by the model: {exc}")
                continue
            if index is not None:
                continue
            with self._cond:  # no free request: keep the frame unless a newer one came, then wait
                if cam.pending is None:
                    cam.pending = frame
                else:
                    cam.dropped += 1
                self._cond.wait(RETRY_WAIT)

    def _publish(self, cam: Camera, result: "Result") -> None:
        """Engine result callback: publish persons, markers, poses and, if watched, the overlay.

        It never raises: an exception here would stop the engine for every camera."""
        frame: Frame = result.meta
        header = Header(stamp=frame.header.stamp, frame_id=self.params.frame_id or frame.header.frame_id)
        people = result.people
        try:
            positions = cam.positions(frame, people)
            cam.persons_pub.publish(messages.persons_msg(header, people, positions))
            markers, cam.marker_ids = messages.markers_msg(header, people, positions, cam.marker_ids)
            cam.markers_pub.publish(markers)
            cam.poses_pub.publish(messages.poses_msg(header, people, positions))
            if cam.overlay_pub.get_num_connections() > 0:
                overlay = draw_people(result.frame.copy(), people)
                cam.overlay_pub.publish(convert.bgr_to_image(overlay, header))
        except rospy.ROSException as exc:  # topics close during shutdown
            rospy.logdebug(f"{cam.name}: result not published: {exc}")
        except Exception:  # noqa: BLE001 - report and keep serving the other frames
            rospy.logerr_throttle(WARN_PERIOD, f"{cam.image_topic}: publishing frame {result.index} failed:\n"
                                               f"{traceback.format_exc()}")
        with self._cond:
            cam.processed += 1
            self._cond.notify_all()

    def close(self) -> None:
        """Stop taking frames, finish in-flight requests (their results are still published), log counts."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()
        try:
            self.engine.close()
        except RuntimeError as exc:
            rospy.logerr(f"closing the engine: {exc!r} (cause: {exc.__cause__!r})")
        for cam in self.cameras:
            rospy.loginfo(f"{cam.image_topic}: {cam.processed} frames processed, {cam.dropped} dropped")


def build_engine(params: Params) -> "AsyncEngine":
    """The shared model and async engine, configured as ``lwpose run`` does."""
    from lwpose.pipeline.engine import AsyncEngine
    from lwpose.runtime import PoseModel

    model = PoseModel(params.model, height=params.height, mode=params.mode, nireq=params.nireq)
    return AsyncEngine(model, nireq=params.nireq, track=params.track, smooth=params.smooth, min_score=params.min_score)


def main() -> int:
    rospy.init_node("pose_estimator")
    try:
        params = Params.from_ros()
        engine = build_engine(params)
    except LwposeError as exc:
        rospy.logfatal(f"{rospy.get_name()}: {exc}")
        return 2
    node = PoseNode(params, engine)
    rospy.on_shutdown(node.close)
    names = ", ".join(cam.image_topic for cam in node.cameras)
    rospy.loginfo(f"pose estimation on {names} with {params.model} (height {params.height}, {params.mode})")
    rospy.spin()
    return 0
