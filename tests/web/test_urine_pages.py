"""Issue 19, urine drug testing: the panel pages (record, read) and their section on the
patient page; hostile input, another patient's ids, every role."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone
from tests.conftest import form_token

from speciosa.clinic import treatment, urine
from speciosa.clinic.models import LabResult, UrinePanel


def post(token="u1", **over):
    at = timezone.localtime() - dt.timedelta(hours=2)
    data = {"token": form_token(token), "collected_date": at.date().isoformat(),
            "collected_time": at.strftime("%H:%M"), "panels": ["buprenorphine"],
            "method": "screen", "creatinine_mg_dl": "90", "ph": "6", "specific_gravity": "1.02",
            "temperature_in_range": "yes", "observed": "no",
            "r_uds-buprenorphine": "positive", "r_uds-norbuprenorphine": "negative"}
    data.update(over)
    return data


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.django_db
def test_done_when_a_panel_with_buprenorphine_but_no_norbuprenorphine_is_flagged(clinic, login):
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "16",
        "start": timezone.localdate() - dt.timedelta(days=20)})
    client = login(clinic.clinician_a)
    url = reverse("urine_panel_new", args=[clinic.patient_a.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, post())
    assert response.status_code == 302
    assert client.post(url, post()).status_code == 302  # the double tap stores one panel
    assert UrinePanel.objects.count() == 1 and LabResult.objects.count() == 2
    page = text(client.get(response["Location"]).content.decode())
    assert "suggests buprenorphine was added to the specimen" in page
    assert "discuss with the patient; confirm before acting" in page
    assert "expected, not found" in page
    assert "do not detect mitragynine" in page
    assert "expected: buprenorphine (treatment episode)" in page
    detail = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    section = text(detail.split('id="urine"')[1].split("</section>")[0])
    assert "buprenorphine (screen)" in section
    assert "discuss with the patient; confirm before acting" in section


@pytest.mark.django_db
def test_a_value_with_its_cut_off_is_shown(clinic, login):
    client = login(clinic.clinician_a)
    response = client.post(reverse("urine_panel_new", args=[clinic.patient_a.pk]), post(
        panels=["mitragynine"], method="confirmation", **{
            "r_uds-buprenorphine": "", "r_uds-norbuprenorphine": "",
            "v_uds-mitragynine": "3.5", "c_uds-mitragynine": "1.0", "u_uds-mitragynine": "ng/mL"}))
    assert response.status_code == 302
    page = text(client.get(response["Location"]).content.decode())
    assert "positive (3.5 ng/mL, cut-off 1 ng/mL)" in page and "LOINC 72732-1" in page


@pytest.mark.django_db
@pytest.mark.parametrize(("over", "text_"), [
    ({"r_uds-norbuprenorphine": ""}, "Give the result for Norbuprenorphine"),
    ({"r_uds-benzodiazepines": "positive"}, "Unknown analyte uds-benzodiazepines"),
    ({"r_uds-buprenorphine": "", "v_uds-buprenorphine": "12", "c_uds-buprenorphine": ""},
     "a value needs the cut-off"),
    ({"ph": "20"}, "between 0 and 14"),
    ({"panels": []}, "required"),
])
def test_bad_input_gets_its_message_and_stores_nothing(clinic, login, over, text_):
    client = login(clinic.clinician_a)
    response = client.post(reverse("urine_panel_new", args=[clinic.patient_a.pk]), post(**over))
    assert response.status_code == 200
    assert text_ in response.content.decode()
    assert UrinePanel.objects.count() == 0 and LabResult.objects.count() == 0


@pytest.mark.django_db
def test_an_invalid_specimen_says_so_and_withholds_the_reading(clinic, login):
    client = login(clinic.clinician_a)
    response = client.post(reverse("urine_panel_new", args=[clinic.patient_a.pk]),
                           post(temperature_in_range="no"))
    page = text(client.get(response["Location"]).content.decode())
    assert "The specimen is not valid as it stands" in page and "not read" in page


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["clinician_a", "clinician_b", "patient_a", "researcher",
                                 "admin", "anonymous"])
def test_every_role_against_the_panel_pages(clinic, client, login, who):
    data = post()
    theirs = urine.record_panel(clinic.clinician_b, clinic.patient_b, {
        "collected_at": timezone.now() - dt.timedelta(hours=1), "panels": ["opioids"],
        "method": "screen", "analytes": {"uds-opioids": "negative"}})
    if who != "anonymous":
        user = getattr(clinic, who)
        login(getattr(user, "user", user))
    pid = clinic.patient_b.pk
    urls = [reverse("urine_panel_new", args=[pid]), reverse("urine_panel", args=[pid, theirs.pk]),
            reverse("urine_panel", args=[clinic.patient_a.pk, theirs.pk])]
    for url in urls:
        for method in ("get", "post"):
            response = getattr(client, method)(url, data if method == "post" else None)
            code = response.status_code
            if who == "anonymous":
                assert code == 302 and response["Location"].startswith("/login/")
            elif who == "clinician_b" and f"/patients/{pid}/" in url:
                assert code in (200, 302, 405), (url, code)
            else:
                assert code in (403, 404, 405), (who, url, code)
                assert b"Reyes" not in response.content
    if who != "clinician_b":
        assert UrinePanel.objects.count() == 1
