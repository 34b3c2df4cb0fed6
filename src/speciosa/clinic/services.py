"""Writes: every change to clinical data goes through here.

Each public function checks access with :mod:`speciosa.clinic.access` (refusal:
:class:`~speciosa.clinic.writes.AccessDenied`), validates with :mod:`speciosa.knowledge` /
:mod:`speciosa.pharmacology`, and stores through the write kernel :mod:`speciosa.clinic.writes`:
one transaction together with its audit entry, idempotent for a given submission token (a
double tap or a network retry stores one record), then the after-change hooks (the patient's
safety rules are re-evaluated; see :func:`speciosa.clinic.writes.after_change`).

Validation problems raise :class:`django.core.exceptions.ValidationError` with a message per
field that says what to fix (an :class:`~speciosa.clinic.writes.Invalid` with structured
locations when the submission has parts, like a diary's doses); nothing is saved then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, pgettext

from speciosa.knowledge import instruments as kinstruments
from speciosa.knowledge import labs as klabs
from speciosa.pharmacology import doses as pdoses

from . import access, integrity, pregnancy, records, writes
from .models import (
    Assessment,
    AuditEntry,
    Consent,
    DiaryDay,
    Dose,
    LabResult,
    Medication,
    Note,
    Patient,
    Role,
    Source,
    SubstanceUse,
    TreatmentEpisode,
)
from .numbers import COMMA_DECIMAL, finite_decimal, has_comma, local_number
from .writes import CLOCK_SKEW, audit  # noqa: F401 - part of this module's public interface

SUBSTANCES = {
    "alcohol": gettext_lazy("Alcohol"),
    "benzodiazepines": gettext_lazy("Benzodiazepines (e.g. diazepam, alprazolam)"),
    "opioids": gettext_lazy("Other opioids (heroin, pills, fentanyl)"),
    "gabapentinoids": gettext_lazy("Gabapentin or pregabalin"),
    "cannabis": gettext_lazy("Cannabis"),
    "stimulants": gettext_lazy("Stimulants (cocaine, methamphetamine)"),
    "other": gettext_lazy("Something else"),
}


class NeedsConfirmation(ValidationError):
    """A value beyond the plausibility limits: correct it, or confirm it is right."""


class DosesNeedConfirmation(NeedsConfirmation, writes.Invalid):
    """Doses of a diary entry to confirm, each question where it belongs
    (``("doses", 1, "amount")``): resend them with ``confirmed_unusual``."""


# --------------------------------------------------------------------------- validation



def _optional_decimal(raw, low: int, high: int, errors: dict[str, str], field: str,
                      out_of_range: str, not_a_number: str) -> Decimal | None:
    """An optional number in ``(low, high]``; problems are added to ``errors``."""
    if raw in (None, ""):
        return None
    if has_comma(raw):
        errors[field] = COMMA_DECIMAL
        return None
    value = finite_decimal(raw)
    if value is None:
        errors[field] = not_a_number
        return None
    if not (low < value <= high):
        errors[field] = out_of_range
    return value


def validate_dose(data: Mapping[str, Any], patient: Patient | None = None) -> dict[str, Any]:
    """Check one dose; returns the cleaned values including the mitragynine estimate.

    With ``patient``, the time must be within the patient's plausible window
    (:func:`speciosa.clinic.writes.in_window`); without, only not in the future."""
    errors: dict[str, str] = {}
    unit = data.get("unit")
    if unit not in pdoses.UNITS:
        errors["unit"] = gettext("Choose a unit: %(units)s.") % {"units": ", ".join(pdoses.UNITS)}
    amount = data.get("amount")
    if has_comma(amount):
        errors["amount"] = COMMA_DECIMAL
        amount = None
    elif (amount := finite_decimal(amount)) is None:
        errors["amount"] = gettext("Enter the amount as a number, for example 2.5.")
    if amount is not None and amount <= 0:
        errors["amount"] = gettext("The amount must be more than 0.")
    pct = _optional_decimal(data.get("mitragynine_percent"), 0, 100, errors, "mitragynine_percent",
                            gettext("Mitragynine % must be between 0 and 100 (as on the label)."),
                            gettext("Enter the mitragynine % as a number, for example 1.5."))
    gpc = _optional_decimal(data.get("grams_per_capsule"), 0, 5, errors, "grams_per_capsule",
                            gettext("Grams per capsule must be between 0 and 5."),
                            gettext("Enter grams per capsule as a number, for example 0.5."))
    taken_at = data.get("taken_at")
    if not isinstance(taken_at, dt.datetime):
        errors["taken_at"] = gettext("Give the time the dose was taken.")
    else:
        try:
            if patient is not None:
                writes.in_window(patient, taken_at, "taken_at")
            else:
                writes.not_in_future(taken_at, "taken_at")
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


def plausible_limit(unit: str) -> tuple[float | None, str]:
    """The per-dose plausibility limit of ``unit`` and why it is where it is: the clinic's
    setting ``DOSE_PLAUSIBLE_MAX`` if it sets one, else
    :data:`speciosa.pharmacology.doses.PLAUSIBLE_PER_DOSE` (with its citations)."""
    own = getattr(settings, "DOSE_PLAUSIBLE_MAX", {}) or {}
    if unit in own:
        return own[unit], "a limit this clinic set (SPECIOSA_DOSE_PLAUSIBLE_MAX)"
    limit = pdoses.PLAUSIBLE_PER_DOSE.get(unit)
    if limit is None:
        return None, ""
    return limit.amount, limit.reason


UNIT_WORDS = {"g": gettext_lazy("g of leaf"), "capsule": gettext_lazy("capsules"),
              "glass": gettext_lazy("glasses"), "mg_extract": gettext_lazy("mg of extract"),
              "mg_mitragynine": gettext_lazy("mg of mitragynine"), "mg_7oh": gettext_lazy("mg of 7-OH")}


def _num(value) -> str:
    """A number for a message, with the decimal separator of its language ("1,5" in Spanish)."""
    from django.utils import formats

    text = f"{Decimal(str(value)):f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return text.replace(".", formats.get_format("DECIMAL_SEPARATOR"))


def dose_questions(clean: Mapping[str, Any], same_day: Iterable[Any] = ()) -> dict[str, str]:
    """What to confirm about one validated dose before it is stored, by field ("" when
    nothing): an amount above the plausibility limit (:func:`plausible_limit`), a capsule dose
    without grams per capsule (it would be left out of the exposure estimate), the same time,
    amount and unit as a dose already on that day (``same_day``: doses or cleaned dicts)."""
    questions: dict[str, str] = {}
    amount, unit = clean["amount"], clean["unit"]
    limit, reason = plausible_limit(unit)
    if limit is not None and amount > Decimal(str(limit)):
        questions["amount"] = gettext(
            "%(amount)s %(unit)s in one dose is far above what people report. Check the amount "
            "and the unit; if it is right, confirm it and save again. (Asked above %(limit)s: "
            "%(reason)s.)") % {"amount": _num(amount), "unit": UNIT_WORDS.get(unit, unit),
                               "limit": f"{limit:g}", "reason": reason}
    if unit == "capsule" and clean.get("grams_per_capsule") is None:
        questions["grams_per_capsule"] = gettext(
            "How many grams are in one capsule? It is on the label. Without it this dose cannot be "
            "counted in the exposure estimate. If you do not know, confirm to save it without.")
    for other in same_day:
        get = other.get if isinstance(other, Mapping) else (lambda k, o=other: getattr(o, k))
        if (get("taken_at") == clean["taken_at"] and get("unit") == unit
                and Decimal(str(get("amount"))) == amount):
            # the time as it was entered (in the zone the page or the app read it in), not the
            # clinic's clock: a phone in another zone typed 09:00, not 19:00
            local = clean["taken_at"]
            questions["__all__"] = gettext(
                "This day already has a dose at %(time)s of %(amount)s %(unit)s. To change that "
                "one, correct it; if you took it twice, confirm and save again.") % {
                    "time": f"{local:%H:%M}", "amount": _num(amount),
                    "unit": UNIT_WORDS.get(unit, unit)}
            break
    return questions


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
            errors[key] = gettext("Enter a whole number for '%(item)s'.") % {"item": key}
    if errors:
        raise ValidationError(errors)
    try:
        result = kinstruments.score(instrument, clean, sex=sex)
    except kinstruments.InstrumentError as exc:
        raise ValidationError({exc.item or "__all__": str(exc)}) from None
    if require_complete and not result.complete:
        missing = ", ".join(result.missing)
        raise ValidationError({m: gettext("Answer this question.") for m in result.missing} |
                              {"__all__": gettext("Some answers are missing: %(items)s.") % {
                                  "items": missing}})
    return instrument, clean, result


#: A qualitative hCG (pregnancy test): its results and LOINC (urine, instruments.md).
HCG_RESULTS = ("positive", "negative")
HCG_QUALITATIVE_LOINC = "2106-3"


def validate_lab(patient: Patient, data: Mapping[str, Any]) -> dict[str, Any]:
    lab_code = data.get("lab")
    try:
        lab = klabs.get_lab(lab_code)
    except (KeyError, ValueError, klabs.LabValueError):
        raise ValidationError({"lab": gettext("Choose a test from the list.")}) from None
    collected_at = data.get("collected_at")
    if not isinstance(collected_at, dt.datetime):
        raise ValidationError({"collected_at": gettext(
            "Give the date and time the sample was taken.")})
    writes.in_window(patient, collected_at, "collected_at")
    out: dict[str, Any] = {"lab": lab.code, "loinc": lab.loinc or "", "collected_at": collected_at,
                           "method": (data.get("method") or "")[:20]}
    if lab.kind == "qualitative":
        result = data.get("result")
        if result not in lab.results:
            raise ValidationError({"result": gettext("Choose a result: %(results)s.") % {
                "results": ", ".join(lab.results)}})
        out.update(result=result, value=None, unit="", canonical_value=None,
                   canonical_unit="", flag="abnormal" if result == "positive" else "normal")
        return out
    raw_value, unit = data.get("value"), (data.get("unit") or "").strip()
    if lab.code == "hcg" and raw_value in (None, "") and data.get("result") not in (None, ""):
        # a pregnancy test read as positive or negative (urine hCG, LOINC 2106-3, SOURCED in
        # instruments.md): the rules and the prolactin samples' states read it
        result = str(data.get("result")).strip().lower()
        if result not in HCG_RESULTS:
            raise ValidationError({"result": gettext(
                "A pregnancy test (hCG) is positive or negative; or give the value with its "
                "unit.")})
        out.update(result=result, value=None, unit="", canonical_value=None, canonical_unit="",
                   loinc=HCG_QUALITATIVE_LOINC, flag="")
        return out
    if raw_value in (None, ""):
        raise ValidationError({"value": gettext("Enter the result value.")})
    if not unit:
        raise ValidationError({"unit": gettext(
            "Give the unit the laboratory reported, e.g. %(unit)s.") % {
                "unit": lab.canonical_unit}})
    if has_comma(raw_value):
        raise ValidationError({"value": COMMA_DECIMAL})
    value = finite_decimal(raw_value)
    if value is None:
        raise ValidationError({"value": gettext(
            "Enter the result as a number, for example 12.5.")})
    if abs(value) >= Decimal("1e8") or value != value.quantize(Decimal("0.0001")):
        raise ValidationError({"value": gettext(
            "Enter the value with at most 8 digits before and 4 after the decimal point.")})
    comparator = str(data.get("comparator") or "").strip()
    if comparator and comparator not in klabs.COMPARATORS:
        raise ValidationError({"comparator": gettext("Choose <, <=, >= or >, or leave it empty.")})
    iu_factor = _iu_factor(lab, data.get("iu_factor"))
    try:
        unit = klabs.normalise_unit(lab.code, unit)
        canonical = klabs.to_canonical(lab.code, value, unit, iu_factor=iu_factor)
    except klabs.LabValueError as exc:
        raise ValidationError({getattr(exc, "field", "value") or "value": str(exc)}) from None
    # the Decimal as entered, not a float: at a limit in another unit is at the limit
    problem = klabs.plausibility_problem(lab.code, value, unit, iu_factor=iu_factor)
    if problem and not data.get("confirmed_unusual"):
        raise NeedsConfirmation({"value": problem})
    laboratory = _laboratory_range(lab, data, unit, iu_factor)
    range_problem = _range_problem(lab, laboratory, patient.sex)
    if range_problem and not data.get("confirmed_unusual"):
        raise NeedsConfirmation(dict([range_problem]))
    problem = problem or (range_problem[1] if range_problem else None)
    if laboratory is not None:
        (low, high), source = laboratory, LabResult.RangeSource.LABORATORY
    else:
        low, high = klabs.reference_range(lab.code, patient.sex) or (None, None)
        source = LabResult.RangeSource.CATALOGUE if (low, high) != (None, None) else ""
    state = pregnancy.state_at(patient, collected_at) if lab.code == "prolactin" else pregnancy.NONE
    # a side the laboratory left open is the catalogue's, as the rules read it (the flag of
    # ALT 300 U/L against "7-" is high against the catalogue's 45, not 'normal')
    catalogue = klabs.reference_range(lab.code, patient.sex) or (None, None)
    flag_range = (catalogue[0] if low is None else low, catalogue[1] if high is None else high)
    flag = lab_flag(lab.code, value, unit, canonical, flag_range, sex=patient.sex,
                    pregnant=patient.pregnant, breastfeeding=patient.breastfeeding,
                    comparator=comparator, iu_factor=iu_factor,
                    laboratory_range=laboratory is not None, sample_state=state.state)
    reported = data.get("reported_interpretation") or []
    if not isinstance(reported, list):
        raise ValidationError({"reported_interpretation": gettext(
            "Give the laboratory's interpretation as a list of coded concepts.")})
    out.update(value=value, unit=unit, canonical_value=canonical, canonical_unit=lab.canonical_unit,
               loinc=klabs.loinc_for(lab.code, unit) or "", comparator=comparator,
               iu_factor=iu_factor, reference_low=low, reference_high=high,
               reference_source=source, reported_interpretation=reported, flag=flag,
               result="", confirmed_unusual=bool(problem), sample_state=state.state,
               sample_state_basis=state.basis, sample_state_note=state.note[:200])
    return out


#: Accepted prolactin assay factors (mIU/L per ng/mL): a check against typing errors only,
#: not a clinical range. The catalogue's default, 21.2 (WHO 3rd IS 84/500), is UNCONFIRMED
#: and assay-specific (instruments.md 7.2, pharmacology.md 6.2).
IU_FACTOR_ACCEPTED = (10.0, 60.0)


def _iu_factor(lab: klabs.LabTest, raw: Any) -> float | None:
    """The laboratory's stated mIU/L per ng/mL factor (prolactin only), or None."""
    if raw in (None, ""):
        return None
    if has_comma(raw):
        raise ValidationError({"iu_factor": COMMA_DECIMAL})
    if lab.code != "prolactin":
        raise ValidationError({"iu_factor": gettext(
            "Only a prolactin result takes an assay factor (mIU/L per ng/mL); leave it empty.")})
    try:
        factor = float(Decimal(str(raw)))
    except (InvalidOperation, ValueError):
        raise ValidationError({"iu_factor": gettext(
            "Enter the factor as a number, e.g. %(example)s.") % {
                "example": local_number("21.2")}}) from None
    lo, hi = IU_FACTOR_ACCEPTED
    if not lo <= factor <= hi:
        raise ValidationError({"iu_factor": gettext(
            "Enter the mIU/L per ng/mL factor the laboratory states, between %(low)s and "
            "%(high)s (the catalogue uses %(default)s, the WHO 3rd IS 84/500 factor).") % {
                "low": local_number(f"{lo:g}"), "high": local_number(f"{hi:g}"),
                "default": local_number("21.2")}})
    return factor


def _laboratory_range(lab: klabs.LabTest, data: Mapping[str, Any], unit: str,
                      iu_factor: float | None) -> tuple[float | None, float | None] | None:
    """The reporting laboratory's range in the canonical unit, or None when none was given.

    The range may be in another accepted unit than the value (``reference_unit``; default
    the value's unit): it is converted with the same factor as the value.
    """
    raw = {k: data.get(k) for k in ("reference_low", "reference_high")}
    if all(v in (None, "") for v in raw.values()):
        return None
    ref_unit = str(data.get("reference_unit") or "").strip() or unit
    try:
        ref_unit = klabs.normalise_unit(lab.code, ref_unit)
    except klabs.LabValueError as exc:
        raise ValidationError({"reference_unit": str(exc)}) from None
    out: dict[str, float | None] = {}
    for key, value in raw.items():
        if value in (None, ""):
            out[key] = None
            continue
        if has_comma(value):
            raise ValidationError({key: COMMA_DECIMAL})
        number = finite_decimal(value)
        if number is None:
            raise ValidationError({key: gettext("Enter the limit as a number, for example 45.")})
        if number < 0:
            raise ValidationError({key: gettext(
                "A reference limit cannot be negative; check the range.")})
        out[key] = klabs.to_canonical(lab.code, number, ref_unit, iu_factor=iu_factor)
    low, high = out["reference_low"], out["reference_high"]
    if low is not None and high is not None and low > high:
        raise ValidationError({"reference_high": gettext(
            "The upper limit is below the lower limit; check the laboratory's range.")})
    return low, high


#: A laboratory's upper limit more than this many times the catalogue's (or below its
#: inverse) is asked to be confirmed: a check against typing errors (450 typed for 45),
#: not a clinical range; laboratories' ranges differ far less than that.
RANGE_TYPO_FACTOR = 3


def _range_problem(lab: klabs.LabTest, laboratory: tuple[float | None, float | None] | None,
                   sex: str) -> tuple[str, str] | None:
    """(field, why) the laboratory's range should be checked or confirmed before it is stored
    (the flag and every rule read it), or None: an upper limit beyond the plausibility limit
    or more than RANGE_TYPO_FACTOR times from the catalogue's for the patient's sex; a lower
    limit alone at or above the catalogue's upper limit (the upper limit typed in the low
    box)."""
    if laboratory is None:
        return None
    low, high = laboratory
    catalogue = klabs.reference_range(lab.code, sex) if sex in klabs.SEXES else None
    usual = catalogue[1] if catalogue else None

    def text(rng) -> str:
        a, b = (("" if x is None else local_number(f"{x:g}")) for x in rng)
        return f"{a}–{b} {klabs.unit_display(lab.canonical_unit)}"

    sexes = {"male": pgettext("the catalogue's range for ...", "males"),
             "female": pgettext("the catalogue's range for ...", "females")}
    if high is None:
        if low is not None and usual is not None and low >= usual:
            return ("reference_low", gettext(
                "The laboratory's range %(range)s has a lower limit at or above the catalogue's "
                "upper limit (%(catalogue)s for %(sex)s): was the upper limit typed as the lower "
                "one? Check the range and its unit (it decides the flag and every rule), or "
                "confirm it.") % {"range": text(laboratory), "catalogue": text(catalogue),
                                  "sex": sexes.get(sex, sex)})
        return None
    far = usual is not None and usual > 0 and not (
        usual / RANGE_TYPO_FACTOR <= high <= usual * RANGE_TYPO_FACTOR)
    implausible = lab.plausible_high is not None and high > lab.plausible_high
    if not (far or implausible):
        return None
    if far:
        return ("reference_high", gettext(
            "The laboratory's range %(range)s is far from the catalogue's %(catalogue)s for "
            "%(sex)s; check the range and its unit (it decides the flag and every rule), or "
            "confirm it.") % {"range": text(laboratory), "catalogue": text(catalogue),
                              "sex": sexes.get(sex, sex)})
    return ("reference_high", gettext(
        "The laboratory's range %(range)s is above the plausible limit of %(limit)s %(unit)s; "
        "check the range and its unit (it decides the flag and every rule), or confirm it.") % {
            "range": text(laboratory), "limit": local_number(f"{lab.plausible_high:g}"),
            "unit": klabs.unit_display(lab.canonical_unit)})


def lab_flag(code: str, value: float | Decimal, unit: str, canonical_value: float,
             reference: tuple[float | None, float | None], *, sex: str, pregnant: bool = False,
             breastfeeding: bool = False, comparator: str = "", iu_factor: float | None = None,
             laboratory_range: bool = False, sample_state: str | None = None) -> str:
    """The stored flag of a quantitative result: prolactin's from its interpretation
    (:func:`speciosa.knowledge.prolactin.interpret`: pregnancy, breastfeeding and the size of
    the rise matter; the laboratory's range when there is one), any other test's from its
    reference range (:func:`speciosa.knowledge.labs.flag_against`); a value reported as a
    bound (``<5``) only when the bound settles it; ``""`` without a range or when undetermined,
    and for a prolactin in pregnancy or breastfeeding (the non-pregnant range does not apply;
    prolactin has no critical flag). ``sample_state`` is the prolactin sample's own state
    (:mod:`speciosa.clinic.pregnancy`): taken in pregnancy, while breastfeeding, after a
    positive hCG, or possibly in pregnancy, it is not flagged either. When it is given the
    state at the sample decides, not the patient's status today; ``pregnant`` and
    ``breastfeeding`` still reach the interpretation for a male patient (a contradiction
    in the record it names).
    """
    has_range = reference != (None, None)
    from speciosa.knowledge import prolactin as kprolactin

    if code == "prolactin" and sex != "male" and sample_state is not None:
        if sample_state in pregnancy.PAUSED:
            return ""
        pregnant = breastfeeding = False  # the sample's state decides, not today's status
    if code == "prolactin" and kprolactin.physiological(sex, pregnant, breastfeeding):
        return ""
    if code == "prolactin" and not comparator:

        own = reference if laboratory_range else None
        return kprolactin.interpret(value, unit, sex=sex, pregnant=pregnant,
                                    breastfeeding=breastfeeding, reference=own,
                                    iu_factor=iu_factor).flag
    return klabs.flag_against(canonical_value, reference if has_range else None,
                              comparator or None) or ""


def prolactin_flag(patient: Patient, record: LabResult) -> str:
    """The flag of a stored prolactin result, read again with its current ``sample_state``
    (:func:`speciosa.clinic.pregnancy.restate_samples`)."""
    if record.value is None:
        return record.flag
    reference = (record.reference_low, record.reference_high)
    return lab_flag(record.lab, record.value, record.unit, record.canonical_value, reference,
                    sex=patient.sex, pregnant=patient.pregnant,
                    breastfeeding=patient.breastfeeding, comparator=record.comparator,
                    iu_factor=record.iu_factor,
                    laboratory_range=record.reference_source == LabResult.RangeSource.LABORATORY,
                    sample_state=record.sample_state)


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


def record_diary(user, patient: Patient, entry: DiaryInput, *,
                 token: writes.SubmissionKey | str | None = None) -> DiaryDay:
    """Add to the patient's diary for ``entry.day`` (one diary a day; a second one adds to it)."""
    writes.require(access.can_write_diary(user, patient), "Only the patient writes their diary.")
    earlier = writes.replayed(user, token, model=DiaryDay, kind="diary", patient=patient)
    if earlier is not None:  # a retry: answered before its doses are taken for repeats of themselves
        return earlier
    today = timezone.localdate()
    if entry.day > today:
        raise ValidationError({"day": "You can only write a diary for today or an earlier day."})
    writes.in_window(patient, entry.day, "day")
    # Each message is placed where it belongs: ("doses", 2, "amount"), ("sows", "nausea"), ...
    errors: dict[writes.Location, Any] = {}
    clean_doses = []
    for i, dose in enumerate(entry.doses):
        try:
            clean = validate_dose(dose, patient)
            if not on_day(entry.day, clean["taken_at"]):
                raise ValidationError({"taken_at": (
                    f"A dose of the diary of {entry.day:%-d %B %Y} is taken on that day: give a "
                    "time on that day, or send the dose with the diary of the day it was taken.")})
            clean_doses.append(clean)
        except ValidationError as exc:
            errors.update(writes.Invalid.under(("doses", i), exc))
    craving = None
    if entry.craving not in (None, ""):
        try:
            craving = validate_items("craving-nrs", {"craving": entry.craving})
        except ValidationError as exc:
            errors[("craving",)] = " ".join(sum(exc.message_dict.values(), []))
    sows = None
    if entry.sows and any(v not in (None, "") for v in entry.sows.values()):
        try:
            sows = validate_items("sows", entry.sows)
        except ValidationError as exc:
            errors.update(writes.Invalid.under(("sows",), exc))
    checklist = kinstruments.get_instrument("side-effects")
    codes = {i.id for i in checklist.items}
    unknown = [c for c in entry.side_effects if c not in codes]
    if unknown:
        errors[("side_effects",)] = f"Unknown side effect: {', '.join(unknown)}."
    bad_subst = [s for s in entry.substances if s not in SUBSTANCES]
    if bad_subst:
        errors[("substances",)] = f"Unknown substance: {', '.join(bad_subst)}."
    if errors:
        raise writes.Invalid(errors)
    # plausibility, capsules without grams per capsule, doses the day already has: asked, not
    # refused (a confirmed dose is stored with confirmed_unusual)
    already = list(Dose.objects.current().filter(patient=patient, diary__day=entry.day))
    questions: dict[writes.Location, str] = {}
    for i, (raw, clean) in enumerate(zip(entry.doses, clean_doses, strict=True)):
        asked = dose_questions(clean, [*already, *clean_doses[:i]])
        if asked and not raw.get("confirmed_unusual"):
            questions.update({("doses", i, field): message for field, message in asked.items()})
        clean["confirmed_unusual"] = bool(asked)
    if questions:
        # the same submission sent twice at once: the first one committed while this one was
        # validating, and its doses are what made these questions: answer with its record
        earlier = writes.replayed(user, token, model=DiaryDay, kind="diary", patient=patient)
        if earlier is not None:
            return earlier
        raise DosesNeedConfirmation(questions)
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
        for scored in (craving, sows):
            if scored:
                made.append(Assessment.objects.create(**common, at=at, **writes.assessment_fields(*scored)))
        if side_effects or other:
            items = {c: (1 if c in side_effects else 0) for c in sorted(codes)}
            made.append(Assessment.objects.create(
                **common, at=at, note=other,
                **writes.assessment_fields(checklist, items, kinstruments.score(checklist, items))))
        for name in entry.substances:
            made.append(SubstanceUse.objects.create(
                **common, at=at, name=name, detail=entry.substance_detail.strip()[:200]))
        for obj in made:
            audit(user, AuditEntry.Action.CREATE, obj, patient=patient, after=writes.snapshot(obj))
        return diary

    diary, created = writes.once(user, token, "diary", create, model=DiaryDay, patient=patient)
    if created:
        writes.after_change(patient)
    return diary


def record_assessment(user, patient: Patient, instrument_id: str, items: Mapping[str, Any], *,
                      at: dt.datetime | None = None, note: str = "", token: str | None = None,
                      source: str = Source.CLINICIAN) -> Assessment:
    try:
        instrument = kinstruments.get_instrument(instrument_id)
    except kinstruments.InstrumentError as exc:
        raise ValidationError({"instrument": str(exc)}) from None
    if instrument.completed_by == "clinician" or source == Source.CLINICIAN:
        writes.require(access.can_write_clinical(user, patient))
    else:
        writes.require(access.can_write_diary(user, patient))
    at = at or timezone.now()
    writes.in_window(patient, at, "at")
    scored = validate_items(instrument_id, items, sex=patient.sex)

    return writes.create_record(user, token, "assessment", Assessment, patient, {
        "source": source, "at": at, "note": note[:500], **writes.assessment_fields(*scored)})


def record_lab(user, patient: Patient, data: Mapping[str, Any], *, token: str | None = None,
               source: str = Source.CLINICIAN) -> LabResult:
    writes.require(access.can_write_clinical(user, patient))
    clean = validate_lab(patient, data)

    return writes.create_record(user, token, "lab", LabResult, patient, {"source": source, **clean})


def record_note(user, patient: Patient, text: str, *, token: str | None = None) -> Note:
    writes.require(access.can_write_clinical(user, patient))
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": "Write the note before saving."})
    if len(text) > 5000:
        raise ValidationError({"text": "A note can be at most 5,000 characters."})

    # a note changes no safety finding, so the rules are not re-evaluated
    return writes.create_record(user, token, "note", Note, patient, {"source": Source.CLINICIAN, "text": text},
                                reevaluate=False)


#: The kinds of record that can be corrected, by name (see :mod:`speciosa.clinic.records`).
CORRECTABLE = {name: kind.model for name, kind in records.KINDS.items()}


def correct_record(user, record, changes: Mapping[str, Any], reason: str, *, token: str | None = None):
    """Replace ``record`` with a corrected copy; the earlier version stays in its history."""
    patient = record.patient
    by_patient = _require_may_change(user, record)
    earlier = writes.replayed(user, token, model=type(record), kind="correction", patient=patient)
    if earlier is not None:  # a retry: answered before validating again (the record is superseded now)
        return earlier
    if by_patient:
        _require_in_correction_window(record)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why this entry is being corrected."})
    if record.superseded or record.retracted:
        raise ValidationError({"__all__": "This entry was already corrected; correct the current version."})
    kind = records.kind_of(record)
    if kind is None:
        raise TypeError(f"a {type(record).__name__} cannot be corrected")
    records.check_changes(kind, changes)
    before = writes.snapshot(record)
    if isinstance(record, Dose):
        merged = {k: getattr(record, k) for k in kind.correctable}
        merged.update(changes)
        merged.pop("confirmed_unusual", None)
        # an earlier confirmation holds while what it confirmed stays as it was
        confirmed = bool(changes.get("confirmed_unusual")) or (
            record.confirmed_unusual and not {"amount", "unit", "grams_per_capsule", "taken_at"} & set(changes))
        fields = validate_dose(merged, patient)
        if by_patient:
            _require_on_diary_day(record, fields["taken_at"])
        asked = dose_questions(fields, Dose.objects.current().filter(
            patient=patient, diary=record.diary).exclude(pk=record.pk) if record.diary_id else ())
        if asked and not confirmed:
            raise NeedsConfirmation(asked)
        fields["confirmed_unusual"] = bool(asked)
    elif isinstance(record, Assessment):
        items = dict(record.items)
        items.update(changes.get("items", {}))
        scored = validate_items(record.instrument, items, sex=patient.sex)
        if "at" in changes:
            writes.in_window(patient, changes["at"], "at")
        fields = {"at": changes.get("at", record.at), "note": changes.get("note", record.note),
                  "diary": record.diary, **writes.assessment_fields(*scored)}
    elif isinstance(record, LabResult):
        merged = {"lab": record.lab, **{k: getattr(record, k) for k in kind.correctable
                                        if not k.startswith("reference_")},
                  "iu_factor": record.iu_factor,
                  "reported_interpretation": record.reported_interpretation}
        range_again = any(k in changes for k in ("reference_low", "reference_high"))
        if record.reference_source == LabResult.RangeSource.LABORATORY and not range_again:
            _range_stays_with_unit(record, changes)
            # the laboratory's range stays with the result (stored in the canonical unit)
            merged.update(reference_low=record.reference_low, reference_high=record.reference_high,
                          reference_unit=record.canonical_unit)
        merged.update(changes)
        fields = validate_lab(patient, merged)
    elif isinstance(record, Medication):
        from . import medications

        merged = {k: getattr(record, k) for k in kind.correctable}
        merged.update(start=record.start_at or record.start, end=record.end_at or record.end)
        merged.update(changes)
        fields = medications.validate_medication(patient, merged, exclude=(record.pk,))
        fields.update(source=record.source, follows=record.follows,
                      confirmed_by=record.confirmed_by, confirmed_at=record.confirmed_at)
    elif isinstance(record, TreatmentEpisode):
        from . import treatment

        merged = treatment.episode_data(record)
        merged.update(changes)
        fields = treatment.validate_episode(patient, merged, exclude=(record.pk,))
        fields.update(follows=record.follows)
    elif isinstance(record, SubstanceUse):
        name = changes.get("name", record.name)
        if name not in SUBSTANCES:
            raise ValidationError({"name": f"Choose a substance: {', '.join(SUBSTANCES)}."})
        at = changes.get("at", record.at)
        writes.in_window(patient, at, "at")
        fields = {"at": at, "name": name,
                  "detail": str(changes.get("detail", record.detail) or "").strip()[:200]}
    elif isinstance(record, Note):
        text = (changes.get("text") or "").strip()
        if not text:
            raise ValidationError({"text": "Write the corrected note."})
        fields = {"text": text, "at": record.at}
    else:  # pragma: no cover - every kind in records.KINDS is handled above
        raise TypeError(type(record))
    model = type(record)

    def create():
        locked = model.objects.select_for_update().get(pk=record.pk)
        if locked.superseded or locked.retracted:
            raise ValidationError({"__all__": "This entry was already corrected."})
        locked.superseded = True
        locked.save(update_fields=["superseded"])
        extra = {"diary": locked.diary} if hasattr(locked, "diary") and "diary" not in fields else {}
        fields.setdefault("source", Source.PATIENT if by_patient else Source.CLINICIAN)
        new = model.objects.create(patient=patient, entered_by=user, replaces=locked,
                                   change_reason=reason[:500], **fields, **extra)
        audit(user, AuditEntry.Action.CORRECT, new, patient=patient, before=before,
              after=writes.snapshot(new), reason=reason)
        return new

    new, created = writes.once(user, token, "correction", create, model=model, patient=patient)
    if created:
        writes.after_change(patient)
    return new


def _range_stays_with_unit(record: LabResult, changes: Mapping[str, Any]) -> None:
    """A correction of the unit (or the assay factor) of a result with the laboratory's
    range asks for the range again: it was typed in a unit Speciosa did not keep (the
    value's, unless said otherwise), so it cannot follow the corrected unit by itself, and
    kept as stored it would be read in the wrong unit (ALT 5 'U/L' with the range 0.1-0.5
    corrected to ukat/L is 300 U/L against 0.5 U/L)."""
    unit = changes.get("unit")
    if unit in (None, "") or record.value is None:
        return
    try:
        same = klabs.normalise_unit(record.lab, unit) == record.unit
    except klabs.LabValueError:
        return  # validate_lab says what is wrong with the unit
    if same:
        return
    low, high = (("" if x is None else f"{x:g}") for x in (record.reference_low,
                                                          record.reference_high))
    shown = f"{low}–{high} {klabs.unit_display(record.canonical_unit)}"
    message = (f"The laboratory's range ({shown}) was entered with the old unit: enter it again "
               "as the report gives it, with the corrected unit, so that it is read in the "
               "right unit.")
    raise ValidationError({"reference_high": message})


def retract_record(user, record, reason: str, *, token: str | None = None):
    """Withdraw an entry made in error; it stays in the history, marked retracted.

    Withdrawing an entry that is already withdrawn changes nothing; a version that was
    replaced by a correction cannot be withdrawn (withdraw the current version)."""
    patient = record.patient
    if _require_may_change(user, record):
        _require_in_correction_window(record)
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why this entry is being withdrawn."})
    model = type(record)

    def create():
        locked = model.objects.select_for_update().get(pk=record.pk)
        if locked.superseded:
            raise ValidationError(
                {"__all__": "This version was replaced by a correction; withdraw the current version."})
        if locked.retracted:
            return locked
        before = writes.snapshot(locked)
        model.objects.filter(pk=locked.pk).update(retracted=True, change_reason=reason[:500])
        locked.refresh_from_db()
        audit(user, AuditEntry.Action.RETRACT, locked, patient=patient, before=before,
              after=writes.snapshot(locked), reason=reason)
        return locked

    obj, created = writes.once(user, token, "retraction", create, model=model, patient=patient)
    if not created:
        return obj
    record.refresh_from_db()
    writes.after_change(patient)
    return record


#: The records a patient may correct or remove themselves: their own diary's entries.
PATIENT_CORRECTABLE = (Dose, Assessment, SubstanceUse)


def _require_may_change(user, record) -> bool:
    """Refuse (:class:`~speciosa.clinic.writes.AccessDenied`) unless ``user`` may correct or
    withdraw ``record``: a clinician of the patient's care team, or the patient for an entry
    of their own diary. Returns True when it is the patient."""
    patient = record.patient
    if access.can_write_clinical(user, patient):
        return False
    writes.require(access.can_write_diary(user, patient) and isinstance(record, PATIENT_CORRECTABLE)
                   and record.diary_id is not None and record.source == Source.PATIENT,
                   "You can change only the entries of your own diary.")
    return True


def correction_window_start(patient: Patient) -> dt.date:
    """The first diary day whose entries the patient still corrects or removes themselves:
    today at the patient's site minus ``DIARY_CORRECTION_DAYS`` (a setting, default 2)."""
    days = max(0, int(getattr(settings, "DIARY_CORRECTION_DAYS", 2)))
    return integrity.site_today(patient.site) - dt.timedelta(days=days)


def patient_may_still_change(record) -> bool:
    """Whether the patient may still correct or remove ``record`` of their diary (the day is
    within the correction window, the version current)."""
    return (isinstance(record, PATIENT_CORRECTABLE) and record.diary_id is not None
            and record.source == Source.PATIENT and not (record.superseded or record.retracted)
            and record.diary.day >= correction_window_start(record.patient))


def on_day(day: dt.date, taken_at: dt.datetime) -> bool:
    """Whether ``taken_at`` falls on ``day`` in some time zone (from UTC+14 to UTC-12, the
    zones a device may read the times in): a diary's dose is taken on the diary's day."""
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC) - dt.timedelta(hours=14)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC) + dt.timedelta(hours=12)
    return start <= taken_at < end


def _require_on_diary_day(record, taken_at: dt.datetime) -> None:
    """A patient's correction keeps a dose on its diary's day (:func:`on_day`). Moving it
    further would put it on a day the patient may no longer change, the diary still
    listing it under its own day; the care team can move it."""
    day = record.diary.day
    if not on_day(day, taken_at):
        raise ValidationError({"taken_at": (
            f"A dose of your diary of {day:%-d %B %Y} is taken on that day. If you took it on "
            "another day, remove it and add it to that day's diary.")})


def _require_in_correction_window(record) -> None:
    first = correction_window_start(record.patient)
    if record.diary.day < first:
        days = (integrity.site_today(record.patient.site) - first).days
        before = f" and the {days} day{'s' if days != 1 else ''} before" if days else ""
        raise ValidationError({"__all__": (
            f"This entry of {record.diary.day:%-d %B %Y} can no longer be changed here: you can "
            f"correct or remove the entries of today{before}. Ask your care team to correct it; "
            "they can change it for you.")})


#: Why a clinician reads a record in the clinic's own pages and API (HL7 PurposeOfUse).
CARE_PURPOSE = "purpose of use: TREAT"


def record_view(user, patient: Patient, what: str = "record", obj=None, *,
                reason: str = CARE_PURPOSE) -> None:
    """Opening a patient's record (or a part of it: ``what``, with the row ``obj``) is
    audited: who (``user``), when, what, and why (``reason``)."""
    audit(user, AuditEntry.Action.VIEW, obj, patient=patient, model=what, reason=reason)


def record_list_view(user, what: str, patient_ids: Iterable[int], *, resources: Iterable[str] = (),
                     query: str = "", reason: str = CARE_PURPOSE) -> None:
    """One audit entry for a read that shows many patients at once (a list, a search across
    patients): the patients' ids and the resources shown are listed in the entry."""
    after: dict[str, Any] = {"patients": sorted(set(patient_ids))}
    resources = list(resources)
    if resources:
        after["resources"] = resources
    if query:
        after["query"] = query[:500]
    audit(user, AuditEntry.Action.VIEW, None, model=what, after=after, reason=reason)


def record_consent(user, patient: Patient, kind: str, given: bool, *,
                   at: dt.datetime | None = None) -> Consent:
    """Record the patient's answer for care or research as the care team (registration, the
    admin): a given consent is recorded as the patient's paper signature of the site's
    current document (:func:`speciosa.clinic.consents.record_paper`, typed name and date of
    ``at`` taken from the record); a refusal withdraws the one in force or records the
    refusal (:func:`speciosa.clinic.consents.record_refusal`). Returns the new answer.

    An administrator or a clinician of the patient's care team may record it."""
    from . import consents, integrity

    writes.require(access.has_role(user, Role.ADMIN) or access.can_write_clinical(user, patient),
                   "Only an administrator or the patient's care team can record a consent.")
    if kind not in (Consent.Kind.CARE, Consent.Kind.RESEARCH):
        raise ValidationError({"kind": "Choose care or research."})
    if not given:
        return consents.record_refusal(user, patient, kind, at=at)
    at = at or timezone.now()
    writes.not_in_future(at, "at")
    consents.ensure_documents(patient.site)
    document = consents.latest_document(patient.site, kind)
    day = min(consents.site_date(patient.site, at), integrity.site_today(patient.site))
    with transaction.atomic():
        sig = consents.record_paper(user, patient, document, {
            "typed_name": patient.name, "signed_on": day},
            note="recorded by the care team (registration or administration)")
        return Consent.objects.get(signature=sig, given=True)
