"""Tracker: ids stable across frames and short gaps, new ids for new people, expiry."""
from __future__ import annotations

import numpy as np

from lwpose.pose import NUM_KEYPOINTS, Person
from lwpose.track import Tracker

RNG = np.random.default_rng(0)
#: A standing person about 200 px tall, keypoints relative to the neck.
TEMPLATE = np.array([[0, -30], [0, 0], [-25, 0], [-35, 40], [-40, 80], [25, 0], [35, 40], [40, 80],
                     [-15, 90], [-15, 140], [-15, 190], [15, 90], [15, 140], [15, 190],
                     [-6, -36], [6, -36], [-12, -32], [12, -32]], np.float32)


def person_at(x: float, y: float, noise: float = 1.0, missing: tuple[int, ...] = ()) -> Person:
    kps = np.ones((NUM_KEYPOINTS, 3), np.float32)
    kps[:, :2] = TEMPLATE + (x, y) + RNG.normal(0, noise, (NUM_KEYPOINTS, 2))
    kps[list(missing)] = (-1, -1, 0)
    return Person(kps, score=10.0)


def walkers(frame: int) -> dict[str, tuple[float, float]]:
    """Three people walking linearly; B crosses paths with nobody, C walks towards A."""
    return {"A": (100 + 4 * frame, 100), "B": (300, 80 + 3 * frame), "C": (500 - 4 * frame, 120)}


def test_ids_stable_across_a_gap():
    tracker = Tracker(max_age=5)
    ids: dict[str, set[int]] = {"A": set(), "B": set(), "C": set()}
    for frame in range(20):
        names = [n for n in walkers(frame) if not (n == "B" and 8 <= frame < 11)]  # B hidden 3 frames
        people = [person_at(*walkers(frame)[n], missing=(0, 4) if frame % 3 else ()) for n in names]
        order = RNG.permutation(len(people))  # detection order must not matter
        tracked = tracker.update([people[i] for i in order])
        for i, person in zip(order, tracked):
            ids[names[i]].add(person.track_id)
    assert all(len(i) == 1 for i in ids.values()) and set.union(*ids.values()) == {0, 1, 2}


def test_new_person_gets_a_new_id():
    tracker = Tracker()
    tracker.update([person_at(100, 100), person_at(400, 100)])
    out = tracker.update([person_at(102, 100), person_at(402, 100), person_at(700, 300)])
    assert [p.track_id for p in out] == [0, 1, 2]


def test_tracks_expire_after_max_age():
    tracker = Tracker(max_age=2)
    assert tracker.update([person_at(100, 100)])[0].track_id == 0
    for _ in range(2):
        tracker.update([])
    assert tracker.update([person_at(101, 100)])[0].track_id == 0  # missed 2 frames: kept
    for _ in range(3):
        tracker.update([])
    assert tracker.update([person_at(101, 100)])[0].track_id == 1  # missed 3 > max_age: new id


def test_iou_fallback_for_poses_without_common_keypoints():
    legs = tuple(range(8, 14))
    upper = tuple(k for k in range(NUM_KEYPOINTS) if k not in legs)
    tracker = Tracker()
    tracker.update([person_at(100, 100, missing=legs)])
    # Only legs now: no keypoint in common, and the boxes do not overlap → a new track.
    assert tracker.update([person_at(101, 100, missing=upper)])[0].track_id == 1
    # The same legs again, shifted: matched on the legs' keypoints.
    assert tracker.update([person_at(103, 101, missing=upper)])[0].track_id == 1
    # Boxes-only comparison when fewer than min_common keypoints are shared.
    tracker = Tracker(min_common=99)
    tracker.update([person_at(100, 100)])
    assert tracker.update([person_at(110, 100)])[0].track_id == 0
    assert tracker.update([person_at(400, 100)])[0].track_id == 1


def test_prediction_uses_timestamps():
    # 300 px/s; the 0.3 s gap is a 90 px jump, out of range without the motion prediction.
    times = (0.0, 0.1, 0.2, 0.5, 0.6)
    tracker = Tracker()
    assert [tracker.update([person_at(100 + 300 * t, 100)], timestamp=t)[0].track_id for t in times] == [0] * 5
    tracker = Tracker()  # the frame count as clock: the jump after the gap is not foreseen
    assert [tracker.update([person_at(100 + 300 * t, 100)])[0].track_id for t in times] == [0, 0, 0, 1, 1]


def test_reset():
    tracker = Tracker()
    tracker.update([person_at(100, 100), person_at(400, 100)])
    tracker.reset()
    assert tracker.update([person_at(400, 100)])[0].track_id == 0
    assert tracker.update([]) == []
