"""Drawing, and ``lwpose infer`` on the coco-mini images with the shared IR."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lwpose.cli import main
from lwpose.draw import draw_people, tile
from lwpose.pose import NUM_KEYPOINTS, Person


def test_draw_people_and_tile():
    image = np.zeros((120, 160, 3), np.uint8)
    assert draw_people(image, []) is image and not image.any()
    kps = np.full((NUM_KEYPOINTS, 3), (-1, -1, 0), np.float32)
    draw_people(image, [Person(kps, 0.0, track_id=3)])  # nothing found: nothing drawn
    assert not image.any()
    kps[[1, 2, 3]] = [(80, 30, 0.9), (60, 32, 0.8), (55, 60, 0.7)]  # neck, right shoulder and elbow
    out = draw_people(image, [Person(kps, 0.5, track_id=7)])
    assert out is image and (image.sum(axis=2) > 0).sum() > 50
    faint = np.zeros_like(image)
    draw_people(faint, [Person(kps, 0.5)], min_score=0.95)  # every keypoint below min_score
    assert not faint.any()
    grid = tile([image, np.zeros((60, 160), np.uint8), image], cols=2)
    assert grid.shape == (240, 320, 3) and np.array_equal(grid[:120, :160], image)


@pytest.fixture(scope="module")
def infer_dir(coco_mini: Path, ir_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """``lwpose infer`` run once on the coco-mini image directory with --json FILE."""
    tmp = tmp_path_factory.mktemp("infer")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LWPOSE_HOME", str(tmp / "home"))
        rc = main(["infer", str(coco_mini / "images"), "--model", str(ir_path),
                   "--json", str(tmp / "people.json"), "--out", str(tmp / "out")])
    return rc, tmp


def test_infer_json_file_and_annotated_copies(infer_dir, coco_mini: Path):
    rc, tmp = infer_dir
    assert rc == 0
    images = sorted((coco_mini / "images").glob("*.jpg"))
    results = json.loads((tmp / "people.json").read_text())
    assert [r["image"] for r in results] == [str(p) for p in images]
    for result, path in zip(results, images):
        original = cv2.imread(str(path))
        assert (result["height"], result["width"]) == original.shape[:2]
        assert len(result["people"]) >= 1
        for person in result["people"]:
            assert set(person) == {"keypoints", "score", "bbox", "track_id"}
            assert np.asarray(person["keypoints"]).shape == (NUM_KEYPOINTS, 3) and len(person["bbox"]) == 4
            assert person["score"] > 0 and person["track_id"] == -1
        annotated = cv2.imread(str(tmp / "out" / f"{path.stem}.jpg"))
        assert annotated.shape == original.shape
        assert np.abs(annotated.astype(int) - original).max() > 100  # skeletons drawn


def test_infer_json_lines_on_stdout(coco_mini: Path, ir_path: Path, tmp_path: Path, monkeypatch, capfd):
    monkeypatch.setenv("LWPOSE_HOME", str(tmp_path / "home"))
    image = coco_mini / "images" / "000000000785.jpg"
    assert main(["infer", str(image), str(image), "--model", str(ir_path), "--json", "-",
                 "--out", str(tmp_path / "out")]) == 0
    out, err = capfd.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 2 and all(r["image"] == str(image) and r["people"] for r in lines)
    assert "1 person" in err
    # The same stem twice: the second copy does not overwrite the first.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["000000000785-2.jpg", "000000000785.jpg"]


def test_infer_bad_images_are_reported_and_the_rest_processed(coco_mini: Path, ir_path: Path, tmp_path: Path,
                                                              monkeypatch, capfd):
    monkeypatch.setenv("LWPOSE_HOME", str(tmp_path / "home"))
    missing = tmp_path / "missing.jpg"
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("not a jpeg")
    good = coco_mini / "images" / "000000040083.jpg"
    rc = main(["infer", str(missing), str(not_image), str(good), "--model", str(ir_path),
               "--json", str(tmp_path / "people.json"), "--out", str(tmp_path / "out")])
    out, err = capfd.readouterr()
    assert rc == 2
    assert f"lwpose infer: error: {missing}: no such file" in err
    assert f"lwpose infer: error: {not_image}: not a readable image" in err
    assert "2 of 3 inputs failed" in err and "Traceback" not in err
    assert [r["image"] for r in json.loads((tmp_path / "people.json").read_text())] == [str(good)]
    assert (tmp_path / "out" / "000000040083.jpg").is_file()


def test_infer_user_errors(coco_mini: Path, ir_path: Path, tmp_path: Path, monkeypatch, capfd):
    monkeypatch.setenv("LWPOSE_HOME", str(tmp_path / "home"))
    good = str(coco_mini / "images" / "000000040083.jpg")
    out = str(tmp_path / "out")
    assert main(["infer", str(tmp_path / "none.jpg"), "--model", str(ir_path), "--out", out]) == 2
    assert main(["infer", str(tmp_path), "--model", str(ir_path), "--out", out]) == 2
    assert main(["infer", good, "--model", "no-such-model", "--out", out]) == 2
    assert main(["infer", good, "--model", str(ir_path), "--height", "100", "--out", out]) == 2
    assert main(["infer", good, "--model", str(ir_path), "--json", str(tmp_path / "no/dir.json")]) == 2
    assert main(["infer", good, "--model", str(ir_path), "--json", str(tmp_path), "--out", out]) == 2
    err = capfd.readouterr().err
    assert "none.jpg: no such file" in err and "no image to process" in err
    assert f"{tmp_path}: no image files" in err
    assert "'no-such-model' is neither a file nor an installed model" in err
    assert "--height must be a multiple of 8 from 8 to 2048" in err
    assert f"--json {tmp_path / 'no/dir.json'}: directory" in err
    assert f"--json {tmp_path}: cannot write it" in err
    assert "Traceback" not in err
