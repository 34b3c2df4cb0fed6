"""The task queue: a real Celery worker on the local Redis retries a failing task, which then
takes effect once; without a broker, tasks run eagerly (the embedded demo)."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
from celery import Celery

from .conftest import BIN, base_env
from .workers import Worker, flushed_redis

BROKER = "redis://127.0.0.1:6379/15"  # a database of its own; only it is flushed


redis_db15 = flushed_redis(BROKER)


def test_a_real_worker_retries_a_failing_task_and_it_takes_effect_once(redis_db15, tmp_path):
    queue = f"speciosa-test-{uuid.uuid4().hex[:8]}"
    env = base_env(CELERY_BROKER_URL=BROKER, SPECIOSA_DATA_DIR=str(tmp_path))
    worker = Worker(env, queue, extra=("--include=celery_probe",))
    try:
        sender = Celery(broker=BROKER)
        key = f"probe-{uuid.uuid4().hex[:8]}"
        sender.send_task("celery_probe.flaky", args=[key], queue=queue)
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and not redis_db15.get(f"{key}:effects"):
            worker.assert_running()
            time.sleep(0.2)
        assert redis_db15.get(f"{key}:effects") == b"1"
        assert redis_db15.get(f"{key}:attempts") == b"2"  # failed once, retried once
        time.sleep(1.5)  # nothing runs it a third time
        assert redis_db15.get(f"{key}:attempts") == b"2"
    finally:
        worker.stop()


def test_the_worker_command_needs_a_broker(tmp_path):
    done = subprocess.run([str(BIN / "speciosa"), "worker"], env=base_env(SPECIOSA_DATA_DIR=str(tmp_path)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "CELERY_BROKER_URL" in done.stderr


def test_without_a_broker_tasks_run_eagerly_with_retries_and_late_acks_configured(settings):
    from speciosa import tasks
    from speciosa.celery import app

    assert settings.CELERY_TASK_ALWAYS_EAGER and app.conf.task_always_eager
    for task in (tasks.sweep_all, tasks.evaluate_patient, tasks.notify_urgent_alert,
                 tasks.notify_new_urgent_alerts, tasks.export_fhir, tasks.export_research):
        assert task.acks_late and task.max_retries == 5 and task.autoretry_for



def _run_failing(monkeypatch, exc: Exception, calls: list[int]) -> None:
    """Run ``notify_urgent_alert`` eagerly with its e-mail step raising ``exc``; each call of
    that step is appended to ``calls`` (eager tasks propagate what they raise)."""
    from speciosa import tasks

    def fail(alert_id: int) -> int:
        calls.append(alert_id)
        raise exc

    monkeypatch.setattr("speciosa.ops.notify.notify", fail)
    tasks.notify_urgent_alert.apply(args=[7])


def test_it_does_not_retry_an_integrity_error(monkeypatch):
    # The same insert meets the same constraint again: a retry only hides the cause.
    from django.db import IntegrityError

    calls: list[int] = []
    with pytest.raises(IntegrityError, match="UNIQUE"):
        _run_failing(monkeypatch, IntegrityError("UNIQUE constraint failed"), calls)
    assert calls == [7]


def test_it_retries_when_the_database_is_briefly_away(monkeypatch):
    from celery.exceptions import Retry
    from django.db import OperationalError

    calls: list[int] = []
    with pytest.raises(Retry):  # eagerly, Celery raises Retry where a worker would wait
        _run_failing(monkeypatch, OperationalError("server closed the connection"), calls)
    assert calls == [7]


@pytest.mark.parametrize("exc", [FileNotFoundError("no such file"), PermissionError("denied"),
                                 ValueError("bad alert id")],
                         ids=["missing file", "permission", "bug"])
def test_it_does_not_retry_an_error_that_would_come_again(monkeypatch, exc):
    calls: list[int] = []
    with pytest.raises(type(exc)):
        _run_failing(monkeypatch, exc, calls)
    assert calls == [7]
