"""``/me/``: the patient's start page (today's diary, the last 30 days)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from speciosa.clinic import services

pytestmark = pytest.mark.django_db


def test_a_patient_sees_their_own_diary_and_nobody_elses(clinic, login):
    services.record_diary(clinic.patient_b.user, clinic.patient_b, services.DiaryInput(
        day=timezone.localdate(), doses=[], craving=7, side_effect_other="Omar's secret"))
    client = login(clinic.patient_a.user)
    page = client.get(reverse("me"))
    assert page.status_code == 200
    assert b"Maya" in page.content
    assert b"secret" not in page.content


def test_the_last_days_show_what_the_patient_wrote(clinic, login):
    services.record_diary(clinic.patient_a.user, clinic.patient_a, services.DiaryInput(
        day=timezone.localdate(), doses=[], craving=6))
    page = login(clinic.patient_a.user).get(reverse("me")).content.decode()
    assert "craving 6/10" in page and "Add to today's diary" in page


def test_a_new_patient_is_asked_to_write_todays_diary(clinic, login):
    page = login(clinic.patient_a.user).get(reverse("me")).content.decode()
    assert "Write today's diary" in page and "No diary entries yet." in page


def test_the_saved_message_shows_after_saving(clinic, login):
    page = login(clinic.patient_a.user).get(reverse("me"), {"saved": "1"}).content.decode()
    assert "Saved. Thank you." in page


def test_a_patient_login_without_a_record_is_not_found(clinic, login):
    from tests.conftest import make_user

    orphan = make_user("pat_orphan", "patient", clinic.password)
    assert login(orphan).get(reverse("me")).status_code == 404
    assert login(orphan).get(reverse("diary_today")).status_code == 404


@pytest.mark.parametrize("who", ["clinician_a", "researcher", "admin"])
def test_only_patients_write_a_diary(clinic, login, who):
    client = login(getattr(clinic, who))
    assert client.get(reverse("diary_today")).status_code == 403
    assert client.get(reverse("me")).status_code == 403
