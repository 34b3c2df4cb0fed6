"""Benchmark: the de-identified research export of the demo clinic, against the floor of
reading the same rows from the database, measured in the same run.

Usage::

    .venv/bin/python benchmarks/bench_research.py [--patients 100] [--days 200] [--repeat 3]

A throw-away SQLite database in a temporary folder (or, with ``DATABASE_URL``, the database it
names: give it a throw-away one). The synthetic demo clinic is generated into it with every
patient consented to research.

What is timed (best of ``--repeat``)
------------------------------------
- **read floor**: the export's queries (consent, patients, current doses, diary days,
  current assessments, current labs) materialised as ``values()`` rows; nothing else. No
  export can be faster than reading what it exports.
- **build**: :func:`speciosa.research.dataset.build_dataset` (placing every event on the
  patient's time axis, the daily exposure, the k-anonymity step, the tables).
- **write**: :func:`speciosa.research.dataset.write_dataset` (Parquet, CSV, dictionary,
  report).

It prints times, rows and the ratio build / read floor. It is not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

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


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def read_floor() -> int:
    """Every row the export reads, as ``values()`` rows."""
    from speciosa.clinic.models import Assessment, Consent, DiaryDay, Dose, LabResult, Patient

    ids = list(Consent.objects.filter(kind="research", given=True)
               .values_list("patient_id", flat=True).distinct())
    n = len(list(Patient.objects.filter(pk__in=ids).select_related("site").values()))
    n += len(list(Dose.objects.current().filter(patient_id__in=ids).values()))
    n += len(list(DiaryDay.objects.filter(patient_id__in=ids).values_list("patient_id", "day")))
    n += len(list(Assessment.objects.current().filter(patient_id__in=ids).values()))
    n += len(list(LabResult.objects.current().filter(patient_id__in=ids).values()))
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--days", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    _setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from speciosa import demo
    from speciosa.clinic.models import Consent
    from speciosa.research import dataset, deid

    t0 = time.perf_counter()
    demo.build_demo_clinic(n_patients=args.patients, days=args.days)
    Consent.objects.filter(kind="research").update(given=True)
    print(f"demo clinic: {args.patients} patients x {args.days} days in "
          f"{time.perf_counter() - t0:.1f} s")
    floor_s, rows = best_of(read_floor, args.repeat)
    build_s, ds = best_of(lambda: dataset.build_dataset(deid.Deidentifier(KEY)), args.repeat)
    out = Path(tempfile.mkdtemp(prefix="speciosa-bench-export-"))

    def write() -> list[str]:
        target = out / f"run-{time.perf_counter_ns()}"
        return dataset.write_dataset(ds, target)

    write_s, _ = best_of(write, args.repeat)
    exported = sum(ds.counts.values())
    print(f"rows read: {rows}; rows exported: {exported} ({ds.counts})")
    print(f"read floor {floor_s:.3f} s | build {build_s:.3f} s | write {write_s:.3f} s")
    print(f"build / read floor: {build_s / floor_s:.2f}x; "
          f"{exported / (build_s + write_s):,.0f} exported rows per second end to end")
    report = getattr(ds, "report", None)
    if report:
        print(f"k = {report['k_anonymity']['k']}; patients {report['patients']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
