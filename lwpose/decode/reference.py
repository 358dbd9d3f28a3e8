"""Readable numpy reference of the grouping; ``cython_ext/grouping.pyx`` mirrors it exactly.

Steps (see docs/decoding.md):

1. peaks: 3×3 non-maximum suppression on each stride-8 keypoint heatmap, at most
   ``MAX_PEAKS`` per keypoint type (the highest);
2. refinement: a parabola through the logarithms of each peak and its two neighbours (a
   gaussian through three values), per axis, gives the sub-cell position (local; the maps are
   never upsampled);
3. limbs: every pair of candidates of a limb is scored by sampling its PAF pair bilinearly at
   ``PAF_SAMPLES`` points along the segment and projecting onto the segment direction; a segment
   shorter than ``SHORT_LIMB`` has no measurable direction and is accepted, scored by the
   length of the mean PAF vector;
4. assembly: limbs in ``LIMBS`` order, connections by decreasing score, each candidate used at
   most once per limb; a connection starts, extends or merges person skeletons;
5. merging: a piece with a right hip and one with a left hip (disjoint keypoint types) merge when
   the hips are close for the legs' scale (no limb joins the hips); then limbs between two
   skeletons with disjoint keypoint types are reconsidered with a lower PAF bar, and those
   skeletons merge;
6. recovery: after filtering, each person's missing keypoints adjacent (by a limb) to a found
   one are looked for among weak heatmap peaks (between ``RECOVER_THRESHOLD`` and
   ``PEAK_THRESHOLD``), accepted on the limb's PAF test within the person's extent.

All arithmetic is float64 in a fixed order so that the Cython backend reproduces it bit for bit;
ties are broken by explicit secondary keys.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lwpose.pose import KEYPOINTS_18, LIMB_PAF_CHANNELS, LIMBS, NUM_KEYPOINTS

#: A heatmap cell is a peak candidate only above this value.
PEAK_THRESHOLD = 0.1
#: At most this many peaks (the highest) are kept per keypoint type; bounds the work per frame.
MAX_PEAKS = 100
#: Sub-cell refinement fits a parabola to the logarithms of a peak and its neighbours (the
#: centre of the gaussian through the three values); values below this floor (the maps hold
#: small negative values) count as the floor, so the logarithm is defined.
LOG_FLOOR = 1e-3
#: Points sampled along each candidate limb, both ends included.
PAF_SAMPLES = 10
#: A sample supports a limb when its PAF projection exceeds this value ...
PAF_SAMPLE_THRESHOLD = 0.05
#: ... and a limb is accepted when at least this many samples support it (more than 80 %).
PAF_MIN_GOOD_SAMPLES = 9
#: A candidate limb shorter than this (map cells) has no measurable direction: its endpoints lie
#: in the same or adjacent cells and their offset is sub-cell refinement noise. It is accepted
#: without the projection test, scored by the length of the mean PAF vector (docs/decoding.md).
SHORT_LIMB = 0.5
#: Second pass (after assembly): two skeletons with disjoint keypoint types are merged through a
#: limb joining them when at least this many of its PAF_SAMPLES projections exceed
#: PAF_SAMPLE_THRESHOLD (and the mean projection is positive): a lower bar than
#: PAF_MIN_GOOD_SAMPLES, since both ends are already confirmed keypoints of a person.
MERGE_MIN_GOOD_SAMPLES = 7
#: Hip pass (before the merge pass): a skeleton with a right hip but no left hip and one with a
#: left hip but no right hip (disjoint keypoint types) merge when the two hips are at most this
#: times the longer of their thighs (hip to knee of the same side) apart: the hip width is at most
#: 0.74 thigh for 95 % of the dev sets' labelled people (median 0.46, docs/decoding.md).
HIP_MERGE_RATIO = 0.75
#: Recovery (after filtering): a missing keypoint adjacent to a found one may be a weak peak,
#: a local maximum above this value (and not above PEAK_THRESHOLD) ...
RECOVER_THRESHOLD = 0.03
#: ... joined to the found keypoint by an accepted limb (the first pass's PAF test) not longer
#: than this times the person's extent (larger side of its keypoints' box, at least one cell).
RECOVER_MAX_LENGTH = 1.0
#: People with fewer found keypoints are dropped.
MIN_KEYPOINTS = 3
#: People whose (sum of keypoint and limb scores) / found keypoints is below this are dropped.
MIN_MEAN_SCORE = 0.2

HEATMAP_CHANNELS = (NUM_KEYPOINTS, NUM_KEYPOINTS + 1)
RIGHT_HIP, RIGHT_KNEE, LEFT_HIP, LEFT_KNEE = (KEYPOINTS_18.index(name)
                                              for name in ("right_hip", "right_knee", "left_hip", "left_knee"))
PAF_CHANNELS = 2 * len(LIMBS)


def validate_maps(heatmaps: np.ndarray, pafs: np.ndarray, stride: int, *,
                  finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Check the network maps and return C-contiguous float32 (18, H, W) heatmaps and (38, H, W) PAFs.

    Raises ValueError naming the problem: wrong type, ndim, channel count, mismatched or empty
    H/W, non-finite values (unless ``finite`` is False: the caller checks them), bad stride.
    """
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    hm = _checked("heatmaps", heatmaps, HEATMAP_CHANNELS)
    paf = _checked("pafs", pafs, (PAF_CHANNELS,))
    if hm.shape[1:] != paf.shape[1:]:
        raise ValueError(f"heatmaps and pafs differ in size: {hm.shape[1:]} vs {paf.shape[1:]}")
    if finite:
        check_finite(hm, paf)
    return hm[:NUM_KEYPOINTS], paf


def _checked(name: str, maps: np.ndarray, channels: tuple[int, ...]) -> np.ndarray:
    """One map array as C-contiguous float32 (C, H, W), or ValueError naming what is wrong."""
    maps = np.asarray(maps)
    if maps.dtype.kind not in "fiu":  # floating or integer
        raise ValueError(f"{name} must be a real numeric array, got dtype {maps.dtype}")
    if maps.ndim != 3:
        raise ValueError(f"{name} must have shape (C, H, W) without batch dimension, got shape {maps.shape}")
    if maps.shape[0] not in channels:
        want = " or ".join(str(c) for c in channels)
        raise ValueError(f"{name} must have {want} channels, got shape {maps.shape}")
    if maps.shape[1] < 1 or maps.shape[2] < 1:
        raise ValueError(f"{name} have an empty spatial size, got shape {maps.shape}")
    return np.ascontiguousarray(maps, dtype=np.float32)


def check_finite(heatmaps: np.ndarray, pafs: np.ndarray) -> None:
    """ValueError counting the NaN or infinite values of the first map array that has any."""
    for name, maps in (("heatmaps", heatmaps), ("pafs", pafs)):
        # the sum is finite when every value is; only a non-finite sum (possibly an overflow of
        # finite values) needs the element-wise check
        with np.errstate(invalid="ignore", over="ignore"):
            finite = np.isfinite(maps.sum())
        if not finite:
            bad = int(np.count_nonzero(~np.isfinite(maps)))
            if bad:
                raise ValueError(f"{name} contain {bad} NaN or infinite values")


def find_peaks(heatmap: np.ndarray, threshold: float = PEAK_THRESHOLD, ceiling: float = np.inf) -> np.ndarray:
    """Peaks of one (H, W) heatmap as an (n, 3) float64 array of x, y (map cells, sub-cell
    refined) and score (the cell value), highest first (ties: raster order), n <= MAX_PEAKS.

    A cell is a peak when it exceeds ``threshold`` (and not ``ceiling``), is >= its later and >
    its earlier (raster-order) 8-neighbours, so exactly one cell of a flat top is chosen.
    """
    h, w = heatmap.shape
    padded = np.pad(heatmap, 1, constant_values=-np.inf)
    center = padded[1:-1, 1:-1]
    # compared in float32, as in Cython
    is_peak = (center > np.float32(threshold)) & ~(center > np.float32(ceiling))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == dx == 0:
                continue
            neighbour = padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
            earlier = dy < 0 or (dy == 0 and dx < 0)
            is_peak &= (center > neighbour) if earlier else (center >= neighbour)
    rows, cols = np.nonzero(is_peak)  # raster order
    values = heatmap[rows, cols]
    order = np.lexsort((rows * w + cols, -values))[:MAX_PEAKS]
    peaks = np.empty((len(order), 3), np.float64)
    for n, k in enumerate(order):
        peaks[n] = (*refine_peak(heatmap, int(rows[k]), int(cols[k])), float(values[k]))
    return peaks


def refine_peak(heatmap: np.ndarray, i: int, j: int) -> tuple[float, float]:
    """Sub-cell (x, y) of the peak at row i, column j: per axis, the vertex of the parabola through
    the logarithms of the peak and its two neighbours (values below LOG_FLOOR count as LOG_FLOOR),
    i.e. the centre of the gaussian through the three values; |offset| <= 0.5 since the peak is
    a local maximum; no offset on a map border or a flat top."""
    h, w = heatmap.shape
    c = _log(heatmap[i, j])
    x, y = float(j), float(i)
    if 0 < j < w - 1:
        left, right = _log(heatmap[i, j - 1]), _log(heatmap[i, j + 1])
        curvature = left - 2.0 * c + right
        if curvature < 0.0:
            x += 0.5 * (left - right) / curvature
    if 0 < i < h - 1:
        up, down = _log(heatmap[i - 1, j]), _log(heatmap[i + 1, j])
        curvature = up - 2.0 * c + down
        if curvature < 0.0:
            y += 0.5 * (up - down) / curvature
    return x, y


def _log(value: float) -> float:
    """Natural logarithm of a heatmap value floored at LOG_FLOOR (math.log: the C library's, as
    in Cython; numpy's vectorised log may round differently)."""
    value = float(value)
    return math.log(value if value > LOG_FLOOR else LOG_FLOOR)


def sample_bilinear(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples (float64) of an (H, W) map at map coordinates x, y (clamped to the map)."""
    h, w = field.shape
    x = np.clip(x, 0.0, w - 1.0)
    y = np.clip(y, 0.0, h - 1.0)
    x0 = np.minimum(x.astype(np.intp), max(w - 2, 0))
    y0 = np.minimum(y.astype(np.intp), max(h - 2, 0))
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = x - x0
    fy = y - y0
    top = field[y0, x0] * (1.0 - fx) + field[y0, x1] * fx  # float32 values promote exactly
    bottom = field[y1, x0] * (1.0 - fx) + field[y1, x1] * fx
    return top * (1.0 - fy) + bottom * fy


def score_pairs(peaks_a: np.ndarray, peaks_b: np.ndarray, paf_x: np.ndarray, paf_y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Score every pair (a, b) of two peak sets (a-major order) on a limb's PAF.

    The PAF is sampled at PAF_SAMPLES points from a to b. Returns index a, index b, whether the
    segment is shorter than SHORT_LIMB, the mean projection onto the segment's unit direction
    ("directed" score), the number of projections above PAF_SAMPLE_THRESHOLD, and the length of
    the mean PAF vector (the score of a short segment).
    """
    ia, ib = np.meshgrid(np.arange(len(peaks_a)), np.arange(len(peaks_b)), indexing="ij")
    ia, ib = ia.ravel(), ib.ravel()
    ax, ay = peaks_a[ia, 0], peaks_a[ia, 1]
    vx, vy = peaks_b[ib, 0] - ax, peaks_b[ib, 1] - ay
    norm = np.sqrt(vx * vx + vy * vy)
    short = norm < SHORT_LIMB
    length = np.where(short, 1.0, norm)  # short segments do not use their direction
    ux, uy = vx / length, vy / length
    total = np.zeros(len(ia))
    good = np.zeros(len(ia), np.intp)
    sum_x = np.zeros(len(ia))
    sum_y = np.zeros(len(ia))
    for s in range(PAF_SAMPLES):  # sequential sums, as in the Cython loop
        t = s / (PAF_SAMPLES - 1)
        x, y = ax + t * vx, ay + t * vy
        px, py = sample_bilinear(paf_x, x, y), sample_bilinear(paf_y, x, y)
        projection = px * ux + py * uy
        total = total + projection
        good += projection > PAF_SAMPLE_THRESHOLD
        sum_x = sum_x + px
        sum_y = sum_y + py
    return ia, ib, short, total / PAF_SAMPLES, good, np.sqrt(sum_x * sum_x + sum_y * sum_y) / PAF_SAMPLES


def limb_candidates(peaks_a: np.ndarray, peaks_b: np.ndarray, paf_x: np.ndarray, paf_y: np.ndarray) -> list[tuple[float, int, int]]:
    """(score, index a, index b) of every accepted candidate limb between two peak sets.

    A segment at least SHORT_LIMB long is scored by the mean PAF projection onto its unit
    direction and accepted when at least PAF_MIN_GOOD_SAMPLES projections exceed
    PAF_SAMPLE_THRESHOLD and the score is positive. A shorter segment (coincident endpoints
    included) is always accepted; its score is the length of the mean PAF vector, i.e. the mean
    projection onto the PAF's own mean direction.
    """
    ia, ib, short, directed, good, mean_length = score_pairs(peaks_a, peaks_b, paf_x, paf_y)
    score = np.where(short, mean_length, directed)
    accepted = short | ((good >= PAF_MIN_GOOD_SAMPLES) & (directed > 0.0))
    return [(float(s), int(a), int(b)) for s, a, b in zip(score[accepted], ia[accepted], ib[accepted])]


def select_connections(candidates: list[tuple[float, int, int]]) -> list[tuple[float, int, int]]:
    """Greedy one-to-one matching: by decreasing score (ties: index a, then index b), skipping
    candidates whose a or b end is already used by this limb."""
    used_a: set[int] = set()
    used_b: set[int] = set()
    chosen = []
    for score, a, b in sorted(candidates, key=lambda c: (-c[0], c[1], c[2])):
        if a not in used_a and b not in used_b:
            used_a.add(a)
            used_b.add(b)
            chosen.append((score, a, b))
    return chosen


@dataclass
class Skeleton:
    """A person being assembled: peak index per keypoint type (-1 missing), found count, and the
    running sum of its keypoint and limb scores."""

    ids: list[int] = field(default_factory=lambda: [-1] * NUM_KEYPOINTS)
    count: int = 0
    total: float = 0.0


def assemble(peaks: list[np.ndarray], pafs: np.ndarray) -> list[Skeleton]:
    """Assemble skeletons limb by limb (LIMBS order); returns them in creation order.

    For a chosen connection (a, b): neither end owned → new skeleton; one end owned → the other
    joins that skeleton if its slot is free; both owned by different skeletons with disjoint
    keypoints → they merge into the older one. Otherwise the connection is ignored. Then
    :func:`merge_hips` joins leg pieces at the pelvis and :func:`merge_pieces` joins remaining
    pieces through limbs with weaker PAF support.
    """
    skeletons: list[Skeleton | None] = []
    owner = [[-1] * len(p) for p in peaks]
    for (ta, tb), (cx, cy) in zip(LIMBS, LIMB_PAF_CHANNELS):
        if len(peaks[ta]) == 0 or len(peaks[tb]) == 0:
            continue
        candidates = limb_candidates(peaks[ta], peaks[tb], pafs[cx], pafs[cy])
        for score, a, b in select_connections(candidates):
            pa, pb = owner[ta][a], owner[tb][b]
            if pa < 0 and pb < 0:
                sk = Skeleton()
                sk.ids[ta], sk.ids[tb] = a, b
                sk.count = 2
                sk.total = peaks[ta][a, 2] + peaks[tb][b, 2] + score
                owner[ta][a] = owner[tb][b] = len(skeletons)
                skeletons.append(sk)
            elif pb < 0:
                sk = skeletons[pa]
                if sk.ids[tb] < 0:
                    sk.ids[tb] = b
                    sk.count += 1
                    sk.total += peaks[tb][b, 2] + score
                    owner[tb][b] = pa
            elif pa < 0:
                sk = skeletons[pb]
                if sk.ids[ta] < 0:
                    sk.ids[ta] = a
                    sk.count += 1
                    sk.total += peaks[ta][a, 2] + score
                    owner[ta][a] = pb
            elif pa != pb:
                merge(skeletons, owner, pa, pb, score)
    merge_hips(peaks, skeletons, owner)
    merge_pieces(peaks, pafs, skeletons, owner)
    return [sk for sk in skeletons if sk is not None]


def merge(skeletons: list[Skeleton | None], owner: list[list[int]], pa: int, pb: int, score: float) -> None:
    """Merge skeletons pa and pb (into the older one) through a limb of ``score`` when their
    keypoint types are disjoint; otherwise leave them."""
    keep, drop = skeletons[min(pa, pb)], skeletons[max(pa, pb)]
    if all(i < 0 or j < 0 for i, j in zip(keep.ids, drop.ids)):
        for t, i in enumerate(drop.ids):
            if i >= 0:
                keep.ids[t] = i
                owner[t][i] = min(pa, pb)
        keep.count += drop.count
        keep.total = keep.total + drop.total + score
        skeletons[max(pa, pb)] = None


def merge_hips(peaks: list[np.ndarray], skeletons: list[Skeleton | None], owner: list[list[int]]) -> None:
    """Hip pass: merge a skeleton that has a right hip but no left hip with one that has a left
    hip but no right hip when the hips are at most HIP_MERGE_RATIO times the longer thigh (of
    those present: right hip-knee of the first, left hip-knee of the second) apart.

    No limb joins the two hips, so legs whose neck-hip limbs failed stay apart otherwise. Pairs by
    increasing hip distance (ties: index of the right-hip skeleton, then the left-hip one); a
    skeleton merged away is skipped, and :func:`merge` keeps the keypoint types disjoint.
    """
    right = [n for n, sk in enumerate(skeletons) if sk is not None and sk.ids[RIGHT_HIP] >= 0 and sk.ids[LEFT_HIP] < 0]
    left = [n for n, sk in enumerate(skeletons) if sk is not None and sk.ids[LEFT_HIP] >= 0 and sk.ids[RIGHT_HIP] < 0]
    candidates = []
    for p in right:
        for q in left:
            a, b = skeletons[p], skeletons[q]
            if not all(i < 0 or j < 0 for i, j in zip(a.ids, b.ids)):
                continue
            hip_r, hip_l = peaks[RIGHT_HIP][a.ids[RIGHT_HIP]], peaks[LEFT_HIP][b.ids[LEFT_HIP]]
            thigh = -1.0
            if a.ids[RIGHT_KNEE] >= 0:
                thigh = _distance(hip_r, peaks[RIGHT_KNEE][a.ids[RIGHT_KNEE]])
            if b.ids[LEFT_KNEE] >= 0:
                thigh = max(thigh, _distance(hip_l, peaks[LEFT_KNEE][b.ids[LEFT_KNEE]]))
            width = _distance(hip_r, hip_l)
            if thigh >= 0.0 and width <= HIP_MERGE_RATIO * thigh:
                candidates.append((width, p, q))
    for _, p, q in sorted(candidates):
        if skeletons[p] is not None and skeletons[q] is not None:
            merge(skeletons, owner, p, q, 0.0)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """Distance of two peaks' positions (float64, as the Cython sqrt)."""
    dx, dy = float(b[0]) - float(a[0]), float(b[1]) - float(a[1])
    return math.sqrt(dx * dx + dy * dy)


def merge_pieces(peaks: list[np.ndarray], pafs: np.ndarray, skeletons: list[Skeleton | None], owner: list[list[int]]) -> None:
    """Second pass: reconsider the limbs between keypoints of two different skeletons with the
    lower bar MERGE_MIN_GOOD_SAMPLES, and merge skeletons with disjoint keypoint types.

    Limbs in LIMBS order; per limb, the long candidates whose ends belong to two skeletons (at
    the start of the limb) by decreasing score (ties: index a, then b); owners are looked up
    again before each merge. Short segments are left out: the first pass accepted them all.
    """
    for (ta, tb), (cx, cy) in zip(LIMBS, LIMB_PAF_CHANNELS):
        if len(peaks[ta]) == 0 or len(peaks[tb]) == 0:
            continue
        own_a, own_b = np.array(owner[ta]), np.array(owner[tb])
        ia, ib, short, directed, good, _ = score_pairs(peaks[ta], peaks[tb], pafs[cx], pafs[cy])
        between = (own_a[ia] >= 0) & (own_b[ib] >= 0) & (own_a[ia] != own_b[ib])
        accepted = between & ~short & (good >= MERGE_MIN_GOOD_SAMPLES) & (directed > 0.0)
        candidates = zip(directed[accepted].tolist(), ia[accepted].tolist(), ib[accepted].tolist())
        for score, a, b in sorted(candidates, key=lambda c: (-c[0], c[1], c[2])):
            pa, pb = owner[ta][a], owner[tb][b]
            if pa != pb:
                merge(skeletons, owner, pa, pb, score)


def recover(ids: list[int], peaks: list[np.ndarray], weak: list[np.ndarray], used: list[np.ndarray], pafs: np.ndarray) -> list[tuple[float, float, float]]:
    """Weak peaks (x, y, score) found for one person's missing keypoints; updates ``used``.

    Limbs in LIMBS order (so a recovered elbow can lead to its wrist); for a limb with exactly
    one end present, every unused weak peak of the other type is scored against it on the limb's
    PAF (direction kept: a to b) with the first pass's test (:func:`limb_candidates`), within
    RECOVER_MAX_LENGTH times the person's extent. The highest score wins (ties: lowest index).
    """
    points: dict[int, tuple[float, float, float]] = {t: tuple(peaks[t][i]) for t, i in enumerate(ids) if i >= 0}
    xy = np.array([p[:2] for p in points.values()])
    extent = max(float(xy[:, 0].max() - xy[:, 0].min()), float(xy[:, 1].max() - xy[:, 1].min()), 1.0)
    recovered = []
    for (ta, tb), (cx, cy) in zip(LIMBS, LIMB_PAF_CHANNELS):
        if (ta in points) == (tb in points):
            continue
        have, need = (ta, tb) if ta in points else (tb, ta)
        if len(weak[need]) == 0:
            continue
        anchor = np.array([points[have]])
        if have == ta:
            _, index, short, directed, good, mean_length = score_pairs(anchor, weak[need], pafs[cx], pafs[cy])
        else:
            index, _, short, directed, good, mean_length = score_pairs(weak[need], anchor, pafs[cx], pafs[cy])
        vx, vy = weak[need][index, 0] - anchor[0, 0], weak[need][index, 1] - anchor[0, 1]
        near = np.sqrt(vx * vx + vy * vy) <= RECOVER_MAX_LENGTH * extent
        accepted = ~used[need][index] & near & (short | ((good >= PAF_MIN_GOOD_SAMPLES) & (directed > 0.0)))
        if not accepted.any():
            continue
        score = np.where(accepted, np.where(short, mean_length, directed), -np.inf)
        best = int(index[int(np.argmax(score))])  # first maximum: lowest index
        used[need][best] = True
        points[need] = tuple(weak[need][best])
        recovered.append((need, *points[need]))
    return recovered


def decode(heatmaps: np.ndarray, pafs: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Group validated maps (see validate_maps) into (keypoints (N, 18, 3), scores (N,)) float32.

    Keypoints are in network-input pixels, x = stride * (map x + 0.5) - 0.5; missing ones are
    (-1, -1, 0). A person's score is the mean keypoint score over all 18 keypoints (missing = 0).
    People are sorted by decreasing score (ties: creation order).
    """
    peaks = [find_peaks(hm) for hm in heatmaps]
    weak = [find_peaks(hm, RECOVER_THRESHOLD, PEAK_THRESHOLD) for hm in heatmaps]
    used = [np.zeros(len(w), bool) for w in weak]
    people = []
    for sk in assemble(peaks, pafs):
        if sk.count < MIN_KEYPOINTS or sk.total / sk.count < MIN_MEAN_SCORE:
            continue
        points = [(t, *peaks[t][i]) for t, i in enumerate(sk.ids) if i >= 0]
        points += recover(sk.ids, peaks, weak, used, pafs)
        kps = np.tile(np.array([-1.0, -1.0, 0.0], np.float32), (NUM_KEYPOINTS, 1))
        score_sum = 0.0
        for t, x, y, s in sorted(points):
            kps[t] = (stride * (x + 0.5) - 0.5, stride * (y + 0.5) - 0.5, s)
            score_sum += s
        people.append((score_sum / NUM_KEYPOINTS, kps))
    order = sorted(range(len(people)), key=lambda n: -people[n][0])  # stable: ties keep creation order
    keypoints = np.array([people[n][1] for n in order], np.float32).reshape(-1, NUM_KEYPOINTS, 3)
    scores = np.array([people[n][0] for n in order], np.float32)
    return keypoints, scores
