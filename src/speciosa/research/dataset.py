"""The de-identified, analysis-ready research dataset and ``speciosa export research``.

Only patients whose most recent research consent is *given* are included. Every table is
tidy (one row per observation, one column per variable) and keyed by the pseudonymous
``patient_id``; time is the day in care and a time of day, never a calendar date. See
:mod:`speciosa.research.deid` for the method, :mod:`speciosa.research.anonymity` for the
k-anonymity step and :data:`DICTIONARY` for every column. Tables:

``patients``        one row per patient: site code, sex, age band, year of entry (each of
                    them possibly generalised, see ``deid_report.json``)
``doses``           one row per recorded dose (no product names: a category instead)
``daily_exposure``  one row per patient-day with a diary or a dose: estimated mitragynine
                    mg/day from :func:`speciosa.pharmacology.doses.daily_mitragynine_mg`
``assessments``     one row per completed instrument (totals, bands, flags, item answers)
``labs``            one row per laboratory result (as reported and canonical)
``side_effects``    one row per side-effect checklist item answered

:func:`build_dataset` reads the records in one pass per kind, places each event on the
patient's time axis (skipping and counting implausible dates and the withheld recent days),
then makes the patients table k-anonymous and drops the suppressed patients everywhere.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from . import anonymity, deid

#: Order of the tables in an export.
TABLES = ("patients", "doses", "daily_exposure", "assessments", "labs", "side_effects")

#: Instrument whose answers go to the ``side_effects`` table instead of ``assessments``.
SIDE_EFFECTS_INSTRUMENT = "side-effects"

#: Dose unit -> product category (product names are free text and are never exported).
PRODUCT_CATEGORY = {
    "g": "leaf powder",
    "capsule": "leaf capsules",
    "glass": "tea",
    "mg_extract": "extract",
    "mg_mitragynine": "labelled mitragynine product",
    "mg_7oh": "7-hydroxymitragynine (7-OH) product",
}

EXPOSURE_MEASURE = (
    "estimated mitragynine mg per calendar day (typical estimate), the sum over the day's "
    "recorded doses from speciosa.pharmacology.doses.daily_mitragynine_mg; 0 on a diary day "
    "without doses"
)

#: One line on the method, for the dictionary, the manifest and the audit trail.
METHOD = (
    "Measured de-identification (not HIPAA Safe Harbor): keyed pseudonyms; time as days in "
    "care and 6-hour time of day, no calendar dates, year of entry only; each patient's most "
    "recent days withheld (a keyed 0..N days); ages in bands top-coded at 90; free text never "
    "exported; the patients table k-anonymous on site, sex, age band, entry year, pregnancy "
    "and breastfeeding (generalised or suppressed as deid_report.json says). See "
    "docs/research.md."
)

_UNIT_RE = re.compile(r"^[A-Za-z0-9\[\]/%.*^{}()_-]{0,32}$")
_CODE_RE = re.compile(r"^[a-z0-9_-]{0,24}$")
_METHODS = ("screen", "confirmation")

# (column, type, unit, description)
_Col = tuple[str, str, str, str]
_PATIENT_ID: _Col = ("patient_id", "string", "", "pseudonymous patient id: P- and 16 "
                     "characters of HMAC-SHA256 of site and MRN under the site's research key")
_DAY_IN_CARE: _Col = ("day_in_care", "integer", "d", "days from the day of entry into care to "
                      "the event's local calendar day at the site (0 = day of entry, negative "
                      "= before); no calendar dates are exported")
_TIME_OF_DAY: _Col = ("time_of_day", "string", "", "local time of day as a period: night "
                      "(00-06), morning (06-12), afternoon (12-18), evening (18-24); clock "
                      "times are not exported")
_SOURCE: _Col = ("source", "string", "", "who entered it: patient, clinician or import")

DICTIONARY: dict[str, dict[str, Any]] = {
    "patients": {
        "description": "One row per exported patient (consented, not suppressed by the "
        "k-anonymity step). Site, sex, age band, entry year, pregnancy and breastfeeding are "
        "the quasi-identifiers; '*' means generalised away for every patient.",
        "columns": [
            _PATIENT_ID,
            ("site_id", "string", "", "pseudonymous site code (S- and 8 characters), or '*' "
             "when sites are generalised together"),
            ("sex", "string", "", "female or male"),
            ("age_band", "string", "a", "age at entry into care in whole years, as a band "
             "('30-34', '30-39' or '20-39', as deid_report.json says), '90+' from 90, or '*'; "
             "birth dates and years are not exported"),
            ("entry_year", "string", "", "calendar year of entry into care, or '*'"),
            ("pregnant", "boolean", "", "recorded as pregnant (current record)"),
            ("breastfeeding", "boolean", "", "recorded as breastfeeding (current record)"),
        ],
    },
    "doses": {
        "description": "One row per recorded kratom dose (current records only).",
        "columns": [
            _PATIENT_ID, _DAY_IN_CARE, _TIME_OF_DAY,
            ("amount", "number", "", "amount as recorded, in `unit`"),
            ("unit", "string", "", "g (leaf), capsule, glass (tea), mg_extract, mg_mitragynine, mg_7oh (7-OH product)"),
            ("product_category", "string", "", "category from the unit; product names are free "
             "text and are not exported"),
            ("mitragynine_percent", "number", "%", "labelled mitragynine content, if given"),
            ("grams_per_capsule", "number", "g", "capsule fill, if given"),
            ("mitragynine_mg", "number", "mg", "stored typical estimate of mitragynine in the "
             "dose (speciosa.pharmacology.doses.to_mitragynine); empty if not convertible"),
            _SOURCE,
        ],
    },
    "daily_exposure": {
        "description": "One row per patient-day with a diary entry or a dose. Exposure measure: "
        + EXPOSURE_MEASURE + ".",
        "columns": [
            _PATIENT_ID, _DAY_IN_CARE,
            ("mitragynine_mg", "number", "mg/d", "estimated mitragynine that day (typical "
             "estimate)"),
            ("n_doses", "integer", "", "doses recorded that day"),
            ("n_doses_not_converted", "integer", "", "doses that could not be converted to mg "
             "(counted as 0 mg)"),
            ("diary", "boolean", "", "the patient wrote a diary that day"),
        ],
    },
    "assessments": {
        "description": "One row per completed instrument except the side-effect checklist "
        "(see side_effects). The free-text note on an assessment is not exported.",
        "columns": [
            _PATIENT_ID,
            ("instrument", "string", "", "instrument id (cows, sows, craving-nrs, phq9, ...)"),
            ("instrument_version", "string", "", "definition version"),
            _DAY_IN_CARE, _TIME_OF_DAY,
            ("total", "integer", "{score}", "total score from the one scorer; empty if "
             "incomplete"),
            ("band", "string", "", "severity band of the total"),
            ("complete", "boolean", "", "all required items answered"),
            ("flags", "string", "", "JSON list of flag ids raised"),
            ("items", "string", "", "JSON object item id -> numeric answer"),
            _SOURCE,
        ],
    },
    "labs": {
        "description": "One row per laboratory result (current records only).",
        "columns": [
            _PATIENT_ID,
            ("lab", "string", "", "Speciosa lab code (prolactin, alt, ...)"),
            ("loinc", "string", "", "LOINC code"),
            _DAY_IN_CARE, _TIME_OF_DAY,
            ("value", "number", "", "value as reported, in `unit`"),
            ("unit", "string", "", "UCUM unit as reported"),
            ("canonical_value", "number", "", "value in `canonical_unit` "
             "(speciosa.knowledge.labs)"),
            ("canonical_unit", "string", "", "canonical UCUM unit (prolactin: ng/mL)"),
            ("result", "string", "", "qualitative result (negative, positive, indeterminate)"),
            ("method", "string", "", "screen or confirmation (qualitative tests)"),
            ("reference_low", "number", "", "lower reference limit (canonical unit)"),
            ("reference_high", "number", "", "upper reference limit (canonical unit)"),
            ("flag", "string", "", "flag against the reference range"),
            _SOURCE,
        ],
    },
    "side_effects": {
        "description": "One row per item of each side-effect checklist.",
        "columns": [
            _PATIENT_ID, _DAY_IN_CARE, _TIME_OF_DAY,
            ("item", "string", "", "side-effect item id (reduced-sex-drive, nausea, ...)"),
            ("present", "integer", "", "1 = reported, 0 = not reported"),
            _SOURCE,
        ],
    },
}


@dataclass
class ResearchDataset:
    """The de-identified tables, cohort counts and the de-identification report."""

    tables: dict[str, pd.DataFrame]
    n_patients_in_clinic: int
    n_consented: int
    exposure_measure: str = EXPOSURE_MEASURE
    counts: dict[str, int] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    #: Database ids of the exported patients, for the audit trail; never written to a file.
    patient_pks: list[int] = field(default_factory=list, repr=False)
    #: Seconds each step of :func:`build_dataset` took (for the benchmark; not exported).
    timings: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def n_exported(self) -> int:
        return len(self.tables["patients"])


def options_from_settings() -> deid.Options:
    """The site's :class:`~speciosa.research.deid.Options` from Django settings."""
    from django.conf import settings

    return deid.Options(k=settings.RESEARCH_K_ANONYMITY,
                        max_suppressed=settings.RESEARCH_MAX_SUPPRESSED,
                        withheld_days=settings.RESEARCH_WITHHELD_DAYS)


# --------------------------------------------------------------------------- the cohort

def consented_patient_ids() -> list[int]:
    """Database ids of patients whose research consent is signed and not revoked: their
    current research answer (the one no later answer supersedes; answers are append-only) is
    given and rests on a signature that has no revocation (speciosa.clinic.consents)."""
    from speciosa.clinic.models import Consent

    rows = Consent.objects.current().filter(kind=Consent.Kind.RESEARCH, given=True,
                                            signature__isnull=False,
                                            signature__revocation__isnull=True)
    return sorted(set(rows.values_list("patient_id", flat=True)))


@dataclass(frozen=True)
class _Person:
    pseudonym: str
    tz: ZoneInfo
    timeline: deid.Timeline


@dataclass
class _Cohort:
    """The consented patients being exported, keyed by database id, with their time axes
    and the tally of records left out (record kind, reason) -> count."""

    people: dict[int, _Person]
    raw_patients: list[dict[str, Any]]
    implausible_patients: int
    left_out: Counter = field(default_factory=Counter)

    @property
    def ids(self) -> list[int]:
        return list(self.people)

    def event(self, kind: str, pid: int, moment: dt.datetime) -> dict[str, Any] | None:
        """The exported time columns of an event at ``moment``, or ``None`` (and counted)
        when its date is implausible or among the withheld recent days."""
        person = self.people[pid]
        local = deid.local_time(moment, person.tz)
        day = self.day(kind, pid, local.date() if local else None)
        if day is None:
            return None
        return {"patient_id": person.pseudonym, "day_in_care": day,
                "time_of_day": deid.time_of_day(local)}

    def day(self, kind: str, pid: int, day: dt.date | None) -> int | None:
        """Day in care of local ``day``, or ``None`` (and counted) when it is left out."""
        timeline = self.people[pid].timeline
        placement = timeline.place(day)
        if placement is not deid.Placement.EXPORTED:
            self.left_out[(kind, placement.value)] += 1
            return None
        return timeline.day_in_care(day)


def _cohort(deidentifier: deid.Deidentifier, now: dt.datetime, options: deid.Options) -> _Cohort:
    """The consented patients: pseudonyms, time axes and raw quasi-identifiers."""
    from speciosa.clinic.models import Patient

    people: dict[int, _Person] = {}
    raw, implausible = [], 0
    for p in Patient.objects.filter(pk__in=consented_patient_ids()).select_related("site"):
        tz = ZoneInfo(p.site.time_zone)
        export_day = now.astimezone(tz).date()
        if not deid.plausible_patient(p.birth_date, p.in_care_since, export_day):
            implausible += 1
            continue
        withheld = deidentifier.withheld_days(p.site.name, p.identifier, options.withheld_days)
        person = _Person(deidentifier.patient_pseudonym(p.site.name, p.identifier), tz,
                         deid.Timeline(p.in_care_since, export_day, withheld))
        people[p.pk] = person
        raw.append({"patient_id": person.pseudonym,
                    "site_id": deidentifier.site_pseudonym(p.site.name), "sex": p.sex,
                    "age_years": deid.age_years(p.birth_date, p.in_care_since),
                    "entry_year": str(p.in_care_since.year),
                    "pregnant": p.pregnant, "breastfeeding": p.breastfeeding})
    if len({w.pseudonym for w in people.values()}) != len(people):  # pragma: no cover - 80 bits
        raise RuntimeError("pseudonym collision; use another research key")
    return _Cohort(people, raw, implausible)


# --------------------------------------------------------------------------- the rows

def _num(x: Any) -> float | None:
    return None if x is None else float(x)


def _safe_unit(unit: str) -> str:
    return unit if _UNIT_RE.match(unit or "") else ""


def _safe_code(code: str) -> str:
    return code if _CODE_RE.match(code or "") else ""


@dataclass
class _Doses:
    """The exported dose rows, and what the daily exposure needs from them: one column per
    conversion input, in the rows' order (patient, then time), for the cohort path."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    per_day: dict[tuple[int, int], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0]))  # (pid, day) -> [n, not converted]
    subject: list[int] = field(default_factory=list)  # patient database id
    day: list[int] = field(default_factory=list)  # day in care (the exported doses' own)
    amount: list[float] = field(default_factory=list)  # NaN: unreadable (not converted)
    unit: list[str] = field(default_factory=list)  # "" when not a known unit
    percent: list[float] = field(default_factory=list)  # NaN: not given
    per_capsule: list[float] = field(default_factory=list)  # NaN: not given


def _conversion_inputs(d: dict[str, Any]) -> tuple[float, str, float, float]:
    """Amount, unit, percent and grams per capsule of a dose row as the conversion reads them
    (:func:`speciosa.pharmacology.doses.daily_mitragynine_mg`'s rules: an unknown unit or a
    number that is not one (a stored NaN) makes the dose one that is not converted)."""
    from speciosa.pharmacology import doses as pdoses

    def number(x: Any) -> float:
        return math.nan if x is None else float(x)

    amount, pct, gpc = number(d["amount"]), number(d["mitragynine_percent"]), number(d["grams_per_capsule"])
    unit = d["unit"] if d["unit"] in pdoses.UNITS else ""
    given_nan = (d["mitragynine_percent"] is not None and math.isnan(pct)) or \
        (d["grams_per_capsule"] is not None and math.isnan(gpc))
    if given_nan or not unit:
        amount = math.nan
    return amount, unit, pct, gpc


def _dose_rows(cohort: _Cohort) -> _Doses:
    from speciosa.clinic.models import Dose

    out = _Doses()
    for d in (Dose.objects.current().filter(patient_id__in=cohort.ids)
              .order_by("patient_id", "taken_at", "id")
              .values("patient_id", "taken_at", "amount", "unit", "product", "mitragynine_percent",
                      "grams_per_capsule", "mitragynine_mg", "source")):
        pid = d["patient_id"]
        base = cohort.event("doses", pid, d["taken_at"])
        if base is None:
            continue
        out.rows.append({
            **base, "amount": _num(d["amount"]),
            "unit": d["unit"] if d["unit"] in PRODUCT_CATEGORY else "",
            "product_category": PRODUCT_CATEGORY.get(d["unit"], "other"),
            "mitragynine_percent": _num(d["mitragynine_percent"]),
            "grams_per_capsule": _num(d["grams_per_capsule"]),
            "mitragynine_mg": d["mitragynine_mg"], "source": d["source"]})
        amount, unit, pct, gpc = _conversion_inputs(d)
        out.subject.append(pid)
        out.day.append(base["day_in_care"])
        out.amount.append(amount)
        out.unit.append(unit)
        out.percent.append(pct)
        out.per_capsule.append(gpc)
        counts = out.per_day[(pid, base["day_in_care"])]
        counts[0] += 1
        counts[1] += d["mitragynine_mg"] is None
    return out


def _diary_days(cohort: _Cohort) -> dict[int, set[int]]:
    """Days in care on which each patient wrote a diary (implausible ones left out)."""
    from speciosa.clinic.models import DiaryDay

    days: dict[int, set[int]] = defaultdict(set)
    for pid, day in (DiaryDay.objects.filter(patient_id__in=cohort.ids)
                     .values_list("patient_id", "day")):
        index = cohort.day("diary days", pid, day)
        if index is not None:
            days[pid].add(index)
    return days


def daily_exposure_mg(doses: _Doses) -> dict[int, dict[int, float]]:
    """Typical mitragynine mg per patient and day in care: the one place the daily exposure
    is computed, for the whole cohort in one pass of the cross-subject path
    (:func:`speciosa.pharmacology.cohort.daily_mitragynine_totals`, doses converted in
    arrays). A dose that cannot be converted counts nothing (the table counts those in
    ``n_doses_not_converted``); a patient-day with none converted is absent. The values are
    those of the per-patient :func:`speciosa.pharmacology.doses.daily_mitragynine_mg` (tests:
    ``tests/research/test_dataset_exposure.py``): a dose's day in care is its local date's.
    """
    from speciosa.pharmacology.cohort import daily_mitragynine_totals

    if not doses.subject:
        return {}
    subject, day, mg = daily_mitragynine_totals(
        np.asarray(doses.subject, dtype=np.int64), np.asarray(doses.day, dtype=np.int64),
        np.asarray(doses.amount, dtype=np.float64), np.asarray(doses.unit, dtype=object),
        np.asarray(doses.percent, dtype=np.float64), np.asarray(doses.per_capsule, dtype=np.float64))
    out: dict[int, dict[int, float]] = defaultdict(dict)
    for pid, d, value in zip(subject.tolist(), day.tolist(), mg.tolist(), strict=True):
        out[pid][d] = value
    return out


def _exposure_rows(cohort: _Cohort, doses: _Doses, diary: dict[int, set[int]],
                   timings: dict[str, float] | None = None) -> list[dict]:
    started = time.perf_counter()
    daily = daily_exposure_mg(doses)
    if timings is not None:
        timings["daily exposure (cohort path)"] = time.perf_counter() - started
    rows = []
    for pid, person in cohort.people.items():
        mg = daily.get(pid, {})
        for day in sorted(set(mg) | diary.get(pid, set())):
            n, not_converted = doses.per_day.get((pid, day), (0, 0))
            rows.append({"patient_id": person.pseudonym, "day_in_care": day,
                         "mitragynine_mg": float(mg.get(day, 0.0)), "n_doses": n,
                         "n_doses_not_converted": not_converted,
                         "diary": day in diary.get(pid, ())})
    return rows


def _known_instruments() -> dict[str, Any]:
    from speciosa.knowledge import instruments as kinstruments

    return {inst.id: inst for inst in kinstruments.all_instruments()}


def _known_labs() -> dict[str, Any]:
    from speciosa.knowledge import labs as klabs

    return {lab.code: lab for lab in klabs.all_labs()}


def _numeric_answers(inst: Any, items: dict[str, Any] | None) -> dict[str, int | float]:
    """The answers to the instrument's own items that are numbers (anything else could be
    free text)."""
    item_ids = {it.id for it in inst.items}
    return {k: v for k, v in (items or {}).items()
            if k in item_ids and isinstance(v, (int, float)) and not isinstance(v, bool)}


def _known_flags(inst: Any, flags: list[Any] | None) -> list[str]:
    flag_ids = {f.id for f in inst.flags}
    return [f for f in (flags or []) if isinstance(f, str)
            and (f in flag_ids or f.removesuffix("-depends-on-sex") in flag_ids)]


def _assessment_row(inst: Any, a: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    bands = {b.label for b in inst.bands}
    return {**base, "instrument": inst.id,
            "instrument_version": _safe_code(str(a["instrument_version"]).lower()) or "",
            "total": a["total"], "band": a["band"] if a["band"] in bands else "",
            "complete": a["complete"], "flags": json.dumps(_known_flags(inst, a["flags"])),
            "items": json.dumps(_numeric_answers(inst, a["items"]), sort_keys=True),
            "source": a["source"]}


def _side_effect_rows(inst: Any, a: dict[str, Any], base: dict[str, Any]) -> list[dict]:
    answers = _numeric_answers(inst, a["items"])
    return [{**base, "item": item, "present": int(answers[item] > 0), "source": a["source"]}
            for item in sorted(answers)]


def _assessment_rows(cohort: _Cohort) -> tuple[list[dict], list[dict]]:
    """Assessment rows and side-effect rows (instruments this software does not know are
    left out: nothing about them is known to be safe to export)."""
    from speciosa.clinic.models import Assessment

    instruments = _known_instruments()
    assessments: list[dict] = []
    side_effects: list[dict] = []
    for a in (Assessment.objects.current().filter(patient_id__in=cohort.ids)
              .order_by("patient_id", "at", "id")
              .values("patient_id", "instrument", "instrument_version", "at", "items", "total",
                      "band", "complete", "flags", "source")):
        inst = instruments.get(a["instrument"])
        if inst is None:
            continue
        base = cohort.event("assessments", a["patient_id"], a["at"])
        if base is None:
            continue
        if inst.id == SIDE_EFFECTS_INSTRUMENT:
            side_effects += _side_effect_rows(inst, a, base)
        else:
            assessments.append(_assessment_row(inst, a, base))
    return assessments, side_effects


def _lab_rows(cohort: _Cohort) -> list[dict]:
    from speciosa.clinic.models import LabResult

    labs = _known_labs()
    rows = []
    for r in (LabResult.objects.current().filter(patient_id__in=cohort.ids)
              .order_by("patient_id", "collected_at", "id")
              .values("patient_id", "lab", "loinc", "collected_at", "value", "unit",
                      "canonical_value", "canonical_unit", "result", "method", "reference_low",
                      "reference_high", "flag", "source")):
        lab = labs.get(r["lab"])
        if lab is None:
            continue
        base = cohort.event("labs", r["patient_id"], r["collected_at"])
        if base is None:
            continue
        rows.append({
            **base, "lab": lab.code, "loinc": lab.loinc or "", "value": _num(r["value"]),
            "unit": _safe_unit(r["unit"]), "canonical_value": r["canonical_value"],
            "canonical_unit": _safe_unit(r["canonical_unit"]),
            "result": r["result"] if r["result"] in getattr(lab, "results", ()) else "",
            "method": r["method"] if r["method"] in _METHODS else "",
            "reference_low": r["reference_low"], "reference_high": r["reference_high"],
            "flag": _safe_code(r["flag"]), "source": r["source"]})
    return rows


# --------------------------------------------------------------------------- the tables

def _frame(name: str, rows: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """A table with the dictionary's columns, in order, with pandas dtypes for the types,
    sorted by pseudonym and day (so row order says nothing about database order)."""
    spec = DICTIONARY[name]["columns"]
    df = pd.DataFrame(rows, columns=[c[0] for c in spec])
    for col, kind, _unit, _desc in spec:
        if kind == "integer":
            df[col] = df[col].astype("Int64")
        elif kind == "number":
            df[col] = df[col].astype("Float64")
        elif kind == "boolean":
            df[col] = df[col].astype("boolean")
        else:
            df[col] = df[col].astype("string")
    order = [c for c in ("patient_id", "day_in_care") if c in df.columns]
    return df.sort_values(order, kind="stable").reset_index(drop=True)


def _without_suppressed(tables: dict[str, pd.DataFrame], keep: set[str],
                        ) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """Every table restricted to the exported patients, and the rows dropped per table."""
    out, dropped = {}, {}
    for name, df in tables.items():
        mask = df["patient_id"].isin(keep)
        out[name] = df[mask].reset_index(drop=True)
        dropped[name] = int((~mask).sum())
    return out, dropped


def _left_out_report(cohort: _Cohort, suppressed_rows: dict[str, int]) -> dict[str, Any]:
    by_reason: dict[str, dict[str, int]] = defaultdict(dict)
    for (kind, reason), n in sorted(cohort.left_out.items()):
        by_reason[reason][kind] = n
    by_reason["suppressed patient"] = {k: v for k, v in suppressed_rows.items() if v}
    return dict(by_reason)


def _report(options: deid.Options, cohort: _Cohort, n_consented: int,
            k_report: anonymity.AnonymityReport, suppressed_rows: dict[str, int]) -> dict:
    return {
        "method": METHOD,
        "settings": {"k": options.k, "max_suppressed": options.max_suppressed,
                     "withheld_days": options.withheld_days},
        "patients": {"consented": n_consented,
                     "implausible_entry_or_birth_date": cohort.implausible_patients,
                     "suppressed": k_report.patients_suppressed,
                     "generalised": k_report.patients_generalised,
                     "exported": k_report.patients_in - k_report.patients_suppressed},
        "k_anonymity": k_report.to_dict(),
        "records_left_out": _left_out_report(cohort, suppressed_rows),
    }


def build_dataset(deidentifier: deid.Deidentifier, *, options: deid.Options | None = None,
                  now: dt.datetime | None = None) -> ResearchDataset:
    """Read the consented patients' current records and return the de-identified tables.

    Parameters
    ----------
    deidentifier : Deidentifier
        The site's keyed pseudonyms and withheld days.
    options : Options, optional
        k, the suppression limit and the withheld days (default: the site's settings).
    now : datetime, optional
        The moment of the export (default: now); events after it are implausible.
    """
    from django.utils import timezone

    from speciosa.clinic.models import Patient

    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def step(name: str) -> None:
        now_ = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now_ - clock[0]
        clock[0] = now_

    options = options or options_from_settings()
    n_consented = len(consented_patient_ids())
    cohort = _cohort(deidentifier, now or timezone.now(), options)
    step("cohort")
    doses = _dose_rows(cohort)
    step("doses")
    assessments, side_effects = _assessment_rows(cohort)
    step("assessments")
    diary = _diary_days(cohort)
    step("diary days")
    exposure = _exposure_rows(cohort, doses, diary, timings)
    step("daily exposure table")  # less the cohort path's own time, counted apart
    timings["daily exposure table"] -= timings.get("daily exposure (cohort path)", 0.0)
    rows = {"doses": doses.rows, "daily_exposure": exposure,
            "assessments": assessments, "labs": _lab_rows(cohort), "side_effects": side_effects}
    step("labs")
    raw = pd.DataFrame(cohort.raw_patients, columns=list(anonymity.RAW_COLUMNS))
    patients, k_report = anonymity.anonymise(raw, k=options.k,
                                             max_suppressed=options.max_suppressed)
    tables = {"patients": _frame("patients", patients)}
    step("k-anonymity")
    events, suppressed_rows = _without_suppressed(
        {name: _frame(name, rows[name]) for name in TABLES[1:]}, set(patients["patient_id"]))
    tables.update(events)
    exported = set(patients["patient_id"])
    step("tables")
    return ResearchDataset(timings=timings,
        tables=tables, n_patients_in_clinic=Patient.objects.count(), n_consented=n_consented,
        counts={name: len(df) for name, df in tables.items()},
        report=_report(options, cohort, n_consented, k_report, suppressed_rows),
        patient_pks=sorted(pk for pk, p in cohort.people.items() if p.pseudonym in exported))


# --------------------------------------------------------------------------- writing

def dictionary_markdown(dataset: ResearchDataset) -> str:
    """The data dictionary as Markdown, opening with the 42 CFR Part 2 notice."""
    k = dataset.report.get("k_anonymity", {})
    lines = ["# Speciosa research export: data dictionary", "", "> " + deid.PART2_NOTICE, "",
             METHOD, "",
             f"k-anonymity: k = {k.get('k')} (required {k.get('k_required')}); "
             f"generalisation: " + ", ".join(f"{c} {lvl}" for c, lvl in
                                             k.get("generalisation", {}).items())
             + ". Only patients whose latest research consent is given are included.", "",
             f"Exposure measure: {dataset.exposure_measure}.", ""]
    for name in TABLES:
        spec = DICTIONARY[name]
        lines += [f"## {name} ({dataset.counts.get(name, 0)} rows)", "", spec["description"], "",
                  "| column | type | unit | description |", "|---|---|---|---|"]
        lines += [f"| {c} | {t} | {u} | {d} |" for c, t, u, d in spec["columns"]]
        lines.append("")
    return "\n".join(lines)


def dictionary_json(dataset: ResearchDataset) -> dict[str, Any]:
    """The data dictionary as a JSON-ready object (with the notice)."""
    return {
        "notice": deid.PART2_NOTICE,
        "deidentification": METHOD,
        "exposure_measure": dataset.exposure_measure,
        "tables": {name: {"description": DICTIONARY[name]["description"],
                          "rows": dataset.counts.get(name, 0),
                          "files": [f"{name}.parquet", f"{name}.csv"],
                          "columns": [{"name": c, "type": t, "unit": u, "description": d}
                                      for c, t, u, d in DICTIONARY[name]["columns"]]}
                   for name in TABLES},
    }


def _write_table(df: pd.DataFrame, name: str, into: Path) -> list[str]:
    """``<name>.parquet`` (with the notice in its metadata) and ``<name>.csv``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta.pop(b"pandas", None)
    meta[b"speciosa.notice"] = deid.PART2_NOTICE.encode()
    meta[b"speciosa.table"] = name.encode()
    pq.write_table(table.replace_schema_metadata(meta), into / f"{name}.parquet")
    df.to_csv(into / f"{name}.csv", index=False)
    return [f"{name}.parquet", f"{name}.csv"]


def _write_documents(dataset: ResearchDataset, into: Path) -> list[str]:
    """NOTICE, the data dictionary, the de-identification report and the manifest."""
    docs = {
        "NOTICE.txt": deid.PART2_NOTICE + "\n",
        "data_dictionary.md": dictionary_markdown(dataset),
        "data_dictionary.json": json.dumps(dictionary_json(dataset), indent=2),
        "deid_report.json": json.dumps(dataset.report, indent=2),
        "manifest.json": json.dumps({
            "notice": deid.PART2_NOTICE, "software": "speciosa",
            "patients": dataset.n_exported, "rows": dataset.counts,
            "deidentification": METHOD, "k": dataset.report["k_anonymity"]["k"]}, indent=2),
    }
    for name, text in docs.items():
        (into / name).write_text(text, encoding="utf-8")
    return list(docs)


def write_dataset(dataset: ResearchDataset, out: Path) -> list[str]:
    """Write every table as Parquet and CSV, the data dictionary, NOTICE, the
    de-identification report and a manifest into ``out`` (which must not exist or be
    empty). Returns the file names written.

    Files are written to a temporary directory beside ``out`` first and moved into place
    at the end, so a failure leaves no half-written export.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty directory; choose a new one")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".speciosa-research-", dir=out.parent))
    try:
        names = [f for name in TABLES for f in _write_table(dataset.tables[name], name, tmp)]
        names += _write_documents(dataset, tmp)
        if out.exists():
            for name in names:
                os.replace(tmp / name, out / name)
            tmp.rmdir()
        else:
            os.replace(tmp, out)
        return names
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def export_research(out: Path, *, purpose: str, key: bytes, user: Any, os_user: str = "",
                    options: deid.Options | None = None) -> ResearchDataset:
    """Build, write and audit a research export: one audit entry with action ``export``,
    through the write kernel (:func:`speciosa.clinic.writes.audit`).

    ``user`` is the researcher who receives the export (the audit entry's user);
    ``os_user`` the operating-system account that ran it. The entry records the purpose of
    use, what was exported (tables, rows, files, k and the de-identification settings) and
    the database ids of the exported patients (so a later withdrawal of consent can be
    traced to the exports that held the patient); it is written only once the files are in
    place.
    """
    dataset = build_dataset(deid.Deidentifier(key), options=options)
    files = write_dataset(dataset, out)
    audit_export(dataset, files, user=user, purpose=purpose, os_user=os_user)
    return dataset


def audit_export(dataset: ResearchDataset, files: Any, *, user: Any, purpose: str,
                 os_user: str = "", extra: dict[str, Any] | None = None) -> None:
    """The one audit entry (action ``export``) of a research export, once its files exist:
    recipient, purpose, what was exported and the ids of the exported patients."""
    from speciosa.clinic import writes
    from speciosa.clinic.models import AuditEntry

    writes.audit(
        user, AuditEntry.Action.EXPORT, None, model="ResearchExport",
        reason=f"purpose of use: {purpose}",
        after={"kind": "research", "purpose": purpose[:300], "os_user": os_user[:100],
               "recipient": getattr(user, "username", ""), "patients": dataset.n_exported,
               "patients_consented": dataset.n_consented, "patient_ids": dataset.patient_pks,
               "rows": dataset.counts, "files": files,
               "deidentification": {"k": dataset.report["k_anonymity"]["k"],
                                    **dataset.report["settings"],
                                    "patients": dataset.report["patients"]},
               "notice": "42 CFR 2.32", **(extra or {})})
