"""Benchmark: FHIR bulk export and import of a generated clinic, against a one-resource-at-a-time
ORM baseline measured in the same run.

Usage::

    .venv/bin/python benchmarks/bench_fhir.py [--patients 10000] [--baseline-patients 200]

SQLite by default (a throw-away database in a temporary folder); PostgreSQL when
``DATABASE_URL`` is set (a throw-away ``test_<name>`` database is created and dropped).

What is timed
-------------
- **export, fast path**: :func:`speciosa.interop.export.write_ndjson` over the whole clinic:
  ``values()`` rows -> plain dicts -> compact JSON, one NDJSON file per type.
- **export, validated**: the same builders plus ``fhir.resources.R4B`` validation of every
  resource, on a sample of patients (the pydantic path; tests validate every type).
- **export, ORM baseline**: model instances one at a time, each record's patient, site and
  author fetched through its foreign keys, each imported identifier looked up on its own,
  the same builders, ``json.dumps``; on the same sample of patients.
- **import, bulk**: :func:`speciosa.interop.importer.import_fhir` of the whole export into a
  second site whose patients have the same record numbers (R4B validation of every resource,
  the clinic validators, one transaction per file with ``bulk_create``). Safety rules are not
  re-evaluated here (``evaluate_safety=False``): that is the alerts sweep's cost, not FHIR's.
- **import, ORM baseline**: the same parse, validation and conversion, then one transaction
  per resource with ``Model.objects.create`` for the row, its import record and its audit
  entry; on a sample.

The target (issue 7) is 20,000 exported resources per second on this machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

TARGET_EXPORT_PER_S = 20_000


def _setup() -> None:
    if "DATABASE_URL" not in os.environ:
        os.environ["SPECIOSA_DATA_DIR"] = tempfile.mkdtemp(prefix="speciosa-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "speciosa.settings")
    # a throw-away key for the benchmark's own database (production requires a real one)
    os.environ.setdefault("SPECIOSA_SECRET_KEY", "benchmark-only-" + "x" * 40)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import django

    django.setup()


def generate(n_patients: int, *, seed: int = 7, today: dt.date | None = None) -> dict[str, int]:
    """A synthetic clinic written with ``bulk_create``; values pass the clinic's validators
    (totals from the one scorer, lab ranges and flags from ``validate_lab``, mitragynine from
    ``validate_dose``). Also a receiving site with the same record numbers and no records."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from speciosa.clinic import models as cm
    from speciosa.clinic import services
    from speciosa.knowledge import instruments as kinstruments

    rng = random.Random(seed)
    today = today or timezone.localdate()
    now = timezone.now()
    User = get_user_model()
    pw = make_password("bench-password-0")
    instruments = {i: kinstruments.get_instrument(i) for i in ("cows", "phq9", "craving-nrs", "sows")}
    counts: dict[str, int] = {}
    with transaction.atomic():
        sites = [cm.Site.objects.create(name=f"Bench site {i}") for i in (1, 2)]
        receiving = cm.Site.objects.create(name="Bench receiving site")
        teams = [cm.CareTeam.objects.create(site=s, name=f"Team {s.pk}-{k}") for s in sites for k in (1, 2)]
        rteam = cm.CareTeam.objects.create(site=receiving, name="Receiving team")
        clinicians = []
        for i, team in enumerate(teams):
            u = User.objects.create(username=f"bench-clin-{i}", first_name="Clin", last_name=f"Ician{i}",
                                    password=pw)
            cm.Profile.objects.create(user=u, role="clinician")
            team.members.add(u)
            clinicians.append(u)
        patients, copies = [], []
        for i in range(n_patients):
            team = teams[i % len(teams)]
            fields = dict(identifier=f"B-{i:06d}", given_name=rng.choice(["Ada", "Ben", "Cy", "Di"]),
                          family_name=f"Bench{i}", birth_date=dt.date(1960 + i % 40, 1 + i % 12, 1 + i % 28),
                          sex="female" if i % 2 else "male")
            patients.append(cm.Patient(site=team.site, care_team=team, **fields))
            copies.append(cm.Patient(site=receiving, care_team=rteam, **fields))
        patients = cm.Patient.objects.bulk_create(patients, batch_size=2000)
        cm.Patient.objects.bulk_create(copies, batch_size=2000)
        rows: dict[type, list] = {m: [] for m in (cm.LabResult, cm.Assessment, cm.Dose, cm.SubstanceUse,
                                                  cm.Medication, cm.Consent)}
        for i, p in enumerate(patients):
            clin = clinicians[i % len(clinicians)]
            base = {"patient": p, "entered_at": now}
            for k in range(3):
                at = timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=5 + 20 * k), dt.time(9)))
                value = round(rng.uniform(5, 30), 1)
                clean = services.validate_lab(p, {"lab": "prolactin", "collected_at": at,
                                                  "value": str(value), "unit": "ng/mL"})
                rows[cm.LabResult].append(cm.LabResult(**base, entered_by=clin, source="clinician", **clean))
            for k in range(6):
                inst = instruments[("craving-nrs", "sows", "cows", "phq9", "craving-nrs", "sows")[k]]
                items = {it.id: rng.choice(it.allowed) for it in inst.items if it.required}
                score = kinstruments.score(inst, items, sex=p.sex)
                at = timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=1 + 4 * k), dt.time(10)))
                rows[cm.Assessment].append(cm.Assessment(
                    **base, entered_by=clin, source="clinician", instrument=inst.id,
                    instrument_version=inst.version, at=at, items=items, total=score.total,
                    band=score.band or "", complete=score.complete, flags=list(score.flags)))
            for k in range(10):
                at = timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=1 + k), dt.time(8 + k % 10)))
                unit = ("g", "capsule", "glass")[k % 3]
                clean = services.validate_dose({"taken_at": at, "amount": str(rng.choice([1, 2, 2.5, 3, 4])),
                                                "unit": unit, "product": rng.choice(["", "Red Bali", "Green Maeng Da"]),
                                                "mitragynine_percent": "1.5" if unit == "g" else None,
                                                "grams_per_capsule": "0.5" if unit == "capsule" else None})
                rows[cm.Dose].append(cm.Dose(**base, entered_by=None, source="patient", **clean))
            rows[cm.SubstanceUse].append(cm.SubstanceUse(
                **base, source="patient",
                at=timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=3), dt.time(20))),
                name="alcohol", detail="two beers"))
            rows[cm.Medication].append(cm.Medication(**base, entered_by=clin, source="clinician",
                                                     name="Buprenorphine 8 mg", start=today - dt.timedelta(days=60)))
            rows[cm.Consent].append(cm.Consent(patient=p, kind="care", given=True, at=now, recorded_by=clin))
        for model, objs in rows.items():
            model.objects.bulk_create(objs, batch_size=2000)
            counts[model.__name__] = len(objs)
    counts["Patient"] = n_patients
    return counts


def export_baseline(patients) -> tuple[int, float]:
    """One resource at a time through model instances and their foreign keys."""
    from speciosa.clinic import models as cm
    from speciosa.interop import codes as c
    from speciosa.interop import export as ex
    from speciosa.interop.models import ImportedResource
    from speciosa.knowledge import instruments as kinstruments
    from speciosa.knowledge import labs as klabs

    def row_of(obj, fields):
        return {f: getattr(obj, f) for f in fields} | {"pk": obj.pk, "entered_by_id": obj.entered_by_id,
                                                        "source": obj.source, "replaces_id": obj.replaces_id,
                                                        "entered_at": obj.entered_at,
                                                        "change_reason": obj.change_reason}

    def subject_of(obj):
        patient = cm.Patient.objects.get(pk=obj.patient_id)  # one query per record
        return {"reference": f"Patient/{patient.pk}",
                "identifier": {"system": c.mrn_system(patient.site.name), "value": patient.identifier}}

    def original(model, pk):
        imp = ImportedResource.objects.filter(model=model, object_id=pk).first()
        return {"use": "secondary", "system": imp.system, "value": imp.value} if imp else None

    exporter = ex.Exporter()
    n = 0
    started = time.perf_counter()
    with open(os.devnull, "w") as sink:
        for p in patients:
            for lab in cm.LabResult.objects.current().filter(patient=p):
                row = row_of(lab, ("lab", "loinc", "collected_at", "value", "unit", "result", "method",
                                   "reference_low", "reference_high", "flag", "canonical_unit",
                                   "confirmed_unusual", "patient_id"))
                subj, orig = subject_of(lab), original("LabResult", lab.pk)
                sink.write(json.dumps(ex.lab_observation(row, subj, klabs.get_lab(lab.lab), orig)) + "\n")
                sink.write(json.dumps(exporter._provenance("lab", lab.pk, [f"Observation/lab{lab.pk}"],
                                                           subj, row, orig)) + "\n")
                n += 2
            for a in cm.Assessment.objects.current().filter(patient=p):
                row = row_of(a, ("instrument", "instrument_version", "at", "items", "total", "band",
                                 "complete", "flags", "note", "patient_id"))
                subj, orig = subject_of(a), original("Assessment", a.pk)
                inst = kinstruments.get_instrument(a.instrument)
                author = exporter._user(a.entered_by_id)
                sink.write(json.dumps(ex.questionnaire_response(row, subj, inst, author, orig)) + "\n")
                sink.write(json.dumps(ex.score_observation(row, subj, inst)) + "\n")
                sink.write(json.dumps(exporter._provenance("a", a.pk, [f"QuestionnaireResponse/a{a.pk}"],
                                                           subj, row, orig)) + "\n")
                n += 3
            for d in cm.Dose.objects.current().filter(patient=p):
                row = row_of(d, ("taken_at", "amount", "unit", "product", "mitragynine_percent",
                                 "grams_per_capsule", "mitragynine_mg", "conversion_note", "patient_id"))
                subj, orig = subject_of(d), original("Dose", d.pk)
                sink.write(json.dumps(ex.dose_statement(row, subj, exporter._user(d.entered_by_id), orig)) + "\n")
                sink.write(json.dumps(exporter._provenance("dose", d.pk, [f"MedicationStatement/dose{d.pk}"],
                                                           subj, row, orig)) + "\n")
                n += 2
    return n, time.perf_counter() - started


def import_baseline(folder: Path, site, limit: int) -> tuple[int, float]:
    """Parse, validate and convert as the bulk import does, then one transaction per resource."""
    from django.db import transaction
    from django.utils import timezone

    from speciosa.clinic import models as cm
    from speciosa.clinic import writes
    from speciosa.interop import importer as imp
    from speciosa.interop.export import model_class
    from speciosa.interop.models import ImportedResource

    patients = imp._Patients(site)
    lines: list[dict] = []
    for name in ("Observation", "QuestionnaireResponse", "MedicationStatement"):
        with open(folder / f"{name}.ndjson", encoding="utf-8") as fh:
            for k, line in enumerate(fh):
                if k >= limit // 3:
                    break
                lines.append(json.loads(line))
    n = 0
    started = time.perf_counter()
    for res in lines:
        model_class(res["resourceType"]).model_validate(res)
        converted = imp._convert(res, patients)
        if converted is None:
            continue
        model, patient, fields = converted
        system, value = imp._identifier(res)
        with transaction.atomic():
            row = model.objects.create(patient=patient, source="import", entered_at=timezone.now(), **fields)
            ImportedResource.objects.create(resource_type=res["resourceType"], system=f"baseline:{system}",
                                            value=value, digest=imp._digest(res), model=model.__name__,
                                            object_id=row.pk, patient=patient)
            cm.AuditEntry.objects.create(action="create", model=model.__name__, object_id=row.pk,
                                         patient=patient, after=writes.snapshot(row))
        n += 1
    return n, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--baseline-patients", type=int, default=200)
    parser.add_argument("--baseline-import", type=int, default=3000, help="resources")
    args = parser.parse_args(argv)
    _setup()
    from django.db import connection

    from speciosa.clinic import models as cm
    from speciosa.interop.codes import mrn_system
    from speciosa.interop.export import Exporter, validate, write_ndjson
    from speciosa.interop.importer import import_fhir
    from speciosa.interop.models import TrustedIdentifierSystem

    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        print(f"database: {connection.vendor} ({test_db})")
        t = time.perf_counter()
        rows = generate(args.patients)
        print(f"generated {args.patients} patients, {sum(rows.values())} rows in {time.perf_counter() - t:.1f} s")

        out = Path(tempfile.mkdtemp(prefix="speciosa-fhir-"))
        source = cm.Patient.objects.exclude(site__name="Bench receiving site")
        t, cpu = time.perf_counter(), time.process_time()
        counts = write_ndjson(out / "all", Exporter(source))
        secs, cpu = time.perf_counter() - t, time.process_time() - cpu
        total = sum(counts.values())
        export_rate = total / secs
        print(f"\nexport, fast path (dicts, all {args.patients} patients): {total} resources in {secs:.2f} s "
              f"= {export_rate:,.0f} resources/s  (target {TARGET_EXPORT_PER_S:,}: "
              f"{'met' if export_rate >= TARGET_EXPORT_PER_S else 'NOT met'})")
        print(f"  per CPU-second of this process: {total / cpu:,.0f} resources/s "
              f"(load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        print("  " + ", ".join(f"{k} {v}" for k, v in counts.items()))

        sample = list(source.order_by("pk")[: args.baseline_patients])
        sample_qs = cm.Patient.objects.filter(pk__in=[p.pk for p in sample])
        types = ("Observation", "QuestionnaireResponse", "MedicationStatement", "Provenance")
        t = time.perf_counter()
        n_fast = 0
        for res in Exporter(sample_qs).resources(types):
            json.dumps(res, separators=(",", ":"))
            n_fast += 1
        fast_sample = n_fast / (time.perf_counter() - t)
        for res in Exporter(sample_qs[:1]).resources(types):
            validate(res)  # warm up: build each model class once
        t = time.perf_counter()
        n_val = 0
        for res in Exporter(sample_qs).resources(types):
            validate(res)
            json.dumps(res, separators=(",", ":"))
            n_val += 1
        validated = n_val / (time.perf_counter() - t)
        n_base, base_secs = export_baseline(sample)
        baseline = n_base / base_secs
        print(f"\nsame {len(sample)}-patient sample, {n_fast} clinical resources:")
        print(f"  fast path (dicts)                 {fast_sample:>10,.0f} resources/s")
        print(f"  validated (R4B pydantic models)   {validated:>10,.0f} resources/s")
        print(f"  ORM one-at-a-time baseline        {baseline:>10,.0f} resources/s  ({n_base} resources)")
        print(f"  fast path / baseline              {fast_sample / baseline:>10.1f} x")

        receiving = cm.Site.objects.get(name="Bench receiving site")
        for site in cm.Site.objects.exclude(pk=receiving.pk):  # the senders' MRNs: trusted
            TrustedIdentifierSystem.objects.create(site=receiving, system=mrn_system(site.name))
        t, cpu = time.perf_counter(), time.process_time()
        report = import_fhir(out / "all", site=receiving, evaluate_safety=False)
        secs, cpu = time.perf_counter() - t, time.process_time() - cpu
        assert report.ok, report.problems[:5]
        created = sum(report.created.values())
        read = sum(counts.values())
        print(f"\nimport, bulk (R4B validation + clinic validators, one transaction per file): "
              f"{created} rows from {read} resources read in {secs:.2f} s = {created / secs:,.0f} rows/s "
              f"({read / secs:,.0f} resources read/s; {created / cpu:,.0f} rows per CPU-second)")
        t = time.perf_counter()
        again = import_fhir(out / "all", site=receiving, evaluate_safety=False)
        print(f"re-import of the same files: {sum(again.created.values())} new rows, {again.unchanged} "
              f"unchanged, {time.perf_counter() - t:.2f} s")
        n_imp, imp_secs = import_baseline(out / "all", receiving, args.baseline_import)
        imp_base = n_imp / imp_secs
        print(f"import, ORM one-at-a-time baseline ({n_imp} resources): {imp_base:,.0f} rows/s; "
              f"bulk / baseline = {created / secs / imp_base:.1f} x")
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
