"""Reminder fixtures: patient A of the small clinic in New York with an e-mail address, a plan
(daily diary, PHQ-9 every 14 days from today), and helpers to set preferences and record the
push calls at pywebpush's boundary."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

import pytest
from django.utils import timezone

NY = zoneinfo.ZoneInfo("America/New_York")


@pytest.fixture
def vapid(settings):
    from speciosa.reminders import vapid

    private, public = vapid.new_keys()
    settings.SPECIOSA_VAPID_PRIVATE_KEY = private
    settings.SPECIOSA_VAPID_PUBLIC_KEY = public
    settings.SPECIOSA_VAPID_SUBJECT = "mailto:care@clinic.example"
    settings.SPECIOSA_BASE_URL = "https://speciosa.clinic.example"
    return private, public


@pytest.fixture
def sms_file(settings, tmp_path):
    path = tmp_path / "sms.jsonl"
    settings.SPECIOSA_SMS_BACKEND = "speciosa.reminders.sms.FileBackend"
    settings.SPECIOSA_SMS_FILE_PATH = str(path)
    return path


def sms_lines(path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def pushes(monkeypatch):
    """Every call to pywebpush.webpush, recorded (nothing leaves the machine)."""
    import pywebpush

    calls: list[dict] = []

    def fake(subscription_info, data=None, vapid_private_key=None, vapid_claims=None, **kw):
        calls.append({"subscription_info": subscription_info, "data": data,
                      "vapid_private_key": vapid_private_key, "vapid_claims": dict(vapid_claims),
                      **kw})
        return None

    monkeypatch.setattr(pywebpush, "webpush", fake)
    return calls


@pytest.fixture
def patient(clinic):
    """Patient A, in New York, with an e-mail address and a plan: diary daily and PHQ-9 every
    14 days, both from today."""
    from speciosa.schedules import services as sservices

    site = clinic.site_a
    site.time_zone = "America/New_York"
    site.save()
    p = clinic.patient_a
    p.refresh_from_db()
    p.user.email = "maya@example.org"
    p.user.save()
    today = timezone.localdate(timezone=NY)
    sservices.save_plan(clinic.clinician_a, p, [
        {"instrument": "diary", "every_days": 1, "start": today.isoformat()},
        {"instrument": "phq9", "every_days": 14, "start": today.isoformat()}], name="Recovery")
    return p


def today_ny() -> dt.date:
    return timezone.localdate(timezone=NY)


def at_ny(day: dt.date, hhmm: str) -> dt.datetime:
    from speciosa.reminders import timing

    return timing.wall(day, dt.time.fromisoformat(hhmm), NY)


def set_prefs(patient, **over):
    """Store preferences as the patient would (through the service, audited)."""
    from speciosa.reminders import services

    data = {"time_of_day": "18:00", "time_zone": "America/New_York", "email": True}
    data.update(over)
    return services.save_preferences(patient.user, patient, data)


def add_device(patient, n=1):
    from speciosa.reminders import services

    return services.subscribe(patient.user, patient, {
        "endpoint": f"https://fcm.googleapis.com/fcm/send/device-{n}-abc",
        "keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
                 "auth": "tBHItJI5svbpez7KI4CCXg"},
        "label": "Chrome on Android"})
