"""A bulk ``$export`` end to end with a real Celery worker on the local Redis: kick-off over
HTTP queues the task, the worker (another process, on the same database) writes the NDJSON
files, polling answers 202 then the manifest, and the requester downloads the files."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.db import connection
from django.test import Client

from speciosa.interop.models import BulkExport

from ..conftest import verified_login
from ..ops.conftest import base_env
from ..ops.workers import Worker, redis_or_skip

# A database of its own, never flushed (tests/ops/test_queue.py flushes 15, possibly while
# this test waits on it in another test run); this test's queue name is its own.
BROKER = "redis://127.0.0.1:6379/14"

pytestmark = pytest.mark.django_db(transaction=True)


def _database_url() -> str:
    """The test database, as a DATABASE_URL for the worker process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def redis_up():
    redis_or_skip(BROKER)


@pytest.fixture
def queued(settings, redis_up):
    """The task queue of this process switched from eager to the Redis broker, on a queue of
    its own; put back afterwards."""
    from speciosa.celery import app

    def forget_connections():
        # an earlier test of this process may have opened the broker connection pool with
        # the default broker (the health check does: amqp on localhost, where RabbitMQ
        # answers), and the producers would keep publishing there
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None

    queue = f"speciosa-bulk-{uuid.uuid4().hex[:8]}"
    saved = {k: app.conf[k] for k in ("task_always_eager", "broker_url", "task_default_queue")}
    app.conf.update(task_always_eager=False, broker_url=BROKER, task_default_queue=queue)
    forget_connections()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    yield queue
    app.conf.update(saved)
    forget_connections()


def test_a_bulk_export_runs_on_a_real_worker_end_to_end(clinic, queued, settings, tmp_path):
    settings.BULK_EXPORT_DIR = tmp_path / "bulk"
    env = base_env(CELERY_BROKER_URL=BROKER, DATABASE_URL=_database_url(),
                   SPECIOSA_DATA_DIR=str(tmp_path / "worker"),
                   SPECIOSA_BULK_DIR=str(settings.BULK_EXPORT_DIR))
    worker = Worker(env, queued)
    try:
        client = verified_login(Client(), clinic.clinician_a)
        resp = client.get("/fhir/$export", {"_type": "Patient,CareTeam", "_purpose": "TREAT"},
                          HTTP_PREFER="respond-async")
        assert resp.status_code == 202, resp.content
        status = resp["Content-Location"]
        first = client.get(status)
        progress = []
        deadline = time.monotonic() + 90  # the worker starts Django first; a busy machine
        while first.status_code == 202 and time.monotonic() < deadline:
            worker.assert_running()
            progress.append(first["X-Progress"])
            time.sleep(0.3)
            first = client.get(status)
        if first.status_code != 200:
            pytest.fail(f"still {first.status_code} after {progress[-3:]}; the worker said:\n"
                        f"{worker.stop()[-3000:]}")
        # the first poll comes before the worker has even started Django
        assert progress and all(p in ("queued", "starting") or p.endswith("types written")
                                for p in progress), progress
        manifest = first.json()
        assert [o["type"] for o in manifest["output"]] == ["Patient", "CareTeam"]
        patients = client.get(manifest["output"][0]["url"])
        lines = b"".join(patients.streaming_content).decode().splitlines()
        assert [json.loads(line)["id"] for line in lines] == [str(clinic.patient_a.pk)]
        export = BulkExport.objects.get()
        assert export.status == "done" and export.patient_ids == [clinic.patient_a.pk]
    finally:
        worker.stop()
