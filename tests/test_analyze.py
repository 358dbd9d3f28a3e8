"""Error analysis (lwpose.eval.analyze) on coco-mini's ground truth turned into predictions."""
from __future__ import annotations

import numpy as np

from lwpose.eval import analyze, coco


def ground_truth_results(dataset: coco.Dataset) -> list[dict]:
    """Every labelled person as a perfect prediction (score 1)."""
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "keypoints": list(a["keypoints"]),
             "score": 1.0} for a in dataset.coco.dataset["annotations"] if a["num_keypoints"] > 0]


def test_perfect_predictions_lose_nothing(coco_mini) -> None:
    dataset = coco.load_dataset(coco_mini / "images", coco_mini / "person_keypoints_mini.json")
    result = analyze.analyze(dataset, ground_truth_results(dataset))
    assert result["AP"] == 1.0
    assert all(v == 0 for v in result["lost"].values())
    assert set(k for k, v in result["counts"].items() if v) == {"good"}


def test_left_right_inversion_and_background_are_classified(coco_mini) -> None:
    dataset = coco.load_dataset(coco_mini / "images", coco_mini / "person_keypoints_mini.json")
    results = ground_truth_results(dataset)
    big = max(range(len(results)), key=lambda n: sum(v > 0 for v in results[n]["keypoints"][2::3]))
    kps = np.asarray(results[big]["keypoints"], np.float64).reshape(-1, 3)
    kps[:, :2] = kps[analyze.TWIN, :2]  # every left/right keypoint on its twin's place
    results[big]["keypoints"] = kps.ravel().tolist()
    image = dataset.images[0]
    results.append({"image_id": image["id"], "category_id": 1, "score": 2.0,  # far from everyone, ranked first
                    "keypoints": [-1000.0, -1000.0, 1.0] * 17})
    result = analyze.analyze(dataset, results)
    assert result["counts"]["inversion"] >= 6 and result["counts"]["swap"] == result["counts"]["miss"] == 0
    assert result["lost"]["inversion"] > 0 and result["lost"]["background FP"] > 0
    assert result["steps"][-1][1] == 1.0  # every error corrected: perfect AP again
    assert result["worst"][0]["lost"] > 0
    assert "inversion" in analyze.report(result)
