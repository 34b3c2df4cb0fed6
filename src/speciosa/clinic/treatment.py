"""Medication for opioid use disorder: treatment episodes of buprenorphine, methadone and
naltrexone (issue 19).

An episode is one drug in one formulation at one dose from a start (a date, or a date and
time) to a stop: buprenorphine as a sublingual tablet, a buccal or sublingual film, or an
extended-release injection; methadone as an oral liquid or tablet with its daily dose in mg
and the dispensing clinic; naltrexone by mouth or as an extended-release injection with its
injection dates. A dose change stops the episode and starts the next (``follows``); a stop
keeps its reason. Every write checks access, is validated here, audited, and idempotent by
submission token (:mod:`speciosa.clinic.writes`); the safety rules then read the active
episodes as current medications (co-use, CYP3A, QT with methadone, naltrexone with kratom).

Refused with a message under the field, nothing stored: an unknown drug, formulation or
unit, a formulation the drug does not come in, a stop before the start, a dose that is not
a positive number of mg (or beyond the typing-error guard), a methadone episode without its
daily dose or dispensing clinic, injection dates outside the episode or for a drug taken by
mouth, a second episode of the same drug overlapping a current one, and another patient's
episode. A methadone dose above the site's ``methadone_confirm_above_mg`` (a rule setting,
a site convention) asks for confirmation (:class:`speciosa.clinic.services.NeedsConfirmation`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext, gettext_lazy

from . import access, rule_settings, writes
from .medications import _moment, check_stop, when
from .models import EpisodeStatus, Patient, Source, TreatmentDrug, TreatmentEpisode
from .models import TreatmentFormulation as F
from .numbers import COMMA_DECIMAL, day_text, finite_decimal, has_comma, local_number

__all__ = [
    "DECISION_DRUGS",
    "DOSE_GUARD_MG",
    "FIELDS",
    "FORMULATIONS",
    "add_injection",
    "change_episode",
    "current_episodes",
    "episode_data",
    "episode_for",
    "record_episode",
    "stop_episode",
    "overlap",
    "validate_episode",
]

#: The formulations each drug comes in (care.md §7 names the brands: Subutex, Suboxone,
#: Sublocade, Brixadi; Dolophine, Methadose; Revia, Vivitrol).
FORMULATIONS: dict[str, tuple[str, ...]] = {
    TreatmentDrug.BUPRENORPHINE: (F.SUBLINGUAL, F.BUCCAL_FILM, F.XR_INJECTION),
    TreatmentDrug.METHADONE: (F.ORAL_LIQUID, F.ORAL_TABLET),
    TreatmentDrug.NALTREXONE: (F.ORAL_TABLET, F.XR_INJECTION),
}

#: The largest dose in mg accepted at all: a guard against typing errors (an extra zero), not
#: a clinical limit; methadone above the site's setting needs confirmation well before it.
DOSE_GUARD_MG = Decimal("1000")

#: Every field an episode's data may hold.
FIELDS: tuple[str, ...] = ("drug", "formulation", "dose_mg", "dose_unit", "injection_dates",
                           "dispensing_clinic", "start", "end", "status", "stop_reason",
                           "notes", "confirmed_dose", "decision")

#: The decision aid's options (education ``content/options.toml``) that an episode carries
#: out, and the drug of each.
DECISION_DRUGS: dict[str, str] = {"buprenorphine": TreatmentDrug.BUPRENORPHINE,
                                  "methadone": TreatmentDrug.METHADONE,
                                  "xr-naltrexone": TreatmentDrug.NALTREXONE}

_NOT_FOUND = gettext_lazy("No such treatment episode in this patient's record.")
_CHANGED = gettext_lazy("This episode was changed since; open the current one.")


def _needs_confirmation(message: dict[str, str]) -> ValidationError:
    from .services import NeedsConfirmation

    return NeedsConfirmation(message)


def _dose(data: Mapping[str, Any], drug: str, formulation: str,
          errors: dict[str, str]) -> Decimal | None:
    raw = data.get("dose_mg")
    unit = str(data.get("dose_unit") or "mg").strip()
    if unit.lower() not in ("mg", "milligram", "milligrams"):
        errors["dose_unit"] = gettext(
            "Unknown unit '%(unit)s': a treatment episode's dose is in mg (the daily dose, or "
            "the dose of each injection).") % {"unit": unit}
    if raw in (None, ""):
        if drug == TreatmentDrug.METHADONE:
            errors["dose_mg"] = gettext("Give the daily methadone dose in mg.")
        return None
    if has_comma(raw):
        errors["dose_mg"] = gettext(COMMA_DECIMAL)
        return None
    value = finite_decimal(raw)
    if value is None:
        errors["dose_mg"] = gettext("Enter the dose in mg as a number, for example 16 or 2.5.")
        return None
    injection = formulation == F.XR_INJECTION
    if value <= 0:
        errors["dose_mg"] = (gettext("The dose (each injection) must be more than 0 mg.")
                             if injection else gettext("The dose (a day) must be more than 0 mg."))
    elif value > DOSE_GUARD_MG:
        errors["dose_mg"] = (gettext(
            "%(dose)s mg each injection is beyond %(limit)s mg, the limit this form takes (a "
            "check against typing errors); check the dose.") if injection else gettext(
            "%(dose)s mg a day is beyond %(limit)s mg, the limit this form takes (a check "
            "against typing errors); check the dose.")) % {
                "dose": local_number(value), "limit": local_number(DOSE_GUARD_MG)}
    elif value != value.quantize(Decimal("0.01")):
        errors["dose_mg"] = gettext("Give the dose with at most 2 decimal places.")
    return value


def _injections(raw: Any, patient: Patient, formulation: str, start: dt.date | None,
                end: dt.date | None, errors: dict[str, str]) -> list[str]:
    if raw in (None, "", []):
        return []
    if formulation != F.XR_INJECTION:
        errors["injection_dates"] = gettext(
            "Injection dates go with an extended-release injection only.")
        return []
    items = raw.split(",") if isinstance(raw, str) else list(raw) if isinstance(
        raw, list | tuple) else None
    if items is None:
        errors["injection_dates"] = gettext(
            "Give the injection dates as a list of dates (YYYY-MM-DD).")
        return []
    days = set()
    for item in items:
        day = item if isinstance(item, dt.date) and not isinstance(item, dt.datetime) else (
            parse_date(str(item).strip()) if str(item).strip() else None)
        if day is None:
            errors["injection_dates"] = gettext("'%(text)s' is not a date (YYYY-MM-DD).") % {
                "text": item}
            return []
        if day > timezone.localdate():
            errors["injection_dates"] = gettext(
                "%(day)s is in the future; record an injection once it is given.") % {
                    "day": day.isoformat()}
            return []
        if start is not None and day < start:
            errors["injection_dates"] = gettext(
                "The injection on %(day)s is before the episode started (%(start)s).") % {
                    "day": day.isoformat(), "start": start.isoformat()}
            return []
        if end is not None and day > end:
            errors["injection_dates"] = gettext(
                "The injection on %(day)s is after the episode stopped (%(end)s).") % {
                    "day": day.isoformat(), "end": end.isoformat()}
            return []
        if day < writes.earliest_date(patient):
            errors["injection_dates"] = gettext("%(day)s is too early; check the year.") % {
                "day": day.isoformat()}
            return []
        days.add(day)
    return [d.isoformat() for d in sorted(days)]


def _decision(raw: Any, patient: Patient, drug: str, errors: dict[str, str]):
    """The decision ``raw`` (an id or a Decision) of this patient, whose choice is ``drug``."""
    if raw in (None, ""):
        return None
    from speciosa.education.models import Decision

    if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
        errors["decision"] = gettext("Give the decision's id (a whole number).")
        return None
    try:
        decision = raw if isinstance(raw, Decision) else Decision.objects.get(pk=int(raw))
    except (Decision.DoesNotExist, TypeError, ValueError):
        decision = None
    if decision is None or decision.patient_id != patient.pk:
        errors["decision"] = gettext("No such decision in this patient's record.")
        return None
    chosen = DECISION_DRUGS.get(decision.choice)
    if chosen is None:
        errors["decision"] = gettext(
            "The decision of %(day)s chose '%(choice)s', not a medication for opioid use "
            "disorder.") % {"day": day_text(decision.decided_at), "choice": decision.choice_label}
    elif drug in FORMULATIONS and chosen != drug:
        errors["decision"] = gettext(
            "The decision of %(day)s chose %(chosen)s, not %(drug)s: start a %(chosen)s episode, "
            "or leave the decision out.") % {"day": day_text(decision.decided_at),
                                             "chosen": chosen, "drug": drug}
    return decision


def validate_episode(patient: Patient, data: Mapping[str, Any], *,
                     exclude: tuple[int, ...] = ()) -> dict[str, Any]:
    """Check one treatment episode; returns the fields to store.

    Raises
    ------
    ValidationError
        One message per field to fix; :class:`speciosa.clinic.services.NeedsConfirmation`
        when only the confirmation of a methadone dose above the site's setting is missing.
    """
    errors: dict[str, str] = {}
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        errors["__all__"] = gettext("Unknown field(s): %(fields)s.") % {
            "fields": ", ".join(unknown)}
    drug = str(data.get("drug") or "").strip().lower()
    formulation = str(data.get("formulation") or "").strip()
    if drug not in FORMULATIONS:
        errors["drug"] = gettext("Choose buprenorphine, methadone or naltrexone (other "
                                 "medicines go on the medication list).")
    elif formulation not in FORMULATIONS[drug]:
        allowed = ", ".join(str(F(f).label) for f in FORMULATIONS[drug])
        errors["formulation"] = (gettext(
            "Unknown formulation '%(formulation)s' for %(drug)s: choose %(allowed)s.") % {
                "formulation": formulation, "drug": drug, "allowed": allowed}
            if formulation else gettext("Choose the formulation: %(allowed)s.") % {
                "allowed": allowed})
    dose = _dose(data, drug, formulation, errors)
    clinic = str(data.get("dispensing_clinic") or "").strip()
    if len(clinic) > 120:
        errors["dispensing_clinic"] = gettext(
            "The dispensing clinic can be at most 120 characters.")
    if drug == TreatmentDrug.METHADONE and not clinic:
        errors["dispensing_clinic"] = gettext("Name the clinic that dispenses the methadone.")
    elif clinic and drug in FORMULATIONS and drug != TreatmentDrug.METHADONE:
        errors["dispensing_clinic"] = gettext(
            "Only a methadone episode names a dispensing clinic.")
    notes = str(data.get("notes") or "").strip()
    if len(notes) > 2000:
        errors["notes"] = gettext("The notes can be at most 2,000 characters.")
    stop_reason = str(data.get("stop_reason") or "").strip()
    if len(stop_reason) > 200:
        errors["stop_reason"] = gettext("The reason for stopping can be at most 200 characters.")
    status = str(data.get("status") or EpisodeStatus.ACTIVE).strip()
    if status not in EpisodeStatus.values:
        errors["status"] = gettext("Unknown status '%(status)s': choose active or stopped.") % {
            "status": status}
    start, start_at = _moment(data.get("start"), "start", patient, errors)
    if start is None and "start" not in errors:
        errors["start"] = gettext("Give the date the episode started.")
    end, end_at = _moment(data.get("end"), "end", patient, errors)
    if start is not None and end is not None and (
            end < start or (start_at is not None and end_at is not None and end_at < start_at)):
        errors["end"] = gettext(
            "The stop (%(end)s) is before the start (%(start)s); check both dates.") % {
                "end": (end_at or end).isoformat(), "start": (start_at or start).isoformat()}
    if status == EpisodeStatus.STOPPED and end is None and "end" not in errors:
        errors["end"] = gettext("Give the date the episode stopped.")
    if status == EpisodeStatus.STOPPED and not stop_reason:
        errors.setdefault("stop_reason", gettext("Say why the episode stopped."))
    if end is not None and status == EpisodeStatus.ACTIVE and "end" not in errors:
        errors["status"] = gettext("An episode with a stop date is stopped: choose stopped.")
    if stop_reason and end is None:
        errors.setdefault("stop_reason", gettext("A reason for stopping goes with a stop date."))
    injections = _injections(data.get("injection_dates"), patient, formulation, start, end,
                             errors)
    confirmed = bool(data.get("confirmed_dose"))
    decision = _decision(data.get("decision"), patient, drug, errors)
    if not errors:
        clash = _overlapping(patient, drug, start, end, exclude)
        if clash is not None:
            errors["drug"] = _clash_message(drug, clash)
    if errors:
        raise ValidationError(errors)
    limit = rule_settings.in_force()["methadone_confirm_above_mg"]
    if drug == TreatmentDrug.METHADONE and dose is not None and dose > Decimal(str(limit)) \
            and not confirmed:
        raise _needs_confirmation({"dose_mg": gettext(
            "%(dose)s mg a day is above %(limit)s mg/day, the level at which this site asks for "
            "a confirmation (a site convention, not a maximum dose): check the dose, then "
            "confirm it.") % {"dose": local_number(dose), "limit": local_number(f"{limit:g}")}})
    return {"drug": drug, "formulation": formulation, "dose_mg": dose,
            "injection_dates": injections, "dispensing_clinic": clinic, "start": start,
            "start_at": start_at, "end": end, "end_at": end_at, "status": status,
            "stop_reason": stop_reason, "notes": notes,
            "confirmed_dose": confirmed and drug == TreatmentDrug.METHADONE,
            "decision": decision}


def overlap(start: dt.date, end: dt.date | None, other_start: dt.date,
            other_end: dt.date | None) -> bool:
    """Whether two episodes of one drug overlap (``None``: ongoing). A change stops one
    episode on the day the next starts: sharing that day is no clash; the same start is."""
    if (end is None or other_start < end) and (other_end is None or start < other_end):
        return True
    return other_start == start


def _clash_message(drug: str, clash: TreatmentEpisode) -> str:
    if clash.end:
        return gettext(
            "A %(drug)s episode already runs from %(start)s to %(end)s. Change or stop that "
            "episode instead of adding another, or correct its dates.") % {
                "drug": drug, "start": clash.start.isoformat(), "end": clash.end.isoformat()}
    return gettext(
        "A %(drug)s episode already runs from %(start)s and is ongoing. Change or stop that "
        "episode instead of adding another, or correct its dates.") % {
            "drug": drug, "start": clash.start.isoformat()}


def _overlapping(patient: Patient, drug: str, start: dt.date, end: dt.date | None,
                 exclude: tuple[int, ...]) -> TreatmentEpisode | None:
    qs = (TreatmentEpisode.objects.current().filter(patient=patient, drug=drug)
          .exclude(pk__in=exclude))
    for other in qs.order_by("start", "pk"):
        if overlap(start, end, other.start, other.end):
            return other
    return None


def episode_for(patient: Patient, episode_id: Any) -> TreatmentEpisode:
    """The episode ``episode_id`` of ``patient`` (any version); another patient's id gets
    the same answer as one that does not exist (:func:`~speciosa.clinic.writes.record_of`).

    Raises
    ------
    ValidationError
        Under ``episode``."""
    return writes.record_of(TreatmentEpisode, patient, episode_id, field="episode",
                            missing=_NOT_FOUND)


def current_episodes(patient: Patient):
    """The patient's treatment episodes (current versions), newest first."""
    return (TreatmentEpisode.objects.current().filter(patient=patient)
            .select_related("entered_by").order_by("-start", "-pk"))


def _own(patient: Patient, record: TreatmentEpisode) -> None:
    if record.patient_id != patient.pk:
        raise ValidationError({"episode": _NOT_FOUND})


def _writable(record: TreatmentEpisode) -> None:
    if record.superseded or record.retracted:
        raise ValidationError({"__all__": _CHANGED})


def _require(user, patient: Patient) -> None:
    writes.require(access.can_write_clinical(user, patient),
                   gettext("Only the care team records treatment episodes."))


def record_episode(user, patient: Patient, data: Mapping[str, Any], *,
                   token: writes.SubmissionKey | str | None = None) -> TreatmentEpisode:
    """Start a treatment episode (a clinician of the patient's care team)."""
    _require(user, patient)
    earlier = writes.replayed(user, token, model=TreatmentEpisode, kind="episode",
                              patient=patient)
    if earlier is not None:
        return earlier
    fields = validate_episode(patient, data)

    def create():
        # the overlap is checked again under the patient's row lock: two tabs starting the
        # same drug both passed validate_episode before either was stored
        Patient.objects.select_for_update().filter(pk=patient.pk).first()
        clash = _overlapping(patient, fields["drug"], fields["start"], fields["end"], ())
        if clash is not None:
            raise ValidationError({"drug": _clash_message(fields["drug"], clash)})
        obj = TreatmentEpisode.objects.create(patient=patient, entered_by=user,
                                              source=Source.CLINICIAN, **fields)
        writes.audit(user, writes.Action.CREATE, obj, patient=patient,
                     after=writes.snapshot(obj))
        return obj

    obj, created = writes.once(user, token, "episode", create, model=TreatmentEpisode,
                               patient=patient)
    if created:
        writes.after_change(patient)
    return obj


def _new_version(record: TreatmentEpisode, user, fields: Mapping[str, Any], action: str,
                 reason: str, patient: Patient) -> TreatmentEpisode:
    return writes.new_version(record, user, fields, action=action, reason=reason,
                              patient=patient, changed=_CHANGED)


def episode_data(record: TreatmentEpisode) -> dict[str, Any]:
    """The episode's fields as :func:`validate_episode` reads them (a correction starts
    from these)."""
    return {"drug": record.drug, "formulation": record.formulation, "dose_mg": record.dose_mg,
            "injection_dates": list(record.injection_dates or []),
            "dispensing_clinic": record.dispensing_clinic,
            "start": record.start_at or record.start, "end": record.end_at or record.end,
            "status": record.status, "stop_reason": record.stop_reason, "notes": record.notes,
            "confirmed_dose": record.confirmed_dose, "decision": record.decision_id}


def stop_episode(user, patient: Patient, record: TreatmentEpisode, *, reason: str,
                 at: Any = None, token: writes.SubmissionKey | str | None = None
                 ) -> TreatmentEpisode:
    """Stop an episode at ``at`` (default now) with the reason."""
    _own(patient, record)
    _require(user, patient)
    earlier = writes.replayed(user, token, model=TreatmentEpisode, kind="episode-stop",
                              patient=patient)
    if earlier is not None:
        return earlier
    _writable(record)
    errors: dict[str, str] = {}
    if record.status != EpisodeStatus.ACTIVE:
        errors["__all__"] = gettext("This episode has already stopped.")
    reason, day, moment = check_stop(patient, record, reason, at, errors,
                                     missing=gettext("Say why the episode stopped."))
    late = [d for d in record.injection_dates or [] if d > day.isoformat()]
    if late and "end" not in errors:
        errors["end"] = gettext(
            "An injection was recorded on %(day)s, after this stop; check the date.") % {
                "day": late[0]}
    if errors:
        raise ValidationError(errors)

    def create():
        return _new_version(record, user, {"end": day, "end_at": moment,
                                           "status": EpisodeStatus.STOPPED,
                                           "stop_reason": reason},
                            writes.Action.STOP, reason, patient)

    new, created = writes.once(user, token, "episode-stop", create, model=TreatmentEpisode,
                               patient=patient)
    if created:
        writes.after_change(patient)
    return new


#: What a change may set (the drug stays; stop the episode and start another drug's).
CHANGEABLE = ("formulation", "dose_mg", "dose_unit", "dispensing_clinic", "injection_dates",
              "notes", "confirmed_dose")


def change_episode(user, patient: Patient, record: TreatmentEpisode,
                   changes: Mapping[str, Any], *, reason: str, at: Any = None,
                   token: writes.SubmissionKey | str | None = None) -> TreatmentEpisode:
    """A new dose, formulation or dispensing clinic from ``at`` (default now): the episode so
    far stops then and the next one starts, following it. Returns the new episode."""
    _own(patient, record)
    _require(user, patient)
    earlier = writes.replayed(user, token, model=TreatmentEpisode, kind="episode-change",
                              patient=patient)
    if earlier is not None:
        return earlier
    _writable(record)
    reason = (reason or "").strip()
    errors: dict[str, str] = {}
    if not reason:
        errors["reason"] = gettext("Say why the treatment changes.")
    wrong = sorted(k for k in changes if k not in CHANGEABLE)
    for key in wrong:
        errors[key] = gettext(
            "A change keeps the drug and starts at the time given: to switch drug, stop this "
            "episode and start the other; to fix a mistake, correct it.")
    if record.status != EpisodeStatus.ACTIVE:
        errors["__all__"] = gettext(
            "Only an ongoing episode can be changed; this one has stopped.")
    day, moment = when(at, patient, "start")
    if day < record.start:
        errors["start"] = gettext("The change is before the episode started (%(start)s).") % {
            "start": record.start.isoformat()}
    if errors:
        raise ValidationError(errors)
    merged = episode_data(record)
    merged.update(changes)
    merged.update(start=moment or day, end=None, status=EpisodeStatus.ACTIVE, stop_reason="")
    if "injection_dates" not in changes:
        merged["injection_dates"] = []
    if "confirmed_dose" not in changes:
        merged["confirmed_dose"] = False
    fields = validate_episode(patient, merged, exclude=(record.pk,))
    earlier_injections = [d for d in record.injection_dates or [] if d <= day.isoformat()]

    def create():
        return writes.next_course(record, user, patient, reason=reason, fields=fields,
                                  changed=_CHANGED, stop={
                                      "end": day, "end_at": moment,
                                      "status": EpisodeStatus.STOPPED,
                                      "injection_dates": earlier_injections})

    new, created = writes.once(user, token, "episode-change", create, model=TreatmentEpisode,
                               patient=patient)
    if created:
        writes.after_change(patient)
    return new


def add_injection(user, patient: Patient, record: TreatmentEpisode, day: Any, *,
                  token: writes.SubmissionKey | str | None = None) -> TreatmentEpisode:
    """Record an injection of an extended-release episode given on ``day``: the next
    version of the episode holds the date (audited)."""
    _own(patient, record)
    _require(user, patient)
    earlier = writes.replayed(user, token, model=TreatmentEpisode, kind="episode-injection",
                              patient=patient)
    if earlier is not None:
        return earlier
    _writable(record)
    merged = episode_data(record)
    dates = list(merged["injection_dates"])
    dates.append(day.isoformat() if isinstance(day, dt.date) else str(day or "").strip())
    merged["injection_dates"] = dates
    if str(day or "").strip() == "":
        raise ValidationError({"injection_dates": gettext("Give the date of the injection.")})
    fields = validate_episode(patient, {**merged, "confirmed_dose": True}, exclude=(record.pk,))
    if len(fields["injection_dates"]) == len(record.injection_dates or []):
        raise ValidationError({"injection_dates": gettext("This injection is already recorded.")})

    def create():
        return _new_version(record, user, {"injection_dates": fields["injection_dates"]},
                            writes.Action.CORRECT, f"injection given on {dates[-1]}", patient)

    new, created = writes.once(user, token, "episode-injection", create, model=TreatmentEpisode,
                               patient=patient)
    if created:
        writes.after_change(patient)
    return new
