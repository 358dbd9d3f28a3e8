"""``~target_frame``: 3D outputs in another frame (e.g. ``base_link``) through tf2."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import rospy
import tf2_ros

LOOKUP_TIMEOUT = 0.05  # seconds to wait for a transform at the image's stamp


def rotation(x: float, y: float, z: float, w: float) -> np.ndarray:
    """The 3x3 rotation matrix of a unit quaternion."""
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


class TargetFrame:
    """Looks up the camera → target transform at each image's stamp; warns while it is missing."""

    def __init__(self, target: str, warn: Callable[[str, str], None]) -> None:
        self.target = target
        self._warn = warn
        self.buffer = tf2_ros.Buffer()
        self.listener = tf2_ros.TransformListener(self.buffer)

    def lookup(self, source: str, stamp: rospy.Time) -> tuple[np.ndarray, np.ndarray] | None:
        """(R, t) with p_target = R p_source + t, or None (and a warning) while unavailable."""
        try:
            tf = self.buffer.lookup_transform(self.target, source, stamp, rospy.Duration(LOOKUP_TIMEOUT)).transform
        except (tf2_ros.LookupException, tf2_ros.ConnectivityException, tf2_ros.ExtrapolationException,
                tf2_ros.InvalidArgumentException) as exc:
            self._warn(f"tf {source} -> {self.target}", f"transform unavailable, no 3D output until it is: "
                                                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            return None
        q, t = tf.rotation, tf.translation
        return rotation(q.x, q.y, q.z, q.w), np.array([t.x, t.y, t.z])


def apply(points: np.ndarray, rt: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(..., 3) points moved by (R, t); NaN stays NaN."""
    r, t = rt
    return (points @ r.T + t).astype(np.float32)
