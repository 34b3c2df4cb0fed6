"""Medications: record, change, stop, confirm and review a patient's medication list.

Every function checks access (:mod:`speciosa.clinic.access`), validates with
:func:`validate_medication` and stores through the write kernel
(:mod:`speciosa.clinic.writes`): one transaction with its audit entry, once per submission
token, then the after-change hooks (the safety rules read the list). Nothing is saved when a
value is refused; each message says what to fix and is placed under its field.

- A clinician records a medication (chosen from the drug table, :mod:`speciosa.knowledge.drugs`,
  or free text, stored as not coded), changes its dose (the course stops and the next one
  starts, linked by ``follows``), stops it, corrects it (a correction replaces the row,
  :func:`speciosa.clinic.services.correct_record`), and records a medication review.
- A patient adds what the clinic did not prescribe (over the counter, supplements, another
  prescriber); a clinician confirms it (:func:`confirm_medication`).

Refused, with a message: a stop before the start, an unknown unit, form, route or status, a
second entry of the same drug whose dates overlap a current one, a drug the table does not
have as a coded key, an RxCUI that is not the table's for the drug, a medication of another
patient, and dates outside the patient's window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import formats, timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.text import capfirst
from django.utils.translation import gettext, gettext_lazy, pgettext

from speciosa.knowledge import drugs as kdrugs

from . import access, integrity, writes
from .models import (
    CURRENT_MEDICATION_STATUSES,
    Medication,
    MedicationCategory,
    MedicationReview,
    MedicationStatus,
    Patient,
    Prescriber,
    Source,
)
from .numbers import finite_decimal

__all__ = [
    "DOSE_UNITS",
    "FIELDS",
    "FORMS",
    "ROUTES",
    "STRENGTH_UNITS",
    "change_medication",
    "check_stop",
    "confirm_medication",
    "awaiting_confirmation",
    "current_medications",
    "drug_names",
    "latest_review",
    "medication_for",
    "record_medication",
    "record_medication_review",
    "resolve_drug_name",
    "site_time_zone",
    "stop_medication",
    "validate_medication",
]

#: Units of a strength (``8 mg`` per tablet, ``10 mg/mL``, a ``5 mcg/h`` patch).
STRENGTH_UNITS: tuple[str, ...] = ("mg", "mcg", "g", "mg/mL", "mcg/mL", "mcg/h", "%", "IU",
                                   "unit")
#: Units of one dose (``2 tablet``, ``16 mg``, ``1 injection``).
DOSE_UNITS: tuple[str, ...] = ("mg", "mcg", "g", "mL", "tablet", "capsule", "film", "patch",
                               "spray", "puff", "drop", "injection", "sachet", "unit", "IU")
#: Spellings accepted for a unit (lower case) -> the unit.
_UNIT_ALIASES = {"ug": "mcg", "µg": "mcg", "microgram": "mcg", "micrograms": "mcg",
                 "milligram": "mg", "milligrams": "mg", "ml": "mL", "mg/ml": "mg/mL",
                 "mcg/ml": "mcg/mL", "units": "unit", "iu": "IU", "tablets": "tablet",
                 "tab": "tablet", "tabs": "tablet", "capsules": "capsule", "caps": "capsule",
                 "films": "film", "patches": "patch", "sprays": "spray", "puffs": "puff",
                 "drops": "drop", "injections": "injection", "sachets": "sachet",
                 "mcg/hr": "mcg/h", "percent": "%"}

FORMS: dict[str, str] = {
    "tablet": "tablet",
    "sublingual-tablet": "sublingual tablet",
    "capsule": "capsule",
    "film": "film (sublingual or buccal)",
    "oral-solution": "oral solution or liquid",
    "injection": "injection",
    "xr-injection": "extended-release injection",
    "patch": "patch",
    "nasal-spray": "nasal spray",
    "inhaler": "inhaler",
    "topical": "cream, gel or ointment",
    "powder": "powder",
    "other": "other",
}
ROUTES: dict[str, str] = {
    "oral": "by mouth",
    "sublingual": "under the tongue",
    "buccal": "in the cheek",
    "subcutaneous": "under the skin (injection)",
    "intramuscular": "into a muscle (injection)",
    "intravenous": "into a vein",
    "transdermal": "on the skin (patch)",
    "nasal": "in the nose",
    "inhaled": "inhaled",
    "rectal": "rectal",
    "topical": "on the skin",
    "other": "other",
}

#: Largest number accepted for a strength or a dose: a check against typing errors only.
_MAX_AMOUNT = Decimal("100000")

_NOT_FOUND = gettext_lazy("No such medication in this patient's record.")

#: Every field a medication's data may hold (the API and the correction page accept these).
FIELDS: tuple[str, ...] = (
    "drug", "name", "rxnorm", "category", "strength", "strength_unit", "form", "dose_amount",
    "dose_unit", "frequency", "route", "start", "end", "status", "stop_reason", "prescriber",
    "prescriber_name", "indication", "notes",
)

#: Statuses that end a course (they need a stop date).
_ENDED = (MedicationStatus.STOPPED, MedicationStatus.COMPLETED)
#: Statuses whose rows are no duplicate of anything (they were never taken).
_NEVER_TAKEN = (MedicationStatus.ENTERED_IN_ERROR, MedicationStatus.NOT_TAKEN)


def site_time_zone(patient: Patient) -> dt.tzinfo:
    """The time zone of the patient's site (UTC when the site names none or an unknown one):
    a date and a time typed on a form are read in it."""
    return integrity.site_zone(patient.site)


_tz = site_time_zone


def resolve_drug_name(text: str) -> tuple[str, str]:
    """What a person typed in the medicine box, as ``(drug, name)``: a generic name, synonym
    or brand of the drug table gives the table's generic name as ``drug`` (coded) and the
    text as typed as ``name``; anything else is free text (``drug`` empty: not coded).
    The match is on whole names (case, spaces and punctuation aside), never on a prefix."""
    typed = " ".join(str(text or "").split())
    wanted = kdrugs.words(typed)
    if not wanted:
        return "", typed
    for drug in kdrugs.all_drugs():
        if drug.kind == "group":
            continue
        if any(kdrugs.words(n) == wanted for n in drug.names):
            return drug.name, typed
    return "", typed


def drug_names() -> list[tuple[str, str]]:
    """Every name a medicine box offers, as ``(name, generic name)``: each drug of the table
    by its generic name, synonyms and brands (groups left out), sorted by name."""
    seen: dict[str, tuple[str, str]] = {}
    for drug in kdrugs.all_drugs():
        if drug.kind == "group":
            continue
        for n in drug.names:
            seen.setdefault(n.lower(), (n, drug.name))
    return sorted(seen.values(), key=lambda pair: pair[0].lower())


def awaiting_confirmation(patients):
    """The current medications the patients reported that no clinician confirmed yet
    (entries withdrawn, corrected away or never taken left out), oldest first."""
    return (Medication.objects.current().filter(patient__in=patients, source=Source.PATIENT,
                                                 confirmed_at__isnull=True)
            .exclude(status__in=_NEVER_TAKEN).select_related("patient").order_by("entered_at"))


def latest_review(patient: Patient) -> MedicationReview | None:
    """The patient's most recent medication review ("reconciled on ... by ..."), or None."""
    return (MedicationReview.objects.current().filter(patient=patient)
            .select_related("entered_by").order_by("-at", "-pk").first())


def _text(data: Mapping[str, Any], key: str, limit: int, errors: dict[str, str],
          label: str) -> str:
    value = data.get(key)
    text = "" if value is None else str(value).strip()
    if len(text) > limit:
        errors[key] = gettext("%(what)s can be at most %(limit)s characters.") % {
            "what": label, "limit": limit}
    return text


def _choice(data: Mapping[str, Any], key: str, choices, errors: dict[str, str], what: str,
            default: str = "") -> str:
    value = str(data.get(key) or "").strip() or default
    allowed = list(choices)
    if value and value not in allowed:
        errors[key] = gettext("Unknown %(what)s '%(value)s': choose one of %(allowed)s.") % {
            "what": what, "value": value, "allowed": ", ".join(allowed)}
    return value


def _amount(data: Mapping[str, Any], key: str, unit_key: str, units: tuple[str, ...],
            errors: dict[str, str], what: str) -> tuple[Decimal | None, str]:
    raw, raw_unit = data.get(key), str(data.get(unit_key) or "").strip()
    unit = raw_unit if raw_unit in units else _UNIT_ALIASES.get(raw_unit.lower(), raw_unit)
    if unit and unit not in units and raw_unit.lower() in {u.lower() for u in units}:
        unit = next(u for u in units if u.lower() == raw_unit.lower())
    if raw in (None, ""):
        if unit:
            errors[key] = gettext(
                "Give %(what)s as a number with its unit, or clear the unit.") % {"what": what}
        return None, ""
    value = finite_decimal(raw)
    if value is None:
        errors[key] = gettext("Enter %(what)s as a number, for example 8 or 2.5.") % {
            "what": what}
        return None, unit
    if not Decimal(0) < value <= _MAX_AMOUNT:
        errors[key] = capfirst(gettext(
            "%(what)s must be more than 0 and at most %(limit)s; check it.") % {
                "what": what, "limit": formats.number_format(_MAX_AMOUNT, force_grouping=True)})
    elif value != value.quantize(Decimal("0.0001")):
        errors[key] = gettext("Give %(what)s with at most 4 decimal places.") % {"what": what}
    if not unit:
        errors[unit_key] = gettext("Give the unit of %(what)s: %(units)s.") % {
            "what": what, "units": ", ".join(units)}
    elif unit not in units:
        errors[unit_key] = gettext("Unknown unit '%(unit)s': choose one of %(units)s.") % {
            "unit": raw_unit, "units": ", ".join(units)}
    return value, unit


def _moment(raw: Any, key: str, patient: Patient, errors: dict[str, str], *,
            future_days: int = 0) -> tuple[dt.date | None, dt.datetime | None]:
    """A day, or a day and time, from a date, an aware date-time or ISO text."""
    if raw in (None, ""):
        return None, None
    value = raw
    if isinstance(raw, str):
        text = raw.strip()
        try:
            value = parse_datetime(text) if "T" in text or " " in text else parse_date(text)
        except ValueError:
            value = None
        if value is None:
            errors[key] = gettext(
                "Give a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM+00:00).")
            return None, None
    if isinstance(value, dt.datetime):
        if timezone.is_naive(value):
            errors[key] = gettext("Give the time with its time zone, or give the date only.")
            return None, None
        try:
            day = value.astimezone(_tz(patient)).date()
        except OverflowError:
            day = value.date()
        at: dt.datetime | None = value
    elif isinstance(value, dt.date):
        day, at = value, None
    else:
        errors[key] = gettext("Give a date (YYYY-MM-DD) or a date and time.")
        return None, None
    earliest = writes.earliest_date(patient)
    latest = timezone.localdate() + dt.timedelta(days=future_days)
    if day < earliest:
        errors[key] = gettext(
            "%(day)s is before the dates this record accepts (from %(earliest)s); check the "
            "year.") % {"day": day.isoformat(), "earliest": earliest.isoformat()}
    elif day > latest or (at is not None and not future_days
                          and at > timezone.now() + writes.CLOCK_SKEW):
        errors[key] = (gettext("This date is in the future; give the day it started.")
                       if not future_days else gettext("Give a stop date up to %(latest)s.") % {
                           "latest": latest.isoformat()})
    return day, at


def validate_medication(patient: Patient, data: Mapping[str, Any], *,
                        exclude: tuple[int, ...] = ()) -> dict[str, Any]:
    """Check one medication; returns the fields to store.

    Parameters
    ----------
    patient : Patient
        Whose list it goes on (dates are read in the site's time zone; duplicates are
        looked for in this list only).
    data : mapping
        Any of :data:`FIELDS`. ``drug`` is a generic name of the drug table (coded); without
        it ``name`` is free text (not coded). ``start``/``end`` are a date, an aware
        date-time or ISO text.
    exclude : tuple of int
        Medication ids that are no duplicate (the row being corrected or changed).

    Raises
    ------
    ValidationError
        One message per field to fix.
    """
    errors: dict[str, str] = {}
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        errors["__all__"] = gettext("Unknown field(s): %(fields)s.") % {
            "fields": ", ".join(unknown)}
    drug_key = str(data.get("drug") or "").strip()
    name = _text(data, "name", 120, errors, gettext("The name"))
    rxnorm = str(data.get("rxnorm") or "").strip()
    entry = None
    if drug_key:
        entry = kdrugs.get(drug_key)
        if entry is None or entry.kind == "group":
            errors["drug"] = gettext(
                "'%(drug)s' is not a drug in the table: choose one from the list, or leave it "
                "empty and write the name (stored as not coded).") % {"drug": drug_key}
        else:
            drug_key = entry.name
            name = name or entry.name
            if rxnorm and entry.rxnorm and rxnorm != entry.rxnorm:
                errors["rxnorm"] = gettext(
                    "RxCUI %(rxcui)s is not %(drug)s's ingredient code (%(code)s in the drug "
                    "table); correct or clear it.") % {"rxcui": rxnorm, "drug": entry.name,
                                                       "code": entry.rxnorm}
            rxnorm = rxnorm or (entry.rxnorm or "")
    elif not name:
        errors["name"] = gettext("Choose the drug from the list, or write its name.")
    if rxnorm and not (rxnorm.isdigit() and len(rxnorm) <= 10 and rxnorm[0] != "0"):
        errors["rxnorm"] = gettext("An RxCUI is a number of up to 10 digits, for example 1819.")
    category = _choice(data, "category", MedicationCategory.values, errors,
                       pgettext("unknown ...", "kind of medicine"))
    strength, strength_unit = _amount(data, "strength", "strength_unit", STRENGTH_UNITS,
                                      errors, pgettext("give ... as a number", "the strength"))
    dose, dose_unit = _amount(data, "dose_amount", "dose_unit", DOSE_UNITS, errors,
                              pgettext("give ... as a number", "the dose"))
    form = _choice(data, "form", FORMS, errors, pgettext("unknown ...", "form"))
    route = _choice(data, "route", ROUTES, errors, pgettext("unknown ...", "route"))
    frequency = _text(data, "frequency", 80, errors, gettext("How often"))
    status = _choice(data, "status", MedicationStatus.values, errors,
                     pgettext("unknown ...", "status"), MedicationStatus.ACTIVE)
    prescriber = _choice(data, "prescriber", Prescriber.values, errors,
                         pgettext("unknown ...", "prescriber"), Prescriber.UNKNOWN)
    prescriber_name = _text(data, "prescriber_name", 120, errors, gettext("The prescriber's name"))
    indication = _text(data, "indication", 200, errors, gettext("The reason for taking it"))
    notes = _text(data, "notes", 2000, errors, gettext("The notes"))
    stop_reason = _text(data, "stop_reason", 200, errors, gettext("The reason for stopping"))
    start, start_at = _moment(data.get("start"), "start", patient, errors)
    if start is None and "start" not in errors:
        errors["start"] = gettext(
            "Give the date it was started (an estimate is fine; say so in the notes).")
    end, end_at = _moment(data.get("end"), "end", patient, errors, future_days=366)
    if start is not None and end is not None:
        if (end < start or (start_at is not None and end_at is not None and end_at < start_at)):
            errors["end"] = gettext(
                "The stop (%(end)s) is before the start (%(start)s); check both dates.") % {
                    "end": (end_at or end).isoformat(), "start": (start_at or start).isoformat()}
    if status in _ENDED and end is None and "end" not in errors:
        errors["end"] = gettext("Give the date it was stopped.")
    if (status == MedicationStatus.ACTIVE and end is not None and "end" not in errors
            and end < timezone.localdate()):
        errors["status"] = gettext("The stop date has passed, so it is no longer taken: "
                                   "choose 'stopped' or 'completed', or clear the stop date.")
    if stop_reason and end is None and status not in _ENDED:
        errors["stop_reason"] = gettext("A reason for stopping goes with a stop date.")
    if not errors and status not in _NEVER_TAKEN:
        clash = _overlapping(patient, drug_key, name, start, end, exclude)
        if clash is not None:
            values = {"name": clash.name, "start": clash.start.isoformat(),
                      "end": clash.end.isoformat() if clash.end else ""}
            errors["drug" if drug_key else "name"] = (gettext(
                "%(name)s is already on the list from %(start)s to %(end)s. Change or stop that "
                "entry instead of adding it again, or correct its dates.") if clash.end else gettext(
                "%(name)s is already on the list from %(start)s with no stop date. Change or stop "
                "that entry instead of adding it again, or correct its dates.")) % values
    if errors:
        raise ValidationError(errors)
    return {"drug": drug_key, "name": name, "rxnorm": rxnorm, "category": category,
            "strength": strength, "strength_unit": strength_unit, "form": form,
            "dose_amount": dose, "dose_unit": dose_unit, "frequency": frequency, "route": route,
            "start": start, "start_at": start_at, "end": end, "end_at": end_at,
            "status": status, "stop_reason": stop_reason, "prescriber": prescriber,
            "prescriber_name": prescriber_name, "indication": indication, "notes": notes}


def _overlapping(patient: Patient, drug_key: str, name: str, start: dt.date,
                 end: dt.date | None, exclude: tuple[int, ...]) -> Medication | None:
    """A current entry of the same drug (the same coded drug, or the same free-text name)
    whose days overlap ``start``..``end``."""
    qs = (Medication.objects.current().filter(patient=patient)
          .exclude(status__in=_NEVER_TAKEN).exclude(pk__in=exclude))
    qs = qs.filter(drug=drug_key) if drug_key else qs.filter(drug="", name__iexact=name)
    for other in qs.order_by("start", "pk"):
        if (end is None or other.start <= end) and (other.end is None or start <= other.end):
            return other
    return None


def medication_for(patient: Patient, medication_id: Any) -> Medication:
    """The medication ``medication_id`` of ``patient`` (any version).

    Raises
    ------
    ValidationError
        Under ``medication`` when there is no such medication in this patient's record (an
        id of another patient's medication gets the same answer: nothing is disclosed;
        :func:`~speciosa.clinic.writes.record_of`)."""
    return writes.record_of(Medication, patient, medication_id, field="medication",
                            missing=_NOT_FOUND)


def _own(patient: Patient, record: Medication) -> None:
    if record.patient_id != patient.pk:
        raise ValidationError({"medication": _NOT_FOUND})


def _writable(record: Medication) -> None:
    if record.superseded or record.retracted:
        raise ValidationError({"__all__": gettext(
            "This entry was changed since; open the current one.")})


def current_medications(patient: Patient):
    """The patient's medication list: the current version of every entry, newest first
    (stopped ones included; entries withdrawn as made in error left out)."""
    return (Medication.objects.current().filter(patient=patient)
            .select_related("entered_by", "confirmed_by").order_by("-start", "-pk"))


def record_medication(user, patient: Patient, data: Mapping[str, Any], *,
                      token: writes.SubmissionKey | str | None = None) -> Medication:
    """Add a medication to ``patient``'s list.

    A clinician of the patient's care team records any medication (``source`` clinician);
    the patient adds one the clinic did not prescribe (``source`` patient, waiting for a
    clinician's confirmation): this clinic's prescriptions are the clinic's to record."""
    if access.can_write_clinical(user, patient):
        source = Source.CLINICIAN
    elif access.can_write_diary(user, patient):
        source = Source.PATIENT
    else:
        raise writes.AccessDenied("Only the patient or their care team can add a medication.")
    earlier = writes.replayed(user, token, model=Medication, kind="medication", patient=patient)
    if earlier is not None:
        return earlier
    fields = validate_medication(patient, data)
    if source == Source.PATIENT:
        problems = {}
        if fields["prescriber"] == Prescriber.CLINIC:
            problems["prescriber"] = ("Medicines this clinic prescribes are added by your "
                                      "clinician; choose another prescriber or none.")
        if fields["status"] not in (MedicationStatus.ACTIVE, *_ENDED):
            problems["status"] = "Say whether you take it now or have stopped."
        if problems:
            raise ValidationError(problems)
    return writes.create_record(user, token, "medication", Medication, patient,
                                {"source": source, **fields})


def _new_version(record: Medication, user, fields: Mapping[str, Any], action: str,
                 reason: str, patient: Patient) -> Medication:
    return writes.new_version(record, user, fields, action=action, reason=reason,
                              patient=patient)


def when(raw: Any, patient: Patient, key: str = "at") -> tuple[dt.date, dt.datetime | None]:
    """A date or date-time (default now) as (day at the site, moment or None), or the
    field's message."""
    errors: dict[str, str] = {}
    day, at = _moment(raw if raw not in (None, "") else timezone.now(), key, patient, errors)
    if errors:
        raise ValidationError(errors)
    return day, at


def check_stop(patient: Patient, record, reason: str, at: Any, errors: dict[str, str], *,
               missing: str) -> tuple[str, dt.date, dt.datetime | None]:
    """The stop of a course (a medication, a treatment episode): its reason, given
    (``missing`` otherwise) and at most 200 characters, and its day and moment (``at``,
    default now), not before the course's start. Messages go into ``errors``."""
    reason = (reason or "").strip()
    if not reason:
        errors["stop_reason"] = missing
    elif len(reason) > 200:
        errors["stop_reason"] = gettext("The reason for stopping can be at most 200 characters.")
    day, moment = when(at, patient, "end")
    if day < record.start or (moment and record.start_at and moment < record.start_at):
        errors["end"] = gettext("The stop is before the start (%(start)s); check the date.") % {
            "start": record.start.isoformat()}
    return reason, day, moment


def stop_medication(user, patient: Patient, record: Medication, *, reason: str,
                    at: Any = None, status: str = MedicationStatus.STOPPED,
                    token: writes.SubmissionKey | str | None = None) -> Medication:
    """Stop a current medication at ``at`` (default now) with the reason: its next version
    has the stop date and status ``stopped`` (or ``completed``, a course that ran its
    planned length). A clinician stops any; the patient one they reported themselves."""
    _own(patient, record)
    writes.require(access.can_write_clinical(user, patient)
                   or (access.can_write_diary(user, patient) and record.source == Source.PATIENT),
                   gettext("Only the care team can stop this medication."))
    earlier = writes.replayed(user, token, model=Medication, kind="medication-stop",
                              patient=patient)
    if earlier is not None:
        return earlier
    _writable(record)
    errors: dict[str, str] = {}
    if status not in _ENDED:
        errors["status"] = gettext("Choose stopped or completed.")
    if record.status not in (*CURRENT_MEDICATION_STATUSES, MedicationStatus.ON_HOLD,
                             MedicationStatus.INTENDED):
        errors["__all__"] = gettext("This medication is already %(status)s.") % {
            "status": record.get_status_display()}
    reason, day, moment = check_stop(patient, record, reason, at, errors,
                                     missing=gettext("Say why it was stopped."))
    if errors:
        raise ValidationError(errors)

    def create():
        return _new_version(record, user, {"end": day, "end_at": moment, "status": status,
                                           "stop_reason": reason},
                            writes.Action.STOP, reason, patient)

    new, created = writes.once(user, token, "medication-stop", create, model=Medication,
                               patient=patient)
    if created:
        writes.after_change(patient)
    return new


def change_medication(user, patient: Patient, record: Medication, changes: Mapping[str, Any],
                      *, reason: str, at: Any = None,
                      token: writes.SubmissionKey | str | None = None) -> Medication:
    """Change a current medication from ``at`` (default now): a new dose, frequency, form
    or route. The course so far stops at ``at`` (its history stays as it was) and the next
    course starts then, linked to it (``follows``). Returns the new course.

    Only a clinician of the care team changes a medication; the drug itself does not change
    (stop it and record the other drug)."""
    _own(patient, record)
    writes.require(access.can_write_clinical(user, patient),
                   gettext("Only the care team can change a medication."))
    earlier = writes.replayed(user, token, model=Medication, kind="medication-change",
                              patient=patient)
    if earlier is not None:
        return earlier
    _writable(record)
    reason = (reason or "").strip()
    errors: dict[str, str] = {}
    if not reason:
        errors["reason"] = gettext("Say why the medication is changed.")
    for key in ("drug", "name", "rxnorm", "start", "end", "status"):
        if key in changes and str(changes[key] or "") != str(getattr(record, key) or ""):
            errors[key] = gettext(
                "A change keeps the drug and starts now: to take another drug, stop this one and "
                "add the other; to fix a mistake, correct the entry.")
    if record.status not in CURRENT_MEDICATION_STATUSES:
        errors["__all__"] = gettext(
            "Only a medication being taken can be changed; this one is %(status)s.") % {
                "status": record.get_status_display()}
    day, moment = when(at, patient, "start")
    if day < record.start:
        errors["start"] = gettext("The change is before the medication started (%(start)s).") % {
            "start": record.start.isoformat()}
    if errors:
        raise ValidationError(errors)
    merged = {k: getattr(record, k) for k in FIELDS if k not in ("start", "end", "stop_reason")}
    merged.update({k: v for k, v in changes.items() if k not in ("start", "end", "status")})
    merged.update(start=moment or day, end=record.end_at or record.end)
    if record.end is not None and record.end < day:
        merged["end"] = None
    fields = validate_medication(patient, merged, exclude=(record.pk,))

    def create():
        return writes.next_course(record, user, patient, reason=reason, fields=fields, stop={
            "end": day, "end_at": moment, "status": MedicationStatus.STOPPED})

    new, created = writes.once(user, token, "medication-change", create, model=Medication,
                               patient=patient)
    if created:
        writes.after_change(patient)
    return new


def confirm_medication(user, patient: Patient, record: Medication, *,
                       token: writes.SubmissionKey | str | None = None) -> Medication:
    """A clinician confirms a medication the patient reported: its next version names who
    confirmed it and when (it stays patient-reported)."""
    _own(patient, record)
    writes.require(access.can_write_clinical(user, patient),
                   gettext("Only the care team confirms a medication."))
    earlier = writes.replayed(user, token, model=Medication, kind="medication-confirm",
                              patient=patient)
    if earlier is not None:
        return earlier
    _writable(record)
    if record.source != Source.PATIENT:
        raise ValidationError({"__all__": gettext(
            "Only a medication the patient reported needs confirming.")})
    if record.confirmed_at is not None:
        raise ValidationError({"__all__": gettext("This medication was already confirmed.")})

    def create():
        return _new_version(record, user, {"confirmed_by": user, "confirmed_at": timezone.now()},
                            writes.Action.CONFIRM, "confirmed with the patient", patient)

    new, created = writes.once(user, token, "medication-confirm", create, model=Medication,
                               patient=patient)
    if created:
        writes.after_change(patient)
    return new


def record_medication_review(user, patient: Patient, *, note: str = "",
                             token: writes.SubmissionKey | str | None = None
                             ) -> MedicationReview:
    """Record that a clinician went through the medication list with the patient now
    ("reconciled on ... by ..."): the review keeps the ids of the entries on the list
    (patient-reported ones not yet confirmed included: the review page asks the clinician to
    confirm or correct them first; :func:`awaiting_confirmation` finds them)."""
    writes.require(access.can_write_clinical(user, patient),
                   gettext("Only the care team records a medication review."))
    note = (note or "").strip()
    if len(note) > 1000:
        raise ValidationError({"note": gettext("The note can be at most 1,000 characters.")})
    listed = list(current_medications(patient).exclude(status__in=_NEVER_TAKEN)
                  .values_list("pk", flat=True))
    return writes.create_record(user, token, "medication-review", MedicationReview, patient,
                                {"source": Source.CLINICIAN, "at": timezone.now(), "note": note,
                                 "medications": sorted(listed)}, reevaluate=False)
