"""Rebuild lwpose/convert/calib/, the default INT8 calibration set (sources in its README.md).

    python benchmarks/make_calib_set.py VTEST_AVI OPENCV_SAMPLES_DATA_DIR

VTEST_AVI: OpenCV's ``vtest.avi``; OPENCV_SAMPLES_DATA_DIR: OpenCV's ``samples/data`` (Debian
``opencv-doc``: /usr/share/doc/opencv-doc/examples/data). Deterministic (fixed seed).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "lwpose" / "convert" / "calib"
#: vtest.avi frames taken, and the crops of each: (relative size, count). Crops of the 768x576
#: street scene make its small pedestrians appear 2x and 3x larger once resized to the input height.
VTEST_FRAMES = 20
VTEST_CROPS = ((1.0, 1), (0.5, 1), (1 / 3, 1))
#: Photos of people from OpenCV's samples/data, each also as a horizontal flip.
PHOTOS = ("basketball1.png", "basketball2.png", "messi5.jpg")
QUALITY = 80


def video_frames(path: Path, count: int) -> list[tuple[int, np.ndarray]]:
    capture = cv2.VideoCapture(str(path))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    wanted = set(np.linspace(0, total - 1, count).round().astype(int).tolist())
    frames, index = [], 0
    while capture.grab():
        if index in wanted:
            frames.append((index, capture.retrieve()[1]))
        index += 1
    capture.release()
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vtest", type=Path)
    parser.add_argument("opencv_data", type=Path)
    args = parser.parse_args()
    rng = np.random.default_rng(15)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.jpg"):
        old.unlink()
    for index, frame in video_frames(args.vtest, VTEST_FRAMES):
        height, width = frame.shape[:2]
        for size, count in VTEST_CROPS:
            for n in range(count):
                h, w = round(height * size), round(width * size)
                y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
                name = f"vtest-{index:03d}-{round(1 / size)}x{n}.jpg"
                cv2.imwrite(str(OUT / name), frame[y:y + h, x:x + w], [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    for photo in PHOTOS:
        image = cv2.imread(str(args.opencv_data / photo))
        stem = Path(photo).stem
        cv2.imwrite(str(OUT / f"opencv-{stem}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
        cv2.imwrite(str(OUT / f"opencv-{stem}-flip.jpg"), image[:, ::-1], [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    print(f"{len(list(OUT.glob('*.jpg')))} images, {sum(p.stat().st_size for p in OUT.glob('*.jpg')) / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    main()
