"""Issue 15, item 1 through the API: ``POST /api/v1/patients/`` registers a patient with the
same rules as the admin. The administrator's hostile patient (site A with site B's team, born
in 2030, male and pregnant, in care from 2027) is refused with a message per field and
nothing stored; a good one is stored once per Idempotency-Key with its consents."""

from __future__ import annotations

import pytest

from speciosa.clinic.models import AuditEntry, Consent, Patient

pytestmark = pytest.mark.django_db

URL = "/api/v1/patients/"


def good(clinic, **over):
    data = {"site": clinic.site_a.pk, "care_team": clinic.team_a.pk, "identifier": "RRC-777",
            "given_name": "Iris", "family_name": "Vale", "birth_date": "1990-04-02",
            "sex": "female", "pregnant": False, "consent_care": True, "consent_research": False}
    data.update(over)
    return data


def test_the_hostile_patient_is_refused_field_by_field_and_nothing_is_stored(api, clinic, key):
    data = good(clinic, care_team=clinic.team_b.pk, birth_date="2030-01-01",
                in_care_since="2027-01-01", sex="male", pregnant=True)
    response = api(clinic.clinician_a).post(URL, data, format="json", headers=key())
    # clinician_a is not in Site B's team: the team itself is out of reach first
    assert response.status_code == 403
    clinic.team_b.members.add(clinic.clinician_a)
    response = api(clinic.clinician_a).post(URL, data, format="json", headers=key())
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "not of Site A" in errors["care_team"][0]
    assert "Give a birth date from" in errors["birth_date"][0]
    assert "only when the sex is female" in errors["pregnant"][0]
    assert "Give a date from" in errors["in_care_since"][0]
    assert not Patient.objects.filter(identifier="RRC-777").exists()
    assert not AuditEntry.objects.filter(model="Patient", action="create").exists()


def test_entry_into_care_before_birth_is_refused(api, clinic, key):
    response = api(clinic.clinician_a).post(
        URL, good(clinic, in_care_since="1989-12-31"), format="json", headers=key())
    assert response.status_code == 400
    assert "(birth) to today" in response.json()["errors"]["in_care_since"][0]


def test_registering_without_consent_to_care_is_refused(api, clinic, key):
    response = api(clinic.clinician_a).post(URL, good(clinic, consent_care=False), format="json",
                                            headers=key())
    assert response.status_code == 400
    assert "consent to care" in response.json()["errors"]["consent_care"][0]
    assert not Patient.objects.filter(identifier="RRC-777").exists()


def test_a_patient_or_researcher_cannot_register_anyone(api, clinic, key):
    for user in (clinic.patient_a.user, clinic.researcher):
        assert api(user).post(URL, good(clinic), format="json", headers=key()).status_code == 403
    assert not Patient.objects.filter(identifier="RRC-777").exists()


def test_a_good_patient_is_stored_once_with_consents_and_audited(api, clinic, key):
    headers = key()
    first = api(clinic.clinician_a).post(URL, good(clinic), format="json", headers=headers)
    assert first.status_code == 201, first.content
    body = first.json()
    assert (body["identifier"], body["site"], body["care_team"]) == ("RRC-777", "Site A", "Team A")
    again = api(clinic.clinician_a).post(URL, good(clinic), format="json", headers=headers)
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    patient = Patient.objects.get(identifier="RRC-777")
    assert {(c.kind, c.given) for c in Consent.objects.filter(patient=patient)} == {
        ("care", True), ("research", False)}
    entry = AuditEntry.objects.get(model="Patient", action="create")
    assert (entry.user, entry.patient) == (clinic.clinician_a, patient)


def test_the_same_record_number_at_the_site_is_refused(api, clinic, key):
    data = good(clinic, identifier=clinic.patient_a.identifier)
    response = api(clinic.clinician_a).post(URL, data, format="json", headers=key())
    assert response.status_code == 400
    assert "already exists" in str(response.json()["errors"])
