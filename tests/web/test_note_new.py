"""``/patients/<id>/notes/new/``: a clinician writes a free-text note."""

from __future__ import annotations

import pytest
from django.urls import reverse
from tests.conftest import form_token

from speciosa.clinic.models import Note

pytestmark = pytest.mark.django_db


def _url(patient):
    return reverse("note_new", args=[patient.pk])


def test_a_note_is_stored_once_and_the_clinician_goes_back_to_the_patient(clinic, login):
    client = login(clinic.clinician_a)
    data = {"token": form_token("n0"), "text": "Discussed tapering; she will keep the diary."}
    first, again = client.post(_url(clinic.patient_a), data), client.post(_url(clinic.patient_a), data)
    assert first["Location"] == again["Location"] == reverse("patient_detail", args=[clinic.patient_a.pk])
    note = Note.objects.get()
    assert note.text == "Discussed tapering; she will keep the diary."
    assert (note.patient, note.entered_by) == (clinic.patient_a, clinic.clinician_a)


def test_an_empty_note_is_refused(clinic, login):
    r = login(clinic.clinician_a).post(_url(clinic.patient_a), {"token": form_token("n1"), "text": ""})
    assert r.status_code == 200 and "This field is required." in r.content.decode()
    assert Note.objects.count() == 0


def test_a_note_of_more_than_5000_characters_is_refused(clinic, login):
    r = login(clinic.clinician_a).post(_url(clinic.patient_a), {"token": form_token("n4"), "text": "x" * 5001})
    assert r.status_code == 200
    assert "Ensure this value has at most 5000 characters (it has 5001)." in r.content.decode()
    assert Note.objects.count() == 0


def test_a_note_with_markup_is_shown_as_text(clinic, login):
    client = login(clinic.clinician_a)
    client.post(_url(clinic.patient_a), {"token": form_token("n2"), "text": "<script>alert(1)</script>"})
    page = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_note_on_another_care_teams_patient_is_not_found_and_not_stored(clinic, login):
    r = login(clinic.clinician_a).post(_url(clinic.patient_b), {"token": form_token("n5"), "text": "x"})
    assert r.status_code == 404 and Note.objects.count() == 0


def test_state_changing_requests_need_the_csrf_token(clinic, verified_login_of):
    from django.test import Client

    client = verified_login_of(Client(enforce_csrf_checks=True), clinic.clinician_a)
    r = client.post(_url(clinic.patient_a), {"token": form_token("n3"), "text": "x"})
    assert r.status_code == 403 and Note.objects.count() == 0
