"""Structured logs hold no patient identifiers; urgent alerts e-mail the care team once,
without patient data; the web diary form stores one diary when posted twice at once."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import threading

import pytest
from django.core import mail
from django.db import IntegrityError, connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from tests.conftest import form_token

from speciosa.clinic.models import Alert, AuditEntry, DiaryDay, Dose
from speciosa.ops.logs import JsonFormatter, RedactFilter


@pytest.fixture
def json_logs():
    """Everything logged while the test runs, formatted as in production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def _identifiers(patient) -> list[str]:
    return [patient.given_name, patient.family_name, patient.identifier, patient.birth_date.isoformat()]


def _diary_post(token: str = "t-log") -> dict[str, str]:
    return {"token": form_token(token), "doses-TOTAL_FORMS": "1", "doses-INITIAL_FORMS": "0",
            "doses-MIN_NUM_FORMS": "0", "doses-MAX_NUM_FORMS": "12",
            "doses-0-time": "00:01", "doses-0-amount": "2", "doses-0-unit": "g", "craving": "4"}


@pytest.mark.django_db
def test_a_diary_save_and_a_failed_login_log_no_patient_identifier(clinic, client, json_logs):
    p = clinic.patient_a
    client.force_login(p.user)
    assert client.post(reverse("diary_today") + f"?who={p.family_name}", _diary_post()).status_code == 302
    client.logout()
    client.post(reverse("login"), {"username": p.identifier, "password": f"{p.given_name}-wrong"})
    logging.getLogger("speciosa.test").error("lookup of %s failed", p.given_name + "@example.org")
    try:
        raise IntegrityError(f'duplicate key DETAIL: Key (identifier)=({p.identifier}) already exists')
    except IntegrityError:
        logging.getLogger("speciosa.test").exception("save failed")
    out = json_logs.getvalue()
    lines = [json.loads(line) for line in out.splitlines()]
    assert any(line.get("path") == "/me/diary/" and line.get("status") == 302 for line in lines), out
    assert any(line.get("exception", {}).get("type") == "IntegrityError" for line in lines)
    for secret in _identifiers(p):
        assert secret not in out
    assert "?who=" not in out


@pytest.mark.django_db
def test_an_urgent_alert_e_mails_the_care_team_once_with_a_link_and_no_patient_data(clinic, settings):
    from speciosa import tasks
    from speciosa.ops.models import UrgentAlertNotice

    settings.SPECIOSA_BASE_URL = "https://speciosa.example.org"
    clinic.clinician_a.email = "ada@clinic.example"
    clinic.clinician_a.save()
    p = clinic.patient_a
    alert = Alert.objects.create(patient=p, rule="r.test", topic="t", severity="urgent",
                                 message=f"{p.given_name} has a very high prolactin")
    assert tasks.notify_urgent_alert.delay(alert.pk).get() == 1
    assert tasks.notify_urgent_alert.delay(alert.pk).get() == 0  # a redelivered task sends nothing
    assert tasks.notify_new_urgent_alerts.delay().get() == 0
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ada@clinic.example"]
    assert f"https://speciosa.example.org/patients/{p.pk}/#alert-{alert.pk}" in message.body
    for secret in [*_identifiers(p), "prolactin"]:
        assert secret not in message.body and secret not in message.subject
    assert UrgentAlertNotice.objects.get(alert=alert).recipients == 1


@pytest.mark.django_db
def test_with_a_broker_a_change_is_evaluated_on_a_worker_after_the_commit(clinic, settings, monkeypatch,
                                                                          django_capture_on_commit_callbacks):
    from speciosa import tasks
    from speciosa.clinic import services

    sent = []
    monkeypatch.setattr(tasks.evaluate_patient, "delay", lambda pk: sent.append(pk))
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with django_capture_on_commit_callbacks(execute=True):
        services.record_lab(clinic.clinician_a, clinic.patient_a, {
            "lab": "prolactin", "value": "12", "unit": "ng/mL",
            "collected_at": timezone.now() - dt.timedelta(hours=1)})
        assert sent == []  # not before the commit
    assert sent == [clinic.patient_a.pk]


@pytest.mark.django_db(transaction=True)
def test_the_diary_form_posted_twice_at_once_with_one_token_stores_one_diary(clinic):
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def send(i: int) -> None:
        try:
            c = Client()
            c.force_login(clinic.patient_a.user)
            barrier.wait()
            results[i] = c.post(reverse("diary_today"), _diary_post("race-web")).status_code
        except Exception as exc:  # noqa: BLE001 - reported below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [302, 302]
    assert DiaryDay.objects.count() == 1 and Dose.objects.count() == 1
    assert AuditEntry.objects.filter(action="create", model="Dose").count() == 1
    assert Dose.objects.get().taken_at <= timezone.now() + dt.timedelta(minutes=5)
