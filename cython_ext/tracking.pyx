# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython tracking and smoothing (``lwpose._tracking``): ``Tracker`` and ``PoseSmoother`` with the
parameters, behaviour and results of the numpy specifications ``lwpose.track.ReferenceTracker``
and ``lwpose.smooth.ReferencePoseSmoother``, computed with C loops over a frame's few people
instead of about a hundred small numpy operations per frame (docs/performance.md).

Smoothing does the reference's float64 operations in the same order: identical results. The
tracker's keypoint similarity adds its 18 terms in order and uses the C library's ``exp``, where
numpy's matrix product and ``exp`` may round differently in the last bit; track ids differ only if
two candidate pairs tie to within that.
"""
from libc.math cimport M_PI, exp, fabs, INFINITY
from libc.stdlib cimport free, malloc, qsort

import numpy as np

from lwpose.pose import NUM_KEYPOINTS, Person

cdef enum:
    NK = 18  # keypoint types

if NUM_KEYPOINTS != NK:
    raise ImportError("lwpose.pose has a different keypoint count than the compiled tracking (18)")


cdef struct Pair:
    int piece  # 0: a whole pose, 1: a piece (whole poses are matched first)
    long long missed  # the track's missed frames (fewest first)
    double sim  # highest first
    Py_ssize_t order  # t * D + d: numpy's nonzero order, lexsort's tie-break
    int t
    int d


cdef int _cmp_pairs(const void* pa, const void* pb) noexcept nogil:
    cdef const Pair* p = <const Pair*>pa
    cdef const Pair* q = <const Pair*>pb
    if p.piece != q.piece:
        return -1 if p.piece < q.piece else 1
    if p.missed != q.missed:
        return -1 if p.missed < q.missed else 1
    if p.sim != q.sim:
        return -1 if p.sim > q.sim else 1
    return -1 if p.order < q.order else (1 if p.order > q.order else 0)


cdef inline double _longer(double x0, double y0, double x1, double y1) noexcept nogil:
    cdef double w = x1 - x0, h = y1 - y0
    return w if w >= h else h


cdef inline double _iou(const double* a, const double* b) noexcept nogil:
    cdef double w = min(a[2], b[2]) - max(a[0], b[0])
    cdef double h = min(a[3], b[3]) - max(a[1], b[1])
    if w < 0:
        w = 0
    if h < 0:
        h = 0
    cdef double inter = w * h
    cdef double union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


cdef class Tracker:
    """``lwpose.track.ReferenceTracker`` in C loops (same arguments, same ids)."""

    cdef public int max_age, min_common, min_keypoints
    cdef public double min_similarity, tolerance, min_scale, growth
    cdef long long _next_id, _frame
    cdef object _ids, _kps, _box, _time, _vel, _has_vel, _missed

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
        self._ids = np.zeros(0, np.int64)
        self._kps = np.zeros((0, NK, 3), np.float32)
        self._box = np.zeros((0, 4))
        self._time = np.zeros(0)
        self._vel = np.zeros((0, 2))
        self._has_vel = np.zeros(0, np.uint8)
        self._missed = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self._ids)

    def update(self, people, timestamp=None):
        """Set ``track_id`` of each person of the next frame (in place) and return ``people``."""
        self._frame += 1
        cdef double now = float(self._frame if timestamp is None else timestamp)
        cdef Py_ssize_t D = len(people), T = len(self._ids), d, t, k, n
        det_arr = np.empty((D, NK, 3), np.float32)
        box_arr = np.empty((D, 4))
        whole_arr = np.empty(D, np.uint8)
        cdef float[:, :, ::1] det = det_arr
        cdef double[:, ::1] box = box_arr
        cdef unsigned char[::1] whole = whole_arr
        cdef const float[:, ::1] kp
        cdef int found
        for d in range(D):
            person = people[d]
            kp = np.ascontiguousarray(person.keypoints, dtype=np.float32).reshape(NK, 3)
            found = 0
            for k in range(NK):
                det[d, k, 0] = kp[k, 0]
                det[d, k, 1] = kp[k, 1]
                det[d, k, 2] = kp[k, 2]
                found += kp[k, 2] > 0
            whole[d] = found >= self.min_keypoints
            b = person.bbox
            box[d, 0] = b[0]
            box[d, 1] = b[1]
            box[d, 2] = box[d, 0] + <double>b[2]
            box[d, 3] = box[d, 1] + <double>b[3]

        cdef long long[::1] ids = self._ids
        cdef float[:, :, ::1] kps = self._kps
        cdef double[:, ::1] tbox = self._box
        cdef double[::1] ttime = self._time
        cdef double[:, ::1] vel = self._vel
        cdef unsigned char[::1] has_vel = self._has_vel
        cdef long long[::1] missed = self._missed
        match_arr = np.full(D, -1, np.int64)  # the track row each detection continues
        cdef long long[::1] match = match_arr
        if D and T:
            self._match(det, box, whole, now, ids, kps, tbox, ttime, vel, missed, match)
        cdef double dt, stepx, stepy
        cdef float shx, shy
        cdef int common
        for d in range(D):
            t = match[d]
            if t < 0:
                continue
            common = 0
            shx = 0
            shy = 0
            for k in range(NK):
                if kps[t, k, 2] > 0 and det[d, k, 2] > 0:
                    common += 1
                    shx = shx + (det[d, k, 0] - kps[t, k, 0])
                    shy = shy + (det[d, k, 1] - kps[t, k, 1])
            dt = now - ttime[t]
            if dt > 0 and common > 0:
                stepx = <double>shx / (common * dt)
                stepy = <double>shy / (common * dt)
                if has_vel[t]:
                    stepx = 0.5 * (vel[t, 0] + stepx)
                    stepy = 0.5 * (vel[t, 1] + stepy)
                vel[t, 0] = stepx
                vel[t, 1] = stepy
                has_vel[t] = 1
            for k in range(NK):
                kps[t, k, 0] = det[d, k, 0]
                kps[t, k, 1] = det[d, k, 1]
                kps[t, k, 2] = det[d, k, 2]
            for k in range(4):
                tbox[t, k] = box[d, k]
            ttime[t] = now
        for t in range(T):
            missed[t] += 1
        for d in range(D):
            if match[d] >= 0:
                missed[match[d]] = 0

        out_ids = np.full(D, -1, np.int64)
        cdef long long[::1] oid = out_ids
        new = np.zeros(D, bool)
        n = 0
        for d in range(D):
            if match[d] >= 0:
                oid[d] = ids[match[d]]
            elif whole[d]:
                oid[d] = self._next_id + n
                new[d] = True
                n += 1
        self._next_id += n
        cdef bint expired = False
        for t in range(T):
            if missed[t] > self.max_age:
                expired = True
        if n or expired:
            keep = self._missed <= self.max_age
            self._ids = np.concatenate([self._ids[keep], out_ids[new]])
            self._kps = np.concatenate([self._kps[keep], det_arr[new]])
            self._box = np.concatenate([self._box[keep], box_arr[new]])
            self._time = np.concatenate([self._time[keep], np.full(n, now)])
            self._vel = np.concatenate([self._vel[keep], np.zeros((n, 2))])
            self._has_vel = np.concatenate([self._has_vel[keep], np.zeros(n, np.uint8)])
            self._missed = np.concatenate([self._missed[keep], np.zeros(n, np.int64)])
        for d in range(D):
            people[d].track_id = oid[d]
        return people

    cdef int _match(self, float[:, :, ::1] det, double[:, ::1] box, unsigned char[::1] whole, double now,
                    long long[::1] ids, float[:, :, ::1] kps, double[:, ::1] tbox, double[::1] ttime,
                    double[:, ::1] vel, long long[::1] missed, long long[::1] match) except -1:
        """Greedy matching in the reference's priority order; ``match[d]`` = track row or -1."""
        cdef Py_ssize_t T = ids.shape[0], D = det.shape[0], t, d, k, n = 0
        cdef Pair* pairs = <Pair*>malloc(T * D * sizeof(Pair))
        cdef unsigned char* used_t = <unsigned char*>malloc(T)
        if pairs == NULL or used_t == NULL:
            free(pairs)
            free(used_t)
            raise MemoryError()
        cdef double shift_x, shift_y, scale, coef, total, ex, ey, sim
        cdef double tb[4]
        cdef double db[4]
        cdef int common
        for t in range(T):
            used_t[t] = 0
            shift_x = vel[t, 0] * (now - ttime[t])
            shift_y = vel[t, 1] * (now - ttime[t])
            tb[0] = tbox[t, 0] + shift_x
            tb[1] = tbox[t, 1] + shift_y
            tb[2] = tbox[t, 2] + shift_x
            tb[3] = tbox[t, 3] + shift_y
            for d in range(D):
                db[0], db[1], db[2], db[3] = box[d, 0], box[d, 1], box[d, 2], box[d, 3]
                scale = max(_longer(tb[0], tb[1], tb[2], tb[3]), _longer(db[0], db[1], db[2], db[3]))
                scale = max(self.tolerance * scale, self.min_scale) * (1 + self.growth * missed[t])
                coef = -0.5 / (scale * scale)
                total = 0
                common = 0
                for k in range(NK):
                    if kps[t, k, 2] > 0 and det[d, k, 2] > 0:
                        ex = (kps[t, k, 0] + shift_x) - det[d, k, 0]
                        ey = (kps[t, k, 1] + shift_y) - det[d, k, 1]
                        total = total + exp((ex * ex + ey * ey) * coef)
                        common += 1
                sim = total / (common if common > 1 else 1)
                if common < self.min_common:
                    sim = _iou(tb, db)
                if sim >= self.min_similarity and (whole[d] or missed[t] == 0):
                    pairs[n].piece = 0 if whole[d] else 1
                    pairs[n].missed = missed[t]
                    pairs[n].sim = sim
                    pairs[n].order = t * D + d
                    pairs[n].t = <int>t
                    pairs[n].d = <int>d
                    n += 1
        qsort(pairs, n, sizeof(Pair), _cmp_pairs)
        for k in range(n):
            t, d = pairs[k].t, pairs[k].d
            if not used_t[t] and match[d] < 0:
                used_t[t] = 1
                match[d] = t
        free(pairs)
        free(used_t)
        return 0


cdef class _Filter:
    """One track's One Euro state: last output, filtered speed, keypoints with a state."""

    cdef double x[NK][2]
    cdef double dx[NK][2]
    cdef unsigned char has[NK]
    cdef double time
    cdef long long frame


cdef class PoseSmoother:
    """``lwpose.smooth.ReferencePoseSmoother`` in C loops (same arguments, identical output)."""

    cdef public double min_cutoff, beta, d_cutoff, nominal_dt
    cdef public int max_age
    cdef dict _states
    cdef long long _frame

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.007, d_cutoff: float = 1.0,
                 max_age: int = 5, nominal_dt: float = 1.0 / 30) -> None:  # 1.0: C division
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.max_age = max_age
        self.nominal_dt = nominal_dt
        self._states = {}
        self._frame = 0

    def __len__(self) -> int:
        return len(self._states)

    def update(self, people, double timestamp):
        """Smoothed copies of ``people`` (the inputs are left unchanged); ``timestamp`` in seconds."""
        self._frame += 1
        out = list(people)
        tracked = [i for i, p in enumerate(people) if p.track_id >= 0]
        # every state is looked up before any is replaced, as in the reference
        olds = [self._states.get(people[i].track_id) for i in tracked]
        cdef _Filter old, new
        cdef float[:, ::1] res
        cdef int k, c
        cdef bint cont
        cdef double dt, x, prev, r, a, dxv
        cdef float lo[2]
        cdef float hi[2]
        cdef bint any_found
        for i, old_obj in zip(tracked, olds):
            person = people[i]
            kps = np.array(person.keypoints, dtype=np.float32).reshape(NK, 3)  # a copy: the output
            res = kps
            new = _Filter()
            new.time = timestamp
            new.frame = self._frame
            old = old_obj
            dt = self.nominal_dt
            if old is not None and timestamp - old.time > 0:
                dt = timestamp - old.time
            lo[0] = lo[1] = INFINITY
            hi[0] = hi[1] = -INFINITY
            any_found = False
            for k in range(NK):
                new.has[k] = res[k, 2] > 0
                cont = new.has[k] and old is not None and old.has[k]
                for c in range(2):
                    x = res[k, c]
                    if cont:
                        prev = old.x[k][c]
                        r = 2 * M_PI * self.d_cutoff * dt
                        a = r / (r + 1)
                        dxv = a * (x - prev) / dt + (1 - a) * old.dx[k][c]
                        r = 2 * M_PI * (self.min_cutoff + self.beta * fabs(dxv)) * dt
                        a = r / (r + 1)
                        x = a * x + (1 - a) * prev
                    else:
                        dxv = 0.0
                    new.x[k][c] = x
                    new.dx[k][c] = dxv
                    res[k, c] = <float>x
                    if new.has[k]:
                        lo[c] = min(lo[c], res[k, c])
                        hi[c] = max(hi[c], res[k, c])
                any_found = any_found or new.has[k]
            self._states[person.track_id] = new
            bbox = (0.0, 0.0, 0.0, 0.0)
            if any_found:  # float32 arithmetic, as pose.bboxes_of
                bbox = (lo[0], lo[1], <float>(hi[0] - lo[0]), <float>(hi[1] - lo[1]))
            out[i] = Person(kps, person.score, person.track_id, bbox)
        for tid in [t for t, s in self._states.items() if self._frame - (<_Filter>s).frame > self.max_age]:
            del self._states[tid]
        return out
