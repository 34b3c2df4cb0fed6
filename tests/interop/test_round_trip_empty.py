"""The full round trip of issue 14: export the demo clinic, import it into an **empty**
installation (its own database, a new site, the sender's MRN system trusted, patients created
with ``--create-patients``), export again, and compare every clinical field, who reported
each record and every time, resource by resource (not only counts).

What legitimately differs is named in :data:`BY_DESIGN`: server ids and ``meta``, the
installation's own identifiers (the sender's becomes the second, ``use: secondary``), the
patient's reference and MRN system (another site), and references into the sender's server
(a clinician is kept by name, never as ``Practitioner/<id>`` of another server)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from speciosa.clinic import models as cmodels
from speciosa.interop import codes as icodes
from speciosa.interop.export import write_ndjson

from .conftest import read_ndjson

pytestmark = pytest.mark.django_db

CLINICAL = ("Observation", "QuestionnaireResponse", "MedicationStatement", "MedicationRequest",
            "DocumentReference")
BY_DESIGN = ("id", "meta", "identifier")
WHO = ("performer", "author", "source", "informationSource")
SPECIOSA = Path(sys.executable).parent / "speciosa"

SETUP = """
import django
django.setup()
from speciosa.clinic.models import CareTeam, Site
from speciosa.interop.models import TrustedIdentifierSystem
site = Site.objects.create(name="Seeded clinic")
CareTeam.objects.create(site=site, name="Seeded team")
for system in {systems!r}:
    TrustedIdentifierSystem.objects.create(site=site, system=system, note="the sender's MRNs")
"""


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done


def _who(ref: dict | None, subject: dict) -> str | None:
    """Who a reference names, comparable across installations."""
    if ref is None:
        return None
    if ref.get("reference", "").startswith("Patient/") or ref == subject:
        return "the patient"
    return f"practitioner {ref.get('display')!r}"


def _comparable(res: dict, qr_ids: dict[str, str]) -> dict:
    r = copy.deepcopy({k: v for k, v in res.items() if k not in BY_DESIGN})
    subject = res["subject"]
    r["subject"] = subject["identifier"]["value"]  # the MRN; its system names the site
    for key in WHO:
        if key in r:
            value = r[key]
            r[key] = [_who(v, subject) for v in value] if isinstance(value, list) else \
                _who(value, subject)
    if "derivedFrom" in r:
        r["derivedFrom"] = [qr_ids.get(d["reference"], d["reference"]) for d in r["derivedFrom"]]
    if "basedOn" in r:  # this installation's own MedicationRequest of the same medication
        r["basedOn"] = [d["reference"].split("/")[0] for d in r["basedOn"]]
    return r


def _key(res: dict) -> tuple[str, str] | None:
    ids = res.get("identifier")
    ids = [ids] if isinstance(ids, dict) else ids or []
    first = next((i for i in ids if i.get("use") != "secondary"), None)
    return (first["system"], first["value"]) if first else None


def _medications(demo_clinic) -> list[cmodels.Medication]:
    """Two medications with every field the list holds: this clinic's prescription (so a
    MedicationRequest goes out too) with date-times, and another prescriber's, stopped."""
    from speciosa.clinic import medications

    patient = cmodels.Patient.objects.order_by("pk").first()
    clinician = patient.care_team.members.order_by("pk").first()
    start = dt.datetime.combine(patient.in_care_since, dt.time(9, 30), tzinfo=dt.UTC)
    made = [medications.record_medication(clinician, patient, {
        "drug": "buprenorphine", "name": "Suboxone film", "strength": "8", "strength_unit": "mg",
        "form": "film", "dose_amount": "2", "dose_unit": "film", "frequency": "once daily",
        "route": "sublingual", "start": start.isoformat(), "prescriber": "clinic",
        "prescriber_name": "Dr Ada Okafor", "indication": "opioid use disorder",
        "category": "prescription", "notes": "Induction at the clinic."})]
    made.append(medications.record_medication(clinician, patient, {
        "name": "ibuprofen 400 mg tablet", "dose_amount": "400", "dose_unit": "mg",
        "route": "oral", "frequency": "as needed", "start": patient.in_care_since.isoformat(),
        "end": (start + dt.timedelta(days=5, hours=2)).isoformat(), "status": "stopped",
        "stop_reason": "stomach pain", "prescriber": "none", "category": "otc"}))
    return made


#: The Medication fields a round trip keeps, compared row by row (not only as resources).
MEDICATION_FIELDS = ("name", "drug", "rxnorm", "category", "strength", "strength_unit", "form",
                     "dose_amount", "dose_unit", "frequency", "route", "start", "start_at",
                     "end", "end_at", "status", "stop_reason", "prescriber", "prescriber_name",
                     "indication", "notes")

ROWS = """
import django, json
django.setup()
from speciosa.clinic.models import Medication
print(json.dumps([[str(getattr(m, f)) for f in {fields!r}] for m in
                  Medication.objects.current().order_by("patient__identifier", "name")]))
"""


def test_export_import_into_an_empty_installation_export_keeps_every_field(demo_clinic,
                                                                             tmp_path):
    _medications(demo_clinic)
    write_ndjson(tmp_path / "first")
    first = read_ndjson(tmp_path / "first")
    systems = sorted({icodes.mrn_system(s.name) for s in cmodels.Site.objects.all()})
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL",
                                                           "DJANGO_SETTINGS_MODULE")}
    env.update(SPECIOSA_DEBUG="1", SPECIOSA_DATA_DIR=str(tmp_path / "empty"),
               SPECIOSA_LOG_LEVEL="WARNING", SPECIOSA_FHIR_BASE="https://seeded.example/fhir",
               DJANGO_SETTINGS_MODULE="speciosa.settings")
    _run(env, str(SPECIOSA), "migrate")
    _run(env, sys.executable, "-c", SETUP.format(systems=systems))

    done = _run(env, str(SPECIOSA), "import", "fhir", str(tmp_path / "first"), "--site",
                "Seeded clinic", "--create-patients", "--json")
    report = json.loads(done.stdout)
    assert report["ok"], [f["problems"][:3] for f in report["files"]]
    created = {k: v for f in report["files"] for k, v in f["created"].items()}
    assert created["Patient"] == len(first["Patient"]) == 6
    _run(env, str(SPECIOSA), "export", "fhir", "--out", str(tmp_path / "second"), "--purpose",
         "round-trip test")
    second = read_ndjson(tmp_path / "second")

    # patients: the same people
    people = {(p["name"][0]["family"], p["name"][0]["given"][0], p["gender"], p["birthDate"],
               p["identifier"][0]["value"], json.dumps(p.get("extension", [])[1:]))
              for p in first["Patient"]}
    assert {(p["name"][0]["family"], p["name"][0]["given"][0], p["gender"], p["birthDate"],
             p["identifier"][0]["value"], json.dumps(p.get("extension", [])[1:]))
            for p in second["Patient"]} == people
    assert {p["identifier"][0]["system"] for p in second["Patient"]} == {
        "https://seeded.example/fhir/sid/mrn/seeded-clinic"}

    # the medication list, field by field
    rows = json.loads(_run(env, sys.executable, "-c", ROWS.format(fields=MEDICATION_FIELDS)).stdout)
    assert rows == [[str(getattr(m, f)) for f in MEDICATION_FIELDS] for m in
                    cmodels.Medication.objects.current().order_by("patient__identifier", "name")]
    assert {r[MEDICATION_FIELDS.index("prescriber")] for r in rows} >= {"clinic", "none"}
    # the MedicationRequest of the prescription was the same medication: taken once
    skipped = {k: v for f in report["files"] for k, v in f["skipped"].items()}
    assert skipped["MedicationRequest (the same medication as its MedicationStatement)"] == 1
    assert not any(f["warnings"] for f in report["files"]), [
        f["warnings"][:3] for f in report["files"]]

    # each record of the second export names the first's identifier as its secondary one
    before = {(t, _key(r)): r for t in CLINICAL for r in first.get(t, []) if _key(r)}
    qr_ids = {}
    for r in second.get("QuestionnaireResponse", []):
        match = next(b for b in first["QuestionnaireResponse"]
                     if b["identifier"] == r["identifier"])
        qr_ids[f"QuestionnaireResponse/{r['id']}"] = f"QuestionnaireResponse/{match['id']}"
    compared = {t: 0 for t in CLINICAL}
    for rtype in CLINICAL:
        assert len(second.get(rtype, [])) == len(first.get(rtype, [])) > 0, rtype
        for r in second[rtype]:
            if rtype == "QuestionnaireResponse":
                origin = next(b for b in first[rtype] if b["identifier"] == r["identifier"])
            elif "derivedFrom" in r:  # a score: the same as the first's score of that response
                target = qr_ids[r["derivedFrom"][0]["reference"]]
                origin = next(b for b in first[rtype]
                              if b.get("derivedFrom", [{}])[0].get("reference") == target)
            else:
                secondary = next(i for i in r["identifier"] if i.get("use") == "secondary")
                assert r["identifier"][0]["system"].startswith("https://seeded.example/")
                origin = before[(rtype, (secondary["system"], secondary["value"]))]
            a = _comparable(origin, {})
            b = _comparable(r, qr_ids)
            assert b == a, f"{rtype} {origin['id']} -> {r['id']}:\n{a}\n{b}"
            compared[rtype] += 1
    assert all(n > 0 for n in compared.values()), compared
    # the times and authorship were compared, not absent
    labs = [r for r in second["Observation"] if r["id"].startswith("lab")]
    assert labs and all("issued" in r for r in labs)
    # who entered each lab (a clinician, by name), on the result and on its Provenance
    assert all(_who(r["performer"][0], r["subject"]).startswith("practitioner") for r in labs)
    provenance = {p["id"]: p for p in second["Provenance"]}
    for r in labs:
        authors = [a["who"] for a in provenance[r["id"]]["agent"]
                   if a["type"]["coding"][0]["code"] == "author"]
        assert authors == [{"display": r["performer"][0]["display"]}]
    doses = [r for r in second["MedicationStatement"] if r["id"].startswith("dose")]
    assert any(_who(r.get("informationSource"), r["subject"]) == "the patient" for r in doses)
    responses = second["QuestionnaireResponse"]
    assert {_who(r.get("author"), r["subject"]) for r in responses} >= {"the patient"}
    # notes: their author (a clinician, by name) and when they were first written
    notes = second["DocumentReference"]
    assert notes and all(_who(r["author"][0], r["subject"]).startswith("practitioner")
                         for r in notes)
    written = {r["date"] for r in first["DocumentReference"]}
    assert {r["date"] for r in notes} == written
