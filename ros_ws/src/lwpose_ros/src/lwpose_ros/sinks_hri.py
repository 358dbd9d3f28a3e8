"""ROS4HRI (REP-155) body outputs: ``/humans/bodies/tracked``, per body ``/humans/bodies/<id>/roi``
and ``/humans/bodies/<id>/skeleton2d``, and with 3D a TF frame ``body_<id>``.

A body is a tracked person (track id >= 0); its id is ``b<track id>`` with one camera and
``<camera>_b<track id>`` with several, so it stays stable as long as the track does. One sink
serves every camera: the tracked list is the union of the bodies each camera sees now, and a
body's topics are unregistered once it leaves the list.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np
import rospy
import tf2_ros
from geometry_msgs.msg import TransformStamped
from hri_msgs.msg import IdsList, NormalizedPointOfInterest2D, NormalizedRegionOfInterest2D, Skeleton2D
from lwpose.pose import KEYPOINTS_18, Person

from .messages import confidence, torso_centre

if TYPE_CHECKING:
    from lwpose.pipeline.engine import Result

PREFIX = "/humans/bodies"
#: Skeleton2D's index order (its constants; OpenPose COCO-18, which lists the LEFT eye and ear
#: first where lwpose lists the right ones first): lwpose keypoint index of each REP-155 slot.
REP155_ORDER = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
                "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
                "left_eye", "right_eye", "left_ear", "right_ear")
FROM_LWPOSE = tuple(KEYPOINTS_18.index(name) for name in REP155_ORDER)


def skeleton_points(person: Person, width: int, height: int) -> list[NormalizedPointOfInterest2D]:
    """The 18 keypoints in REP-155 order, normalised to [0, 1]; missing ones are (0, 0, c = 0)."""
    points = []
    for k in FROM_LWPOSE:
        x, y, score = person.keypoints[k]
        if score > 0:
            points.append(NormalizedPointOfInterest2D(x=float(np.clip(x / width, 0, 1)),
                                                      y=float(np.clip(y / height, 0, 1)),
                                                      c=float(np.clip(score, 0, 1))))
        else:
            points.append(NormalizedPointOfInterest2D())
    return points


def roi(person: Person, width: int, height: int, header) -> NormalizedRegionOfInterest2D:
    x, y, w, h = person.bbox
    return NormalizedRegionOfInterest2D(header=header, xmin=float(np.clip(x / width, 0, 1)),
                                        ymin=float(np.clip(y / height, 0, 1)),
                                        xmax=float(np.clip((x + w) / width, 0, 1)),
                                        ymax=float(np.clip((y + h) / height, 0, 1)), c=confidence(person))


class Body:
    """The publishers of one body."""

    def __init__(self, body_id: str) -> None:
        self.roi = rospy.Publisher(f"{PREFIX}/{body_id}/roi", NormalizedRegionOfInterest2D, queue_size=5)
        self.skeleton = rospy.Publisher(f"{PREFIX}/{body_id}/skeleton2d", Skeleton2D, queue_size=5)

    def close(self) -> None:
        self.roi.unregister()
        self.skeleton.unregister()


class HriSink:
    """REP-155 bodies of every camera (see the module doc)."""

    def __init__(self, cameras: list[str]) -> None:
        self.multi = len(cameras) > 1
        self.tracked = rospy.Publisher(f"{PREFIX}/tracked", IdsList, queue_size=5)
        self.tf = tf2_ros.TransformBroadcaster()
        self.bodies: dict[str, Body] = {}
        self.seen: dict[str, set[str]] = {cam: set() for cam in cameras}
        self._lock = threading.Lock()  # cameras' results arrive on different threads

    def body_id(self, camera: str, track_id: int) -> str:
        name = f"b{track_id}"
        return f"{camera.replace('/', '_')}_{name}" if self.multi else name

    def write(self, result: "Result") -> None:
        with self._lock:
            self._write(result)

    def _write(self, result: "Result") -> None:
        frame = result.meta
        header = frame.out_header
        height, width = result.frame.shape[:2]
        now: set[str] = set()
        transforms = []
        for i, person in enumerate(result.people):
            if person.track_id < 0:
                continue
            body_id = self.body_id(result.stream, person.track_id)
            now.add(body_id)
            body = self.bodies.get(body_id) or self.bodies.setdefault(body_id, Body(body_id))
            body.roi.publish(roi(person, width, height, header))
            body.skeleton.publish(Skeleton2D(header=header, skeleton=skeleton_points(person, width, height)))
            centre = torso_centre(frame.positions[i]) if frame.positions is not None else None
            if centre is not None:
                t = TransformStamped(header=header, child_frame_id=f"body_{body_id}")
                t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = map(float, centre)
                t.transform.rotation.w = 1.0
                transforms.append(t)
        if transforms:
            self.tf.sendTransform(transforms)
        gone = self.seen[result.stream] - now
        self.seen[result.stream] = now
        everyone = set().union(*self.seen.values())
        for body_id in gone - everyone:
            self.bodies.pop(body_id).close()
        self.tracked.publish(IdsList(header=header, ids=sorted(everyone)))

    def close(self) -> None:
        with self._lock:
            for body in self.bodies.values():
                body.close()
            self.bodies.clear()
            self.tracked.unregister()
