"""lwpose's own outputs of a camera: ``persons``, ``markers``, ``people_poses`` and ``overlay``."""
from __future__ import annotations

from typing import TYPE_CHECKING

import rospy
from geometry_msgs.msg import PoseArray
from lwpose.draw import draw_people
from lwpose_msgs.msg import PersonArray
from sensor_msgs.msg import Image
from visualization_msgs.msg import MarkerArray

from . import convert, messages

if TYPE_CHECKING:
    from lwpose.pipeline.engine import Result


class LwposeSink:
    """PersonArray, MarkerArray, torso PoseArray and (only while watched) the drawn overlay."""

    def __init__(self, ns: str) -> None:
        self.persons = rospy.Publisher(f"~{ns}persons", PersonArray, queue_size=5)
        self.markers = rospy.Publisher(f"~{ns}markers", MarkerArray, queue_size=5)
        self.poses = rospy.Publisher(f"~{ns}people_poses", PoseArray, queue_size=5)
        self.overlay = rospy.Publisher(f"~{ns}overlay", Image, queue_size=2)
        self.marker_ids: set[int] = set()

    def write(self, result: "Result") -> None:
        frame, people = result.meta, result.people
        header, positions = frame.out_header, frame.positions
        self.persons.publish(messages.persons_msg(header, people, positions))
        markers, self.marker_ids = messages.markers_msg(header, people, positions, self.marker_ids)
        self.markers.publish(markers)
        self.poses.publish(messages.poses_msg(header, people, positions))
        if self.overlay.get_num_connections() > 0:
            self.overlay.publish(convert.bgr_to_image(draw_people(result.frame.copy(), people),
                                                         frame.camera_header))

    def close(self) -> None:
        for pub in (self.persons, self.markers, self.poses, self.overlay):
            pub.unregister()
