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
from speciosa.clinic.models import Alert, LabResult


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
