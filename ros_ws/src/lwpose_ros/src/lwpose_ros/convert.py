"""ROS image, depth and point-cloud messages ↔ numpy, and keypoint deprojection (no cv_bridge).

Everything here is a pure function of messages and arrays, testable without a roscore. A message
that cannot be used raises :class:`BadMessage` with a reason fit for a warning.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField

#: Colour encodings the node accepts: channels and the OpenCV conversion to BGR (None = as is).
COLOR_ENCODINGS: dict[str, tuple[int, int | None]] = {
    "bgr8": (3, None),
    "rgb8": (3, cv2.COLOR_RGB2BGR),
    "mono8": (1, cv2.COLOR_GRAY2BGR),
    "bgra8": (4, cv2.COLOR_BGRA2BGR),
    "rgba8": (4, cv2.COLOR_RGBA2BGR),
}
#: Depth encodings: numpy dtype and the factor to metres.
DEPTH_ENCODINGS: dict[str, tuple[str, float]] = {"16UC1": ("u2", 0.001), "mono16": ("u2", 0.001), "32FC1": ("f4", 1.0)}


class BadMessage(ValueError):
    """A message the node cannot use; the text says why."""


def _pixels(msg: Image, channels: int, itemsize: int) -> np.ndarray:
    """The (H, W, C) bytes of an Image, checking its size fields against its data."""
    if msg.width == 0 or msg.height == 0:
        raise BadMessage(f"empty image ({msg.width}x{msg.height})")
    row = msg.width * channels * itemsize
    if msg.step < row:
        raise BadMessage(f"step {msg.step} is smaller than width x channels x bytes = {row}")
    if len(msg.data) != msg.step * msg.height:
        raise BadMessage(f"data has {len(msg.data)} bytes, expected step x height = {msg.step * msg.height} "
                         f"({msg.width}x{msg.height}, {msg.encoding})")
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
    return rows[:, :row]


def image_to_bgr(msg: Image) -> np.ndarray:
    """A ``sensor_msgs/Image`` (bgr8, rgb8, mono8, bgra8, rgba8) as a contiguous u8 BGR array."""
    if msg.encoding not in COLOR_ENCODINGS:
        raise BadMessage(f"unsupported encoding {msg.encoding!r} (supported: {', '.join(COLOR_ENCODINGS)})")
    channels, code = COLOR_ENCODINGS[msg.encoding]
    pixels = _pixels(msg, channels, 1).reshape(msg.height, msg.width, channels)
    return np.ascontiguousarray(pixels) if code is None else cv2.cvtColor(pixels, code)


def compressed_to_bgr(msg: CompressedImage) -> np.ndarray:
    """A ``sensor_msgs/CompressedImage`` (JPEG or PNG colour) as a u8 BGR array."""
    if "compressedDepth" in msg.format:
        raise BadMessage(f"compressed depth ({msg.format!r}) is not a colour image")
    if len(msg.data) == 0:
        raise BadMessage("empty compressed image")
    frame = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise BadMessage(f"cannot decode the {len(msg.data)}-byte compressed image (format {msg.format!r})")
    return frame


def bgr_to_image(frame: np.ndarray, header) -> Image:
    """A u8 BGR array as a bgr8 ``sensor_msgs/Image`` with the given header."""
    frame = np.ascontiguousarray(frame)
    msg = Image(header=header, height=frame.shape[0], width=frame.shape[1], encoding="bgr8", is_bigendian=0)
    msg.step = frame.shape[1] * 3
    msg.data = frame.tobytes()
    return msg


def depth_to_metres(msg: Image) -> np.ndarray:
    """A depth ``Image`` (16UC1/mono16 in mm or 32FC1 in m) as float32 metres; no depth is NaN."""
    if msg.encoding not in DEPTH_ENCODINGS:
        raise BadMessage(f"unsupported depth encoding {msg.encoding!r} (supported: {', '.join(DEPTH_ENCODINGS)})")
    kind, factor = DEPTH_ENCODINGS[msg.encoding]
    dtype = np.dtype(kind).newbyteorder(">" if msg.is_bigendian else "<")
    raw = _pixels(msg, 1, dtype.itemsize).copy().view(dtype).reshape(msg.height, msg.width)
    depth = raw.astype(np.float32) * np.float32(factor)
    depth[~(depth > 0) | ~np.isfinite(depth)] = np.nan
    if np.isnan(depth).all():
        raise BadMessage("depth image has no valid pixel (all NaN or 0)")
    return depth


_FLOAT32 = PointField.FLOAT32


def cloud_to_xyz(msg: PointCloud2) -> np.ndarray:
    """An organised ``PointCloud2`` (float32 x, y, z fields) as an (H, W, 3) float32 array."""
    if msg.height < 2 or msg.width == 0:
        raise BadMessage(f"point cloud is not organised ({msg.width}x{msg.height}); it must have the image's layout")
    fields = {f.name: f for f in msg.fields}
    for name in "xyz":
        if name not in fields or fields[name].datatype != _FLOAT32:
            raise BadMessage(f"point cloud needs float32 fields x, y, z; has {sorted(fields)}")
    if msg.row_step < msg.width * msg.point_step or len(msg.data) != msg.row_step * msg.height:
        raise BadMessage(f"point cloud data has {len(msg.data)} bytes, expected row_step x height = "
                         f"{msg.row_step * msg.height}")
    dtype = np.dtype({"names": list("xyz"), "formats": [">f4" if msg.is_bigendian else "<f4"] * 3,
                      "offsets": [fields[n].offset for n in "xyz"], "itemsize": msg.point_step})
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.row_step)[:, :msg.width * msg.point_step]
    points = np.ascontiguousarray(rows).view(dtype).reshape(msg.height, msg.width)
    return np.stack([points[n].astype(np.float32) for n in "xyz"], axis=-1)


@dataclass(frozen=True)
class Pinhole:
    """Pinhole intrinsics in pixels of a ``width`` x ``height`` image."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_camera_info(cls, msg: CameraInfo) -> "Pinhole":
        k = msg.K
        if not (k[0] > 0 and k[4] > 0) or msg.width == 0 or msg.height == 0:
            raise BadMessage(f"camera_info is not calibrated (K = {list(k)}, {msg.width}x{msg.height})")
        if not np.isfinite([k[0], k[2], k[4], k[5]]).all():
            raise BadMessage(f"camera_info K has non-finite values (K = {list(k)})")
        return cls(k[0], k[4], k[2], k[5], msg.width, msg.height)

    def scaled(self, width: int, height: int) -> "Pinhole":
        """The same camera for an image resized to ``width`` x ``height``."""
        sx, sy = width / self.width, height / self.height
        return Pinhole(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height)


def check_registered(what: str, size: tuple[int, int], image_size: tuple[int, int]) -> None:
    """BadMessage unless ``size`` (width, height) of a depth image, cloud or camera_info is the
    colour image's: registered data is pixel-aligned, another size would give wrong 3D."""
    if tuple(size) != tuple(image_size):
        raise BadMessage(f"{what} is {size[0]}x{size[1]} but the image is {image_size[0]}x{image_size[1]}; "
                         f"it must be registered to the image (same size); no 3D for this frame")


def sample(keypoints: np.ndarray, image_size: tuple[int, int], grid: np.ndarray, window: int = 5) -> np.ndarray:
    """Robust values of a per-pixel grid at each found keypoint.

    ``keypoints`` is (..., 3) x, y, score in pixels of an image of ``image_size`` (width, height);
    ``grid`` is (H, W, C), registered to that image, possibly at another resolution, with NaN
    where there is no measurement. For each keypoint the median over the valid pixels of a
    ``window`` x ``window`` neighbourhood; (..., C) with NaN for missing keypoints, keypoints
    outside the grid and windows without any valid pixel.
    """
    kps = keypoints.reshape(-1, 3)
    (h, w), c = grid.shape[:2], grid.shape[2]
    col = np.rint(kps[:, 0] * (w / image_size[0])).astype(np.int64)
    row = np.rint(kps[:, 1] * (h / image_size[1])).astype(np.int64)
    usable = (kps[:, 2] > 0) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
    offsets = np.arange(window) - window // 2
    rows = row[:, None, None] + offsets[None, :, None]  # (K, window, 1)
    cols = col[:, None, None] + offsets[None, None, :]  # (K, 1, window)
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    values = grid[np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1)].reshape(len(kps), -1, c)
    valid = (inside & usable[:, None, None]).reshape(len(kps), -1) & np.isfinite(values).all(axis=2)
    values = np.sort(np.where(valid[:, :, None], values, np.inf), axis=1)  # invalid ones last
    n = valid.sum(axis=1)
    lo = np.take_along_axis(values, np.maximum(n - 1, 0)[:, None, None] // 2, axis=1)[:, 0]
    hi = np.take_along_axis(values, (n // 2)[:, None, None], axis=1)[:, 0]
    median = np.where((n > 0)[:, None], (lo + hi) / 2, np.nan).astype(np.float32)
    return median.reshape(*keypoints.shape[:-1], c)


def deproject(keypoints: np.ndarray, image_size: tuple[int, int], depth: np.ndarray, camera: Pinhole,
              window: int = 5) -> np.ndarray:
    """3D points (..., 3) in metres in the camera's optical frame (x right, y down, z forward) of
    keypoints (..., 3) given in pixels of an image of ``image_size``, from a registered depth
    image in metres (NaN = no depth). NaN where a keypoint is missing or has no valid depth."""
    z = sample(keypoints, image_size, depth[:, :, None], window)[..., 0]
    cam = camera.scaled(*image_size)
    x = (keypoints[..., 0] - cam.cx) * z / cam.fx
    y = (keypoints[..., 1] - cam.cy) * z / cam.fy
    return np.stack([x, y, z], axis=-1).astype(np.float32)


def points_at(keypoints: np.ndarray, image_size: tuple[int, int], xyz: np.ndarray, window: int = 5) -> np.ndarray:
    """3D points (..., 3) of keypoints (..., 3) from an organised cloud registered to the image (NaN = none)."""
    return sample(keypoints, image_size, xyz, window)
