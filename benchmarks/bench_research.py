"""Benchmark: the de-identified research export of the demo clinic, against the floor of
reading the same rows from the database, measured in the same run.

Usage::

    .venv/bin/python benchmarks/bench_research.py [--patients 100] [--days 200] [--repeat 3]
    .venv/bin/python benchmarks/bench_research.py --bulk --patients 10000 --repeat 1 [--keep]

A throw-away SQLite database in a temporary folder (or, with ``DATABASE_URL``, the database it
names: give it a throw-away one). The synthetic demo clinic is generated into it with every
patient consented to research.

``--bulk`` (issue 18: "the research export of a 10,000-patient clinic with a year each"): the
PostgreSQL database ``speciosa_research`` on ``DATABASE_URL``'s server (created, dropped at the
end unless ``--keep``; ``--reuse`` takes a kept one) gets the clinic of ``benchmarks/bench_sweep.py``
(``--patients`` patients, a year of diaries each, three sites, loaded with ``COPY``; the demo
builder would take hours) and a signed research consent for every patient. It prints the share of
the export that the daily exposure takes (the cohort path,
``speciosa.pharmacology.cohort.daily_mitragynine_totals``, one call for the cohort) and, for
comparison, the per-patient path (``daily_mitragynine_mg`` once per patient) on the same doses.

What is timed (best of ``--repeat``; wall time and this process's CPU time)
---------------------------------------------------------------------------
- **whole export**: :func:`speciosa.research.dataset.write_streamed`, what ``speciosa export
  research`` does (less its audit entry): the k-anonymity step first, then a chunk of patients
  at a time read, placed on the patients' time axes, the daily exposure, the tables, and
  written (Parquet row groups and CSV), then the dictionary and report. Its steps are timed
  apart (**build** is everything but **write**); the peak memory is the process's after it.
- **read floor**: the export's queries (consent, patients, current doses, diary days,
  current assessments, current labs) materialised as ``values()`` rows, a chunk of patients
  at a time; nothing else. No export can be faster than reading what it exports.

It prints times, rows and the ratio whole export / read floor. It is not a test.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

KEY = b"benchmark-research-key-0123456789"


def _setup() -> None:
    if "DATABASE_URL" not in os.environ:
        os.environ["SPECIOSA_DATA_DIR"] = tempfile.mkdtemp(prefix="speciosa-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "speciosa.settings")
    # a throw-away key for the benchmark's own database (production requires a real one)
    os.environ.setdefault("SPECIOSA_SECRET_KEY", "benchmark-only-" + "x" * 40)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import django

    django.setup()


def _chunks(ids: list[int]):
    from speciosa.research.dataset import CHUNK_PATIENTS

    for start in range(0, len(ids), CHUNK_PATIENTS):
        yield ids[start:start + CHUNK_PATIENTS]


def read_floor() -> int:
    """Every row the export reads, as ``values()`` rows, a chunk of patients at a time (as
    the export reads them; all at once, 10,000 patients' rows would not fit in memory)."""
    from speciosa.clinic.models import Assessment, Consent, DiaryDay, Dose, LabResult, Patient

    ids = sorted(Consent.objects.filter(kind="research", given=True)
                 .values_list("patient_id", flat=True).distinct())
    n = len(list(Patient.objects.filter(pk__in=ids).select_related("site").values()))
    for chunk in _chunks(ids):
        n += len(list(Dose.objects.current().filter(patient_id__in=chunk).values()))
        n += len(list(DiaryDay.objects.filter(patient_id__in=chunk).values_list("patient_id", "day")))
        n += len(list(Assessment.objects.current().filter(patient_id__in=chunk).values()))
        n += len(list(LabResult.objects.current().filter(patient_id__in=chunk).values()))
    return n


BULK_DB = "speciosa_research"


def _bulk_setup(reuse: bool) -> None:
    """The bulk database on PostgreSQL (fresh unless ``reuse``), and Django on it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_sweep import _pg_admin, _pg_base_url

    if not re.fullmatch(r"speciosa_research\w*", BULK_DB):  # never the coordinator's databases
        raise SystemExit(f"--db must start with speciosa_research, not {BULK_DB!r}")

    if not reuse:
        _pg_admin(f"DROP DATABASE IF EXISTS {BULK_DB} WITH (FORCE)")
        _pg_admin(f"CREATE DATABASE {BULK_DB}")
    os.environ["DATABASE_URL"] = _pg_base_url() + BULK_DB
    _setup()


def _drop_bulk() -> None:
    from bench_sweep import _pg_admin
    from django.db import connections

    connections.close_all()
    _pg_admin(f"DROP DATABASE IF EXISTS {BULK_DB} WITH (FORCE)")


def _consent_everyone() -> int:
    """A signed (paper) research consent for every patient, written in bulk."""
    from django.utils import timezone

    from speciosa.clinic.models import Consent, ConsentDocument, ConsentSignature, Patient, Site

    now = timezone.now()
    docs = {}
    for site in Site.objects.all():  # the site's current research document (seeded with the site)
        docs[site.pk] = (ConsentDocument.objects.filter(site=site, kind="research").order_by("-version").first()
                         or ConsentDocument.objects.create(site=site, kind="research", version=1,
                                                           title="Research use (benchmark)", body="Benchmark."))
    patients = list(Patient.objects.values_list("pk", "site_id", "given_name", "family_name"))
    signatures = ConsentSignature.objects.bulk_create(
        [ConsentSignature(patient_id=pk, document=docs[site], source="paper", typed_name=f"{g} {f}",
                          signed_on=now.date(), signed_at=now) for pk, site, g, f in patients],
        batch_size=5000)
    Consent.objects.bulk_create(
        [Consent(patient_id=sig.patient_id, kind="research", given=True, at=now, signature=sig)
         for sig in signatures], batch_size=5000)
    return len(signatures)


def per_patient_exposure(ds) -> tuple[float, int]:
    """Seconds of the per-patient path (``daily_mitragynine_mg`` once per patient, on Dose
    objects made beforehand, not timed, a chunk of patients at a time) for the exported
    doses; and the patient-days."""
    from speciosa.clinic.models import Dose, Patient
    from speciosa.pharmacology import doses as pdoses

    tz = {pk: ZoneInfo(zone) for pk, zone in Patient.objects.values_list("pk", "site__time_zone")}
    seconds, days = 0.0, 0
    for chunk in _chunks(ds.patient_pks):
        by_patient: dict[int, list] = {}
        for d in (Dose.objects.current().filter(patient_id__in=chunk).order_by("patient_id", "taken_at", "id")
                  .values("patient_id", "taken_at", "amount", "unit", "mitragynine_percent", "grams_per_capsule")):
            by_patient.setdefault(d["patient_id"], []).append(pdoses.Dose(
                taken_at=d["taken_at"], amount=float(d["amount"]), unit=d["unit"],
                mitragynine_percent=None if d["mitragynine_percent"] is None else float(d["mitragynine_percent"]),
                grams_per_capsule=None if d["grams_per_capsule"] is None else float(d["grams_per_capsule"])))
        t0 = time.perf_counter()
        days += sum(len(pdoses.daily_mitragynine_mg(doses, tz[pid])) for pid, doses in by_patient.items())
        seconds += time.perf_counter() - t0
    return seconds, days


def _timed(fn):
    """(wall s, CPU s of this process, result) of ``fn()``."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - t0, time.process_time() - c0, result


def main(argv: list[str] | None = None) -> int:
    global BULK_DB
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--days", type=int, default=200, help="demo clinic only (--bulk: a year)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bulk", action="store_true",
                        help="PostgreSQL, the sweep benchmark's generated clinic (a year each)")
    parser.add_argument("--keep", action="store_true", help="--bulk: keep the database")
    parser.add_argument("--reuse", action="store_true", help="--bulk: reuse a kept database")
    parser.add_argument("--db", default=BULK_DB,
                        help="--bulk: database name (speciosa_research...; one per clinic size)")
    parser.add_argument("--generate-only", action="store_true",
                        help="--bulk: generate the clinic and stop (with --keep, for --reuse)")
    args = parser.parse_args(argv)
    BULK_DB = args.db
    print(f"Load average before: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)", flush=True)
    if args.bulk:
        _bulk_setup(args.reuse)
        try:
            return _run(args)
        finally:
            if not (args.keep or args.reuse):
                _drop_bulk()
    _setup()
    return _run(args)


def _run(args) -> int:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from speciosa import demo
    from speciosa.clinic.models import Consent
    from speciosa.research import dataset, deid

    t0 = time.perf_counter()
    if args.bulk and args.reuse:
        print(f"clinic: reusing {BULK_DB}")
    elif args.bulk:
        from bench_sweep import generate

        counts = generate(args.patients, "full")
        n = _consent_everyone()
        print(f"clinic: {args.patients:,} patients x 365 days ({sum(counts.values()):,} rows; "
              f"{counts['clinic_dose']:,} doses), {n:,} research consents, in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        if args.generate_only:
            return 0
    else:
        demo.build_demo_clinic(n_patients=args.patients, days=args.days)
        Consent.objects.filter(kind="research").update(given=True)
        print(f"demo clinic: {args.patients} patients x {args.days} days in "
              f"{time.perf_counter() - t0:.1f} s")
    out = Path(tempfile.mkdtemp(prefix="speciosa-bench-export-"))
    runs = []
    for _ in range(args.repeat):  # the whole export as `speciosa export research` makes it
        load = os.getloadavg()[0]
        target = out / f"run-{time.perf_counter_ns()}"
        runs.append((*_timed(lambda: dataset.write_streamed(deid.Deidentifier(KEY), target)), load))  # noqa: B023
    whole, whole_cpu, (ds, _files), load_export = min(runs, key=lambda r: r[0])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    floor_runs = [_timed(read_floor) for _ in range(args.repeat)]
    floor_s, floor_cpu, rows = min(floor_runs, key=lambda r: r[0])
    exported = sum(ds.counts.values())
    write_s = ds.timings.get("write", 0.0)
    build_s = whole - write_s
    print(f"rows read: {rows:,}; rows exported: {exported:,} ({ds.counts})")
    print(f"k = {ds.report['k_anonymity']['k']}; patients {ds.report['patients']}")
    print(f"whole export (streamed, chunks of {dataset.CHUNK_PATIENTS} patients) {whole:.2f} s wall, "
          f"{whole_cpu:.2f} s CPU of this process (load average at its start {load_export:.1f}); "
          f"build {build_s:.2f} s, write {write_s:.2f} s; "
          f"{exported / whole:,.0f} exported rows per second")
    print(f"read floor {floor_s:.2f} s wall, {floor_cpu:.2f} s CPU; whole export / read floor: "
          f"{whole / floor_s:.2f}x wall, {whole_cpu / floor_cpu:.2f}x CPU")
    print("steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in ds.timings.items()))
    exposure_s = ds.timings.get("daily exposure (cohort path)", 0.0)
    print(f"daily exposure (cohort path, {ds.counts.get('daily_exposure', 0):,} patient-days): "
          f"{exposure_s:.3f} s = {100 * exposure_s / whole:.1f} % of the whole export")
    old_s, days = per_patient_exposure(ds)
    print(f"per-patient path on the same doses ({len(ds.patient_pks):,} calls of daily_mitragynine_mg, "
          f"{days:,} patient-days): {old_s:.3f} s ({old_s / max(exposure_s, 1e-9):.0f}x the cohort path)")
    print(f"peak memory of the export (this process, before the read floor): {peak:,.0f} MiB; "
          f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
