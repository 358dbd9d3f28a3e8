"""Output messages of the node from lwpose people: PersonArray, MarkerArray and PoseArray.

``positions`` is the 3D side of a frame: an (N, 18, 3) float array in metres in the header's
frame with NaN rows for keypoints without a valid position, or None when 3D is off. Without 3D,
markers and poses are drawn on the image plane of the header's frame, 1 pixel = 1 mm
(x right, y down, z = 0), so the skeletons still show in RViz.
"""
from __future__ import annotations

import colorsys

import numpy as np
from geometry_msgs.msg import Point, Pose, PoseArray
from lwpose.pose import KEYPOINTS_18, SKELETON, Person
from lwpose_msgs.msg import Keypoint as KeypointMsg
from lwpose_msgs.msg import Person as PersonMsg
from lwpose_msgs.msg import PersonArray
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

PIXEL_PLANE_SCALE = 0.001  # metres per pixel for 2D-only markers and poses
TORSO = tuple(KEYPOINTS_18.index(n) for n in ("neck", "right_shoulder", "left_shoulder", "right_hip", "left_hip"))
MARKER_NAMESPACES = ("skeleton", "joints")


def persons_msg(header, people: list[Person], positions: np.ndarray | None) -> PersonArray:
    """The ``lwpose_msgs/PersonArray`` of one frame."""
    msg = PersonArray(header=header)
    for i, person in enumerate(people):
        out = PersonMsg(track_id=int(person.track_id), score=float(person.score), bbox=[float(v) for v in person.bbox])
        for k, (x, y, score) in enumerate(person.keypoints):
            kp = KeypointMsg(name=KEYPOINTS_18[k], x=float(x), y=float(y), score=float(score))
            if positions is not None and np.isfinite(positions[i, k]).all():
                kp.position = Point(*map(float, positions[i, k]))
                kp.has_position = True
            out.keypoints.append(kp)
        msg.persons.append(out)
    return msg


def marker_points(people: list[Person], positions: np.ndarray | None) -> np.ndarray:
    """(N, 18, 3) marker coordinates: the 3D positions, or the image plane (see module doc)."""
    if positions is not None:
        return positions
    pts = np.full((len(people), len(KEYPOINTS_18), 3), np.nan, np.float32)
    for i, person in enumerate(people):
        found = person.found
        pts[i, found, :2] = person.keypoints[found, :2] * PIXEL_PLANE_SCALE
        pts[i, found, 2] = 0.0
    return pts


def track_color(track_id: int) -> ColorRGBA:
    """A distinct, stable colour per track id (golden-ratio hues)."""
    r, g, b = colorsys.hsv_to_rgb((track_id * 0.618034) % 1.0, 0.85, 1.0)
    return ColorRGBA(r, g, b, 1.0)


def marker_id(person: Person, index: int) -> int:
    """Marker id of a person: its track id, or, for an untracked person, -1 - its index in the
    frame (negative, so it never collides with a track id)."""
    return int(person.track_id) if person.track_id >= 0 else -1 - index


def markers_msg(header, people: list[Person], positions: np.ndarray | None,
                previous: set[int]) -> tuple[MarkerArray, set[int]]:
    """Skeleton lines and joint spheres per person, plus DELETE markers for ids of ``previous``
    (the ids published last frame) that are gone. Returns the array and the ids now shown."""
    pts = marker_points(people, positions)
    size = 0.03 if positions is not None else 4 * PIXEL_PLANE_SCALE
    array = MarkerArray()
    shown: set[int] = set()
    for i, person in enumerate(people):
        mid = marker_id(person, i)
        color = track_color(mid)
        valid = np.isfinite(pts[i]).all(axis=1)
        lines = Marker(header=header, ns="skeleton", id=mid, type=Marker.LINE_LIST, action=Marker.ADD)
        lines.pose.orientation.w = 1.0
        lines.scale.x = size / 2
        lines.color = color
        for a, b in SKELETON:
            if valid[a] and valid[b]:
                lines.points += [Point(*map(float, pts[i, a])), Point(*map(float, pts[i, b]))]
        joints = Marker(header=header, ns="joints", id=mid, type=Marker.SPHERE_LIST, action=Marker.ADD)
        joints.pose.orientation.w = 1.0
        joints.scale.x = joints.scale.y = joints.scale.z = size
        joints.color = color
        joints.points = [Point(*map(float, p)) for p in pts[i, valid]]
        array.markers += [lines, joints]
        shown.add(mid)
    for mid in sorted(previous - shown):
        for ns in MARKER_NAMESPACES:
            array.markers.append(Marker(header=header, ns=ns, id=mid, action=Marker.DELETE))
    return array, shown


def confidence(person: Person) -> float:
    """A person's confidence in [0, 1]: the mean score of its found keypoints."""
    scores = person.keypoints[person.found, 2]
    return float(np.clip(scores.mean(), 0.0, 1.0)) if len(scores) else 0.0


def torso_centre(points: np.ndarray) -> np.ndarray | None:
    """Mean of the valid torso points (neck, shoulders, hips) of one person's (18, 3) points,
    else of all its valid points; None when it has none."""
    for subset in (points[list(TORSO)], points):
        valid = subset[np.isfinite(subset).all(axis=1)]
        if len(valid):
            return valid.mean(axis=0)
    return None


def poses_msg(header, people: list[Person], positions: np.ndarray | None) -> PoseArray:
    """Torso centre of each person with a valid one (identity orientation), in ``people`` order."""
    msg = PoseArray(header=header)
    for person_points in marker_points(people, positions):
        centre = torso_centre(person_points)
        if centre is not None:
            pose = Pose()
            pose.position = Point(*map(float, centre))
            pose.orientation.w = 1.0
            msg.poses.append(pose)
    return msg
