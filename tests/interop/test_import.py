"""Import: round trip, all-or-nothing per file with line and reason, idempotent re-import."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections import Counter

import pytest

from speciosa.clinic import models as cm
from speciosa.interop import codes as c
from speciosa.interop.export import Exporter, write_ndjson
from speciosa.interop.importer import import_fhir
from speciosa.interop.models import ImportedResource, TrustedIdentifierSystem

from .conftest import stored_counts

pytestmark = pytest.mark.django_db

CLINICAL = ("Observation", "QuestionnaireResponse", "MedicationStatement")
# Who entered a record, how and when, and server ids differ by design after an import: the
# clinical content is everything else.
NOT_CONTENT = ("id", "meta", "identifier", "subject", "issued", "dateAsserted", "informationSource",
               "author", "source", "category", "derivedFrom", "performer")


def _content(resource: dict) -> str:
    r = {k: v for k, v in resource.items() if k not in NOT_CONTENT or
         (k == "category" and resource["resourceType"] != "MedicationStatement")}
    r["patient"] = resource["subject"]["identifier"]["value"]
    if r.get("status") == "amended":
        r["status"] = "completed" if r["resourceType"] == "QuestionnaireResponse" else "final"
    return json.dumps(r, sort_keys=True)


def _clinical(data: dict[str, list[dict]]) -> dict[str, Counter]:
    return {t: Counter(_content(r) for r in data.get(t, [])) for t in CLINICAL}


def _receiving_site(patients) -> cm.Site:
    """A second site whose patients have the same record numbers and no clinical data."""
    site = cm.Site.objects.create(name="Receiving clinic")
    team = cm.CareTeam.objects.create(site=site, name="Receiving team")
    for p in patients:
        cm.Patient.objects.create(site=site, care_team=team, identifier=p.identifier,
                                  given_name=p.given_name, family_name=p.family_name,
                                  birth_date=p.birth_date, sex=p.sex, pregnant=p.pregnant,
                                  breastfeeding=p.breastfeeding)
    for system in {c.mrn_system(p.site.name) for p in patients}:
        TrustedIdentifierSystem.objects.create(site=site, system=system, note="the sender's MRNs")
    return site


def _subject(patient: cm.Patient) -> dict:
    return {"identifier": {"system": c.mrn_system(patient.site.name), "value": patient.identifier}}




def test_round_trip_export_import_export_gives_the_same_clinical_content(demo_clinic, tmp_path, ndjson):
    originals = list(cm.Patient.objects.all())
    write_ndjson(tmp_path / "first")
    first = ndjson(tmp_path / "first")
    site = _receiving_site(originals)

    report = import_fhir(tmp_path / "first", site=site)

    assert report.ok, report.problems
    assert report.created == Counter({
        "LabResult": cm.LabResult.objects.filter(patient__site=site).count(),
        "Assessment": cm.Assessment.objects.filter(patient__site=site).count(),
        "Dose": cm.Dose.objects.filter(patient__site=site).count(),
        "SubstanceUse": cm.SubstanceUse.objects.filter(patient__site=site).count(),
        "Medication": cm.Medication.objects.filter(patient__site=site).count(),
        "Note": cm.Note.objects.filter(patient__site=site).count(),
    })
    assert cm.Note.objects.filter(patient__site=site).count() > 0  # notes are imported too
    assert cm.Dose.objects.filter(patient__site=site).count() == cm.Dose.objects.exclude(
        patient__site=site).count() > 0
    assert set(cm.LabResult.objects.filter(patient__site=site).values_list("source", flat=True)) == {"import"}
    write_ndjson(tmp_path / "second", Exporter(cm.Patient.objects.filter(site=site)))
    second = ndjson(tmp_path / "second")
    a, b = _clinical(first), _clinical(second)
    for rtype in CLINICAL:
        assert sum(a[rtype].values()) > 0
        assert a[rtype] == b[rtype], f"{rtype} differs: {list((a[rtype] - b[rtype]).items())[:1]}"
    # the second export keeps the source system's identifier beside its own
    lab = second["Observation"][0]
    assert lab["identifier"][1]["use"] == "secondary"
    assert lab["identifier"][1]["system"] == c.sid("lab")


def test_re_importing_the_same_files_changes_nothing(demo_clinic, tmp_path):
    site = _receiving_site(list(cm.Patient.objects.all()))
    write_ndjson(tmp_path)
    first = import_fhir(tmp_path, site=site)
    before = stored_counts()

    again = import_fhir(tmp_path, site=site)

    assert again.ok and not again.created
    assert again.unchanged == sum(first.created.values())
    assert stored_counts() == before


def test_importing_our_own_export_into_the_same_clinic_changes_nothing(demo_clinic, tmp_path):
    write_ndjson(tmp_path)
    before = stored_counts()
    report = import_fhir(tmp_path)
    assert report.ok and not report.created
    assert stored_counts() == before


def _lab(n: int, patient: cm.Patient, **changes) -> dict:
    res = {
        "resourceType": "Observation", "id": f"x{n}",
        "identifier": [{"system": "urn:example:lab", "value": f"L{n}"}],
        "status": "final",
        "category": [{"coding": [{"system": c.OBS_CATEGORY, "code": "laboratory"}]}],
        "code": {"coding": [{"system": c.LOINC, "code": "2842-3"}]},
        "subject": {"identifier": {"system": c.mrn_system(patient.site.name),
                                    "value": patient.identifier}},
        "effectiveDateTime": "2026-01-10T09:00:00+00:00",
        "valueQuantity": {"value": 12.5, "unit": "ng/mL", "system": c.UCUM, "code": "ng/mL"},
    }
    res.update(changes)
    return res


def _write(path, resources) -> None:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in resources) + "\n")


def test_a_bad_file_is_reported_by_line_and_reason_and_nothing_of_it_is_stored(clinic, tmp_path):
    p = clinic.patient_a
    bad_unit = _lab(2, p, valueQuantity={"value": 12.5, "unit": "furlongs", "code": "furlongs"})
    unknown_patient = _lab(4, p, subject={"identifier": {"system": c.mrn_system(p.site.name),
                                                         "value": "NOBODY"}})
    finished = _lab(5, p, status="finished")
    not_fhir = _lab(6, p, colour="red")
    _write(tmp_path / "Observation.ndjson",
           [_lab(1, p), bad_unit, "{not json", unknown_patient, finished, not_fhir])
    before = stored_counts()

    report = import_fhir(tmp_path / "Observation.ndjson")

    assert not report.ok
    lines = {pr.line: pr.message for pr in report.problems}
    assert set(lines) == {2, 3, 4, 5, 6}
    assert "unit" in lines[2] and "furlongs" in lines[2]
    assert "not valid JSON" in lines[3]
    assert "no patient with identifier" in lines[4] and "NOBODY" in lines[4]
    assert "status 'finished'" in lines[5]
    assert "not a valid FHIR R4 resource" in lines[6] and "colour" in lines[6]
    assert stored_counts() == before  # line 1 was good, but nothing of the file is stored


def test_good_files_of_a_folder_are_stored_when_another_file_is_bad(clinic, tmp_path):
    p = clinic.patient_a
    _write(tmp_path / "Observation.ndjson", [_lab(1, p), _lab(2, p, effectiveDateTime="2999-01-01T00:00:00Z")])
    qr = {"resourceType": "QuestionnaireResponse", "identifier": {"system": "urn:example:qr", "value": "Q1"},
          "questionnaire": f"{c.QUESTIONNAIRE_BASE}/craving-nrs", "status": "completed",
          "subject": _subject(p), "authored": "2026-01-10T09:00:00Z",
          "item": [{"linkId": "craving", "answer": [{"valueCoding": {"code": "7"}}]}]}
    _write(tmp_path / "QuestionnaireResponse.ndjson", [qr])

    report = import_fhir(tmp_path)

    by_file = {f.file: f for f in report.files}
    assert not by_file["Observation.ndjson"].stored
    assert "future" in by_file["Observation.ndjson"].problems[0].message
    assert by_file["Observation.ndjson"].problems[0].line == 2
    assert by_file["QuestionnaireResponse.ndjson"].created == Counter({"Assessment": 1})
    a = cm.Assessment.objects.get(patient=p)
    assert (a.instrument, a.total, a.source) == ("craving-nrs", 7, "import")
    assert cm.LabResult.objects.count() == 0
    audit = cm.AuditEntry.objects.filter(model="Assessment", object_id=a.pk).get()
    assert "QuestionnaireResponse.ndjson line 1" in audit.reason


def test_a_response_is_rescored_by_the_one_scorer_and_an_impossible_answer_refused(clinic, tmp_path):
    p = clinic.patient_a
    items = [{"linkId": i, "answer": [{"valueCoding": {"code": "1"}}]} for i in
             ("interest", "mood", "sleep", "energy", "appetite", "self-worth", "concentration",
              "psychomotor", "self-harm")]
    qr = {"resourceType": "QuestionnaireResponse", "id": "q9",
          "questionnaire": f"{c.QUESTIONNAIRE_BASE}/phq9|kroenke-2001", "status": "completed",
          "subject": _subject(p), "authored": "2026-01-10T09:00:00Z",
          "item": items}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": qr}]}
    (tmp_path / "b.json").write_text(json.dumps(bundle))
    report = import_fhir(tmp_path / "b.json")
    assert report.ok
    a = cm.Assessment.objects.get(patient=p)
    assert (a.total, a.band) == (9, cm.Assessment.objects.get(pk=a.pk).band)
    assert "phq9-item9-positive" in a.flags

    bad = copy.deepcopy(qr)
    bad["id"] = "q10"
    bad["item"][0]["answer"][0]["valueCoding"]["code"] = "4"
    bundle["entry"] = [{"resource": qr}, {"resource": bad}]
    (tmp_path / "b2.json").write_text(json.dumps(bundle))
    report = import_fhir(tmp_path / "b2.json")
    assert [(pr.line, "interest" in pr.message) for pr in report.problems] == [(2, True)]
    assert cm.Assessment.objects.count() == 1


def test_medication_statements_become_doses_substances_and_medications(clinic, tmp_path):
    p = clinic.patient_a
    subject = _subject(p)
    dose = {"resourceType": "MedicationStatement", "id": "d1", "status": "completed",
            "medicationCodeableConcept": {"coding": [{"system": c.CS_SUBSTANCE, "code": "kratom"}],
                                          "text": "Green Maeng Da"},
            "subject": subject, "effectiveDateTime": "2026-01-10T08:00:00+01:00",
            "dosage": [{"doseAndRate": [{"doseQuantity": {"value": 4, "system": c.UCUM, "code": "g"}}]}]}
    alcohol = {"resourceType": "MedicationStatement", "id": "s1", "status": "completed",
               "medicationCodeableConcept": {"coding": [{"system": c.CS_SUBSTANCE, "code": "alcohol"}]},
               "subject": subject, "effectiveDateTime": "2026-01-10T20:00:00Z"}
    med = {"resourceType": "MedicationStatement", "id": "m1", "status": "active",
           "medicationCodeableConcept": {"text": "Naltrexone 50 mg"}, "subject": subject,
           "effectivePeriod": {"start": "2026-01-02"}}
    mg = copy.deepcopy(dose)
    mg["id"] = "d2"
    mg["dosage"][0]["doseAndRate"][0]["doseQuantity"] = {"value": 30, "system": c.UCUM, "code": "mg"}
    _write(tmp_path / "ms.ndjson", [dose, alcohol, med, mg])
    report = import_fhir(tmp_path / "ms.ndjson")
    assert [pr.line for pr in report.problems] == [4]
    assert "mg of what" in report.problems[0].message

    _write(tmp_path / "ms.ndjson", [dose, alcohol, med])
    assert import_fhir(tmp_path / "ms.ndjson").ok
    d = cm.Dose.objects.get(patient=p)
    assert (d.amount, d.unit, d.product) == (4, "g", "Green Maeng Da")
    assert d.taken_at == dt.datetime(2026, 1, 10, 7, 0, tzinfo=dt.UTC)
    assert d.mitragynine_mg is not None  # estimated by the one dose converter
    assert cm.SubstanceUse.objects.get(patient=p).name == "alcohol"
    assert cm.Medication.objects.get(patient=p).start == dt.date(2026, 1, 2)


def test_changed_content_under_a_known_identifier_is_a_new_version(clinic, tmp_path):
    p = clinic.patient_a
    _write(tmp_path / "o.ndjson", [_lab(1, p)])
    assert import_fhir(tmp_path / "o.ndjson").ok
    first = cm.LabResult.objects.get()
    changed = _lab(1, p, status="corrected",
                   valueQuantity={"value": 13, "unit": "ng/mL", "system": c.UCUM, "code": "ng/mL"})
    _write(tmp_path / "o.ndjson", [changed])

    report = import_fhir(tmp_path / "o.ndjson")

    assert report.ok and report.created == {"LabResult (updated)": 1}
    first.refresh_from_db()
    current = cm.LabResult.objects.current().get()
    assert (first.superseded, float(first.value)) == (True, 12.5)  # nothing overwritten
    assert (current.replaces, float(current.value), current.source) == (first, 13.0, "import")
    assert "version 2 from the sender" in current.change_reason
    entry = cm.AuditEntry.objects.filter(model="LabResult", object_id=current.pk).get()
    assert entry.action == "correct" and entry.before["value"] == "12.5"
    assert list(ImportedResource.objects.order_by("version").values_list(
        "version", "object_id", "source_status")) == [(1, first.pk, "final"),
                                                     (2, current.pk, "corrected")]
    # the same update again: nothing new
    before = stored_counts()
    assert import_fhir(tmp_path / "o.ndjson").unchanged == 1
    assert stored_counts() == before


def test_an_implausible_value_needs_the_confirmed_extension(clinic, tmp_path):
    p = clinic.patient_a
    huge = _lab(1, p, valueQuantity={"value": 5000, "unit": "ng/mL", "system": c.UCUM, "code": "ng/mL"})
    _write(tmp_path / "o.ndjson", [huge])
    report = import_fhir(tmp_path / "o.ndjson")
    assert c.EXT_CONFIRMED_UNUSUAL in report.problems[0].message
    huge["extension"] = [{"url": c.EXT_CONFIRMED_UNUSUAL, "valueBoolean": True}]
    _write(tmp_path / "o.ndjson", [huge])
    assert import_fhir(tmp_path / "o.ndjson").ok
    assert cm.LabResult.objects.get().confirmed_unusual
