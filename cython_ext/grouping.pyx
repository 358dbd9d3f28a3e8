# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython grouping (``lwpose.decode._grouping``): a step-for-step mirror of
``lwpose/decode/reference.py`` with the same float64 operations in the same order, so both give
identical results. It keeps the GIL: a frame takes 0.03-0.1 ms, and releasing the GIL three times a
frame cost more in GIL hand-offs between the pipeline's threads than it gained (docs/performance.md).

Parameters and the limb layout are read from the reference module and ``lwpose.pose`` at import.
"""
from libc.math cimport INFINITY, log, sqrt
from libc.stdlib cimport free, malloc, qsort
from libc.string cimport memset

import numpy as np

from lwpose.decode import reference
from lwpose.pose import LIMB_PAF_CHANNELS, LIMBS, NUM_KEYPOINTS

cdef enum:
    NK = 18  # keypoint types
    NL = 19  # limbs

if NUM_KEYPOINTS != NK or len(LIMBS) != NL:
    raise ImportError("lwpose.pose layout does not match the compiled grouping (18 keypoints, 19 limbs)")

cdef float PEAK_THRESHOLD = reference.PEAK_THRESHOLD
cdef int MAX_PEAKS = reference.MAX_PEAKS
cdef double LOG_FLOOR = reference.LOG_FLOOR
cdef int PAF_SAMPLES = reference.PAF_SAMPLES
cdef double PAF_SAMPLE_THRESHOLD = reference.PAF_SAMPLE_THRESHOLD
cdef int PAF_MIN_GOOD_SAMPLES = reference.PAF_MIN_GOOD_SAMPLES
cdef double SHORT_LIMB = reference.SHORT_LIMB
cdef int MERGE_MIN_GOOD_SAMPLES = reference.MERGE_MIN_GOOD_SAMPLES
cdef double HIP_MERGE_RATIO = reference.HIP_MERGE_RATIO
cdef int RIGHT_HIP = reference.RIGHT_HIP
cdef int RIGHT_KNEE = reference.RIGHT_KNEE
cdef int LEFT_HIP = reference.LEFT_HIP
cdef int LEFT_KNEE = reference.LEFT_KNEE
cdef float RECOVER_THRESHOLD = reference.RECOVER_THRESHOLD
cdef double RECOVER_MAX_LENGTH = reference.RECOVER_MAX_LENGTH
cdef int MIN_KEYPOINTS = reference.MIN_KEYPOINTS
cdef double MIN_MEAN_SCORE = reference.MIN_MEAN_SCORE

cdef int LIMB_A[NL]
cdef int LIMB_B[NL]
cdef int PAF_X[NL]
cdef int PAF_Y[NL]
for _n, ((_a, _b), (_cx, _cy)) in enumerate(zip(LIMBS, LIMB_PAF_CHANNELS)):
    LIMB_A[_n], LIMB_B[_n], PAF_X[_n], PAF_Y[_n] = _a, _b, _cx, _cy


cdef struct Peak:
    double x
    double y
    double score
    Py_ssize_t raster


cdef struct Candidate:
    double score
    int a
    int b


cdef struct Ranked:
    double score
    int index


cdef int cmp_peak(const void* p, const void* q) noexcept nogil:
    """Decreasing score, then raster order."""
    cdef const Peak* u = <const Peak*>p
    cdef const Peak* v = <const Peak*>q
    if u.score != v.score:
        return -1 if u.score > v.score else 1
    return (u.raster > v.raster) - (u.raster < v.raster)


cdef int cmp_candidate(const void* p, const void* q) noexcept nogil:
    """Decreasing score, then index a, then index b."""
    cdef const Candidate* u = <const Candidate*>p
    cdef const Candidate* v = <const Candidate*>q
    if u.score != v.score:
        return -1 if u.score > v.score else 1
    if u.a != v.a:
        return -1 if u.a < v.a else 1
    return (u.b > v.b) - (u.b < v.b)


cdef int cmp_ranked(const void* p, const void* q) noexcept nogil:
    """Decreasing score, then index."""
    cdef const Ranked* u = <const Ranked*>p
    cdef const Ranked* v = <const Ranked*>q
    if u.score != v.score:
        return -1 if u.score > v.score else 1
    return (u.index > v.index) - (u.index < v.index)


cdef inline double floored_log(double value) noexcept nogil:
    """reference._log."""
    return log(value if value > LOG_FLOOR else LOG_FLOOR)


cdef int find_peaks(const float[:, ::1] hm, Peak* cells, Peak* out, float threshold, float ceiling) noexcept nogil:
    """reference.find_peaks + refine_peak (gaussian fit) for one heatmap; `cells` holds H*W scratch peaks.
    Writes at most MAX_PEAKS refined peaks to `out` and returns their number."""
    cdef Py_ssize_t h = hm.shape[0], w = hm.shape[1], i, j, ii, jj
    cdef int di, dj, n = 0, k
    cdef float v, u
    cdef bint ok
    cdef double c, left, right, curvature
    for i in range(h):
        for j in range(w):
            v = hm[i, j]
            if not (v > threshold) or v > ceiling:
                continue
            ok = True
            for di in range(-1, 2):
                for dj in range(-1, 2):
                    ii = i + di
                    jj = j + dj
                    if (di == 0 and dj == 0) or ii < 0 or ii >= h or jj < 0 or jj >= w:
                        continue
                    u = hm[ii, jj]
                    if di < 0 or (di == 0 and dj < 0):
                        ok = ok and v > u
                    else:
                        ok = ok and v >= u
            if ok:
                cells[n].x = j
                cells[n].y = i
                cells[n].score = v
                cells[n].raster = i * w + j
                n += 1
    qsort(cells, n, sizeof(Peak), cmp_peak)
    if n > MAX_PEAKS:
        n = MAX_PEAKS
    for k in range(n):
        out[k] = cells[k]
        i = <Py_ssize_t>cells[k].y
        j = <Py_ssize_t>cells[k].x
        c = floored_log(cells[k].score)
        if 0 < j < w - 1:
            left = floored_log(hm[i, j - 1])
            right = floored_log(hm[i, j + 1])
            curvature = left - 2.0 * c + right
            if curvature < 0.0:
                out[k].x += 0.5 * (left - right) / curvature
        if 0 < i < h - 1:
            left = floored_log(hm[i - 1, j])
            right = floored_log(hm[i + 1, j])
            curvature = left - 2.0 * c + right
            if curvature < 0.0:
                out[k].y += 0.5 * (left - right) / curvature
    return n


cdef inline double sample_bilinear(const float[:, ::1] f, double x, double y) noexcept nogil:
    """reference.sample_bilinear at one point."""
    cdef Py_ssize_t h = f.shape[0], w = f.shape[1], x0, y0, x1, y1
    cdef double fx, fy, top, bottom
    x = min(max(x, 0.0), w - 1.0)
    y = min(max(y, 0.0), h - 1.0)
    x0 = min(<Py_ssize_t>x, max(w - 2, 0))
    y0 = min(<Py_ssize_t>y, max(h - 2, 0))
    x1 = min(x0 + 1, w - 1)
    y1 = min(y0 + 1, h - 1)
    fx = x - x0
    fy = y - y0
    top = <double>f[y0, x0] * (1.0 - fx) + <double>f[y0, x1] * fx
    bottom = <double>f[y1, x0] * (1.0 - fx) + <double>f[y1, x1] * fx
    return top * (1.0 - fy) + bottom * fy


cdef bint limb_score(const Peak* pa, const Peak* pb, double vx, double vy, double norm,
                     const float[:, ::1] paf_x, const float[:, ::1] paf_y, double* score) noexcept nogil:
    """The first pass's test of one candidate limb a→b (offset vx, vy of length norm), as in
    reference.limb_candidates: whether it is accepted, and its score in `score`."""
    cdef int s, good
    cdef double ux, uy, t, x, y, px, py, projection, total, sum_x, sum_y
    if norm < SHORT_LIMB:  # no measurable direction: accepted, scored by the mean PAF's length
        sum_x = 0.0
        sum_y = 0.0
        for s in range(PAF_SAMPLES):
            t = <double>s / (PAF_SAMPLES - 1)
            x = pa.x + t * vx
            y = pa.y + t * vy
            sum_x = sum_x + sample_bilinear(paf_x, x, y)
            sum_y = sum_y + sample_bilinear(paf_y, x, y)
        score[0] = sqrt(sum_x * sum_x + sum_y * sum_y) / PAF_SAMPLES
        return True
    ux = vx / norm
    uy = vy / norm
    total = 0.0
    good = 0
    for s in range(PAF_SAMPLES):
        t = <double>s / (PAF_SAMPLES - 1)
        x = pa.x + t * vx
        y = pa.y + t * vy
        px = sample_bilinear(paf_x, x, y)
        py = sample_bilinear(paf_y, x, y)
        projection = px * ux + py * uy
        total = total + projection
        good += projection > PAF_SAMPLE_THRESHOLD
        if s + 1 - good > PAF_SAMPLES - PAF_MIN_GOOD_SAMPLES:
            return False  # too many unsupported samples already: rejected whatever follows
    score[0] = total / PAF_SAMPLES
    return good >= PAF_MIN_GOOD_SAMPLES and score[0] > 0.0


cdef int limb_candidates(const Peak* pa, int na, const Peak* pb, int nb, const float[:, ::1] paf_x,
                         const float[:, ::1] paf_y, Candidate* out) noexcept nogil:
    """reference.limb_candidates; returns the number of accepted candidates written to `out`."""
    cdef int a, b, n = 0
    cdef double vx, vy, score
    for a in range(na):
        for b in range(nb):
            vx = pb[b].x - pa[a].x
            vy = pb[b].y - pa[a].y
            if not limb_score(&pa[a], &pb[b], vx, vy, sqrt(vx * vx + vy * vy), paf_x, paf_y, &score):
                continue
            out[n].score = score
            out[n].a = a
            out[n].b = b
            n += 1
    return n


cdef int assemble(const float[:, :, ::1] pafs, Peak** peaks, const int* npeaks, Candidate* cands,
                  char* used_a, char* used_b, int* owner, int* ids, int* count, double* total,
                  char* alive) noexcept nogil:
    """reference.assemble (with select_connections); `owner` is NK*MAX_PEAKS, the skeleton arrays
    (`ids` NK per skeleton, `count`, `total`, `alive`) have room for every possible skeleton.
    Returns the number of skeletons created (dead ones have alive = 0)."""
    cdef int limb, ta, tb, nc, c, a, b, pa, pb, t, nsk = 0
    cdef double score
    for limb in range(NL):
        ta = LIMB_A[limb]
        tb = LIMB_B[limb]
        if npeaks[ta] == 0 or npeaks[tb] == 0:
            continue
        nc = limb_candidates(peaks[ta], npeaks[ta], peaks[tb], npeaks[tb], pafs[PAF_X[limb]], pafs[PAF_Y[limb]], cands)
        qsort(cands, nc, sizeof(Candidate), cmp_candidate)
        memset(used_a, 0, MAX_PEAKS)
        memset(used_b, 0, MAX_PEAKS)
        for c in range(nc):
            a = cands[c].a
            b = cands[c].b
            score = cands[c].score
            if used_a[a] or used_b[b]:
                continue
            used_a[a] = 1
            used_b[b] = 1
            pa = owner[ta * MAX_PEAKS + a]
            pb = owner[tb * MAX_PEAKS + b]
            if pa < 0 and pb < 0:
                for t in range(NK):
                    ids[nsk * NK + t] = -1
                ids[nsk * NK + ta] = a
                ids[nsk * NK + tb] = b
                count[nsk] = 2
                total[nsk] = peaks[ta][a].score + peaks[tb][b].score + score
                alive[nsk] = 1
                owner[ta * MAX_PEAKS + a] = nsk
                owner[tb * MAX_PEAKS + b] = nsk
                nsk += 1
            elif pb < 0:
                if ids[pa * NK + tb] < 0:
                    ids[pa * NK + tb] = b
                    count[pa] += 1
                    total[pa] += peaks[tb][b].score + score
                    owner[tb * MAX_PEAKS + b] = pa
            elif pa < 0:
                if ids[pb * NK + ta] < 0:
                    ids[pb * NK + ta] = a
                    count[pb] += 1
                    total[pb] += peaks[ta][a].score + score
                    owner[ta * MAX_PEAKS + a] = pb
            elif pa != pb:
                merge(pa, pb, score, owner, ids, count, total, alive)
    merge_hips(peaks, nsk, cands, owner, ids, count, total, alive)
    merge_pieces(pafs, peaks, npeaks, cands, owner, ids, count, total, alive)
    return nsk


cdef void merge(int pa, int pb, double score, int* owner, int* ids, int* count, double* total,
                char* alive) noexcept nogil:
    """reference.merge."""
    cdef int keep = min(pa, pb), drop = max(pa, pb), t
    for t in range(NK):
        if ids[keep * NK + t] >= 0 and ids[drop * NK + t] >= 0:
            return
    for t in range(NK):
        if ids[drop * NK + t] >= 0:
            ids[keep * NK + t] = ids[drop * NK + t]
            owner[t * MAX_PEAKS + ids[drop * NK + t]] = keep
    count[keep] += count[drop]
    total[keep] = total[keep] + total[drop] + score
    alive[drop] = 0


cdef inline double distance(const Peak* a, const Peak* b) noexcept nogil:
    """reference._distance."""
    cdef double dx = b.x - a.x, dy = b.y - a.y
    return sqrt(dx * dx + dy * dy)


cdef void merge_hips(Peak** peaks, int nsk, Candidate* cands, int* owner, int* ids, int* count,
                     double* total, char* alive) noexcept nogil:
    """reference.merge_hips; `cands` has room for every (right hip, left hip) peak pair."""
    cdef int p, q, t, nc = 0, c
    cdef bint disjoint
    cdef double thigh, width
    cdef const Peak* hip_r
    cdef const Peak* hip_l
    for p in range(nsk):
        if not alive[p] or ids[p * NK + RIGHT_HIP] < 0 or ids[p * NK + LEFT_HIP] >= 0:
            continue
        for q in range(nsk):
            if not alive[q] or ids[q * NK + LEFT_HIP] < 0 or ids[q * NK + RIGHT_HIP] >= 0:
                continue
            disjoint = True
            for t in range(NK):
                if ids[p * NK + t] >= 0 and ids[q * NK + t] >= 0:
                    disjoint = False
                    break
            if not disjoint:
                continue
            hip_r = &peaks[RIGHT_HIP][ids[p * NK + RIGHT_HIP]]
            hip_l = &peaks[LEFT_HIP][ids[q * NK + LEFT_HIP]]
            thigh = -1.0
            if ids[p * NK + RIGHT_KNEE] >= 0:
                thigh = distance(hip_r, &peaks[RIGHT_KNEE][ids[p * NK + RIGHT_KNEE]])
            if ids[q * NK + LEFT_KNEE] >= 0:
                thigh = max(thigh, distance(hip_l, &peaks[LEFT_KNEE][ids[q * NK + LEFT_KNEE]]))
            width = distance(hip_r, hip_l)
            if thigh >= 0.0 and width <= HIP_MERGE_RATIO * thigh:
                cands[nc].score = -width
                cands[nc].a = p
                cands[nc].b = q
                nc += 1
    qsort(cands, nc, sizeof(Candidate), cmp_candidate)
    for c in range(nc):
        if alive[cands[c].a] and alive[cands[c].b]:
            merge(cands[c].a, cands[c].b, 0.0, owner, ids, count, total, alive)


cdef void merge_pieces(const float[:, :, ::1] pafs, Peak** peaks, const int* npeaks, Candidate* cands,
                       int* owner, int* ids, int* count, double* total, char* alive) noexcept nogil:
    """reference.merge_pieces: only pairs whose ends belong to two skeletons are scored."""
    cdef int limb, ta, tb, a, b, s, good, nc, c, pa, pb
    cdef double vx, vy, norm, ux, uy, t, x, y, projection, score
    cdef const Peak* qa
    cdef const Peak* qb
    for limb in range(NL):
        ta = LIMB_A[limb]
        tb = LIMB_B[limb]
        qa = peaks[ta]
        qb = peaks[tb]
        nc = 0
        for a in range(npeaks[ta]):
            pa = owner[ta * MAX_PEAKS + a]
            if pa < 0:
                continue
            for b in range(npeaks[tb]):
                pb = owner[tb * MAX_PEAKS + b]
                if pb < 0 or pb == pa:
                    continue
                vx = qb[b].x - qa[a].x
                vy = qb[b].y - qa[a].y
                norm = sqrt(vx * vx + vy * vy)
                if norm < SHORT_LIMB:
                    continue
                ux = vx / norm
                uy = vy / norm
                score = 0.0
                good = 0
                for s in range(PAF_SAMPLES):
                    t = <double>s / (PAF_SAMPLES - 1)
                    x = qa[a].x + t * vx
                    y = qa[a].y + t * vy
                    projection = sample_bilinear(pafs[PAF_X[limb]], x, y) * ux + sample_bilinear(pafs[PAF_Y[limb]], x, y) * uy
                    score = score + projection
                    good += projection > PAF_SAMPLE_THRESHOLD
                    if s + 1 - good > PAF_SAMPLES - MERGE_MIN_GOOD_SAMPLES:
                        break
                score = score / PAF_SAMPLES
                if good >= MERGE_MIN_GOOD_SAMPLES and score > 0.0:
                    cands[nc].score = score
                    cands[nc].a = a
                    cands[nc].b = b
                    nc += 1
        qsort(cands, nc, sizeof(Candidate), cmp_candidate)
        for c in range(nc):
            pa = owner[ta * MAX_PEAKS + cands[c].a]
            pb = owner[tb * MAX_PEAKS + cands[c].b]
            if pa != pb:
                merge(pa, pb, cands[c].score, owner, ids, count, total, alive)


cdef void recover(const float[:, :, ::1] pafs, Peak** peaks, Peak** weak, const int* nweak, char* used,
                  const int* ids, int* rec) noexcept nogil:
    """reference.recover for the skeleton whose keypoint ids are `ids` (NK): writes the chosen
    weak peak per type to `rec` (NK, -1 none) and marks it in `used` (NK*MAX_PEAKS)."""
    cdef Peak points[NK]
    cdef char have[NK]
    cdef int t, limb, ta, tb, need, k, best
    cdef double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY, extent, vx, vy, norm
    cdef double score, best_score = 0.0
    cdef const Peak* pa
    cdef const Peak* pb
    for t in range(NK):
        rec[t] = -1
        have[t] = ids[t] >= 0
        if have[t]:
            points[t] = peaks[t][ids[t]]
            xmin = min(xmin, points[t].x)
            xmax = max(xmax, points[t].x)
            ymin = min(ymin, points[t].y)
            ymax = max(ymax, points[t].y)
    extent = max(max(xmax - xmin, ymax - ymin), 1.0)
    for limb in range(NL):
        ta = LIMB_A[limb]
        tb = LIMB_B[limb]
        if have[ta] == have[tb]:
            continue
        need = tb if have[ta] else ta
        best = -1
        for k in range(nweak[need]):
            if used[need * MAX_PEAKS + k]:
                continue
            if have[ta]:
                pa = &points[ta]
                pb = &weak[need][k]
            else:
                pa = &weak[need][k]
                pb = &points[tb]
            vx = pb.x - pa.x
            vy = pb.y - pa.y
            norm = sqrt(vx * vx + vy * vy)
            if not (norm <= RECOVER_MAX_LENGTH * extent):
                continue
            if limb_score(pa, pb, vx, vy, norm, pafs[PAF_X[limb]], pafs[PAF_Y[limb]], &score):
                if best < 0 or score > best_score:
                    best = k
                    best_score = score
        if best >= 0:
            used[need * MAX_PEAKS + best] = 1
            points[need] = weak[need][best]
            have[need] = 1
            rec[need] = best


cdef int rank_people(const float[:, :, ::1] pafs, Peak** peaks, Peak** weak, const int* nweak, char* used,
                     const int* ids, int* rec, const int* count, const double* total,
                     const char* alive, int nsk, Ranked* ranked) noexcept nogil:
    """Filter skeletons as reference.decode does, recover their missing keypoints (creation
    order) and sort them by score; returns how many remain."""
    cdef int s, t, n = 0
    cdef double score_sum
    for s in range(nsk):
        if not alive[s] or count[s] < MIN_KEYPOINTS or total[s] / count[s] < MIN_MEAN_SCORE:
            continue
        recover(pafs, peaks, weak, nweak, used, ids + s * NK, rec + s * NK)
        score_sum = 0.0
        for t in range(NK):
            if ids[s * NK + t] >= 0:
                score_sum += peaks[t][ids[s * NK + t]].score
            elif rec[s * NK + t] >= 0:
                score_sum += weak[t][rec[s * NK + t]].score
        ranked[n].score = score_sum / NK
        ranked[n].index = s
        n += 1
    qsort(ranked, n, sizeof(Ranked), cmp_ranked)
    return n


def all_finite(const float[:, :, ::1] maps) -> bool:
    """Whether no value is NaN or infinite: an exponent test on the float32 bits, which the
    compiler vectorises (a few microseconds for a frame's maps; ``reference.check_finite`` sums)."""
    cdef const unsigned int* bits = <const unsigned int*>&maps[0, 0, 0]
    cdef Py_ssize_t i, n = maps.shape[0] * maps.shape[1] * maps.shape[2]
    cdef unsigned int bad = 0
    for i in range(n):  # with the GIL: too short to be worth a GIL hand-off
        bad |= (bits[i] & 0x7f800000u) == 0x7f800000u
    return not bad


def decode(const float[:, :, ::1] heatmaps, const float[:, :, ::1] pafs, int stride):
    """Same contract as reference.decode: validated (18, H, W) heatmaps and (38, H, W) PAFs
    (C-contiguous float32) → (keypoints (N, 18, 3), scores (N,)) float32."""
    cdef Py_ssize_t h = heatmaps.shape[1], w = heatmaps.shape[2]
    cdef int k, t, s, n, cap = 0, max_pairs = 0
    cdef int npeaks[NK]
    cdef int nweak[NK]
    cdef Peak* peaks[NK]
    cdef Peak* weak[NK]
    cdef Peak* cells = <Peak*>malloc(h * w * sizeof(Peak))
    cdef Peak* peak_store = <Peak*>malloc(2 * NK * MAX_PEAKS * sizeof(Peak))
    cdef char* weak_used = <char*>malloc(NK * MAX_PEAKS)
    cdef int* owner = <int*>malloc(NK * MAX_PEAKS * sizeof(int))
    cdef char* used = <char*>malloc(2 * MAX_PEAKS)
    cdef Candidate* cands = NULL
    cdef int* ids = NULL
    cdef int* rec = NULL
    cdef int* count = NULL
    cdef double* total = NULL
    cdef char* alive = NULL
    cdef Ranked* ranked = NULL
    cdef float[:, :, ::1] kp_out
    cdef float[::1] score_out
    cdef Peak* p
    try:
        if cells == NULL or peak_store == NULL or weak_used == NULL or owner == NULL or used == NULL:
            raise MemoryError()
        for k in range(NK):
            peaks[k] = peak_store + k * MAX_PEAKS
            npeaks[k] = find_peaks(heatmaps[k], cells, peaks[k], PEAK_THRESHOLD, INFINITY)
            weak[k] = peak_store + (NK + k) * MAX_PEAKS
            nweak[k] = find_peaks(heatmaps[k], cells, weak[k], RECOVER_THRESHOLD, PEAK_THRESHOLD)
        for k in range(NK * MAX_PEAKS):
            owner[k] = -1
            weak_used[k] = 0
        for k in range(NL):
            cap += min(npeaks[LIMB_A[k]], npeaks[LIMB_B[k]])
            max_pairs = max(max_pairs, npeaks[LIMB_A[k]] * npeaks[LIMB_B[k]])
        max_pairs = max(max_pairs, npeaks[RIGHT_HIP] * npeaks[LEFT_HIP])  # the hip pass
        cands = <Candidate*>malloc(max(max_pairs, 1) * sizeof(Candidate))
        ids = <int*>malloc(max(cap, 1) * NK * sizeof(int))
        rec = <int*>malloc(max(cap, 1) * NK * sizeof(int))
        count = <int*>malloc(max(cap, 1) * sizeof(int))
        total = <double*>malloc(max(cap, 1) * sizeof(double))
        alive = <char*>malloc(max(cap, 1))
        ranked = <Ranked*>malloc(max(cap, 1) * sizeof(Ranked))
        if cands == NULL or ids == NULL or rec == NULL or count == NULL or total == NULL or alive == NULL or ranked == NULL:
            raise MemoryError()
        s = assemble(pafs, peaks, npeaks, cands, used, used + MAX_PEAKS, owner, ids, count, total, alive)
        n = rank_people(pafs, peaks, weak, nweak, weak_used, ids, rec, count, total, alive, s, ranked)
        keypoints = np.empty((n, NK, 3), np.float32)
        scores = np.empty(n, np.float32)
        kp_out = keypoints
        score_out = scores
        for k in range(n):
            s = ranked[k].index
            score_out[k] = <float>ranked[k].score
            for t in range(NK):
                p = NULL
                if ids[s * NK + t] >= 0:
                    p = &peaks[t][ids[s * NK + t]]
                elif rec[s * NK + t] >= 0:
                    p = &weak[t][rec[s * NK + t]]
                if p != NULL:
                    kp_out[k, t, 0] = <float>(stride * (p.x + 0.5) - 0.5)
                    kp_out[k, t, 1] = <float>(stride * (p.y + 0.5) - 0.5)
                    kp_out[k, t, 2] = <float>p.score
                else:
                    kp_out[k, t, 0] = -1.0
                    kp_out[k, t, 1] = -1.0
                    kp_out[k, t, 2] = 0.0
        return keypoints, scores
    finally:
        free(cells)
        free(peak_store)
        free(weak_used)
        free(owner)
        free(used)
        free(cands)
        free(ids)
        free(rec)
        free(count)
        free(total)
        free(alive)
        free(ranked)
