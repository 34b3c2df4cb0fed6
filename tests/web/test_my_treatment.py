"""Issue 19: the patient's "My medicines" page shows their current treatment episodes in plain
words (what, how much, how it is taken, where from, since when, the last injection) with the
lost-tolerance warning and its source; stopped episodes and other patients' are not shown."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.test import Client
from django.utils import timezone
from tests.conftest import verified_login

from speciosa.clinic import treatment

pytestmark = pytest.mark.django_db


def days_ago(n):
    return timezone.localdate() - dt.timedelta(days=n)


def text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def section(page: str) -> str:
    return text(page.split('id="my-treatment"')[1].split("</section>")[0])


def test_the_patient_reads_their_current_treatment_in_plain_words(clinic, login):
    user, patient = clinic.clinician_a, clinic.patient_a
    treatment.record_episode(user, patient, {
        "drug": "methadone", "formulation": "oral-liquid", "dose_mg": "65",
        "dispensing_clinic": "Harbour Street OTP", "start": days_ago(30).isoformat()})
    nal = treatment.record_episode(user, patient, {
        "drug": "naltrexone", "formulation": "xr-injection", "dose_mg": "380",
        "start": days_ago(40).isoformat(),
        "injection_dates": [days_ago(40).isoformat(), days_ago(12).isoformat()]})
    old = treatment.record_episode(user, patient, {
        "drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "8",
        "start": days_ago(90).isoformat()})
    treatment.stop_episode(user, patient, old, reason="moved to methadone",
                           at=days_ago(31).isoformat())
    page = login(patient.user).get("/me/medicines/").content.decode()
    mine = section(page)
    assert "Methadone, 65 mg a day Taken as a liquid you drink. You get it from Harbour " \
           "Street OTP." in mine
    assert f"since {days_ago(30):%-d %b %Y}" in mine
    assert "Naltrexone, 380 mg each injection Taken as a slow-release injection given by your " \
           "care team." in mine
    assert f"last injection {days_ago(12):%-d %b %Y}" in mine
    assert "Buprenorphine" not in mine  # stopped: not current treatment
    assert "an amount you used to take can then cause an overdose" in mine
    assert 'href="/evidence/#lost-tolerance-overdose"' in page
    assert 'href="/me/learn/naloxone/"' in page
    assert nal.pk  # the episodes are the care team's: nothing to change here
    assert "/treatment" not in page.split('id="my-treatment"')[1].split("</section>")[0]


def test_without_treatment_there_is_no_section_and_another_patient_sees_none(clinic, login):
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "buprenorphine", "formulation": "buccal-film", "dose_mg": "12",
        "start": days_ago(5).isoformat()})
    other = verified_login(Client(), clinic.patient_b.user).get("/me/medicines/").content.decode()
    assert 'id="my-treatment"' not in other and "Buprenorphine" not in other
    mine = section(login(clinic.patient_a.user).get("/me/medicines/").content.decode())
    assert "Buprenorphine, 12 mg a day Taken as a film that melts inside your cheek or under " \
           "your tongue." in mine
    # staff do not reach the patient's own page
    assert verified_login(Client(), clinic.clinician_a).get("/me/medicines/").status_code == 403
