"""Reminders through a real Celery worker on the local Redis: send_reminders queued twice (as
a beat that fired twice, or a duplicated message) fans out remind_patient and one e-mail goes
out (the worker's console e-mail backend prints it)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
from celery import Celery

from .test_queue import BROKER, redis_db15  # noqa: F401  (fixture)
from .workers import Worker

SETUP = """
import datetime as dt, zoneinfo
from speciosa.commands.server import setup_django
setup_django()
from django.contrib.auth import get_user_model
from speciosa.clinic.models import CareTeam, Patient, Profile, Site
from speciosa.reminders import services, timing
from speciosa.schedules import services as sservices
site = Site.objects.create(name="Worker site", time_zone="America/New_York")
team = CareTeam.objects.create(site=site, name="Team")
clin = get_user_model().objects.create_user("clin", password="x")
Profile.objects.create(user=clin, role="clinician")
team.members.add(clin)
user = get_user_model().objects.create_user("pat", password="x", email="pat@example.org")
Profile.objects.create(user=user, role="patient")
ny = zoneinfo.ZoneInfo("America/New_York")
today = dt.datetime.now(ny).date()
p = Patient.objects.create(site=site, care_team=team, user=user, identifier="W-1", given_name="Wil",
                           family_name="Worker", birth_date=dt.date(1980, 1, 1), sex="male",
                           in_care_since=today - dt.timedelta(days=30))
sservices.save_plan(clin, p, [{"instrument": "diary", "every_days": 1, "start": today.isoformat()}])
services.save_preferences(user, p, {"time_of_day": "07:00", "email": True})
print(timing.wall(today, dt.time(7, 5), ny).isoformat())
"""


def _deliveries(db) -> list[tuple]:
    sql = "SELECT item, channel, status FROM reminders_delivery WHERE status = 'sent'"
    if db.vendor == "sqlite":
        import sqlite3

        conn = sqlite3.connect(db.name, timeout=20)
    else:
        import psycopg

        conn = psycopg.connect(db.env["DATABASE_URL"], autocommit=True)
    try:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()


def test_a_real_worker_sends_a_reminder_once_when_the_task_is_queued_twice(
        redis_db15, new_database, tmp_path):  # noqa: F811
    db = new_database(migrated=True)
    env = dict(db.env, EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend")
    done = subprocess.run([sys.executable, "-c", SETUP], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    at = done.stdout.strip().splitlines()[-1]
    queue = f"speciosa-test-{uuid.uuid4().hex[:8]}"
    env.update(CELERY_BROKER_URL=BROKER, SPECIOSA_TASK_QUEUE=queue)
    worker = Worker(env, queue)
    try:
        sender = Celery(broker=BROKER)
        for _ in range(2):
            sender.send_task("speciosa.tasks.send_reminders", args=[at], queue=queue)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not _deliveries(db):
            worker.assert_running()
            time.sleep(0.3)
        time.sleep(3)  # the second message and its fan-out run too
        out = worker.stop()
        assert out.count("Subject: A reminder from Speciosa") == 1, out[-3000:]
        assert "To: pat@example.org" in out
        assert "You have something to complete in Speciosa." in out
        assert "kratom" not in out.lower() and "Worker" not in out.split("Subject:")[1]
    finally:
        worker.stop()
    assert _deliveries(db) == [("diary", "email", "sent")]

def test_the_beat_schedules_the_reminders_at_most_every_15_minutes():
    from django.conf import settings

    from speciosa.reminders import timing

    entry = settings.CELERY_BEAT_SCHEDULE["send-reminders"]
    assert entry["task"] == "speciosa.tasks.send_reminders"
    assert entry["schedule"] <= timing.MAX_PERIOD.total_seconds()
    pytest.importorskip("pywebpush")
