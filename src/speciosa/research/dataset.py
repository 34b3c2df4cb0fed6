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

The patients table is made k-anonymous first (it needs the quasi-identifiers only); then the
exported patients' records are read a chunk of :data:`CHUNK_PATIENTS` patients at a time, in
pseudonym order, each event placed on the patient's time axis (implausible dates and the
withheld recent days skipped and counted), and built into the chunk's tables from rows of
scalars (no dict per row). :func:`write_streamed` (``speciosa export research``, the research
page's export) writes each chunk's tables as it goes, so the export's memory is that of one
chunk whatever the clinic's size; :func:`build_dataset` puts the chunks together in memory.
The suppressed patients' records are read last, only to count them in the report.
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
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


#: Hour of the day -> its 6-hour period (:func:`speciosa.research.deid.time_of_day`).
_PERIOD_OF_HOUR = tuple(deid.time_of_day(dt.datetime(2000, 1, 1, h)) for h in range(24))


@dataclass
class _Cohort:
    """The consented patients being exported, keyed by database id, with their time axes
    and the tally of records left out (record kind, reason) -> count."""

    people: dict[int, _Person]
    raw_patients: list[dict[str, Any]]
    implausible_patients: int
    left_out: Counter = field(default_factory=Counter)
    #: Database id -> (entry, first plausible, export day, last exported day) as ordinals.
    axes: dict[int, tuple[int, int, int, int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for pid, person in self.people.items():
            t = person.timeline
            self.axes[pid] = (t.entry.toordinal(), t.first_plausible_day.toordinal(),
                              t.export_day.toordinal(), t.last_exported_day.toordinal())

    @property
    def ids(self) -> list[int]:
        return list(self.people)

    def event(self, kind: str, pid: int, moment: dt.datetime) -> tuple[int, str] | None:
        """Day in care and time of day of an event at ``moment``, or ``None`` (and counted)
        when its date is implausible or among the withheld recent days
        (:meth:`speciosa.research.deid.Timeline.place`, with the axis's days as ordinals)."""
        local = deid.local_time(moment, self.people[pid].tz)
        day = self.day_ordinal(kind, pid, local.toordinal() if local else None)
        return None if day is None else (day, _PERIOD_OF_HOUR[local.hour])

    def day(self, kind: str, pid: int, day: dt.date | None) -> int | None:
        """Day in care of local ``day``, or ``None`` (and counted) when it is left out."""
        return self.day_ordinal(kind, pid, None if day is None else day.toordinal())

    def day_ordinal(self, kind: str, pid: int, ordinal: int | None) -> int | None:
        entry, first, export_day, last = self.axes[pid]
        if ordinal is None or ordinal < first or ordinal > export_day:
            self.left_out[(kind, deid.Placement.IMPLAUSIBLE.value)] += 1
            return None
        if ordinal > last:
            self.left_out[(kind, deid.Placement.WITHHELD.value)] += 1
            return None
        return ordinal - entry


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
#
# The rows of a chunk of patients are tuples in the dictionary's column order (never one dict
# per row): a chunk's tables are built from them, written, and let go.

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

    rows: list[tuple] = field(default_factory=list)
    per_day: dict[tuple[int, int], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0]))  # (pid, day) -> [n, not converted]
    subject: list[int] = field(default_factory=list)  # patient database id
    day: list[int] = field(default_factory=list)  # day in care (the exported doses' own)
    amount: list[float] = field(default_factory=list)  # NaN: unreadable (not converted)
    unit: list[str] = field(default_factory=list)  # "" when not a known unit
    percent: list[float] = field(default_factory=list)  # NaN: not given
    per_capsule: list[float] = field(default_factory=list)  # NaN: not given


def _conversion(amount: Any, unit: str, percent: Any, per_capsule: Any,
                units: Any = None) -> tuple[float, str, float, float]:
    """Amount, unit, percent and grams per capsule of a dose as the conversion reads them
    (:func:`speciosa.pharmacology.doses.daily_mitragynine_mg`'s rules: an unknown unit or a
    number that is not one (a stored NaN) makes the dose one that is not converted)."""
    if units is None:
        from speciosa.pharmacology import doses as pdoses

        units = pdoses.UNITS
    a = math.nan if amount is None else float(amount)
    pct = math.nan if percent is None else float(percent)
    gpc = math.nan if per_capsule is None else float(per_capsule)
    unit = unit if unit in units else ""
    given_nan = (percent is not None and math.isnan(pct)) or \
        (per_capsule is not None and math.isnan(gpc))
    if given_nan or not unit:
        a = math.nan
    return a, unit, pct, gpc


def _conversion_inputs(d: dict[str, Any]) -> tuple[float, str, float, float]:
    """:func:`_conversion` of a dose row given as a dict."""
    return _conversion(d["amount"], d["unit"], d["mitragynine_percent"], d["grams_per_capsule"])


def _dose_rows(cohort: _Cohort, pids: list[int] | None = None) -> _Doses:
    """The dose rows of ``pids`` (default: the whole cohort)."""
    from speciosa.clinic.models import Dose
    from speciosa.pharmacology import doses as pdoses

    units = pdoses.UNITS
    out = _Doses()
    rows, subject, days = out.rows, out.subject, out.day
    amounts, conv_units, percents, per_capsules = out.amount, out.unit, out.percent, out.per_capsule
    per_day = out.per_day
    people = cohort.people
    for pid, taken_at, amount, unit, pct, gpc, mg, source in (
            Dose.objects.current().filter(patient_id__in=cohort.ids if pids is None else pids)
            .order_by("patient_id", "taken_at", "id")
            .values_list("patient_id", "taken_at", "amount", "unit", "mitragynine_percent",
                         "grams_per_capsule", "mitragynine_mg", "source")):
        placed = cohort.event("doses", pid, taken_at)
        if placed is None:
            continue
        day, period = placed
        rows.append((people[pid].pseudonym, day, period, _num(amount),
                     unit if unit in PRODUCT_CATEGORY else "", PRODUCT_CATEGORY.get(unit, "other"),
                     _num(pct), _num(gpc), mg, source))
        a, u, p, g = _conversion(amount, unit, pct, gpc, units)
        subject.append(pid)
        days.append(day)
        amounts.append(a)
        conv_units.append(u)
        percents.append(p)
        per_capsules.append(g)
        counts = per_day[(pid, day)]
        counts[0] += 1
        counts[1] += mg is None
    return out


def _diary_days(cohort: _Cohort, pids: list[int] | None = None) -> dict[int, set[int]]:
    """Days in care on which each patient wrote a diary (implausible ones left out)."""
    from speciosa.clinic.models import DiaryDay

    days: dict[int, set[int]] = defaultdict(set)
    for pid, day in (DiaryDay.objects.filter(patient_id__in=cohort.ids if pids is None else pids)
                     .values_list("patient_id", "day")):
        index = cohort.day("diary days", pid, day)
        if index is not None:
            days[pid].add(index)
    return days


def daily_exposure_mg(doses: _Doses) -> dict[int, dict[int, float]]:
    """Typical mitragynine mg per patient and day in care: the one place the daily exposure
    is computed, in one pass of the cross-subject path for every patient of ``doses`` (a chunk
    of the cohort, or all of it: the sums are per patient-day, in the doses' order, so the
    same either way) (:func:`speciosa.pharmacology.cohort.daily_mitragynine_totals`, doses
    converted in arrays). A dose that cannot be converted counts nothing (the table counts
    those in ``n_doses_not_converted``); a patient-day with none converted is absent. The
    values are those of the per-patient :func:`speciosa.pharmacology.doses.daily_mitragynine_mg`
    (tests: ``tests/research/test_dataset_exposure.py``): a dose's day in care is its local
    date's.
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


def _exposure_rows(cohort: _Cohort, pids: list[int], doses: _Doses, diary: dict[int, set[int]],
                   timings: dict[str, float] | None = None) -> list[tuple]:
    started = time.perf_counter()
    daily = daily_exposure_mg(doses)
    if timings is not None:
        timings["daily exposure (cohort path)"] = (timings.get("daily exposure (cohort path)", 0.0)
                                                   + time.perf_counter() - started)
    rows = []
    for pid in pids:
        pseudonym = cohort.people[pid].pseudonym
        mg = daily.get(pid, {})
        written = diary.get(pid, set())
        for day in sorted(set(mg) | written):
            n, not_converted = doses.per_day.get((pid, day), (0, 0))
            rows.append((pseudonym, day, float(mg.get(day, 0.0)), n, not_converted,
                         day in written))
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


def _assessment_rows(cohort: _Cohort, pids: list[int] | None = None,
                     ) -> tuple[list[tuple], list[tuple]]:
    """Assessment rows and side-effect rows (instruments this software does not know are
    left out: nothing about them is known to be safe to export)."""
    from speciosa.clinic.models import Assessment

    instruments = _known_instruments()
    bands = {inst.id: {b.label for b in inst.bands} for inst in instruments.values()}
    assessments: list[tuple] = []
    side_effects: list[tuple] = []
    people = cohort.people
    for pid, instrument, version, at, items, total, band, complete, flags, source in (
            Assessment.objects.current().filter(patient_id__in=cohort.ids if pids is None else pids)
            .order_by("patient_id", "at", "id")
            .values_list("patient_id", "instrument", "instrument_version", "at", "items", "total",
                         "band", "complete", "flags", "source")):
        inst = instruments.get(instrument)
        if inst is None:
            continue
        placed = cohort.event("assessments", pid, at)
        if placed is None:
            continue
        pseudonym = people[pid].pseudonym
        day, period = placed
        answers = _numeric_answers(inst, items)
        if inst.id == SIDE_EFFECTS_INSTRUMENT:
            side_effects += [(pseudonym, day, period, item, int(answers[item] > 0), source)
                             for item in sorted(answers)]
        else:
            assessments.append((
                pseudonym, inst.id, _safe_code(str(version).lower()) or "", day, period, total,
                band if band in bands[inst.id] else "", complete,
                json.dumps(_known_flags(inst, flags)), json.dumps(answers, sort_keys=True), source))
    return assessments, side_effects


def _lab_rows(cohort: _Cohort, pids: list[int] | None = None) -> list[tuple]:
    from speciosa.clinic.models import LabResult

    labs = _known_labs()
    rows = []
    people = cohort.people
    for (pid, code, _loinc, collected_at, value, unit, canonical_value, canonical_unit, result,
         method, reference_low, reference_high, flag, source) in (
            LabResult.objects.current().filter(patient_id__in=cohort.ids if pids is None else pids)
            .order_by("patient_id", "collected_at", "id")
            .values_list("patient_id", "lab", "loinc", "collected_at", "value", "unit",
                         "canonical_value", "canonical_unit", "result", "method", "reference_low",
                         "reference_high", "flag", "source")):
        lab = labs.get(code)
        if lab is None:
            continue
        placed = cohort.event("labs", pid, collected_at)
        if placed is None:
            continue
        day, period = placed
        rows.append((
            people[pid].pseudonym, lab.code, lab.loinc or "", day, period, _num(value),
            _safe_unit(unit), canonical_value, _safe_unit(canonical_unit),
            result if result in getattr(lab, "results", ()) else "",
            method if method in _METHODS else "", reference_low, reference_high,
            _safe_code(flag), source))
    return rows


# --------------------------------------------------------------------------- the tables

def _frame(name: str, rows: list[tuple] | list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """A table with the dictionary's columns, in order, with pandas dtypes for the types,
    sorted by pseudonym and day (so row order says nothing about database order). ``rows``
    are tuples in the dictionary's column order (or dicts, or a frame)."""
    spec = DICTIONARY[name]["columns"]
    columns = [c[0] for c in spec]
    if isinstance(rows, list) and rows and isinstance(rows[0], tuple):
        df = pd.DataFrame.from_records(rows, columns=columns)
    else:
        df = pd.DataFrame(rows, columns=columns)
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


#: Patients read and built at a time: the export's memory is that of one chunk's rows (a
#: year of diaries: about 1,300 rows a patient), whatever the clinic's size.
CHUNK_PATIENTS = 500


class _Build:
    """One export's build, a chunk of patients at a time (issue 18).

    The patients table and the k-anonymity step come first (they need the quasi-identifiers
    only); then :meth:`chunks` reads and builds the event tables of the exported patients in
    pseudonym order, ``chunk`` patients at a time, so that the chunks' tables, one after the
    other, are the whole tables in their order (sorted by pseudonym and day, ties in record
    order: every row of a patient is in one chunk). The suppressed patients' records are read
    last, only to count what is left out (the report says how many rows each table lost), and
    never become tables. :meth:`dataset` is the result once every chunk has been taken.
    """

    def __init__(self, deidentifier: deid.Deidentifier, *, options: deid.Options | None,
                 now: dt.datetime | None, chunk: int = CHUNK_PATIENTS) -> None:
        from django.utils import timezone

        self.timings: dict[str, float] = {}
        self._clock = time.perf_counter()
        self.options = options or options_from_settings()
        self.chunk = max(1, int(chunk))
        self.n_consented = len(consented_patient_ids())
        self.cohort = _cohort(deidentifier, now or timezone.now(), self.options)
        self.step("cohort")
        raw = pd.DataFrame(self.cohort.raw_patients, columns=list(anonymity.RAW_COLUMNS))
        patients, self.k_report = anonymity.anonymise(raw, k=self.options.k,
                                                      max_suppressed=self.options.max_suppressed)
        self.patients = _frame("patients", patients)
        by_pseudonym = {p.pseudonym: pk for pk, p in self.cohort.people.items()}
        self.exported = [by_pseudonym[p] for p in self.patients["patient_id"].tolist()]
        kept = set(self.exported)
        self.suppressed = [pk for pk in self.cohort.people if pk not in kept]
        self.suppressed_rows = dict.fromkeys(TABLES[1:], 0)
        self.step("k-anonymity")

    def reset_clock(self) -> None:
        """The time since the last step is the caller's (writing), not the build's."""
        self._clock = time.perf_counter()

    def step(self, name: str) -> None:
        now_ = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now_ - self._clock
        self._clock = now_

    def _rows(self, pids: list[int]) -> dict[str, list[tuple]]:
        """The rows of ``pids``, with the cyclic garbage collector paused: they are tuples
        of scalars (no cycles to find), and its full collections, each a pass over every
        live object, took a fifth of the build's CPU time at 200 patients (docs/research.md).
        Whatever else made cycles is collected when it resumes, a chunk later."""
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._read(pids)
        finally:
            if paused:
                gc.enable()

    def _read(self, pids: list[int]) -> dict[str, list[tuple]]:
        cohort = self.cohort
        doses = _dose_rows(cohort, pids)
        self.step("doses")
        assessments, side_effects = _assessment_rows(cohort, pids)
        self.step("assessments")
        diary = _diary_days(cohort, pids)
        self.step("diary days")
        exposure = _exposure_rows(cohort, pids, doses, diary, self.timings)
        self.step("daily exposure table")  # less the cohort path's own time, counted apart
        labs = _lab_rows(cohort, pids)
        self.step("labs")
        return {"doses": doses.rows, "daily_exposure": exposure, "assessments": assessments,
                "labs": labs, "side_effects": side_effects}

    def chunks(self) -> Iterator[dict[str, pd.DataFrame]]:
        """The event tables of the exported patients, a chunk of patients at a time."""
        for start in range(0, len(self.exported), self.chunk):
            rows = self._rows(self.exported[start:start + self.chunk])
            tables = {name: _frame(name, rows[name]) for name in TABLES[1:]}
            self.step("tables")
            yield tables
            self.reset_clock()
        for start in range(0, len(self.suppressed), self.chunk):
            rows = self._rows(self.suppressed[start:start + self.chunk])
            for name in TABLES[1:]:
                self.suppressed_rows[name] += len(rows[name])
            self.step("tables")

    def dataset(self, tables: dict[str, pd.DataFrame], counts: dict[str, int]) -> ResearchDataset:
        from speciosa.clinic.models import Patient

        self.timings["daily exposure table"] = (self.timings.get("daily exposure table", 0.0)
                                                - self.timings.get("daily exposure (cohort path)", 0.0))
        return ResearchDataset(
            timings=self.timings, tables=tables, n_patients_in_clinic=Patient.objects.count(),
            n_consented=self.n_consented, counts={"patients": len(self.patients), **counts},
            report=_report(self.options, self.cohort, self.n_consented, self.k_report,
                           self.suppressed_rows),
            patient_pks=sorted(self.exported))


def _concat(frames: list[pd.DataFrame], name: str) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return _frame(name, [])
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


def build_dataset(deidentifier: deid.Deidentifier, *, options: deid.Options | None = None,
                  now: dt.datetime | None = None, chunk: int = CHUNK_PATIENTS) -> ResearchDataset:
    """Read the consented patients' current records and return the de-identified tables.

    The tables are built a chunk of ``chunk`` patients at a time and put together at the end
    (:class:`_Build`); an export written to files never holds them whole
    (:func:`export_research`).

    Parameters
    ----------
    deidentifier : Deidentifier
        The site's keyed pseudonyms and withheld days.
    options : Options, optional
        k, the suppression limit and the withheld days (default: the site's settings).
    now : datetime, optional
        The moment of the export (default: now); events after it are implausible.
    """
    build = _Build(deidentifier, options=options, now=now, chunk=chunk)
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in TABLES[1:]}
    for tables in build.chunks():
        for name, df in tables.items():
            parts[name].append(df)
    tables = {"patients": build.patients}
    tables.update({name: _concat(parts[name], name) for name in TABLES[1:]})
    build.step("tables")
    return build.dataset(tables, {name: len(tables[name]) for name in TABLES[1:]})


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


def _arrow_schema(name: str) -> Any:
    """The Parquet schema of table ``name`` (from its empty frame: the dtypes fix the types),
    with the notice in its metadata and without pandas' own."""
    import pyarrow as pa

    schema = pa.Schema.from_pandas(_frame(name, []), preserve_index=False)
    return schema.with_metadata({b"speciosa.notice": deid.PART2_NOTICE.encode(),
                                 b"speciosa.table": name.encode()})


class _TableWriter:
    """``<name>.parquet`` (a row group per chunk, the notice in its metadata) and
    ``<name>.csv``, written a chunk of rows at a time."""

    def __init__(self, name: str, into: Path) -> None:
        import pyarrow.parquet as pq

        self.name = name
        self.schema = _arrow_schema(name)
        self.parquet = pq.ParquetWriter(into / f"{name}.parquet", self.schema)
        self.csv = open(into / f"{name}.csv", "w", encoding="utf-8", newline="")  # noqa: SIM115
        self.rows = 0
        self._header = False

    def write(self, df: pd.DataFrame) -> None:
        import pyarrow as pa

        if len(df) or not self._header:
            df.to_csv(self.csv, index=False, header=not self._header)
            self._header = True
        if len(df):
            self.parquet.write_table(pa.Table.from_pandas(df, schema=self.schema,
                                                          preserve_index=False))
        self.rows += len(df)

    def close(self) -> list[str]:
        if not self._header:
            self.write(_frame(self.name, []))
        self.parquet.close()
        self.csv.close()
        return [f"{self.name}.parquet", f"{self.name}.csv"]


def _write_table(df: pd.DataFrame, name: str, into: Path) -> list[str]:
    """``<name>.parquet`` (with the notice in its metadata) and ``<name>.csv``."""
    writer = _TableWriter(name, into)
    try:
        writer.write(df)
    finally:
        files = writer.close()
    return files


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


def _fresh_folder(out: Path) -> Path:
    """A temporary directory beside ``out`` (which must not exist or be empty)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty directory; choose a new one")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".speciosa-research-", dir=out.parent))


def _move_into_place(tmp: Path, out: Path, names: list[str]) -> None:
    if out.exists():
        for name in names:
            os.replace(tmp / name, out / name)
        tmp.rmdir()
    else:
        os.replace(tmp, out)


def write_dataset(dataset: ResearchDataset, out: Path) -> list[str]:
    """Write every table as Parquet and CSV, the data dictionary, NOTICE, the
    de-identification report and a manifest into ``out`` (which must not exist or be
    empty). Returns the file names written.

    Files are written to a temporary directory beside ``out`` first and moved into place
    at the end, so a failure leaves no half-written export.
    """
    out = Path(out)
    tmp = _fresh_folder(out)
    try:
        names = [f for name in TABLES for f in _write_table(dataset.tables[name], name, tmp)]
        names += _write_documents(dataset, tmp)
        _move_into_place(tmp, out, names)
        return names
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


class ConsentChanged(RuntimeError):
    """A patient being exported withdrew their research consent while the export was built."""


def _check_still_consented(build: _Build) -> None:
    """Every exported patient's research consent is still given once the last chunk is read:
    the chunks are read minutes apart at clinic scale (25 min at 10,000 patients), and a
    patient who withdrew meanwhile is in the files already (the patients table first). The
    export is then refused, nothing moved into place; a new one leaves the patient out."""
    gone = set(build.exported) - set(consented_patient_ids())
    if gone:
        raise ConsentChanged(f"{len(gone)} patient(s) withdrew their research consent while "
                             "the export was built; nothing was written. Run it again.")


def write_streamed(deidentifier: deid.Deidentifier, out: Path, *,
                   options: deid.Options | None = None, now: dt.datetime | None = None,
                   chunk: int = CHUNK_PATIENTS) -> tuple[ResearchDataset, list[str]]:
    """Build and write the export a chunk of patients at a time (issue 18): the same files as
    ``write_dataset(build_dataset(...), out)``, in the memory of one chunk's rows whatever the
    clinic's size. Returns the dataset (its ``tables`` hold the patients table only: the
    event tables went to the files) and the file names written."""
    out = Path(out)
    tmp = _fresh_folder(out)
    writers: list[_TableWriter] = []
    cpu = time.process_time()
    try:
        build = _Build(deidentifier, options=options, now=now, chunk=chunk)
        writers = [_TableWriter(name, tmp) for name in TABLES]
        writer = dict(zip(TABLES, writers, strict=True))
        for tables in itertools.chain([{"patients": build.patients}], build.chunks()):
            started, cpu_started = time.perf_counter(), time.process_time()
            for name, df in tables.items():
                writer[name].write(df)
            build.reset_clock()
            build.timings["write"] = build.timings.get("write", 0.0) + time.perf_counter() - started
            build.timings["write (CPU)"] = (build.timings.get("write (CPU)", 0.0)
                                            + time.process_time() - cpu_started)
        _check_still_consented(build)
        started, cpu_started = time.perf_counter(), time.process_time()
        names = [f for w in writers for f in w.close()]
        writers = []
        dataset = build.dataset({"patients": build.patients},
                                {w.name: w.rows for w in writer.values() if w.name != "patients"})
        names += _write_documents(dataset, tmp)
        _move_into_place(tmp, out, names)
        build.timings["write"] = build.timings.get("write", 0.0) + time.perf_counter() - started
        build.timings["write (CPU)"] = (build.timings.get("write (CPU)", 0.0)
                                        + time.process_time() - cpu_started)
        build.timings["whole (CPU)"] = time.process_time() - cpu
        return dataset, names
    finally:
        for w in writers:
            w.parquet.close()
            w.csv.close()
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
    dataset, files = write_streamed(deid.Deidentifier(key), out, options=options)
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
