"""``pose_node``: multi-person pose estimation on one or several ROS cameras (see docs/ros.md).

Each camera is a :class:`lwpose.pipeline.sources.PushSource` of one
:class:`lwpose.pipeline.Pipeline` (one compiled model, one async infer queue), exactly the
newest-frame scheduler of ``lwpose run``. Subscriber callbacks only convert the image and push
it (a newer frame replaces one not yet read: a drop); one publishing thread takes the results of
every camera from the pipeline, fills their 3D side and hands them to the camera's sinks.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

import message_filters
import numpy as np
import rospy
from lwpose.errors import LwposeError
from lwpose.pipeline import Pipeline
from lwpose.pipeline.sources import PushSource
from lwpose.preprocess import check_frame_size
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from . import convert, transform
from .diagnostics import CameraStats, DiagnosticsPublisher
from .frames import Frame, Sink
from .params import Params
from .sinks_lwpose import LwposeSink

if TYPE_CHECKING:
    from lwpose.pipeline.engine import Result
    from lwpose.runtime import PoseModel

WARN_PERIOD = 5.0  # seconds between two identical warnings about one topic
SYNC_WATCHDOG = 2.0  # seconds of images without synchronised depth before warning


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
    """One camera namespace: its subscriptions, pipeline source, sinks and statistics.

    ``scheduled(camera)`` gives the frames the pipeline dropped and failed for it (diagnostics)."""

    def __init__(self, name: str, params: Params, warn: Warnings, sinks: list[Sink],
                 scheduled: Callable[["Camera"], tuple[int, int]]) -> None:
        self.name = name or "camera"
        self.params = params
        self._warn = warn
        ns = f"{name}/" if name else ""
        self.ns = ns
        self.image_topic = rospy.resolve_name(ns + ("image/compressed" if params.transport == "compressed" else "image"))
        self.depth_topic = rospy.resolve_name(ns + ("points" if params.depth_source == "points" else "depth"))
        self.info_topic = rospy.resolve_name(ns + "camera_info")
        self.source = PushSource(self.image_topic)
        self.stats = CameraStats(self.image_topic, lambda: scheduled(self))
        self.sinks: list[Sink] = [LwposeSink(ns), *sinks, self.stats]
        self.unmatched_since: float | None = None  # first image since depth last matched one
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
        """The BGR image of a message, or None (a warning, a rejected frame) when unusable."""
        try:
            image = convert.compressed_to_bgr(msg) if isinstance(msg, CompressedImage) else convert.image_to_bgr(msg)
        except convert.BadMessage as exc:
            self._warn(self.image_topic, str(exc))
            self.stats.on_reject()
            return None
        try:
            check_frame_size(*image.shape[:2])
        except LwposeError as exc:
            self._warn(self.image_topic, f"{exc}; frame dropped")
            self.stats.on_reject()
            return None
        return image

    def _push(self, frame: Frame) -> None:
        """Hand a frame to the pipeline (stamped with its header, or now without one)."""
        self.source.push(frame.image, frame.header.stamp.to_sec() or time.time(), frame)

    def _on_image(self, msg) -> None:
        self.stats.on_input()
        image = self._convert(msg)
        if image is not None:
            self._push(Frame(image, msg.header))

    def _on_synced(self, msg, depth, info: CameraInfo | None = None) -> None:
        self.unmatched_since = None
        image = self._convert(msg)
        if image is not None:
            self._push(Frame(image, msg.header, depth, info))

    def _check_synced(self, msg) -> None:
        self.stats.on_input()
        now = time.monotonic()
        if self.unmatched_since is None:
            self.unmatched_since = now
        elif now - self.unmatched_since > SYNC_WATCHDOG:
            others = self.depth_topic + (f" and {self.info_topic}" if self.params.depth_source == "depth" else "")
            self._warn(self.image_topic, f"images arrive but none matched {others} within ~slop = "
                                         f"{self.params.slop} s for {SYNC_WATCHDOG} s; nothing is published")

    def positions(self, frame: Frame, people: list) -> np.ndarray | None:
        """(N, 18, 3) keypoint positions in metres in the camera frame (NaN = none), or None without 3D."""
        if not self.params.has_3d:
            return None
        if not people:
            return np.zeros((0, 18, 3), np.float32)
        keypoints = np.stack([p.keypoints for p in people])
        size = (frame.image.shape[1], frame.image.shape[0])
        window = self.params.depth_window
        topic = self.depth_topic
        try:
            if self.params.depth_source == "points":
                convert.check_registered("point cloud", (frame.depth.width, frame.depth.height), size)
                return convert.points_at(keypoints, size, convert.cloud_to_xyz(frame.depth), window)
            topic = self.info_topic
            camera = convert.Pinhole.from_camera_info(frame.info)
            convert.check_registered("camera_info", (camera.width, camera.height), size)
            topic = self.depth_topic
            convert.check_registered("depth image", (frame.depth.width, frame.depth.height), size)
            return convert.deproject(keypoints, size, convert.depth_to_metres(frame.depth), camera, window)
        except convert.BadMessage as exc:
            self._warn(topic, str(exc))
            return np.full(keypoints.shape, np.nan, np.float32)


class PoseNode:
    """The node: cameras as sources of one pipeline, a publishing thread, diagnostics."""

    def __init__(self, params: Params, model: "PoseModel") -> None:
        self.params = params
        self.warn = Warnings()
        names = params.cameras or [""]
        self.target = transform.TargetFrame(params.target_frame, self.warn) if params.target_frame else None
        self.shared: list[Sink] = []
        if params.hri:
            from .sinks_hri import HriSink

            self.shared.append(HriSink([n or "camera" for n in names]))
        self.cameras = [Camera(name, params, self.warn, self._sinks(k, len(names), name), self._scheduled)
                        for k, name in enumerate(names)]
        self._by_stream = {cam.name: cam for cam in self.cameras}
        self.pipeline = Pipeline(model, [cam.source for cam in self.cameras], names=list(self._by_stream),
                                 track=params.track, smooth=params.smooth, min_score=params.min_score)
        self._failed = {cam.name: 0 for cam in self.cameras}  # failures already warned about
        self._closed = False
        backend = model.backend
        self.diagnostics = DiagnosticsPublisher(
            rospy.get_name(), {cam.name: cam.stats for cam in self.cameras},
            {"model": str(getattr(backend, "path", backend.name)), "precision": backend.precision,
             "input height": str(params.height), "mode": params.mode}, params.diagnostics_period)
        self._failure_timer = rospy.Timer(rospy.Duration(WARN_PERIOD), self._report_failures)
        self._thread = threading.Thread(target=self._publish_loop, name="lwpose-publish", daemon=True)
        self._thread.start()

    def _sinks(self, k: int, n: int, name: str) -> list[Sink]:
        """The outputs of camera ``k`` of ``n`` beyond lwpose's own: the shared ones, 3D people."""
        sinks = list(self.shared)
        if self.params.has_3d:
            from .sinks_people import DetectedPersonsSink, PeopleSink

            ns = f"{name}/" if name else ""
            sinks += [PeopleSink(ns), DetectedPersonsSink(ns, offset=k, step=n)]
        return sinks

    def _scheduled(self, cam: Camera) -> tuple[int, int]:
        """Frames of ``cam`` the pipeline dropped (a newer one came first, or every request was
        busy) and failed (refused or failed in inference)."""
        info = self.pipeline.streams[cam.name]
        return cam.source.dropped + info.drops, info.rejected + self.pipeline.engine.failures(cam.name)

    def _report_failures(self, _event=None) -> None:
        """Warn (at most once per WARN_PERIOD per camera) about frames that failed in the pipeline;
        each error is in the node's log file."""
        for cam in self.cameras:
            failed = self._scheduled(cam)[1]
            if failed > self._failed[cam.name]:
                rospy.logwarn(f"{cam.image_topic}: inference failed, {failed - self._failed[cam.name]} frame(s) "
                              f"dropped (the errors are in the node's log file)")
                self._failed[cam.name] = failed

    def _publish_loop(self) -> None:
        """Publish every result of the pipeline until it has stopped and delivered its last one."""
        for result in self.pipeline.results():
            self._publish(self._by_stream[result.stream], result)

    def _publish(self, cam: Camera, result: "Result") -> None:
        """Fill the frame's output side, then hand the result to every sink of its camera.

        It never raises: an exception here would stop publishing for every camera."""
        try:
            self._locate(cam, result)
        except Exception:  # noqa: BLE001 - publish in 2D rather than not at all
            rospy.logerr_throttle(WARN_PERIOD, f"{cam.image_topic}: 3D of frame {result.index} failed:\n"
                                               f"{traceback.format_exc()}")
            result.meta.positions = None
        for sink in cam.sinks:
            try:
                sink.write(result)
            except rospy.ROSException as exc:  # topics close during shutdown
                rospy.logdebug(f"{cam.name}: result not published: {exc}")
            except Exception:  # noqa: BLE001 - report and keep serving the other sinks and frames
                rospy.logerr_throttle(WARN_PERIOD, f"{cam.image_topic}: {type(sink).__name__} failed on frame "
                                                   f"{result.index}:\n{traceback.format_exc()}")

    def _locate(self, cam: Camera, result: "Result") -> None:
        """Fill the frame's output side: headers, 3D positions (in ``~target_frame`` if set), origin."""
        frame: Frame = result.meta
        frame_id = self.params.frame_id or frame.header.frame_id
        frame.camera_header = frame.out_header = Header(stamp=frame.header.stamp, frame_id=frame_id)
        positions = cam.positions(frame, result.people)
        if self.target is not None:
            frame.out_header = Header(stamp=frame.header.stamp, frame_id=self.params.target_frame)
            if positions is not None:
                rt = self.target.lookup(frame_id, frame.header.stamp)
                if rt is None:
                    positions = np.full(positions.shape, np.nan, np.float32)
                else:
                    positions, frame.origin = transform.apply(positions, rt), rt[1]
        frame.positions = positions

    def close(self) -> None:
        """Stop taking frames, finish in-flight requests (their results are still published), log counts."""
        if self._closed:
            return
        self._closed = True
        self.pipeline.stop()
        self._thread.join()
        self._failure_timer.shutdown()
        self._report_failures()
        self.diagnostics.close()
        for cam in self.cameras:
            s = cam.stats
            rospy.loginfo(f"{cam.image_topic}: {s.processed} frames processed, {s.dropped} dropped, "
                          f"{s.rejected} rejected")


def build_model(params: Params) -> "PoseModel":
    """The shared model (``~model``, or the KServe v2 servers of ``~server``), compiled."""
    from lwpose.runtime import PoseModel

    backend = None
    if params.server:
        from lwpose.backends.kserve import KServeBackend

        backend = KServeBackend(params.server)
    model = PoseModel(params.model, height=params.height, mode=params.mode, nireq=params.nireq, backend=backend)
    model.compile()
    return model


def main() -> int:
    rospy.init_node("pose_estimator")
    try:
        params = Params.from_ros()
        model = build_model(params)
    except LwposeError as exc:
        rospy.logfatal(f"{rospy.get_name()}: {exc}")
        return 2
    node = PoseNode(params, model)
    rospy.on_shutdown(node.close)
    names = ", ".join(cam.image_topic for cam in node.cameras)
    rospy.loginfo(f"pose estimation on {names} with {params.model} (height {params.height}, {params.mode})")
    rospy.spin()
    return 0
