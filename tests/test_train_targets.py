"""lwpose.train data side: labels, targets, augmentation, and the targets → grouping → COCO oracle."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from lwpose.errors import LwposeError
from lwpose.pose import KEYPOINTS_18, LIMB_PAF_CHANNELS, LIMBS, NUM_KEYPOINTS
from lwpose.train import targets
from lwpose.train.config import make_config
from lwpose.train.labels import load_labels, make_val_subset, prepare_labels

ANNOTATIONS = "person_keypoints_mini.json"
NECK, R_SHOULDER, L_SHOULDER = (KEYPOINTS_18.index(n) for n in ("neck", "right_shoulder", "left_shoulder"))


def person(**points: tuple[float, float]) -> np.ndarray:
    """(1, 18, 3) keypoints with the named ones labelled."""
    kps = np.zeros((1, NUM_KEYPOINTS, 3), np.float32)
    for name, (x, y) in points.items():
        kps[0, KEYPOINTS_18.index(name)] = (x, y, 2)
    return kps


@pytest.fixture(scope="module")
def labels_path(coco_mini: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("labels") / "labels.json"
    prepare_labels(coco_mini / ANNOTATIONS, out, progress=False)
    return out


def test_heatmap_peak_at_keypoint() -> None:
    x, y = 8 * 12 + 3.5, 8 * 7 + 3.5  # the centre of map cell (row 7, column 12)
    kps = person(nose=(x, y), left_eye=(200.0, 100.0))
    kps[0, KEYPOINTS_18.index("left_eye"), 2] = 0  # unlabelled: no Gaussian
    maps = targets.heatmaps(kps, (46, 46), sigma=7.0)
    nose = maps[KEYPOINTS_18.index("nose")]
    assert np.unravel_index(nose.argmax(), nose.shape) == (7, 12)
    assert nose[7, 12] == pytest.approx(1.0)
    assert nose[7, 13] == pytest.approx(math.exp(-64 / (2 * 49)), rel=1e-5)  # one cell = 8 px away
    assert nose[7, 12 + 5] == 0  # beyond the 0.01 cut-off
    assert not maps[KEYPOINTS_18.index("left_eye")].any()
    np.testing.assert_allclose(maps[-1], 1 - maps[:-1].max(axis=0))


def test_heatmap_off_centre_peak_and_overlap() -> None:
    kps = person(nose=(101.0, 58.0))
    nose = targets.heatmaps(kps, (46, 46))[KEYPOINTS_18.index("nose")]
    row, col = np.unravel_index(nose.argmax(), nose.shape)
    centres = targets.cell_centers(46)
    assert abs(centres[col] - 101.0) <= 4 and abs(centres[row] - 58.0) <= 4
    both = targets.heatmaps(np.concatenate([kps, kps]), (46, 46))[KEYPOINTS_18.index("nose")]
    np.testing.assert_allclose(both, np.minimum(2 * nose, 1))  # two people on one spot: summed, clipped


def test_paf_unit_vectors_along_limb_and_zero_outside() -> None:
    a, b = np.array([60.0, 40.0]), np.array([180.0, 130.0])  # neck → right shoulder, diagonal
    maps = targets.pafs(person(neck=tuple(a), right_shoulder=tuple(b)), (46, 46), thickness=1.0)
    cx, cy = LIMB_PAF_CHANNELS[LIMBS.index((NECK, R_SHOULDER))]
    unit = (b - a) / np.linalg.norm(b - a)
    for t in np.linspace(0.1, 0.9, 9):  # cells on the segment carry the unit vector
        px, py = a + t * (b - a)
        j, i = round((px + 0.5) / 8 - 0.5), round((py + 0.5) / 8 - 0.5)
        np.testing.assert_allclose(maps[[cx, cy], i, j], unit, rtol=1e-6)
    norms = np.hypot(maps[cx], maps[cy])
    assert set(np.round(np.unique(norms), 5)) == {0.0, 1.0}
    rows, cols = np.nonzero(norms)  # every non-zero cell is within 1 cell of the line ...
    ca, cb = (a + 0.5) / 8 - 0.5, (b + 0.5) / 8 - 0.5
    d = np.abs((cols - ca[0]) * unit[1] - (rows - ca[1]) * unit[0])
    assert d.max() <= 1.0
    assert cols.min() >= ca[0] - 1 and cols.max() <= cb[0] + 1  # ... and near the segment
    others = np.delete(maps, [cx, cy], axis=0)
    assert not others.any()


def test_paf_overlap_is_the_mean_vector() -> None:
    left = person(neck=(40.0, 100.0), right_shoulder=(200.0, 100.0))
    right = person(neck=(200.0, 100.0), right_shoulder=(40.0, 100.0))
    maps = targets.pafs(np.concatenate([left, left, right]), (46, 46))
    cx, _ = LIMB_PAF_CHANNELS[LIMBS.index((NECK, R_SHOULDER))]
    i, j = round(100.5 / 8 - 0.5), round(120.5 / 8 - 0.5)
    assert maps[cx, i, j] == pytest.approx((1 + 1 - 1) / 3)


def test_prepare_labels(labels_path: Path, coco_mini: Path) -> None:
    labels = load_labels(labels_path)
    gt = json.loads((coco_mini / ANNOTATIONS).read_text())
    labelled = [a for a in gt["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    assert sum(len(img["keypoints"]) for img in labels["images"]) == len(labelled)
    assert len(labels["samples"]) == sum(a["num_keypoints"] >= 5 and a["area"] >= 1024 for a in labelled)
    first = next(img for img in labels["images"] if img["id"] == labelled[0]["image_id"])
    coco = np.array(labelled[0]["keypoints"], np.float32).reshape(17, 3)
    kps = first["keypoints"][0]
    np.testing.assert_allclose(kps[NECK, :2], (coco[5, :2] + coco[6, :2]) / 2)  # COCO 5, 6: shoulders
    np.testing.assert_allclose(kps[L_SHOULDER], coco[5])
    assert sum(len(img["masks"]) for img in labels["images"]) == sum(
        1 for a in gt["annotations"] if a["num_keypoints"] == 0 or a["iscrowd"])


def test_oracle_targets_group_to_ground_truth(labels_path: Path, coco_mini: Path) -> None:
    """Ground truth → targets at the image's own scale → lwpose.decode.group → COCO AP."""
    from lwpose import decode
    from lwpose.eval import coco
    from lwpose.pose import people_from_arrays

    dataset = coco.load_dataset(coco_mini / "images", coco_mini / ANNOTATIONS)
    results = []
    for image in load_labels(labels_path)["images"]:
        grid = (math.ceil(image["height"] / 8), math.ceil(image["width"] / 8))
        keypoints, scores = decode.group(targets.heatmaps(image["keypoints"], grid),
                                         targets.pafs(image["keypoints"], grid), stride=8)
        assert len(keypoints) == len(image["keypoints"])
        people = people_from_arrays(keypoints, scores, 1.0)
        results += coco.coco_results(people, image["id"], (image["height"], image["width"]), dataset.category_id)
    assert coco.score(dataset, results)["AP"] >= 0.9


def test_dataset_sample_and_flip(labels_path: Path, coco_mini: Path) -> None:
    from lwpose.train.dataset import CocoTrainDataset

    def sample(flip_prob: float) -> dict:
        cfg = make_config(train_labels=str(labels_path), train_images=str(coco_mini / "images"), input_size=184,
                          scale_min=1.0, scale_max=1.0, max_rotate=0.0, center_perturb=0.0, flip_prob=flip_prob)
        return CocoTrainDataset(load_labels(labels_path), cfg.train_images, cfg)[(0, 3)]

    plain, flipped = sample(0.0), sample(1.0)
    assert plain["image"].shape == (3, 184, 184) and plain["image"].dtype == np.uint8
    assert plain["heatmaps"].shape == (19, 23, 23) and plain["pafs"].shape == (38, 23, 23)
    assert plain["mask"].shape == (1, 23, 23)
    assert plain["heatmaps"][:18].max() > 0.9  # the main person is in the crop
    mirrored = plain["image"][:, :, ::-1].astype(int)
    assert np.abs(flipped["image"].astype(int) - mirrored).max() <= 1  # warpAffine's fixed-point rounding
    np.testing.assert_allclose(flipped["heatmaps"][R_SHOULDER], plain["heatmaps"][L_SHOULDER][:, ::-1], atol=1e-5)
    np.testing.assert_allclose(flipped["heatmaps"][NECK], plain["heatmaps"][NECK][:, ::-1], atol=1e-5)


def test_make_val_subset(coco_mini: Path, tmp_path: Path) -> None:
    out = tmp_path / "val.json"
    make_val_subset(coco_mini / ANNOTATIONS, out, n=2, seed=0)
    subset = json.loads(out.read_text())
    ids = {img["id"] for img in subset["images"]}
    assert len(ids) == 2 and {a["image_id"] for a in subset["annotations"]} <= ids
    make_val_subset(coco_mini / ANNOTATIONS, tmp_path / "again.json", n=2, seed=0)
    assert json.loads((tmp_path / "again.json").read_text()) == subset
    with pytest.raises(LwposeError, match="^n must be"):
        make_val_subset(coco_mini / ANNOTATIONS, out, n=99)


def test_bad_annotation_files(coco_mini: Path, tmp_path: Path) -> None:
    gt = json.loads((coco_mini / ANNOTATIONS).read_text())
    not_json = tmp_path / "a.json"
    not_json.write_text("images:\n - 1\n")
    instances = tmp_path / "instances.json"
    instances.write_text(json.dumps({**gt, "annotations": [{k: v for k, v in a.items() if k != "keypoints"}
                                                           for a in gt["annotations"]]}))
    tiny = tmp_path / "tiny.json"
    tiny.write_text(json.dumps({**gt, "annotations": [a for a in gt["annotations"] if a["num_keypoints"] < 5]}))
    for path, message in ((tmp_path / "missing.json", "file not found"), (not_json, "not valid JSON"),
                          (instances, "no person keypoints"), (tiny, "no person qualifies")):
        with pytest.raises(LwposeError, match=message):
            prepare_labels(path, tmp_path / "out.json", progress=False)
    with pytest.raises(LwposeError, match="not lwpose training labels"):
        load_labels(not_json)


def test_missing_image(labels_path: Path, coco_mini: Path, tmp_path: Path) -> None:
    from lwpose.train.dataset import CocoTrainDataset

    images = sorted((coco_mini / "images").iterdir())
    for image in images[1:]:
        shutil.copy(image, tmp_path)
    cfg = make_config(train_labels=str(labels_path), train_images=str(tmp_path))
    with pytest.raises(LwposeError, match=f"1 of the 4 labelled images are missing .*{images[0].name}"):
        CocoTrainDataset(load_labels(labels_path), tmp_path, cfg)
