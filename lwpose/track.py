"""Track IDs that persist across the frames of one stream.

Each frame's people are matched to the live tracks greedily by an OKS-like keypoint similarity:
the mean of exp(-d² / 2s²) over the keypoints both poses have, d being the distance from the
track's last keypoint moved by the track's velocity to the current time, and s a fraction
(``tolerance``) of the person's size (the longer side of the larger bounding box), at least
``min_scale`` pixels. Every keypoint has the same tolerance: between frames the network's noise
(a stride-8 grid) is the same for eyes and hips. Pairs sharing fewer than ``min_common`` keypoints
are compared by bounding-box IoU instead.

On real video the detections are noisier than the motion model: a person is missed for a few
frames, or found only in pieces (a pair of legs, a head and shoulders). Hence:

- a track that was not matched is kept for ``max_age`` frames, moving with its velocity, and its
  distance scale grows by ``growth`` for every frame missed (the prediction gets less certain);
- the matching goes in priority order: whole poses (at least ``min_keypoints`` keypoints) before
  pieces, then tracks seen in the previous frame before lost ones, then the most similar pair;
- a piece only continues a track seen in the previous frame, and never starts a track: unmatched
  pieces keep ``track_id`` -1, so that fragments do not create a stream of short-lived ids.

``ReferenceTracker`` is the numpy specification (the tracks live in a few arrays, so a frame costs
a fixed number of numpy operations); ``Tracker`` is the Cython extension ``lwpose._tracking``
(C loops, same ids; built by ``setup.py``) when it is built, else the reference.
"""
from __future__ import annotations

import numpy as np

from .pose import NUM_KEYPOINTS, Person

_FAR = 1e9  # where missing keypoints are put: +FAR in tracks, -FAR in detections
_ONES = np.ones(NUM_KEYPOINTS)


class ReferenceTracker:
    """Assigns ``track_id`` to the people of consecutive frames of one stream.

    The defaults were tuned on a 10 frames/s street video (people 20-100 px tall, input height
    256 and 368) and hold at 5 frames/s; ``max_age`` and ``growth`` count frames, so at 30
    frames/s a track survives a 0.5 s gap.

    Args:
        max_age: frames a track is kept without a match (a person hidden longer gets a new id).
        min_similarity: the least keypoint similarity (or IoU) for a person to continue a track.
        min_common: the fewest keypoints two poses must share to be compared by keypoints.
        tolerance: keypoint distance scale as a fraction of the person's size.
        min_scale: the least distance scale in pixels, for small or partial poses; about one
            network stride in image pixels (8 × frame height / input height) suits the noise of
            small people's keypoints.
        growth: relative increase of the distance scale for each frame a track has been missed.
        min_keypoints: the fewest found keypoints of a person that may start a track or resume a
            lost one; smaller poses only continue a track matched in the previous frame.
    """

    def __init__(self, max_age: int = 15, min_similarity: float = 0.25, min_common: int = 3,
                 tolerance: float = 0.15, min_scale: float = 16.0, growth: float = 0.2,
                 min_keypoints: int = 6) -> None:
        self.max_age = max_age
        self.min_similarity = min_similarity
        self.min_common = min_common
        self.tolerance = tolerance
        self.min_scale = min_scale
        self.growth = growth
        self.min_keypoints = min_keypoints
        self.reset()

    def reset(self) -> None:
        """Forget all tracks; ids start from 0 again."""
        self._next_id = 0
        self._frame = 0
        # One row a track:
        self._ids = np.zeros(0, np.int64)
        self._kps = np.zeros((0, NUM_KEYPOINTS, 3), np.float32)  # pose of the last match
        self._box = np.zeros((0, 4))  # x0, y0, x1, y1 of the last match
        self._time = np.zeros(0)  # time of the last match
        self._vel = np.zeros((0, 2))  # pixels per time unit
        self._has_vel = np.zeros(0, bool)  # a velocity was measured (matched at least once)
        self._missed = np.zeros(0, np.int64)  # consecutive frames without a match

    def __len__(self) -> int:
        """Number of live tracks."""
        return len(self._ids)

    def update(self, people: list[Person], timestamp: float | None = None) -> list[Person]:
        """Set ``track_id`` of each person of the next frame (in place) and return ``people``.

        ``timestamp`` (seconds) scales the motion prediction when frames are unevenly spaced;
        without it the frame count is the clock. Use one or the other for a whole stream.
        People with fewer than ``min_keypoints`` keypoints that continue no track get -1.
        """
        self._frame += 1
        now = float(self._frame if timestamp is None else timestamp)
        det = np.stack([p.keypoints for p in people]) if people else self._kps[:0]
        box = np.array([p.bbox for p in people], float).reshape(-1, 4)
        box[:, 2:] += box[:, :2]
        whole = (det[:, :, 2] > 0).sum(1) >= self.min_keypoints
        ti, di = self._match(det, box, whole, now)
        self._continue(ti, det[di], box[di], now)
        self._missed += 1
        self._missed[ti] = 0
        ids = np.full(len(people), -1, np.int64)
        ids[di] = self._ids[ti]
        new = (ids < 0) & whole
        n = int(new.sum())
        ids[new] = np.arange(self._next_id, self._next_id + n)
        self._next_id += n
        keep = self._missed <= self.max_age
        if n or not keep.all():
            self._ids = np.concatenate([self._ids[keep], ids[new]])
            self._kps = np.concatenate([self._kps[keep], det[new]])
            self._box = np.concatenate([self._box[keep], box[new]])
            self._time = np.concatenate([self._time[keep], np.full(n, now)])
            self._vel = np.concatenate([self._vel[keep], np.zeros((n, 2))])
            self._has_vel = np.concatenate([self._has_vel[keep], np.zeros(n, bool)])
            self._missed = np.concatenate([self._missed[keep], np.zeros(n, np.int64)])
        for person, tid in zip(people, ids.tolist()):
            person.track_id = tid
        return people

    def _match(self, det: np.ndarray, box: np.ndarray, whole: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Greedy (track rows, detection rows): whole poses first, then the tracks missed for the
        fewest frames, then the most similar pairs."""
        if not len(det) or not len(self._ids):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        sim = self._similarity(det, box, now)
        allowed = (sim >= self.min_similarity) & (whole[None] | (self._missed == 0)[:, None])
        rows, cols = np.nonzero(allowed)
        order = np.lexsort((-sim[rows, cols], self._missed[rows], ~whole[cols]))
        used_t, used_d, pairs = set(), set(), []
        for t, d in zip(rows[order].tolist(), cols[order].tolist()):
            if t not in used_t and d not in used_d:
                used_t.add(t)
                used_d.add(d)
                pairs.append((t, d))
        ti, di = np.array(pairs, np.int64).reshape(-1, 2).T
        return ti, di

    def _similarity(self, det: np.ndarray, box: np.ndarray, now: float) -> np.ndarray:
        """(tracks, detections) similarity: keypoint similarity on shared keypoints, else IoU."""
        shift = self._vel * (now - self._time)[:, None]
        trk_box = self._box + shift[:, [0, 1, 0, 1]]
        size = np.maximum.outer(_longer_side(trk_box), _longer_side(box))
        scale = np.maximum(self.tolerance * size, self.min_scale) * (1 + self.growth * self._missed)[:, None]
        trk_found, det_found = self._kps[:, :, 2] > 0, det[:, :, 2] > 0
        # A missing keypoint sits far away, so it adds exp(-huge) = 0 to the sum.
        tx = np.where(trk_found, self._kps[:, :, 0] + shift[:, :1], _FAR)
        ty = np.where(trk_found, self._kps[:, :, 1] + shift[:, 1:], _FAR)
        dx = np.where(det_found, det[:, :, 0], -_FAR)
        dy = np.where(det_found, det[:, :, 1], -_FAR)
        ex, ey = tx[:, None] - dx[None], ty[:, None] - dy[None]
        sim_sum = np.exp((ex * ex + ey * ey) * (-0.5 / scale ** 2)[..., None]) @ _ONES
        n_common = trk_found.astype(float) @ det_found.T.astype(float)
        sim = sim_sum / np.maximum(n_common, 1)
        few = n_common < self.min_common
        return np.where(few, _iou(trk_box, box), sim) if few.any() else sim

    def _continue(self, ti: np.ndarray, det: np.ndarray, box: np.ndarray, now: float) -> None:
        """Move tracks ``ti`` to their matches; velocities from the mean shift of shared keypoints."""
        old = self._kps[ti]
        common = (old[:, :, 2] > 0) & (det[:, :, 2] > 0)
        n_common = common.sum(-1)
        dt = now - self._time[ti]
        ok = (dt > 0) & (n_common > 0)
        shift = ((det[:, :, :2] - old[:, :, :2]) * common[..., None]).sum(1)
        step = shift / np.where(ok, n_common * dt, 1.0)[:, None]
        blended = np.where(self._has_vel[ti, None], 0.5 * (self._vel[ti] + step), step)
        self._vel[ti] = np.where(ok[:, None], blended, self._vel[ti])
        self._has_vel[ti] |= ok
        self._kps[ti] = det
        self._box[ti] = box
        self._time[ti] = now


def _longer_side(box: np.ndarray) -> np.ndarray:
    return np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])


def _area(box: np.ndarray) -> np.ndarray:
    return (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of x0, y0, x1, y1 boxes."""
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    union = _area(a)[:, None] + _area(b)[None] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


try:
    from ._tracking import Tracker
except ImportError:  # extension not built
    Tracker = ReferenceTracker
