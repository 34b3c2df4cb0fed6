"""Issue 15, item 3: ``/patients/new/`` registers a patient without Django's admin and hands
out a one-time set-up link (single use, expiring, audited); ``/account/setup/…`` sets the
patient's first password and opens their first page."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from tests.conftest import form_token

from speciosa.clinic.models import AuditEntry, Consent, Patient

pytestmark = pytest.mark.django_db

PASSWORD = "rain over the quiet harbour"


def post(clinic, **over):
    data = {"token": form_token(over.pop("token", "reg-1")), "site": str(clinic.site_a.pk),
            "care_team": str(clinic.team_a.pk), "identifier": "RRC-9001", "given_name": "Nia",
            "family_name": "Okoro", "birth_date": "1992-03-04", "sex": "female",
            "in_care_since": "", "consent_care": "on"}
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def _link(page: str) -> str:
    return re.search(r'<code id="setup-link">http://testserver(/account/setup/[^<]+)</code>',
                     page).group(1)


def test_a_clinician_registers_a_patient_and_gets_a_one_time_link(clinic, login):
    response = login(clinic.clinician_a).post("/patients/new/", post(clinic))
    assert response.status_code == 200, response.content.decode()[:500]
    page = response.content.decode()
    assert "Nia Okoro is registered" in page and 'src="data:image/svg+xml;base64,' in page
    patient = Patient.objects.get(identifier="RRC-9001")
    assert patient.user is not None and not patient.user.has_usable_password()
    assert patient.user.profile.role == "patient" and patient.user.profile.site == clinic.site_a
    assert Consent.objects.filter(patient=patient, kind="care", given=True).exists()
    assert AuditEntry.objects.filter(action="credentials", after__what="setup-link-issued",
                                     patient=patient).count() == 1

    link = _link(page)
    patient_browser = Client()
    assert f"Your username is <strong>{patient.user.username}</strong>" in \
        patient_browser.get(link).content.decode()
    done = patient_browser.post(link, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/me/?welcome=1"
    first = patient_browser.get("/me/").content.decode()
    assert "Welcome to Speciosa" in first and "Once a day, write your diary" in first
    patient.user.refresh_from_db()
    assert patient.user.check_password(PASSWORD)
    assert AuditEntry.objects.filter(action="credentials", after__what="setup-completed").count() == 1
    # single use: the link is dead once the password is set
    again = Client().get(link)
    assert again.status_code == 410 and "does not work any more" in again.content.decode()


def test_an_expired_link_is_refused(clinic, login, settings):
    page = login(clinic.clinician_a).post("/patients/new/", post(clinic)).content.decode()
    settings.SETUP_LINK_HOURS = -1
    response = Client().get(_link(page))
    assert response.status_code == 410


def test_a_tampered_link_is_refused(clinic, login):
    page = login(clinic.clinician_a).post("/patients/new/", post(clinic)).content.decode()
    link = _link(page)
    assert Client().get(link[:-3] + "abc/").status_code == 410
    other_uid = re.sub(r"/account/setup/[^/]+/", "/account/setup/MQ/", link)
    assert Client().get(other_uid).status_code == 410


def test_the_team_picker_tells_same_named_teams_apart_and_offers_only_ones_own(clinic, login):
    from speciosa.clinic.models import CareTeam

    CareTeam.objects.create(site=clinic.site_b, name="Team A")
    page = login(clinic.clinician_a).get("/patients/new/").content.decode()
    assert "Team A — Site A" in page
    assert "Site B" not in page  # not a team of this clinician's


def test_another_sites_team_is_refused_and_nothing_is_stored(clinic, login):
    response = login(clinic.clinician_a).post("/patients/new/", post(clinic, care_team=str(clinic.team_b.pk)))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Patient.objects.filter(identifier="RRC-9001").exists()


def test_the_hostile_registration_is_refused_field_by_field(clinic, login):
    response = login(clinic.clinician_a).post("/patients/new/", post(
        clinic, sex="male", pregnant="on", birth_date="2030-01-01", in_care_since="2027-01-01",
        consent_care=None))
    page = response.content.decode()
    assert response.status_code == 200
    assert "consent to care" in page
    assert not Patient.objects.filter(identifier="RRC-9001").exists()
    response = login(clinic.clinician_a).post("/patients/new/", post(
        clinic, token="reg-2", sex="male", pregnant="on", birth_date="2030-01-01",
        in_care_since="2027-01-01"))
    page = response.content.decode()
    assert "Pregnancy is recorded only when the sex is female" in page
    assert "Give a birth date from" in page
    assert not Patient.objects.filter(identifier="RRC-9001").exists()


def test_a_patient_or_researcher_cannot_register(clinic, login):
    for user in (clinic.patient_a.user, clinic.researcher):
        assert login(user).post("/patients/new/", post(clinic)).status_code == 403
    assert not Patient.objects.filter(identifier="RRC-9001").exists()


def test_a_double_tap_registers_one_patient(clinic, login):
    client = login(clinic.clinician_a)
    client.post("/patients/new/", post(clinic))
    client.post("/patients/new/", post(clinic))
    assert Patient.objects.filter(identifier="RRC-9001").count() == 1


def test_a_lost_link_is_replaced_from_the_patient_page_until_the_password_is_set(clinic, login):
    client = login(clinic.clinician_a)
    client.post("/patients/new/", post(clinic))
    patient = Patient.objects.get(identifier="RRC-9001")
    assert "New set-up link" in client.get(f"/patients/{patient.pk}/").content.decode()
    page = client.post(f"/patients/{patient.pk}/setup-link/").content.decode()
    link = _link(page)
    Client().post(link, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert "New set-up link" not in client.get(f"/patients/{patient.pk}/").content.decode()
    assert client.post(f"/patients/{patient.pk}/setup-link/").status_code == 403
    # another team's clinician cannot make one
    assert login(clinic.clinician_b).post(f"/patients/{patient.pk}/setup-link/").status_code == 404
