"""Keypoint smoothing with the One Euro filter (Casiez, Roussel, Vogel, CHI 2012).

A One Euro filter is a low-pass filter whose cutoff frequency rises with the signal's speed:
still keypoints are smoothed hard (little jitter), fast ones lightly (little lag).

``ReferencePoseSmoother`` is the numpy specification of pose smoothing; ``PoseSmoother`` is the
Cython extension ``lwpose._tracking`` (identical output) when it is built, else the reference.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .pose import NUM_KEYPOINTS, Person, bboxes_of


def _alpha(cutoff: float | np.ndarray, dt: float | np.ndarray) -> float | np.ndarray:
    """Smoothing factor of an exponential filter with this cutoff (Hz) at this sampling period (s)."""
    r = 2 * math.pi * cutoff * dt
    return r / (r + 1)


def _one_euro(x: np.ndarray, prev: np.ndarray, prev_dx: np.ndarray, cont: np.ndarray, dt: float | np.ndarray,
              min_cutoff: float, beta: float, d_cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """One filter step: the new output and speed. Elements where ``cont`` is False start afresh
    (output ``x``, speed 0); ``dt`` (> 0) broadcasts against ``x``."""
    a_d = _alpha(d_cutoff, dt)
    dx = np.where(cont, a_d * (x - prev) / dt + (1 - a_d) * prev_dx, 0.0)
    a = _alpha(min_cutoff + beta * np.abs(dx), dt)
    return np.where(cont, a * x + (1 - a) * prev, x), dx


class OneEuroFilter:
    """A One Euro filter over every element of an array of fixed shape.

    Args:
        min_cutoff: cutoff frequency (Hz) at zero speed; lower = smoother, more lag.
        beta: how fast the cutoff rises with speed (per unit/s); higher = less lag when moving.
        d_cutoff: cutoff frequency (Hz) of the speed estimate.
        nominal_dt: sampling period (s) assumed when a timestamp does not advance.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.007, d_cutoff: float = 1.0,
                 nominal_dt: float = 1 / 30) -> None:
        self.params = dict(min_cutoff=min_cutoff, beta=beta, d_cutoff=d_cutoff)
        self.nominal_dt = nominal_dt
        self._x: np.ndarray | None = None  # last output
        self._dx: np.ndarray | None = None  # last filtered speed
        self._has: np.ndarray | None = None  # elements with a filter state
        self._t = 0.0

    def __call__(self, x: np.ndarray, timestamp: float, valid: np.ndarray | None = None) -> np.ndarray:
        """Filter the next sample ``x`` taken at ``timestamp`` (seconds).

        Elements where ``valid`` (broadcast to ``x``) is False pass through unchanged and lose
        their state, so they restart from their next valid sample.
        """
        x = np.asarray(x, dtype=np.float64)
        valid = np.broadcast_to(True if valid is None else valid, x.shape)
        if self._x is None:
            self._x, self._dx, self._has = x, np.zeros_like(x), np.zeros(x.shape, bool)
        elif x.shape != self._x.shape:
            raise ValueError(f"OneEuroFilter: shape {x.shape} differs from the first sample's {self._x.shape}")
        dt = timestamp - self._t
        self._x, self._dx = _one_euro(x, self._x, self._dx, valid & self._has,
                                      dt if dt > 0 else self.nominal_dt, **self.params)
        self._has, self._t = valid.copy(), timestamp
        return self._x.copy()


@dataclass
class _TrackState:
    x: np.ndarray  # (18, 2) last output
    dx: np.ndarray  # (18, 2) last filtered speed
    has: np.ndarray  # (18, 1) keypoints with a filter state
    time: float
    frame: int  # update count when last seen


class ReferencePoseSmoother:
    """One Euro smoothing of the found keypoints (x, y) of each tracked person.

    People with ``track_id`` -1 pass through. A keypoint that was missing restarts its filter;
    the state of a track not seen for more than ``max_age`` updates is dropped. All people of a
    frame are filtered in one vectorised step.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.007, d_cutoff: float = 1.0,
                 max_age: int = 5, nominal_dt: float = 1 / 30) -> None:
        self.params = dict(min_cutoff=min_cutoff, beta=beta, d_cutoff=d_cutoff)
        self.max_age = max_age
        self.nominal_dt = nominal_dt
        self._states: dict[int, _TrackState] = {}
        self._frame = 0

    def __len__(self) -> int:
        """Number of tracks with a filter state."""
        return len(self._states)

    def update(self, people: list[Person], timestamp: float) -> list[Person]:
        """Smoothed copies of ``people`` (the inputs are left unchanged); ``timestamp`` in seconds."""
        self._frame += 1
        out = list(people)
        tracked = [i for i, p in enumerate(people) if p.track_id >= 0]
        if tracked:
            kps = np.stack([people[i].keypoints for i in tracked])
            x, valid = kps[:, :, :2].astype(np.float64), kps[:, :, 2:] > 0
            blank = _TrackState(x[0], np.zeros((NUM_KEYPOINTS, 2)), np.zeros((NUM_KEYPOINTS, 1), bool), timestamp, 0)
            states = [self._states.get(people[i].track_id, blank) for i in tracked]  # blank: no filter yet
            dt = np.array([timestamp - s.time for s in states])
            dt = np.where(dt > 0, dt, self.nominal_dt)[:, None, None]
            has = np.stack([s.has for s in states])
            smoothed, dx = _one_euro(x, np.stack([s.x for s in states]), np.stack([s.dx for s in states]),
                                     valid & has, dt, **self.params)
            kps[:, :, :2] = smoothed
            for j, (i, box) in enumerate(zip(tracked, bboxes_of(kps))):
                tid = people[i].track_id
                self._states[tid] = _TrackState(smoothed[j], dx[j], valid[j], timestamp, self._frame)
                out[i] = Person(kps[j], people[i].score, tid, box)
        for tid in [t for t, s in self._states.items() if self._frame - s.frame > self.max_age]:
            del self._states[tid]
        return out


try:
    from ._tracking import PoseSmoother
except ImportError:  # extension not built
    PoseSmoother = ReferencePoseSmoother
