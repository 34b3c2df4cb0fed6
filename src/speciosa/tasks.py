"""Background work: safety sweeps, per-patient re-evaluation, urgent-alert e-mail, exports.

Every task is idempotent, so that ``acks_late`` redelivery (a worker killed mid-task) and
automatic retries (``autoretry_for`` with exponential backoff) never do the work twice in
effect: a sweep reconciles alerts to the current findings, a notice row makes each urgent
alert's e-mail go out once, and an export overwrites its own output folder.

Without a broker (``CELERY_BROKER_URL`` unset) the tasks run eagerly, in the caller.
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from typing import Any

from django.db import InterfaceError, OperationalError

from speciosa.celery import app

log = logging.getLogger(__name__)

# Transient failures worth a retry: the database or the mail server briefly away. Only these:
# an error that the same call will meet again (an IntegrityError or a ProgrammingError, a
# missing file, a refused recipient) fails the task at once instead of retrying it five times
# over ten minutes and hiding the cause behind the retries.
TRANSIENT: tuple[type[BaseException], ...] = (
    OperationalError,  # the database went away, a lock timed out, a serialisation failure
    InterfaceError,  # the connection to the database was closed under us
    ConnectionError,  # refused, reset or aborted (the mail server, the broker)
    TimeoutError,
    smtplib.SMTPConnectError,
    smtplib.SMTPServerDisconnected,
)
RETRY: dict[str, Any] = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 2,  # 2, 4, 8, ... seconds (with jitter)
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
    "acks_late": True,
}


def _setup() -> None:
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


@app.task(name="speciosa.tasks.sweep_all", bind=True, **RETRY)
def sweep_all(self, as_of: str | None = None, chunk: int | None = None) -> dict[str, int]:
    """Evaluate every patient's safety rules (time-based rules need a regular sweep), fanned
    out over the queue: the patients are cut into chunks (``chunk`` patients, default
    ``alerts.CHUNK``), each a :func:`sweep_chunk` task that any worker may take; the chunk
    that finishes last records the run's completion and e-mails the care teams about new
    urgent alerts. The run is keyed by this task's id: a redelivered ``sweep_all`` queues
    only the chunks not done yet. Without a broker the chunks run here, one after another.

    Returns the run's id and number of chunks, and (eagerly, when it has finished) its
    counts."""
    _setup()
    import datetime as dt

    from speciosa.clinic import alerts

    when = dt.datetime.fromisoformat(as_of) if as_of else None
    run = alerts.plan_sweep(self.request.id or f"sweep-{uuid.uuid4()}", as_of=when, chunk=chunk)
    pending = alerts.pending_chunks(run)
    for first, last in pending:
        if app.conf.task_always_eager:
            _chunk_eagerly(run.pk, first, last)
        else:
            sweep_chunk.delay(run.pk, first, last)
    if not pending:  # every chunk done before (a redelivered task), or no patients
        _finish(run.pk)
    run.refresh_from_db()
    out = {"run": run.pk, "chunks": run.chunks, "queued": len(pending)}
    if run.finished_at is not None:
        r = alerts.run_result(run)
        out.update(patients=r.patients, findings=r.findings, created=r.created, updated=r.updated,
                   stopped=r.stopped, failed=len(r.failed), failed_chunks=len(r.failed_chunks))
    log.info("sweep planned", extra={"count": run.chunks, "task": "sweep_all"})
    return out


@app.task(name="speciosa.tasks.sweep_chunk", bind=True, **RETRY)
def sweep_chunk(self, run_id: int, first: int, last: int) -> dict[str, int] | None:
    """One chunk of a sweep run (patients ``first`` to ``last`` by id), evaluated once
    whatever the deliveries (``alerts.run_chunk``); then, if it was the last, the run's
    completion (``alerts.finish_run``).

    A failure that will not be retried (an error not in :data:`TRANSIENT`, or a transient
    one on the last retry) is recorded on the chunk (``alerts.fail_chunk``) before the task
    fails with it, so that the run still finishes, as not complete, naming the chunk and
    the error; without it the run waited for the chunk for ever and nothing said why."""
    _setup()
    import os

    from speciosa.clinic import alerts

    worker = f"{self.request.hostname or 'eager'}:{os.getpid()}"
    try:
        result = alerts.run_chunk(run_id, first, last, worker=worker)
    except Exception as exc:
        if isinstance(exc, TRANSIENT) and self.request.retries < self.max_retries:
            raise  # retried (autoretry_for): not a failure yet
        log.exception("sweep chunk failed", extra={"task": "sweep_chunk", "count": last - first + 1})
        try:
            alerts.fail_chunk(run_id, first, last, exc, worker=worker)
            _finish(run_id)
        except Exception:  # the database itself away: the chunk stays pending, the log says why
            log.exception("sweep chunk failure could not be recorded", extra={"task": "sweep_chunk"})
        raise
    _finish(run_id)
    if result is None:
        return None
    return {"patients": result.patients, "findings": result.findings, "created": result.created,
            "failed": len(result.failed)}


def _chunk_eagerly(run_id: int, first: int, last: int) -> None:
    """A chunk run here (no broker), retried as a worker would retry it: Celery's eager mode
    raises a retry out of the caller instead of doing it (``task_eager_propagates``), which
    left the chunk pending and the run unfinished. No back-off wait. A chunk that fails
    for good has recorded its failure (:func:`sweep_chunk`); the other chunks still run."""
    from celery.exceptions import Retry

    for retries in range(sweep_chunk.max_retries + 1):
        try:
            sweep_chunk.apply(args=(run_id, first, last), retries=retries, throw=True)
            return
        except Retry:
            continue
        except Exception:
            return  # recorded on the chunk and logged by sweep_chunk


def _finish(run_id: int) -> None:
    from speciosa.clinic import alerts

    if alerts.finish_run(run_id):
        log.info("sweep done", extra={"task": "sweep_chunk"})
        notify_new_urgent_alerts.delay()


@app.task(name="speciosa.tasks.evaluate_patient", **RETRY)
def evaluate_patient(patient_id: int) -> int:
    """Re-evaluate one patient after a change; e-mail about any new urgent alert.

    Returns the number of urgent alerts e-mailed about."""
    _setup()
    from speciosa.clinic import alerts
    from speciosa.clinic.models import Patient
    from speciosa.ops import notify

    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None:  # removed since: nothing to do
        return 0
    alerts.after_change(patient)
    sent = 0
    for alert_id in notify.unnotified_urgent(patient_id).values_list("pk", flat=True):
        notify_urgent_alert.delay(alert_id)
        sent += 1
    return sent


@app.task(name="speciosa.tasks.notify_urgent_alert", **RETRY)
def notify_urgent_alert(alert_id: int) -> int:
    """E-mail the care team about one urgent alert (once; no patient data in the message)."""
    _setup()
    from speciosa.ops import notify

    return notify.notify(alert_id)


@app.task(name="speciosa.tasks.notify_new_urgent_alerts", **RETRY)
def notify_new_urgent_alerts() -> int:
    """Periodic: e-mail about every open urgent alert not e-mailed yet (e.g. from a sweep)."""
    _setup()
    from speciosa.ops import notify

    ids = list(notify.unnotified_urgent().values_list("pk", flat=True)[:1000])
    for alert_id in ids:
        notify_urgent_alert.delay(alert_id)
    return len(ids)


@app.task(name="speciosa.tasks.export_fhir", **RETRY)
def export_fhir(out: str, patient_ids: list[int] | None = None) -> dict[str, int]:
    """Write FHIR Bulk Data NDJSON into ``out`` (rewritten whole: a retry is harmless)."""
    _setup()
    from speciosa.clinic.models import Patient
    from speciosa.interop.export import Exporter, write_ndjson

    patients = Patient.objects.filter(pk__in=patient_ids) if patient_ids is not None else None
    return dict(write_ndjson(out, Exporter(patients)))


@app.task(name="speciosa.tasks.bulk_export", **RETRY)
def bulk_export(export_id: str) -> dict[str, int]:
    """Write the NDJSON files of one Bulk Data ``$export`` (:func:`speciosa.interop.bulk.run`:
    its folder is rewritten whole, so a retry is harmless; a cancelled export stops)."""
    _setup()
    from speciosa.interop import bulk

    return bulk.run(export_id)


@app.task(name="speciosa.tasks.purge_bulk_exports", **RETRY)
def purge_bulk_exports() -> int:
    """Periodic: delete expired Bulk Data exports (files and record)."""
    _setup()
    from speciosa.interop import bulk

    return bulk.purge_expired()


@app.task(name="speciosa.tasks.export_research", **RETRY)
def export_research(out: str, researcher: str, purpose: str = "research") -> int:
    """Write the de-identified research dataset for the researcher with the username
    ``researcher`` into ``out`` (as ``speciosa export research``; audited with them).

    A redelivered task finds the finished export (its ``manifest.json``) and does nothing."""
    _setup()
    from pathlib import Path

    from speciosa.cli import main

    if (Path(out) / "manifest.json").exists():
        return 0
    return main(["export", "research", "--out", out, "--purpose", purpose,
                 "--researcher", researcher])


@app.task(name="speciosa.tasks.research_export", **RETRY)
def research_export(export_id: int) -> int | None:
    """Build the zip of one research export asked for on the research page
    (:func:`speciosa.research.exports.run`: a retry of a finished export does nothing)."""
    _setup()
    from speciosa.research import exports

    return exports.run(export_id)


@app.task(name="speciosa.tasks.purge_research_exports", **RETRY)
def purge_research_exports() -> int:
    """Periodic: delete expired research exports (zip and record)."""
    _setup()
    from speciosa.research import exports

    return exports.purge_expired()


@app.task(name="speciosa.tasks.research_analysis", **RETRY)
def research_analysis() -> bool:
    """Compute the research page's cohort analysis for the current data and cache it
    (:mod:`speciosa.research.cached`; queued after clinical writes)."""
    _setup()
    from speciosa.research import cached

    return cached.refresh()


def after_change(patient) -> None:
    """The after-change hook of the write kernel (:func:`speciosa.clinic.writes.after_change`),
    installed by ``speciosa.clinic.apps.ClinicConfig.ready``; it runs after every write.

    Eager (no broker): re-evaluate now, in the caller, so that the page that follows shows
    the alert; a failed e-mail is logged, never turned into a failed save. With a broker:
    enqueue :func:`evaluate_patient` once the write has committed.
    """
    from django.conf import settings
    from django.db import transaction

    from speciosa.research import cached

    cached.after_write()  # the research analysis is recomputed for the changed data
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        transaction.on_commit(lambda pk=patient.pk: evaluate_patient.delay(pk))
        return
    from speciosa.clinic import alerts
    from speciosa.ops import notify

    alerts.after_change(patient)
    try:
        for alert_id in notify.unnotified_urgent(patient.pk).values_list("pk", flat=True):
            notify.notify(alert_id)
    except Exception:
        log.exception("urgent-alert e-mail failed", extra={"patient_id": patient.pk})


@app.task(name="speciosa.tasks.notify_message", **RETRY)
def notify_message(message_id: int) -> int:
    """E-mail that a message is waiting (once; no content in the e-mail)."""
    _setup()
    from speciosa.messaging import services

    return services.notify(message_id)


@app.task(name="speciosa.tasks.send_reminders", **RETRY)
def send_reminders(at: str | None = None) -> int:
    """Periodic (beat, ``SPECIOSA_REMINDERS_EVERY_S``): queue :func:`remind_patient` for every
    patient with reminder preferences. Returns how many were queued."""
    _setup()
    from speciosa.reminders import services

    ids = list(services.patients_with_reminders().values_list("pk", flat=True))
    for patient_id in ids:
        remind_patient.delay(patient_id, at)
    return len(ids)


@app.task(name="speciosa.tasks.remind_patient", **RETRY)
def remind_patient(patient_id: int, at: str | None = None) -> dict[str, int]:
    """Send one patient's due reminders (at most once per item and channel: a retried or
    duplicated task sends nothing twice, :func:`speciosa.reminders.services.remind`)."""
    _setup()
    import datetime as dt

    from speciosa.clinic.models import Patient
    from speciosa.reminders import services

    patient = Patient.objects.select_related("site", "user").filter(pk=patient_id).first()
    if patient is None:
        return {}
    when = dt.datetime.fromisoformat(at) if at else None
    return dict(services.remind(patient, when))
