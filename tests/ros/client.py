"""In-process rospy test client: collect messages of topics and wait for the answer to a frame."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import cv2
import numpy as np
import rospy
from rosgraph_msgs.msg import Log
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from lwpose_ros.convert import bgr_to_image


class Collector:
    """Every message of one topic, with a condition to wait on."""

    def __init__(self, topic: str, msg_type) -> None:
        self.topic = topic
        self.msgs: list = []
        self._cond = threading.Condition()
        self.sub = rospy.Subscriber(topic, msg_type, self._add, queue_size=100, buff_size=1 << 24)

    def _add(self, msg) -> None:
        with self._cond:
            self.msgs.append(msg)
            self._cond.notify_all()

    def wait_for(self, pred: Callable, timeout: float, since: int = 0):
        """The first message from the ``since``-th on satisfying ``pred``; AssertionError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for msg in self.msgs[since:]:
                    if pred(msg):
                        return msg
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching message on {self.topic} within {timeout} s "
                                         f"({len(self.msgs)} received)")
                self._cond.wait(left)

    def stamped(self, stamp: rospy.Time, timeout: float):
        """The message whose header (for a MarkerArray: its first marker's) has ``stamp``."""
        def match(msg) -> bool:
            header = msg.markers[0].header if hasattr(msg, "markers") and msg.markers else getattr(msg, "header", None)
            return header is not None and header.stamp == stamp

        return self.wait_for(match, timeout)


class Rosout(Collector):
    """/rosout, to check the node's warnings."""

    def __init__(self) -> None:
        super().__init__("/rosout", Log)

    def warning(self, node: str, *words: str, timeout: float = 10.0, since: int = 0) -> Log:
        """A warning of ``node`` containing all ``words``, from the ``since``-th log message on."""
        return self.wait_for(lambda m: m.level == Log.WARN and m.name == node and all(w in m.msg for w in words),
                             timeout, since)


def wait_connected(items, timeout: float = 60.0) -> None:
    """Wait until every publisher/subscriber in ``items`` has at least one connection."""
    deadline = time.monotonic() + timeout
    while not all(item.get_num_connections() > 0 for item in items):
        if time.monotonic() > deadline:
            missing = [item.resolved_name for item in items if item.get_num_connections() == 0]
            raise AssertionError(f"not connected within {timeout} s: {missing}")
        time.sleep(0.05)


class Stamps:
    """Unique, increasing stamps (``step`` seconds apart, like a camera at 1/step Hz)."""

    def __init__(self, step: float = 0.1) -> None:
        self.step = step
        self._t = rospy.Time.now().to_sec()

    def next(self) -> rospy.Time:
        self._t += self.step
        return rospy.Time.from_sec(self._t)


def image(frame: np.ndarray, stamp: rospy.Time, frame_id: str = "cam") -> Image:
    return bgr_to_image(frame, Header(stamp=stamp, frame_id=frame_id))


def compressed(frame: np.ndarray, stamp: rospy.Time, frame_id: str = "cam") -> CompressedImage:
    return CompressedImage(header=Header(stamp=stamp, frame_id=frame_id), format="bgr8; jpeg compressed bgr8",
                           data=cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())
