"""One Euro smoothing: less jitter, bounded lag, restarts, no state growth."""
from __future__ import annotations

import numpy as np

from lwpose.pose import NUM_KEYPOINTS, Person
import pytest

from lwpose.smooth import OneEuroFilter, PoseSmoother, ReferencePoseSmoother

#: Keypoints spread like a person's, relative to the neck.
@pytest.fixture(params=[ReferencePoseSmoother, PoseSmoother], ids=["reference", "built"])
def make_smoother(request):
    """Each smoother class: the numpy reference and ``smooth.PoseSmoother`` (Cython when built)."""
    return request.param


TEMPLATE = np.random.default_rng(0).uniform(-80, 80, (NUM_KEYPOINTS, 2)).astype(np.float32)


def noisy_person(xy: np.ndarray, rng: np.random.Generator, track_id: int = 0, sigma: float = 2.0) -> Person:
    kps = np.ones((NUM_KEYPOINTS, 3), np.float32)
    kps[:, :2] = xy + rng.normal(0, sigma, (NUM_KEYPOINTS, 2))
    return Person(kps, 1.0, track_id)


def test_less_jitter_bounded_lag(make_smoother):
    rng = np.random.default_rng(1)
    fps, speed = 30, 20.0  # a slow walk: 20 px/s to the right
    smoother = make_smoother()
    raw_err, out_err = [], []
    for i in range(300):
        t = i / fps
        truth = TEMPLATE + (100 + speed * t, 200)
        person = noisy_person(truth, rng)
        out = smoother.update([person], t)[0]
        if i >= 60:  # after the warm-up
            raw_err.append(person.keypoints[:, :2] - truth)
            out_err.append(out.keypoints[:, :2] - truth)
    raw_err, out_err = np.array(raw_err), np.array(out_err)
    lag = -out_err[..., 0].mean()  # behind the truth along the motion
    jitter_reduction = raw_err.var() / (out_err - out_err.mean(axis=0)).var()
    assert jitter_reduction > 4, jitter_reduction
    assert 0 < lag < 0.2 * speed, lag  # less than 0.2 s behind
    assert abs(out_err[..., 1].mean()) < 0.5  # no bias across the motion


def test_filter_follows_constant_and_handles_equal_timestamps():
    filt = OneEuroFilter()
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    for t in (0.0, 0.0, 0.1, 0.1, 0.05):  # zero and negative steps fall back to the nominal dt
        out = filt(x, t)
        assert np.allclose(out, x)
    moved = filt(x + 10, 0.2)
    assert np.all(np.isfinite(moved)) and np.all((moved > x) & (moved < x + 10))


def test_missing_keypoint_restarts_its_filter(make_smoother):
    smoother = make_smoother()
    rng = np.random.default_rng(2)
    for i in range(10):
        smoother.update([noisy_person(TEMPLATE + 100, rng)], i / 30)
    hidden = noisy_person(TEMPLATE + 100, rng)
    hidden.keypoints[3] = (-1, -1, 0)
    out = smoother.update([hidden], 10 / 30)[0]
    assert tuple(out.keypoints[3]) == (-1, -1, 0)  # missing stays missing
    back = noisy_person(TEMPLATE + 100, rng)
    back.keypoints[3, :2] = (500, 500)  # far away: a restarted filter takes it as is
    out = smoother.update([back], 11 / 30)[0]
    assert tuple(out.keypoints[3, :2]) == (500, 500)
    assert not np.allclose(out.keypoints[0, :2], back.keypoints[0, :2])  # others still smoothed


def test_untracked_pass_through_and_inputs_unchanged(make_smoother):
    rng = np.random.default_rng(3)
    smoother = make_smoother()
    untracked = noisy_person(TEMPLATE, rng, track_id=-1)
    tracked = noisy_person(TEMPLATE, rng, track_id=4)
    smoother.update([tracked], 0.0)
    before = tracked.keypoints.copy()
    again = noisy_person(TEMPLATE, rng, track_id=4)
    out = smoother.update([untracked, again], 0.1)
    assert out[0] is untracked and out[1].track_id == 4
    assert np.array_equal(tracked.keypoints, before)
    assert len(smoother) == 1


def test_no_state_growth_over_long_runs(make_smoother):
    rng = np.random.default_rng(4)
    smoother = make_smoother(max_age=5)
    sizes = []
    for frame in range(10_000):
        first = frame // 50  # every 50 frames the ids move on, as people come and go
        people = [noisy_person(TEMPLATE + 50 * k, rng, track_id=first + k) for k in range(3)]
        smoother.update(people, frame / 30)
        sizes.append(len(smoother))
    assert max(sizes) == 4  # the 3 current ids plus one that left within max_age


def test_equal_timestamps_use_the_nominal_step(make_smoother):
    rng = np.random.default_rng(5)
    smoother = make_smoother()
    assert smoother.nominal_dt == 1 / 30
    smoother.update([noisy_person(TEMPLATE + 100, rng)], 1.0)
    out = smoother.update([noisy_person(TEMPLATE + 110, rng)], 1.0)[0]  # no time passed
    assert np.all(np.isfinite(out.keypoints))
    assert np.all((out.keypoints[:, :2] > TEMPLATE + 95) & (out.keypoints[:, :2] < TEMPLATE + 115))
