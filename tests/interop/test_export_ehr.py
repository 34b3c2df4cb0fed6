"""Export an EHR reads correctly: Questionnaires with their LOINC panel, item and answer codes
(and never licensed wording), substance use as social-history Observations, kratom doses as
MedicationStatements, notes as DocumentReferences, and the first author and time of a record
kept through a correction."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt

import pytest
from django.utils import timezone

from speciosa.clinic import models as cm
from speciosa.clinic import services
from speciosa.interop import codes as c
from speciosa.interop import importer
from speciosa.interop.export import Exporter, questionnaire, validate
from speciosa.knowledge import instruments as kinstruments

from .r4 import parse_r4

pytestmark = pytest.mark.django_db


def _get(client, url, **kw):
    return client.get(url, HTTP_ACCEPT="application/fhir+json", **kw)


def _q(inst_id):
    return questionnaire(kinstruments.get_instrument(inst_id))


# --------------------------------------------------------------------------- Questionnaire

@pytest.mark.parametrize(("inst_id", "panel"), [("phq9", "44249-1"), ("gad7", "69737-5"),
                                                ("audit-c", "72109-2")])
def test_questionnaires_carry_their_loinc_panel_code(inst_id, panel):
    q = _q(inst_id)
    parse_r4(q)
    assert [cd["code"] for cd in q["code"]] == [panel]
    assert q["code"][0]["system"] == c.LOINC
    # the total's code belongs to the score Observation, not the questionnaire
    assert c.SCORE_LOINC[inst_id][0] not in str(q["code"])


def test_instruments_without_loinc_keep_speciosas_own_codes():
    q = _q("cows")
    assert "code" not in q and q["url"] == f"{c.QUESTIONNAIRE_BASE}/cows"
    assert q["identifier"] == [{"system": c.CS_SCORE, "value": "cows"}]
    assert "72514-3" not in str(q)
    first = q["item"][0]
    assert first["code"] == [{"system": c.item_system("cows"), "code": "pulse",
                              "display": first["text"]}]
    assert {o["valueCoding"]["system"] for o in first["answerOption"]} == {
        f"{c.QUESTIONNAIRE_BASE}/cows/pulse"}


def test_phq9_items_and_answers_carry_loinc_where_the_reference_has_them():
    q = _q("phq9")
    items = {i["linkId"]: i for i in q["item"]}
    assert items["interest"]["code"][0] == {"system": c.LOINC, "code": "44250-9"}
    assert items["self-harm"]["code"][0] == {"system": c.LOINC, "code": "44260-8"}
    assert [cd["system"] for cd in items["difficulty"]["code"]] == [c.item_system("phq9")]
    answers = [(o["valueCoding"]["system"], o["valueCoding"]["code"])
               for o in items["mood"]["answerOption"]]
    assert answers == [(c.LOINC, "LA6568-5"), (c.LOINC, "LA6569-3"), (c.LOINC, "LA6570-1"),
                       (f"{c.QUESTIONNAIRE_BASE}/phq9/mood", "3")]
    # LA6571-9 ("nearly every day") is UNCONFIRMED in the reference: never shipped
    assert "LA6571-9" not in str(q) and "LA6571-9" not in str(_q("gad7"))
    # the ordinal value stays on every option
    assert [o["extension"][0]["valueDecimal"] for o in items["mood"]["answerOption"]] == [0, 1, 2, 3]


def test_licensed_wording_loaded_by_a_site_is_never_exported():
    inst = kinstruments.get_instrument("asex")
    licensed = dataclasses.replace(
        inst, items=tuple(dataclasses.replace(it, text=f"LICENSED WORDING {it.id}")
                          for it in inst.items))
    q = questionnaire(licensed)
    assert "LICENSED WORDING" not in str(q)
    assert [i["text"] for i in q["item"]] == [it.label for it in inst.items]


def test_a_phq9_response_exports_loinc_answers_and_imports_back_to_the_same_values(clinic):
    p, clin = clinic.patient_a, clinic.clinician_a
    items = {"interest": 1, "mood": 3, "sleep": 0, "energy": 2, "appetite": 0, "self-worth": 0,
             "concentration": 0, "psychomotor": 0, "self-harm": 0, "difficulty": 1}
    services.record_assessment(clin, p, "phq9", items, at=timezone.now() - dt.timedelta(days=1))
    qr = next(Exporter().assessments(want=frozenset({"QuestionnaireResponse"})))
    parse_r4(qr)
    answers = {i["linkId"]: i["answer"][0]["valueCoding"] for i in qr["item"]}
    assert answers["interest"] == {"system": c.LOINC, "code": "LA6569-3", "display": "several days"}
    assert answers["mood"]["code"] == "3" and answers["mood"]["system"] != c.LOINC
    fields = importer._assessment_fields(qr, p)
    assert fields["items"] == items and fields["total"] == 6
    # hostile: a LOINC answer code that is not an answer of that item
    bad = dict(qr, item=[{"linkId": "interest",
                          "answer": [{"valueCoding": {"system": c.LOINC, "code": "LA9999-9"}}]}])
    with pytest.raises(importer._Bad, match="LA9999-9"):
        importer._assessment_fields(bad, p)


# --------------------------------------------------------------------------- substances, doses

@pytest.fixture
def diary(clinic):
    """patient_a's diary day: a kratom dose, alcohol and cannabis; the dose corrected by the
    clinician later."""
    p = clinic.patient_a
    at = timezone.now() - dt.timedelta(hours=20)
    services.record_diary(p.user, p, services.DiaryInput(
        day=timezone.localdate(at), doses=[{"taken_at": at, "amount": "3", "unit": "g"}],
        craving=3, substances=["alcohol", "cannabis"], substance_detail="two beers"))
    return clinic


def test_substance_use_is_a_social_history_observation_not_a_medication(diary, login):
    exp = Exporter(cm.Patient.objects.filter(pk=diary.patient_a.pk))
    statements = [r for r in exp.resources(["MedicationStatement"])
                  if r["resourceType"] == "MedicationStatement"]
    assert [s["medicationCodeableConcept"]["coding"][0]["code"] for s in statements] == ["kratom"]
    assert statements[0]["medicationCodeableConcept"]["coding"][0]["system"] == c.CS_SUBSTANCE
    social = [r for r in exp.resources(["Observation"]) if r["id"].startswith("sub")]
    assert sorted(o["code"]["coding"][0]["code"] for o in social) == ["alcohol", "cannabis"]
    for o in social:
        validate(o)
        parse_r4(o)
        assert o["category"][0]["coding"][0]["code"] == "social-history"
        assert o["code"]["coding"][0]["system"] == c.CS_SUBSTANCE_USE
        assert o["valueBoolean"] is True
        assert o["performer"] == [o["subject"]]  # the patient reported it
    assert {o["note"][0]["text"] for o in social} == {"two beers"}
    client = login(diary.clinician_a)
    found = _get(client, f"/fhir/Observation?patient={diary.patient_a.pk}&category=social-history"
                         f"&code={c.CS_SUBSTANCE_USE}|alcohol").json()
    assert [e["resource"]["code"]["coding"][0]["code"] for e in found["entry"]] == ["alcohol"]
    sub = cm.SubstanceUse.objects.filter(patient=diary.patient_a).first()
    assert _get(client, f"/fhir/MedicationStatement/sub{sub.pk}").status_code == 404
    assert _get(client, f"/fhir/Observation/sub{sub.pk}").status_code == 200


def test_a_corrected_patient_report_keeps_its_author_and_first_time(diary):
    dose = cm.Dose.objects.get(patient=diary.patient_a)
    first_at = dose.entered_at
    new = services.correct_record(diary.clinician_a, dose, {"amount": "4"}, "patient said 4 g")
    exp = Exporter(cm.Patient.objects.filter(pk=diary.patient_a.pk))
    ms = next(r for r in exp.resources(["MedicationStatement"]) if r["id"] == f"dose{dose.pk}")
    assert ms["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 4
    assert ms["category"]["coding"][0]["code"] == "patientspecified"
    assert ms["informationSource"] == {"reference": f"Patient/{diary.patient_a.pk}"}
    assert ms["dateAsserted"] == first_at.isoformat()
    assert ms["meta"]["versionId"] == "2"
    assert ms["meta"]["lastUpdated"] == new.entered_at.isoformat()
    prov = next(r for r in exp.resources(["Provenance"]) if r["id"] == f"dose{dose.pk}")
    parse_r4(prov)
    assert prov["occurredDateTime"] == first_at.isoformat()
    assert prov["recorded"] == new.entered_at.isoformat()
    roles = [(a["type"]["coding"][0]["code"], a["who"]["reference"]) for a in prov["agent"]]
    assert roles == [("author", f"Patient/{diary.patient_a.pk}"),
                     ("informant", f"Patient/{diary.patient_a.pk}"),
                     ("performer", f"Practitioner/{diary.clinician_a.pk}")]


# --------------------------------------------------------------------------- notes

@pytest.fixture
def note(clinic):
    return services.record_note(clinic.clinician_a, clinic.patient_a,
                                "Tapering well; discussed sleep. Ünïcode kept.")


def test_a_note_is_a_document_reference_with_its_author_and_times(note, clinic, login):
    client = login(clinic.clinician_a)
    resp = _get(client, f"/fhir/DocumentReference/note{note.pk}")
    assert resp.status_code == 200
    doc = resp.json()
    validate(doc)
    parse_r4(doc)
    data = doc["content"][0]["attachment"]
    assert data["contentType"] == "text/plain; charset=utf-8"
    assert base64.b64decode(data["data"]).decode("utf-8") == note.text
    assert doc["author"][0]["reference"] == f"Practitioner/{clinic.clinician_a.pk}"
    assert doc["date"] == note.entered_at.isoformat()
    assert doc["context"]["period"]["start"] == note.at.isoformat()
    assert doc["meta"]["security"][0]["code"] == "42CFRPart2"
    found = _get(client, f"/fhir/DocumentReference?patient={clinic.patient_a.pk}").json()
    assert [e["resource"]["id"] for e in found["entry"]] == [f"note{note.pk}"]
    # a correction is a new version of the same document
    services.correct_record(clinic.clinician_a, note, {"text": "Tapering well."}, "typo")
    again = _get(client, f"/fhir/DocumentReference/note{note.pk}").json()
    assert again["docStatus"] == "amended" and again["meta"]["versionId"] == "2"
    assert again["date"] == note.entered_at.isoformat()  # first written


def test_notes_stay_with_the_care_team(note, clinic, login):
    patient = login(clinic.patient_a.user)
    assert _get(patient, f"/fhir/DocumentReference/note{note.pk}").status_code == 404
    assert _get(patient, f"/fhir/DocumentReference/note{note.pk}/_history").status_code == 404
    listed = _get(patient, "/fhir/DocumentReference").json()
    assert listed.get("entry", []) == []
    everything = _get(patient, f"/fhir/Patient/{clinic.patient_a.pk}/$everything").json()
    assert "DocumentReference" not in {e["resource"]["resourceType"] for e in everything["entry"]}
    assert note.text not in str(everything)
    other = login(clinic.clinician_b)
    assert _get(other, f"/fhir/DocumentReference/note{note.pk}").status_code == 404
