"""Image files: the suffixes lwpose reads as images, listing a folder's images, reading one."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .errors import LwposeError

#: File suffixes read as images (lower case).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def image_files(folder: str | Path) -> list[Path]:
    """The image files of ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_image(path: str | Path) -> np.ndarray:
    """A BGR image as stored: EXIF orientation is ignored, as keypoint annotations are made on the
    stored pixels. An unreadable file is an LwposeError naming it."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise LwposeError(f"{path}: not a readable image")
    return image
