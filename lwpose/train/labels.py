"""COCO keypoint annotations → training labels, and validation subsets.

Prepared labels (a JSON file written by ``prepare_labels``; never a pickle, which could run code
when loaded) hold, per image with at least one
*main* person: the file name and size, every labelled person's 18 keypoints (x, y, v with COCO's
visibility: 0 not labelled, 1 labelled but occluded, 2 visible; the neck is the mean of the
shoulders, labelled when both are) and bounding box, and the segmentations of crowds and of
unlabelled people (masked out of the loss). ``samples`` lists (image, person) pairs: the main
people around whom training crops are centred. As in the original Lightweight OpenPose, a main
person has at least 5 labelled keypoints, an area of at least 32x32 pixels, and a centre not
closer than 0.3 of an earlier main person's box width to that person's centre.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from lwpose.errors import LwposeError
from lwpose.files import load_file
from lwpose.fsutil import atomic_write
from lwpose.pose import COCO17_FROM_18, NUM_KEYPOINTS

log = logging.getLogger(__name__)

LABELS_FORMAT = "lwpose-train-labels"
LABELS_VERSION = 2  # 1 was a pickle
_PICKLE_MAGIC = b"\x80"  # the first byte of every pickle of protocol 2 or later
_REPREPARE = "re-run `lwpose train prepare-labels` to make a JSON labels file"
MIN_MAIN_KEYPOINTS = 5
MIN_MAIN_AREA = 32 * 32
MIN_CENTER_DISTANCE = 0.3  # × the earlier main person's box width
_ANNOTATION_KEYS = ("image_id", "keypoints", "num_keypoints", "iscrowd", "bbox", "area")
_LEFT_SHOULDER, _RIGHT_SHOULDER = 5, 6  # COCO-17 indices
_NECK = 1  # 18-layout index


def load_coco_keypoints(path: str | Path) -> dict[str, Any]:
    """A COCO person-keypoints json, checked enough that later steps cannot fail obscurely."""
    path = Path(path)
    data = load_file(path, "annotations", "json")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise LwposeError(f"annotation file {path} is not COCO format (needs 'images' and 'annotations' lists)")
    for ann in data["annotations"][:1]:
        missing = [k for k in _ANNOTATION_KEYS if k not in ann]
        if missing:
            raise LwposeError(f"annotation file {path} has no person keypoints (annotations lack "
                              f"{', '.join(missing)}); use COCO's person_keypoints_*.json")
    return data


def coco_to_18(keypoints17: np.ndarray) -> np.ndarray:
    """(N, 17, 3) COCO keypoints → (N, 18, 3) in the network's order with the neck added."""
    keypoints17 = np.asarray(keypoints17, np.float32)
    out = np.zeros((len(keypoints17), NUM_KEYPOINTS, 3), np.float32)
    out[:, list(COCO17_FROM_18)] = keypoints17
    shoulders = keypoints17[:, [_LEFT_SHOULDER, _RIGHT_SHOULDER]]
    out[:, _NECK, :2] = shoulders[:, :, :2].mean(axis=1)
    out[:, _NECK, 2] = shoulders[:, :, 2].min(axis=1)
    return out


def prepare_labels(annotations: str | Path, out: str | Path, *, progress: bool = True) -> dict[str, int]:
    """Convert a COCO person-keypoints json into training labels at ``out``; returns counts."""
    log.info("reading %s", annotations)
    data = load_coco_keypoints(annotations)
    anns = data["annotations"]
    if not anns:
        raise LwposeError(f"annotation file {annotations} has no annotations")
    images = {img["id"]: img for img in data["images"]}
    try:
        image_ids = np.array([a["image_id"] for a in anns], np.int64)
        kps17 = np.array([a["keypoints"] for a in anns], np.float32).reshape(len(anns), 17, 3)
        num_kps = np.array([a["num_keypoints"] for a in anns], np.int64)
        crowd = np.array([bool(a["iscrowd"]) for a in anns])
        boxes = np.array([a["bbox"] for a in anns], np.float32).reshape(len(anns), 4)
        areas = np.array([a["area"] for a in anns], np.float32)
        sizes = np.array([(images[i]["width"], images[i]["height"]) for i in image_ids], np.float32)
    except (KeyError, TypeError, ValueError) as exc:
        raise LwposeError(f"annotation file {annotations} has malformed person annotations ({exc!r})") from None

    kps = coco_to_18(kps17)
    xy = kps[:, :, :2]
    outside = (xy < 0).any(axis=2) | (xy[:, :, 0] >= sizes[:, None, 0]) | (xy[:, :, 1] >= sizes[:, None, 1])
    kps[outside, 2] = 0
    labelled = (num_kps > 0) & ~crowd
    main = labelled & (num_kps >= MIN_MAIN_KEYPOINTS) & (areas >= MIN_MAIN_AREA)
    masked = crowd | (num_kps == 0)

    order = np.argsort(image_ids, kind="stable")
    starts = np.flatnonzero(np.r_[True, image_ids[order][1:] != image_ids[order][:-1]])
    groups = np.split(order, starts[1:])
    out_images: list[dict[str, Any]] = []
    samples: list[tuple[int, int]] = []
    if progress:
        from tqdm import tqdm
        groups = tqdm(groups, desc="prepare-labels", unit="image")
    for group in groups:
        people = group[labelled[group]]
        mains = _main_people(people, main[people], boxes[people])
        if not mains:
            continue
        image = images[int(image_ids[group[0]])]
        samples.extend((len(out_images), m) for m in mains)
        out_images.append({
            "id": int(image["id"]), "file_name": image["file_name"],
            "width": int(image["width"]), "height": int(image["height"]),
            "keypoints": _rounded(kps[people]), "bbox": _rounded(boxes[people]),
            "masks": [anns[i]["segmentation"] for i in group[masked[group]] if anns[i].get("segmentation")],
        })
    if not samples:
        raise LwposeError(f"annotation file {annotations}: no person qualifies as a training sample "
                          f"(at least {MIN_MAIN_KEYPOINTS} labelled keypoints and an area of {MIN_MAIN_AREA} pixels)")
    labels = {"format": LABELS_FORMAT, "version": LABELS_VERSION, "source": str(annotations),
              "images": out_images, "samples": samples}
    out = Path(out)
    atomic_write(out, json.dumps(labels, separators=(",", ":")), flag="--out")
    counts = {"images": len(out_images), "samples": len(samples), "people": int(labelled.sum())}
    log.info("wrote %s: %d samples (main people) in %d images, %d labelled people", out,
             counts["samples"], counts["images"], counts["people"])
    return counts


def _rounded(values: np.ndarray) -> list:
    """float32 values as short JSON numbers (3 decimals: COCO coordinates have at most 2)."""
    return np.round(values.astype(np.float64), 3).tolist()


def _main_people(people: np.ndarray, is_main: np.ndarray, boxes: np.ndarray) -> list[int]:
    """Indices (into ``people``) of the main people, dropping near-duplicates of earlier ones."""
    chosen: list[int] = []
    centers = boxes[:, :2] + boxes[:, 2:] / 2
    for k in np.flatnonzero(is_main):
        dist = np.hypot(*(centers[chosen] - centers[k]).T) if chosen else np.empty(0)
        if not np.any(dist < MIN_CENTER_DISTANCE * boxes[chosen, 2]):
            chosen.append(int(k))
    return chosen


def load_labels(path: str | Path) -> dict[str, Any]:
    """Prepared labels written by ``prepare_labels``, with keypoints, boxes and samples as arrays.

    The file is read as JSON only; an old pickled labels file is refused unread."""
    path = Path(path)
    if not path.is_file():
        raise LwposeError(f"labels file {path} does not exist; make it with `lwpose train prepare-labels`")
    with open(path, "rb") as f:
        if f.read(1) == _PICKLE_MAGIC or path.suffix == ".pkl":
            raise LwposeError(f"labels file {path} is a pickle, which lwpose no longer loads (it could run "
                              f"code); {_REPREPARE}")
        f.seek(0)
        try:
            labels = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError):
            labels = None
    if not isinstance(labels, dict) or labels.get("format") != LABELS_FORMAT:
        raise LwposeError(f"labels file {path} is not lwpose training labels; {_REPREPARE}")
    if labels.get("version") != LABELS_VERSION:
        raise LwposeError(f"labels file {path} has version {labels.get('version')}, expected {LABELS_VERSION}; "
                          f"{_REPREPARE}")
    try:
        for image in labels["images"]:
            image["keypoints"] = np.array(image["keypoints"], np.float32).reshape(-1, NUM_KEYPOINTS, 3)
            image["bbox"] = np.array(image["bbox"], np.float32).reshape(-1, 4)
        labels["samples"] = np.array(labels["samples"], np.int32).reshape(-1, 2)
    except (KeyError, TypeError, ValueError) as exc:
        raise LwposeError(f"labels file {path} is malformed ({exc!r}); {_REPREPARE}") from None
    if len(labels["samples"]) == 0:
        raise LwposeError(f"labels file {path} holds no training samples")
    return labels


def make_val_subset(annotations: str | Path, out: str | Path, n: int = 250, seed: int = 0) -> int:
    """Write a COCO json with ``n`` random images of ``annotations`` and their annotations."""
    data = load_coco_keypoints(annotations)
    images = data["images"]
    if not 0 < n <= len(images):
        raise LwposeError(f"n must be between 1 and the {len(images)} images of {annotations}, got {n}", param="n")
    chosen = np.sort(np.random.default_rng(seed).choice(len(images), size=n, replace=False))
    subset_images = [images[i] for i in chosen]
    ids = {img["id"] for img in subset_images}
    subset = {k: v for k, v in data.items() if k not in ("images", "annotations")}
    subset["images"] = subset_images
    subset["annotations"] = [a for a in data["annotations"] if a["image_id"] in ids]
    out = Path(out)
    atomic_write(out, json.dumps(subset), flag="--out")
    log.info("wrote %s: %d images, %d annotations", out, n, len(subset["annotations"]))
    return len(subset["annotations"])
