"""Image files: the suffixes lwpose reads as images, and listing a folder's images."""
from __future__ import annotations

from pathlib import Path

#: File suffixes read as images (lower case).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def image_files(folder: str | Path) -> list[Path]:
    """The image files of ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
