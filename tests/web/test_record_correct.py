"""``/patients/<id>/<kind>/<record>/correct/`` and ``.../history/``: correcting or withdrawing
an entry keeps every version, and the history page shows them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from tests.conftest import form_token

from speciosa.clinic.models import AuditEntry, Dose, LabResult, Note

from .conftest import lab_post

pytestmark = pytest.mark.django_db


def _dose(patient):
    return Dose.objects.create(patient=patient, entered_by=patient.user, source="patient",
                               taken_at=timezone.now() - dt.timedelta(hours=2), amount=2, unit="g")


def _correct_url(patient, kind, record):
    return reverse("record_correct", args=[patient.pk, kind, record.pk])


def test_correcting_a_lab_through_the_page_keeps_the_history(clinic, login):
    client = login(clinic.clinician_a)
    client.post(reverse("lab_new", args=[clinic.patient_a.pk]), lab_post(value="40"))
    lab = LabResult.objects.get()
    url = _correct_url(clinic.patient_a, "lab", lab)
    r = client.post(url, {"token": form_token("c1"), "value": "14", "reason": ""})
    assert r.status_code == 200 and LabResult.objects.count() == 1
    r = client.post(url, {"token": form_token("c1"), "value": "14", "reason": "wrong sample"})
    assert r.status_code == 302
    history = client.get(r["Location"]).content.decode()
    assert "40 ng/mL" in history and "14 ng/mL" in history and "wrong sample" in history
    assert AuditEntry.objects.filter(action="correct", reason="wrong sample").count() == 1


def test_correcting_a_dose_stores_a_new_version_once(clinic, login):
    dose = _dose(clinic.patient_a)
    client = login(clinic.clinician_a)
    data = {"token": form_token("c2"), "amount": "3.5", "reason": "patient said 3.5 g"}
    first = client.post(_correct_url(clinic.patient_a, "dose", dose), data)
    again = client.post(_correct_url(clinic.patient_a, "dose", dose), data)  # a double tap
    assert first.status_code == again.status_code == 302
    current = Dose.objects.get(superseded=False)
    assert current.amount == 3.5 and current.replaces == dose and Dose.objects.count() == 2


def test_withdrawing_a_note_keeps_it_marked_withdrawn(clinic, login):
    note = Note.objects.create(patient=clinic.patient_a, entered_by=clinic.clinician_a,
                               source="clinician", text="wrong patient")
    r = login(clinic.clinician_a).post(_correct_url(clinic.patient_a, "note", note),
                                       {"token": form_token("c3"), "retract": "on", "reason": "entered in error"})
    assert r.status_code == 302
    note.refresh_from_db()
    assert note.retracted and note.change_reason == "entered in error"


def test_a_correction_without_a_new_value_says_what_to_enter(clinic, login):
    dose = _dose(clinic.patient_a)
    r = login(clinic.clinician_a).post(_correct_url(clinic.patient_a, "dose", dose),
                                       {"token": form_token("c4"), "reason": "typo"})
    assert r.status_code == 200
    assert "Enter the corrected value, or tick &#x27;withdraw this entry&#x27;." in r.content.decode()
    assert Dose.objects.count() == 1


def test_a_correction_to_an_impossible_amount_is_refused_and_nothing_changes(clinic, login):
    dose = _dose(clinic.patient_a)
    r = login(clinic.clinician_a).post(_correct_url(clinic.patient_a, "dose", dose),
                                       {"token": form_token("c5"), "amount": "-2", "reason": "typo"})
    assert r.status_code == 200 and "more than 0" in r.content.decode()
    dose.refresh_from_db()
    assert not dose.superseded and Dose.objects.count() == 1


@pytest.mark.parametrize("kind", ["patient", "alert", "dosee"])
def test_a_kind_of_record_that_cannot_be_corrected_is_not_found(clinic, login, kind):
    dose = _dose(clinic.patient_a)
    response = login(clinic.clinician_a).get(_correct_url(clinic.patient_a, kind, dose))
    assert response.status_code == 404


def test_another_care_teams_record_is_not_found_under_either_patient(clinic, login):
    theirs = _dose(clinic.patient_b)
    client = login(clinic.clinician_a)
    data = {"token": form_token("c6"), "amount": "9", "reason": "x"}
    assert client.post(_correct_url(clinic.patient_b, "dose", theirs), data).status_code == 404
    assert client.post(_correct_url(clinic.patient_a, "dose", theirs), data).status_code == 404
    assert client.get(reverse("record_history", args=[clinic.patient_a.pk, "dose", theirs.pk])
                      ).status_code == 404
    assert Dose.objects.count() == 1 and not Dose.objects.get().superseded


def test_the_history_lists_every_version_of_a_note(clinic, login):
    note = Note.objects.create(patient=clinic.patient_a, entered_by=clinic.clinician_a,
                               source="clinician", text="first words")
    client = login(clinic.clinician_a)
    client.post(_correct_url(clinic.patient_a, "note", note),
                {"token": form_token("c7"), "text": "better words", "reason": "clearer"})
    page = client.get(reverse("record_history", args=[clinic.patient_a.pk, "note", note.pk]))
    assert page.status_code == 200
    assert "first words" in page.content.decode() and "better words" in page.content.decode()


def test_a_clinician_corrects_a_substance_use_entry_and_its_history_shows_both(clinic, login):
    from speciosa.clinic import services
    from speciosa.clinic.models import SubstanceUse

    services.record_diary(clinic.patient_a.user, clinic.patient_a, services.DiaryInput(
        day=timezone.localdate(), doses=[], substances=["alcohol"], substance_detail="wine"))
    use = SubstanceUse.objects.get()
    client = login(clinic.clinician_a)
    r = client.post(_correct_url(clinic.patient_a, "substance", use),
                    {"token": form_token("s1"), "name": "cannabis", "detail": "", "reason": "told me at the visit"})
    assert r.status_code == 302
    new = SubstanceUse.objects.current().get()
    assert new.name == "cannabis" and new.detail == "wine" and new.replaces_id == use.pk
    history = client.get(r["Location"]).content.decode()
    assert "Also used: alcohol" in history and "Also used: cannabis" in history
    timeline = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    assert reverse("record_correct", args=[clinic.patient_a.pk, "substance", new.pk]) in timeline


def test_a_clinicians_dose_correction_above_the_limit_asks_and_then_saves(clinic, login):
    dose = _dose(clinic.patient_a)
    client = login(clinic.clinician_a)
    url = _correct_url(clinic.patient_a, "dose", dose)
    page = client.post(url, {"token": form_token("d1"), "amount": "500", "reason": "per pharmacy"})
    assert page.status_code == 200 and "far above what people report" in page.content.decode()
    assert 'name="confirmed_unusual"' in page.content.decode()
    r = client.post(url, {"token": form_token("d1"), "amount": "500", "reason": "per pharmacy",
                          "confirmed_unusual": "on"})
    assert r.status_code == 302 and Dose.objects.current().get().confirmed_unusual
