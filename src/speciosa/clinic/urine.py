"""Urine drug test panels (issue 19): validation, recording and the reading against what is
expected (:mod:`speciosa.knowledge.drug_panels`).

A panel is one :class:`~speciosa.clinic.models.UrinePanel` with one ``uds-*``
:class:`~speciosa.clinic.models.LabResult` per analyte (``panel`` set), written in one
transaction, audited, once per submission token; a positive screen then feeds the rules
exactly as a single result does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from speciosa.clinic import access, writes
from speciosa.clinic.models import (
    Dose,
    LabResult,
    Medication,
    Patient,
    Source,
    TreatmentEpisode,
    UrinePanel,
)
from speciosa.knowledge import drug_panels
from speciosa.knowledge import labs as klabs

__all__ = ["KRATOM_WINDOW_DAYS", "expected_analytes", "read", "record_panel", "validate_panel"]

#: Reported kratom doses in this many days before collection make mitragynine expected.
#: Speciosa's choice: the references give no urine detection window for mitragynine
#: (UNCONFIRMED).
KRATOM_WINDOW_DAYS = 7

_RESULTS = ("positive", "negative", "indeterminate")


def _decimal(raw: Any, field: str, low: Decimal, high: Decimal, what: str,
             errors: dict[str, str]) -> Decimal | None:
    if raw in (None, ""):
        return None
    try:
        value = Decimal(str(raw).strip())
        if not value.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        errors[field] = f"Enter {what} as a number, for example {low + (high - low) / 2}."
        return None
    if not low <= value <= high:
        errors[field] = f"Enter {what} between {low} and {high}."
        return None
    return value


def _flag(raw: Any) -> bool | None:
    if raw in (None, ""):
        return None
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("yes", "true", "1", "on"):
        return True
    if text in ("no", "false", "0", "off"):
        return False
    return None


def validate_panel(patient: Patient, data: Mapping[str, Any]) -> dict[str, Any]:
    """The panel's fields and its analytes (lab code -> LabResult fields), or a
    ValidationError naming every field to fix (nothing is stored)."""
    errors: dict[str, str] = {}
    collected_at = data.get("collected_at")
    if not isinstance(collected_at, dt.datetime):
        errors["collected_at"] = "Give the date and time the specimen was collected."
    else:
        try:
            writes.in_window(patient, collected_at, "collected_at")
        except ValidationError as exc:
            errors.update({k: " ".join(v) for k, v in exc.message_dict.items()})
    panels = data.get("panels") or []
    if isinstance(panels, str):
        panels = [panels]
    known = {p.id for p in drug_panels.PANELS}
    if not isinstance(panels, list | tuple) or not panels:
        errors["panels"] = "Choose at least one panel: " + ", ".join(sorted(known)) + "."
        panels = []
    elif bad := [p for p in panels if p not in known]:
        errors["panels"] = (f"Unknown panel {', '.join(map(str, bad))}: choose from "
                            + ", ".join(sorted(known)) + ".")
    panels = list(dict.fromkeys(p for p in panels if p in known))
    method = str(data.get("method") or "").strip()
    if method not in drug_panels.METHODS:
        errors["method"] = "Choose the method: screen (immunoassay) or confirmation (e.g. LC-MS/MS)."
    validity = {
        "creatinine_mg_dl": _decimal(data.get("creatinine_mg_dl"), "creatinine_mg_dl",
                                     Decimal(0), Decimal(1000), "creatinine in mg/dL", errors),
        "ph": _decimal(data.get("ph"), "ph", Decimal(0), Decimal(14), "the pH", errors),
        "specific_gravity": _decimal(data.get("specific_gravity"), "specific_gravity",
                                     Decimal("0.9"), Decimal("1.2"), "the specific gravity",
                                     errors),
        "temperature_in_range": _flag(data.get("temperature_in_range")),
        "observed": _flag(data.get("observed")),
    }
    allowed = [a for p in panels for a in drug_panels.get_panel(p).analytes]
    raw = data.get("analytes") or {}
    if not isinstance(raw, Mapping):
        errors["analytes"] = "Give each analyte's result."
        raw = {}
    unknown = [str(code) for code in raw if code not in allowed]
    if unknown:
        errors["analytes"] = (f"Unknown analyte {', '.join(unknown)} for the panels chosen; "
                              f"the panels test {', '.join(allowed) or 'nothing yet'}.")
    analytes: dict[str, dict[str, Any]] = {}
    for code in allowed:
        entry = raw.get(code)
        field = f"analytes.{code}"
        if isinstance(entry, str):
            entry = {"result": entry}
        if not isinstance(entry, Mapping) or all(entry.get(k) in (None, "")
                                                 for k in ("result", "value")):
            errors[field] = f"Give the result for {klabs.get_lab(code).name}."
            continue
        analytes[code] = _analyte(code, entry, field, errors)
    if errors:
        raise writes.Invalid(errors)
    problems = drug_panels.specimen_problems(**{k: validity[k] for k in (
        "creatinine_mg_dl", "ph", "specific_gravity", "temperature_in_range")})
    return {"collected_at": collected_at, "panels": panels, "method": method,
            "method_detail": str(data.get("method_detail") or "").strip()[:60],
            "note": str(data.get("note") or "").strip()[:500],
            "specimen_problems": problems, **validity, "analytes": analytes}


def _analyte(code: str, entry: Mapping[str, Any], field: str,
             errors: dict[str, str]) -> dict[str, Any]:
    name = klabs.get_lab(code).name
    value_raw = entry.get("value")
    if value_raw in (None, ""):
        result = str(entry.get("result") or "").strip().lower()
        if result not in _RESULTS:
            errors[field] = f"{name}: choose positive, negative or indeterminate, or give a value with its cut-off."
            return {}
        return {"result": result, "value": None, "cutoff": None, "unit": ""}
    value = _decimal(value_raw, field, Decimal(0), Decimal("99999999"), f"the {name} value", errors)
    cutoff = _decimal(entry.get("cutoff"), field, Decimal(0), Decimal("99999999"),
                      f"the {name} cut-off", errors) if field not in errors else None
    unit = str(entry.get("unit") or "").strip()
    if field in errors:
        return {}
    if cutoff is None:
        errors[field] = f"{name}: a value needs the cut-off it was read against (e.g. 5 ng/mL)."
        return {}
    if not unit:
        errors[field] = f"{name}: give the unit of the value and cut-off, e.g. ng/mL."
        return {}
    result = "positive" if value >= cutoff else "negative"
    return {"result": result, "value": value, "cutoff": cutoff, "unit": unit[:32]}


def record_panel(user, patient: Patient, data: Mapping[str, Any], *, token=None,
                 source: str = Source.CLINICIAN) -> UrinePanel:
    """Validate and store one panel with its analytes (all or nothing, once per token)."""
    writes.require(access.can_write_clinical(user, patient))
    clean = validate_panel(patient, data)
    analytes = clean.pop("analytes")

    def create() -> UrinePanel:
        panel = UrinePanel.objects.create(patient=patient, entered_by=user, source=source, **clean)
        writes.audit(user, writes.Action.CREATE, panel, patient=patient,
                     after=writes.snapshot(panel))
        for code, fields in analytes.items():
            lab = klabs.get_lab(code)
            loinc = (lab.method_loinc or {}).get(clean["method"]) or lab.loinc or ""
            row = LabResult.objects.create(
                patient=patient, entered_by=user, source=source, panel=panel, lab=code,
                loinc=loinc, collected_at=clean["collected_at"], method=clean["method"],
                result=fields["result"], value=fields["value"], cutoff=fields["cutoff"],
                unit=fields["unit"], flag="abnormal" if fields["result"] == "positive" else "normal")
            writes.audit(user, writes.Action.CREATE, row, patient=patient,
                         after=writes.snapshot(row))
        return panel

    panel, created = writes.once(user, token, "urine-panel", create, model=UrinePanel,
                                 patient=patient)
    if created:
        writes.after_change(patient)
    return panel


def expected_analytes(patient: Patient, at: dt.datetime) -> dict[str, str]:
    """Analytes expected at ``at`` (lab code -> why): current medications and treatment
    episodes, and kratom doses reported in the :data:`KRATOM_WINDOW_DAYS` before."""
    day = at.date()
    out: dict[str, str] = {}
    meds = [m for m in Medication.objects.current().filter(patient=patient, start__lte=day)
            if m.is_current_status and (m.end is None or m.end >= day)]
    for code, name in drug_panels.expected_from_medications(m.drug or m.name for m in meds).items():
        out.setdefault(code, f"{name} (current medication)")
    episodes = TreatmentEpisode.objects.current().filter(patient=patient, start__lte=day)
    for ep in episodes:
        if ep.end is not None and ep.end < day:
            continue
        for code in drug_panels.expected_for_drug(ep.drug):
            out.setdefault(code, f"{ep.drug} (treatment episode)")
    since = at - dt.timedelta(days=KRATOM_WINDOW_DAYS)
    if Dose.objects.current().filter(patient=patient, taken_at__gte=since,
                                     taken_at__lte=at).exists():
        out.setdefault("uds-mitragynine",
                       f"kratom doses reported in the {KRATOM_WINDOW_DAYS} days before")
    return out


def read(panel: UrinePanel) -> tuple[drug_panels.PanelReading, dict[str, str]]:
    """The panel's reading and the expected analytes with why."""
    expected = expected_analytes(panel.patient, panel.collected_at)
    results = {r.lab: r.result for r in panel.analytes.current().order_by("pk")}
    return drug_panels.read_panel(results, expected, specimen=panel.specimen_problems), expected
