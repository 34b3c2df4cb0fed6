"""Taper plans (issue 19): the kratom schedule a clinician and the patient agreed, and how the
diary then compares with it.

**Speciosa never proposes a dose.** A plan's steps are what the clinician typed: each step is
a run of days (``start`` to ``end``, both included) with an amount per dose, its unit and the
doses a day. There is no default amount, no suggested step and no generated schedule
anywhere; the pharmacology engine only shows the exposure the entered schedule would give
(:mod:`speciosa.reports.taper`).

A plan is a kratom taper, or the kratom schedule of a move to buprenorphine or methadone
(linked, when the clinician says so, to the treatment episode or the shared decision it goes
with). A patient has at most one active plan. Every write checks access, is validated here,
stored through the write kernel (:func:`speciosa.clinic.writes.new_version` for the next
version of a plan) with its audit entry, and is idempotent by submission token:

- :func:`record_plan` stores a new plan (refused while another is active);
- :func:`correct_plan` replaces a plan entered wrongly by its corrected copy (``replaces``);
- :func:`replace_plan` puts a new plan in place of the active one: the old one's next
  version is ``replaced``, the new one ``follows`` it;
- :func:`stop_plan` ends the active plan (its next version is ``stopped``, with the day and
  the reason).

Refused with a message under the field, nothing stored: an unknown kind or unit, a step that
ends before it starts, steps whose days overlap, an amount that is not a positive number or
is above the diary's plausibility limit for its unit (:func:`speciosa.clinic.services.plausible_limit`),
doses a day that are not a whole number from 1 to :data:`MAX_DOSES_PER_DAY`, a capsule step
without grams per capsule or an extract step without its mitragynine %, dates outside the
record's window, and another patient's episode, decision or plan.

:func:`planned_vs_taken` compares the plan with the diary day by day, in the plan's unit where
the units measure the same thing (:func:`speciosa.pharmacology.doses.amount_in_unit`) and in
estimated mg mitragynine (:func:`speciosa.pharmacology.doses.convert_all`); a day without a
diary says so, and a dose that cannot be converted is named, never guessed.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext, gettext_lazy, gettext_noop, pgettext

from speciosa.pharmacology import doses as pdoses

from . import access, integrity, writes
from .medications import site_time_zone
from .models import (
    DiaryDay,
    Dose,
    DoseUnit,
    Patient,
    Source,
    TaperKind,
    TaperPlan,
    TaperStatus,
    TreatmentEpisode,
)
from .numbers import COMMA_DECIMAL, day_text, finite_decimal, has_comma, local_number

__all__ = [
    "DOSE_TIMES",
    "FIELDS",
    "MAX_DAYS",
    "MAX_DOSES_PER_DAY",
    "MAX_STEPS",
    "STEP_FIELDS",
    "DayComparison",
    "Step",
    "active_plan",
    "correct_plan",
    "current_plans",
    "number",
    "plan_data",
    "plan_for",
    "planned_doses",
    "planned_vs_taken",
    "record_plan",
    "replace_plan",
    "steps_of",
    "stop_plan",
    "unit_words",
    "validate_plan",
]

#: Every field a plan's data may hold.
FIELDS: tuple[str, ...] = ("kind", "reason", "steps", "episode", "decision")
#: Every field a step may hold.
STEP_FIELDS: tuple[str, ...] = ("start", "end", "amount", "unit", "doses_per_day",
                                "mitragynine_percent", "grams_per_capsule")
#: The most steps one plan holds, and the most doses a day a step plans.
MAX_STEPS = 52
MAX_DOSES_PER_DAY = 12
#: The longest plan, in days, and how far ahead of today it may end.
MAX_DAYS = 366

#: The times of day (site time) the exposure preview places a step's doses at, by doses a
#: day: evenly from 08:00 to 22:00. A modelling convention, said beside every preview; the
#: comparison with the diary is by day and does not read it.
DOSE_TIMES: dict[int, tuple[dt.time, ...]] = {
    n: tuple(dt.time(8) if n == 1 else
             (dt.datetime(2000, 1, 1, 8) + dt.timedelta(minutes=round(k * 840 / (n - 1)))).time()
             for k in range(n)) for n in range(1, MAX_DOSES_PER_DAY + 1)}

#: The shared decisions (education ``content/options.toml``) a plan of each kind carries out.
_DECISION_CHOICES = {TaperKind.KRATOM: ("supervised-taper",),
                     TaperKind.BUPRENORPHINE: ("buprenorphine",),
                     TaperKind.METHADONE: ("methadone",)}

_NOT_FOUND = gettext_lazy("No such taper plan in this patient's record.")
_CHANGED = gettext_lazy("This plan was changed since; open the current one.")
#: The units as the pages write them (marked for the catalogues: the services' messages give
#: them in the reader's language; the pages and reports still show these words).
UNIT_WORDS = {"g": gettext_noop("g of leaf"), "capsule": gettext_noop("capsules"),
              "glass": gettext_noop("glasses of tea"), "mg_extract": gettext_noop("mg of extract"),
              "mg_mitragynine": gettext_noop("mg mitragynine"), "mg_7oh": gettext_noop("mg 7-OH")}


@dataclass(frozen=True)
class Step:
    """One step of a plan as stored: ``amount`` per dose in ``unit``, ``doses_per_day`` a day,
    every day from ``start`` to ``end`` (both included)."""

    start: dt.date
    end: dt.date
    amount: Decimal
    unit: str
    doses_per_day: int
    mitragynine_percent: Decimal | None = None
    grams_per_capsule: Decimal | None = None

    @property
    def per_day(self) -> Decimal:
        return self.amount * self.doses_per_day

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def dose(self, at: dt.datetime) -> pdoses.Dose:
        """One planned dose at ``at``, as the pharmacology engine reads a dose."""
        return pdoses.Dose(taken_at=at, amount=float(self.amount), unit=self.unit,
                           mitragynine_percent=_float(self.mitragynine_percent),
                           grams_per_capsule=_float(self.grams_per_capsule))

    def covers(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


def _float(x: Decimal | None) -> float | None:
    return None if x is None else float(x)


def _text(x: Decimal) -> str:
    t = format(x.normalize(), "f")
    return t


def number(x: Decimal | float | None) -> str:
    """A number as people read it: no trailing zeros (``2.5``, ``4``), ``—`` for none."""
    if x is None:
        return "—"
    if isinstance(x, Decimal):
        return _text(x)
    text = f"{x:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def steps_of(plan: TaperPlan) -> list[Step]:
    """The plan's stored steps, in date order."""
    out = []
    for s in plan.steps or []:
        out.append(Step(dt.date.fromisoformat(s["start"]), dt.date.fromisoformat(s["end"]),
                        Decimal(s["amount"]), s["unit"], int(s["doses_per_day"]),
                        Decimal(s["mitragynine_percent"]) if s.get("mitragynine_percent") else None,
                        Decimal(s["grams_per_capsule"]) if s.get("grams_per_capsule") else None))
    return sorted(out, key=lambda s: s.start)


# --------------------------------------------------------------------------- validation

def _day(raw: Any, key: tuple, patient: Patient, errors: dict, what: str) -> dt.date | None:
    if raw in (None, ""):
        errors[key] = (gettext("Give the day the step starts (YYYY-MM-DD).") if what == "starts"
                       else gettext("Give the day the step ends (YYYY-MM-DD)."))
        return None
    if isinstance(raw, dt.datetime):
        raw = raw.date()
    if isinstance(raw, dt.date):
        day = raw
    else:
        try:
            day = parse_date(str(raw).strip())
        except ValueError:
            day = None
        if day is None:
            errors[key] = gettext("'%(text)s' is not a date: give it as YYYY-MM-DD.") % {
                "text": raw}
            return None
    earliest = writes.earliest_date(patient)
    latest = timezone.localdate() + dt.timedelta(days=MAX_DAYS)
    if day < earliest:
        errors[key] = gettext(
            "%(day)s is before the dates this record accepts (from %(earliest)s); check the "
            "year.") % {"day": day.isoformat(), "earliest": earliest.isoformat()}
        return None
    if day > latest:
        errors[key] = gettext(
            "%(day)s is more than %(days)s days ahead; a plan runs up to %(latest)s. Check the "
            "year.") % {"day": day.isoformat(), "days": MAX_DAYS, "latest": latest.isoformat()}
        return None
    return day


def _decimal(raw: Any, key: tuple, errors: dict, what: str, example: str) -> Decimal | None:
    if raw in (None, ""):
        return None
    not_a_number = gettext("Enter %(what)s as a number, for example %(example)s.") % {
        "what": what, "example": local_number(example)}
    if isinstance(raw, bool):
        errors[key] = not_a_number
        return None
    if has_comma(raw):
        errors[key] = gettext(COMMA_DECIMAL)
        return None
    value = finite_decimal(raw)
    if value is None:
        errors[key] = not_a_number
    return value


def _places(x: Decimal, places: int) -> bool:
    """Whether ``x`` (finite) has at most ``places`` decimal places, trailing zeros aside.
    Read from its digits: quantizing a huge number (1e309) raises instead of answering."""
    _sign, digits, exponent = x.as_tuple()
    digits = list(digits)
    while exponent < 0 and len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exponent += 1
    return exponent >= -places


def _step(raw: Any, i: int, patient: Patient, errors: dict) -> Step | None:
    """One step as typed (a mapping of :data:`STEP_FIELDS`), or None with its messages."""
    from .services import plausible_limit

    n = i + 1
    at = ("steps", i)
    if not isinstance(raw, Mapping):
        errors[at] = gettext("Step %(n)s must be an object with %(fields)s.") % {
            "n": n, "fields": ", ".join(STEP_FIELDS[:5])}
        return None
    before = len(errors)
    unknown = sorted(set(raw) - set(STEP_FIELDS))
    if unknown:
        errors[at + ("__all__",)] = gettext("Step %(n)s: unknown field(s) %(fields)s.") % {
            "n": n, "fields": ", ".join(unknown)}
    start = _day(raw.get("start"), at + ("start",), patient, errors, "starts")
    end = _day(raw.get("end"), at + ("end",), patient, errors, "ends")
    if start is not None and end is not None and end < start:
        errors[at + ("end",)] = gettext(
            "Step %(n)s ends on %(end)s, before it starts (%(start)s); check both dates.") % {
                "n": n, "end": end.isoformat(), "start": start.isoformat()}
    unit = str(raw.get("unit") or "").strip()
    if not unit:
        errors[at + ("unit",)] = gettext("Step %(n)s: choose the unit (%(units)s).") % {
            "n": n, "units": ", ".join(pdoses.UNITS)}
    elif unit not in pdoses.UNITS:
        errors[at + ("unit",)] = gettext(
            "Step %(n)s: unknown unit '%(unit)s'; choose one of %(units)s.") % {
                "n": n, "unit": unit, "units": ", ".join(pdoses.UNITS)}
    amount = _decimal(raw.get("amount"), at + ("amount",), errors,
                      pgettext("enter ... as a number", "the amount per dose"), "2.5")
    if amount is None and at + ("amount",) not in errors:
        errors[at + ("amount",)] = gettext("Step %(n)s: give the amount per dose.") % {"n": n}
    elif amount is not None:
        limit, why = plausible_limit(unit) if unit in pdoses.UNITS else (None, "")
        words = gettext(UNIT_WORDS[unit]) if unit in UNIT_WORDS else unit
        if amount <= 0:
            errors[at + ("amount",)] = gettext(
                "Step %(n)s: the amount per dose must be more than 0 (a day without kratom is the "
                "end of the plan, or a gap between steps).") % {"n": n}
        elif limit is not None and amount > Decimal(str(limit)):
            errors[at + ("amount",)] = gettext(
                "Step %(n)s: %(amount)s %(unit)s in one dose is above %(limit)s, the diary's "
                "plausibility limit for this unit (%(why)s). Check the amount and the unit.") % {
                    "n": n, "amount": local_number(_text(amount)), "unit": words,
                    "limit": local_number(f"{limit:g}"), "why": why}
        elif not _places(amount, 3):
            errors[at + ("amount",)] = gettext(
                "Step %(n)s: give the amount with at most 3 decimal places.") % {"n": n}
    raw_n = raw.get("doses_per_day")
    per_day = None
    if raw_n in (None, ""):
        errors[at + ("doses_per_day",)] = gettext(
            "Step %(n)s: give the number of doses a day.") % {"n": n}
    else:
        try:
            if isinstance(raw_n, bool) or (isinstance(raw_n, float) and not raw_n.is_integer()):
                raise ValueError
            per_day = int(str(raw_n).strip()) if not isinstance(raw_n, float) else int(raw_n)
        except ValueError:
            per_day = None
        if per_day is None or not 1 <= per_day <= MAX_DOSES_PER_DAY:
            errors[at + ("doses_per_day",)] = gettext(
                "Step %(n)s: doses a day is a whole number from 1 to %(most)s.") % {
                    "n": n, "most": MAX_DOSES_PER_DAY}
            per_day = None
    pct = _decimal(raw.get("mitragynine_percent"), at + ("mitragynine_percent",), errors,
                   pgettext("enter ... as a number", "the mitragynine %"), "1.5")
    if pct is not None and not Decimal(0) < pct <= 100:
        errors[at + ("mitragynine_percent",)] = gettext(
            "Step %(n)s: mitragynine %% must be more than 0 and at most 100 (as on the "
            "label).") % {"n": n}
    elif pct is not None and not _places(pct, 2):
        errors[at + ("mitragynine_percent",)] = gettext(
            "Step %(n)s: give the mitragynine %% with at most 2 decimal places (as the diary "
            "keeps it).") % {"n": n}
    gpc = _decimal(raw.get("grams_per_capsule"), at + ("grams_per_capsule",), errors,
                   pgettext("enter ... as a number", "the grams per capsule"), "0.5")
    if gpc is not None and not Decimal(0) < gpc <= 5:
        errors[at + ("grams_per_capsule",)] = gettext(
            "Step %(n)s: grams per capsule must be more than 0 and at most 5.") % {"n": n}
    elif gpc is not None and not _places(gpc, 3):
        errors[at + ("grams_per_capsule",)] = gettext(
            "Step %(n)s: give the grams per capsule with at most 3 decimal places (as the diary "
            "keeps it).") % {"n": n}
    if unit == "capsule" and gpc is None and at + ("grams_per_capsule",) not in errors:
        errors[at + ("grams_per_capsule",)] = gettext(
            "Step %(n)s: give the grams per capsule of the product (the exposure preview and the "
            "diary comparison need it).") % {"n": n}
    if unit == "mg_extract" and pct is None and at + ("mitragynine_percent",) not in errors:
        errors[at + ("mitragynine_percent",)] = gettext(
            "Step %(n)s: give the extract's labelled mitragynine %%; extracts differ too much to "
            "assume it.") % {"n": n}
    if len(errors) > before:
        return None
    return Step(start, end, amount, unit, per_day, pct if unit != "glass" else None,
                gpc if unit == "capsule" else None)


def _episode(raw: Any, patient: Patient, kind: str, errors: dict):
    if raw in (None, ""):
        return None
    try:
        if isinstance(raw, bool):
            raise ValueError
        episode = raw if isinstance(raw, TreatmentEpisode) else TreatmentEpisode.objects.get(
            pk=int(raw))
    except (TreatmentEpisode.DoesNotExist, TypeError, ValueError):
        episode = None
    if episode is None or episode.patient_id != patient.pk:
        errors["episode"] = gettext("No such treatment episode in this patient's record.")
        return None
    if episode.retracted:
        errors["episode"] = gettext(
            "That treatment episode was withdrawn as entered in error; choose the episode the "
            "plan goes with, or leave it out.")
        return None
    if kind == TaperKind.KRATOM:
        errors["episode"] = gettext(
            "A kratom taper goes with no treatment episode: choose 'move to %(drug)s' as the "
            "kind, or leave the episode out.") % {"drug": episode.drug}
    elif kind in TaperKind.values and episode.drug != kind:
        errors["episode"] = gettext(
            "This is a %(drug)s episode, and the plan is a move to %(kind)s: choose the "
            "%(kind)s episode, or leave it out.") % {"drug": episode.drug, "kind": kind}
    return episode


def _decision(raw: Any, patient: Patient, kind: str, errors: dict):
    if raw in (None, ""):
        return None
    from speciosa.education.models import Decision

    try:
        if isinstance(raw, bool):
            raise ValueError
        decision = raw if isinstance(raw, Decision) else Decision.objects.get(pk=int(raw))
    except (Decision.DoesNotExist, TypeError, ValueError):
        decision = None
    if decision is None or decision.patient_id != patient.pk:
        errors["decision"] = gettext("No such decision in this patient's record.")
        return None
    wanted = _DECISION_CHOICES.get(kind)
    if wanted is not None and decision.choice not in wanted:
        errors["decision"] = gettext(
            "The decision of %(day)s chose '%(choice)s', not a %(kind)s: choose the matching "
            "kind, or leave the decision out.") % {"day": day_text(decision.decided_at),
                                                  "choice": decision.choice_label,
                                                  "kind": TaperKind(kind).label}
    return decision


def validate_plan(patient: Patient, data: Mapping[str, Any]) -> dict[str, Any]:
    """Check one plan; returns the fields to store.

    Parameters
    ----------
    patient : Patient
        Whose plan (its episode and decision must be this patient's).
    data : mapping
        Any of :data:`FIELDS`; ``steps`` is a list of mappings of :data:`STEP_FIELDS`.

    Raises
    ------
    Invalid
        One message per field to fix, a step's under ``("steps", i, field)`` (flat key
        ``steps-0-amount``); nothing is stored.
    """
    errors: dict[Any, str] = {}
    if not isinstance(data, Mapping):
        raise writes.Invalid({(): gettext("Send the plan as an object.")})
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        errors[()] = gettext("Unknown field(s): %(fields)s.") % {"fields": ", ".join(unknown)}
    kind = str(data.get("kind") or "").strip()
    if kind not in TaperKind.values:
        errors[("kind",)] = (gettext(
            "Choose what the plan is for: kratom (a kratom taper), buprenorphine or methadone "
            "(the move to it).") if not kind else gettext(
            "Unknown kind '%(kind)s': choose kratom, buprenorphine or methadone.") % {
                "kind": kind})
    reason = str(data.get("reason") or "").strip()
    if not reason:
        errors[("reason",)] = gettext(
            "Say why this plan (what was agreed with the patient, and why).")
    elif len(reason) > 2000:
        errors[("reason",)] = gettext("The reason can be at most 2,000 characters.")
    raw_steps = data.get("steps")
    steps: list[Step] = []
    if not isinstance(raw_steps, Sequence) or isinstance(raw_steps, str | bytes) or not raw_steps:
        errors[("steps",)] = gettext(
            "Enter the schedule: at least one step (from, to, amount per dose, unit, doses a "
            "day).")
    elif len(raw_steps) > MAX_STEPS:
        errors[("steps",)] = gettext("A plan holds at most %(most)s steps.") % {"most": MAX_STEPS}
    else:
        for i, raw in enumerate(raw_steps):
            step = _step(raw, i, patient, errors)
            if step is not None:
                steps.append(step)
        if len(steps) == len(raw_steps):
            order = sorted(range(len(steps)), key=lambda k: (steps[k].start, k))
            for a, b in zip(order, order[1:], strict=False):
                if steps[b].start <= steps[a].end:
                    errors[("steps", b, "start")] = gettext(
                        "Step %(n)s (from %(start)s) overlaps step %(other)s (%(other_start)s to "
                        "%(other_end)s): each day belongs to one step.") % {
                            "n": b + 1, "start": steps[b].start.isoformat(), "other": a + 1,
                            "other_start": steps[a].start.isoformat(),
                            "other_end": steps[a].end.isoformat()}
                    break
            if steps and ("steps", 0, "start") not in errors:
                first, last = min(s.start for s in steps), max(s.end for s in steps)
                if (last - first).days + 1 > MAX_DAYS:
                    errors[("steps",)] = gettext(
                        "The plan runs %(days)s days (%(first)s to %(last)s); a plan runs at "
                        "most %(most)s days.") % {"days": (last - first).days + 1,
                                                  "first": first.isoformat(),
                                                  "last": last.isoformat(), "most": MAX_DAYS}
    episode = _episode(data.get("episode"), patient, kind, errors)
    decision = _decision(data.get("decision"), patient, kind, errors)
    if errors:
        raise writes.Invalid(errors)
    steps.sort(key=lambda s: s.start)
    stored = [{"start": s.start.isoformat(), "end": s.end.isoformat(), "amount": _text(s.amount),
               "unit": s.unit, "doses_per_day": s.doses_per_day,
               "mitragynine_percent": _text(s.mitragynine_percent)
               if s.mitragynine_percent is not None else None,
               "grams_per_capsule": _text(s.grams_per_capsule)
               if s.grams_per_capsule is not None else None} for s in steps]
    return {"kind": kind, "reason": reason, "steps": stored, "start": steps[0].start,
            "end": max(s.end for s in steps), "episode": episode, "decision": decision}


# --------------------------------------------------------------------------- reads

def plan_for(patient: Patient, plan_id: Any) -> TaperPlan:
    """The plan ``plan_id`` of ``patient`` (any version); another patient's id gets the same
    answer as one that does not exist (:func:`~speciosa.clinic.writes.record_of`).

    Raises
    ------
    ValidationError
        Under ``plan``."""
    return writes.record_of(TaperPlan, patient, plan_id, field="plan", missing=_NOT_FOUND,
                            related=("patient__site", "entered_by"))


def current_plans(patient: Patient):
    """The patient's plans (current versions), newest first."""
    return (TaperPlan.objects.current().filter(patient=patient)
            .select_related("entered_by").order_by("-start", "-pk"))


def active_plan(patient: Patient) -> TaperPlan | None:
    """The patient's active plan, if any."""
    return current_plans(patient).filter(status=TaperStatus.ACTIVE).first()


def plan_data(record: TaperPlan) -> dict[str, Any]:
    """The plan's fields as :func:`validate_plan` reads them (a correction starts here)."""
    return {"kind": record.kind, "reason": record.reason,
            "steps": [dict(s) for s in record.steps or []], "episode": record.episode_id,
            "decision": record.decision_id}


# --------------------------------------------------------------------------- writes

def _require(user, patient: Patient) -> None:
    writes.require(access.can_write_clinical(user, patient),
                   gettext("Only the care team records a taper plan."))


def _own(patient: Patient, record: TaperPlan) -> None:
    if record.patient_id != patient.pk:
        raise ValidationError({"plan": _NOT_FOUND})


def _writable(record: TaperPlan) -> None:
    if record.superseded or record.retracted:
        raise ValidationError({"__all__": _CHANGED})


def _reason(reason: str, key: str = "change_reason") -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({key: gettext("Say why.")})
    if len(reason) > 500:
        raise ValidationError({key: gettext("The reason can be at most 500 characters.")})
    return reason


def record_plan(user, patient: Patient, data: Mapping[str, Any], *,
                token: writes.SubmissionKey | str | None = None) -> TaperPlan:
    """Store a new plan (a clinician of the patient's care team), while no other is active."""
    _require(user, patient)
    earlier = writes.replayed(user, token, model=TaperPlan, kind="taper-plan", patient=patient)
    if earlier is not None:
        return earlier
    fields = validate_plan(patient, data)

    def create():
        # one plan at a time: two new plans sent together (two tabs) must not both be active
        Patient.objects.select_for_update().filter(pk=patient.pk).first()
        active = active_plan(patient)
        if active is not None:
            raise ValidationError({"__all__": gettext(
                "There is an active taper plan (%(start)s to %(end)s): replace it with this "
                "one, or stop it first.") % {"start": day_text(active.start),
                                             "end": day_text(active.end)}})
        obj = TaperPlan.objects.create(patient=patient, entered_by=user,
                                       source=Source.CLINICIAN, **fields)
        writes.audit(user, writes.Action.CREATE, obj, patient=patient, after=writes.snapshot(obj))
        return obj

    obj, _created = writes.once(user, token, "taper-plan", create, model=TaperPlan,
                                patient=patient)
    return obj


def correct_plan(user, patient: Patient, record: TaperPlan, changes: Mapping[str, Any], *,
                 reason: str, token: writes.SubmissionKey | str | None = None) -> TaperPlan:
    """Correct a plan entered wrongly: its next version holds ``changes`` (any of
    :data:`FIELDS`), the earlier one stays in the history. The status stays as it was."""
    _own(patient, record)
    _require(user, patient)
    earlier = writes.replayed(user, token, model=TaperPlan, kind="taper-plan-correction",
                              patient=patient)
    if earlier is not None:
        return earlier
    _writable(record)
    reason = _reason(reason)
    merged = plan_data(record)
    merged.update(changes)
    fields = validate_plan(patient, merged)

    def create():
        return writes.new_version(record, user, fields, action=writes.Action.CORRECT,
                                  reason=reason, patient=patient, changed=_CHANGED)

    new, _created = writes.once(user, token, "taper-plan-correction", create, model=TaperPlan,
                                patient=patient)
    return new


def replace_plan(user, patient: Patient, record: TaperPlan, data: Mapping[str, Any], *,
                 reason: str, token: writes.SubmissionKey | str | None = None) -> TaperPlan:
    """A new plan takes over from the active ``record`` (a change of the agreed schedule):
    the old plan's next version is ``replaced``, and the new one ``follows`` it. Returns the
    new plan."""
    _own(patient, record)
    _require(user, patient)
    earlier = writes.replayed(user, token, model=TaperPlan, kind="taper-plan-replace",
                              patient=patient)
    if earlier is not None:
        return earlier
    _writable(record)
    reason = _reason(reason)
    if record.status != TaperStatus.ACTIVE:
        raise ValidationError({"__all__": gettext(
            "Only the active plan can be replaced; this one is %(status)s.") % {
                "status": record.get_status_display()}})
    fields = validate_plan(patient, data)

    def create():
        old = writes.new_version(record, user, {"status": TaperStatus.REPLACED,
                                                "stopped_on": timezone.localdate(),
                                                "stop_reason": f"replaced: {reason}"[:200]},
                                 action=writes.Action.STOP, reason=f"replaced: {reason}",
                                 patient=patient, changed=_CHANGED)
        new = TaperPlan.objects.create(patient=patient, entered_by=user, source=Source.CLINICIAN,
                                       follows=old, change_reason=reason[:500], **fields)
        writes.audit(user, writes.Action.CREATE, new, patient=patient,
                     after=writes.snapshot(new), reason=reason)
        return new

    new, _created = writes.once(user, token, "taper-plan-replace", create, model=TaperPlan,
                                patient=patient)
    return new


def stop_plan(user, patient: Patient, record: TaperPlan, *, reason: str, on: Any = None,
              token: writes.SubmissionKey | str | None = None) -> TaperPlan:
    """End the active plan on ``on`` (a date, default today at the site) with the reason."""
    _own(patient, record)
    _require(user, patient)
    earlier = writes.replayed(user, token, model=TaperPlan, kind="taper-plan-stop",
                              patient=patient)
    if earlier is not None:
        return earlier
    _writable(record)
    reason = _reason(reason, "stop_reason")[:200]
    errors: dict[str, str] = {}
    if record.status != TaperStatus.ACTIVE:
        errors["__all__"] = gettext("This plan is already %(status)s.") % {
            "status": record.get_status_display()}
    today = integrity.site_today(patient.site)
    if on in (None, ""):
        day = today
    else:
        day = on if isinstance(on, dt.date) and not isinstance(on, dt.datetime) else None
        if day is None:
            try:
                day = parse_date(str(on).strip())
            except ValueError:
                day = None
        if day is None:
            errors["stopped_on"] = gettext(
                "'%(text)s' is not a date: give it as YYYY-MM-DD.") % {"text": on}
        elif day > today:
            errors["stopped_on"] = gettext(
                "The stop is in the future; record it on the day it stops.")
        elif day < writes.earliest_date(patient):
            errors["stopped_on"] = gettext("%(day)s is too early; check the year.") % {
                "day": day.isoformat()}
    if errors:
        raise ValidationError(errors)

    def create():
        return writes.new_version(record, user, {"status": TaperStatus.STOPPED,
                                                 "stopped_on": day, "stop_reason": reason},
                                  action=writes.Action.STOP, reason=reason, patient=patient,
                                  changed=_CHANGED)

    new, _created = writes.once(user, token, "taper-plan-stop", create, model=TaperPlan,
                                patient=patient)
    return new


# --------------------------------------------------------------------------- planned doses

def planned_doses(plan: TaperPlan, *, since: dt.date | None = None) -> list[pdoses.Dose]:
    """Every dose the plan schedules (from ``since``, when given), at the times of
    :data:`DOSE_TIMES` in the site's time zone, as the pharmacology engine reads doses."""
    tz = site_time_zone(plan.patient)
    out = []
    for step in steps_of(plan):
        day = max(step.start, since) if since else step.start
        while day <= step.end:
            for t in DOSE_TIMES[step.doses_per_day]:
                out.append(step.dose(dt.datetime.combine(day, t, tzinfo=tz)))
            day += dt.timedelta(days=1)
    return out


# --------------------------------------------------------------------------- planned vs taken

@dataclass
class DayComparison:
    """One day of a plan against the diary.

    ``planned`` and ``taken`` are amounts a day in the plan's ``unit`` (``taken`` None when
    the day's doses cannot all be expressed in it, or there is no diary); ``planned_mg`` and
    ``taken_mg`` the same in estimated mg mitragynine (None when a dose cannot be converted).
    ``status`` is one of ``as-planned``, ``above``, ``below`` (the day's doses against the
    plan), ``no-diary`` (nothing recorded that day: not read as none taken), ``no-step`` (a
    day between steps), ``not-comparable`` (see ``notes``).
    """

    day: dt.date
    unit: str
    planned: Decimal | None
    planned_mg: float | None
    taken: float | None
    taken_mg: float | None
    doses: int
    recorded: bool
    status: str
    notes: list[str] = field(default_factory=list)
    step: Step | None = None

    @property
    def difference(self) -> float | None:
        """Taken minus planned, in the plan's unit (None when either is unknown)."""
        if self.taken is None or self.planned is None:
            return None
        return self.taken - float(self.planned)

    @property
    def status_text(self) -> str:
        return {"as-planned": "as planned", "above": "more than planned",
                "below": "less than planned", "no-diary": "no diary that day",
                "no-step": "no step planned", "not-comparable": "cannot compare"}[self.status]


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _engine_dose(row) -> pdoses.Dose:
    taken_at, amount, unit, pct, gpc = row
    return pdoses.Dose(taken_at=taken_at, amount=float(amount), unit=unit,
                       mitragynine_percent=_float(pct), grams_per_capsule=_float(gpc))


def planned_vs_taken(plan: TaperPlan, *, until: dt.date | None = None,
                     since: dt.date | None = None) -> list[DayComparison]:
    """Every day of ``plan`` up to ``until`` (default today at the site; never past the
    plan's end or its stop), oldest first, against the diary's current doses of that day
    (days in the site's time zone).

    The plan's amount a day is its step's amount per dose times doses a day. The diary's
    doses are summed in the plan's unit when each can be expressed in it without an
    assumption (:func:`speciosa.pharmacology.doses.amount_in_unit`), and in estimated mg
    mitragynine by the one dose conversion (:func:`speciosa.pharmacology.doses.convert_all`);
    a dose that cannot be is named in ``notes``, and the sum left unknown, not guessed. A
    day with neither a diary nor a dose is ``no-diary``; a diary without kratom is 0 taken.
    """
    tz = site_time_zone(plan.patient)
    steps = steps_of(plan)
    last = plan.end
    if plan.stopped_on is not None and plan.status != TaperStatus.ACTIVE:
        last = min(last, plan.stopped_on)
    until = until or integrity.site_today(plan.patient.site)
    last = min(last, until)
    first = max(plan.start, since) if since else plan.start
    if last < first:
        return []
    lo = dt.datetime.combine(first, dt.time.min, tzinfo=tz)
    hi = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    by_day: dict[dt.date, list[pdoses.Dose]] = defaultdict(list)
    for row in (Dose.objects.current().filter(patient=plan.patient, taken_at__gte=lo,
                                              taken_at__lt=hi).order_by("taken_at")
                .values_list("taken_at", "amount", "unit", "mitragynine_percent",
                             "grams_per_capsule")):
        d = _engine_dose(row)
        by_day[d.taken_at.astimezone(tz).date()].append(d)
    diaries = set(DiaryDay.objects.filter(patient=plan.patient, day__gte=first, day__lte=last)
                  .values_list("day", flat=True))
    out = []
    day = first
    while day <= last:
        step = next((s for s in steps if s.covers(day)), None)
        out.append(_compare_day(day, step, by_day.get(day, []), day in diaries,
                                steps[0].unit if steps else "", tz))
        day += dt.timedelta(days=1)
    return out


def _compare_day(day: dt.date, step: Step | None, taken: list[pdoses.Dose], diary: bool,
                 unit: str, tz: dt.tzinfo) -> DayComparison:
    notes: list[str] = []
    recorded = diary or bool(taken)
    planned = planned_mg = None
    if step is not None:
        unit = step.unit
        planned = step.per_day
        ok, bad = pdoses.convert_all([step.dose(dt.datetime.combine(day, dt.time(12),
                                                                    tzinfo=dt.UTC))])
        if ok:
            planned_mg = ok[0].mg * step.doses_per_day
        else:
            notes.append(f"The plan's {UNIT_WORDS.get(unit, unit)} cannot be converted to "
                         f"mitragynine: {bad[0][1]}.")
    taken_amount = taken_mg = None
    if recorded:
        total, all_in_unit = 0.0, True
        for d in taken:
            try:
                total += pdoses.amount_in_unit(d, unit, _float(step.grams_per_capsule)
                                               if step else None)
            except pdoses.DoseConversionError as exc:
                all_in_unit = False
                notes.append(f"{number(d.amount)} {UNIT_WORDS.get(d.unit, d.unit)} at "
                             f"{d.taken_at.astimezone(tz):%H:%M}: {exc}.")
        taken_amount = total if all_in_unit else None
        ok, bad = pdoses.convert_all(taken)
        if bad:
            for i, why in bad:
                notes.append(f"{number(taken[i].amount)} {UNIT_WORDS.get(taken[i].unit, taken[i].unit)}"
                             f" not converted to mitragynine: {why}.")
        else:
            taken_mg = sum(x.mg for x in ok)
    if step is None:
        status = "no-step"
    elif not recorded:
        status = "no-diary"
    elif taken_amount is not None:
        status = ("as-planned" if _same(taken_amount, float(planned)) else
                  "above" if taken_amount > float(planned) else "below")
    elif taken_mg is not None and planned_mg is not None:
        notes.append("Compared in estimated mg mitragynine (the doses are in other units).")
        status = ("as-planned" if _same(taken_mg, planned_mg) else
                  "above" if taken_mg > planned_mg else "below")
    else:
        status = "not-comparable"
    return DayComparison(day=day, unit=unit, planned=planned, planned_mg=planned_mg,
                         taken=taken_amount, taken_mg=taken_mg, doses=len(taken),
                         recorded=recorded, status=status, notes=list(dict.fromkeys(notes)),
                         step=step)


def unit_words(unit: str) -> str:
    """A unit as the pages write it (``g`` -> ``g of leaf``)."""
    return UNIT_WORDS.get(unit, dict(DoseUnit.choices).get(unit, unit))
