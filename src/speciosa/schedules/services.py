"""Plans, drafts and due items: the writes and reads of :mod:`speciosa.schedules`.

Writes check access with :mod:`speciosa.clinic.access`, run once per submission token
(:func:`speciosa.clinic.writes.once`) in one transaction with their audit entries, and name
the field at fault when they refuse (nothing is stored then). A submitted questionnaire is
stored by :func:`speciosa.clinic.services.record_assessment` (the one scorer, ``source``
patient), so it feeds the safety rules (PHQ-9 item 9 included) exactly as a clinician-entered
one does.

Reads for other packages (the reminder builder):

- :func:`due_items` ``(patient, at)``: the plan's current occurrences at ``at``, each a
  :class:`speciosa.schedules.due.DueItem` (``item``, ``due_on``, ``due_at``, ``status``);
- :func:`due_items_many` and :func:`completion_rates` ``(patients, at)``: the same for many
  patients in a fixed number of queries (three).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext

from speciosa.clinic import access, writes
from speciosa.clinic import services as cservices
from speciosa.clinic.models import Assessment, DiaryDay, Patient, Source
from speciosa.knowledge import instruments as kinstruments

from . import due
from .models import Draft, PatientPlan, PlanTemplate

#: Who completes the instruments a plan may hold (besides the diary).
PATIENT_COMPLETED = ("patient", "patient-diary")
#: A plan line may start at most this many days ahead.
START_AHEAD_DAYS = 365
#: The completion rate's window (local days, today included).
RATE_WINDOW_DAYS = 28
DIARY_LABEL = "Daily diary"


# --------------------------------------------------------------------------- what a plan holds

def plan_instruments() -> dict[str, str]:
    """What a plan line may name, id -> name: the daily diary, then every instrument the
    site has loaded that the patient completes (packaged, added or overlaid definitions)."""
    out = {due.DIARY: DIARY_LABEL}
    for inst in kinstruments.all_instruments():
        if inst.completed_by in PATIENT_COMPLETED:
            out[inst.id] = f"{inst.label} ({inst.name})" if inst.label != inst.name else inst.name
    return out


def label(instrument_id: str) -> str:
    """A short name for a plan line: ``Daily diary``, ``PHQ-9``..."""
    if instrument_id == due.DIARY:
        return DIARY_LABEL
    try:
        return kinstruments.get_instrument(instrument_id).label
    except kinstruments.InstrumentError:
        return instrument_id


def time_zone(patient: Patient) -> dt.tzinfo:
    """The patient's time zone: their site's (where the diary counts its days)."""
    try:
        return zoneinfo.ZoneInfo(patient.site.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def today(patient: Patient) -> dt.date:
    """Today on the patient's calendar."""
    return timezone.localdate(timezone=time_zone(patient))


def template_problems(items: Any) -> list[str]:
    """What is wrong with a template's lines (empty when nothing): each names the line."""
    if not isinstance(items, list) or not items:
        return ["Give the lines as a list, for example "
                '[{"instrument": "phq9", "every_days": 14, "for_days": null}].']
    rows = []
    problems = []
    for i, row in enumerate(items):
        if not isinstance(row, dict):
            problems.append(f"line {i + 1}: expected an object with instrument and every_days")
            rows.append({})
            continue
        unknown = sorted(set(row) - {"instrument", "every_days", "for_days"})
        if unknown:
            problems.append(f"line {i + 1}: unknown field {unknown[0]!r} (allowed: instrument, "
                            "every_days, for_days)")
        days = row.get("for_days")
        if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
            problems.append(f"line {i + 1}: for_days must be a whole number of days of at least "
                            "1, or null")
        rows.append({**row, "start": dt.date(2000, 1, 1)})
    _items, errors = due.plan_errors(rows, plan_instruments())
    for key, message in errors.items():
        parts = key.split("-", 2)
        where = f"line {int(parts[1]) + 1}" if len(parts) == 3 else "the template"
        problems.append(f"{where}: {message}")
    return problems


def templates_for(site) -> list[PlanTemplate]:
    """The active templates offered at ``site``: the site's own, then the shipped defaults."""
    return sorted(PlanTemplate.objects.filter(active=True).filter(Q(site=site) | Q(site__isnull=True)),
                  key=lambda t: (t.site_id is None, t.name, t.pk))


def template_for(site, template_id) -> PlanTemplate:
    try:
        return next(t for t in templates_for(site) if t.pk == int(template_id))
    except (StopIteration, TypeError, ValueError):
        raise ValidationError({"template": gettext(
            "Choose one of the plan templates offered.")}) from None


def lines_from_template(template: PlanTemplate, start: dt.date) -> list[dict[str, Any]]:
    """The template's lines, starting on ``start`` (``for_days`` becomes an end date)."""
    out = []
    for row in template.items:
        days = row.get("for_days")
        end = start + dt.timedelta(days=days - 1) if days else None
        out.append({"instrument": row["instrument"], "every_days": row["every_days"],
                    "start": start.isoformat(), "end": end.isoformat() if end else None})
    return out


# --------------------------------------------------------------------------- plans

def current_plan(patient: Patient) -> PatientPlan | None:
    return PatientPlan.objects.current().filter(patient=patient).first()


def plan_history(patient: Patient) -> list[PatientPlan]:
    """Every version of the patient's plans, newest first (stopped ones included); each with
    ``lines``: its items with a ``label``."""
    versions = list(PatientPlan.objects.filter(patient=patient).select_related("entered_by", "template")
                    .order_by("-entered_at", "-pk"))
    for v in versions:
        v.lines = [{**r, "label": label(r.get("instrument", ""))} for r in v.items]
    return versions


def schedule(plan: PatientPlan | None) -> list[due.ScheduleItem]:
    """A stored plan's lines as engine items."""
    if plan is None:
        return []
    return [due.ScheduleItem(r["instrument"], int(r["every_days"]), dt.date.fromisoformat(r["start"]),
                             dt.date.fromisoformat(r["end"]) if r.get("end") else None)
            for r in plan.items]


def _clean_lines(patient: Patient, lines: Any) -> list[dict[str, Any]]:
    if not isinstance(lines, list | tuple):
        raise ValidationError({"items": gettext("Give the plan's lines as a list.")})
    if len(lines) > 30:
        raise ValidationError({"items": gettext("A plan holds at most 30 lines.")})
    rows = [r if isinstance(r, Mapping) else {} for r in lines]
    items, errors = due.plan_errors(rows, plan_instruments(), earliest=writes.earliest_date(patient),
                                    latest=today(patient) + dt.timedelta(days=START_AHEAD_DAYS))
    if errors:
        raise writes.Invalid({tuple(int(p) if p.isdigit() else p for p in k.split("-")): v
                              for k, v in errors.items()})
    return [{"instrument": i.instrument, "every_days": i.every_days, "start": i.start.isoformat(),
             "end": i.end.isoformat() if i.end else None} for i in items]


def save_plan(user, patient: Patient, lines: Any, *, name: str = "", template: PlanTemplate | None = None,
              reason: str = "", token: writes.SubmissionKey | str | None = None) -> PatientPlan:
    """Give ``patient`` a plan of ``lines`` (``instrument``, ``every_days``, ``start``,
    ``end``), or store the next version of their current one; the earlier version stays in
    the history. A clinician of the patient's care team only; a retry stores one version;
    the same lines and name again store nothing new."""
    writes.require(access.can_write_clinical(user, patient),
                   gettext("Only a clinician of the patient's care team sets their plan."))
    earlier = writes.replayed(user, token, model=PatientPlan, kind="plan", patient=patient)
    if earlier is not None:
        return earlier
    clean = _clean_lines(patient, lines)
    name = (name or "").strip()[:120] or (template.name if template else "Plan")
    reason = (reason or "").strip()[:500]

    def create() -> PatientPlan:
        Patient.objects.select_for_update().filter(pk=patient.pk).first()  # one change at a time
        current = PatientPlan.objects.current().filter(patient=patient).first()
        if current is None:
            plan = PatientPlan.objects.create(patient=patient, entered_by=user, source=Source.CLINICIAN,
                                              template=template, name=name, items=clean,
                                              change_reason=reason)
            writes.audit(user, writes.Action.CREATE, plan, patient=patient, after=writes.snapshot(plan),
                         reason=reason)
            return plan
        if current.items == clean and current.name == name:
            return current
        return writes.new_version(current, user, {"items": clean, "name": name,
                                                  "template": template or current.template},
                                  action=writes.Action.CORRECT, reason=reason or "plan changed",
                                  patient=patient)

    plan, _created = writes.once(user, token, "plan", create, model=PatientPlan, patient=patient)
    return plan


def stop_plan(user, patient: Patient, reason: str, *, token: writes.SubmissionKey | str | None = None
              ) -> PatientPlan:
    """Stop the patient's current plan (it is retracted with ``reason``; the history stays)."""
    writes.require(access.can_write_clinical(user, patient),
                   gettext("Only a clinician of the patient's care team stops their plan."))
    earlier = writes.replayed(user, token, model=PatientPlan, kind="plan-stop", patient=patient)
    if earlier is not None:
        return earlier
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": gettext("Say why the plan stops.")})

    def create() -> PatientPlan:
        plan = PatientPlan.objects.select_for_update().current().filter(patient=patient).first()
        if plan is None:
            raise ValidationError({"__all__": gettext("This patient has no plan to stop.")})
        before = writes.snapshot(plan)
        plan.retracted = True
        plan.change_reason = reason[:500]
        plan.save(update_fields=["retracted", "change_reason"])
        writes.audit(user, writes.Action.RETRACT, plan, patient=patient, before=before,
                     after=writes.snapshot(plan), reason=reason)
        return plan

    plan, _created = writes.once(user, token, "plan-stop", create, model=PatientPlan, patient=patient)
    return plan


# --------------------------------------------------------------------------- due items

def _completions(patient_ids: Iterable[int], since: Mapping[str, dt.date]
                 ) -> dict[int, list[due.Completion]]:
    """What each patient completed of each instrument from its day in ``since`` (a day
    early for a moment: zones differ), by patient: one query for the assessments, one for the
    diary days."""
    ids = list(patient_ids)
    out: dict[int, list[due.Completion]] = {pid: [] for pid in ids}
    if not ids or not since:
        return out
    wanted = Q()
    for instrument, day in since.items():
        if instrument != due.DIARY:
            start = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
            wanted |= Q(instrument=instrument, at__gte=start)
    if wanted:
        rows = (Assessment.objects.current().filter(patient_id__in=ids).filter(wanted)
                .values_list("patient_id", "instrument", "at"))
        for pid, instrument, at in rows:
            out[pid].append(due.Completion(instrument, at))
    if due.DIARY in since:
        days = DiaryDay.objects.filter(patient_id__in=ids, day__gte=since[due.DIARY])
        for pid, day in days.values_list("patient_id", "day"):
            out[pid].append(due.Completion(due.DIARY, day))
    return out


def _lookback(items: Iterable[due.ScheduleItem], today: dt.date, window_days: int,
              into: dict[str, dt.date] | None = None) -> dict[str, dt.date]:
    """The first day each instrument's completions matter from: the rate's window, or the
    start of the current period, whichever is earlier (merged into ``into``)."""
    out = into if into is not None else {}
    for item in items:
        day = today - dt.timedelta(days=max(item.every_days, window_days))
        out[item.instrument] = min(out.get(item.instrument, day), day)
    return out


def due_items(patient: Patient, at: dt.datetime | None = None, *,
              include: Iterable[str] = ("due", "overdue", "done")) -> list[due.DueItem]:
    """What ``patient`` has to complete at ``at`` (default now), in their time zone: each plan
    line's current occurrence (``due``, ``overdue`` or ``done``; overdue first). No plan:
    nothing. The reminder builder's entry point: a reminder is sent once per
    :attr:`~speciosa.schedules.due.DueItem.key` of an open item."""
    at = at or timezone.now()
    items = schedule(current_plan(patient))
    if not items:
        return []
    tz = time_zone(patient)
    today = at.astimezone(tz).date()
    done = _completions([patient.pk], _lookback(items, today, 1))[patient.pk]
    return due.due_items(items, done, at, tz, include=include)


def plan_state(patient: Patient, at: dt.datetime | None = None, *,
               window_days: int = RATE_WINDOW_DAYS
               ) -> tuple[PatientPlan | None, list[due.DueItem], due.Rate | None]:
    """The current plan, its current occurrences (as :func:`due_items`) and the completion
    rate, from one read of the plan and one of the completions."""
    at = at or timezone.now()
    plan = current_plan(patient)
    items = schedule(plan)
    if not items:
        return plan, [], None
    tz = time_zone(patient)
    today = at.astimezone(tz).date()
    done = _completions([patient.pk], _lookback(items, today, window_days))[patient.pk]
    return (plan, due.due_items(items, done, at, tz),
            due.completion_rate(items, done, at, tz, window_days=window_days))


def completion_rate(patient: Patient, at: dt.datetime | None = None, *,
                    window_days: int = RATE_WINDOW_DAYS) -> due.Rate | None:
    """The patient's completion rate over the last ``window_days`` days; None without a plan."""
    return completion_rates(Patient.objects.filter(pk=patient.pk), at, window_days=window_days).get(patient.pk)


def _many(patients, at: dt.datetime, window_days: int
          ) -> dict[int, tuple[list[due.ScheduleItem], dt.tzinfo, list[due.Completion]]]:
    """Each patient's plan lines, zone and completions (a patient without a plan is left
    out), in three queries however many patients: the plans, the assessments, the diary days."""
    if not isinstance(patients, list | tuple | set):
        patients = patients.values("pk")
    plans = list(PatientPlan.objects.current().filter(patient_id__in=patients)
                 .values_list("patient_id", "items", "patient__site__time_zone"))
    if not plans:
        return {}
    scheduled: dict[int, tuple[list[due.ScheduleItem], dt.tzinfo]] = {}
    since: dict[str, dt.date] = {}
    for pid, items, zone in plans:
        try:
            tz: dt.tzinfo = zoneinfo.ZoneInfo(zone or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            tz = dt.UTC
        lines = [due.ScheduleItem(r["instrument"], int(r["every_days"]), dt.date.fromisoformat(r["start"]),
                                  dt.date.fromisoformat(r["end"]) if r.get("end") else None) for r in items]
        scheduled[pid] = (lines, tz)
        _lookback(lines, at.astimezone(tz).date(), window_days, into=since)
    done = _completions(scheduled, since)
    return {pid: (lines, tz, done[pid]) for pid, (lines, tz) in scheduled.items()}


def completion_rates(patients, at: dt.datetime | None = None, *,
                     window_days: int = RATE_WINDOW_DAYS) -> dict[int, due.Rate]:
    """Completion rates of many patients (a queryset or ids), by patient id (a patient
    without a plan is left out), in three queries however many patients."""
    at = at or timezone.now()
    return {pid: due.completion_rate(lines, done, at, tz, window_days=window_days)
            for pid, (lines, tz, done) in _many(patients, at, window_days).items()}


def due_items_many(patients, at: dt.datetime | None = None, *,
                   include: Iterable[str] = ("due", "overdue", "done")) -> dict[int, list[due.DueItem]]:
    """:func:`due_items` of many patients (a queryset or ids), by patient id, in three
    queries however many patients: for a sweep over every patient (the reminders). A patient
    without a plan is left out."""
    at = at or timezone.now()
    include = tuple(include)
    return {pid: due.due_items(lines, done, at, tz, include=include)
            for pid, (lines, tz, done) in _many(patients, at, 1).items()}


# --------------------------------------------------------------------------- questionnaires

def questionnaire(patient: Patient, instrument_id: str) -> kinstruments.Instrument:
    """The instrument ``instrument_id`` if the patient's current plan asks them to complete
    it (the diary is not a questionnaire); otherwise 404."""
    items = schedule(current_plan(patient))
    if instrument_id == due.DIARY or instrument_id not in {i.instrument for i in items}:
        raise Http404("This questionnaire is not part of your plan.")
    try:
        inst = kinstruments.get_instrument(instrument_id)
    except kinstruments.InstrumentError:
        raise Http404("No such questionnaire.") from None
    if inst.completed_by not in PATIENT_COMPLETED:
        raise Http404("This questionnaire is completed by your clinician.")
    return inst


def open_draft(patient: Patient, instrument_id: str) -> Draft | None:
    return Draft.objects.filter(patient=patient, instrument=instrument_id, assessment__isnull=True).first()


def _require_patient(user, patient: Patient) -> None:
    writes.require(access.can_write_diary(user, patient),
                   gettext("Only the patient answers their own questionnaires."))


def _answer(inst: kinstruments.Instrument, item_id: Any, value: Any) -> tuple[str, int | None]:
    """One answer checked against the definition (None clears it); errors name the item."""
    if not isinstance(item_id, str):
        raise ValidationError({"item": gettext("Unknown question %(item)s.") % {
            "item": repr(item_id)}})
    try:
        item = inst.item(item_id)
    except kinstruments.InstrumentError as exc:
        raise ValidationError({"item": str(exc)}) from None
    if value in (None, ""):
        return item.id, None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value not in item.allowed:
        allowed = ", ".join(str(v) for v in item.allowed)
        raise ValidationError({item.id: gettext(
            "Choose one of the answers offered (%(allowed)s); %(value)s is not one of them.") % {
                "allowed": allowed, "value": repr(value)}})
    return item.id, value


def save_answers(user, patient: Patient, instrument_id: str, answers: Mapping[str, Any]) -> Draft:
    """Keep ``answers`` (item id -> value; None clears one) in the patient's draft of the
    questionnaire, creating it on the first answer. Each answer is checked against the
    definition first: one that is not allowed stores nothing."""
    _require_patient(user, patient)
    inst = questionnaire(patient, instrument_id)
    if not isinstance(answers, Mapping) or not answers:
        raise ValidationError({"answers": gettext(
            "Give at least one answer (question id -> value).")})
    clean: dict[str, int | None] = {}
    errors: dict[str, str] = {}
    for key, value in answers.items():
        try:
            item_id, v = _answer(inst, key, value)
            clean[item_id] = v
        except ValidationError as exc:
            errors.update({k: m[0] for k, m in exc.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    try:
        return _store_answers(user, patient, inst, clean)
    except IntegrityError:  # two first answers raced to create the draft: add to the winner's
        return _store_answers(user, patient, inst, clean)


def _store_answers(user, patient: Patient, inst: kinstruments.Instrument,
                   clean: Mapping[str, int | None]) -> Draft:
    now = timezone.now()
    with transaction.atomic():
        draft = (Draft.objects.select_for_update()
                 .filter(patient=patient, instrument=inst.id, assessment__isnull=True).first())
        created = draft is None
        if created:
            draft = Draft(patient=patient, instrument=inst.id, instrument_version=inst.version,
                          started_by=user, started_at=now)
            before = None
        else:
            before = writes.snapshot(draft)
        merged = dict(draft.answers)
        for k, v in clean.items():
            if v is None:
                merged.pop(k, None)
            else:
                merged[k] = v
        draft.answers = merged
        draft.updated_at = now
        draft.save()
        writes.audit(user, writes.Action.CREATE if created else writes.Action.CORRECT, draft,
                     patient=patient, before=before, after=writes.snapshot(draft),
                     reason="" if created else "draft answer")
    return draft


def submit(user, patient: Patient, instrument_id: str, *,
           token: writes.SubmissionKey | str | None = None) -> Assessment:
    """Score the patient's draft of the questionnaire with the one scorer and store it as
    their assessment (``source`` patient); the draft is closed. A retry of the same
    submission returns the stored assessment; with a question unanswered nothing is stored
    and the message names it. A clinician cannot submit for the patient."""
    _require_patient(user, patient)
    earlier = writes.replayed(user, token, model=Assessment, kind="assessment", patient=patient)
    if earlier is not None:
        return earlier
    inst = questionnaire(patient, instrument_id)
    with transaction.atomic():
        draft = (Draft.objects.select_for_update()
                 .filter(patient=patient, instrument=inst.id, assessment__isnull=True).first())
        if draft is None:
            # a double tap that waited for the first one's lock: answer with its assessment
            earlier = writes.replayed(user, token, model=Assessment, kind="assessment", patient=patient)
            if earlier is not None:
                return earlier
            raise ValidationError({"__all__": gettext(
                "Nothing to send yet: answer the questions first.")})
        before = writes.snapshot(draft)
        assessment = cservices.record_assessment(user, patient, inst.id, draft.answers, token=token,
                                                 source=Source.PATIENT)
        draft.assessment = assessment
        draft.updated_at = timezone.now()
        draft.save(update_fields=["assessment", "updated_at"])
        writes.audit(user, writes.Action.CORRECT, draft, patient=patient, before=before,
                     after=writes.snapshot(draft), reason="submitted")
    return assessment
