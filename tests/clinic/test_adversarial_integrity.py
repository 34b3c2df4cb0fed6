"""Issue 15 adversarial pass: attacks on the integrity rules and onboarding that the first
tests did not try."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import Client
from django.utils import timezone
from tests.conftest import form_token, make_patient

from speciosa.clinic import integrity, onboarding
from speciosa.clinic.models import Patient, Profile

pytestmark = pytest.mark.django_db


def test_a_patients_login_cannot_be_made_staff_after_linking(clinic):
    user = clinic.patient_a.user
    user.is_staff = True
    with pytest.raises(ValidationError):
        user.save()


def test_a_patients_login_cannot_become_a_clinician(clinic):
    profile = clinic.patient_a.user.profile
    profile.role = "clinician"
    with pytest.raises(ValidationError):
        profile.save()


def test_a_clinicians_login_cannot_be_made_superuser(clinic):
    user = clinic.clinician_a
    user.is_superuser = True
    with pytest.raises(ValidationError):
        user.save()


def test_moving_a_team_or_a_patient_to_another_site_is_refused(clinic):
    team = clinic.team_a
    team.site = clinic.site_b
    with pytest.raises(ValidationError):
        team.save()
    patient = Patient.objects.get(pk=clinic.patient_a.pk)
    patient.site = clinic.site_b
    with pytest.raises(ValidationError):
        patient.save()


def test_a_clinician_of_another_site_cannot_join_a_team(clinic):
    Profile.objects.filter(user=clinic.clinician_b).update(site=clinic.site_b)
    clinic.clinician_b.refresh_from_db()
    with pytest.raises(ValidationError), transaction.atomic():
        clinic.team_a.members.add(clinic.clinician_b)
    with pytest.raises(ValidationError), transaction.atomic():
        clinic.clinician_b.care_teams.add(clinic.team_a)
    assert not clinic.team_a.members.filter(pk=clinic.clinician_b.pk).exists()


def test_pregnant_then_sex_changed_is_refused(clinic):
    patient = Patient.objects.get(pk=clinic.patient_a.pk)
    patient.pregnant = True
    patient.save()
    patient.sex = "male"
    with pytest.raises(ValidationError):
        patient.save()


def test_today_is_the_sites_today_not_the_servers(clinic, settings, monkeypatch):
    """23:30 UTC is already tomorrow in Auckland: a patient entering care there 'today'
    (local) is not in the future; and in Los Angeles, the UTC date is tomorrow there."""
    now = dt.datetime(2026, 12, 1, 23, 30, tzinfo=dt.UTC)
    monkeypatch.setattr(timezone, "now", lambda: now)
    site = clinic.site_a
    site.time_zone = "Pacific/Auckland"
    site.save()
    local_today = now.astimezone(zoneinfo.ZoneInfo("Pacific/Auckland")).date()
    assert local_today == dt.date(2026, 12, 2)
    patient = make_patient(site, clinic.team_a, None, "", sex="female")
    patient.in_care_since = local_today
    assert integrity.patient_problems(patient) == {}
    site_b = clinic.site_b
    site_b.time_zone = "America/Los_Angeles"
    site_b.save()
    other = make_patient(site_b, clinic.team_b, None, "", sex="male",
                         in_care_since=dt.date(2026, 11, 30))
    other.in_care_since = dt.date(2026, 12, 1)
    assert integrity.patient_problems(other) == {}
    other.in_care_since = dt.date(2026, 12, 2)  # tomorrow in Los Angeles (15:30 on 1 Dec)
    assert "in_care_since" in integrity.patient_problems(other)


def test_a_new_setup_link_revokes_the_earlier_one(clinic, login):
    patient = make_patient(clinic.site_a, clinic.team_a, None, "", sex="female")
    login_user, first = onboarding.issue_setup_link(clinic.clinician_a, patient)
    login_user.refresh_from_db()
    assert onboarding.SETUP_TOKENS.check(login_user, first)
    login_user, second = onboarding.issue_setup_link(clinic.clinician_a, patient)
    login_user.refresh_from_db()
    assert onboarding.SETUP_TOKENS.check(login_user, second)
    assert not onboarding.SETUP_TOKENS.check(login_user, first), \
        "the lost first link still sets the patient's password"


def test_a_clinician_of_another_team_cannot_issue_a_link(clinic, login):
    patient = make_patient(clinic.site_a, clinic.team_a, None, "", sex="female")
    response = login(clinic.clinician_b).post(f"/patients/{patient.pk}/setup-link/")
    assert response.status_code in (403, 404)
    patient.refresh_from_db()
    assert patient.user is None


def test_register_into_another_sites_team_by_editing_the_post(clinic, login):
    data = {"token": form_token("x-1"), "site": str(clinic.site_a.pk),
            "care_team": str(clinic.team_a.pk), "identifier": "RRC-1", "given_name": "Ed",
            "family_name": "It", "birth_date": "1990-01-01", "sex": "male",
            "consent_care": "on"}
    response = login(clinic.clinician_b).post("/patients/new/", data)
    assert not Patient.objects.filter(identifier="RRC-1").exists()
    assert response.status_code in (200, 403)
    data.update(site=str(clinic.site_b.pk), care_team=str(clinic.team_b.pk))
    data["site"] = str(clinic.site_a.pk)
    login(clinic.clinician_b).post("/patients/new/", data)
    assert not Patient.objects.filter(identifier="RRC-1").exists()


def test_non_admin_cannot_open_clinician_new(clinic, login):
    for user in (clinic.clinician_a, clinic.patient_a.user, clinic.researcher):
        c = Client()
        from tests.conftest import verified_login
        verified_login(c, user)
        assert c.get("/staff/clinicians/new/").status_code in (302, 403, 404)
        c.post("/staff/clinicians/new/", {"site": clinic.site_a.pk, "given_name": "E",
                                          "family_name": "V", "username": "evil"})
    from django.contrib.auth import get_user_model
    assert not get_user_model().objects.filter(username="evil").exists()


def test_clinician_form_cannot_set_a_role_or_superuser(clinic, login):
    c = login(clinic.admin)
    c.post("/staff/clinicians/new/", {"site": clinic.site_a.pk, "teams": [clinic.team_a.pk],
                                      "given_name": "E", "family_name": "V",
                                      "username": "newdoc", "role": "admin",
                                      "is_superuser": "on", "is_staff": "on"})
    from django.contrib.auth import get_user_model
    u = get_user_model().objects.get(username="newdoc")
    assert u.profile.role == "clinician" and not u.is_superuser and not u.is_staff
    # the same name again (double submit) is one login
    c.post("/staff/clinicians/new/", {"site": clinic.site_a.pk, "given_name": "E",
                                      "family_name": "V", "username": "NewDoc"})
    assert get_user_model().objects.filter(username__iexact="newdoc").count() == 1


def test_clinician_setup_link_does_not_skip_the_second_factor(clinic, login):
    c = login(clinic.admin)
    page = c.post("/staff/clinicians/new/", {"site": clinic.site_a.pk, "given_name": "E",
                                             "family_name": "V", "username": "doc2"}).content.decode()
    link = re.search(r'http://testserver(/account/setup/[^<"\s]+)', page).group(1)
    b = Client()
    pw = "rain over the quiet harbour"
    r = b.post(link, {"new_password1": pw, "new_password2": pw})
    assert r.status_code == 302
    patients = b.get(f"/patients/{clinic.patient_a.pk}/")
    assert patients.status_code == 302 and "patients" not in patients.get("Location", "x")[:10]
