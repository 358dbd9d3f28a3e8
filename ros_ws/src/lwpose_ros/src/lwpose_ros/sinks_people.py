"""3D people for navigation and tracking stacks: ``people_msgs/People`` and
``spencer_tracking_msgs/DetectedPersons`` (published only when the node has 3D)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import rospy
from geometry_msgs.msg import Point
from people_msgs.msg import People
from people_msgs.msg import Person as PeoplePerson
from spencer_tracking_msgs.msg import DetectedPerson, DetectedPersons

from .messages import confidence, torso_centre

if TYPE_CHECKING:
    from lwpose.pipeline.engine import Result

VELOCITY_MAX_GAP = 1.0  # seconds: a track seen again after longer gets velocity 0
POSITION_STD_BASE = 0.1  # metres: standard deviation of a position at the camera ...
POSITION_STD_PER_METRE = 0.05  # ... growing by this much per metre of distance
UNSET_VARIANCE = 99999.0  # orientation is not estimated (spencer: unset dimensions > 9999)


def centres(result: "Result") -> list[tuple[int, np.ndarray]]:
    """(index in people, 3D torso centre) of each person with a 3D centre."""
    positions = result.meta.positions
    if positions is None:
        return []
    out = []
    for i, points in enumerate(positions):
        centre = torso_centre(points)
        if centre is not None:
            out.append((i, centre))
    return out


def covariance(distance: float) -> list[float]:
    """Row-major 6x6 covariance: isotropic position variance growing with ``distance`` from the
    camera (so it holds in any frame), orientation unset."""
    std = POSITION_STD_BASE + POSITION_STD_PER_METRE * distance
    diagonal = [std * std] * 3 + [UNSET_VARIANCE] * 3
    return list(np.diag(diagonal).ravel())


class PeopleSink:
    """``people_msgs/People`` on ``~[CAM/]people``: name = track id, position = torso centre,
    velocity from the track's previous position, reliability = :func:`messages.confidence`."""

    def __init__(self, ns: str) -> None:
        self.pub = rospy.Publisher(f"~{ns}people", People, queue_size=5)
        self._last: dict[int, tuple[float, np.ndarray]] = {}  # track id -> (stamp, position)

    def write(self, result: "Result") -> None:
        header = result.meta.out_header
        stamp = header.stamp.to_sec()
        msg = People(header=header)
        seen: dict[int, tuple[float, np.ndarray]] = {}
        for i, centre in centres(result):
            person = result.people[i]
            velocity = np.zeros(3)
            if person.track_id >= 0:
                previous = self._last.get(person.track_id)
                if previous is not None and 0 < stamp - previous[0] <= VELOCITY_MAX_GAP:
                    velocity = (centre - previous[1]) / (stamp - previous[0])
                seen[person.track_id] = (stamp, centre)
            msg.people.append(PeoplePerson(name=str(person.track_id), position=Point(*map(float, centre)),
                                           velocity=Point(*map(float, velocity)),
                                           reliability=confidence(person)))
        self._last = seen
        self.pub.publish(msg)

    def close(self) -> None:
        self.pub.unregister()


class DetectedPersonsSink:
    """``spencer_tracking_msgs/DetectedPersons`` on ``~[CAM/]detected_persons``: one detection per
    person with a 3D torso centre; ids ``offset``, ``offset + step``, ... (spencer's convention
    for several detectors: camera k of n uses offset k, step n), modality rgbd."""

    def __init__(self, ns: str, offset: int = 0, step: int = 1) -> None:
        self.pub = rospy.Publisher(f"~{ns}detected_persons", DetectedPersons, queue_size=5)
        self.next_id = offset
        self.step = step

    def write(self, result: "Result") -> None:
        frame = result.meta
        msg = DetectedPersons(header=frame.out_header)
        for i, centre in centres(result):
            det = DetectedPerson(detection_id=self.next_id, confidence=confidence(result.people[i]),
                                 modality=DetectedPerson.MODALITY_GENERIC_RGBD)
            self.next_id += self.step
            det.pose.pose.position = Point(*map(float, centre))
            det.pose.pose.orientation.w = 1.0
            det.pose.covariance = covariance(float(np.linalg.norm(centre - frame.origin)))
            msg.detections.append(det)
        self.pub.publish(msg)

    def close(self) -> None:
        self.pub.unregister()
