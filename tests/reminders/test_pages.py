"""The patient's reminder page (/me/reminders/): preferences set from the phone (audited, a
double tap stores one, bad values refused beside their field with nothing stored), push
subscriptions from the browser, devices removed (another patient's is a 404); the delivery
log on the patient's page and the clinician's; every role."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import reverse
from tests.conftest import form_token, verified_login
from tests.reminders.conftest import add_device, at_ny, set_prefs, today_ny

from speciosa.clinic.models import AuditEntry
from speciosa.reminders import services
from speciosa.reminders.models import Delivery, Preference, PushDevice

pytestmark = pytest.mark.django_db
URL = "/me/reminders/"


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def post(token="r1", **over):
    data = {"token": form_token(token), "time_of_day": "19:30", "time_zone": "America/Chicago",
            "quiet_start": "22:00", "quiet_end": "07:00", "email": "on"}
    data.update(over)
    return data


def test_the_page_offers_the_clinics_zone_and_six_pm_by_default(patient, login):
    login(patient.user)
    r = login and Client()
    r = verified_login(Client(), patient.user).get(URL)
    assert r.status_code == 200
    page = r.content.decode()
    assert 'value="18:00"' in page
    assert "The clinic&#x27;s (America/New_York)" in page or "The clinic's (America/New_York)" in page
    assert "maya@example.org" in page
    assert 'href="/me/reminders/"' in page  # in the patient navigation
    assert "You have something to complete in Speciosa." in text(page)


def test_a_patient_sets_their_reminders_and_a_double_tap_stores_one(patient):
    client = verified_login(Client(), patient.user)
    r = client.post(URL, post())
    assert r.status_code == 302 and r.url == "/me/reminders/?saved=1"
    again = client.post(URL, post())
    assert again.status_code == 302
    pref = Preference.objects.get(patient=patient)
    assert (pref.time_of_day.isoformat(), pref.time_zone, pref.quiet_start.isoformat(),
            pref.quiet_end.isoformat(), pref.channels) == (
        "19:30:00", "America/Chicago", "22:00:00", "07:00:00", ["email"])
    assert AuditEntry.objects.filter(patient=patient, model="Preference").count() == 1
    page = text(client.get("/me/reminders/?saved=1").content.decode())
    assert "Saved. Your next reminder comes at 19:30." in page


@pytest.mark.parametrize("over,field,message", [
    ({"time_of_day": "25:00"}, "time_of_day", "'25:00' is not a time"),
    ({"time_of_day": ""}, "time_of_day", "Give the time for your reminders as HH:MM"),
    ({"quiet_end": ""}, "quiet_end", "Give both the start and the end of quiet hours, or neither."),
    ({"time_of_day": "23:00"}, "time_of_day", "23:00 is in your quiet hours (22:00 to 07:00)"),
    ({"quiet_start": "18:00", "quiet_end": "09:00", "time_of_day": "12:00"}, "quiet_end",
     "Quiet hours can be at most 12 hours long (these are 15)."),
    ({"sms": "on"}, "sms_number", "Give the mobile number for SMS reminders"),
    ({"sms": "on", "sms_number": "0555 12"}, "sms_number", "with its country code"),
    ({"email": ""}, None, "Choose at least one way to be reminded"),
])
def test_a_bad_value_is_refused_beside_its_field_and_nothing_is_stored(patient, over, field, message):
    client = verified_login(Client(), patient.user)
    r = client.post(URL, post(**over))
    assert r.status_code == 200
    form = r.context["form"]
    errors = form.errors.get(field if field else "__all__", [])
    assert any(message in e for e in errors), form.errors
    assert not Preference.objects.filter(patient=patient).exists()
    assert not AuditEntry.objects.filter(patient=patient, model="Preference").exists()


def test_an_unknown_time_zone_is_refused(patient):
    client = verified_login(Client(), patient.user)
    r = client.post(URL, post(time_zone="Mars/Olympus"))
    assert r.status_code == 200 and "time_zone" in r.context["form"].errors
    assert not Preference.objects.exists()


def test_stop_all_reminders_needs_no_channel_and_says_so(patient):
    client = verified_login(Client(), patient.user)
    client.post(URL, post(email="", stopped="on"))
    assert Preference.objects.get(patient=patient).stopped is True
    page = text(client.get("/me/reminders/?saved=1").content.decode())
    assert "You will get no reminders until you start them again." in page


def test_the_browser_subscription_is_stored_once_per_endpoint(patient):
    client = verified_login(Client(), patient.user)
    body = {"endpoint": "https://updates.push.services.mozilla.com/wpush/v2/abc",
            "expirationTime": None,
            "keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQ", "auth": "tBHItJI5svbpez7KI4CCXg"},
            "label": "Firefox on Android"}
    for _ in range(2):
        r = client.post("/me/reminders/push/", json.dumps(body), content_type="application/json")
        assert r.status_code == 201
    device = PushDevice.objects.get(patient=patient)
    assert (device.endpoint, device.label) == (body["endpoint"], "Firefox on Android")
    assert AuditEntry.objects.filter(patient=patient, model="PushDevice").count() == 1


@pytest.mark.parametrize("body,field", [
    ({"endpoint": "http://push.example/x", "keys": {"p256dh": "abc", "auth": "def"}}, "endpoint"),
    ({"endpoint": "https://push.example/x", "keys": {"p256dh": "a b", "auth": "def"}}, "keys.p256dh"),
    ({"endpoint": "https://push.example/x"}, "keys.auth"),
    ([1, 2], "subscription"),
])
def test_a_bad_subscription_is_a_400_naming_the_field(patient, body, field):
    client = verified_login(Client(), patient.user)
    r = client.post("/me/reminders/push/", json.dumps(body), content_type="application/json")
    assert r.status_code == 400 and field in r.json()["errors"]
    assert not PushDevice.objects.exists()


def test_a_patient_removes_their_device_but_another_patients_is_a_404(clinic, patient):
    mine = add_device(patient, 1)
    theirs = PushDevice.objects.create(patient=clinic.patient_b, endpoint="https://push.example/b",
                                       p256dh="abc", auth="def")
    client = verified_login(Client(), patient.user)
    assert client.post(f"/me/reminders/devices/{theirs.pk}/remove/").status_code == 404
    assert client.get(f"/me/reminders/devices/{mine.pk}/remove/").status_code == 405
    r = client.post(f"/me/reminders/devices/{mine.pk}/remove/")
    assert r.status_code == 302 and r.url == "/me/reminders/?removed=1"
    assert list(PushDevice.objects.values_list("pk", flat=True)) == [theirs.pk]


@pytest.mark.parametrize("role", ["clinician_a", "clinician_b", "admin", "researcher"])
def test_no_other_role_has_reminder_pages(clinic, role):
    client = verified_login(Client(), getattr(clinic, role))
    for url, method in ((URL, "get"), (URL, "post"), ("/me/reminders/push/", "post")):
        assert getattr(client, method)(url).status_code == 403, (role, url)
    assert not Preference.objects.exists() and not PushDevice.objects.exists()


def test_an_anonymous_visitor_is_sent_to_log_in():
    r = Client().get(URL)
    assert r.status_code == 302 and r.url.startswith("/login/")


def test_the_services_refuse_a_clinician_writing_a_patients_preferences(clinic, patient):
    from django.http import Http404

    with pytest.raises(Http404):
        services.save_preferences(clinic.clinician_a, patient, {"time_of_day": "18:00", "email": True})
    with pytest.raises(Http404):
        services.save_preferences(clinic.patient_b.user, patient, {"time_of_day": "18:00", "email": True})
    assert not Preference.objects.exists()


def test_the_clinician_reads_the_preferences_and_the_log_on_the_patient_page(clinic, patient):
    set_prefs(patient, time_of_day="18:00", quiet_start="22:00", quiet_end="07:00")
    services.remind(patient, at_ny(today_ny(), "18:00"))
    client = verified_login(Client(), clinic.clinician_a)
    page = text(client.get(reverse("patient_detail", args=[patient.pk])).content.decode())
    section = page[page.find("Reminders At"):page.find("(no clinical content)")]
    assert "At 18:00 (America/New_York) , quiet 22:00 to 07:00, by E-mail." in section
    assert re.search(r"\d{1,2} \w{3} \d{4} \d\d:\d\d (EST|EDT) PHQ-9 due", section), section
    assert page.count("E-mail sent") == 2  # the diary's and the PHQ-9's rows
    assert "Daily diary due" in page and "PHQ-9 due" in page
    # another team's clinician cannot open the page
    other = verified_login(Client(), clinic.clinician_b)
    assert other.get(reverse("patient_detail", args=[patient.pk])).status_code == 404


def test_the_patient_sees_their_own_log_and_not_another_patients(clinic, patient):
    set_prefs(patient)
    services.remind(patient, at_ny(today_ny(), "18:00"))
    Delivery.objects.create(patient=clinic.patient_b, item="gad7", due_at=at_ny(today_ny(), "00:00"),
                            channel="sms", status="sent", detail="team B only")
    page = text(verified_login(Client(), patient.user).get(URL).content.decode())
    assert "Reminders sent to me" in page and page.count("E-mail sent") == 2
    assert "team B only" not in page and "GAD-7" not in page


def test_a_patient_without_reminders_shows_off_to_the_clinician(clinic, patient):
    client = verified_login(Client(), clinic.clinician_a)
    page = text(client.get(reverse("patient_detail", args=[patient.pk])).content.decode())
    assert "Off: the patient has not set up reminders" in page


def test_the_patient_apps_service_worker_imports_the_push_handler(patient):
    """The app's worker (/me/sw.js, issue 17) carries the reminders' push handler: one worker
    per scope, so a subscription made on it is shown by push-sw.js."""
    r = verified_login(Client(), patient.user).get("/me/sw.js")
    assert r.status_code == 200
    body = r.content.decode()
    assert "push-sw.js" in body and "importScripts(CFG.push)" in body


def test_the_push_handler_shows_only_a_path_of_this_site():
    from pathlib import Path

    import speciosa.reminders

    js = (Path(speciosa.reminders.__file__).parent / "static/speciosa/push-sw.js").read_text()
    assert 'addEventListener("push"' in js and 'addEventListener("notificationclick"' in js
    assert "u.origin === self.location.origin" in js
    assert "You have something to complete in Speciosa." in js
