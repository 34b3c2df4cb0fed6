"""``/patients/<id>/``: the patient's page (summary, alerts, the record as a timeline)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from tests.conftest import form_token

from speciosa.clinic.models import AuditEntry, Note

from .conftest import lab_post

pytestmark = pytest.mark.django_db


def _notes(patient, user, n):
    start = timezone.now() - dt.timedelta(days=n)
    for i in range(n):
        Note.objects.create(patient=patient, entered_by=user, source="clinician", text=f"note {i:03d}",
                            at=start + dt.timedelta(days=i))


def test_it_shows_the_patient_their_alerts_and_their_record(clinic, login, open_alert):
    open_alert(clinic.patient_a)
    client = login(clinic.clinician_a)
    client.post(reverse("note_new", args=[clinic.patient_a.pk]), {"token": form_token("n1"), "text": "Seen today."})
    page = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    assert "Maya" in page and "Quinn" in page
    assert "Prolactin 41.7 ng/mL is above the reference range." in page
    assert "Seen today." in page
    assert reverse("assessment_new", args=[clinic.patient_a.pk, "cows"]) in page


def test_a_lab_result_appears_on_the_patient_page_with_its_flag(clinic, login):
    client = login(clinic.clinician_a)
    client.post(reverse("lab_new", args=[clinic.patient_a.pk]), lab_post(value="40"))
    page = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    assert "40 ng/mL" in page and "high" in page


def test_opening_a_patient_record_is_audited(clinic, login):
    client = login(clinic.clinician_a)
    client.get(reverse("patient_detail", args=[clinic.patient_a.pk]))
    entry = AuditEntry.objects.get(action="view")
    assert entry.patient == clinic.patient_a and entry.user == clinic.clinician_a


def test_another_care_teams_patient_is_not_found_and_not_audited_as_seen(clinic, login):
    response = login(clinic.clinician_a).get(reverse("patient_detail", args=[clinic.patient_b.pk]))
    assert response.status_code == 404 and b"Reyes" not in response.content
    assert not AuditEntry.objects.filter(action="view", patient=clinic.patient_b).exists()


def test_it_shows_forty_entries_then_offers_the_earlier_ones(clinic, login):
    _notes(clinic.patient_a, clinic.clinician_a, 45)
    client = login(clinic.clinician_a)
    page = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    assert "note 044" in page and "note 005" in page and "note 004" not in page
    assert 'href="?limit=160"' in page
    more = client.get(reverse("patient_detail", args=[clinic.patient_a.pk]), {"limit": "160"})
    assert "note 000" in more.content.decode() and "?limit=" not in more.content.decode()


@pytest.mark.parametrize(("limit", "shown"), [("abc", 40), ("", 40), ("-5", 10),
                                              ("99999999999999999999", 45)],
                         ids=["text", "empty", "negative", "huge"])
def test_a_bad_limit_shows_a_page_within_bounds(clinic, login, limit, shown):
    # text falls back to the default of 40; numbers are held between 10 and 2,000
    _notes(clinic.patient_a, clinic.clinician_a, 45)
    response = login(clinic.clinician_a).get(reverse("patient_detail", args=[clinic.patient_a.pk]),
                                             {"limit": limit})
    assert response.status_code == 200
    assert response.content.decode().count("note 0") == shown


def test_the_timeline_names_who_wrote_each_entry(clinic, login):
    """Issue 15: not only "Clinician" or "Patient"."""
    from speciosa.clinic.models import Dose

    _notes(clinic.patient_a, clinic.clinician_a, 1)
    Dose.objects.create(patient=clinic.patient_a, entered_by=clinic.patient_a.user, source="patient",
                        taken_at=timezone.now() - dt.timedelta(hours=2), amount=2, unit="g")
    clinic.patient_a.user.first_name, clinic.patient_a.user.last_name = "Maya", "Quinn"
    clinic.patient_a.user.save()
    page = login(clinic.clinician_a).get(reverse("patient_detail", args=[clinic.patient_a.pk]))
    text = page.content.decode()
    assert "Clinician: Ada Okafor" in text
    assert "Patient: Maya Quinn" in text
