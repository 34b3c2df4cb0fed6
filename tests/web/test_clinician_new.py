"""Issue 15, item 3: an administrator adds a clinician to a site and its care teams without
Django's admin; teams of another site are refused; the clinician gets a one-time set-up link."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from speciosa.clinic.models import AuditEntry, CareTeam

pytestmark = pytest.mark.django_db


def post(clinic, **over):
    data = {"site": str(clinic.site_a.pk), "teams": [str(clinic.team_a.pk)],
            "given_name": "Rosa", "family_name": "Ferreira", "username": "dr.ferreira",
            "email": "rosa@example.invalid"}
    data.update(over)
    return data


def test_an_administrator_adds_a_clinician_to_a_sites_team(clinic, login):
    CareTeam.objects.create(site=clinic.site_b, name="Team A")
    client = login(clinic.admin)
    page = client.get("/staff/clinicians/new/").content.decode()
    assert "Team A — Site A" in page and "Team A — Site B" in page
    response = client.post("/staff/clinicians/new/", post(clinic))
    assert response.status_code == 200
    text = response.content.decode()
    assert "Rosa Ferreira is added" in text and "Team A — Site A" in text
    user = get_user_model().objects.get(username="dr.ferreira")
    assert (user.profile.role, user.profile.site) == ("clinician", clinic.site_a)
    assert list(user.care_teams.all()) == [clinic.team_a] and not user.has_usable_password()
    assert AuditEntry.objects.filter(action="create", model="Profile", user=clinic.admin).exists()
    link = re.search(r'<code id="setup-link">http://testserver(/[^<]+)</code>', text).group(1)
    done = Client().post(link, {"new_password1": "tall ships in the grey bay",
                                "new_password2": "tall ships in the grey bay"})
    assert done.status_code == 302


def test_a_team_of_another_site_is_refused_and_nothing_is_stored(clinic, login):
    response = login(clinic.admin).post("/staff/clinicians/new/",
                                        post(clinic, teams=[str(clinic.team_b.pk)]))
    assert response.status_code == 200
    assert "Choose care teams of Site A only" in response.content.decode()
    assert not get_user_model().objects.filter(username="dr.ferreira").exists()


def test_a_taken_login_name_is_refused(clinic, login):
    response = login(clinic.admin).post("/staff/clinicians/new/", post(clinic, username="CLIN_A"))
    assert "This login name is taken" in response.content.decode()


def test_only_an_administrator_adds_clinicians(clinic, login):
    assert login(clinic.clinician_a).post("/staff/clinicians/new/", post(clinic)).status_code == 403
    assert not get_user_model().objects.filter(username="dr.ferreira").exists()
