"""The access matrix: every role against every page of a patient's record, for their own
and another care team's patient. Each page's own behaviour is in ``test_<page>.py``."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from speciosa.clinic.models import Dose, LabResult, Note


def _seed_records(clinic):
    now = timezone.now() - dt.timedelta(hours=1)
    records = {}
    for key, patient, clinician in (("a", clinic.patient_a, clinic.clinician_a),
                                    ("b", clinic.patient_b, clinic.clinician_b)):
        records[key] = {
            "dose": Dose.objects.create(patient=patient, entered_by=patient.user, source="patient",
                                        taken_at=now, amount=2, unit="g"),
            "lab": LabResult.objects.create(patient=patient, entered_by=clinician, source="clinician",
                                            lab="prolactin", collected_at=now, value=10, unit="ng/mL",
                                            canonical_value=10, canonical_unit="ng/mL"),
            "note": Note.objects.create(patient=patient, entered_by=clinician, source="clinician", text="hi"),
        }
    return records


def patient_urls(patient, records):
    pid = patient.pk
    urls = [
        reverse("patient_detail", args=[pid]),
        reverse("assessment_new", args=[pid, "cows"]),
        reverse("lab_new", args=[pid]),
        reverse("note_new", args=[pid]),
    ]
    for kind, rec in records.items():
        urls.append(reverse("record_history", args=[pid, kind, rec.pk]))
        urls.append(reverse("record_correct", args=[pid, kind, rec.pk]))
    return urls


@pytest.mark.django_db
def test_a_clinician_opens_every_page_of_their_own_teams_patient(clinic, login):
    records = _seed_records(clinic)
    client = login(clinic.clinician_a)
    for url in patient_urls(clinic.patient_a, records["a"]):
        assert client.get(url).status_code == 200, url


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["clinician_a", "patient_user_a", "researcher", "admin"])
def test_nobody_reaches_another_care_teams_patient(clinic, login, who):
    records = _seed_records(clinic)
    user = clinic.patient_a.user if who == "patient_user_a" else getattr(clinic, who)
    client = login(user)
    for url in patient_urls(clinic.patient_b, records["b"]):
        response = client.get(url)
        assert response.status_code in (403, 404), (who, url, response.status_code)
        assert b"Reyes" not in response.content


@pytest.mark.django_db
def test_a_record_id_from_another_patient_under_my_patients_url_is_not_found(clinic, login):
    records = _seed_records(clinic)
    client = login(clinic.clinician_a)
    other_lab = records["b"]["lab"]
    url = reverse("record_history", args=[clinic.patient_a.pk, "lab", other_lab.pk])
    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_log_in(client, clinic):
    for url in (reverse("patient_list"), reverse("patient_detail", args=[clinic.patient_a.pk]),
                reverse("me"), reverse("diary_today")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_the_researcher_sees_no_identifiable_data(clinic, login):
    client = login(clinic.researcher)
    for url in ("/", reverse("patient_list")):
        content = client.get(url).content
        assert b"Quinn" not in content and b"Reyes" not in content
