"""Two workers run the same patient's reminders at the same moment (a duplicated queue message
on two machines): the unique delivery key lets one of them send. PostgreSQL only (SQLite has
one writer at a time, so the race cannot happen there)."""

from __future__ import annotations

import threading

import pytest
from django.core import mail
from django.db import connection, connections
from tests.reminders.conftest import at_ny, set_prefs, today_ny

from speciosa.reminders import services
from speciosa.reminders.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_workers_at_once_send_one_reminder(patient, vapid):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (concurrent writers)")
    set_prefs(patient)
    at = at_ny(today_ny(), "18:30")
    start = threading.Barrier(4)
    results, errors = [], []

    def worker():
        try:
            start.wait()
            results.append(dict(services.remind(patient, at)))
        except Exception as exc:  # pragma: no cover - shown in the assertion
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(mail.outbox) == 1
    assert sorted(r.get("sent", 0) for r in results) == [0, 0, 0, 2]
    assert Delivery.objects.filter(patient=patient, status="sent").count() == 2
