"""The read-only FHIR API at /fhir/: access through the one access decision, FHIR JSON,
searches, $everything, and 404 OperationOutcomes for anything out of reach."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from tests.conftest import issue_token

from speciosa.clinic import models as cm
from speciosa.clinic import services
from speciosa.interop.export import validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(clinic):
    at = timezone.now() - dt.timedelta(days=3)
    for patient, clin in ((clinic.patient_a, clinic.clinician_a), (clinic.patient_b, clinic.clinician_b)):
        services.record_lab(clin, patient, {"lab": "prolactin", "collected_at": at, "value": "14",
                                            "unit": "ng/mL"})
        services.record_lab(clin, patient, {"lab": "prolactin", "collected_at": at - dt.timedelta(days=40),
                                            "value": "9", "unit": "ng/mL"})
        services.record_assessment(clin, patient, "cows", {
            "pulse": 1, "sweating": 0, "restlessness": 1, "pupil": 0, "bone-joint-aches": 1,
            "runny-nose-tearing": 0, "gi-upset": 0, "tremor": 0, "yawning": 1,
            "anxiety-irritability": 1, "gooseflesh": 0}, at=at)
    return clinic


def _get(client, url, **kw):
    return client.get(url, HTTP_ACCEPT="application/fhir+json", **kw)


def test_a_clinician_reads_their_patient_as_fhir_json(records, login):
    client = login(records.clinician_a)
    resp = _get(client, f"/fhir/Patient/{records.patient_a.pk}")
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("application/fhir+json")
    body = resp.json()
    validate(body)
    assert body["identifier"][0]["value"] == records.patient_a.identifier
    assert cm.AuditEntry.objects.filter(patient=records.patient_a, action="view", model="fhir:Patient").exists()


def test_another_teams_patient_and_their_records_are_404_with_an_operation_outcome(records, login):
    client = login(records.clinician_a)
    resp = _get(client, f"/fhir/Patient/{records.patient_b.pk}")
    assert resp.status_code == 404
    assert resp.json()["resourceType"] == "OperationOutcome"
    lab_b = cm.LabResult.objects.filter(patient=records.patient_b).first()
    assert _get(client, f"/fhir/Observation/lab{lab_b.pk}").status_code == 404
    assert _get(client, f"/fhir/Observation?patient={records.patient_b.pk}").status_code == 404
    assert _get(client, f"/fhir/Patient/{records.patient_b.pk}/$everything").status_code == 404
    assert _get(client, "/fhir/Patient/999999").status_code == 404
    assert _get(client, "/fhir/Basic/1").status_code == 404


def test_a_patient_sees_only_themselves(records, login):
    client = login(records.patient_a.user)
    bundle = _get(client, "/fhir/Observation").json()
    subjects = {e["resource"]["subject"]["reference"] for e in bundle["entry"]}
    assert subjects == {f"Patient/{records.patient_a.pk}"}
    patients = _get(client, "/fhir/Patient").json()
    assert [e["resource"]["id"] for e in patients["entry"]] == [str(records.patient_a.pk)]
    assert _get(client, f"/fhir/Patient/{records.patient_b.pk}").status_code == 404


@pytest.mark.parametrize("who", ["researcher", "admin"])
def test_researchers_and_administrators_see_nothing_identifiable(records, login, who):
    client = login(getattr(records, who))
    assert _get(client, f"/fhir/Patient/{records.patient_a.pk}").status_code == 404
    bundle = _get(client, "/fhir/Observation").json()
    assert bundle["resourceType"] == "Bundle" and bundle["entry"] == []
    assert _get(client, "/fhir/Patient").json()["entry"] == []


def test_search_by_patient_and_date(records, login):
    client = login(records.clinician_a)
    since = (timezone.now() - dt.timedelta(days=10)).date().isoformat()
    bundle = _get(client, f"/fhir/Observation?patient={records.patient_a.pk}&date=ge{since}").json()
    validate(bundle)
    assert bundle["type"] == "searchset"
    labs = [e["resource"] for e in bundle["entry"] if e["resource"]["id"].startswith("lab")]
    assert [o["valueQuantity"]["value"] for o in labs] == [14]
    scores = [e["resource"] for e in bundle["entry"] if e["resource"]["id"].startswith("score")]
    assert scores[0]["valueQuantity"]["value"] == 5
    older = _get(client, f"/fhir/Observation?patient={records.patient_a.pk}&date=lt{since}").json()
    assert [e["resource"]["valueQuantity"]["value"] for e in older["entry"]] == [9]
    assert _get(client, "/fhir/Observation?date=soon").status_code == 400


def test_search_pages_with_count(records, login):
    client = login(records.clinician_a)
    first = _get(client, f"/fhir/Observation?patient={records.patient_a.pk}&_count=1").json()
    assert len(first["entry"]) == 1
    nxt = [link["url"] for link in first["link"] if link["relation"] == "next"][0]
    second = _get(client, nxt.replace("http://testserver", "")).json()
    assert second["entry"][0]["resource"]["id"] != first["entry"][0]["resource"]["id"]


def test_everything_returns_a_searchset_of_the_patients_record(records, login):
    client = login(records.clinician_a)
    bundle = _get(client, f"/fhir/Patient/{records.patient_a.pk}/$everything").json()
    validate(bundle)
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "CareTeam", "Observation", "QuestionnaireResponse", "Provenance",
            "Practitioner", "Questionnaire"} <= types
    patients = {e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"}
    assert patients == {str(records.patient_a.pk)}
    refs = {e["resource"]["subject"]["reference"] for e in bundle["entry"] if "subject" in e["resource"]}
    assert refs == {f"Patient/{records.patient_a.pk}"}


def test_a_token_authenticates_and_no_credentials_is_401(records, client):
    assert client.get(f"/fhir/Patient/{records.patient_a.pk}").status_code == 401
    token = issue_token(records.clinician_a)
    resp = client.get(f"/fhir/Patient/{records.patient_a.pk}", HTTP_AUTHORIZATION=f"Token {token}")
    assert resp.status_code == 200


def test_metadata_names_the_fhir_version(records, login):
    body = _get(login(records.clinician_a), "/fhir/metadata").json()
    validate(body)
    assert body["fhirVersion"] == "4.0.1"
