"""Benchmark: the cross-subject exposure engine vs general ODE solvers, the memory floor and I/O.

Case S1 (issue 18): N subjects (default 100,000), each with their own 84 dose times (08:00,
14:00 and 20:00, each dose moved by a uniform -2..+2 h, 28 days) and amounts (5 g leaf at the
subject's own 1.0-2.0 %), their own parameters (drawn from the population model), hourly
output (673 times), MG and 7-OH, through :func:`speciosa.pharmacology.cohort.cohort_exposure`
(every extra too: daily mean/peak/trough, Cmax, AUC, washout). Baselines in the same run, the
way general tools do it (one subject at a time, restarting at each dose, rtol 1e-6,
atol 1e-9): ``scipy.integrate.solve_ivp`` (LSODA), diffsol's Python binding (``pydiffsol``,
Tsit45 and BDF) and libRoadRunner (CVODE), each timed on a sample of subjects and
extrapolated to N (said so in the output); and the memory floor, the time to write the two
output arrays at this machine's bandwidth measured in the same run. Peak memory of the
engine call is traced (tracemalloc sees numpy's allocations).

Command case (``--command``): the S1 dose log written as a CSV (N x 84 rows) and
``speciosa exposure S1.csv --typical --start ... --end ... --out S1.parquet`` run as a user
runs it (a new process), against the I/O floor: pyarrow alone reading that CSV and writing a
Parquet file of the output's size (the command's own output table, read back first).

Browser case: one patient, 1,000 virtual patients, 90 days of doses, hourly.

Run: ``.venv/bin/python benchmarks/bench_exposure.py [--subjects N] [--command]``. Peers
come from the ``bench`` extra; a peer that is not installed is reported as such, not faked.
It is not a test: it prints times and ratios. The machine has 2 cores shared with other
work: run it when the load average is low, and read the load it prints.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp

from speciosa.pharmacology import Dose, patient_exposure
from speciosa.pharmacology.cohort import cohort_exposure, offsets_from_counts
from speciosa.pharmacology.exposure import _percentiles
from speciosa.pharmacology.model import TYPICAL, sample_population, simulate

R = 414.5 / 398.5


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def case(n: int, seed: int = 0):
    """S1: per-subject dose times (sorted), amounts, parameters; hourly grid over 28 days."""
    rng = np.random.default_rng(seed)
    base = np.arange(28)[:, None] * 24.0 + np.array([8.0, 14.0, 20.0])[None, :]
    times = np.sort((base.ravel()[None, :] + rng.uniform(-2.0, 2.0, (n, base.size))), axis=1)
    pop = sample_population(n, rng)
    percent = rng.uniform(1.0, 2.0, n)
    doses = np.repeat((5.0 * 10.0 * percent)[:, None], base.size, axis=1)  # 5 g x %
    t_out = np.arange(0.0, 28 * 24 + 1.0, 1.0)
    return times, doses, t_out, pop, percent


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
        tms = times[i]
        ka, cl, vc, q, vp, km, clm = params_of(pop, i)

        def rhs(_t, x, ka=ka, cl=cl, vc=vc, q=q, vp=vp, km=km):
            g, c, p, m = x
            return [-ka * g, ka * g - (cl + q) / vc * c + q / vp * p,
                    q / vc * c - q / vp * p, cl / vc * c - km * m]

        x = np.zeros(4)
        out = np.zeros((2, t_out.size))
        k = 0
        for j, (a, b, te) in enumerate(intervals(tms, t_out)):
            if j:
                x[0] += doses[i, j - 1]
            ev = np.r_[te[te > a], b]
            sol = solve_ivp(rhs, (a, b), x, method="LSODA", t_eval=ev, rtol=1e-6, atol=1e-9)
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
        for j, (a, b, te) in enumerate(intervals(times[i], t_out)):
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
        for j, (a, b, te) in enumerate(intervals(times[i], t_out)):
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


def floor_seconds(n_rows: int, n_cols: int, columns: int, workers: int) -> tuple[float, float]:
    """(fresh allocation + write, write into already-touched memory) of ``columns`` float64
    arrays, written by ``workers`` threads in halves (numpy releases the GIL), as the engine
    writes its output."""
    def write(arrays):
        parts = [p for a in arrays for p in np.array_split(a.reshape(-1), workers)]
        with ThreadPoolExecutor(workers) as ex:
            list(ex.map(lambda p: np.copyto(p, 1.0), parts))

    def fresh():
        write([np.empty((n_rows, n_cols)) for _ in range(columns)])

    warm = [np.zeros((n_rows, n_cols)) for _ in range(columns)]
    return best_of(fresh), best_of(lambda: write(warm))


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


def versions() -> str:
    out = []
    for name in ("numpy", "scipy", "numba", "pyarrow", "pydiffsol", "libroadrunner"):
        try:
            out.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{name} NOT INSTALLED")
    return ", ".join(out)


def engine_case(args) -> None:
    n = args.subjects
    times, doses, t_out, pop, _ = case(n)
    counts = np.full(n, times.shape[1])
    off = offsets_from_counts(counts)
    flat_t, flat_d = times.ravel(), doses.ravel()
    print(f"case S1: {n} subjects x {times.shape[1]} own dose times (08/14/20 h +-2 h, 28 days),"
          f" own amounts and parameters, {t_out.size} hourly outputs, MG + 7-OH")

    def ours_run(params=pop):
        return cohort_exposure(off, flat_t, flat_d, t_out.size, params=params)

    sub = slice(0, 2000)
    cohort_exposure(off[:2001], times[sub].ravel(), doses[sub].ravel(), t_out.size,
                    params={k: v[sub] for k, v in pop.items()})  # warm-up (and compile)
    ours = best_of(ours_run)
    ours_typ = best_of(lambda: ours_run(TYPICAL))
    tracemalloc.start()
    c = ours_run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out_bytes = c.mitragynine_ng_per_ml.nbytes + c.hydroxymitragynine_ng_per_ml.nbytes
    print(f"ours (cohort_exposure, everything):  {ours:.3f} s ({ours / n * 1e6:.2f} us/subject);"
          f" typical parameters {ours_typ:.3f} s")
    print(f"peak memory of the call (tracemalloc): {peak / 2**20:.0f} MiB, of which output "
          f"{out_bytes / 2**20:.0f} MiB; process max RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")

    workers = min(2, os.cpu_count() or 1)
    fresh, warm = floor_seconds(t_out.size, n, 2, workers)
    print(f"memory floor, 2 float64 arrays of {t_out.size} x {n} by {workers} threads: "
          f"allocate+write {fresh:.3f} s, rewrite touched memory {warm:.3f} s "
          f"({out_bytes / warm / 1e9:.1f} GB/s)")

    mg0 = c.subject(0)["mitragynine_ng_per_ml"]
    rows = []
    idx = np.arange(args.scipy_subset)
    t_scipy = best_of(lambda: run_scipy(times, doses, t_out, pop, idx), 1) / idx.size
    ref = run_scipy(times, doses, t_out, pop, [0])
    rows.append(("scipy solve_ivp (LSODA)", t_scipy, idx.size))
    print(f"solve_ivp LSODA: {t_scipy * 1e3:.1f} ms/subject (timed on {idx.size} subjects, "
          f"extrapolated); max deviation from ours {np.max(np.abs(mg0 - ref[0])) / mg0.max():.1e}"
          " of peak (its rtol 1e-6)")
    peers = {}
    try:
        for solver in ("tsit45", "bdf"):
            ode = make_diffsol(solver)
            idx = np.arange(args.diffsol_subset)
            t_ds = best_of(lambda ode=ode, idx=idx: run_diffsol(ode, times, doses, t_out, pop,
                                                                 idx), 1) / idx.size
            rows.append((f"diffsol {solver} (pydiffsol)", t_ds, idx.size))
            peers[solver] = t_ds
        chk = run_diffsol(make_diffsol("tsit45"), times, doses, t_out, pop, [0])
        print(f"diffsol tsit45 max deviation from ours: "
              f"{np.max(np.abs(mg0 - chk[0])) / mg0.max():.1e} of peak")
    except ImportError as exc:
        print(f"diffsol: NOT INSTALLED ({exc}); pip install '.[bench]'")
    try:
        import roadrunner

        rr = roadrunner.RoadRunner(SBML)
        idx = np.arange(args.roadrunner_subset)
        t_rr = best_of(lambda: run_roadrunner(rr, times, doses, t_out, pop, idx), 1) / idx.size
        rows.append(("libRoadRunner (CVODE)", t_rr, idx.size))
        chk = run_roadrunner(rr, times, doses, t_out, pop, [0])
        print(f"roadrunner max deviation from ours: "
              f"{np.max(np.abs(mg0 - chk[0])) / mg0.max():.1e} of peak")
    except ImportError as exc:
        print(f"libRoadRunner: NOT INSTALLED ({exc}); pip install '.[bench]'")

    print()
    print(f"{'method':30s} {'sample':>6s} {'ms/subject':>10s} {'scaled to N (s)':>16s} "
          f"{'ours faster by':>15s}")
    for name, per, k in rows:
        print(f"{name:30s} {k:6d} {per * 1e3:10.2f} {per * n:16.1f} {per * n / ours:14.0f}x")
    print(f"{'ours (cohort_exposure)':30s} {n:6d} {ours / n * 1e3:10.5f} {ours:16.3f} "
          f"{'1':>14s}x")
    print()
    r_scipy = t_scipy * n / ours
    print(f"target >= 1000x solve_ivp: {r_scipy:.0f}x -> {'met' if r_scipy >= 1000 else 'MISSED'}")
    if "tsit45" in peers:
        r = peers["tsit45"] * n / ours
        print(f"target >= 300x pydiffsol tsit45: {r:.0f}x -> {'met' if r >= 300 else 'MISSED'}")
    for label, fl in (("allocate+write", fresh), ("rewrite", warm)):
        r = ours / fl
        print(f"target within 5x of the memory floor ({label}): {r:.1f}x -> "
              f"{'met' if r <= 5 else 'MISSED'}")


def write_s1_csv(path: Path, n: int) -> int:
    """The S1 dose log as a CSV, written by pyarrow from arrays; returns the rows."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    times, _doses, _t, _pop, percent = case(n)
    t0 = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
    secs = t0 + np.rint(times.ravel() * 3600).astype(np.int64)
    subj = np.repeat(np.arange(n), times.shape[1])
    text = pc.strftime(pa.array(secs, pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%S")
    table = pa.table({
        "subject": pc.binary_join_element_wise("S", pa.array(subj).cast(pa.string()), ""),
        "taken_at": pc.binary_join_element_wise(text, "Z", ""),
        "amount": pa.array(np.full(subj.size, 5.0)),
        "unit": pa.array(np.full(subj.size, "g")),
        "mitragynine_percent": pa.array(np.round(percent[subj], 3)),
        "grams_per_capsule": pa.nulls(subj.size, pa.float64()),
    })
    pcsv.write_csv(table, path, pcsv.WriteOptions(quoting_style="none"))
    return table.num_rows


def command_case(args) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    n = args.subjects
    with tempfile.TemporaryDirectory(prefix="bench-exposure-") as tmp:
        csv_path, out = Path(tmp) / "S1.csv", Path(tmp) / "S1.parquet"
        rows = write_s1_csv(csv_path, n)
        size = csv_path.stat().st_size
        print(f"command case: {rows} dose rows ({size / 2**20:.0f} MiB CSV), {n} subjects")
        cmd = [sys.executable, "-m", "speciosa.cli", "exposure", str(csv_path), "--typical",
               "--start", "2025-01-01T00:00:00+00:00", "--end", "2025-01-29T00:00:00+00:00",
               "--out", str(out)]
        subprocess.run(cmd, check=True)  # warm the file cache and numba's disk cache
        times = []
        for _ in range(args.command_repeat):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True)
            times.append(time.perf_counter() - t0)
        t_cmd = min(times)
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        table = pq.read_table(out)
        out_size = out.stat().st_size
        t_read = best_of(lambda: pcsv.read_csv(csv_path), args.command_repeat)
        floor_out = Path(tmp) / "floor.parquet"
        t_write = best_of(lambda: pq.write_table(table, floor_out), args.command_repeat)
        floor = t_read + t_write
        print(f"speciosa exposure (new process, CSV -> Parquet, {table.num_rows} output rows, "
              f"{out_size / 2**20:.0f} MiB): {t_cmd:.2f} s; peak RSS of the command "
              f"{rss:.0f} MiB")
        print(f"I/O floor: pyarrow read_csv {t_read:.2f} s + write_table of the same output "
              f"{t_write:.2f} s = {floor:.2f} s")
        r = t_cmd / floor
        print(f"target within 3x of the I/O floor: {r:.1f}x -> {'met' if r <= 3 else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=100_000)
    ap.add_argument("--scipy-subset", type=int, default=20)
    ap.add_argument("--diffsol-subset", type=int, default=200)
    ap.add_argument("--roadrunner-subset", type=int, default=50)
    ap.add_argument("--command", action="store_true", help="also time the whole command")
    ap.add_argument("--command-repeat", type=int, default=2)
    ap.add_argument("--skip-engine", action="store_true")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
          f"(shared with other work), load average {os.getloadavg()[0]:.1f}")
    print(f"versions: {versions()}")
    if not args.skip_engine:
        engine_case(args)
        full, band, sim = browser_case()
        print()
        print("browser case, 1,000 virtual patients x 90 days (270 doses) hourly:")
        print(f"  simulate (MG band)              {sim * 1e3:7.1f} ms")
        print(f"  simulate + 5th/95th percentiles {band * 1e3:7.1f} ms")
        print(f"  patient_exposure (everything: typical, band, washout range, daily) "
              f"{full * 1e3:7.1f} ms")
        print(f"  target < 50 ms for the band: {'met' if band < 0.05 else 'MISSED'}")
    if args.command:
        print()
        command_case(args)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
