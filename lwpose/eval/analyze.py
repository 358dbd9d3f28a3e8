"""Keypoint error analysis after Ronchi & Perona (ICCV 2017, "Benchmarking and error diagnosis in
multi-instance pose estimation"): how much COCO AP each kind of error costs, and the worst images.

Each prediction is matched to a ground-truth person; each of its labelled keypoints is then
classified by its keypoint similarity ``ks = exp(-d² / (2 s² (2σ)²))`` (pycocotools' OKS terms:
``s²`` the person's area, ``σ`` the keypoint's COCO sigma):

- **good**: ks ≥ 0.85 with the own ground truth;
- **jitter**: 0.5 ≤ ks < 0.85 (right place, imprecise);
- **inversion**: ks < 0.5, but ks ≥ 0.5 with the left/right twin of the same person;
- **swap**: ks < 0.5, but ks ≥ 0.5 with the same keypoint (or its twin) of another person;
- **miss**: anything else (including keypoints the decoder did not find).

The AP lost to each category is the AP gained by correcting it, cumulatively in the paper's order
(miss, swap, inversion, jitter: erroneous keypoints moved onto their ground truth), then
**background false positives** (unmatched predictions removed), then **scoring** (every
prediction rescored with its OKS, the ideal ranking); what remains below 1 is **false negatives** (people
never detected). Simplifications (docs/accuracy.md): one greedy matching (by score, OKS ≥
:data:`MATCH_OKS`) decides the pairs for every step; crowd and keypoint-less annotations are
ignored for the categories (COCOeval still sees them for AP).
"""
from __future__ import annotations

import contextlib
import io

import numpy as np

from ..pose import KEYPOINTS_17
from . import coco

#: A prediction and a ground-truth person are paired when their OKS reaches this (the paper's
#: lowest matching threshold: below it a prediction overlaps no one).
MATCH_OKS = 0.1
#: ks at or above this: a good keypoint; below: jitter (down to ERROR_KS).
GOOD_KS = 0.85
#: ks below this with the own ground truth: an inversion, swap or miss.
ERROR_KS = 0.5
CATEGORIES = ("good", "jitter", "inversion", "swap", "miss")
#: Correction steps, in order (each keeps the previous ones).
STEPS = ("miss", "swap", "inversion", "jitter", "background FP", "scoring")
#: Number of worst images listed.
WORST = 10


def _twins() -> np.ndarray:
    """Index of each COCO-17 keypoint's left/right twin (itself for the nose)."""
    names = list(KEYPOINTS_17)
    twin = []
    for name in names:
        other = name.replace("left", "#").replace("right", "left").replace("#", "right")
        twin.append(names.index(other))
    return np.array(twin)


TWIN = _twins()


def _sigmas() -> np.ndarray:
    from pycocotools.cocoeval import Params

    return np.asarray(Params(iouType="keypoints").kpt_oks_sigmas, np.float64)


def _ks(pred_xy: np.ndarray, gt_xy: np.ndarray, area: float, sigmas: np.ndarray) -> np.ndarray:
    """Per-keypoint similarity of (17, 2) predictions to (17, 2) ground truth, as in COCOeval."""
    d2 = ((pred_xy - gt_xy) ** 2).sum(axis=-1)
    return np.exp(-d2 / ((2 * sigmas) ** 2) / (area + np.spacing(1)) / 2)


def _oks(ks: np.ndarray, visible: np.ndarray) -> float:
    return float(ks[visible].mean()) if visible.any() else 0.0


def classify(dataset: coco.Dataset, results: list[dict]) -> dict:
    """Match predictions to people per image and classify every labelled keypoint.

    Returns ``matches`` (prediction index → (annotation, category per keypoint as a list)),
    ``unmatched`` (prediction indices), ``counts`` (category → keypoints) and ``per_image``.
    """
    sigmas = _sigmas()
    by_image: dict[int, list[int]] = {}
    for n, r in enumerate(results):
        by_image.setdefault(r["image_id"], []).append(n)
    matches: dict[int, tuple[dict, list[str]]] = {}
    unmatched: list[int] = []
    counts = dict.fromkeys(CATEGORIES, 0)
    per_image: dict[int, dict] = {}
    for image in dataset.images:
        gts = [a for a in dataset.coco.imgToAnns.get(image["id"], [])
               if a["category_id"] == dataset.category_id and not a.get("iscrowd") and a["num_keypoints"] > 0]
        gt_kps = [np.asarray(a["keypoints"], np.float64).reshape(-1, 3) for a in gts]
        stats = {"people": len(gts), "predictions": 0, "matched": 0, "background FP": 0, **dict.fromkeys(CATEGORIES, 0)}
        taken: set[int] = set()
        order = sorted(by_image.get(image["id"], []), key=lambda n: -results[n]["score"])
        for n in order:
            stats["predictions"] += 1
            xy = np.asarray(results[n]["keypoints"], np.float64).reshape(-1, 3)[:, :2]
            best, best_oks = -1, MATCH_OKS
            for g, (a, kps) in enumerate(zip(gts, gt_kps)):
                if g in taken:
                    continue
                oks = _oks(_ks(xy, kps[:, :2], a["area"], sigmas), kps[:, 2] > 0)
                if oks >= best_oks:
                    best, best_oks = g, oks
            if best < 0:
                unmatched.append(n)
                stats["background FP"] += 1
                continue
            taken.add(best)
            stats["matched"] += 1
            a, kps = gts[best], gt_kps[best]
            own = _ks(xy, kps[:, :2], a["area"], sigmas)
            twin = _ks(xy, kps[TWIN, :2], a["area"], sigmas)
            others = [(_ks(xy, o[:, :2], a["area"], sigmas) * (o[:, 2] > 0),
                       _ks(xy, o[TWIN, :2], a["area"], sigmas) * (o[TWIN, 2] > 0))
                      for g, o in enumerate(gt_kps) if g != best]
            categories = []
            for k in range(len(own)):
                if kps[k, 2] <= 0:
                    categories.append("")
                    continue
                if own[k] >= GOOD_KS:
                    cat = "good"
                elif own[k] >= ERROR_KS:
                    cat = "jitter"
                elif kps[TWIN[k], 2] > 0 and twin[k] >= ERROR_KS:
                    cat = "inversion"
                elif any(max(s[k], t[k]) >= ERROR_KS for s, t in others):
                    cat = "swap"
                else:
                    cat = "miss"
                categories.append(cat)
                counts[cat] += 1
                stats[cat] += 1
            matches[n] = (a, categories)
        per_image[image["id"]] = stats
    return {"matches": matches, "unmatched": unmatched, "counts": counts, "per_image": per_image}


def analyze(dataset: coco.Dataset, results: list[dict]) -> dict:
    """AP after each cumulative correction (:data:`STEPS`), keypoint category counts and the
    worst images (by people-weighted AP lost). ``results`` is a COCO results list."""
    sigmas = _sigmas()
    found = classify(dataset, results)
    fixed = [dict(r, keypoints=list(r["keypoints"])) for r in results]
    steps = [("original", coco.score(dataset, fixed)["AP"] or 0.0)]
    for step in STEPS:
        if step in CATEGORIES:
            for n, (a, categories) in found["matches"].items():
                kps = np.asarray(fixed[n]["keypoints"], np.float64).reshape(-1, 3)
                for k, cat in enumerate(categories):
                    if cat == step:
                        kps[k, :2] = a["keypoints"][3 * k:3 * k + 2]
                fixed[n]["keypoints"] = kps.ravel().tolist()
        elif step == "scoring":
            for n, r in enumerate(fixed):
                if n in found["matches"]:
                    a = found["matches"][n][0]
                    gt = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
                    xy = np.asarray(r["keypoints"], np.float64).reshape(-1, 3)[:, :2]
                    r["score"] = _oks(_ks(xy, gt[:, :2], a["area"], sigmas), gt[:, 2] > 0)
                else:
                    r["score"] = 0.0
        else:  # background false positives
            drop = set(found["unmatched"])
            fixed = [r for n, r in enumerate(fixed) if n not in drop]
        steps.append((step, coco.score(dataset, fixed)["AP"] or 0.0))
    lost = {step: round(steps[i + 1][1] - steps[i][1], 4) for i, step in enumerate(STEPS)}
    lost["false negatives"] = round(1.0 - steps[-1][1], 4)
    worst = []
    for image in dataset.images:
        stats = found["per_image"][image["id"]]
        if not stats["people"]:
            continue
        ap = coco.score(_single(dataset, image), [r for r in results if r["image_id"] == image["id"]])["AP"] or 0.0
        worst.append({"file_name": image["file_name"], "AP": ap, "lost": round((1 - ap) * stats["people"], 3), **stats})
    worst.sort(key=lambda s: (-s["lost"], s["file_name"]))
    return {"AP": steps[0][1], "steps": steps, "lost": lost, "counts": found["counts"], "worst": worst[:WORST]}


def _single(dataset: coco.Dataset, image: dict) -> coco.Dataset:
    """The data set restricted to one image."""
    from pycocotools.coco import COCO

    sub = COCO()
    sub.dataset = {"images": [image], "categories": dataset.coco.dataset["categories"],
                   "annotations": dataset.coco.imgToAnns.get(image["id"], [])}
    with contextlib.redirect_stdout(io.StringIO()):
        sub.createIndex()
    return coco.Dataset(dataset.images_dir, dataset.annotations, sub, dataset.category_id, [image])


def report(analysis: dict) -> str:
    """The analysis as readable text (the lines ``lwpose eval --analyze`` prints)."""
    lines = ["error analysis (Ronchi & Perona): AP lost to each error kind, corrected cumulatively"]
    for (step, ap), (_, before) in zip(analysis["steps"][1:], analysis["steps"]):
        lines.append(f"  {step:<16} {ap - before:+.4f}  (AP {before:.4f} → {ap:.4f})")
    lines.append(f"  {'false negatives':<16} {analysis['lost']['false negatives']:+.4f}  (left below 1)")
    counts = analysis["counts"]
    total = sum(counts.values()) or 1
    lines.append("  keypoints of matched people: " + ", ".join(
        f"{c} {counts[c]} ({100 * counts[c] / total:.0f} %)" for c in CATEGORIES))
    lines.append("worst images (AP lost × people):")
    lines.append(f"  {'image':<40} {'people':>6} {'preds':>5} {'AP':>6} {'lost':>6}  jit inv swp mis bkgFP")
    for w in analysis["worst"]:
        lines.append(f"  {w['file_name'][:40]:<40} {w['people']:>6} {w['predictions']:>5} {w['AP']:>6.3f} {w['lost']:>6.2f}"
                     f"  {w['jitter']:>3} {w['inversion']:>3} {w['swap']:>3} {w['miss']:>3} {w['background FP']:>5}")
    return "\n".join(lines)
