"""Training samples: image + augmentation + stride-8 targets (numpy; torch's default collate
turns the dicts into batched tensors).

Augmentation is one affine warp per sample, composed of the original Lightweight OpenPose steps:
scale (the main person's box height becomes ``target_dist`` of the crop, times a random factor in
[scale_min, scale_max]), rotation by up to ±max_rotate degrees about the person's centre, a
crop/pad of ``input_size`` pixels centred on the person shifted by up to ±center_perturb pixels
(padding grey 128), and a horizontal flip with probability ``flip_prob`` that also swaps left and
right keypoints. The random draws of a sample come from a generator seeded by
(seed, epoch, index), so a sample is the same in any worker, process or resumed run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lwpose.errors import LwposeError
from lwpose.media import read_image
from lwpose.pose import flip_permutation
from lwpose.preprocess import PAD_VALUE, STRIDE
from lwpose.train import targets
from lwpose.train.config import TrainConfig

_FLIP = np.array(flip_permutation())


class CocoTrainDataset:
    """Map-style dataset over the (image, main person) samples of prepared labels.

    ``dataset[(index, epoch)]`` (or ``dataset[index]`` for epoch 0) returns a dict of numpy
    arrays: ``image`` (3, S, S) uint8 BGR, ``heatmaps`` (19, S/8, S/8), ``pafs`` (38, S/8, S/8)
    and ``mask`` (1, S/8, S/8) float32 (0 over crowds and unlabelled people).
    """

    def __init__(self, labels: dict[str, Any], images_dir: str | Path, cfg: TrainConfig) -> None:
        self.images = labels["images"]
        self.samples = labels["samples"]
        self.images_dir = Path(images_dir)
        self.cfg = cfg
        if not self.images_dir.is_dir():
            raise LwposeError(f"image folder {self.images_dir} does not exist")
        missing = [img["file_name"] for img in self.images if not (self.images_dir / img["file_name"]).is_file()]
        if missing:
            raise LwposeError(f"{len(missing)} of the {len(self.images)} labelled images are missing from "
                              f"{self.images_dir}, e.g. {missing[0]}")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, np.ndarray]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        rng = np.random.default_rng((self.cfg.seed, epoch, index))
        image_index, person = (int(v) for v in self.samples[index])
        info = self.images[image_index]
        path = self.images_dir / info["file_name"]
        image = read_image(path)
        size = self.cfg.input_size
        matrix, flipped = self.random_affine(rng, info["bbox"][person])
        crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD_VALUE,) * 3)
        keypoints = info["keypoints"].copy()
        keypoints[:, :, :2] = keypoints[:, :, :2] @ matrix[:, :2].T.astype(np.float32) + matrix[:, 2].astype(np.float32)
        if flipped:
            keypoints = keypoints[:, _FLIP]
        grid = (size // STRIDE,) * 2
        return {
            "image": np.ascontiguousarray(crop.transpose(2, 0, 1)),
            "heatmaps": targets.heatmaps(keypoints, grid, sigma=self.cfg.sigma),
            "pafs": targets.pafs(keypoints, grid, thickness=self.cfg.paf_thickness),
            "mask": self.loss_mask(info, image.shape[:2], matrix)[None],
        }

    def random_affine(self, rng: np.random.Generator, bbox: np.ndarray) -> tuple[np.ndarray, bool]:
        """2x3 image → crop matrix around a person's box (x, y, w, h), and whether it flips."""
        cfg = self.cfg
        x, y, w, h = (float(v) for v in bbox)
        center = (x + w / 2, y + h / 2)
        scale = cfg.target_dist * cfg.input_size / max(h, 1.0) * rng.uniform(cfg.scale_min, cfg.scale_max)
        angle = rng.uniform(-cfg.max_rotate, cfg.max_rotate)
        shift = rng.uniform(-cfg.center_perturb, cfg.center_perturb, size=2)
        flipped = bool(rng.random() < cfg.flip_prob)
        matrix = cv2.getRotationMatrix2D(center, angle, scale)  # keeps the centre in place
        matrix[:, 2] += cfg.input_size / 2 + shift - np.array(center)
        if flipped:
            matrix[0] = -matrix[0]
            matrix[0, 2] += cfg.input_size - 1
        return matrix, flipped

    def loss_mask(self, info: dict[str, Any], shape: tuple[int, int], matrix: np.ndarray) -> np.ndarray:
        """(S/8, S/8) float32 loss weights: 0 over crowds and unlabelled people, 1 elsewhere."""
        grid = self.cfg.input_size // STRIDE
        if not info["masks"]:
            return np.ones((grid, grid), np.float32)
        from pycocotools import mask as mask_utils

        h, w = shape
        excluded = np.zeros((h, w), bool)
        for segmentation in info["masks"]:
            if isinstance(segmentation, list) or isinstance(segmentation.get("counts"), list):
                rle = mask_utils.frPyObjects(segmentation, h, w)
            else:
                rle = segmentation
            decoded = mask_utils.decode(rle)
            excluded |= (decoded.reshape(h, w, -1) > 0).any(axis=2)
        size = self.cfg.input_size
        mask = cv2.warpAffine((~excluded).astype(np.float32), matrix, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=1.0)
        return cv2.resize(mask, (grid, grid), interpolation=cv2.INTER_AREA)
