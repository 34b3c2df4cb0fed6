"""Benchmark: the safety sweep over a generated clinic, against the naive per-patient way
measured in the same run (issue 4).

Usage::

    .venv/bin/python benchmarks/bench_sweep.py [--patients 10000 100000] [--db sqlite|postgres|both]
        [--profile auto|full|light] [--naive-sample 200] [--workers 1 2] [--celery 1 2] [--keep]
        [--replicate-from 10000]

``--db`` defaults to ``postgres`` when ``DATABASE_URL`` is set and ``sqlite`` otherwise; ``both``
runs each database in its own process (Django's settings are per process). Every run uses a
throw-away database: a SQLite file in a temporary folder under ``/tmp`` (deleted at the end), or
a PostgreSQL database ``speciosa_bench`` on the server of ``DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/``), created, migrated with Django's ``migrate`` and
dropped at the end. No other database is touched.

Generated clinic
----------------
N patients on three sites (UTC, America/New_York, Asia/Bangkok), each with a year of daily
diaries up to today. Profile ``full``: 1-4 doses a day (grams of leaf, ``mitragynine_mg``
filled), a craving score on most days, a side-effect checklist weekly, a COWS every two weeks
or so, prolactin/ALT/AST every six weeks, occasional substance use, 0-2 medications; some
patients escalate, stop writing, rise in prolactin or report symptoms, so that every rule has
work. Profile ``light`` (for 100,000 patients, where the full profile's ~170 M rows do not fit
the time of a benchmark run on this machine): the same year of diaries with one dose a day, a
craving score once a week, the same checklists, COWS, labs, substances and medications.
``auto``: ``full`` up to 20,000 patients, ``light`` above. The rows written are printed.

Loading: PostgreSQL ``COPY`` (psycopg 3 ``cursor.copy``); SQLite ``executemany`` in large
transactions with ``PRAGMA synchronous=OFF, journal_mode=WAL, foreign_keys=OFF`` for the load
only.

``--replicate-from B`` (for 100,000 patients: the Python generator makes 24,000-83,000 rows/s
here by the machine's load, 35 minutes to 2 hours for the ~173 M rows; the database takes about
38 GB): only the first B patients are generated as above;
the clinic is then grown to ``--patients`` by copying them on the database server
(:func:`replicate`: ``INSERT ... SELECT`` per table and copy, every id and every foreign key
to a copied table moved by a fixed offset per copy; the plain indexes dropped during the copy
and built again after it; the foreign-key triggers off, every key being mapped; measured here
at 3-4 times the generator's rate in the same run: 182,000 rows/s against 60,000 at load
average 3.7; 95,000 against 24,000 for 100,000 patients at load average 8-12). **The
copies are copies**: patient ``i + k * B`` has exactly the history of patient ``i`` (the same
doses at the same times, the same diaries, checklists, labs and medications), with an id and
an identifier (``B-0000007-3``) of its own, on its original's site and care team (so the
sites' shares stay a third each). The sweep's work per patient and the findings per copy are
therefore the base's: a 100,000-patient figure made so measures 10 times the work of 10,000
varied patients, not 100,000 different ones (the rules' branches are those the base takes).
``tests/test_bench_generator.py`` checks the row counts, the keys and that each copy gets its
original's findings.

What is timed
-------------
- **naive**: on a random sample of patients, one at a time: the patient and each of its
  records as ORM objects (full history), a :class:`speciosa.safety.Timeline`, ``evaluate``,
  then each alert looked up and saved one by one, stale ones cleared one by one.
- **sweep**: :func:`speciosa.clinic.alerts.sweep` on every patient: first run (creates the
  alerts) and a second run (steady state: alerts updated or cleared), for each ``--workers``
  (forked processes on this machine).
- **over the queue** (``--celery 1 2``, PostgreSQL): ``speciosa.tasks.sweep_all`` sent to that
  many ``speciosa worker`` processes (solo pool; Redis at ``CELERY_BROKER``, a database of its
  own, flushed), timed from sending until its run records its completion (the workers' start
  is not timed). Their CPU is read from ``/proc``.
- **phases**: one process, chunk by chunk, the seconds and CPU seconds of loading,
  evaluating and reconciling.

Every line gives the load average (1 min) at its start and end: the machine is shared, and a
wall time well above the CPU time is the others' load (or the database server's share).
``--keep`` keeps the database at the end and reuses a clinic an earlier ``--keep`` run left
with the same number of patients (its alerts truncated first), so that a re-run does not
regenerate tens of millions of rows.

The target (issue 4): a full sweep of 100,000 patients in under 60 s on this 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_PATIENTS = 100_000
TARGET_SECONDS = 60.0
BENCH_DB = os.environ.get("SPECIOSA_BENCH_DB", "speciosa_bench")
BATCH = 500  # patients per load batch

SITES = (("Bench UTC", "UTC"), ("Bench New York", "America/New_York"), ("Bench Bangkok", "Asia/Bangkok"))
MEDICATIONS = ("sertraline", "alprazolam", "midazolam", "metoclopramide", "gabapentin", "ibuprofen",
               "oxycodone", "omeprazole")
SUBSTANCES = ("alcohol", "cannabis", "alprazolam", "heroin", "tobacco")


# --------------------------------------------------------------------------------------------- set-up

def _pg_base_url() -> str:
    url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/"
    if not url.startswith(("postgres://", "postgresql://")):
        url = "postgres://postgres@127.0.0.1:5432/"
    return url.rsplit("/", 1)[0] + "/"


def _pg_admin(sql: str) -> None:
    """Run ``sql`` (CREATE/DROP DATABASE speciosa_bench) on the server's ``postgres`` database."""
    import psycopg

    with psycopg.connect(_pg_base_url() + "postgres", autocommit=True) as conn:
        conn.execute(sql)


def _setup_django(db: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    if db == "postgres":
        os.environ["DATABASE_URL"] = _pg_base_url() + BENCH_DB
    else:
        os.environ.pop("DATABASE_URL", None)
        os.environ["SPECIOSA_DATA_DIR"] = tempfile.mkdtemp(prefix="speciosa-bench-sweep-", dir="/tmp")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "speciosa.settings")
    # a throw-away key for the benchmark's own database (production requires a real one)
    os.environ.setdefault("SPECIOSA_SECRET_KEY", "benchmark-only-" + "x" * 40)
    import django

    django.setup()


def _fresh_database(db: str) -> None:
    """An empty, migrated benchmark database."""
    from django.core.management import call_command
    from django.db import connections

    connections.close_all()
    if db == "postgres":
        _pg_admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        _pg_admin(f"CREATE DATABASE {BENCH_DB}")
    else:
        from django.conf import settings

        name = Path(settings.DATABASES["default"]["NAME"])
        for suffix in ("", "-wal", "-shm"):
            Path(str(name) + suffix).unlink(missing_ok=True)
    call_command("migrate", interactive=False, verbosity=0)


def _drop_database(db: str) -> None:
    from django.db import connections

    connections.close_all()
    if db == "postgres":
        _pg_admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    else:
        shutil.rmtree(os.environ["SPECIOSA_DATA_DIR"], ignore_errors=True)


# --------------------------------------------------------------------------------------------- generator

COLUMNS = {
    "clinic_diaryday": ("id", "patient_id", "day", "created_at", "updated_at"),
    "clinic_dose": ("id", "patient_id", "source", "entered_at", "superseded", "retracted", "change_reason",
                    "diary_id", "taken_at", "amount", "unit", "product", "mitragynine_percent",
                    "mitragynine_mg", "conversion_note"),
    "clinic_assessment": ("id", "patient_id", "source", "entered_at", "superseded", "retracted",
                          "change_reason", "diary_id", "instrument", "instrument_version", "at", "items",
                          "total", "band", "complete", "flags", "note"),
    "clinic_labresult": ("id", "patient_id", "source", "entered_at", "superseded", "retracted",
                         "change_reason", "lab", "loinc", "collected_at", "value", "unit", "canonical_value",
                         "canonical_unit", "result", "method", "reference_low", "reference_high", "flag",
                         "confirmed_unusual"),
    "clinic_substanceuse": ("id", "patient_id", "source", "entered_at", "superseded", "retracted",
                            "change_reason", "diary_id", "at", "name", "detail"),
    "clinic_medication": ("id", "patient_id", "source", "entered_at", "superseded", "retracted",
                          "change_reason", "name", "start", "end", "drug", "rxnorm", "category"),
}


def filled_columns() -> dict[str, tuple[tuple[str, object], ...]]:
    """Per table, the columns the generator does not write that the database still needs
    (not null), with the model's default: a field added to a model later (a flag, a note)
    gets its default instead of failing the load. A needed column without a default stops
    the benchmark with its name, so the generator is extended rather than guessed."""
    from django.apps import apps
    from django.db import models

    out: dict[str, tuple[tuple[str, object], ...]] = {}
    for table, cols in COLUMNS.items():
        model = next(m for m in apps.get_models() if m._meta.db_table == table)
        extra = []
        for f in model._meta.concrete_fields:
            if f.column in cols or f.null or f.primary_key:
                continue
            if f.has_default():
                value = f.get_default()
            elif f.blank and isinstance(f, (models.CharField, models.TextField)):
                value = ""
            else:
                raise SystemExit(f"bench_sweep: {table}.{f.column} needs a value the generator "
                                 "does not write: add it to COLUMNS and the rows")
            extra.append((f.column, json.dumps(value) if isinstance(value, (dict, list)) else value))
        out[table] = tuple(extra)
    return out


class Generator:
    """Rows for a synthetic clinic, as tuples of plain values (strings for times, in UTC), so
    that the same rows feed PostgreSQL ``COPY`` and SQLite ``executemany``."""

    def __init__(self, profile: str, today: dt.date, days: int = 365, seed: int = 4) -> None:
        from speciosa.knowledge import instruments

        self.profile = profile
        self.seed = seed
        self.days = [(today - dt.timedelta(days=days - 1 - d)).isoformat() for d in range(days)]
        self.ids = dict.fromkeys(COLUMNS, 0)
        cows = instruments.get_instrument("cows")
        self.cows_low, self.cows_high = [], []
        rng = random.Random(seed)
        while len(self.cows_low) < 20 or len(self.cows_high) < 20:
            level = rng.random()
            items = {it.id: rng.choice([v.value for v in it.values][: 2 + int(3 * level)]) for it in cows.items}
            s = instruments.score(cows, items)
            (self.cows_high if s.total >= 13 else self.cows_low).append(
                (json.dumps(items), s.total, s.band or "", cows.version))
        craving = instruments.get_instrument("craving-nrs")
        self.craving = [(json.dumps({"craving": n}), n, instruments.score(craving, {"craving": n}).band or "")
                        for n in range(11)]
        self.craving_version = craving.version
        se = instruments.get_instrument("side-effects")
        self.se_codes = [it.id for it in se.items]
        self.se_version = se.version

    def _next(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    def patient_rows(self, pid: int, rows: dict[str, list]) -> None:
        """Append one patient's year of records to ``rows`` (table -> list of tuples)."""
        rng = random.Random(self.seed * 1_000_003 + pid)
        r = rng.random
        full = self.profile == "full"
        n_days = len(self.days)
        diary_rows, dose_rows = rows["clinic_diaryday"], rows["clinic_dose"]
        assess_rows, lab_rows = rows["clinic_assessment"], rows["clinic_labresult"]
        sub_rows = rows["clinic_substanceuse"]
        grams = 2.0 + 4.0 * r()
        pct = (None, 1.2, 1.5, 1.9)[int(r() * 4)]
        escalates = r() < 0.15
        stops_writing = n_days - 10 if r() < 0.05 else n_days
        symptomatic = r() < 0.1
        prl0 = 6.0 + 10.0 * r()
        prl_rises = r() < 0.1
        cows_every = 10 + int(r() * 10)
        cows_offset = int(r() * cows_every)
        lab_offset = int(r() * 42)
        withdrawal_now = r() < 0.05
        did = dose_id = aid = None
        for d in range(stops_writing):
            day = self.days[d]
            created = f"{day} 21:00:00"
            did = self.ids["clinic_diaryday"] = self.ids["clinic_diaryday"] + 1
            diary_rows.append((did, pid, day, created, created))
            late = d >= n_days - 14
            n_doses = 1 + int(r() * 4) if full else 1
            amount = grams * (1.8 if escalates and late else 1.0)
            for k in range(n_doses):
                a = round(amount * (0.8 + 0.4 * r()), 3)
                t = f"{day} {7 + 4 * k:02d}:{int(r() * 60):02d}:00"
                dose_id = self.ids["clinic_dose"] = self.ids["clinic_dose"] + 1
                mg = round(a * (pct or 1.5) * 10, 1)
                dose_rows.append((dose_id, pid, "patient", created, False, False, "", did, t, a, "g", "",
                                  pct, mg, ""))
            if (r() < 0.85) if full else (d % 7 == 0):
                items, total, band = self.craving[min(10, int(r() * 8) + (2 if late else 0))]
                aid = self.ids["clinic_assessment"] = self.ids["clinic_assessment"] + 1
                assess_rows.append((aid, pid, "patient", created, False, False, "", did, "craving-nrs",
                                    self.craving_version, f"{day} 20:00:00", items, total, band, True, "[]", ""))
            if d % 7 == 3:
                items = {c: int(r() < 0.04) for c in self.se_codes}
                items["seizure"] = 0
                if symptomatic and late:
                    items["reduced-sex-drive"] = 1
                aid = self.ids["clinic_assessment"] = self.ids["clinic_assessment"] + 1
                assess_rows.append((aid, pid, "patient", created, False, False, "", did, "side-effects",
                                    self.se_version, f"{day} 20:30:00", json.dumps(items), sum(items.values()),
                                    "", True, "[]", ""))
            if d % cows_every == cows_offset or (withdrawal_now and d == n_days - 2):
                pool = self.cows_high if (withdrawal_now and d == n_days - 2) or r() < 0.1 else self.cows_low
                items, total, band, version = pool[int(r() * len(pool))]
                aid = self.ids["clinic_assessment"] = self.ids["clinic_assessment"] + 1
                assess_rows.append((aid, pid, "clinician", created, False, False, "", None, "cows", version,
                                    f"{day} 10:00:00", items, total, band, True, "[]", ""))
            if d % 42 == lab_offset:
                at = f"{day} 09:00:00"
                prl = round(prl0 * (1 + (d / n_days) if prl_rises else 1) * (0.85 + 0.3 * r()), 1)
                for lab, loinc, value, unit, low, high in (
                        ("prolactin", "2842-3", prl, "ng/mL", 4.0, 15.2),
                        ("alt", "1742-6", round(15 + 25 * r(), 1), "U/L", 7.0, 55.0),
                        ("ast", "1920-8", round(12 + 20 * r(), 1), "U/L", 8.0, 48.0)):
                    lid = self.ids["clinic_labresult"] = self.ids["clinic_labresult"] + 1
                    flag = "high" if value > high else ""
                    lab_rows.append((lid, pid, "clinician", at, False, False, "", lab, loinc, at, value, unit,
                                     value, unit, "", "", low, high, flag, False))
            if r() < 0.1:
                sid = self.ids["clinic_substanceuse"] = self.ids["clinic_substanceuse"] + 1
                sub_rows.append((sid, pid, "patient", created, False, False, "", did, f"{day} 19:00:00",
                                 SUBSTANCES[int(r() * len(SUBSTANCES))], ""))
        for _ in range(int(r() * 3)):
            mid = self._next("clinic_medication")
            start = self.days[int(r() * n_days)]
            from speciosa.knowledge import drugs as kdrugs

            name = MEDICATIONS[int(r() * len(MEDICATIONS))]
            drug = kdrugs.get(name)  # coded as the medication form codes it; else 'not coded'
            rows["clinic_medication"].append((mid, pid, "clinician", f"{start} 12:00:00", False, False, "",
                                              name, start, None, drug.name if drug else "",
                                              (drug.rxnorm or "") if drug else "", "prescription"))


def generate(n_patients: int, profile: str, *, seed: int = 4) -> dict[str, int]:
    """Write the clinic; returns rows written per table."""
    from django.db import connection, transaction

    from speciosa.clinic.models import CareTeam, Patient, Site

    today = dt.datetime.now(dt.UTC).date()
    sites = [Site.objects.create(name=name, time_zone=tz) for name, tz in SITES]
    teams = [CareTeam.objects.create(site=s, name="Team") for s in sites]
    rng = random.Random(seed)
    patients = [Patient(site=sites[i % 3], care_team=teams[i % 3], identifier=f"B-{i:07d}", given_name="Bench",
                        family_name=f"Patient{i}", birth_date=dt.date(1960 + int(rng.random() * 40), 1, 1),
                        sex="male" if rng.random() < 0.6 else "female", in_care_since=today - dt.timedelta(days=365))
                for i in range(n_patients)]
    with transaction.atomic():
        Patient.objects.bulk_create(patients, batch_size=5000)
    pids = list(Patient.objects.order_by("pk").values_list("pk", flat=True))
    gen = Generator(profile, today, seed=seed)
    counts = {"clinic_patient": n_patients, **dict.fromkeys(COLUMNS, 0)}
    fill = filled_columns()
    connection.ensure_connection()
    raw = connection.connection
    if connection.vendor == "sqlite":
        raw.execute("PRAGMA synchronous=OFF")
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA foreign_keys=OFF")
    for start in range(0, len(pids), BATCH):
        rows: dict[str, list] = {t: [] for t in COLUMNS}
        for pid in pids[start:start + BATCH]:
            gen.patient_rows(pid, rows)
        for table, data in rows.items():
            if not data:
                continue
            counts[table] += len(data)
            names = COLUMNS[table] + tuple(c for c, _ in fill[table])
            defaults = tuple(v for _, v in fill[table])
            data = [row + defaults for row in data]
            cols = ", ".join(f'"{c}"' for c in names)
            if connection.vendor == "postgresql":
                with raw.cursor() as cur:
                    cur.execute("SET TIME ZONE 'UTC'")
                    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                        for row in data:
                            copy.write_row(row)
                raw.commit() if not raw.autocommit else None
            else:
                marks = ", ".join("?" * len(names))
                raw.execute("BEGIN")
                raw.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", data)
                raw.execute("COMMIT")
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            for table in COLUMNS:
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT COALESCE(MAX(id), 1) FROM {table}))")
            cur.execute("ANALYZE")
    else:
        raw.execute("PRAGMA foreign_keys=ON")
        raw.execute("PRAGMA synchronous=NORMAL")
        raw.execute("ANALYZE")
    connection.close()
    return counts


REPLICATED = ("clinic_patient", *COLUMNS)  # the generator's tables, in foreign-key order


def replicate(n_patients: int) -> dict[str, int]:
    """Grow the clinic :func:`generate` wrote (the *base*, B patients) to ``n_patients`` by
    copying it on the database server: copy k (1 .. n/B - 1) of every row of the generator's
    tables is ``INSERT ... SELECT`` with every id moved by k times that table's largest id, and
    every foreign key to a copied table (patient, diary day, the record it replaces or
    follows) moved by the same offset of its target; a copied patient's identifier gets
    ``-k`` and its family name `` copy k``, its login (none in the generator) is left empty,
    and it keeps its original's site and care team (so the copies' time zones, and therefore
    findings, are the original's, and the sites' shares stay as generated). Rows are copied
    as written, times included: each copy has the same history as its original, so the same
    findings and the same work per patient. The sequences are set past the copies and the
    tables analysed. ``n_patients`` must be a multiple of B. Returns the rows per table."""
    from django.apps import apps
    from django.db import connection, transaction

    with connection.cursor() as cur:
        off = {}
        for table in REPLICATED:
            cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
            off[table] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM clinic_patient")
        base = cur.fetchone()[0]
    if base == 0 or n_patients % base:
        raise SystemExit(f"bench_sweep: {n_patients:,} patients is not a whole number of copies of the "
                         f"{base:,} generated")
    copies = n_patients // base
    models_of = {m._meta.db_table: m for m in apps.get_models() if m._meta.db_table in REPLICATED}

    def select(table: str, k: int) -> tuple[str, str]:
        cols, exprs = [], []
        for f in models_of[table]._meta.concrete_fields:
            col, expr = f'"{f.column}"', f'"{f.column}"'
            target = f.related_model._meta.db_table if f.is_relation else None
            if f.primary_key:
                expr = f"{col} + {k * off[table]}"
            elif target in off:
                expr = f"{col} + {k * off[target]}"  # NULL stays NULL
            elif table == "clinic_patient" and f.column == "user_id":
                expr = "NULL"  # a login is one patient's (one-to-one)
            elif table == "clinic_patient" and f.column == "identifier":
                expr = f"{col} || '-{k}'"
            elif table == "clinic_patient" and f.column == "family_name":
                expr = f"{col} || ' copy {k}'"
            cols.append(col)
            exprs.append(expr)
        return ", ".join(cols), ", ".join(exprs)

    postgres = connection.vendor == "postgresql"
    indexes: list[tuple[str, str]] = []
    with connection.cursor() as cur:
        if postgres:
            cur.execute("SET synchronous_commit = off")
            try:  # the foreign keys' triggers off for the copy (every key is mapped; superuser only)
                cur.execute("SET session_replication_role = replica")
            except Exception:  # not a superuser: the keys are checked, slower
                pass
            # the plain indexes (not the primary and unique keys, which check the copies' ids
            # and identifiers) are dropped for the copy and built again after it, in one pass
            cur.execute("SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
                        "AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
                        "WHERE c.conname = i.indexname AND c.conrelid = i.tablename::regclass) "
                        "AND i.indexdef NOT LIKE 'CREATE UNIQUE%%'", [list(REPLICATED)])
            indexes = cur.fetchall()
            for name, _ in indexes:
                cur.execute(f'DROP INDEX "{name}"')
    for k in range(1, copies):
        with transaction.atomic(), connection.cursor() as cur:
            for table in REPLICATED:
                cols, exprs = select(table, k)
                cur.execute(f"INSERT INTO {table} ({cols}) SELECT {exprs} FROM {table} "
                            f"WHERE id <= {off[table]}")
    counts = {}
    with connection.cursor() as cur:
        if postgres:
            cur.execute("SET session_replication_role = DEFAULT")
            cur.execute("SET maintenance_work_mem = '512MB'")
            for _, definition in indexes:
                cur.execute(definition)
        for table in REPLICATED:
            cur.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cur.fetchone()[0]
            if postgres:
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT COALESCE(MAX(id), 1) FROM {table}))")
        cur.execute("ANALYZE")
    connection.close()
    return counts


# --------------------------------------------------------------------------------------------- naive

def naive(patient_ids: list[int]) -> float:
    """Seconds for the naive way on these patients: ORM objects, evaluate, save one by one."""
    import zoneinfo

    from django.utils import timezone

    from speciosa import safety
    from speciosa.clinic.models import (
        Alert,
        Assessment,
        DiaryDay,
        Dose,
        LabResult,
        Medication,
        Patient,
        SubstanceUse,
    )
    from speciosa.pharmacology.doses import Dose as PDose

    def f(x):
        return float(x) if x is not None else None

    started = time.perf_counter()
    for pid in patient_ids:
        p = Patient.objects.select_related("site").get(pk=pid)
        doses = [PDose(taken_at=d.taken_at, amount=float(d.amount), unit=d.unit,
                       mitragynine_percent=f(d.mitragynine_percent),
                       grams_per_capsule=f(d.grams_per_capsule), product=d.product or None)
                 for d in Dose.objects.current().filter(patient=p)]
        assessments, side_effects = [], []
        for a in Assessment.objects.current().filter(patient=p):
            if a.instrument == "side-effects":
                side_effects += [safety.SideEffect(at=a.at, code=c) for c, v in (a.items or {}).items() if v]
            else:
                assessments.append(safety.Assessment(instrument=a.instrument, at=a.at, items=a.items or None,
                                                     total=a.total))
        own = LabResult.RangeSource.LABORATORY
        labs = [safety.LabResult(lab=x.lab, at=x.collected_at, value=f(x.value), unit=x.unit or None,
                                 canonical_value=x.canonical_value, reference_unit=x.canonical_unit or None,
                                 reference_low=x.reference_low if x.reference_source == own else None,
                                 reference_high=x.reference_high if x.reference_source == own else None,
                                 result=x.result or None) for x in LabResult.objects.current().filter(patient=p)]
        meds = [safety.Medication(name=m.name, start=m.start, end=m.end)
                for m in Medication.objects.current().filter(patient=p)]
        subs = [safety.Substance(name=s.name, at=s.at) for s in SubstanceUse.objects.current().filter(patient=p)]
        days = [d.day for d in DiaryDay.objects.filter(patient=p)]
        tl = safety.Timeline(
            patient=safety.Patient(sex=p.sex, birth_date=p.birth_date, pregnant=p.pregnant,
                                   breastfeeding=p.breastfeeding),
            doses=tuple(doses), assessments=tuple(assessments), labs=tuple(labs), side_effects=tuple(side_effects),
            medications=tuple(meds), substances=tuple(subs), diary_days=tuple(days),
            tz=zoneinfo.ZoneInfo(p.site.time_zone))
        now = timezone.now()
        findings = safety.evaluate(tl, now)
        fired = set()
        for fd in findings:
            fired.add(fd.rule)
            evidence = json.loads(json.dumps(fd.evidence, default=str))
            alert = Alert.objects.filter(patient=p, rule=fd.rule, status__in=Alert.ACTIVE).first()
            if alert is None:
                alert = Alert(patient=p, rule=fd.rule, topic=fd.topic, first_seen_at=now)
            alert.severity, alert.message, alert.next_step = fd.severity, fd.message, fd.next_step
            alert.evidence, alert.citations, alert.last_seen_at = evidence, list(fd.citations), now
            alert.save()
        for alert in Alert.objects.filter(patient=p, status__in=Alert.ACTIVE).exclude(rule__in=fired):
            alert.status, alert.resolved_at = Alert.Status.CLEARED, now
            alert.save()
    return time.perf_counter() - started


# --------------------------------------------------------------------------------------------- driver

def _timed_sweep(workers: int):
    from django.db import connections

    from speciosa.clinic import alerts

    connections.close_all()
    cpu = os.times()
    started = time.perf_counter()
    result = alerts.sweep(workers=workers) if workers > 1 else alerts.sweep()
    seconds = time.perf_counter() - started
    after = os.times()
    cpu_s = sum(after[:4]) - sum(cpu[:4])  # this process and its workers (not the database server)
    return result, seconds, cpu_s


def _analyze_alerts() -> None:
    """After the first run has created the alerts (hundreds of thousands at 100,000 patients,
    into a table emptied before): their statistics, as autovacuum's analyse would have them in
    a clinic that sweeps every 15 minutes. Without them the planner read every active alert
    through the ``(status, severity)`` index for each chunk's ``SELECT ... FOR UPDATE``
    (160 ms a chunk instead of 56 ms on 10,000 patients), a cost a running clinic does not have."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("ANALYZE clinic_alert")
            cur.execute("ANALYZE clinic_auditentry")
    connection.close()


def _phases() -> dict[str, tuple[float, float]]:
    """One process, chunk by chunk as the sweep goes: seconds and CPU seconds of loading,
    evaluating and reconciling (the database server's time shows in the wall seconds)."""
    from django.db import connections
    from django.utils import timezone

    from speciosa import safety
    from speciosa.clinic import alerts
    from speciosa.clinic.models import Patient

    connections.close_all()
    as_of = timezone.now()
    settings = alerts.site_safety_settings()
    ids = list(Patient.objects.order_by("pk").values_list("pk", flat=True))
    out = {"load": [0.0, 0.0, 0.0], "evaluate": [0.0, 0.0, 0.0], "reconcile": [0.0, 0.0, 0.0]}
    backend = None
    if connections["default"].vendor == "postgresql":  # the server process of this connection
        with connections["default"].cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            backend = cur.fetchone()[0]

    def timed(name, f, *args):
        w, c = time.perf_counter(), time.process_time()
        s = _proc_cpu(backend) if backend else 0.0
        value = f(*args)
        out[name][0] += time.perf_counter() - w
        out[name][1] += time.process_time() - c
        out[name][2] += (_proc_cpu(backend) - s) if backend else 0.0
        return value

    for start in range(0, len(ids), alerts.CHUNK):
        timelines = timed("load", lambda c: alerts.load_timelines(c, as_of=as_of, settings=settings),
                          ids[start:start + alerts.CHUNK])
        found = timed("evaluate", safety.evaluate_many, timelines, as_of, settings)
        timed("reconcile", alerts.reconcile, found, settings)
    return {k: tuple(v) for k, v in out.items()}


CELERY_BROKER = "redis://127.0.0.1:6379/12"  # a database of its own for the benchmark's queue


def _proc_cpu(pid: int) -> float:
    """CPU seconds of a process and its waited-for children (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _celery_sweep(n_workers: int):
    """The sweep over the task queue: ``n_workers`` ``speciosa worker`` processes (solo pool)
    on Redis, ``sweep_all`` sent to them, timed until its run records its completion."""
    import threading
    import uuid

    import redis
    from celery import Celery
    from django.conf import settings as dj

    from speciosa.clinic import alerts
    from speciosa.clinic.models import SweepRun

    r = redis.Redis.from_url(CELERY_BROKER, socket_connect_timeout=2)
    r.ping()
    queue = f"speciosa-bench-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, CELERY_BROKER_URL=CELERY_BROKER, SPECIOSA_TASK_QUEUE=queue, SPECIOSA_LOG_LEVEL="INFO",
               PYTHONUNBUFFERED="1")
    env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    env.setdefault("SPECIOSA_DATA_DIR", str(dj.DATA_DIR))
    speciosa = Path(sys.executable).parent / "speciosa"
    procs, ready = [], []
    for i in range(n_workers):
        p = subprocess.Popen([str(speciosa), "worker", "--loglevel", "INFO", "--", "--pool=solo", "-Q", queue,
                              "-n", f"bench{i}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ev = threading.Event()

        def read(p=p, ev=ev):
            for line in p.stdout:
                if " ready." in line:
                    ev.set()
        threading.Thread(target=read, daemon=True).start()
        procs.append(p)
        ready.append(ev)
    try:
        for ev in ready:
            if not ev.wait(120):
                raise SystemExit("bench_sweep: a Celery worker did not start")
        cpu0 = sum(_proc_cpu(p.pid) for p in procs)
        started = time.perf_counter()
        task = Celery(broker=CELERY_BROKER).send_task("speciosa.tasks.sweep_all",
                                                      kwargs={"chunk": alerts.CHUNK}, queue=queue)
        while True:
            run = SweepRun.objects.filter(key=task.id, finished_at__isnull=False).first()
            if run is not None:
                break
            if any(p.poll() is not None for p in procs):
                raise SystemExit("bench_sweep: a Celery worker died")
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        cpu_s = sum(_proc_cpu(p.pid) for p in procs) - cpu0
        workers_used = len(set(run.chunk_set.values_list("worker", flat=True)))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        r.flushdb()
    return alerts.run_result(run), seconds, cpu_s, workers_used


def run_one(db: str, sizes: list[int], profile: str, sample: int, workers: list[int],
            keep: bool = False, celery: list[int] | None = None, replicate_from: int = 0) -> list[dict]:
    _setup_django(db)
    from django.db import connection

    out = []
    try:
        for n in sizes:
            prof = profile if profile != "auto" else ("full" if n <= 20_000 else "light")
            started = time.perf_counter()
            counts = _reused(db, n, prof) if keep else None
            reused = counts is not None
            how = ""
            if counts is None:
                _fresh_database(db)
                load0 = os.getloadavg()[0]
                if replicate_from and replicate_from < n:
                    base = generate(replicate_from, prof)
                    base_s = time.perf_counter() - started
                    counts = replicate(n)
                    copy_s = time.perf_counter() - started - base_s
                    base_rows, copied = sum(base.values()), sum(counts.values()) - sum(base.values())
                    how = (f"; the first {replicate_from:,} patients generated in {base_s:.0f} s "
                           f"({base_rows:,} rows, {base_rows / base_s:,.0f} rows/s), "
                           f"then {n // replicate_from - 1} copies of them made on the server in "
                           f"{copy_s:.0f} s ({copied / copy_s:,.0f} rows/s)")
                else:
                    counts = generate(n, prof)
                how += f"; load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end"
            gen_s = time.perf_counter() - started
            total_rows = sum(counts.values())
            print(f"[{db}] {n:,} patients, profile {prof}: " + (f"{total_rows:,} rows (reused)" if reused else
                  f"generated {total_rows:,} rows in {gen_s:.0f} s ({total_rows / gen_s:,.0f} rows/s{how})") + ":",
                  flush=True)
            for table, c in counts.items():
                print(f"    {table:22s} {c:>13,}", flush=True)
            from speciosa.clinic.models import Patient

            pids = list(Patient.objects.values_list("pk", flat=True))
            chosen = random.Random(1).sample(pids, min(sample, len(pids)))
            naive_s = naive(chosen)
            naive_rate = len(chosen) / naive_s
            print(f"[{db}] naive, {len(chosen)} patients: {naive_s:.2f} s, {naive_rate:,.0f} patients/s", flush=True)
            connection.close()
            runs = [("fork", w, run) for w in workers for run in ("first", "second")]
            runs += [("celery", w, "queued") for w in celery or ()]
            for how, w, run in runs:
                load0 = os.getloadavg()[0]
                if how == "celery":
                    result, secs, cpu_s, used = _celery_sweep(w)
                    label = f"over the queue, {w} Celery worker{'s' if w > 1 else ''} ({used} took chunks)"
                else:
                    result, secs, cpu_s = _timed_sweep(w)
                    label = f"{run} run, {w} worker{'s' if w > 1 else ''}"
                    if run == "first":
                        _analyze_alerts()
                load1 = os.getloadavg()[0]
                rate = result.patients / secs
                projected = TARGET_PATIENTS / rate
                verdict = "MET" if projected < TARGET_SECONDS else "MISSED"
                print(f"[{db}] sweep ({label}), {result.patients:,} patients: "
                      f"{secs:.1f} s (Python CPU {cpu_s:.1f} s, load average {load0:.1f} at start, "
                      f"{load1:.1f} at end), "
                      f"{rate:,.0f} patients/s, {rate / naive_rate:.1f} x naive; "
                      f"{result.findings:,} findings, created {result.created:,}, updated {result.updated:,}, "
                      f"stopped firing {result.stopped:,}; 100k target (< {TARGET_SECONDS:.0f} s): {verdict} "
                      f"({'measured' if n == TARGET_PATIENTS else 'projected'} {projected:.1f} s)", flush=True)
                out.append({"db": db, "patients": n, "profile": prof, "rows": total_rows, "generation_s": gen_s,
                            "naive_per_s": naive_rate, "workers": w, "how": how, "run": run, "sweep_s": secs,
                            "sweep_per_s": rate, "sweep_cpu_s": cpu_s, "findings": result.findings,
                            "load_start": load0, "load_end": load1})
            load0 = os.getloadavg()[0]
            phases = _phases()
            load1 = os.getloadavg()[0]
            total = sum(v[0] for v in phases.values())
            cpu = sum(v[1] + v[2] for v in phases.values())
            print(f"[{db}] phases, 1 process, {n:,} patients (load average {load0:.1f} at start, {load1:.1f} at end): "
                  + ", ".join(f"{k} {v[0]:.1f} s (CPU {v[1]:.1f} s here + {v[2]:.1f} s database server, "
                              f"{(v[1] + v[2]) / n * 1000:.2f} ms a patient)" for k, v in phases.items())
                  + f"; total {total:.1f} s, CPU {cpu:.1f} s = {cpu / n * 1000:.2f} ms a patient: 100,000 patients "
                    f"need {cpu / n * TARGET_PATIENTS:.0f} CPU seconds, {cpu / n * TARGET_PATIENTS / 2:.0f} s on two "
                    "idle cores at best (the CPU floor; the 60 s target needs at most 1.2 ms a patient)", flush=True)
            out.append({"db": db, "patients": n, "phases": phases, "load_start": load0, "load_end": load1})
    finally:
        if not keep:
            _drop_database(db)
    return out


def _reused(db: str, n: int, profile: str) -> dict[str, int] | None:
    """``--keep``: the rows of a clinic an earlier ``--keep`` run left in the benchmark
    database, when it has ``n`` patients of this profile (else None: generate afresh)."""
    from django.db import connection

    try:
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM clinic_patient")
            if cur.fetchone()[0] != n:
                return None
            counts = {"clinic_patient": n}
            for table in COLUMNS:
                cur.execute(f"SELECT count(*) FROM {table}")
                counts[table] = cur.fetchone()[0]
    except Exception:  # no database yet, or not migrated
        connection.close()
        return None
    per_day = counts["clinic_dose"] / max(1, counts["clinic_diaryday"])
    if (profile == "full") != (per_day > 1.5):
        return None
    from django.core.management import call_command
    from django.db import connections

    connections.close_all()
    call_command("migrate", interactive=False, verbosity=0)
    with connection.cursor() as cur:  # each run starts from no alerts, as a fresh clinic does
        cur.execute("TRUNCATE clinic_alert CASCADE")
    print(f"[{db}] --keep: reusing the clinic of {n:,} patients already in {BENCH_DB}", flush=True)
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--patients", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--db", choices=("sqlite", "postgres", "both"),
                   default="postgres" if os.environ.get("DATABASE_URL") else "sqlite")
    p.add_argument("--profile", choices=("auto", "full", "light"), default="auto")
    p.add_argument("--naive-sample", type=int, default=200)
    p.add_argument("--workers", type=int, nargs="*", default=[1, 2],
                   help="forked worker counts to sweep with (none: only --celery)")
    p.add_argument("--celery", type=int, nargs="*", default=[],
                   help="also sweep over the task queue with this many Celery worker processes each "
                        f"(PostgreSQL; Redis at {CELERY_BROKER}), e.g. --celery 1 2")
    p.add_argument("--replicate-from", type=int, default=0, metavar="B",
                   help="generate only B patients with the Python generator and copy them on the database "
                        "server up to --patients (copies of the same histories: the same findings and work "
                        "per copy), e.g. --replicate-from 10000 for 100,000 patients in minutes")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--keep", action="store_true",
                   help="keep the benchmark database at the end, and reuse one an earlier --keep run "
                        "left with the same number of patients (one size only)")
    args = p.parse_args(argv)
    # a terminated run still drops its database and deletes its files (``finally`` in run_one)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.db == "both":
        code = 0
        for db in ("sqlite", "postgres"):
            cmd = [sys.executable, __file__, "--db", db, "--profile", args.profile, "--naive-sample",
                   str(args.naive_sample), "--patients", *map(str, args.patients), "--workers",
                   *map(str, args.workers)]
            if args.json:
                cmd += ["--json", f"{args.json}.{db}"]
            code |= subprocess.call(cmd)
        return code
    if args.keep and len(args.patients) > 1:
        p.error("--keep takes one --patients size")
    if args.celery and args.db != "postgres":
        p.error("--celery needs --db postgres (the workers share the database through its server)")
    if args.replicate_from and any(n % args.replicate_from for n in args.patients):
        p.error("--replicate-from: every --patients size must be a multiple of it")
    figures = run_one(args.db, args.patients, args.profile, args.naive_sample, args.workers, args.keep, args.celery,
                      args.replicate_from)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
