"""Safety findings become alerts for the patient's care team.

The rules themselves are pure functions in :mod:`speciosa.safety`; this module feeds them.
Timelines are built from a handful of bulk queries per chunk of patients (never a loop of
per-patient ORM queries), evaluated, and reconciled with the active alerts:

- a finding with no active alert for its rule creates one (``INSERT`` that ignores a
  conflict with the partial unique index ``one_active_alert_per_rule``, so two sweeps running
  at once cannot duplicate an alert);
- a finding with an active alert updates its message, evidence and ``last_seen_at``;
- an active alert whose rule no longer fires is closed as ``cleared``.

:func:`evaluate_patients` runs after every change to a patient's data (``services`` hook)
and for all patients in :func:`sweep` (``speciosa sweep``), which time-based rules (overdue
tests, missed diaries) need.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from speciosa import safety
from speciosa.pharmacology.doses import Dose as PDose

from . import access
from .models import (
    Alert,
    Assessment,
    AuditEntry,
    DiaryDay,
    Dose,
    LabResult,
    Medication,
    Patient,
    SubstanceUse,
)

CHUNK = 1000


def site_safety_settings() -> dict:
    """A site's overrides of the rules' named thresholds, from ``SPECIOSA_SAFETY_SETTINGS``
    (JSON object, e.g. ``{"prolactin_rise_fraction": 0.75}``)."""
    raw = os.environ.get("SPECIOSA_SAFETY_SETTINGS", "").strip()
    return json.loads(raw) if raw else {}


def _f(x):
    return float(x) if x is not None else None


def load_timelines(patient_ids: Sequence[int]) -> dict[int, safety.Timeline]:
    """Build the safety timeline of each patient in ``patient_ids`` with bulk queries."""
    ids = list(patient_ids)
    if not ids:
        return {}
    doses = defaultdict(list)
    for pid, taken_at, amount, unit, pct, gpc, product in (
            Dose.objects.current().filter(patient_id__in=ids)
            .values_list("patient_id", "taken_at", "amount", "unit", "mitragynine_percent",
                         "grams_per_capsule", "product").iterator(chunk_size=5000)):
        doses[pid].append(PDose(taken_at=taken_at, amount=float(amount), unit=unit,
                                mitragynine_percent=_f(pct), grams_per_capsule=_f(gpc), product=product or None))
    assessments = defaultdict(list)
    side_effects = defaultdict(list)
    for pid, instrument, at, items, total in (
            Assessment.objects.current().filter(patient_id__in=ids)
            .values_list("patient_id", "instrument", "at", "items", "total").iterator(chunk_size=5000)):
        if instrument == "side-effects":
            for code, value in (items or {}).items():
                if value:
                    side_effects[pid].append(safety.SideEffect(at=at, code=code))
        else:
            assessments[pid].append(safety.Assessment(instrument=instrument, at=at, items=items or None,
                                                      total=total))
    labs = defaultdict(list)
    for pid, lab, at, value, unit, low, high, result in (
            LabResult.objects.current().filter(patient_id__in=ids)
            .values_list("patient_id", "lab", "collected_at", "value", "unit", "reference_low",
                         "reference_high", "result").iterator(chunk_size=5000)):
        labs[pid].append(safety.LabResult(lab=lab, at=at, value=_f(value), unit=unit or None,
                                          reference_low=low, reference_high=high, result=result or None))
    meds = defaultdict(list)
    for pid, name, start, end in (Medication.objects.current().filter(patient_id__in=ids)
                                  .values_list("patient_id", "name", "start", "end")):
        meds[pid].append(safety.Medication(name=name, start=start, end=end))
    substances = defaultdict(list)
    for pid, name, at in (SubstanceUse.objects.current().filter(patient_id__in=ids)
                          .values_list("patient_id", "name", "at")):
        substances[pid].append(safety.Substance(name=name, at=at))
    diary = defaultdict(list)
    for pid, day in DiaryDay.objects.filter(patient_id__in=ids).values_list("patient_id", "day").iterator(
            chunk_size=5000):
        diary[pid].append(day)
    timelines = {}
    for pid, sex, birth, pregnant, breastfeeding, tzname in Patient.objects.filter(pk__in=ids).values_list(
            "pk", "sex", "birth_date", "pregnant", "breastfeeding", "site__time_zone"):
        try:
            tz = zoneinfo.ZoneInfo(tzname or "UTC")
        except zoneinfo.ZoneInfoNotFoundError:
            tz = dt.UTC
        timelines[pid] = safety.Timeline(
            patient=safety.Patient(sex=sex, birth_date=birth, pregnant=pregnant, breastfeeding=breastfeeding),
            doses=tuple(doses[pid]), assessments=tuple(assessments[pid]), labs=tuple(labs[pid]),
            side_effects=tuple(side_effects[pid]), medications=tuple(meds[pid]),
            substances=tuple(substances[pid]), diary_days=tuple(diary[pid]), tz=tz)
    return timelines


@dataclass
class SweepResult:
    patients: int = 0
    findings: int = 0
    created: int = 0
    updated: int = 0
    cleared: int = 0


def _reconcile(findings_by_patient: dict[int, list], now: dt.datetime, result: SweepResult) -> None:
    ids = list(findings_by_patient)
    active = {(a.patient_id, a.rule): a for a in
              Alert.objects.filter(patient_id__in=ids, status__in=Alert.ACTIVE)}
    # A clinician's resolution stands while the finding's evidence is unchanged.
    resolved = {}
    for a in (Alert.objects.filter(patient_id__in=ids, status=Alert.Status.RESOLVED)
              .order_by("resolved_at").only("patient_id", "rule", "evidence")):
        resolved[(a.patient_id, a.rule)] = a.evidence
    to_create, to_update = [], []
    fired = set()
    for pid, findings in findings_by_patient.items():
        for f in findings:
            key = (pid, f.rule)
            fired.add(key)
            evidence = json.loads(json.dumps(f.evidence, default=str))
            existing = active.get(key)
            if existing is None:
                if resolved.get(key) == evidence:
                    continue
                to_create.append(Alert(patient_id=pid, rule=f.rule, topic=f.topic, severity=f.severity,
                                       message=f.message, next_step=f.next_step, evidence=evidence,
                                       citations=list(f.citations), first_seen_at=now, last_seen_at=now))
            else:
                changed = (existing.severity != f.severity or existing.message != f.message
                           or existing.evidence != evidence)
                existing.severity, existing.message, existing.next_step = f.severity, f.message, f.next_step
                existing.evidence, existing.citations, existing.last_seen_at = evidence, list(f.citations), now
                if changed and existing.status == Alert.Status.ACKNOWLEDGED and f.severity == "urgent":
                    existing.status = Alert.Status.OPEN  # a new urgent finding needs a new look
                to_update.append(existing)
    if to_create:
        Alert.objects.bulk_create(to_create, ignore_conflicts=True, batch_size=500)
        result.created += len(to_create)
    if to_update:
        Alert.objects.bulk_update(to_update, ["severity", "message", "next_step", "evidence", "citations",
                                              "last_seen_at", "status"], batch_size=500)
        result.updated += len(to_update)
    stale = [a.pk for key, a in active.items() if key not in fired]
    if stale:
        result.cleared += Alert.objects.filter(pk__in=stale, status__in=Alert.ACTIVE).update(
            status=Alert.Status.CLEARED, resolved_at=now,
            resolution_note="No longer present when the rules were re-evaluated.")


def evaluate_patients(patient_ids: Iterable[int], *, as_of: dt.datetime | None = None,
                      settings: dict | None = None) -> SweepResult:
    """Evaluate the rules for these patients and reconcile their alerts."""
    as_of = as_of or timezone.now()
    settings = site_safety_settings() if settings is None else settings
    result = SweepResult()
    ids = list(patient_ids)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        timelines = load_timelines(chunk)
        findings = {pid: safety.evaluate(tl, as_of, settings) for pid, tl in timelines.items()}
        result.patients += len(timelines)
        result.findings += sum(len(v) for v in findings.values())
        with transaction.atomic():
            _reconcile(findings, timezone.now(), result)
    return result


def _all_patient_ids() -> Iterator[int]:
    return Patient.objects.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=CHUNK)


def sweep(*, as_of: dt.datetime | None = None) -> SweepResult:
    """Evaluate every patient (time-based rules). Safe to run often and concurrently."""
    return evaluate_patients(list(_all_patient_ids()), as_of=as_of)


def after_change(patient: Patient) -> None:
    evaluate_patients([patient.pk])


# --------------------------------------------------------------------------- clinician steps

def visible_alerts(user):
    return Alert.objects.filter(patient__in=access.visible_patients(user))


def acknowledge(user, alert: Alert) -> Alert:
    if not access.can_write_clinical(user, alert.patient):
        raise PermissionError("Only the patient's care team acknowledges their alerts.")
    with transaction.atomic():
        locked = Alert.objects.select_for_update().get(pk=alert.pk)
        if locked.status != Alert.Status.OPEN:
            return locked
        locked.status, locked.acknowledged_by, locked.acknowledged_at = (
            Alert.Status.ACKNOWLEDGED, user, timezone.now())
        locked.save(update_fields=["status", "acknowledged_by", "acknowledged_at"])
        AuditEntry.objects.create(user=user, action="correct", model="Alert", object_id=locked.pk,
                                  patient=locked.patient, before={"status": "open"},
                                  after={"status": "acknowledged"}, reason="acknowledged")
    return locked


def resolve(user, alert: Alert, note: str) -> Alert:
    from django.core.exceptions import ValidationError

    if not access.can_write_clinical(user, alert.patient):
        raise PermissionError("Only the patient's care team resolves their alerts.")
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": "Say how this alert was dealt with."})
    with transaction.atomic():
        locked = Alert.objects.select_for_update().get(pk=alert.pk)
        if locked.status not in Alert.ACTIVE:
            return locked
        before = locked.status
        locked.status, locked.resolved_by, locked.resolved_at = Alert.Status.RESOLVED, user, timezone.now()
        locked.resolution_note = note[:500]
        locked.save(update_fields=["status", "resolved_by", "resolved_at", "resolution_note"])
        AuditEntry.objects.create(user=user, action="correct", model="Alert", object_id=locked.pk,
                                  patient=locked.patient, before={"status": before},
                                  after={"status": "resolved"}, reason=note[:500])
    return locked
