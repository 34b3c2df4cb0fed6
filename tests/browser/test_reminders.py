"""Issue 16 in a real browser: a patient on a 360 px phone sets a reminder time, quiet hours,
e-mail and a notification on this phone; the reminder task runs; the test reads the e-mail
in Django's outbox and the push payload recorded at pywebpush's boundary, and the patient
and the clinician read the delivery log.

Headless chromium has no push service to subscribe with, so the subscription the page's
script would send is sent by the page itself (same endpoint, same CSRF header)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import zoneinfo

import pytest
from django.core import mail
from django.utils import timezone
from tests.reminders.conftest import pushes, vapid  # noqa: F401  (fixtures)

from speciosa import tasks
from speciosa.reminders import timing
from speciosa.schedules import services as sservices

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")
NY = zoneinfo.ZoneInfo("America/New_York")
TEXT = "You have something to complete in Speciosa."


def _no_sideways_scroll(page):
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width


def test_a_patient_sets_a_reminder_time_and_receives_it_by_email_and_push(
        live_server, clinic, phone, desktop, log_in, vapid, pushes):  # noqa: F811
    site = clinic.site_a
    site.time_zone = "America/New_York"
    site.save()
    patient = clinic.patient_a
    patient.user.email = "maya@example.org"
    patient.user.save()
    today = timezone.localdate(timezone=NY)
    sservices.save_plan(clinic.clinician_a, patient, [
        {"instrument": "diary", "every_days": 1, "start": today.isoformat()}], name="Diary")
    base = live_server.url

    log_in(phone, base, "pat_a", clinic.password)
    phone.goto(base + "/me/")
    phone.locator("nav").get_by_role("link", name="Reminders").click()
    phone.wait_for_url("**/me/reminders/")
    phone.get_by_label("Remind me at").fill("07:30")
    phone.get_by_label("My time zone").select_option("America/New_York")
    phone.get_by_label("Quiet from").fill("22:00")
    phone.get_by_label("until").fill("06:30")
    phone.get_by_label("E-mail").check()
    # what reminders.js posts after PushManager.subscribe()
    status = phone.evaluate("""async () => {
        const box = document.getElementById('push-setup');
        const r = await fetch(box.dataset.subscribeUrl, {method: 'POST', credentials: 'same-origin',
          headers: {'Content-Type': 'application/json', 'X-CSRFToken': box.dataset.csrf},
          body: JSON.stringify({endpoint: 'https://fcm.googleapis.com/fcm/send/phone-1',
            expirationTime: null, keys: {p256dh: 'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQ',
            auth: 'tBHItJI5svbpez7KI4CCXg'}, label: 'Chromium on Android'})});
        return r.status; }""")
    assert status == 201
    assert phone.locator("#push-setup").get_attribute("data-vapid-key") == vapid[1]
    phone.get_by_label("Notification on this phone (Web Push)").check()
    phone.get_by_role("button", name="Save my reminders").click()
    phone.wait_for_url("**/me/reminders/?saved=1")
    assert "Your next reminder comes at 07:30." in phone.locator("p.ok").inner_text()
    assert "Chromium on Android" in phone.locator("#push-setup").inner_text()
    _no_sideways_scroll(phone)

    # the periodic task, at 07:29 and at 07:31 on the diary's day (twice: sends once)
    before = timing.wall(today, dt.time(7, 29), NY).isoformat()
    at = timing.wall(today, dt.time(7, 31), NY).isoformat()
    tasks.send_reminders.delay(before)
    assert mail.outbox == [] and pushes == []
    tasks.send_reminders.delay(at)
    tasks.send_reminders.delay(at)
    assert len(mail.outbox) == 1
    m = mail.outbox[0]
    assert m.to == ["maya@example.org"] and m.body.startswith(TEXT)
    assert "https://speciosa.clinic.example/me/" in m.body
    assert len(pushes) == 1
    assert json.loads(pushes[0]["data"]) == {"title": "Speciosa", "body": TEXT, "url": "/me/",
                                             "tag": "speciosa-reminder"}
    assert pushes[0]["subscription_info"]["endpoint"] == "https://fcm.googleapis.com/fcm/send/phone-1"
    assert pushes[0]["vapid_claims"]["sub"] == "mailto:care@clinic.example"
    assert pushes[0]["vapid_claims"]["aud"] == "https://fcm.googleapis.com"

    phone.goto(base + "/me/reminders/")
    log = phone.locator("table.reminder-log").inner_text()
    assert "E-mail" in log and "Web Push" in log and log.count("sent") == 2
    _no_sideways_scroll(phone)
    if SHOTS:
        phone.screenshot(path=os.path.join(SHOTS, "reminders-360.png"), full_page=True)

    log_in(desktop, base, "clin_a", clinic.password)
    desktop.goto(f"{base}/patients/{patient.pk}/")
    section = desktop.locator("#reminders").inner_text()
    assert "At 07:30" in section and "quiet 22:00 to 06:30" in section
    assert section.count("sent") == 2
    if SHOTS:
        desktop.locator("#reminders").screenshot(path=os.path.join(SHOTS, "reminders-patient-1280.png"))
    if SHOTS:
        phone.set_viewport_size({"width": 1280, "height": 900})
        phone.goto(base + "/me/reminders/")
        phone.screenshot(path=os.path.join(SHOTS, "reminders-1280.png"), full_page=True)


def test_the_enable_button_says_what_happened_when_the_phone_cannot_subscribe(
        live_server, clinic, phone, log_in, vapid):  # noqa: F811
    log_in(phone, live_server.url, "pat_a", clinic.password)
    phone.goto(live_server.url + "/me/reminders/")
    phone.get_by_role("button", name="Turn on notifications on this phone").click()
    from playwright.sync_api import expect

    status = phone.locator("#push-status")
    expect(status).not_to_have_text(re.compile(r"^(|Asking the phone…)$"), timeout=15000)
    text = status.inner_text()
    print("push-status:", text)
    # headless chromium refuses the permission or has no push service: the page says which
    assert text in ("Notifications are blocked for this site in the browser's settings.",
                    "Done: this phone gets notifications. Save your reminders to keep the choice.") \
        or "push service" in text.lower() or "registration" in text.lower(), text
    assert phone.get_by_role("button", name="Turn on notifications on this phone").is_enabled()
