"""A web form sent again with other values (issue 13, adversarial pass): a clinician saves a
prolactin of 18, goes back in the browser (the page keeps the form's one-time token),
changes the value to 19 and saves. The second submission was answered with the first record
and a redirect: the clinician saw "saved", the chart kept 18, the 19 was lost without a
word. As the API refuses an Idempotency-Key replayed with another body (422), a form token
sent again with other values is refused with a message saying that nothing was saved and how
to change what was; the same values sent again (a double tap) still store one record."""

from __future__ import annotations

import pytest
from django.urls import reverse

from speciosa.clinic.models import DiaryDay, Dose, LabResult, Note

from .conftest import diary_post, lab_post

pytestmark = pytest.mark.django_db


def test_a_lab_form_sent_again_with_another_value_is_refused_not_lost(clinic, login):
    client = login(clinic.clinician_a)
    url = reverse("lab_new", args=[clinic.patient_a.pk])
    assert client.post(url, lab_post(token="t-back", value="18")).status_code == 302
    r = client.post(url, lab_post(token="t-back", value="19"))
    assert r.status_code == 200
    page = r.content.decode()
    assert "already saved with other values" in page and "nothing was saved" in page
    assert list(LabResult.objects.values_list("value", flat=True)) == [18]
    # a double tap of the same values is still one record, answered as saved
    assert client.post(url, lab_post(token="t-back", value="18")).status_code == 302
    assert LabResult.objects.count() == 1


def test_a_note_sent_again_with_other_words_is_refused(clinic, login):
    client = login(clinic.clinician_a)
    url = reverse("note_new", args=[clinic.patient_a.pk])
    token = lab_post(token="t-note")["token"]
    assert client.post(url, {"token": token, "text": "Seen today."}).status_code == 302
    r = client.post(url, {"token": token, "text": "Seen today; naloxone given."})
    assert r.status_code == 200 and "already saved with other values" in r.content.decode()
    assert list(Note.objects.values_list("text", flat=True)) == ["Seen today."]


def test_a_diary_sent_again_with_another_dose_is_refused(clinic, login):
    client = login(clinic.patient_a.user)
    url = reverse("diary_today")
    assert client.post(url, diary_post(token="t-diary-back")).status_code == 302
    r = client.post(url, diary_post(token="t-diary-back", **{"doses-0-amount": "4"}))
    assert r.status_code == 200 and "already saved with other values" in r.content.decode()
    assert list(Dose.objects.values_list("amount", flat=True)) == [2]
    assert client.post(url, diary_post(token="t-diary-back")).status_code == 302
    assert DiaryDay.objects.count() == 1 and Dose.objects.count() == 1
