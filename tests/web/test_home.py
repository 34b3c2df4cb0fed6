"""``/``: each role lands on its own start page; a visitor logs in first."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_home_sends_each_role_to_its_start_page(clinic, login):
    assert login(clinic.clinician_a).get("/")["Location"] == reverse("patient_list")
    assert login(clinic.patient_a.user).get("/")["Location"] == reverse("me")
    assert login(clinic.admin).get("/")["Location"] == reverse("admin:index")
    assert login(clinic.researcher).get("/")["Location"] == reverse("research:cohort")


def test_a_login_without_a_role_sees_a_page_and_no_patient(clinic, login):
    from tests.conftest import make_user

    nobody = make_user("no_role", None, clinic.password)
    response = login(nobody).get("/")
    assert response.status_code == 200
    assert b"Quinn" not in response.content and b"Reyes" not in response.content


def test_a_visitor_is_sent_to_log_in(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
