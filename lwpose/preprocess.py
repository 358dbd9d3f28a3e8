"""The network's input contract, shared by every backend, the runtime, training and calibration
(numpy and OpenCV only).

Networks of the Lightweight OpenPose family take BGR images, normalised as
``(x - INPUT_MEAN) / INPUT_SCALE``; lwpose feeds them u8 NHWC BGR tensors whose height is the
chosen input height and whose width follows the frame's aspect ratio, rounded up to the stride and
padded on the right with ``PAD_VALUE`` (zero after normalisation). Outputs are :class:`Maps` at
1/``STRIDE`` of the input size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import LwposeError

#: Input pixels per output cell.
STRIDE = 8
#: The network input is (img_bgr - INPUT_MEAN) / INPUT_SCALE.
INPUT_MEAN = 128.0
INPUT_SCALE = 256.0
#: Pixel value of the padding: 128 is zero after normalisation.
PAD_VALUE = 128
#: Largest input height accepted: far above any useful size, below sizes that exhaust memory.
MAX_HEIGHT = 2048
#: Smallest frame side accepted, pixels: thinner frames hold no person and cannot be resized sensibly.
MIN_SIDE = 8
#: Largest aspect ratio (long side / short side) accepted: wider inputs take memory out of all
#: proportion (a 1x400 image would be a 256x102400 input) and hold no usable picture.
MAX_ASPECT = 8.0


@dataclass
class Maps:
    """Network outputs for one frame: heatmaps (19, H/8, W/8), PAFs (38, H/8, W/8), and the
    scale from image pixels to network-input pixels."""

    heatmaps: np.ndarray
    pafs: np.ndarray
    scale: float


def check_height(height: int, stride: int = STRIDE) -> int:
    """``height`` if it is a usable input height (a multiple of ``stride`` up to MAX_HEIGHT), else LwposeError."""
    if not isinstance(height, int) or isinstance(height, bool) or height < stride or height % stride \
            or height > MAX_HEIGHT:
        raise LwposeError(f"height must be a multiple of {stride} from {stride} to {MAX_HEIGHT}, not {height!r}",
                          param="height")
    return height


def check_frame_size(frame_height: int, frame_width: int) -> None:
    """LwposeError unless a ``frame_width`` x ``frame_height`` frame can be inferred: both sides at
    least MIN_SIDE pixels and an aspect ratio of at most MAX_ASPECT (either way)."""
    short, long = sorted((frame_height, frame_width))
    if short < MIN_SIDE or long > MAX_ASPECT * short:
        raise LwposeError(f"size {frame_width}x{frame_height} cannot be inferred: sides must be at least {MIN_SIDE} "
                          f"pixels and the aspect ratio at most {MAX_ASPECT:g}", param="frame")


def input_shape(frame_height: int, frame_width: int, height: int, stride: int = STRIDE) -> tuple[int, int]:
    """Network input (height, width) for a frame size: ``height``, and the width that keeps the
    aspect ratio, rounded up to the stride."""
    width = frame_width * height / frame_height
    return height, max(stride, math.ceil(width / stride) * stride)


def prepare(frame: np.ndarray, height: int, stride: int = STRIDE,
            shape: tuple[int, int] | None = None) -> tuple[np.ndarray, float]:
    """Resize a BGR u8 frame once to the input height and pad it on the right (with PAD_VALUE)
    to ``shape``'s width (default: :func:`input_shape`).

    Returns the (1, H, W, 3) u8 tensor and the scale from image to network-input pixels; a frame
    size :func:`check_frame_size` refuses is a LwposeError.
    """
    frame = as_bgr(frame)
    check_frame_size(*frame.shape[:2])
    h, w = shape or input_shape(*frame.shape[:2], height, stride)
    scale = h / frame.shape[0]
    new_w = min(w, max(1, round(frame.shape[1] * scale)))
    tensor = np.empty((1, h, w, 3), dtype=np.uint8)
    view = tensor[0, :, :new_w]
    resized = cv2.resize(frame, (new_w, h), dst=view, interpolation=cv2.INTER_LINEAR)  # in place
    if resized is not view:  # OpenCV could not write into the view
        view[...] = resized
    tensor[0, :, new_w:] = PAD_VALUE
    return tensor, scale


def fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` scaled to fit ``height`` x ``width`` (aspect kept), padded right/bottom with
    ``PAD_VALUE``: the fixed-shape input of calibration."""
    scale = min(height / image.shape[0], width / image.shape[1])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    out = np.full((height, width, 3), PAD_VALUE, np.uint8)
    out[:resized.shape[0], :resized.shape[1]] = resized[:height, :width]
    return out


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """A frame as contiguous u8 BGR: grey and BGRA are converted, anything else is a ValueError."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.size == 0:
        raise ValueError("a frame must be a non-empty uint8 numpy array")
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return np.ascontiguousarray(frame)
    raise ValueError(f"a frame must be HxW, HxWx1, HxWx3 or HxWx4, not {frame.shape}")
