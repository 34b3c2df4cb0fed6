"""Issue 19: correcting a urine drug test panel as a whole, or withdrawing it as entered in
error, from its page: the history is kept (the earlier version stays readable), every step is
audited, the rules run again, a double tap stores one; another patient's panel is a 404 and
nobody but the care team reaches the pages."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from tests.conftest import form_token, verified_login

from speciosa.clinic import treatment, urine
from speciosa.clinic.models import AuditEntry, LabResult, UrinePanel

pytestmark = pytest.mark.django_db


def text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def seed(clinician, patient, **over):
    data = {"collected_at": (timezone.now() - dt.timedelta(hours=3)).replace(microsecond=0),
            "panels": ["buprenorphine"], "method": "screen", "creatinine_mg_dl": "90",
            "ph": "6", "specific_gravity": "1.02", "temperature_in_range": True,
            "observed": False, "note": "secret note",
            "analytes": {"uds-buprenorphine": "positive", "uds-norbuprenorphine": "negative"}}
    data.update(over)
    return urine.record_panel(clinician, patient, data)


def form_of(page: str) -> dict:
    """The values a browser would send back from the correction form as it is shown."""
    data = {}
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page):
        data[name] = value
    for name, body in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)"[^>]*selected', body)
        data[name] = chosen.group(1) if chosen else ""
    data["panels"] = re.findall(r'name="panels" value="([^"]+)"[^>]*checked', page)
    note = re.search(r'<textarea name="note"[^>]*>(.*?)</textarea>', page, re.S)
    data["note"] = note.group(1).strip() if note else ""
    data = {k: v for k, v in data.items() if k != "csrfmiddlewaretoken"}
    return data


def test_a_clinician_corrects_a_panel_and_the_earlier_version_stays_readable(clinic, login):
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "16",
        "start": timezone.localdate() - dt.timedelta(days=20)})
    panel = seed(clinic.clinician_a, clinic.patient_a)
    client = login(clinic.clinician_a)
    page = client.get(reverse("urine_panel", args=[clinic.patient_a.pk, panel.pk])).content.decode()
    assert "suggests buprenorphine was added to the specimen" in text(page)
    url = reverse("urine_panel_correct", args=[clinic.patient_a.pk, panel.pk])
    assert url in page
    shown = client.get(url).content.decode()
    data = form_of(shown)
    # the form holds the panel as it stands
    assert data["r_uds-norbuprenorphine"] == "negative" and data["creatinine_mg_dl"] == "90"
    assert data["panels"] == ["buprenorphine"] and data["note"] == "secret note"
    data.update({"r_uds-norbuprenorphine": "positive", "reason": "norbuprenorphine misread",
                 "token": form_token("fix-1")})
    response = client.post(url, data)
    assert response.status_code == 302, text(response.content.decode())[:2000]
    assert client.post(url, data).status_code == 302  # the double tap: one correction
    new = UrinePanel.objects.current().get()
    assert new.replaces_id == panel.pk and new.change_reason == "norbuprenorphine misread"
    assert UrinePanel.objects.count() == 2
    assert {r.lab: r.result for r in LabResult.objects.current()} == {
        "uds-buprenorphine": "positive", "uds-norbuprenorphine": "positive"}
    after = text(client.get(response["Location"]).content.decode())
    assert "suggests buprenorphine was added" not in after
    assert "corrected" in after and "norbuprenorphine misread" in after
    before = text(client.get(reverse("urine_panel", args=[clinic.patient_a.pk, panel.pk]))
                  .content.decode())
    assert "This is an earlier version" in before and "negative" in before
    assert AuditEntry.objects.filter(action="correct", model="UrinePanel",
                                     object_id=new.pk).exists()
    assert AuditEntry.objects.filter(action="correct", model="LabResult").count() == 2


def test_a_clinician_withdraws_a_panel_entered_in_error(clinic, login):
    panel = seed(clinic.clinician_a, clinic.patient_a)
    client = login(clinic.clinician_a)
    url = reverse("urine_panel_withdraw", args=[clinic.patient_a.pk, panel.pk])
    assert "stays in the record" in text(client.get(url).content.decode())
    empty = client.post(url, {"token": form_token("w0"), "reason": ""})
    assert empty.status_code == 200 and "This field is required" in empty.content.decode()
    assert not UrinePanel.objects.filter(retracted=True).exists()
    response = client.post(url, {"token": form_token("w1"), "reason": "another patient's cup"})
    assert response.status_code == 302
    assert client.post(url, {"token": form_token("w1"), "reason": "another patient's cup"}
                       ).status_code == 302
    panel.refresh_from_db()
    assert panel.retracted and LabResult.objects.current().count() == 0
    page = text(client.get(response["Location"]).content.decode())
    assert "Withdrawn as entered in error: another patient's cup." in page
    assert "Correct this test" not in page
    detail = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    assert reverse("urine_panel", args=[clinic.patient_a.pk, panel.pk]) not in detail
    assert AuditEntry.objects.filter(action="retract").count() == 3  # panel and 2 analytes


def test_a_correction_the_form_refuses_names_the_field_and_stores_nothing(clinic, login):
    panel = seed(clinic.clinician_a, clinic.patient_a)
    client = login(clinic.clinician_a)
    url = reverse("urine_panel_correct", args=[clinic.patient_a.pk, panel.pk])
    data = form_of(client.get(url).content.decode())
    data.update({"ph": "15", "reason": "typo", "token": form_token("bad")})
    response = client.post(url, data)
    assert response.status_code == 200 and "Enter the pH between 0 and 14." in text(
        response.content.decode())
    data.update({"ph": "6", "reason": ""})
    assert "This field is required" in client.post(url, data).content.decode()
    assert UrinePanel.objects.count() == 1 and not panel.__class__.objects.get().superseded


def test_an_earlier_version_is_not_corrected_again(clinic, login):
    panel = seed(clinic.clinician_a, clinic.patient_a)
    new = urine.correct_panel(clinic.clinician_a, clinic.patient_a, panel,
                              urine.panel_data(panel), reason="checked")
    client = login(clinic.clinician_a)
    for name in ("urine_panel_correct", "urine_panel_withdraw"):
        response = client.get(reverse(name, args=[clinic.patient_a.pk, panel.pk]))
        assert response.status_code == 302
        assert response["Location"] == reverse("urine_panel", args=[clinic.patient_a.pk, panel.pk])
    assert UrinePanel.objects.current().get() == new


def test_another_patients_panel_is_a_404_and_nobody_else_reaches_the_pages(clinic, login):
    theirs = seed(clinic.clinician_b, clinic.patient_b)
    mine = seed(clinic.clinician_a, clinic.patient_a)
    client = login(clinic.clinician_a)
    for name in ("urine_panel_correct", "urine_panel_withdraw"):
        for patient, panel in ((clinic.patient_a, theirs), (clinic.patient_b, theirs)):
            url = reverse(name, args=[patient.pk, panel.pk])
            assert client.get(url).status_code == 404
            response = client.post(url, {"token": form_token("x"), "reason": "x"})
            assert response.status_code == 404 and b"secret" not in response.content
    assert not UrinePanel.objects.filter(retracted=True).exists()
    for user in (clinic.clinician_b, clinic.patient_a.user, clinic.patient_b.user,
                 clinic.researcher, clinic.admin):
        other = verified_login(Client(), user)
        for name in ("urine_panel_correct", "urine_panel_withdraw"):
            url = reverse(name, args=[clinic.patient_a.pk, mine.pk])
            assert other.get(url).status_code in (403, 404), (user, name)
            response = other.post(url, {"token": form_token("y"), "reason": "y"})
            assert response.status_code in (403, 404) and b"secret" not in response.content
    anonymous = Client().get(reverse("urine_panel_withdraw", args=[clinic.patient_a.pk, mine.pk]))
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    assert UrinePanel.objects.count() == 2 and not UrinePanel.objects.filter(
        retracted=True).exists()
