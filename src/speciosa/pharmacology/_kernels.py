"""Compiled inner loops of the exposure engine (numba, compiled once and cached on disk).

Why compiled: propagating the mode states of every subject through time is a recurrence
(each output depends on the previous one), so numpy can only vectorise it across subjects,
one output time per call, which costs a pass over memory per time step; with per-subject dose
times that was about 20 times slower than writing the output. Here each subject is walked
once, in registers, and every output value is written exactly once, in the order a long
table needs (subject by subject). The loops are plain arithmetic on the closed-form solution
(see :mod:`speciosa.pharmacology.model`); nothing is approximated.

``nogil=True`` so that threads run blocks of subjects at the same time; ``cache=True`` writes
the machine code beside this file (or, where that is not writable, to numba's per-user cache
directory; ``NUMBA_CACHE_DIR`` overrides), so a process compiles only the first time.
Private to :mod:`speciosa.pharmacology`: callers use :func:`~.model.simulate`,
:func:`~.cohort.cohort_exposure` and :func:`~.exposure.washout_hours`.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

#: States below this are set to 0: they no longer matter (concentrations are multiples of
#: them) and subnormal numbers make every later multiplication about 100 times slower.
TINY = 1e-200


@nb.njit(nogil=True, cache=True)
def entry_points(lo, hi, dose_off, dose_t, out_off, t_grid, lam, g, x):
    """For the doses of subjects ``lo..hi-1``: the output index where each enters, ``g``,
    and ``x = -lam (t_g - t_j)`` (4 modes), whose exponentials numpy then takes in place.

    numpy's ``exp`` is vectorised (several values per instruction); a scalar ``exp`` in
    the compiled loop cost about twice as much, and the exponentials are most of the work.
    A dose at or before an output time enters there (``t_j <= t_g``); doses after the last
    output get ``g = n_out`` and are not used on the grid.
    """
    uniform_from_0 = t_grid.shape[0] > 1 and t_grid[0] == 0.0
    h = t_grid[1] if uniform_from_0 else 1.0
    for k in range(2, t_grid.shape[0]):
        if t_grid[k] != k * h:
            uniform_from_0 = False
            break
    for s in range(lo, hi):
        n = out_off[s + 1] - out_off[s]
        k = 0
        for j in range(dose_off[s], dose_off[s + 1]):
            t = dose_t[j]
            if uniform_from_0:  # jump close to the entry point, then settle exactly
                k = min(max(int(math.ceil(t / h)), 0), n)
                while k > 0 and t_grid[k - 1] >= t:
                    k -= 1
            while k < n and t_grid[k] < t:
                k += 1
            g[j] = k
            dt = t_grid[k] - t if k < n else 0.0
            x[j, 0] = -lam[s, 0] * dt
            x[j, 1] = -lam[s, 1] * dt
            x[j, 2] = -lam[s, 2] * dt
            x[j, 3] = -lam[s, 3] * dt


@nb.njit(nogil=True, cache=True, fastmath=True)
def _seg_max(x, lo, hi):
    """Largest of ``x[lo:hi]`` (``fastmath`` lets the compiler vectorise the reduction;
    the values are finite)."""
    best = -np.inf
    for i in range(lo, hi):
        best = max(best, x[i])
    return best


@nb.njit(nogil=True, cache=True, fastmath=True)
def _seg_stats(x, lo, hi):
    """Sum, largest and smallest of ``x[lo:hi]`` (vectorised: the sum's rounding order may
    differ from a plain loop's by an ulp or so)."""
    acc = 0.0
    peak = -np.inf
    trough = np.inf
    for i in range(lo, hi):
        v = x[i]
        acc += v
        peak = max(peak, v)
        trough = min(trough, v)
    return acc, peak, trough


@nb.njit(nogil=True, cache=True)
def _first_at_or_after(t_grid, n, t):
    """First index ``k < n`` with ``t_grid[k] >= t`` (``n`` if none), by bisection."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if t_grid[mid] < t:
            lo = mid + 1
        else:
            hi = mid
    return lo


@nb.njit(nogil=True, cache=True)
def _state_at(pt, k_prev, t_grid, st, rates, j, je, dose_t, dose_mg, out):
    """Mode states at time ``pt`` from the states ``st`` at ``t_grid[k_prev]`` (or from
    nothing when ``k_prev < 0``) plus the doses ``j..`` at or before ``pt``."""
    for i in range(4):
        out[i] = st[i] * math.exp(-rates[i] * (pt - t_grid[k_prev])) if k_prev >= 0 else 0.0
    while j < je and dose_t[j] <= pt:
        dd = pt - dose_t[j]
        for i in range(4):
            out[i] += dose_mg[j] * math.exp(-rates[i] * dd)
        j += 1


@nb.njit(nogil=True, cache=True)
def propagate(  # noqa: C901 - one pass per subject on purpose (registers, one write each)
    lo, hi, dose_off, dose_t, dose_mg, g, ex, out_off, t_grid, uniform, lam, cm, co,
    mg, oh, want_oh, probe, probe_state, cmax, imax, auc,
    want_daily, day_start_s, day_off, day_idx, day_mean, day_peak, day_trough, n_days,
):
    """Propagate subjects ``lo..hi-1`` over their output grid ``t_grid[:n_out]``.

    Per subject ``s``: doses ``dose_off[s]:dose_off[s+1]`` (times sorted, same origin as
    ``t_grid``), entering at output ``g[j]`` with mode increments ``D_j ex[j]``
    (``ex = exp(-lam (t_g - t_j))`` from :func:`entry_points`), exactly as in the closed
    form; outputs written to ``mg[out_off[s]:out_off[s+1]]`` (and ``oh``). Then, from the
    row just written (still in cache): the maximum of MG and its first index and, if
    ``want_daily``, the mean, peak and trough per local calendar day, output ``k`` being in
    day ``d`` when ``(86400 d - day_start_s) / 3600 <= t_k - t_0``. Also the exact MG
    integral over the grid's span and the mode states at the sorted ``probe`` times (any
    time, before, on or after the grid).
    """
    n_probe = probe.shape[1]
    pw = np.empty((4, max(1, t_grid.shape[0])))  # a_i^m, per subject
    st = np.empty(4)
    rates = np.empty(4)
    tmp = np.empty(4)
    for s in range(lo, hi):
        l0 = lam[s, 0]
        l1 = lam[s, 1]
        l2 = lam[s, 2]
        l3 = lam[s, 3]
        for i in range(4):
            rates[i] = lam[s, i]
        c0 = cm[s, 0]
        c1 = cm[s, 1]
        c2 = cm[s, 2]
        d0 = co[s, 0]
        d1 = co[s, 1]
        d2 = co[s, 2]
        d3 = co[s, 3]
        a0 = a1 = a2 = a3 = 1.0
        if uniform and t_grid.shape[0] > 1:
            h = t_grid[1] - t_grid[0]
            a0 = math.exp(-l0 * h)
            a1 = math.exp(-l1 * h)
            a2 = math.exp(-l2 * h)
            a3 = math.exp(-l3 * h)
        pw[0, 0] = pw[1, 0] = pw[2, 0] = pw[3, 0] = 1.0
        have = 1  # powers a^m known for m < have (this subject's)
        j0 = dose_off[s]
        je = dose_off[s + 1]
        j = j0
        base = out_off[s]
        n = out_off[s + 1] - base
        s0 = s1 = s2 = s3 = 0.0
        e0 = e1 = e2 = 0.0  # states at the first output (for the integral)
        p = 0
        kp = _first_at_or_after(t_grid, n, probe[s, 0]) if n_probe else n
        kd = g[j] if j < je else n
        nxt = min(kp, kd)  # the next output index where something happens
        k = 0
        while k < n:
            if k == nxt or (not uniform and k > 0):
                # states are those of t_{k-1}: probes in (t_{k-1}, t_k] first
                p_before = p
                while p < n_probe and probe[s, p] <= t_grid[k]:
                    st[0] = s0
                    st[1] = s1
                    st[2] = s2
                    st[3] = s3
                    _state_at(probe[s, p], k - 1, t_grid, st, rates, j if k > 0 else j0, je,
                              dose_t, dose_mg, tmp)
                    for i in range(4):
                        probe_state[s, p, i] = tmp[i]
                    p += 1
                if p != p_before:
                    kp = _first_at_or_after(t_grid, n, probe[s, p]) if p < n_probe else n
                if k > 0:
                    if uniform:
                        s0 *= a0
                        s1 *= a1
                        s2 *= a2
                        s3 *= a3
                    else:
                        dk = t_grid[k] - t_grid[k - 1]
                        s0 *= math.exp(-l0 * dk)
                        s1 *= math.exp(-l1 * dk)
                        s2 *= math.exp(-l2 * dk)
                        s3 *= math.exp(-l3 * dk)
                while j < je and g[j] == k:
                    dm = dose_mg[j]
                    s0 += dm * ex[j, 0]
                    s1 += dm * ex[j, 1]
                    s2 += dm * ex[j, 2]
                    s3 += dm * ex[j, 3]
                    j += 1
                kd = g[j] if j < je else n
                nxt = min(kp, kd)
                s0 = s0 if s0 >= TINY else 0.0
                s1 = s1 if s1 >= TINY else 0.0
                s2 = s2 if s2 >= TINY else 0.0
                s3 = s3 if s3 >= TINY else 0.0
            if k == 0:
                e0 = s0
                e1 = s1
                e2 = s2
            # until the next event the states are geometric: S a^m, written from a table of
            # powers without a loop-carried dependency (vectorised by the compiler)
            end = min(nxt, n) if uniform else k + 1
            seg = end - k
            while have < seg:
                for i in range(4):
                    v = pw[i, have - 1] * (a0 if i == 0 else a1 if i == 1 else a2 if i == 2
                                           else a3)
                    pw[i, have] = v if v >= TINY else 0.0
                have += 1
            w0 = c0 * s0
            w1 = c1 * s1
            w2 = c2 * s2
            if want_oh:
                u0 = d0 * s0
                u1 = d1 * s1
                u2 = d2 * s2
                u3 = d3 * s3
                for m in range(seg):
                    p0 = pw[0, m]
                    p1 = pw[1, m]
                    p2 = pw[2, m]
                    mg[base + k + m] = w0 * p0 + w1 * p1 + w2 * p2
                    oh[base + k + m] = u0 * p0 + u1 * p1 + u2 * p2 + u3 * pw[3, m]
            else:
                for m in range(seg):
                    mg[base + k + m] = w0 * pw[0, m] + w1 * pw[1, m] + w2 * pw[2, m]
            # states at the last output of the segment
            s0 *= pw[0, seg - 1]
            s1 *= pw[1, seg - 1]
            s2 *= pw[2, seg - 1]
            s3 *= pw[3, seg - 1]
            s0 = s0 if s0 >= TINY else 0.0
            s1 = s1 if s1 >= TINY else 0.0
            s2 = s2 if s2 >= TINY else 0.0
            s3 = s3 if s3 >= TINY else 0.0
            k = end
        # doses that entered after the first output (for the integral)
        dose_sum = 0.0
        for jj in range(j0, j):
            if g[jj] > 0:
                dose_sum += dose_mg[jj]
        # probes after the last output time
        if p < n_probe:
            st[0] = s0
            st[1] = s1
            st[2] = s2
            st[3] = s3
            while p < n_probe:
                _state_at(probe[s, p], n - 1, t_grid, st, rates, j if n > 0 else j0, je, dose_t,
                          dose_mg, tmp)
                for i in range(4):
                    probe_state[s, p, i] = tmp[i]
                p += 1
        # dS/dt = -lam S between doses, +D at each: integral = (S(t0) + doses - S(tn)) / lam
        auc[s] = (c0 * (e0 + dose_sum - s0) / l0 + c1 * (e1 + dose_sum - s1) / l1
                  + c2 * (e2 + dose_sum - s2) / l2) if n > 0 else 0.0
        # from the row just written (still in cache): maximum, then the days
        best = _seg_max(mg, base, base + n)
        ibest = 0
        while ibest < n - 1 and mg[base + ibest] != best:  # its first time
            ibest += 1
        cmax[s] = best if n > 0 else 0.0
        imax[s] = ibest if n > 0 else -1
        if want_daily:  # the grid starts at 0 here (cohort_exposure)
            dbase = day_off[s]
            dcap = day_off[s + 1] - dbase
            nd = 0
            day = 0
            k = 0
            while k < n:
                next_b = (86400.0 * (day + 1) - day_start_s[s]) / 3600.0
                while t_grid[k] >= next_b:
                    day += 1
                    next_b = (86400.0 * (day + 1) - day_start_s[s]) / 3600.0
                k2 = _first_at_or_after(t_grid, n, next_b)  # first output of a later day
                acc, peak, trough = _seg_stats(mg, base + k, base + k2)
                if nd < dcap:
                    day_idx[dbase + nd] = day
                    day_mean[dbase + nd] = acc / (k2 - k)
                    day_peak[dbase + nd] = peak
                    day_trough[dbase + nd] = trough
                    nd += 1
                k = k2
            n_days[s] = nd


@nb.njit(nogil=True, cache=True)
def _tail(w0, w1, w2, l0, l1, l2, x):
    e0 = w0 * math.exp(-l0 * x)
    e1 = w1 * math.exp(-l1 * x)
    e2 = w2 * math.exp(-l2 * x)
    return e0 + e1 + e2, -(l0 * e0 + l1 * e1 + l2 * e2)


@nb.njit(nogil=True, cache=True)
def washout(lam, w, target, grid, out):
    """Hours after the last dose until ``sum_i w_i exp(-lam_i t)`` stays at or below target.

    For each subject: the last point of ``grid`` where the course is above ``target`` (the
    search starts where an upper bound, ``sum_i |w_i| exp(-lam_i t)``, is already below it,
    so only a few grid points are evaluated), then the crossing in the next grid interval by
    safeguarded Newton steps (bisection when a step leaves the bracket), to 1e-12 relative.
    0 when the course is never above target on the grid; the grid's end if it still is there.
    """
    ng = grid.shape[0]
    for s in range(lam.shape[0]):
        tg = target[s]
        if not tg > 0.0:
            out[s] = np.nan
            continue
        l0 = lam[s, 0]
        l1 = lam[s, 1]
        l2 = lam[s, 2]
        w0 = w[s, 0]
        w1 = w[s, 1]
        w2 = w[s, 2]
        # beyond t_star every term is below tg / 3, so the sum is below tg
        t_star = 0.0
        if 3.0 * abs(w0) > tg:
            t_star = max(t_star, math.log(3.0 * abs(w0) / tg) / l0)
        if 3.0 * abs(w1) > tg:
            t_star = max(t_star, math.log(3.0 * abs(w1) / tg) / l1)
        if 3.0 * abs(w2) > tg:
            t_star = max(t_star, math.log(3.0 * abs(w2) / tg) / l2)
        g = np.searchsorted(grid, t_star)
        if g > ng - 1:
            g = ng - 1
        last = -1
        while g >= 0:
            c, _ = _tail(w0, w1, w2, l0, l1, l2, grid[g])
            if c > tg:
                last = g
                break
            g -= 1
        if last < 0:
            out[s] = 0.0
            continue
        if last == ng - 1:
            out[s] = grid[last]
            continue
        lo_t = grid[last]
        hi_t = grid[last + 1]
        x = 0.5 * (lo_t + hi_t)
        for _ in range(200):
            c, dc = _tail(w0, w1, w2, l0, l1, l2, x)
            f = c - tg
            if f > 0.0:
                lo_t = x
            else:
                hi_t = x
            if dc < 0.0:
                xn = x - f / dc
            else:
                xn = 0.5 * (lo_t + hi_t)
            if not (lo_t < xn < hi_t):
                xn = 0.5 * (lo_t + hi_t)
            if abs(xn - x) <= 1e-12 * max(1.0, x) or hi_t - lo_t <= 1e-12 * max(1.0, hi_t):
                x = xn
                break
            x = xn
        out[s] = x


@nb.njit(nogil=True, cache=True)
def steady_state_doses(c, q, target, n_max, out):
    """Smallest ``n`` in ``1..n_max`` whose trough ``sum_i c_i q_i (1 - q_i^n) / (1 - q_i)``
    reaches ``target`` (1 if none does), per subject (see ``time_to_steady_state_h``)."""
    for s in range(c.shape[0]):
        out[s] = 1
        for n in range(1, n_max + 1):
            trough = 0.0
            for i in range(c.shape[1]):
                trough += c[s, i] * q[s, i] * (1.0 - q[s, i] ** n) / (1.0 - q[s, i])
            if trough >= target[s]:
                out[s] = n
                break


def run_propagate(dose_off, dose_t, dose_mg, out_off, t_grid, lam, cm, co, *, hydroxy=True,
                  probe=None, day_start_s=None, day_off=None, workers=None):
    """Run :func:`propagate` over all subjects in blocks on ``workers`` threads.

    ``lam`` (n, 4), ``cm`` (n, 3), ``co`` (n, 4): rates and MG / 7-OH coefficients per subject.
    Returns a dict of the output arrays (``mg``, ``oh`` or None, ``probe_state``, ``cmax``,
    ``imax``, ``auc`` and, when ``day_start_s`` is given, the daily arrays with ``n_days``).
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    n = lam.shape[0]
    total = int(out_off[-1])
    t_grid = np.ascontiguousarray(t_grid, dtype=np.float64)
    dts = np.diff(t_grid)
    uniform = bool(dts.size == 0 or (dts[0] > 0 and np.allclose(dts, dts[0], rtol=1e-9, atol=0)))
    mg = np.empty(total)
    oh = np.empty(total) if hydroxy else np.empty(0)
    if probe is None:
        probe = np.zeros((n, 0))
    probe_state = np.empty((n, probe.shape[1], 4))
    cmax = np.empty(n)
    imax = np.empty(n, dtype=np.int64)
    auc = np.empty(n)
    want_daily = day_start_s is not None
    if want_daily:
        cap = int(day_off[-1])
        day_idx = np.empty(cap, dtype=np.int64)
        day_mean, day_peak, day_trough = np.empty(cap), np.empty(cap), np.empty(cap)
        n_days = np.zeros(n, dtype=np.int64)
    else:
        day_start_s = np.zeros(n)
        day_off = np.zeros(n + 1, dtype=np.int64)
        day_idx = np.empty(0, dtype=np.int64)
        day_mean = day_peak = day_trough = np.empty(0)
        n_days = np.zeros(n, dtype=np.int64)
    g = np.empty(dose_t.shape[0], dtype=np.int64)
    ex = np.empty((dose_t.shape[0], 4))
    args = (dose_off, dose_t, dose_mg, g, ex, out_off, t_grid, uniform, lam, cm, co, mg, oh,
            hydroxy, probe, probe_state, cmax, imax, auc, want_daily, day_start_s, day_off,
            day_idx, day_mean, day_peak, day_trough, n_days)

    def block(lo: int, hi: int) -> None:
        entry_points(lo, hi, dose_off, dose_t, out_off, t_grid, lam, g, ex)
        rows = ex[dose_off[lo]:dose_off[hi]]
        np.exp(rows, out=rows)
        propagate(lo, hi, *args)

    workers = workers or min(2, os.cpu_count() or 1)
    # about 8 blocks per thread balances subjects of unequal length; a block writes one
    # contiguous stretch of the output
    n_blocks = 1 if workers == 1 else min(n, 8 * workers if n > 4096 else workers)
    edges = np.linspace(0, n, n_blocks + 1).astype(np.int64)
    if n_blocks > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda b: block(int(edges[b]), int(edges[b + 1])), range(n_blocks)))
    elif n:
        block(0, n)
    out = {"mg": mg, "oh": oh if hydroxy else None, "probe_state": probe_state, "cmax": cmax,
           "imax": imax, "auc": auc}
    if want_daily:
        out.update(day_idx=day_idx, day_mean=day_mean, day_peak=day_peak,
                   day_trough=day_trough, n_days=n_days)
    return out
