"""``/patients/``: a clinician's list of their care teams' patients, with a search box."""

from __future__ import annotations

import pytest
from django.urls import reverse
from tests.conftest import make_patient

pytestmark = pytest.mark.django_db


def test_the_patient_list_shows_only_the_clinicians_care_team(clinic, login):
    response = login(clinic.clinician_a).get(reverse("patient_list"))
    assert response.status_code == 200
    assert b"Quinn" in response.content
    assert b"Reyes" not in response.content


def test_it_searches_by_name_or_record_number(clinic, login):
    other = make_patient(clinic.site_a, clinic.team_a, None, "", given_name="Ines",
                         family_name="Vargas", identifier="MRN-77123")
    client = login(clinic.clinician_a)
    by_name = client.get(reverse("patient_list"), {"q": "vargas"}).content.decode()
    assert "Vargas" in by_name and "Quinn" not in by_name
    by_number = client.get(reverse("patient_list"), {"q": "77123"}).content.decode()
    assert "Vargas" in by_number and "Quinn" not in by_number
    assert f'href="/patients/{other.pk}/"' in by_number


def test_a_search_never_reaches_another_care_teams_patient(clinic, login):
    page = login(clinic.clinician_a).get(reverse("patient_list"), {"q": "Reyes"}).content.decode()
    assert 'value="Reyes"' in page  # the search is kept in the box ...
    assert "Omar" not in page and f"/patients/{clinic.patient_b.pk}/" not in page  # ... and finds none


@pytest.mark.parametrize("q", ["%", "_", "' OR 1=1 --", "x" * 2000, "   "],
                         ids=["percent", "underscore", "sql-like", "very long", "blank"])
def test_junk_in_the_search_box_is_a_search_not_an_error(clinic, login, q):
    response = login(clinic.clinician_a).get(reverse("patient_list"), {"q": q})
    assert response.status_code == 200
    assert b"Reyes" not in response.content
    if q.strip() in ("%", "_", "' OR 1=1 --"):  # matched literally: nobody has that in a name
        assert b"Quinn" not in response.content


@pytest.mark.parametrize("who", ["patient_user_a", "researcher", "admin"])
def test_only_clinicians_see_the_patient_list(clinic, login, who):
    user = clinic.patient_a.user if who == "patient_user_a" else getattr(clinic, who)
    response = login(user).get(reverse("patient_list"))
    assert response.status_code == 403


def test_a_search_without_a_match_says_no_patient_matched(clinic, login):
    page = login(clinic.clinician_a).get("/patients/", {"q": "Zebulon"}).content.decode()
    assert "No patient matched “Zebulon” in your care teams" in page
    assert "No patients in your care teams" not in page
