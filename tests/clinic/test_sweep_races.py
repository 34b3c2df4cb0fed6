"""A clinician acts on an alert while the sweep reconciles it (adversarial pass on the issue 18
sweep). The sweep read the chunk's active alerts without locking them and wrote every field of
a changed one back, status included, with bulk_update: a clinician's resolution committed in
between was overwritten, leaving an alert 'open' with resolved_by, resolved_at and a 'resolve'
audit entry, back on the worklist after the clinician had closed it. Over the queue a chunk's
reconciliation runs inside the chunk's long transaction, so the window is the whole Python
loop over a thousand patients' findings."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from speciosa.clinic import alerts
from speciosa.clinic.models import Alert, LabResult, Patient, SweepRun


@pytest.mark.django_db(transaction=True)
def test_a_resolution_committed_while_the_sweep_reconciles_the_alert_stands(clinic, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("needs two connections writing at once (PostgreSQL); SQLite takes one writer at a time")
    LabResult.objects.create(patient=clinic.patient_a, entered_by=clinic.clinician_a, source="clinician",
                             lab="prolactin", collected_at=timezone.now() - dt.timedelta(days=1), value=80,
                             unit="ng/mL", canonical_value=80, canonical_unit="ng/mL")
    alerts.sweep()
    alert = Alert.objects.get(patient=clinic.patient_a, topic="prolactin-high", status="open")
    Alert.objects.filter(pk=alert.pk).update(message="an older wording")  # the sweep will update it
    real, clinician = alerts._rule_settings, []

    def resolve_now():
        try:
            alerts.resolve(clinic.clinician_a, Alert.objects.get(pk=alert.pk), "phoned; repeat test booked")
        finally:
            connection.close()

    def racing(rule_id, settings):
        # the sweep has read the active alerts and is building its writes: the clinician
        # resolves the alert now, from another connection (waiting at most 3 s for a lock)
        if not clinician:
            clinician.append(threading.Thread(target=resolve_now))
            clinician[0].start()
            clinician[0].join(timeout=3)
        return real(rule_id, settings)

    monkeypatch.setattr(alerts, "_rule_settings", racing)
    alerts.sweep()
    clinician[0].join(timeout=30)
    assert not clinician[0].is_alive()
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_by) == ("resolved", clinic.clinician_a)
    assert alert.message != "an older wording"  # the sweep's update is kept too
    assert not Alert.objects.filter(patient=clinic.patient_a, topic="prolactin-high",
                                    status__in=Alert.ACTIVE).exists()


@pytest.mark.django_db
def test_a_periodic_chunk_run_late_evaluates_as_of_when_it_runs(clinic, monkeypatch):
    """A chunk of a periodic run evaluated as of the run's planning time: one taken from a
    backlog, or redelivered an hour later after its worker was lost (Redis's visibility
    timeout), overwrote what a change evaluated since had raised on newer data: a 7-OH dose
    logged after the planning left its alert 'no longer firing'."""
    from speciosa.clinic.models import Dose, SweepRun

    monkeypatch.setattr("speciosa.ops.notify.unnotified_urgent", lambda *a: Alert.objects.none())
    run = alerts.plan_sweep("periodic")  # as the beat schedules it: no as_of
    SweepRun.objects.filter(pk=run.pk).update(as_of=run.as_of - dt.timedelta(hours=1))  # an hour's wait
    Dose.objects.create(patient=clinic.patient_a, source="patient", amount=30, unit="mg_7oh",
                        taken_at=timezone.now() - dt.timedelta(minutes=10))
    alerts.evaluate_patients([clinic.patient_a.pk])  # the after-change evaluation
    alert = Alert.objects.get(patient=clinic.patient_a, topic="potent-7oh-product", status="open")
    for first, last in alerts.pending_chunks(run):
        assert alerts.run_chunk(run.pk, first, last) is not None
    alert.refresh_from_db()
    assert alert.stopped_firing_at is None and alert.status == "open"
    assert alerts.finish_run(run.pk)

    # a run given its as_of (a look back at an earlier time) keeps it for every chunk
    past = alerts.plan_sweep("look-back", as_of=timezone.now() - dt.timedelta(hours=1))
    assert past.as_of_fixed and not SweepRun.objects.get(pk=run.pk).as_of_fixed
    for first, last in alerts.pending_chunks(past):
        alerts.run_chunk(past.pk, first, last)
    alert.refresh_from_db()
    assert alert.stopped_firing_at is not None  # as of an hour ago the dose was not taken yet


@pytest.mark.django_db
@pytest.mark.parametrize("queued", [False, True], ids=["sweep", "over-the-queue"])
def test_a_diary_saved_between_a_chunks_load_and_its_reconcile_is_not_undone(clinic, monkeypatch, queued):
    """The narrow race of issue 18: a chunk loads its patients, a patient saves a diary with
    a 7-OH dose (its re-evaluation raises the 7-OH alert at once), then the chunk reconciles
    the findings of the older data: the new alert was marked 'no longer firing' a moment
    after it was raised. The chunk now evaluates again, before reconciling, the patients
    whose records changed since its load."""
    from decimal import Decimal

    from speciosa import safety, tasks
    from speciosa.clinic import services
    from speciosa.clinic.models import AuditEntry

    monkeypatch.setattr("speciosa.ops.notify.unnotified_urgent", lambda *a: Alert.objects.none())
    patient = clinic.patient_a
    alerts.sweep()
    assert not Alert.objects.filter(patient=patient, topic="potent-7oh-product").exists()
    real, saved = safety.evaluate_many, []

    def then_a_diary(timelines, *args, **kwargs):
        found = real(timelines, *args, **kwargs)  # the findings of the data as loaded
        if not saved and patient.pk in timelines:
            saved.append(True)  # once: the diary's own re-evaluation comes through here too
            services.record_diary(patient.user, patient, services.DiaryInput(
                day=timezone.localdate(), doses=[{"taken_at": timezone.now() - dt.timedelta(minutes=1),
                                                  "amount": Decimal(15), "unit": "mg_7oh"}]))
            raised = Alert.objects.get(patient=patient, topic="potent-7oh-product")  # by after_change
            saved.append((raised.status, raised.stopped_firing_at))
        return found

    monkeypatch.setattr(safety, "evaluate_many", then_a_diary)
    if queued:
        tasks.sweep_all.apply(kwargs={"chunk": 10}).get()
        result = alerts.run_result(SweepRun.objects.get())
    else:
        result = alerts.sweep()
    assert saved == [True, ("open", None)]  # raised by the diary's re-evaluation, firing
    assert result.patients == Patient.objects.count() and not result.failed
    alert = Alert.objects.get(patient=patient, topic="potent-7oh-product")
    assert alert.status == "open" and alert.stopped_firing_at is None  # still firing
    assert not AuditEntry.objects.filter(action="alert-stopped", object_id=alert.pk).exists()


@pytest.mark.django_db
def test_a_diary_saved_on_an_app_server_with_a_slow_clock_during_a_chunk_is_not_undone(clinic, monkeypatch):
    """The chunk's recheck found the records written since its load by the audit entries'
    time (``at``, the writing server's clock) against the worker's clock less 60 s: a diary
    saved on an app server whose clock is 5 minutes behind the worker's (or an import whose
    one transaction stamps its entries when it began, minutes before it commits) carries a
    time before the load, so its alert, raised at once by the save's re-evaluation, was
    marked 'no longer firing' by the chunk reconciling the older data. An entry added since
    the load (its id beyond the last one the load knew) counts whatever its time says."""
    from decimal import Decimal

    from speciosa import safety
    from speciosa.clinic import services
    from speciosa.clinic.models import AuditEntry

    monkeypatch.setattr("speciosa.ops.notify.unnotified_urgent", lambda *a: Alert.objects.none())
    patient = clinic.patient_a
    alerts.sweep()
    real, saved = safety.evaluate_many, []
    at_field = AuditEntry._meta.get_field("at")

    def then_a_diary_on_a_slow_server(timelines, *args, **kwargs):
        found = real(timelines, *args, **kwargs)
        if not saved and patient.pk in timelines:
            saved.append(True)
            monkeypatch.setattr(at_field, "default", lambda: timezone.now() - dt.timedelta(minutes=5))
            services.record_diary(patient.user, patient, services.DiaryInput(
                day=timezone.localdate(), doses=[{"taken_at": timezone.now() - dt.timedelta(minutes=1),
                                                  "amount": Decimal(15), "unit": "mg_7oh"}]))
            monkeypatch.setattr(at_field, "default", timezone.now)
            raised = Alert.objects.get(patient=patient, topic="potent-7oh-product")
            saved.append((raised.status, raised.stopped_firing_at))
        return found

    monkeypatch.setattr(safety, "evaluate_many", then_a_diary_on_a_slow_server)
    result = alerts.sweep()
    assert saved == [True, ("open", None)]
    assert result.rechecked >= 1
    alert = Alert.objects.get(patient=patient, topic="potent-7oh-product")
    assert alert.status == "open" and alert.stopped_firing_at is None
    assert not AuditEntry.objects.filter(action="alert-stopped", object_id=alert.pk).exists()
