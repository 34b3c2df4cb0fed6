"""Issue 18, page latency: what every request costs before the page's own work. Under load each
statement is a round trip to PostgreSQL on the same two cores (the statements themselves run in
well under a millisecond: EXPLAIN ANALYZE of the patient page and the diary), so the reads that
repeat on every request are kept to one each, and a page view writes the session only when its
inactivity window is renewed."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from tests.conftest import totp_device, verified_login

pytestmark = pytest.mark.django_db

#: Measured when written (SQLite and PostgreSQL): 12 statements for the diary form of a patient
#: without a second factor (session, user, profile, devices, patient, the day's diary and its
#: entries, the usual capsule, notices, unread messages) and 35 for the patient page.
DIARY_FORM_MAX = 13
PATIENT_PAGE_MAX = 36


class Statements:
    """The statements a request runs (``connection.execute_wrapper``)."""

    def __init__(self):
        self.sql: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.sql.append(sql)
        return execute(sql, params, many, context)

    def on(self, table: str, verb: str = "SELECT") -> int:
        """Statements that read (``FROM``, subqueries left out) or write ``table``."""
        if verb != "SELECT":
            pattern = re.compile(rf'^\s*{verb}\b[^"]*"{table}"', re.S)
            return sum(1 for s in self.sql if pattern.search(s))
        return sum(1 for s in self.sql if s.lstrip().startswith("SELECT")
                   and f'FROM "{table}"' in _without_subqueries(s))


def _without_subqueries(sql: str) -> str:
    """``sql`` with every parenthesised ``(SELECT ...)`` removed."""
    out, depth, i = [], 0, 0
    while i < len(sql):
        if sql.startswith("(SELECT", i) or (depth and sql[i] == "("):
            depth += 1
        elif depth and sql[i] == ")":
            depth -= 1
        elif not depth:
            out.append(sql[i])
        i += 1
    return "".join(out)


def _run(client, method: str, url: str, **data) -> tuple[Statements, object]:
    seen = Statements()
    with connection.execute_wrapper(seen):
        response = getattr(client, method)(url, data or None)
    return seen, response


def test_a_patient_request_reads_the_profile_patient_site_and_devices_once(clinic, login):
    client = login(clinic.patient_a.user)
    client.get("/me/diary/")  # the session's first renewal
    seen, response = _run(client, "get", "/me/diary/")
    assert response.status_code == 200
    assert seen.on("clinic_profile") == 1
    assert seen.on("clinic_patient") == 1  # the time-zone middleware's read serves the view
    assert seen.on("clinic_site") == 0  # joined to the patient
    # the second-factor check asks every device model in one statement
    assert sum(1 for s in seen.sql if "otp_totp_totpdevice" in s or "otp_static_staticdevice" in s) == 1
    assert len(seen.sql) <= DIARY_FORM_MAX, seen.sql


def test_the_patient_page_reads_the_patient_once(clinic, login):
    client = login(clinic.clinician_a)
    url = reverse("patient_detail", args=[clinic.patient_a.pk])
    client.get(url)
    seen, response = _run(client, "get", url)
    assert response.status_code == 200
    assert seen.on("clinic_patient") == 1  # with the list's summary (and the access check)
    assert seen.on("clinic_profile") == 1 and seen.on("clinic_site") == 0
    assert len(seen.sql) <= PATIENT_PAGE_MAX


def test_another_teams_patient_is_still_a_404_from_the_one_read(clinic, login):
    client = login(clinic.clinician_a)
    assert client.get(reverse("patient_detail", args=[clinic.patient_b.pk])).status_code == 404
    assert client.get(reverse("patient_detail", args=[10 ** 9])).status_code == 404


def test_the_session_is_written_when_its_window_is_renewed_not_on_every_request(clinic, login,
                                                                                  monkeypatch):
    from django.contrib.sessions.models import Session

    from speciosa.web import security

    client = login(clinic.clinician_a)
    client.get("/patients/")
    key = client.session.session_key
    stored = Session.objects.get(session_key=key).expire_date
    seen, _ = _run(client, "get", "/patients/")
    assert seen.on("django_session", "UPDATE") == 0  # renewed less than a minute ago
    assert Session.objects.get(session_key=key).expire_date == stored
    # a minute later the window is renewed again: 30 minutes from then
    later = security.time.time() + security.RENEW_EVERY_S + 1
    monkeypatch.setattr(security.time, "time", lambda: later)
    seen, _ = _run(client, "get", "/patients/")
    assert seen.on("django_session", "UPDATE") == 1
    assert Session.objects.get(session_key=key).expire_date > stored
    assert client.session.get_expiry_age() == 30 * 60


def test_a_session_never_outlives_its_window_between_renewals(clinic, login, monkeypatch):
    """Skipping the write can only end a session sooner: the stored expiry is the last
    renewal's, at most ``RENEW_EVERY_S`` before the last request."""
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    client = login(clinic.patient_a.user)
    client.get("/me/")
    for _ in range(3):
        client.get("/me/")
    expiry = Session.objects.get(session_key=client.session.session_key).expire_date
    assert expiry <= timezone.now() + dt_minutes(12 * 60)


def dt_minutes(n: int):
    import datetime as dt

    return dt.timedelta(minutes=n)


def test_a_shorter_window_applies_at_once(clinic, login, settings):
    """A login whose window changes (here the site shortens the staff window) gets the new one
    on its next request, not up to a minute later."""
    client = login(clinic.clinician_a)
    client.get("/patients/")
    assert client.session.get_expiry_age() == 30 * 60
    settings.STAFF_SESSION_MINUTES = 5
    client.get("/patients/")
    assert client.session.get_expiry_age() == 5 * 60


@pytest.mark.parametrize("kind", ["totp", "static", "unconfirmed"])
def test_the_one_statement_device_check_sees_every_kind_of_device(clinic, kind):
    from django_otp.plugins.otp_static.models import StaticDevice

    from speciosa.web import security

    user = clinic.patient_a.user
    assert security.has_confirmed_device(user) is False
    if kind == "totp":
        totp_device(user)
    elif kind == "static":
        StaticDevice.objects.create(user=user, name="codes", confirmed=True)
    else:
        StaticDevice.objects.create(user=user, name="codes", confirmed=False)
    assert security.has_confirmed_device(user) is (kind != "unconfirmed")
    assert security.needs_second_factor(user) is (kind != "unconfirmed")


def test_a_patient_who_opted_in_still_cannot_skip_the_second_factor(clinic):
    """The one-statement device check still sends a patient with a device to the code step."""
    user = clinic.patient_a.user
    totp_device(user)
    client = Client()
    client.force_login(user)
    response = client.get("/me/diary/")
    assert response.status_code == 302 and "second-factor" in response.url
    verified_login(client, user)
    assert client.get("/me/diary/").status_code == 200


class _Clock:
    """Wall time moved forward for the session's renewal (``time.time``) and for the session
    store's expiry (``django.utils.timezone.now``) alike."""

    def __init__(self, monkeypatch):
        import datetime as dt
        import time

        from django.utils import timezone

        self.offset = 0.0
        real_time, real_now = time.time, timezone.now
        monkeypatch.setattr(time, "time", lambda: real_time() + self.offset)
        monkeypatch.setattr(timezone, "now", lambda: real_now() + dt.timedelta(seconds=self.offset))

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def test_a_busy_login_with_a_one_minute_window_stays_logged_in(clinic, login, monkeypatch, settings):
    """Found by the adversarial round: with a window of a minute, renewing once a minute
    ended the session a minute after its first request however busy its user was (a request
    at 40 s did not renew it, so the one at 80 s found it expired). A short window is renewed
    at least every tenth of it."""
    settings.STAFF_SESSION_MINUTES = 1
    clock = _Clock(monkeypatch)
    client = login(clinic.clinician_a)
    assert client.get("/patients/").status_code == 200
    for _ in range(5):
        clock.advance(40)  # a request every 40 s: never a minute without one
        assert client.get("/patients/").status_code == 200
    clock.advance(61)  # a minute and a second without a request: logged out, as before
    response = client.get("/patients/")
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_a_session_still_ends_when_its_window_passes_without_a_request(clinic, login, monkeypatch):
    clock = _Clock(monkeypatch)
    client = login(clinic.clinician_a)
    assert client.get("/patients/").status_code == 200
    clock.advance(29 * 60)
    assert client.get("/patients/").status_code == 200
    for _ in range(3):  # busy for longer than the window: never logged out
        clock.advance(20 * 60)
        assert client.get("/patients/").status_code == 200
    clock.advance(30 * 60 + 1)
    assert client.get("/patients/").status_code == 302
