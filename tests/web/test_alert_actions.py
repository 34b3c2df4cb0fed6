"""``/alerts/<id>/acknowledge/`` and ``/alerts/<id>/resolve/``: the care team acts on an alert;
it stays open until a clinician resolves it with a note."""

from __future__ import annotations

import pytest
from django.urls import reverse

from speciosa.clinic.models import Alert

pytestmark = pytest.mark.django_db


def test_acknowledging_an_alert_names_who_did_and_goes_back(clinic, login, open_alert):
    alert = open_alert(clinic.patient_a)
    back = reverse("patient_detail", args=[clinic.patient_a.pk])
    r = login(clinic.clinician_a).post(reverse("alert_acknowledge", args=[alert.pk]), {"back": back})
    assert r.status_code == 302 and r["Location"] == back
    alert.refresh_from_db()
    assert alert.status == Alert.Status.ACKNOWLEDGED and alert.acknowledged_by == clinic.clinician_a


def test_acknowledging_takes_a_post_only(clinic, login, open_alert):
    alert = open_alert(clinic.patient_a)
    r = login(clinic.clinician_a).get(reverse("alert_acknowledge", args=[alert.pk]))
    assert r.status_code == 405
    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN


def test_resolving_with_a_note_closes_the_alert(clinic, login, open_alert):
    alert = open_alert(clinic.patient_a)
    client = login(clinic.clinician_a)
    form = client.get(reverse("alert_resolve", args=[alert.pk]), {"back": "/worklist/"})
    assert form.status_code == 200 and "How was it dealt with?" in form.content.decode()
    r = client.post(reverse("alert_resolve", args=[alert.pk]),
                    {"note": "Repeat prolactin normal.", "back": "/worklist/"})
    assert r.status_code == 302 and r["Location"] == "/worklist/"
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED and alert.resolution_note == "Repeat prolactin normal."
    assert alert.resolved_by == clinic.clinician_a


@pytest.mark.parametrize("note", ["", "   "], ids=["empty", "blank"])
def test_resolving_without_a_note_says_what_to_write_and_keeps_it_open(clinic, login, open_alert,
                                                                      note):
    alert = open_alert(clinic.patient_a)
    r = login(clinic.clinician_a).post(reverse("alert_resolve", args=[alert.pk]), {"note": note})
    assert r.status_code == 400 and "Say how this alert was dealt with." in r.content.decode()
    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN


@pytest.mark.parametrize("back", ["https://evil.example/", "//evil.example/", "/\\evil.example",
                                  "javascript:alert(1)"])
def test_the_way_back_is_never_another_site(clinic, login, open_alert, back):
    alert = open_alert(clinic.patient_a)
    r = login(clinic.clinician_a).post(reverse("alert_acknowledge", args=[alert.pk]), {"back": back})
    assert r["Location"] == reverse("worklist")


def test_another_care_teams_alert_is_not_found_and_unchanged(clinic, login, open_alert):
    theirs = open_alert(clinic.patient_b)
    client = login(clinic.clinician_a)
    assert client.post(reverse("alert_acknowledge", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("alert_resolve", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("alert_resolve", args=[theirs.pk]), {"note": "x"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == Alert.Status.OPEN


def test_a_patient_cannot_resolve_their_own_alert(clinic, login, open_alert):
    alert = open_alert(clinic.patient_a)
    r = login(clinic.patient_a.user).post(reverse("alert_resolve", args=[alert.pk]), {"note": "fine"})
    assert r.status_code == 403
    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN
