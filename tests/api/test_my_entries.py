"""``/api/v1/me/entries/<kind>/<id>/corrections/`` and ``.../retraction/``: a patient's app
corrects or removes an entry of the patient's own diary (issue 15), as the diary page does."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from speciosa.clinic.models import Dose, SubstanceUse

pytestmark = pytest.mark.django_db


def _write(client, key, **body):
    taken = timezone.now() - dt.timedelta(minutes=30)
    body.setdefault("doses", [{"taken_at": taken.isoformat(), "amount": 3, "unit": "g"}])
    r = client.post("/api/v1/me/diary/", body, format="json", headers=key())
    assert r.status_code == 201, r.json()


def test_a_patient_corrects_a_dose_and_a_retry_stores_one_version(clinic, api, key):
    client = api(clinic.patient_a.user)
    _write(client, key)
    dose = Dose.objects.get()
    url = f"/api/v1/me/entries/dose/{dose.pk}/corrections/"
    headers = key()
    first = client.post(url, {"amount": 2.5, "reason": "typo"}, format="json", headers=headers)
    again = client.post(url, {"amount": 2.5, "reason": "typo"}, format="json", headers=headers)
    assert first.status_code == 201, first.json()
    assert again.status_code == 200
    assert first.json()["id"] == again.json()["id"] and Dose.objects.count() == 2
    assert Dose.objects.current().get().amount == Decimal("2.5")
    big = client.post(f"/api/v1/me/entries/dose/{first.json()['id']}/corrections/",
                      {"amount": 5000, "reason": "typo"}, format="json", headers=key())
    assert big.status_code == 400 and big.json()["code"] == "needs_confirmation"


def test_a_patient_removes_a_substance_entry(clinic, api, key):
    client = api(clinic.patient_a.user)
    _write(client, key, substances=["alcohol"])
    use = SubstanceUse.objects.get()
    r = client.post(f"/api/v1/me/entries/substance/{use.pk}/retraction/", {"reason": "not today"},
                    format="json")
    assert r.status_code == 200 and r.json()["retracted"] is True


def test_another_patients_entry_or_another_kind_is_a_404_and_a_clinician_a_403(clinic, api, key):
    _write(api(clinic.patient_b.user), key)
    other = Dose.objects.get()
    client = api(clinic.patient_a.user)
    for url in (f"/api/v1/me/entries/dose/{other.pk}/corrections/",
                f"/api/v1/me/entries/dose/{other.pk}/retraction/",
                f"/api/v1/me/entries/note/{other.pk}/retraction/",
                "/api/v1/me/entries/dose/x1/retraction/"):
        assert client.post(url, {"amount": 1, "reason": "mine"}, format="json",
                           headers=key()).status_code == 404, url
    assert api(clinic.clinician_b).post(f"/api/v1/me/entries/dose/{other.pk}/retraction/",
                                        {"reason": "x"}, format="json").status_code == 403
    other.refresh_from_db()
    assert not other.superseded and not other.retracted


def test_an_entry_older_than_the_window_is_a_400_saying_whom_to_ask(clinic, api, key, settings):
    settings.DIARY_CORRECTION_DAYS = 0
    client = api(clinic.patient_a.user)
    day = timezone.localdate() - dt.timedelta(days=1)
    taken = timezone.make_aware(dt.datetime.combine(day, dt.time(9)))
    _write(client, key, day=day.isoformat(), doses=[{"taken_at": taken.isoformat(), "amount": 3, "unit": "g"}])
    dose = Dose.objects.get()
    r = client.post(f"/api/v1/me/entries/dose/{dose.pk}/retraction/", {"reason": "wrong"}, format="json")
    assert r.status_code == 400 and "Ask your care team" in r.json()["errors"]["__all__"][0]


def test_a_patient_cannot_move_a_dose_off_its_diary_day(clinic, api, key):
    """Adversarial pass: a correction's taken_at was taken as sent, so a patient moved
    today's dose to three weeks ago (201): its diary day stayed today, the charts put it
    three weeks back, past the days the patient may change. A patient's correction keeps a
    dose on its diary's day (in any time zone); the care team can move it further."""
    client = api(clinic.patient_a.user)
    _write(client, key)
    dose = Dose.objects.get()
    url = f"/api/v1/me/entries/dose/{dose.pk}/corrections/"
    for when in (timezone.now() - dt.timedelta(days=20), dose.taken_at - dt.timedelta(days=2)):
        r = client.post(url, {"taken_at": when.isoformat(), "reason": "moved"}, format="json", headers=key())
        assert r.status_code == 400, r.json()
        assert "remove it and add it to that day's diary" in r.json()["errors"]["taken_at"][0]
    assert Dose.objects.count() == 1 and not Dose.objects.get().superseded
    # a time on the same day (read in a zone 14 hours ahead) is still a correction
    day = dose.diary.day
    ahead = dt.datetime.combine(day, dt.time(0, 5), tzinfo=dt.timezone(dt.timedelta(hours=14)))
    r = client.post(url, {"taken_at": ahead.isoformat(), "reason": "time"}, format="json", headers=key())
    assert r.status_code == 201, r.json()
    assert Dose.objects.current().get().taken_at == ahead
