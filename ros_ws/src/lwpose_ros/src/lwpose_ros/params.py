"""Private parameters of ``pose_node`` and ``video_publisher``, checked at start (docs/ros.md).

Every check raises :class:`lwpose.errors.LwposeError` with one line naming the parameter; the
nodes log it as fatal and exit with status 2. All parameters are read once at start (none is
changed at run time: restart the node to apply a new value).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from lwpose.errors import LwposeError

TRANSPORTS = ("raw", "compressed")
DEPTH_SOURCES = ("none", "depth", "points")
MODES = ("latency", "throughput")
MAX_HEIGHT = 2048  # network input height; larger ones need GBs of memory for no accuracy gain
MAX_NIREQ = 64
MAX_DEPTH_WINDOW = 51


def as_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise LwposeError(f"~{name} must be true or false, not {value!r}")
    return value


def as_number(name: str, value: Any, kind: type, lo: float, hi: float = math.inf) -> int | float:
    """``value`` as ``kind`` (int or float), finite and within [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise LwposeError(f"~{name} must be a number, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise LwposeError(f"~{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise LwposeError(f"~{name} must be a finite number, not {value!r}")
    if kind is int:
        if number != int(number):
            raise LwposeError(f"~{name} must be a whole number, not {value!r}")
        number = int(number)
    if not lo <= number <= hi:
        raise LwposeError(f"~{name} must be between {lo:g} and {hi:g}, not {value!r}")
    return number


def as_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise LwposeError(f"~{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def as_string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise LwposeError(f"~{name} must be a string, not {value!r}")
    return value


def as_namespaces(name: str, value: Any) -> list[str]:
    """A YAML list of namespaces, or one string of them separated by spaces or commas."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LwposeError(f"~{name} must be a list of camera namespaces (or a string of them), not {value!r}")
    names = [v.strip("/") for v in value]
    if len(set(names)) != len(names) or "" in names:
        raise LwposeError(f"~{name} must be distinct non-empty namespaces, not {value!r}")
    return names


def as_urls(name: str, value: Any) -> list[str]:
    """A YAML list of URLs, or one string of them separated by spaces or commas (empty: none)."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise LwposeError(f"~{name} must be a list of server URLs (or a string of them), not {value!r}")
    return value


class _PrivateParams:
    """A node's private parameters: one dataclass field per ``~name``."""

    @classmethod
    def from_ros(cls) -> Any:
        """Read ``~name`` for every field (the field's default when unset) and validate."""
        import rospy

        defaults = cls()
        params = cls(**{f.name: rospy.get_param(f"~{f.name}", getattr(defaults, f.name)) for f in fields(cls)})
        params.validate()
        return params

    def validate(self) -> None:
        raise NotImplementedError


@dataclass
class Params(_PrivateParams):
    """The pose node's private parameters (documented in docs/ros.md)."""

    model: str = "human-pose-estimation-0001"
    server: list[str] = field(default_factory=list)
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
    target_frame: str = ""
    hri: bool = False
    diagnostics_period: float = 1.0

    def validate(self) -> None:
        """Check and normalise every field in place."""
        for name in ("model", "frame_id", "target_frame"):
            setattr(self, name, as_string(name, getattr(self, name)))
        if not self.model:
            raise LwposeError("~model must name a model (store name, directory or .xml)")
        for name in ("track", "smooth", "hri"):
            setattr(self, name, as_bool(name, getattr(self, name)))
        self.server = as_urls("server", self.server)
        self.height = as_number("height", self.height, int, 32, MAX_HEIGHT)
        if self.height % 8:
            raise LwposeError(f"~height must be a multiple of 8, not {self.height}")
        self.mode = as_choice("mode", self.mode, MODES)
        self.nireq = as_number("nireq", self.nireq, int, 0, MAX_NIREQ)
        self.min_score = as_number("min_score", self.min_score, float, 0.0)
        self.queue_size = as_number("queue_size", self.queue_size, int, 1, 1000)
        self.slop = as_number("slop", self.slop, float, 1e-6, 60.0)
        self.transport = as_choice("transport", self.transport, TRANSPORTS)
        self.cameras = as_namespaces("cameras", self.cameras)
        self.depth_source = as_choice("depth_source", self.depth_source, DEPTH_SOURCES)
        self.depth_window = as_number("depth_window", self.depth_window, int, 1, MAX_DEPTH_WINDOW)
        if self.depth_window % 2 == 0:
            raise LwposeError(f"~depth_window must be a positive odd number of pixels, not {self.depth_window}")
        self.diagnostics_period = as_number("diagnostics_period", self.diagnostics_period, float, 0.1, 60.0)

    @property
    def has_3d(self) -> bool:
        return self.depth_source != "none"


@dataclass
class VideoParams(_PrivateParams):
    """``video_publisher``'s private parameters."""

    video: str = ""
    rate: float = 0.0
    loop: bool = True
    frame_id: str = "camera"
    fov: float = 60.0

    def validate(self) -> None:
        self.video = as_string("video", self.video)
        self.frame_id = as_string("frame_id", self.frame_id)
        self.loop = as_bool("loop", self.loop)
        self.rate = as_number("rate", self.rate, float, 0.0, 1000.0)
        self.fov = as_number("fov", self.fov, float, 1.0, 179.0)
