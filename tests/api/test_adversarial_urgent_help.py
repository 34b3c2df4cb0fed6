"""Help in the moment through the API (issue 13, adversarial pass): a patient's app that
records a diary reporting a seizure, dark urine or yellow eyes, or oversedation or slow
breathing gets, in the answer to that very request, the emergency number, the crisis line
and how to reach the clinic (the site's, else its country's), as the web page after saving
shows them; a retry gets them again; a diary without such a symptom gets none; nothing
clinical is in the URL."""

from __future__ import annotations

import pytest

from speciosa.clinic.models import DiaryDay

pytestmark = pytest.mark.django_db

URL = "/api/v1/me/diary/"


def test_a_seizure_reported_by_the_app_is_answered_with_the_numbers(clinic, api, key):
    headers = key()
    client = api(clinic.patient_a.user)
    body = {"side_effects": ["seizure", "nausea"]}
    r = client.post(URL, body, format="json", headers=headers)
    assert r.status_code == 201, r.json()
    help_ = r.json()["urgent_help"]
    assert help_["emergency"] == "911" and help_["crisis"] == "988"
    assert "988 Suicide & Crisis Lifeline" in help_["crisis_name"]
    assert [x["code"] for x in help_["reasons"]] == ["seizure"]
    assert help_["reasons"][0]["text"] == "a seizure"
    assert help_["clinic_phone"] == ""  # the site gave none: the app says to call the team
    # a retry (the phone lost the answer) is answered with the same help, one diary stored
    again = client.post(URL, body, format="json", headers=headers)
    assert again.status_code == 200 and again.json()["urgent_help"] == help_
    assert DiaryDay.objects.count() == 1


def test_the_site_country_and_clinic_contact_decide_the_numbers(clinic, api, key):
    site = clinic.site_a
    site.country, site.clinic_phone, site.clinic_hours = "GB", "01632 960 001", "Mon-Fri 9-17"
    site.save()
    r = api(clinic.patient_a.user).post(URL, {"side_effects": ["oversedation-slow-breathing"]},
                                        format="json", headers=key())
    help_ = r.json()["urgent_help"]
    assert (help_["emergency"], help_["crisis"]) == ("999", "116 123")
    assert (help_["clinic_phone"], help_["clinic_hours"]) == ("01632 960 001", "Mon-Fri 9-17")
    assert help_["citations"] == ["uk-999-111", "uk-samaritans-116123"]


def test_a_diary_without_an_urgent_symptom_has_no_help(clinic, api, key):
    r = api(clinic.patient_a.user).post(URL, {"side_effects": ["nausea"], "craving": 3},
                                        format="json", headers=key())
    assert r.status_code == 201 and r.json()["urgent_help"] is None


def test_a_diary_refused_for_a_question_still_carries_the_help(clinic, api, key):
    # an unusual dose (60 g) is asked about (400, nothing stored); the seizure is not less
    # urgent for it: the error answer carries the numbers too
    from django.utils import timezone

    at = (timezone.now().replace(microsecond=0)).isoformat()
    r = api(clinic.patient_a.user).post(URL, {
        "side_effects": ["seizure"], "doses": [{"taken_at": at, "amount": 60, "unit": "g"}]},
        format="json", headers=key())
    assert r.status_code == 400, r.json()
    assert r.json()["urgent_help"]["emergency"] == "911"
    assert DiaryDay.objects.count() == 0


def test_an_error_without_an_urgent_symptom_has_no_help_key(clinic, api, key):
    r = api(clinic.patient_a.user).post(URL, {"craving": 11}, format="json", headers=key())
    assert r.status_code == 400 and "urgent_help" not in r.json()
