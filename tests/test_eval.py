"""lwpose eval: COCO conversion + COCOeval, bad input, test-time augmentation, and that the
evaluation's keypoints are the runtime's."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lwpose.cli import main
from lwpose.errors import LwposeError
from lwpose.decode import reference
from lwpose.eval import coco, predict, tta
from lwpose.pose import COCO17_FROM_18, NUM_KEYPOINTS, Person
from lwpose.backends import open_backend
from lwpose.backends.openvino import OpenVINOBackend
from lwpose.preprocess import Maps, prepare

COCO_CATEGORY = {"id": 1, "name": "person", "supercategory": "person",
                 "keypoints": ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
                               "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                               "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]}


def _person_annotation(ann_id: int, image_id: int, x0: float, y0: float, rng: np.random.Generator) -> dict:
    """A person of 17 keypoints in a 60 × 120 box, some keypoints unlabelled."""
    kps = np.column_stack([x0 + rng.uniform(0, 60, 17), y0 + rng.uniform(0, 120, 17), np.full(17, 2)])
    kps[rng.choice(17, 3, replace=False), :] = 0
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "area": 60 * 120 * 0.6,
            "bbox": [x0, y0, 60, 120], "num_keypoints": int((kps[:, 2] > 0).sum()),
            "keypoints": kps.round(2).ravel().tolist()}


@pytest.fixture()
def synthetic(tmp_path: Path) -> tuple[Path, Path]:
    """Two blank images with three labelled people: (images dir, annotations file)."""
    rng = np.random.default_rng(0)
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    images = []
    for image_id, name in ((1, "a.jpg"), (2, "b.jpg")):
        cv2.imwrite(str(images_dir / name), np.zeros((240, 320, 3), np.uint8))
        images.append({"id": image_id, "file_name": name, "height": 240, "width": 320})
    annotations = [_person_annotation(1, 1, 20, 30, rng), _person_annotation(2, 1, 150, 60, rng),
                   _person_annotation(3, 2, 100, 80, rng)]
    ann_file = tmp_path / "person_keypoints.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [COCO_CATEGORY]}))
    return images_dir, ann_file


def _people_from_ground_truth(dataset: coco.Dataset, image_id: int, shift: float = 0.0) -> list[Person]:
    """Predictions equal to the ground truth (18-keypoint layout, decoder pixel convention)."""
    people = []
    for ann in dataset.coco.imgToAnns[image_id]:
        gt = np.asarray(ann["keypoints"], np.float32).reshape(17, 3)
        if not (gt[:, 2] > 0).any():
            continue
        kps = np.tile(np.float32([-1, -1, 0]), (NUM_KEYPOINTS, 1))
        for i17, i18 in enumerate(COCO17_FROM_18):
            if gt[i17, 2] > 0:
                kps[i18] = (gt[i17, 0] - coco.COORDINATE_OFFSET + shift, gt[i17, 1] - coco.COORDINATE_OFFSET, 0.9)
        people.append(Person(kps, 0.9))
    return people


def _results(dataset: coco.Dataset, shift: float = 0.0) -> list[dict]:
    return [r for img in dataset.images
            for r in coco.coco_results(_people_from_ground_truth(dataset, img["id"], shift), img["id"],
                                       (img["height"], img["width"]), dataset.category_id)]


def test_ground_truth_as_predictions_scores_ap_1(synthetic):
    dataset = coco.load_dataset(*synthetic)
    metrics = coco.score(dataset, _results(dataset))
    assert metrics["AP"] == 1.0 and metrics["AR"] == 1.0


def test_ground_truth_of_coco_mini_scores_ap_1(coco_mini):
    dataset = coco.load_dataset(coco_mini / "images", coco_mini / "person_keypoints_mini.json")
    assert coco.score(dataset, _results(dataset))["AP"] == 1.0


def test_shifted_predictions_score_lower(synthetic):
    dataset = coco.load_dataset(*synthetic)
    assert coco.score(dataset, _results(dataset, shift=8.0))["AP"] < 0.5


def test_empty_predictions_score_zero(synthetic):
    metrics = coco.score(coco.load_dataset(*synthetic), [])
    assert metrics["AP"] == 0.0 and metrics["AR"] == 0.0


def test_model_that_finds_nobody_scores_zero(synthetic):
    def nothing(frame: np.ndarray) -> Maps:
        h, w = frame.shape[0] // 8, frame.shape[1] // 8
        return Maps(np.zeros((19, h, w), np.float32), np.zeros((38, h, w), np.float32), 1.0)

    result = coco.evaluate(nothing, *synthetic)
    assert result["num_predictions"] == 0 and result["metrics"]["AP"] == 0.0 and result["num_people"] == 3


def test_missing_keypoints_take_nearest_found_position():
    kps = np.tile(np.float32([-1, -1, 0]), (NUM_KEYPOINTS, 1))
    kps[0] = (10, 20, 0.9)  # nose
    kps[14] = (14, 16, 0.8)  # right eye
    xy = coco.fill_missing(kps)
    assert xy[15].tolist() == [12, 18]  # left eye: nose and its twin, one edge away
    assert xy[17].tolist() == [12, 18]  # left ear: two edges away from both
    assert xy[0].tolist() == [10, 20]


def test_prediction_score_prefers_confident_and_large_people():
    kps = np.tile(np.float32([-1, -1, 0]), (NUM_KEYPOINTS, 1))
    kps[[0, 2, 5, 8, 11]] = [(50, 10, 0.9), (40, 30, 0.9), (60, 30, 0.9), (42, 80, 0.9), (58, 80, 0.9)]
    small = kps.copy()
    small[:, :2] /= 2
    weak = kps.copy()
    weak[[0, 2, 5, 8, 11], 2] = 0.3
    scores = [coco.person_score(Person(k, 0.0), (240, 320)) for k in (kps, small, weak)]
    assert scores[0] > scores[1] and scores[0] > scores[2] > 0


def _never_called(frame: np.ndarray) -> Maps:
    raise AssertionError("the data set checks come before any prediction")


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("breakage, message", [
    ("no file", "file not found"),
    ("not json", "not valid JSON"),
    ("instances file", "17 COCO keypoints"),
    ("no keypoint values", "has no keypoints"),
    ("nothing labelled", "no annotation has labelled keypoints"),
    ("unknown image id", "refers to image_id 99"),
    ("missing image", "1 of 2 images"),
    ("no images dir", "directory not found"),
    ("wrong size", "is 320x240 but the annotations say 640x480"),
])
def test_bad_input_is_a_clear_error(synthetic, breakage, message):
    images_dir, ann_file = synthetic
    data = json.loads(ann_file.read_text())
    if breakage == "no file":
        ann_file = images_dir / "missing.json"
    elif breakage == "not json":
        ann_file.write_text("{not json")
    elif breakage == "instances file":
        data["categories"] = [{"id": 1, "name": "person"}]
    elif breakage == "no keypoint values":
        del data["annotations"][0]["keypoints"]
    elif breakage == "nothing labelled":
        for ann in data["annotations"]:
            ann["keypoints"] = [0] * 51
    elif breakage == "unknown image id":
        data["annotations"][1]["image_id"] = 99
    elif breakage == "missing image":
        (images_dir / "b.jpg").unlink()
    elif breakage == "no images dir":
        images_dir = images_dir / "nope"
    elif breakage == "wrong size":
        data["images"][0].update(width=640, height=480)
    if breakage in ("instances file", "no keypoint values", "nothing labelled", "unknown image id", "wrong size"):
        _write(ann_file, data)
    with pytest.raises(LwposeError, match=message):
        coco.evaluate(_never_called, images_dir, ann_file)


def test_prediction_for_unknown_image_is_an_error(synthetic):
    dataset = coco.load_dataset(*synthetic)
    results = _results(dataset)
    results[0]["image_id"] = 42
    with pytest.raises(LwposeError, match="image_id 42"):
        coco.score(dataset, results)


def test_cli_error_names_the_file(synthetic, capsys):
    images_dir, _ = synthetic
    code = main(["eval", "--model", "m.xml", "--images", str(images_dir), "--annotations", "nope.json"])
    assert code == 2
    assert "lwpose eval: error:" in capsys.readouterr().err


def _random_maps(rng: np.random.Generator, h: int = 6, w: int = 9, scale: float = 0.5) -> Maps:
    return Maps(rng.random((19, h, w), np.float32), rng.standard_normal((38, h, w)).astype(np.float32), scale)


def test_unflip_is_an_involution():
    maps = _random_maps(np.random.default_rng(1))
    twice = tta.unflip(tta.unflip(maps))
    np.testing.assert_array_equal(twice.heatmaps, maps.heatmaps)
    np.testing.assert_array_equal(twice.pafs, maps.pafs)
    assert sorted(tta.PAF_FLIP.tolist()) == list(range(38)) and (tta.PAF_SIGN == -1).sum() == 19


def _peak(x: float, y: float, h: int, w: int) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    return np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / 2.0).astype(np.float32)


def test_merge_aligns_scales_on_the_finest_grid():
    """A point at image position (X, Y) sits at map cell (X·s/8 − 0.5, Y·s/8 − 0.5) at scale s;
    after merging, every run's peak is at the finest run's cell."""
    X, Y = 173.0, 101.0
    runs = []
    for s, (h, w) in ((1.0, (32, 48)), (0.5, (16, 24)), (0.75, (24, 36))):
        hm = np.zeros((19, h, w), np.float32)
        hm[0] = _peak(X * s / 8 - 0.5, Y * s / 8 - 0.5, h, w)
        runs.append(Maps(hm, np.zeros((38, h, w), np.float32), s))
    merged = tta.merge(runs)
    assert merged.heatmaps.shape == (19, 32, 48) and merged.scale == 1.0
    grid = merged.heatmaps[0]
    ys, xs = np.mgrid[0:32, 0:48]
    cx, cy = (grid * xs).sum() / grid.sum(), (grid * ys).sum() / grid.sum()
    assert abs(cx - (X / 8 - 0.5)) < 0.1 and abs(cy - (Y / 8 - 0.5)) < 0.1
    single = tta.merge(runs[:1])
    np.testing.assert_allclose(single.heatmaps, runs[0].heatmaps)


@pytest.mark.numerics
def test_flip_predictions_match_the_plain_ones(ir_path, coco_mini):
    """The mirrored run, unflipped, agrees with the plain run: heatmaps and PAFs (signs included)."""
    network = OpenVINOBackend(ir_path)
    frame = coco.dataset_image(coco_mini / "images/000000197388.jpg")
    tensor, scale = prepare(frame, 256, 8)
    plain = Maps(*network.infer(tensor), scale)
    flipped = tta.unflip(Maps(*network.infer(np.ascontiguousarray(tensor[:, :, ::-1])), scale))

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    assert np.median([corr(plain.heatmaps[c], flipped.heatmaps[c]) for c in range(19)]) > 0.85
    paf = [corr(plain.pafs[c], flipped.pafs[c]) for c in range(38)]
    assert np.median(paf) > 0.7 and min(paf) > -0.2


def test_eval_keypoints_equal_the_runtime_ones(pose_model, ir_path, coco_mini):
    from lwpose import decode
    from lwpose.pose import people_from_arrays

    frame = coco.dataset_image(coco_mini / "images/000000196141.jpg")
    maps = predict.Predictor(OpenVINOBackend(ir_path), height=pose_model.height)(frame)
    ours = people_from_arrays(*decode.group(maps.heatmaps, maps.pafs, stride=8), maps.scale)
    theirs = pose_model(frame)
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        assert a.score == b.score


def test_bad_scales_and_height_are_errors(ir_path):
    """The library names its parameters; the CLI words them as flags."""
    network = OpenVINOBackend(ir_path)
    with pytest.raises(LwposeError, match="^height") as info:
        predict.Predictor(network, height=100)
    assert info.value.param == "height" and info.value.worded("--height").startswith("--height must be")
    with pytest.raises(LwposeError, match="^scales"):
        predict.Predictor(network, height=256, scales=(1.0, 1.01))
    with pytest.raises(LwposeError, match="^scales"):
        predict.Predictor(network, height=256, scales=(0.0,))


@pytest.mark.shared
@pytest.mark.numerics
def test_eval_cli_on_ochuman_mini(tmp_path, shared_dir, ir_path, capsys):
    data = shared_dir / "data/ochuman-mini"
    out, preds = tmp_path / "eval.json", tmp_path / "preds.json"
    code = main(["eval", "--model", str(ir_path), "--images", str(data / "images"),
                 "--annotations", str(data / "person_keypoints_mini.json"), "--json", str(out),
                 "--save-predictions", str(preds)])
    assert code == 0
    assert "AP " in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["metrics"]["AP"] >= 0.35  # the quality bar at height 368; measured 0.4851 (bf16, f32, f16)
    assert result["inference_precision"] in ("f32", "bf16", "f16")
    assert result["num_images"] == 3 and result["metrics"]["APm"] is None
    predictions = json.loads(preds.read_text())
    assert len(predictions) == result["num_predictions"] > 0
    assert {p["image_id"] for p in predictions} <= {1, 2, 3} and len(predictions[0]["keypoints"]) == 51


@pytest.mark.numerics
def test_checkpoint_gives_the_maps_of_its_ir(tmp_path, ir_path, coco_mini):
    """The torch path: the shared IR imported as a checkpoint predicts (nearly) the IR's maps
    (the IR quantizes activations, the checkpoint does not)."""
    pytest.importorskip("torch")
    from lwpose.convert.import_ir import import_ir

    checkpoint = import_ir(ir_path, tmp_path / "hpe.pth")
    frame = coco.dataset_image(coco_mini / "images/000000197388.jpg")
    ir_maps, torch_maps = (predict.Predictor(open_backend(m), height=256)(frame) for m in (ir_path, checkpoint))
    assert torch_maps.heatmaps.shape == ir_maps.heatmaps.shape and torch_maps.scale == ir_maps.scale
    for a, b in ((ir_maps.heatmaps, torch_maps.heatmaps), (ir_maps.pafs, torch_maps.pafs)):
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95


def test_bad_checkpoint_is_an_error(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(LwposeError, match="bad.pth"):
        open_backend(bad)


def _arm_person(wrist: bool) -> Person:
    """A person (image pixels, scale 1) with shoulder, elbow and, if ``wrist``, wrist on the right arm,
    plus neck and hips, so its extent is ~10 map cells."""
    kps = np.tile(np.float32([-1, -1, 0]), (NUM_KEYPOINTS, 1))
    kps[1] = (100, 100, 0.9)  # neck
    kps[2] = (84, 100, 0.9)  # right shoulder
    kps[3] = (80, 132, 0.9)  # right elbow
    kps[8] = (90, 180, 0.9)  # right hip
    kps[11] = (110, 180, 0.9)  # left hip
    if wrist:
        kps[4] = (76, 162, 0.9)
    return Person(kps, 0.5)


@pytest.mark.parametrize("case", ["blob", "weak", "taken", "far"])
def test_missing_keypoint_is_placed_on_a_free_heatmap_peak_near_the_guess(case: str) -> None:
    """A missing right wrist goes to the highest peak of its heatmap within LOCATE_RADIUS × the
    person's extent (10 cells) of the fill_missing guess (the elbow); it stays at the guess when
    the peak is at most LOCATE_THRESHOLD, is another person's wrist, or lies out of range."""
    person = _arm_person(wrist=False)
    heatmaps = np.zeros((19, 40, 40), np.float32)
    yy, xx = np.mgrid[:40, :40]
    blob = (9.2, 19.0) if case != "far" else (9.2, 30.0)  # map cells (x, y); the elbow is at (9.56, 16.06)
    heatmaps[4] = np.exp(-((xx - blob[0]) ** 2 + (yy - blob[1]) ** 2) / 2.0) * (0.02 if case == "weak" else 0.3)
    peak = reference.find_peaks(heatmaps[4], 0.0)[0, :2]
    people = [person]
    if case == "taken":
        other = _arm_person(wrist=True)
        other.keypoints[4, :2] = 8 * (peak + 0.5) - 0.5  # the decoder gave that peak to this person
        people.append(other)
    xy = coco.locate_missing(people, heatmaps, 1.0, 8)[0]
    if case == "blob":
        assert np.abs(xy[4] - (8 * (peak + 0.5) - 0.5)).max() < 1e-4
        assert np.abs(xy[4] - (8 * (np.array(blob) + 0.5) - 0.5)).max() < 1.0
    else:
        assert xy[4].tolist() == coco.fill_missing(person.keypoints)[4].tolist()
    found = person.keypoints[:, 2] > 0
    assert np.array_equal(xy[found], person.keypoints[found, :2])
