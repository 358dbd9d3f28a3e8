"""COCO keypoint evaluation: data set loading and checks, 18 → 17 conversion, person scoring,
COCOeval, and :func:`evaluate`, the one loop every evaluation goes through.

``evaluate(predict, images_dir, annotations)`` takes any callable that turns a BGR frame into
:class:`lwpose.preprocess.Maps` (an OpenVINO IR, a torch checkpoint, a converted model, with or
without test-time augmentation) and groups the maps with the runtime's grouping
(``lwpose.decode.group`` + ``people_from_arrays``), so the keypoints scored are those
``lwpose run`` would produce.
"""
from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import decode, media
from ..decode import reference
from ..errors import LwposeError
from ..files import load_file
from ..pose import COCO17_FROM_18, FLIP_PAIRS, KEYPOINTS_17, LIMBS, NUM_KEYPOINTS, Person, people_from_arrays
from ..preprocess import Maps

#: COCOeval's keypoint statistics, in the order of ``COCOeval.stats``. A value is None when the
#: data set has no ground truth in that area range.
METRICS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
#: Added to decoder coordinates (pixel indices, pixel centres at integers) to get COCO's
#: continuous coordinates (pixel centres at .5).
COORDINATE_OFFSET = 0.5
#: A missing keypoint's COCO position is the highest free heatmap peak of its type within this
#: many times the person's extent (larger side of its found keypoints' box in map cells, at least
#: one cell) of the :func:`fill_missing` guess (docs/decoding.md, "Missing keypoints in the COCO
#: results"); the decoder's recovery bounds a limb by the same 1.0 extent ...
LOCATE_RADIUS = 1.0
#: ... among peaks (the decoder's 3×3 rule and sub-cell fit) above this value, the decoder's
#: RECOVER_THRESHOLD.
LOCATE_THRESHOLD = 0.03


@dataclass
class Dataset:
    """A checked COCO-format keypoint set: the pycocotools ground truth and the image files."""

    images_dir: Path
    annotations: Path
    coco: object  # pycocotools.coco.COCO
    category_id: int
    images: list[dict]  # the file's image entries, in file order

    def path(self, image: dict) -> Path:
        return self.images_dir / image["file_name"]

    @property
    def num_people(self) -> int:
        """Ground-truth people with at least one labelled keypoint."""
        return sum(1 for a in self.coco.dataset["annotations"]
                   if a["category_id"] == self.category_id and a["num_keypoints"] > 0)


def coco_folder(data_dir: Path, param: str, *, annotations_required: bool = True) -> tuple[Path, Path | None]:
    """(images folder, annotations json) of a COCO-format folder: ``images/`` (or the folder
    itself) and exactly one ``*.json`` (None when not required and not exactly one)."""
    data_dir = Path(data_dir)
    folder = data_dir / "images" if (data_dir / "images").is_dir() else data_dir
    if not folder.is_dir() or not media.image_files(folder):
        raise LwposeError(f"{param} {data_dir}: no images in {folder}", param=param)
    annotations = sorted(data_dir.glob("*.json"))
    if len(annotations) == 1:
        return folder, annotations[0]
    if annotations_required:
        raise LwposeError(f"{param} {data_dir}: expected one COCO annotations *.json, found {len(annotations)}",
                          param=param)
    return folder, None


def load_dataset(images_dir: str | Path, annotations: str | Path) -> Dataset:
    """Read and check a COCO keypoint set; every problem is a LwposeError naming the file."""
    from pycocotools.coco import COCO

    images_dir, annotations = Path(images_dir), Path(annotations)
    data = load_file(annotations, "annotations", "json")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations", "categories")):
        raise LwposeError(f"annotations {annotations}: not a COCO file (needs 'images', 'annotations' and 'categories' lists)", param="annotations")
    category_id = _keypoint_category(data, annotations)
    images = data["images"]
    if not all(isinstance(img, dict) and "id" in img and "file_name" in img for img in images):
        raise LwposeError(f"annotations {annotations}: every 'images' entry needs an id and a file_name", param="annotations")
    ids = [img["id"] for img in images]
    if len(set(ids)) != len(ids):
        raise LwposeError(f"annotations {annotations}: duplicate image ids in 'images'", param="annotations")
    known = set(ids)
    people = [a for a in data["annotations"] if a.get("category_id") == category_id]
    for ann in people:
        if ann.get("image_id") not in known:
            raise LwposeError(f"annotations {annotations}: annotation {ann.get('id')} refers to image_id "
                              f"{ann.get('image_id')!r}, which is not in 'images'", param="annotations")
        problem = _annotation_problem(ann)
        if problem:
            raise LwposeError(f"annotations {annotations}: annotation {ann.get('id')} {problem}", param="annotations")
        ann.setdefault("num_keypoints", sum(1 for v in ann["keypoints"][2::3] if v > 0))
    if not any(any(v > 0 for v in a["keypoints"][2::3]) for a in people):
        raise LwposeError(f"annotations {annotations}: no annotation has labelled keypoints "
                          "(a person_keypoints_*.json is needed, not instances_*.json)", param="annotations")
    if not images_dir.is_dir():
        raise LwposeError(f"images {images_dir}: directory not found", param="images")
    absent = [img["file_name"] for img in images if not (images_dir / img["file_name"]).is_file()]
    if absent:
        raise LwposeError(f"images {images_dir}: {len(absent)} of {len(images)} images listed in {annotations} "
                          f"are missing: {', '.join(absent[:5])}{' ...' if len(absent) > 5 else ''}", param="images")
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return Dataset(images_dir, annotations, coco, category_id, images)


def _numbers(value: object, count: int) -> bool:
    return isinstance(value, list) and len(value) == count and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in value)


def _annotation_problem(ann: dict) -> str | None:
    """What is wrong with a person annotation's keypoints, bbox and area, or None."""
    missing = [k for k in ("keypoints", "bbox", "area") if k not in ann]
    if missing:
        return f"has no {', '.join(missing)}"
    if not _numbers(ann["keypoints"], 3 * len(KEYPOINTS_17)):
        return f"has keypoints {_shown(ann['keypoints'])}, not a list of {3 * len(KEYPOINTS_17)} numbers"
    if not _numbers(ann["bbox"], 4):
        return f"has bbox {_shown(ann['bbox'])}, not a list of 4 numbers"
    if not _numbers([ann["area"]], 1):
        return f"has area {_shown(ann['area'])}, not a number"
    return None


def _shown(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _keypoint_category(data: dict, annotations: Path) -> int:
    """Id of the category with the 17 COCO keypoints."""
    for cat in data["categories"]:
        if len(cat.get("keypoints", ())) == len(KEYPOINTS_17):
            return cat["id"]
    raise LwposeError(f"annotations {annotations}: no category lists the 17 COCO keypoints "
                      "(a person_keypoints_*.json is needed)", param="annotations")


def dataset_image(path: Path, image: dict | None = None) -> np.ndarray:
    """A BGR image as stored (EXIF orientation ignored, as COCO annotations are), checked against
    the ``width`` / ``height`` of its ``images`` entry when given."""
    frame = media.read_image(path)
    if image and "width" in image and "height" in image and frame.shape[:2] != (image["height"], image["width"]):
        raise LwposeError(f"{path} is {frame.shape[1]}x{frame.shape[0]} but the annotations say "
                          f"{image['width']}x{image['height']}")
    return frame


def _skeleton_neighbours() -> list[list[int]]:
    """Adjacency of the 18 keypoints: the grouping limbs plus each left/right twin."""
    adjacent: list[list[int]] = [[] for _ in range(NUM_KEYPOINTS)]
    for a, b in (*LIMBS, *FLIP_PAIRS):
        adjacent[a].append(b)
        adjacent[b].append(a)
    return adjacent


_NEIGHBOURS = _skeleton_neighbours()


def fill_missing(keypoints: np.ndarray) -> np.ndarray:
    """(18, 2) positions where each missing keypoint takes the mean position of the nearest
    found keypoints in the skeleton graph (limbs + left/right twins).

    COCO's OKS gives a missing prediction nothing; a guess near the body can only add to it.
    """
    found = keypoints[:, 2] > 0
    xy = keypoints[:, :2].copy()
    for k in np.flatnonzero(~found):
        seen, ring = {k}, [k]
        while ring:
            ring = list(dict.fromkeys(n for i in ring for n in _NEIGHBOURS[i] if n not in seen))
            seen.update(ring)
            hits = [n for n in ring if found[n]]
            if hits:
                xy[k] = keypoints[hits, :2].mean(axis=0)
                break
    return xy


def locate_missing(people: list[Person], heatmaps: np.ndarray, scale: float, stride: int = 8) -> list[np.ndarray]:
    """(18, 2) image positions per person for the COCO results: found keypoints as they are; a
    missing one at the highest free peak of its heatmap (above LOCATE_THRESHOLD) within
    LOCATE_RADIUS × the person's extent of the :func:`fill_missing` guess, else at the guess.

    A peak is free when no person has it as a keypoint and no earlier person (in the given order)
    took it here. ``heatmaps`` (>= 18, H, W) are the maps the people were decoded from, ``scale``
    the image to network-input scale (as in ``people_from_arrays``). The decoder left these
    keypoints out (no limb to them passed its PAF tests); this is the evaluation's guess, as
    fill_missing's is, and changes no found keypoint.
    """
    # image pixels -> map cells: the inverse of people_from_arrays and the decoder's convention
    cells = [(p.keypoints[:, :2].astype(np.float64) + 0.5) * scale / stride - 0.5 for p in people]
    found = [p.keypoints[:, 2] > 0 for p in people]
    peaks: dict[int, np.ndarray] = {}
    free: dict[int, np.ndarray] = {}
    positions = []
    for n, person in enumerate(people):
        xy = fill_missing(person.keypoints)
        positions.append(xy)
        if not found[n].any():
            continue
        guess = fill_missing(np.column_stack([cells[n], person.keypoints[:, 2]]))
        own = cells[n][found[n]]
        radius = LOCATE_RADIUS * max(float(np.ptp(own[:, 0])), float(np.ptp(own[:, 1])), 1.0)
        for t in np.flatnonzero(~found[n]):
            if t not in peaks:
                peaks[t] = reference.find_peaks(heatmaps[t], LOCATE_THRESHOLD)  # highest first
                taken = [c[t] for c, f in zip(cells, found) if f[t]]
                free[t] = np.array([not any(abs(px - x) < 1e-3 and abs(py - y) < 1e-3 for x, y in taken)
                                    for px, py, _ in peaks[t]], bool)
            near = free[t] & (np.hypot(peaks[t][:, 0] - guess[t, 0], peaks[t][:, 1] - guess[t, 1]) <= radius)
            if near.any():
                k = int(np.argmax(near))  # the first, i.e. highest, free peak in range
                free[t][k] = False
                x, y = peaks[t][k, :2]
                xy[t] = (stride * (x + 0.5) / scale - 0.5, stride * (y + 0.5) / scale - 0.5)
    return positions


def person_score(person: Person, image_size: tuple[int, int]) -> float:
    """The COCO result score: mean confidence of the 17 COCO keypoints (missing = 0) times the
    person's size relative to the image (sqrt of box area / image area).

    The size factor ranks small, often spurious or unlabelled people below big ones; on the
    mini sets it lifts AP (see docs/accuracy.md).
    """
    confidence = person.coco17()[:, 2].sum() / len(KEYPOINTS_17)
    _, _, w, h = person.bbox
    return float(confidence * np.sqrt(w * h / (image_size[0] * image_size[1])))


def coco_results(people: Iterable[Person], image_id: int, image_size: tuple[int, int], category_id: int = 1,
                 maps: Maps | None = None, stride: int = 8) -> list[dict]:
    """COCO keypoint results for one image's people (image pixels, 18-keypoint layout);
    ``image_size`` is the image's (height, width).

    Found keypoints get visibility 1; missing ones visibility 0 at the position of
    :func:`locate_missing` on the ``maps`` the people were decoded from, or of
    :func:`fill_missing` without maps (COCOeval ignores predicted visibility). People without any
    COCO keypoint (only a neck) are left out.
    """
    coco17 = list(COCO17_FROM_18)
    people = list(people)
    positions = (locate_missing(people, maps.heatmaps, maps.scale, stride) if maps is not None
                 else [fill_missing(p.keypoints) for p in people])
    results = []
    for person, position in zip(people, positions):
        visible = person.keypoints[coco17, 2] > 0
        if not visible.any():
            continue
        xy = position[coco17] + COORDINATE_OFFSET
        values = np.column_stack([xy, visible]).astype(np.float64).round(2)
        results.append({"image_id": image_id, "category_id": category_id, "keypoints": values.ravel().tolist(),
                        "score": round(person_score(person, image_size), 6)})
    return results


def score(dataset: Dataset, results: list[dict]) -> dict[str, float | None]:
    """COCOeval (keypoints) of ``results`` on the whole data set; an empty list scores 0."""
    from pycocotools.cocoeval import COCOeval

    known = {img["id"] for img in dataset.images}
    for r in results:
        if r.get("image_id") not in known:
            raise LwposeError(f"a prediction has image_id {r.get('image_id')!r}, which is not in {dataset.annotations}")
    predictions = _results_coco(dataset, results)
    evaluator = COCOeval(dataset.coco, predictions, "keypoints")
    evaluator.params.imgIds = sorted(known)
    evaluator.params.catIds = [dataset.category_id]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: (None if value < 0 else round(float(max(value, 0.0)), 4))
            for name, value in zip(METRICS, evaluator.stats)}


def _results_coco(dataset: Dataset, results: list[dict]):
    """The predictions as a pycocotools COCO object (also for an empty list, which
    ``COCO.loadRes`` rejects). A prediction's area and box come from its visible keypoints."""
    from pycocotools.coco import COCO

    annotations = []
    for n, r in enumerate(results, 1):
        kps = np.asarray(r["keypoints"], np.float64).reshape(-1, 3)
        pts = kps[kps[:, 2] > 0, :2] if (kps[:, 2] > 0).any() else kps[:, :2]
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        annotations.append({**r, "id": n, "iscrowd": 0, "area": float((x1 - x0) * (y1 - y0)),
                            "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]})
    coco = COCO()
    coco.dataset = {"images": dataset.images, "categories": dataset.coco.dataset["categories"],
                    "annotations": annotations}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def evaluate(predict: Callable[[np.ndarray], Maps], images_dir: str | Path, annotations: str | Path, *,
             stride: int = 8, progress: bool = False) -> dict:
    """Run ``predict`` on every image of a COCO keypoint set, group, and score with COCOeval.

    ``predict`` maps a BGR u8 frame to :class:`Maps`. Returns ``metrics`` (see :data:`METRICS`),
    ``images_per_s``, ``num_images``, ``num_people`` (ground truth), ``num_predictions`` and
    ``predictions`` (the COCO results list).
    """
    return evaluate_dataset(predict, load_dataset(images_dir, annotations), stride=stride, progress=progress)


def evaluate_dataset(predict: Callable[[np.ndarray], Maps], dataset: Dataset, *, stride: int = 8,
                     progress: bool = False) -> dict:
    """:func:`evaluate` on a loaded data set.

    The first frame of each size is predicted once more, untimed (compilation, allocation), so
    ``images_per_s`` is the steady-state rate of prediction + grouping.
    """
    results: list[dict] = []
    warmed: set[tuple[int, ...]] = set()
    elapsed = 0.0
    images = dataset.images
    if progress:
        from tqdm import tqdm

        images = tqdm(images, desc="eval", unit="img")
    for image in images:
        frame = dataset_image(dataset.path(image), image)
        if frame.shape not in warmed:
            predict(frame)
            warmed.add(frame.shape)
        start = time.perf_counter()
        maps = predict(frame)
        keypoints, scores = decode.group(maps.heatmaps, maps.pafs, stride=stride)
        people = people_from_arrays(keypoints, scores, maps.scale)
        elapsed += time.perf_counter() - start
        results.extend(coco_results(people, image["id"], frame.shape[:2], dataset.category_id, maps, stride))
    return {
        "metrics": score(dataset, results),
        "images_per_s": round(len(dataset.images) / elapsed, 2) if elapsed > 0 else None,
        "num_images": len(dataset.images),
        "num_people": dataset.num_people,
        "num_predictions": len(results),
        "predictions": results,
    }
