"""What travels with a frame through the engine (``Result.meta``), and the ``Sink`` protocol.

The node fills the output side (``out_header``, ``positions``, ``origin``) once per result before
handing the result to every sink of the camera, so each sink only formats messages.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

if TYPE_CHECKING:
    from lwpose.pipeline.engine import Result


@dataclass
class Frame:
    """A converted image, its input header and raw 3D messages, and the output side of its result."""

    image: np.ndarray
    header: Header
    depth: Image | PointCloud2 | None = None
    info: CameraInfo | None = None
    #: header of every output message: the image's stamp, the output frame (``~target_frame``,
    #: ``~frame_id`` or the image's)
    out_header: Header | None = None
    #: the image's stamp and camera frame (``~frame_id`` or the image's): frame of the overlay
    camera_header: Header | None = None
    #: (N, 18, 3) keypoint positions in metres in ``out_header.frame_id`` (NaN = none), or None
    #: without 3D
    positions: np.ndarray | None = None
    #: the camera's optical centre in ``out_header.frame_id`` (distances for covariances)
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))


class Sink(Protocol):
    """An output of the node: formats and publishes each result of one camera (or of all)."""

    def write(self, result: "Result") -> None: ...

    def close(self) -> None: ...
