"""Writes: every change to clinical data goes through here.

Each public function validates with :mod:`speciosa.knowledge` / :mod:`speciosa.pharmacology`,
writes in one transaction together with its audit entry, and is idempotent for a given
submission token (a double tap or a network retry stores one record). After a change the
patient's safety rules are re-evaluated (see :func:`_after_change`).

Validation problems raise :class:`django.core.exceptions.ValidationError` with a message per
field that says what to fix; nothing is saved then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from speciosa.knowledge import instruments as kinstruments
from speciosa.knowledge import labs as klabs
from speciosa.pharmacology import doses as pdoses

from . import access
from .models import (
    Assessment,
    AuditEntry,
    DiaryDay,
    Dose,
    LabResult,
    Note,
    Patient,
    Source,
    Submission,
    SubstanceUse,
)

# A phone's clock may run a little ahead of the server's.
CLOCK_SKEW = dt.timedelta(minutes=5)

SUBSTANCES = {
    "alcohol": "Alcohol",
    "benzodiazepines": "Benzodiazepines (e.g. diazepam, alprazolam)",
    "opioids": "Other opioids (heroin, pills, fentanyl)",
    "gabapentinoids": "Gabapentin or pregabalin",
    "cannabis": "Cannabis",
    "stimulants": "Stimulants (cocaine, methamphetamine)",
    "other": "Something else",
}


class NeedsConfirmation(ValidationError):
    """A value beyond the plausibility limits: correct it, or confirm it is right."""


# --------------------------------------------------------------------------- helpers

def _snapshot(obj) -> dict[str, Any]:
    data = model_to_dict(obj)
    data["id"] = obj.pk
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dt.datetime | dt.date):
            out[key] = value.isoformat()
        elif isinstance(value, Decimal):
            out[key] = format(value.normalize(), "f")
        elif hasattr(value, "pk"):
            out[key] = value.pk
        else:
            out[key] = value
    return out


def audit(user, action: str, obj=None, *, patient: Patient | None = None, before=None, after=None,
          reason: str = "", model: str | None = None) -> AuditEntry:
    return AuditEntry.objects.create(
        user=user if getattr(user, "is_authenticated", False) else None,
        action=action,
        model=model or (type(obj).__name__ if obj is not None else ""),
        object_id=getattr(obj, "pk", None),
        patient=patient,
        before=before,
        after=after,
        reason=reason[:500],
    )


def _once(user, token: str | None, kind: str, create: Callable[[], Any]):
    """Run ``create`` in one transaction unless ``token`` was already used.

    Returns ``(object, created)``. A second submission with the same token (double tap,
    retry, or the same request racing itself) returns the first one's object.
    """
    if not token:
        with transaction.atomic():
            return create(), True
    seen = Submission.objects.filter(token=token[:64], user=user).first()
    if seen is not None:  # a retry of a submission that already went through
        return seen, False
    try:
        with transaction.atomic():
            submission = Submission.objects.create(token=token[:64], user=user, kind=kind)
            obj = create()
            submission.object_id = obj.pk
            submission.save(update_fields=["object_id"])
            return obj, True
    except IntegrityError:
        existing = Submission.objects.filter(token=token[:64], user=user).first()
        if existing is None:
            raise
        return existing, False


def _create_one(user, token: str | None, kind: str, model, patient: Patient, fields: dict[str, Any], *,
                reevaluate: bool = True):
    """Create one clinical record with its audit entry, once per submission token; a retry
    returns the first record. The patient's rules are re-evaluated after a new record."""

    def create():
        obj = model.objects.create(patient=patient, entered_by=user, **fields)
        audit(user, AuditEntry.Action.CREATE, obj, patient=patient, after=_snapshot(obj))
        return obj

    obj, created = _once(user, token, kind, create)
    if not created:
        return model.objects.get(pk=obj.object_id)
    if reevaluate:
        _after_change(patient)
    return obj


def _after_change(patient: Patient) -> None:
    """Re-evaluate the patient's safety rules (installed by ``speciosa.clinic.alerts``)."""
    for hook in AFTER_CHANGE_HOOKS:
        hook(patient)


AFTER_CHANGE_HOOKS: list[Callable[[Patient], None]] = []


def _require(cond: bool, message: str = "You may not change this record.") -> None:
    if not cond:
        raise PermissionError(message)


def _not_in_future(at: dt.datetime, field: str) -> None:
    if timezone.is_naive(at):
        raise ValidationError({field: "Give the time with its time zone."})
    if at > timezone.now() + CLOCK_SKEW:
        raise ValidationError({field: "This time is in the future; give the time it happened."})


# --------------------------------------------------------------------------- validation

def _optional_decimal(raw, low: int, high: int, errors: dict[str, str], field: str,
                      out_of_range: str, not_a_number: str) -> Decimal | None:
    """An optional number in ``(low, high]``; problems are added to ``errors``."""
    if raw in (None, ""):
        return None
    try:
        value = Decimal(str(raw))
        if not value.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        errors[field] = not_a_number
        return None
    if not (low < value <= high):
        errors[field] = out_of_range
    return value


def validate_dose(data: Mapping[str, Any]) -> dict[str, Any]:
    """Check one dose; returns the cleaned values including the mitragynine estimate."""
    errors: dict[str, str] = {}
    unit = data.get("unit")
    if unit not in pdoses.UNITS:
        errors["unit"] = f"Choose a unit: {', '.join(pdoses.UNITS)}."
    amount = data.get("amount")
    try:
        amount = Decimal(str(amount))
        if not amount.is_finite():
            raise InvalidOperation
    except (InvalidOperation, TypeError, ValueError):
        errors["amount"] = "Enter the amount as a number, for example 2.5."
        amount = None
    if amount is not None and amount <= 0:
        errors["amount"] = "The amount must be more than 0."
    pct = _optional_decimal(data.get("mitragynine_percent"), 0, 100, errors, "mitragynine_percent",
                            "Mitragynine % must be between 0 and 100 (as on the label).",
                            "Enter the mitragynine % as a number, for example 1.5.")
    gpc = _optional_decimal(data.get("grams_per_capsule"), 0, 5, errors, "grams_per_capsule",
                            "Grams per capsule must be between 0 and 5.",
                            "Enter grams per capsule as a number, for example 0.5.")
    taken_at = data.get("taken_at")
    if not isinstance(taken_at, dt.datetime):
        errors["taken_at"] = "Give the time the dose was taken."
    else:
        try:
            _not_in_future(taken_at, "taken_at")
        except ValidationError as exc:
            errors.update({k: v[0] for k, v in exc.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    cleaned = {
        "taken_at": taken_at,
        "amount": amount,
        "unit": unit,
        "product": (data.get("product") or "").strip()[:120],
        "mitragynine_percent": pct,
        "grams_per_capsule": gpc,
    }
    try:
        est = pdoses.to_mitragynine(pdoses.Dose(
            taken_at=taken_at, amount=float(amount), unit=unit,
            mitragynine_percent=float(pct) if pct is not None else None,
            grams_per_capsule=float(gpc) if gpc is not None else None,
            product=cleaned["product"] or None,
        ))
        cleaned["mitragynine_mg"] = est.mg
        cleaned["conversion_note"] = est.basis[:300]
    except pdoses.DoseConversionError as exc:
        # reported on the record and to the clinician, never silently guessed
        cleaned["mitragynine_mg"] = None
        cleaned["conversion_note"] = f"Not converted: {exc}"[:300]
    return cleaned


def validate_items(instrument_id: str, items: Mapping[str, Any], *, sex: str | None = None,
                   require_complete: bool = True):
    """Score with the one scorer; returns ``(instrument, items, score)``."""
    instrument = kinstruments.get_instrument(instrument_id)
    clean: dict[str, int] = {}
    errors: dict[str, str] = {}
    for key, value in items.items():
        if value in (None, ""):
            continue
        try:
            clean[key] = int(value)
            if str(value).strip() not in (str(clean[key]),):
                raise ValueError
        except (TypeError, ValueError):
            errors[key] = f"Enter a whole number for '{key}'."
    if errors:
        raise ValidationError(errors)
    try:
        result = kinstruments.score(instrument, clean, sex=sex)
    except kinstruments.InstrumentError as exc:
        raise ValidationError({exc.item or "__all__": str(exc)}) from None
    if require_complete and not result.complete:
        missing = ", ".join(result.missing)
        raise ValidationError({m: "Answer this question." for m in result.missing} |
                              {"__all__": f"Some answers are missing: {missing}."})
    return instrument, clean, result


def validate_lab(patient: Patient, data: Mapping[str, Any]) -> dict[str, Any]:
    lab_code = data.get("lab")
    try:
        lab = klabs.get_lab(lab_code)
    except (KeyError, ValueError, klabs.LabValueError):
        raise ValidationError({"lab": "Choose a test from the list."}) from None
    collected_at = data.get("collected_at")
    if not isinstance(collected_at, dt.datetime):
        raise ValidationError({"collected_at": "Give the date and time the sample was taken."})
    _not_in_future(collected_at, "collected_at")
    out: dict[str, Any] = {"lab": lab.code, "loinc": lab.loinc, "collected_at": collected_at,
                           "method": (data.get("method") or "")[:20]}
    if lab.kind == "qualitative":
        result = data.get("result")
        if result not in lab.results:
            raise ValidationError({"result": f"Choose a result: {', '.join(lab.results)}."})
        out.update(result=result, value=None, unit="", canonical_value=None,
                   canonical_unit="", flag="abnormal" if result == "positive" else "normal")
        return out
    raw_value, unit = data.get("value"), (data.get("unit") or "").strip()
    if raw_value in (None, ""):
        raise ValidationError({"value": "Enter the result value."})
    if not unit:
        raise ValidationError({"unit": f"Give the unit the laboratory reported, e.g. {lab.canonical_unit}."})
    try:
        value = Decimal(str(raw_value))
        if not value.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise ValidationError({"value": "Enter the result as a number, for example 12.5."}) from None
    if abs(value) >= Decimal("1e8") or value != value.quantize(Decimal("0.0001")):
        raise ValidationError({"value": "Enter the value with at most 8 digits before and 4 after the decimal point."})
    try:
        canonical = klabs.to_canonical(lab.code, float(value), unit)
    except klabs.LabValueError as exc:
        raise ValidationError({getattr(exc, "field", "value") or "value": str(exc)}) from None
    problem = klabs.plausibility_problem(lab.code, float(value), unit)
    if problem and not data.get("confirmed_unusual"):
        raise NeedsConfirmation({"value": problem})
    low_high = klabs.reference_range(lab.code, patient.sex) or (None, None)
    low, high = low_high
    flag = ""
    if high is not None and canonical > high:
        flag = "high"
    elif low is not None and canonical < low:
        flag = "low"
    elif low is not None or high is not None:
        flag = "normal"
    if lab.code == "prolactin":
        from speciosa.knowledge import prolactin as kprolactin

        flag = kprolactin.interpret(float(value), unit, sex=patient.sex, pregnant=patient.pregnant,
                                    breastfeeding=patient.breastfeeding).flag
    out.update(value=value, unit=unit, canonical_value=canonical, canonical_unit=lab.canonical_unit,
               reference_low=low, reference_high=high, flag=flag, result="",
               confirmed_unusual=bool(problem))
    return out


# --------------------------------------------------------------------------- writes

@dataclass
class DiaryInput:
    day: dt.date
    doses: list[Mapping[str, Any]]
    craving: int | None = None
    sows: Mapping[str, Any] | None = None
    side_effects: Iterable[str] = ()
    side_effect_other: str = ""
    substances: Iterable[str] = ()
    substance_detail: str = ""


def record_diary(user, patient: Patient, entry: DiaryInput, *, token: str | None = None) -> DiaryDay:
    """Add to the patient's diary for ``entry.day`` (one diary a day; a second one adds to it)."""
    _require(access.can_write_diary(user, patient), "Only the patient writes their diary.")
    today = timezone.localdate()
    if entry.day > today:
        raise ValidationError({"day": "You can only write a diary for today or an earlier day."})
    errors: dict[str, Any] = {}
    clean_doses = []
    for i, dose in enumerate(entry.doses):
        try:
            clean_doses.append(validate_dose(dose))
        except ValidationError as exc:
            errors.update({f"doses-{i}-{k}": v for k, v in exc.message_dict.items()})
    craving = None
    if entry.craving not in (None, ""):
        try:
            craving = validate_items("craving-nrs", {"craving": entry.craving})
        except ValidationError as exc:
            errors["craving"] = " ".join(sum(exc.message_dict.values(), []))
    sows = None
    if entry.sows and any(v not in (None, "") for v in entry.sows.values()):
        try:
            sows = validate_items("sows", entry.sows)
        except ValidationError as exc:
            errors.update({f"sows-{k}": v for k, v in exc.message_dict.items()})
    checklist = kinstruments.get_instrument("side-effects")
    codes = {i.id for i in checklist.items}
    unknown = [c for c in entry.side_effects if c not in codes]
    if unknown:
        errors["side_effects"] = f"Unknown side effect: {', '.join(unknown)}."
    bad_subst = [s for s in entry.substances if s not in SUBSTANCES]
    if bad_subst:
        errors["substances"] = f"Unknown substance: {', '.join(bad_subst)}."
    if errors:
        raise ValidationError(errors)
    side_effects = list(entry.side_effects)
    other = entry.side_effect_other.strip()[:500]
    if not (clean_doses or craving or sows or side_effects or other or list(entry.substances)):
        raise ValidationError({"__all__": "Nothing to save yet: add a dose, your craving, or how you feel."})

    now = timezone.now()
    noon = timezone.make_aware(dt.datetime.combine(entry.day, dt.time(12)))
    at = min(now, noon) if entry.day < today else now

    def create() -> DiaryDay:
        diary, created = DiaryDay.objects.select_for_update().get_or_create(
            patient=patient, day=entry.day, defaults={"created_at": now, "updated_at": now})
        if not created:
            diary.updated_at = now
            diary.save(update_fields=["updated_at"])
        common = {"patient": patient, "entered_by": user, "source": Source.PATIENT, "entered_at": now,
                  "diary": diary}
        made: list = []
        for d in clean_doses:
            made.append(Dose.objects.create(**common, **d))
        if craving:
            inst, items, score = craving
            made.append(Assessment.objects.create(
                **common, instrument=inst.id, instrument_version=inst.version, at=at, items=items,
                total=score.total, band=score.band or "", complete=score.complete, flags=list(score.flags)))
        if sows:
            inst, items, score = sows
            made.append(Assessment.objects.create(
                **common, instrument=inst.id, instrument_version=inst.version, at=at, items=items,
                total=score.total, band=score.band or "", complete=score.complete, flags=list(score.flags)))
        if side_effects or other:
            items = {c: (1 if c in side_effects else 0) for c in sorted(codes)}
            score = kinstruments.score(checklist, items)
            made.append(Assessment.objects.create(
                **common, instrument=checklist.id, instrument_version=checklist.version, at=at,
                items=items, total=score.total, band=score.band or "", complete=score.complete,
                flags=list(score.flags), note=other))
        for name in entry.substances:
            made.append(SubstanceUse.objects.create(
                **common, at=at, name=name, detail=entry.substance_detail.strip()[:200]))
        for obj in made:
            audit(user, AuditEntry.Action.CREATE, obj, patient=patient, after=_snapshot(obj))
        return diary

    diary, created = _once(user, token, "diary", create)
    if not created:
        diary = DiaryDay.objects.get(pk=diary.object_id)
    else:
        _after_change(patient)
    return diary


def record_assessment(user, patient: Patient, instrument_id: str, items: Mapping[str, Any], *,
                      at: dt.datetime | None = None, note: str = "", token: str | None = None,
                      source: str = Source.CLINICIAN) -> Assessment:
    try:
        instrument = kinstruments.get_instrument(instrument_id)
    except kinstruments.InstrumentError as exc:
        raise ValidationError({"instrument": str(exc)}) from None
    if instrument.completed_by == "clinician" or source == Source.CLINICIAN:
        _require(access.can_write_clinical(user, patient))
    else:
        _require(access.can_write_diary(user, patient))
    at = at or timezone.now()
    _not_in_future(at, "at")
    inst, clean, score = validate_items(instrument_id, items, sex=patient.sex)

    return _create_one(user, token, "assessment", Assessment, patient, {
        "source": source, "instrument": inst.id, "instrument_version": inst.version, "at": at,
        "items": clean, "total": score.total, "band": score.band or "", "complete": score.complete,
        "flags": list(score.flags), "note": note[:500]})


def record_lab(user, patient: Patient, data: Mapping[str, Any], *, token: str | None = None,
               source: str = Source.CLINICIAN) -> LabResult:
    _require(access.can_write_clinical(user, patient))
    clean = validate_lab(patient, data)

    return _create_one(user, token, "lab", LabResult, patient, {"source": source, **clean})


def record_note(user, patient: Patient, text: str, *, token: str | None = None) -> Note:
    _require(access.can_write_clinical(user, patient))
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": "Write the note before saving."})
    if len(text) > 5000:
        raise ValidationError({"text": "A note can be at most 5,000 characters."})

    # a note changes no safety finding, so the rules are not re-evaluated
    return _create_one(user, token, "note", Note, patient, {"source": Source.CLINICIAN, "text": text},
                       reevaluate=False)


CORRECTABLE = {"dose": Dose, "assessment": Assessment, "lab": LabResult, "note": Note}


def correct_record(user, record, changes: Mapping[str, Any], reason: str, *, token: str | None = None):
    """Replace ``record`` with a corrected copy; the earlier version stays in its history."""
    patient = record.patient
    _require(access.can_write_clinical(user, patient))
    if token:
        seen = Submission.objects.filter(token=token[:64], user=user).first()
        if seen is not None and seen.object_id:
            return type(record).objects.get(pk=seen.object_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why this entry is being corrected."})
    if record.superseded or record.retracted:
        raise ValidationError({"__all__": "This entry was already corrected; correct the current version."})
    before = _snapshot(record)
    if isinstance(record, Dose):
        merged = {k: getattr(record, k) for k in
                  ("taken_at", "amount", "unit", "product", "mitragynine_percent", "grams_per_capsule")}
        merged.update(changes)
        fields = validate_dose(merged)
    elif isinstance(record, Assessment):
        items = dict(record.items)
        items.update(changes.get("items", {}))
        inst, clean, score = validate_items(record.instrument, items, sex=patient.sex)
        fields = {"instrument": inst.id, "instrument_version": inst.version, "at": changes.get("at", record.at),
                  "items": clean, "total": score.total, "band": score.band or "", "complete": score.complete,
                  "flags": list(score.flags), "note": changes.get("note", record.note), "diary": record.diary}
    elif isinstance(record, LabResult):
        merged = {"lab": record.lab, "collected_at": record.collected_at, "value": record.value,
                  "unit": record.unit, "result": record.result, "method": record.method,
                  "confirmed_unusual": record.confirmed_unusual}
        merged.update(changes)
        fields = validate_lab(patient, merged)
    elif isinstance(record, Note):
        text = (changes.get("text") or "").strip()
        if not text:
            raise ValidationError({"text": "Write the corrected note."})
        fields = {"text": text, "at": record.at}
    else:  # pragma: no cover - guarded by CORRECTABLE
        raise TypeError(type(record))
    model = type(record)

    def create():
        locked = model.objects.select_for_update().get(pk=record.pk)
        if locked.superseded or locked.retracted:
            raise ValidationError({"__all__": "This entry was already corrected."})
        locked.superseded = True
        locked.save(update_fields=["superseded"])
        extra = {"diary": locked.diary} if hasattr(locked, "diary") and "diary" not in fields else {}
        new = model.objects.create(patient=patient, entered_by=user, source=Source.CLINICIAN,
                                   replaces=locked, change_reason=reason[:500], **fields, **extra)
        audit(user, AuditEntry.Action.CORRECT, new, patient=patient, before=before,
              after=_snapshot(new), reason=reason)
        return new

    new, created = _once(user, token, "correction", create)
    if not created:
        return model.objects.get(pk=new.object_id)
    _after_change(patient)
    return new


def retract_record(user, record, reason: str, *, token: str | None = None):
    """Withdraw an entry made in error; it stays in the history, marked retracted.

    Withdrawing an entry that is already withdrawn changes nothing; a version that was
    replaced by a correction cannot be withdrawn (withdraw the current version)."""
    patient = record.patient
    _require(access.can_write_clinical(user, patient))
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why this entry is being withdrawn."})
    model = type(record)

    def create():
        locked = model.objects.select_for_update().get(pk=record.pk)
        if locked.superseded:
            raise ValidationError({"__all__": "This version was replaced by a correction; withdraw the current version."})
        if locked.retracted:
            return locked
        before = _snapshot(locked)
        model.objects.filter(pk=locked.pk).update(retracted=True, change_reason=reason[:500])
        locked.refresh_from_db()
        audit(user, AuditEntry.Action.RETRACT, locked, patient=patient, before=before,
              after=_snapshot(locked), reason=reason)
        return locked

    obj, created = _once(user, token, "retraction", create)
    if not created:
        return model.objects.get(pk=obj.object_id)
    record.refresh_from_db()
    _after_change(patient)
    return record


def record_view(user, patient: Patient, what: str = "record") -> None:
    """Opening a patient's record is audited."""
    audit(user, AuditEntry.Action.VIEW, None, patient=patient, model=what)
