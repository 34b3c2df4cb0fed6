"""The sweep on TWO real Celery worker processes (Redis on 127.0.0.1:6379, database 13 of its
own, a queue of its own) against the test database: every patient evaluated exactly once,
duplicated chunk deliveries raise nothing twice, and the alerts are those of a single-process
sweep.

The workers are ``speciosa worker`` processes pointed at pytest-django's test database
(``test_speciosa_<pid>``, whose name is read from the connection) with ``DATABASE_URL``; the
test data is committed (``transaction=True``) so that they see it. PostgreSQL only: two
processes share the database through its server (SQLite's test file is this process's own).
Skipped, saying why, when Redis is not reachable.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection
from django.utils import timezone

from speciosa import safety
from speciosa.clinic import alerts
from speciosa.clinic.models import Alert, AuditEntry, CareTeam, Patient, Site, SweepChunk, SweepRun

from ..ops.conftest import base_env
from ..ops.workers import Worker, flushed_redis
from .test_sweep import _history

BROKER = "redis://127.0.0.1:6379/13"
redis_db13 = flushed_redis(BROKER)


@pytest.fixture
def two_workers(transactional_db, redis_db13, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...): two worker processes share the "
                    "test database through its server; SQLite's test database is this process's file")
    url = urlsplit(os.environ["DATABASE_URL"])
    test_db = urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))
    queue = f"speciosa-sweep-test-{uuid.uuid4().hex[:8]}"
    env = base_env(DATABASE_URL=test_db, CELERY_BROKER_URL=BROKER, SPECIOSA_TASK_QUEUE=queue,
                   SPECIOSA_DATA_DIR=str(tmp_path), SPECIOSA_LOG_LEVEL="INFO")  # INFO: "ready."
    workers = [Worker(env, queue, name=f"w{i}", loglevel="INFO") for i in (1, 2)]
    try:
        for w in workers:
            if not w.ready.wait(60):
                pytest.fail("worker not ready:\n" + w.output())
        yield queue, workers
    finally:
        for w in workers:
            w.terminate()  # both at once, then wait for each
        for w in workers:
            w.stop()


def _wait(redis_db13, queue: str, done, workers, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in workers:
            w.assert_running()
        if done() and not redis_db13.llen(queue) and not redis_db13.hlen("unacked"):
            return
        time.sleep(0.1)
    pytest.fail("the workers did not finish:\n" + "".join(workers[0].lines[-30:] + workers[1].lines[-30:]))


def alert_rows():
    return sorted(Alert.objects.filter(status__in=Alert.ACTIVE).values_list(
        "patient_id", "rule", "severity", "message"))


@pytest.mark.django_db(transaction=True)
def test_two_workers_evaluate_every_patient_once_with_the_alerts_of_one_process(two_workers, redis_db13):
    from celery import Celery

    queue, workers = two_workers
    site = Site.objects.create(name="Workers", time_zone="America/New_York")
    team = CareTeam.objects.create(site=site, name="Workers team")
    patients = [Patient.objects.create(site=site, care_team=team, identifier=f"WK-{i}", given_name="W",
                                       family_name=f"Worker{i}", birth_date=dt.date(1980, 1, 1), sex="female",
                                       in_care_since=dt.date.today() - dt.timedelta(days=100))
                for i in range(20)]
    for i, p in enumerate(patients):
        _history(p, days=30, seed=40 + i, stop_diary=10 if i % 4 == 0 else 0, escalate=i % 5 == 1)
    as_of = timezone.now()
    timelines = alerts.load_timelines([p.pk for p in patients])
    want = sorted((pid, f.rule, f.severity, f.message)
                  for pid, fs in safety.evaluate_many(timelines, as_of, alerts.site_safety_settings()).items()
                  for f in fs)
    assert want

    sender = Celery(broker=BROKER)
    sender.send_task("speciosa.tasks.sweep_all", kwargs={"as_of": as_of.isoformat(), "chunk": 2}, queue=queue)
    _wait(redis_db13, queue, lambda: SweepRun.objects.filter(finished_at__isnull=False).exists(), workers)
    run = SweepRun.objects.get()
    chunks = list(run.chunk_set.order_by("first_patient"))
    assert len(chunks) == run.chunks == 10
    assert [c.evaluations for c in chunks] == [1] * 10  # every chunk evaluated exactly once
    ranges = [(c.first_patient, c.last_patient) for c in chunks]
    ids = sorted(p.pk for p in patients)
    assert sum(c.patients for c in chunks) == len(ids)
    assert all(sum(a <= pid <= b for a, b in ranges) == 1 for pid in ids)  # each patient in one chunk
    assert len({c.worker.split(":")[0] for c in chunks}) == 2, [c.worker for c in chunks]  # both worked
    assert run.patients == len(ids) and run.created == len(want)
    assert alert_rows() == want

    # every chunk of a new run delivered twice at once: each evaluated once, nothing raised
    audit = AuditEntry.objects.count()
    dup = alerts.plan_sweep(f"dup-{uuid.uuid4().hex}", as_of=as_of, chunk=2)
    for first, last in alerts.pending_chunks(dup):
        for _ in range(2):
            sender.send_task("speciosa.tasks.sweep_chunk", args=[dup.pk, first, last], queue=queue)
    _wait(redis_db13, queue, lambda: SweepRun.objects.filter(pk=dup.pk, finished_at__isnull=False).exists(),
          workers)
    dup.refresh_from_db()
    assert set(SweepChunk.objects.filter(run=dup).values_list("evaluations", flat=True)) == {1}
    assert (dup.patients, dup.created, dup.stopped) == (len(ids), 0, 0)
    assert alert_rows() == want and AuditEntry.objects.count() == audit

    # and a single-process sweep at the same time agrees: nothing to create or stop
    one = alerts.sweep(as_of=as_of)
    assert (one.patients, one.findings, one.created, one.stopped) == (len(ids), len(want), 0, 0)
    assert alert_rows() == want
