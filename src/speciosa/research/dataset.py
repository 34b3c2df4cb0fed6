"""The de-identified, analysis-ready research dataset and ``speciosa export research``.

Only patients whose most recent research consent is *given* are included. Every table is
tidy (one row per observation, one column per variable) and keyed by the pseudonymous
``patient_id``; see :mod:`speciosa.research.deid` for the method and :data:`DICTIONARY` for
every column. Tables:

``patients``        one row per patient: sex, age at entry ("90+" above 89), site code
``doses``           one row per recorded dose (no product names: a category instead)
``daily_exposure``  one row per patient-day with a diary or a dose: estimated mitragynine
                    mg/day from :func:`speciosa.pharmacology.doses.daily_mitragynine_mg`
``assessments``     one row per completed instrument (totals, bands, flags, item answers)
``labs``            one row per laboratory result (as reported and canonical)
``side_effects``    one row per side-effect checklist item answered
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from . import deid

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
}

EXPOSURE_MEASURE = (
    "estimated mitragynine mg per calendar day (typical estimate), the sum over the day's "
    "recorded doses from speciosa.pharmacology.doses.daily_mitragynine_mg; 0 on a diary day "
    "without doses"
)

_UNIT_RE = re.compile(r"^[A-Za-z0-9\[\]/%.*^{}()_-]{0,32}$")
_CODE_RE = re.compile(r"^[a-z0-9_-]{0,24}$")
_METHODS = ("screen", "confirmation")

# (column, type, unit, description)
_Col = tuple[str, str, str, str]
_PATIENT_ID: _Col = ("patient_id", "string", "", "pseudonymous patient id: P- and 16 "
                     "characters of HMAC-SHA256 of site and MRN under the site's research key")
_DAY: _Col = ("day", "date", "", "date of the event in the site's local time, shifted by the "
              "patient's date offset (-180..+180 days, never 0; intervals kept)")
_DAY_IN_CARE: _Col = ("day_in_care", "integer", "d", "days from entry into care to the event "
                      "(the same with real or shifted dates)")
_SOURCE: _Col = ("source", "string", "", "who entered it: patient, clinician or import")

DICTIONARY: dict[str, dict[str, Any]] = {
    "patients": {
        "description": "One row per consented patient.",
        "columns": [
            _PATIENT_ID,
            ("site_id", "string", "", "pseudonymous site code (S- and 8 characters)"),
            ("sex", "string", "", "female or male"),
            ("age_at_entry", "string", "a", "whole years of age at entry into care; '90+' "
             "above 89 (HIPAA Safe Harbor); birth dates and years are not exported"),
            ("pregnant", "boolean", "", "recorded as pregnant (current record)"),
            ("breastfeeding", "boolean", "", "recorded as breastfeeding (current record)"),
            ("in_care_since", "date", "", "date of entry into care, shifted like every date"),
        ],
    },
    "doses": {
        "description": "One row per recorded kratom dose (current records only).",
        "columns": [
            _PATIENT_ID,
            ("taken_at", "datetime", "", "local date and time taken; date shifted, clock time "
             "kept, no time-zone offset"),
            _DAY, _DAY_IN_CARE,
            ("amount", "number", "", "amount as recorded, in `unit`"),
            ("unit", "string", "", "g (leaf), capsule, glass (tea), mg_extract, mg_mitragynine"),
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
            _PATIENT_ID, _DAY, _DAY_IN_CARE,
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
            ("at", "datetime", "", "local date and time, date shifted"),
            _DAY, _DAY_IN_CARE,
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
            ("collected_at", "datetime", "", "local date and time of collection, date shifted"),
            _DAY, _DAY_IN_CARE,
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
            _PATIENT_ID,
            ("at", "datetime", "", "local date and time, date shifted"),
            _DAY, _DAY_IN_CARE,
            ("item", "string", "", "side-effect item id (reduced-sex-drive, nausea, ...)"),
            ("present", "integer", "", "1 = reported, 0 = not reported"),
            _SOURCE,
        ],
    },
}


@dataclass
class ResearchDataset:
    """The de-identified tables and cohort counts."""

    tables: dict[str, pd.DataFrame]
    n_patients_in_clinic: int
    n_consented: int
    exposure_measure: str = EXPOSURE_MEASURE
    counts: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------- building

def consented_patient_ids() -> list[int]:
    """Database ids of patients whose most recent research consent is given."""
    from speciosa.clinic.models import Consent

    latest: dict[int, bool] = {}
    rows = Consent.objects.filter(kind=Consent.Kind.RESEARCH).order_by("patient_id", "at", "id")
    for patient_id, given in rows.values_list("patient_id", "given"):
        latest[patient_id] = bool(given)
    return sorted(pid for pid, given in latest.items() if given)


@dataclass(frozen=True)
class _Who:
    pseudonym: str
    offset: int
    tz: ZoneInfo
    entry: dt.date  # real date of entry into care (never exported)


def _num(x: Any) -> float | None:
    return None if x is None else float(x)


def _known_instruments() -> dict[str, Any]:
    from speciosa.knowledge import instruments as kinstruments

    return {inst.id: inst for inst in kinstruments.all_instruments()}


def _known_labs() -> dict[str, Any]:
    from speciosa.knowledge import labs as klabs

    return {lab.code: lab for lab in klabs.all_labs()}


def _safe_unit(unit: str) -> str:
    return unit if _UNIT_RE.match(unit or "") else ""


def _safe_code(code: str) -> str:
    return code if _CODE_RE.match(code or "") else ""


def _frame(name: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A table with the dictionary's columns, in order, with pandas dtypes for the types."""
    columns = [c[0] for c in DICTIONARY[name]["columns"]]
    df = pd.DataFrame(rows, columns=columns)
    for col, kind, _unit, _desc in DICTIONARY[name]["columns"]:
        if kind == "date":
            df[col] = pd.to_datetime(df[col]).dt.date if len(df) else pd.Series([], dtype="object")
        elif kind == "datetime":
            df[col] = pd.to_datetime(df[col]).astype("datetime64[s]")
        elif kind == "integer":
            df[col] = df[col].astype("Int64")
        elif kind == "number":
            df[col] = df[col].astype("Float64")
        elif kind == "boolean":
            df[col] = df[col].astype("boolean")
        else:
            df[col] = df[col].astype("string")
    return df


def build_dataset(deidentifier: deid.Deidentifier) -> ResearchDataset:
    """Read the consented patients' current records and return the de-identified tables."""
    from speciosa.clinic.models import Assessment, DiaryDay, Dose, LabResult, Patient
    from speciosa.pharmacology import doses as pdoses

    ids = consented_patient_ids()
    patients = Patient.objects.filter(pk__in=ids).select_related("site").order_by("pk")
    who: dict[int, _Who] = {}
    patient_rows = []
    for p in patients:
        offset = deidentifier.date_offset_days(p.site.name, p.identifier)
        who[p.pk] = _Who(deidentifier.patient_pseudonym(p.site.name, p.identifier), offset,
                         ZoneInfo(p.site.time_zone), p.in_care_since)
        patient_rows.append({
            "patient_id": who[p.pk].pseudonym,
            "site_id": deidentifier.site_pseudonym(p.site.name),
            "sex": p.sex,
            "age_at_entry": deid.age_category(p.birth_date, p.in_care_since),
            "pregnant": p.pregnant,
            "breastfeeding": p.breastfeeding,
            "in_care_since": deid.shift_date(p.in_care_since, offset),
        })
    if len({w.pseudonym for w in who.values()}) != len(who):  # pragma: no cover - 80 bits
        raise RuntimeError("pseudonym collision; use another research key")

    def when(pid: int, moment: dt.datetime) -> tuple[dict[str, Any], dt.datetime]:
        """The patient columns of an event at ``moment``, and its shifted local time."""
        w = who[pid]
        local = moment.astimezone(w.tz)
        shifted = deid.shift_local(moment, w.tz, w.offset)
        return {"patient_id": w.pseudonym, "day": shifted.date(),
                "day_in_care": (local.date() - w.entry).days}, shifted

    # doses and daily exposure
    dose_rows = []
    per_patient: dict[int, list[Any]] = defaultdict(list)
    per_day_counts: dict[tuple[int, dt.date], list[int]] = defaultdict(lambda: [0, 0])
    for d in (Dose.objects.current().filter(patient_id__in=ids).order_by("patient_id", "taken_at", "id")
              .values("patient_id", "taken_at", "amount", "unit", "product", "mitragynine_percent",
                      "grams_per_capsule", "mitragynine_mg", "source")):
        pid = d["patient_id"]
        base, shifted = when(pid, d["taken_at"])
        dose_rows.append({
            **base, "taken_at": shifted, "amount": _num(d["amount"]),
            "unit": d["unit"] if d["unit"] in PRODUCT_CATEGORY else "",
            "product_category": PRODUCT_CATEGORY.get(d["unit"], "other"),
            "mitragynine_percent": _num(d["mitragynine_percent"]),
            "grams_per_capsule": _num(d["grams_per_capsule"]),
            "mitragynine_mg": d["mitragynine_mg"], "source": d["source"]})
        per_patient[pid].append(pdoses.Dose(
            taken_at=d["taken_at"], amount=float(d["amount"]), unit=d["unit"],
            mitragynine_percent=_num(d["mitragynine_percent"]),
            grams_per_capsule=_num(d["grams_per_capsule"]), product=d["product"] or None))
        local_day = d["taken_at"].astimezone(who[pid].tz).date()
        counts = per_day_counts[(pid, local_day)]
        counts[0] += 1
        counts[1] += d["mitragynine_mg"] is None
    diary_days: dict[int, set[dt.date]] = defaultdict(set)
    for pid, day in DiaryDay.objects.filter(patient_id__in=ids).values_list("patient_id", "day"):
        diary_days[pid].add(day)

    exposure_rows = []
    for pid in who:
        w = who[pid]
        mg_by_day = _daily_mg(pdoses, per_patient.get(pid, []), w.tz)
        for day in sorted(set(mg_by_day) | diary_days[pid]):
            n, not_converted = per_day_counts.get((pid, day), (0, 0))
            exposure_rows.append({
                "patient_id": w.pseudonym, "day": deid.shift_date(day, w.offset),
                "day_in_care": (day - w.entry).days,
                "mitragynine_mg": float(mg_by_day.get(day, 0.0)), "n_doses": n,
                "n_doses_not_converted": not_converted, "diary": day in diary_days[pid]})

    # assessments and side effects
    instruments = _known_instruments()
    assessment_rows, side_rows = [], []
    for a in (Assessment.objects.current().filter(patient_id__in=ids)
              .order_by("patient_id", "at", "id")
              .values("patient_id", "instrument", "instrument_version", "at", "items", "total",
                      "band", "complete", "flags", "source")):
        inst = instruments.get(a["instrument"])
        if inst is None:
            continue  # an instrument this software does not know: nothing safe to say
        base, at = when(a["patient_id"], a["at"])
        item_ids = {it.id for it in inst.items}
        answers = {k: v for k, v in (a["items"] or {}).items()
                   if k in item_ids and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if inst.id == SIDE_EFFECTS_INSTRUMENT:
            for item in sorted(answers):
                side_rows.append({**base, "at": at, "item": item, "present": int(answers[item] > 0),
                                  "source": a["source"]})
            continue
        flag_ids = {f.id for f in inst.flags}
        flags = [f for f in (a["flags"] or []) if isinstance(f, str)
                 and (f in flag_ids or f.removesuffix("-depends-on-sex") in flag_ids)]
        bands = {b.label for b in inst.bands}
        assessment_rows.append({
            **base, "at": at, "instrument": inst.id,
            "instrument_version": _safe_code(str(a["instrument_version"]).lower()) or "",
            "total": a["total"], "band": a["band"] if a["band"] in bands else "",
            "complete": a["complete"], "flags": json.dumps(flags),
            "items": json.dumps(answers, sort_keys=True), "source": a["source"]})

    # labs
    labs = _known_labs()
    lab_rows = []
    for r in (LabResult.objects.current().filter(patient_id__in=ids)
              .order_by("patient_id", "collected_at", "id")
              .values("patient_id", "lab", "loinc", "collected_at", "value", "unit",
                      "canonical_value", "canonical_unit", "result", "method", "reference_low",
                      "reference_high", "flag", "source")):
        lab = labs.get(r["lab"])
        if lab is None:
            continue
        base, shifted = when(r["patient_id"], r["collected_at"])
        lab_rows.append({
            **base, "collected_at": shifted, "lab": lab.code,
            "loinc": lab.loinc or "", "value": _num(r["value"]), "unit": _safe_unit(r["unit"]),
            "canonical_value": r["canonical_value"],
            "canonical_unit": _safe_unit(r["canonical_unit"]),
            "result": r["result"] if r["result"] in getattr(lab, "results", ()) else "",
            "method": r["method"] if r["method"] in _METHODS else "",
            "reference_low": r["reference_low"], "reference_high": r["reference_high"],
            "flag": _safe_code(r["flag"]), "source": r["source"]})

    tables = {
        "patients": _frame("patients", patient_rows),
        "doses": _frame("doses", dose_rows),
        "daily_exposure": _frame("daily_exposure", exposure_rows),
        "assessments": _frame("assessments", assessment_rows),
        "labs": _frame("labs", lab_rows),
        "side_effects": _frame("side_effects", side_rows),
    }
    return ResearchDataset(tables=tables, n_patients_in_clinic=Patient.objects.count(),
                           n_consented=len(ids),
                           counts={name: len(df) for name, df in tables.items()})


def _daily_mg(pdoses: Any, doses: list[Any], tz: ZoneInfo) -> dict[dt.date, float]:
    """Typical mitragynine mg per local day from the one implementation
    (:func:`speciosa.pharmacology.doses.daily_mitragynine_mg`); it skips a dose it cannot
    convert, which the table counts in ``n_doses_not_converted``."""
    if not doses:
        return {}
    return {day: float(mg) for day, mg in pdoses.daily_mitragynine_mg(doses, tz).items()}


# --------------------------------------------------------------------------- writing

def dictionary_markdown(dataset: ResearchDataset) -> str:
    """The data dictionary as Markdown, opening with the 42 CFR Part 2 notice."""
    lines = ["# Speciosa research export: data dictionary", "", "> " + deid.PART2_NOTICE, "",
             "De-identified under HIPAA Safe Harbor (45 CFR 164.514(b)(2)): pseudonymous "
             "patient ids from a keyed hash, every date shifted by a per-patient offset of "
             "-180..+180 days (intervals within a patient are kept), ages above 89 as '90+', "
             "no birth dates, no free text. Only patients whose latest research consent is "
             "given are included. See docs/research.md.", "",
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
        "deidentification": "HIPAA Safe Harbor, 45 CFR 164.514(b)(2); see docs/research.md",
        "exposure_measure": dataset.exposure_measure,
        "tables": {name: {"description": DICTIONARY[name]["description"],
                          "rows": dataset.counts.get(name, 0),
                          "files": [f"{name}.parquet", f"{name}.csv"],
                          "columns": [{"name": c, "type": t, "unit": u, "description": d}
                                      for c, t, u, d in DICTIONARY[name]["columns"]]}
                   for name in TABLES},
    }


def write_dataset(dataset: ResearchDataset, out: Path) -> list[str]:
    """Write every table as Parquet and CSV, the data dictionary, NOTICE and a manifest into
    ``out`` (which must not exist or be empty). Returns the file names written.

    Files are written to a temporary directory beside ``out`` first and moved into place
    at the end, so a failure leaves no half-written export.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty directory; choose a new one")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".speciosa-research-", dir=out.parent))
    try:
        names = []
        for name in TABLES:
            df = dataset.tables[name]
            table = pa.Table.from_pandas(df, preserve_index=False)
            meta = dict(table.schema.metadata or {})
            meta.pop(b"pandas", None)
            meta[b"speciosa.notice"] = deid.PART2_NOTICE.encode()
            meta[b"speciosa.table"] = name.encode()
            pq.write_table(table.replace_schema_metadata(meta), tmp / f"{name}.parquet")
            df.to_csv(tmp / f"{name}.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S")
            names += [f"{name}.parquet", f"{name}.csv"]
        (tmp / "NOTICE.txt").write_text(deid.PART2_NOTICE + "\n", encoding="utf-8")
        (tmp / "data_dictionary.md").write_text(dictionary_markdown(dataset), encoding="utf-8")
        (tmp / "data_dictionary.json").write_text(
            json.dumps(dictionary_json(dataset), indent=2), encoding="utf-8")
        manifest = {"notice": deid.PART2_NOTICE, "software": "speciosa",
                    "patients": dataset.n_consented, "rows": dataset.counts,
                    "deidentification": "HIPAA Safe Harbor (45 CFR 164.514(b)(2))"}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        names += ["NOTICE.txt", "data_dictionary.md", "data_dictionary.json", "manifest.json"]
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


def export_research(out: Path, *, purpose: str, key: bytes, user=None) -> ResearchDataset:
    """Build, write and audit a research export (one ``AuditEntry`` with action ``export``).

    The audit entry records the purpose of use, the row counts and the number of patients;
    it is written only once the files are in place.
    """
    from speciosa.clinic.models import AuditEntry

    dataset = build_dataset(deid.Deidentifier(key))
    files = write_dataset(dataset, out)
    AuditEntry.objects.create(
        user=user, action=AuditEntry.Action.EXPORT, model="ResearchExport",
        reason=f"purpose of use: {purpose}"[:500],
        after={"kind": "research", "purpose": purpose[:300], "patients": dataset.n_consented,
               "rows": dataset.counts, "files": files, "deidentification": "safe-harbor",
               "notice": "42 CFR 2.32"})
    return dataset
