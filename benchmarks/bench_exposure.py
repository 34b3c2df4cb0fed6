"""Benchmark: exact closed-form exposure engine vs general ODE solvers and the memory floor.

Population case: N virtual patients (default 100,000), three irregular doses a day for 28 days
(5 g leaf, potency drawn per patient), hourly output (673 times), MG and 7-OH. Baselines, in
the same run, the way general tools do it (one patient at a time, restarting at each dose):
``scipy.integrate.solve_ivp``, diffsol's Python binding (``pydiffsol``, explicit Tsit45 and
BDF) and libRoadRunner, each on a subset and scaled to N; and the memory floor, the time to
allocate and write the output arrays (2 float64 columns) at this machine's bandwidth.
Browser case: one patient, 1,000 virtual patients, 90 days of doses, hourly.

Run: ``.venv/bin/python benchmarks/bench_exposure.py [--subjects N]``. Peers come from the
``bench`` extra; a peer that is not installed is reported as such, not faked. It is not a
test: it prints times and ratios.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from scipy.integrate import solve_ivp

from speciosa.pharmacology import Dose, patient_exposure
from speciosa.pharmacology.exposure import _percentiles
from speciosa.pharmacology.model import sample_population, simulate

R = 414.5 / 398.5


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def case(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    base = np.arange(28)[:, None] * 24.0 + np.array([8.0, 14.0, 21.0])[None, :]
    times = np.sort((base + rng.uniform(-1.5, 1.5, base.shape)).ravel())
    pop = sample_population(n, rng)
    mg_per_dose = 5.0 * 10.0 * rng.uniform(1.0, 2.0, n)  # 5 g x 1.0-2.0 % per patient
    doses = np.repeat(mg_per_dose[:, None], times.size, axis=1)
    t_out = np.arange(0.0, 28 * 24 + 1.0, 1.0)
    return times, doses, t_out, pop


def params_of(pop, i):
    return [float(pop[k][i]) for k in
            ("ka_per_h", "cl_l_per_h", "vc_l", "q_l_per_h", "vp_l", "km_per_h", "clm_l_per_h")]


def intervals(times, t_out):
    """(start, end, output times in [start, end)) for the restart-at-each-dose loop."""
    edges = [t_out[0], *times[times > t_out[0]], t_out[-1] + 1e-9]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        yield a, b, t_out[(t_out >= a) & (t_out < b)]


def _record(out, k, te, a, x, ys_at, vc, km, clm):
    """Write MG and 7-OH at output times ``te`` (state ``x`` at ``a``, solver values after)."""
    n0 = 0
    if te.size and te[0] == a:
        out[0, k], out[1, k] = 1000 * x[1] / vc, 1000 * R * x[3] * km / clm
        n0 = 1
    n = te.size - n0
    if n:
        out[0, k + n0:k + te.size] = 1000 * ys_at[1, :n] / vc
        out[1, k + n0:k + te.size] = 1000 * R * ys_at[3, :n] * km / clm
    return k + te.size


def run_scipy(times, doses, t_out, pop, idx):
    for i in idx:
        ka, cl, vc, q, vp, km, clm = params_of(pop, i)

        def rhs(_t, x, ka=ka, cl=cl, vc=vc, q=q, vp=vp, km=km):
            g, c, p, m = x
            return [-ka * g, ka * g - (cl + q) / vc * c + q / vp * p,
                    q / vc * c - q / vp * p, cl / vc * c - km * m]

        x = np.zeros(4)
        out = np.zeros((2, t_out.size))
        k = 0
        for j, (a, b, te) in enumerate(intervals(times, t_out)):
            if j:
                x[0] += doses[i, j - 1]
            ev = np.r_[te[te > a], b]
            sol = solve_ivp(rhs, (a, b), x, t_eval=ev, rtol=1e-6, atol=1e-9)
            k = _record(out, k, te, a, x, sol.y, vc, km, clm)
            x = sol.y[:, -1].copy()
    return out


DIFFSL = """
in_i { ka = 1, cl = 233, vc = 436, q = 213, vp = 7180, km = 1.22, clm = 925,
       g0 = 0, c0 = 0, p0 = 0, m0 = 0 }
u_i { g = g0, c = c0, p = p0, m = m0 }
F_i {
  -ka * g,
  ka * g - (cl + q) / vc * c + q / vp * p,
  q / vc * c - q / vp * p,
  cl / vc * c - km * m,
}
"""


def make_diffsol(solver_name: str):
    import pydiffsol as ds

    ode = ds.Ode(DIFFSL, ode_solver=getattr(ds, solver_name))
    ode.rtol, ode.atol = 1e-6, 1e-9
    return ode


def run_diffsol(ode, times, doses, t_out, pop, idx):
    for i in idx:
        p = params_of(pop, i)
        x = np.zeros(4)
        out = np.zeros((2, t_out.size))
        k = 0
        for j, (a, b, te) in enumerate(intervals(times, t_out)):
            if j:
                x[0] += doses[i, j - 1]
            ode.t0 = float(a)
            ev = np.r_[te[te > a], b]
            ys = np.asarray(ode.solve_dense(np.array(p + list(x)), ev).ys)
            k = _record(out, k, te, a, x, ys, p[2], p[5], p[6])
            x = ys[:, -1].copy()
    return out


SBML = """<?xml version="1.0" encoding="UTF-8"?>
<sbml xmlns="http://www.sbml.org/sbml/level3/version1/core" level="3" version="1">
 <model id="mg7oh">
  <listOfParameters>
   <parameter id="ka" value="1" constant="true"/><parameter id="cl" value="233.5" constant="true"/>
   <parameter id="vc" value="436" constant="true"/><parameter id="q" value="213" constant="true"/>
   <parameter id="vp" value="7180" constant="true"/><parameter id="km" value="1.22" constant="true"/>
   <parameter id="g" value="0" constant="false"/><parameter id="c" value="0" constant="false"/>
   <parameter id="p" value="0" constant="false"/><parameter id="m" value="0" constant="false"/>
  </listOfParameters>
  <listOfRules>
   <rateRule variable="g"><math xmlns="http://www.w3.org/1998/Math/MathML"><apply><times/>
    <cn>-1</cn><ci>ka</ci><ci>g</ci></apply></math></rateRule>
   <rateRule variable="c"><math xmlns="http://www.w3.org/1998/Math/MathML"><apply><plus/>
    <apply><times/><ci>ka</ci><ci>g</ci></apply>
    <apply><times/><cn>-1</cn><apply><divide/><apply><plus/><ci>cl</ci><ci>q</ci></apply><ci>vc</ci></apply><ci>c</ci></apply>
    <apply><times/><apply><divide/><ci>q</ci><ci>vp</ci></apply><ci>p</ci></apply></apply></math></rateRule>
   <rateRule variable="p"><math xmlns="http://www.w3.org/1998/Math/MathML"><apply><minus/>
    <apply><times/><apply><divide/><ci>q</ci><ci>vc</ci></apply><ci>c</ci></apply>
    <apply><times/><apply><divide/><ci>q</ci><ci>vp</ci></apply><ci>p</ci></apply></apply></math></rateRule>
   <rateRule variable="m"><math xmlns="http://www.w3.org/1998/Math/MathML"><apply><minus/>
    <apply><times/><apply><divide/><ci>cl</ci><ci>vc</ci></apply><ci>c</ci></apply>
    <apply><times/><ci>km</ci><ci>m</ci></apply></apply></math></rateRule>
  </listOfRules>
 </model>
</sbml>
"""


def run_roadrunner(rr, times, doses, t_out, pop, idx):
    for i in idx:
        ka, cl, vc, q, vp, km, clm = params_of(pop, i)
        rr.resetAll()
        for name, v in (("ka", ka), ("cl", cl), ("vc", vc), ("q", q), ("vp", vp), ("km", km)):
            rr[name] = v
        out = np.zeros((2, t_out.size))
        k = 0
        for j, (a, b, te) in enumerate(intervals(times, t_out)):
            if j:
                rr["g"] = rr["g"] + doses[i, j - 1]
            pts = np.unique(np.r_[a, te, b])
            res = rr.simulate(times=pts.tolist())
            arr = np.asarray(res)
            cols = {n.strip("[]"): c for c, n in enumerate(res.colnames)}
            if te.size:
                sel = np.isin(pts, te)
                out[0, k:k + te.size] = 1000 * arr[sel, cols["c"]] / vc
                out[1, k:k + te.size] = 1000 * R * arr[sel, cols["m"]] * km / clm
                k += te.size
    return out


def floor_seconds(n_rows: int, n_cols: int, columns: int) -> tuple[float, float]:
    """(fresh allocation + write, write into already-touched memory) for ``columns`` arrays."""
    def fresh():
        for _ in range(columns):
            a = np.empty((n_rows, n_cols))
            a.fill(1.0)

    warm = [np.empty((n_rows, n_cols)) for _ in range(columns)]
    for a in warm:
        a.fill(0.0)

    def rewrite():
        for a in warm:
            a.fill(1.0)

    return best_of(fresh), best_of(rewrite)


def browser_case():
    rng = np.random.default_rng(1)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    doses = [Dose(start + timedelta(days=d, hours=h + rng.uniform(-1.5, 1.5)), 5.0, "g")
             for d in range(90) for h in (8, 14, 21)]
    end = start + timedelta(days=90)
    patient_exposure(doses, start, end)  # warm-up
    full = best_of(lambda: patient_exposure(doses, start, end), 5)
    td = np.array([(d.taken_at - start).total_seconds() / 3600 for d in doses])
    pop = sample_population(1000, 0)
    dm = np.full((1000, td.size), 75.0)
    t_out = np.arange(0.0, 90 * 24 + 1.0)

    def band_only():
        mg, _ = simulate(td, dm, t_out, pop, hydroxy=False)
        _percentiles(mg.T, (5.0, 95.0))  # what patient_exposure uses

    band = best_of(band_only, 5)
    sim = best_of(lambda: simulate(td, dm, t_out, pop, hydroxy=False), 5)
    return full, band, sim


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=100_000)
    ap.add_argument("--scipy-subset", type=int, default=20)
    ap.add_argument("--diffsol-subset", type=int, default=200)
    ap.add_argument("--roadrunner-subset", type=int, default=50)
    args = ap.parse_args()
    n = args.subjects
    print(f"machine: {platform.processor() or platform.machine()}, numpy {np.__version__}")
    times, doses, t_out, pop = case(n)
    print(f"case: {n} virtual patients x {times.size} irregular doses (28 days), "
          f"{t_out.size} hourly outputs, MG + 7-OH")

    simulate(times, doses[:2000], t_out, {k: v[:2000] for k, v in pop.items()})  # warm-up
    ours = best_of(lambda: simulate(times, doses, t_out, pop))
    ours_mg = best_of(lambda: simulate(times, doses, t_out, pop, hydroxy=False))
    per_subject_times = np.broadcast_to(times, (n, times.size))
    ours_general = best_of(lambda: simulate(per_subject_times, doses, t_out, pop), 1)
    print(f"ours (closed form, shared dose times):    {ours:8.3f} s  "
          f"({ours / n * 1e6:.2f} us/patient); MG only {ours_mg:.3f} s")
    print(f"ours (general path, per-patient dose times): {ours_general:8.3f} s")

    fresh, warm = floor_seconds(t_out.size, n, 2)
    print(f"memory floor, 2 float64 columns of {t_out.size} x {n}: allocate+write "
          f"{fresh:.3f} s, rewrite touched memory {warm:.3f} s "
          f"({2 * t_out.size * n * 8 / warm / 1e9:.1f} GB/s)")

    # accuracy against a tight ODE on a few patients
    sub = np.arange(3)
    mg, oh = simulate(times, doses[sub], t_out, {k: v[sub] for k, v in pop.items()})

    rows = []
    idx = np.arange(args.scipy_subset)
    t_scipy = best_of(lambda: run_scipy(times, doses, t_out, pop, idx), 1) / idx.size
    ref = run_scipy(times, doses, t_out, pop, [0])
    err = np.max(np.abs(mg[0] - ref[0])) / ref[0].max()
    rows.append(("scipy solve_ivp (RK45)", t_scipy))
    print(f"solve_ivp: {t_scipy * 1e3:.1f} ms/patient; max deviation from ours "
          f"{err:.1e} of peak (its rtol 1e-6)")

    peers = []
    try:
        for solver in ("tsit45", "bdf"):
            ode = make_diffsol(solver)
            idx = np.arange(args.diffsol_subset)
            t_ds = best_of(lambda ode=ode, idx=idx: run_diffsol(ode, times, doses, t_out, pop,
                                                                 idx), 1) / idx.size
            rows.append((f"diffsol {solver} (pydiffsol)", t_ds))
            peers.append(t_ds)
        chk = run_diffsol(make_diffsol("tsit45"), times, doses, t_out, pop, [0])
        print(f"diffsol tsit45 max deviation from ours: "
              f"{np.max(np.abs(mg[0] - chk[0])) / mg[0].max():.1e} of peak")
    except ImportError as exc:
        print(f"diffsol: NOT INSTALLED ({exc}); pip install '.[bench]'")
    try:
        import roadrunner

        rr = roadrunner.RoadRunner(SBML)
        idx = np.arange(args.roadrunner_subset)
        t_rr = best_of(lambda: run_roadrunner(rr, times, doses, t_out, pop, idx), 1) / idx.size
        rows.append(("libRoadRunner (CVODE)", t_rr))
        peers.append(t_rr)
        chk = run_roadrunner(rr, times, doses, t_out, pop, [0])
        print(f"roadrunner max deviation from ours: "
              f"{np.max(np.abs(mg[0] - chk[0])) / mg[0].max():.1e} of peak")
    except ImportError as exc:
        print(f"libRoadRunner: NOT INSTALLED ({exc}); pip install '.[bench]'")

    print()
    print(f"{'method':34s} {'ms/patient':>10s} {'scaled to N (s)':>16s} {'ours faster by':>15s}")
    for name, per in rows:
        print(f"{name:34s} {per * 1e3:10.2f} {per * n:16.1f} {per * n / ours:14.0f}x")
    print(f"{'ours':34s} {ours / n * 1e3:10.5f} {ours:16.3f} {'1':>14s}x")
    print()
    r_scipy = t_scipy * n / ours
    print(f"target >= 1000x solve_ivp: {r_scipy:.0f}x -> {'met' if r_scipy >= 1000 else 'MISSED'}")
    if peers:
        r_peer = min(peers) * n / ours
        print(f"target >= 100x fastest peer: {r_peer:.0f}x -> "
              f"{'met' if r_peer >= 100 else 'MISSED'}")
    for label, fl in (("allocate+write", fresh), ("rewrite", warm)):
        r = ours / fl
        print(f"target within 10x of memory floor ({label}): {r:.1f}x -> "
              f"{'met' if r <= 10 else 'MISSED'}")

    full, band, sim = browser_case()
    print()
    print("browser case, 1,000 virtual patients x 90 days (270 doses) hourly:")
    print(f"  simulate (MG band)              {sim * 1e3:7.1f} ms")
    print(f"  simulate + 5th/95th percentiles {band * 1e3:7.1f} ms")
    print(f"  patient_exposure (everything: typical, band, washout range, daily) "
          f"{full * 1e3:7.1f} ms")
    print(f"  target < 50 ms for the band: {'met' if band < 0.05 else 'MISSED'}")


if __name__ == "__main__":
    main()
