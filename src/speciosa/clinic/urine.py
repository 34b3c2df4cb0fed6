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
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext, gettext_lazy, pgettext

from speciosa.clinic import access, writes
from speciosa.clinic.integrity import site_zone
from speciosa.clinic.models import (
    Dose,
    LabResult,
    Medication,
    Patient,
    Source,
    TreatmentEpisode,
    UrinePanel,
)
from speciosa.clinic.numbers import finite_decimal, local_number
from speciosa.knowledge import drug_panels
from speciosa.knowledge import labs as klabs

__all__ = ["KRATOM_WINDOW_DAYS", "correct_panel", "expected_analytes", "expected_from",
           "panel_data", "panel_for",
           "read", "record_panel", "store_panel", "validate_panel", "withdraw_panel"]

#: Reported kratom doses in this many days before collection make mitragynine expected.
#: Speciosa's choice: the references give no urine detection window for mitragynine
#: (UNCONFIRMED).
KRATOM_WINDOW_DAYS = 7

_RESULTS = ("positive", "negative", "indeterminate")


def _decimal(raw: Any, field: str, low: Decimal, high: Decimal, what: str,
             errors: dict[str, str]) -> Decimal | None:
    if raw in (None, ""):
        return None
    value = finite_decimal(raw)
    if value is None:
        errors[field] = gettext("Enter %(what)s as a number, for example %(example)s.") % {
            "what": what, "example": local_number(low + (high - low) / 2)}
        return None
    if not low <= value <= high:
        errors[field] = gettext("Enter %(what)s between %(low)s and %(high)s.") % {
            "what": what, "low": local_number(low), "high": local_number(high)}
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
        errors["collected_at"] = gettext("Give the date and time the specimen was collected.")
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
        errors["panels"] = gettext("Choose at least one panel: %(panels)s.") % {
            "panels": ", ".join(sorted(known))}
        panels = []
    elif bad := [p for p in panels if p not in known]:
        errors["panels"] = gettext("Unknown panel %(bad)s: choose from %(panels)s.") % {
            "bad": ", ".join(map(str, bad)), "panels": ", ".join(sorted(known))}
    panels = list(dict.fromkeys(p for p in panels if p in known))
    method = str(data.get("method") or "").strip()
    if method not in drug_panels.METHODS:
        errors["method"] = gettext(
            "Choose the method: screen (immunoassay) or confirmation (e.g. LC-MS/MS).")
    validity = {
        "creatinine_mg_dl": _decimal(data.get("creatinine_mg_dl"), "creatinine_mg_dl",
                                     Decimal(0), Decimal(1000),
                                     pgettext("enter ... as a number", "creatinine in mg/dL"),
                                     errors),
        "ph": _decimal(data.get("ph"), "ph", Decimal(0), Decimal(14),
                       pgettext("enter ... as a number", "the pH"), errors),
        "specific_gravity": _decimal(data.get("specific_gravity"), "specific_gravity",
                                     Decimal("0.9"), Decimal("1.2"),
                                     pgettext("enter ... as a number", "the specific gravity"),
                                     errors),
        "temperature_in_range": _flag(data.get("temperature_in_range")),
        "observed": _flag(data.get("observed")),
    }
    allowed = [a for p in panels for a in drug_panels.get_panel(p).analytes]
    raw = data.get("analytes") or {}
    if not isinstance(raw, Mapping):
        errors["analytes"] = gettext("Give each analyte's result.")
        raw = {}
    unknown = [str(code) for code in raw if code not in allowed]
    if unknown:
        errors["analytes"] = (gettext(
            "Unknown analyte %(unknown)s for the panels chosen; the panels test %(allowed)s.") % {
                "unknown": ", ".join(unknown), "allowed": ", ".join(allowed)} if allowed else gettext(
            "Unknown analyte %(unknown)s for the panels chosen; the panels test nothing yet.") % {
                "unknown": ", ".join(unknown)})
    analytes: dict[str, dict[str, Any]] = {}
    for code in allowed:
        entry = raw.get(code)
        field = f"analytes.{code}"
        if isinstance(entry, str):
            entry = {"result": entry}
        if not isinstance(entry, Mapping) or all(entry.get(k) in (None, "")
                                                 for k in ("result", "value")):
            errors[field] = gettext("Give the result for %(lab)s.") % {
                "lab": klabs.get_lab(code).name}
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
            errors[field] = gettext(
                "%(lab)s: choose positive, negative or indeterminate, or give a value with its "
                "cut-off.") % {"lab": name}
            return {}
        return {"result": result, "value": None, "cutoff": None, "unit": ""}
    value = _decimal(value_raw, field, Decimal(0), Decimal("99999999"),
                     pgettext("enter ... as a number", "the %(lab)s value") % {"lab": name},
                     errors)
    cutoff = _decimal(entry.get("cutoff"), field, Decimal(0), Decimal("99999999"),
                      pgettext("enter ... as a number", "the %(lab)s cut-off") % {"lab": name},
                      errors) if field not in errors else None
    unit = str(entry.get("unit") or "").strip()
    if field in errors:
        return {}
    if cutoff is None:
        errors[field] = gettext(
            "%(lab)s: a value needs the cut-off it was read against (e.g. 5 ng/mL).") % {
                "lab": name}
        return {}
    if cutoff == 0:
        # every value is at least 0: a cut-off of 0 would read any value, 0 included, as positive
        errors[field] = gettext(
            "%(lab)s: a cut-off of 0 reads every value as positive; give the laboratory's "
            "cut-off (e.g. 5 ng/mL), or the result as positive or negative.") % {"lab": name}
        return {}
    if not unit:
        errors[field] = gettext("%(lab)s: give the unit of the value and cut-off, e.g. ng/mL.") % {
            "lab": name}
        return {}
    result = "positive" if value >= cutoff else "negative"
    return {"result": result, "value": value, "cutoff": cutoff, "unit": unit[:32]}


def store_panel(user, patient: Patient, clean: Mapping[str, Any], *, source: str,
                replaces: UrinePanel | None = None, reason: str = "",
                entered_at: dt.datetime | None = None) -> UrinePanel:
    """Inside a transaction: store a validated panel (:func:`validate_panel`'s answer) with
    one ``uds-*`` LabResult per analyte, each audited. With ``replaces`` (a correction, or a
    new version sent by a FHIR import) the old panel and its analytes are superseded: an
    analyte tested again is the next version of the old one, an analyte no longer in the
    panel is withdrawn, a new one is created."""
    clean = dict(clean)
    analytes = clean.pop("analytes")
    at = {"entered_at": entered_at} if entered_at is not None else {}
    old_rows: dict[str, LabResult] = {}
    before = None
    if replaces is not None:
        locked = UrinePanel.objects.select_for_update().get(pk=replaces.pk)
        if locked.superseded or locked.retracted:
            raise ValidationError({"__all__": _CHANGED})
        before = writes.snapshot(locked)
        locked.superseded = True
        locked.save(update_fields=["superseded"])
        old_rows = {r.lab: r for r in LabResult.objects.select_for_update().filter(
            panel=locked, superseded=False, retracted=False)}
    panel = UrinePanel.objects.create(patient=patient, entered_by=user, source=source,
                                      replaces=replaces, change_reason=reason[:500],
                                      **at, **clean)
    writes.audit(user, writes.Action.CORRECT if replaces else writes.Action.CREATE, panel,
                 patient=patient, before=before, after=writes.snapshot(panel), reason=reason)
    for code, fields in analytes.items():
        lab = klabs.get_lab(code)
        # the code of the method used; a confirmation is never sent under the screen's code
        loinc = (lab.method_loinc or {}).get(clean["method"]) or ""
        old = old_rows.pop(code, None)
        old_snap = None
        if old is not None:
            old_snap = writes.snapshot(old)
            old.superseded = True
            old.save(update_fields=["superseded"])
        row = LabResult.objects.create(
            patient=patient, entered_by=user, source=source, panel=panel, lab=code,
            loinc=loinc, collected_at=clean["collected_at"], method=clean["method"],
            result=fields["result"], value=fields["value"], cutoff=fields["cutoff"],
            unit=fields["unit"], flag="abnormal" if fields["result"] == "positive" else "normal",
            replaces=old, change_reason=reason[:500] if old else "", **at)
        writes.audit(user, writes.Action.CORRECT if old else writes.Action.CREATE, row,
                     patient=patient, before=old_snap, after=writes.snapshot(row), reason=reason)
    for old in old_rows.values():  # tested before, not in the corrected panel
        _retract(user, patient, old, reason)
    return panel


_CHANGED = gettext_lazy("This urine drug test was changed since; open the current one.")
_NOT_FOUND = gettext_lazy("No such urine drug test in this patient's record.")


def _retract(user, patient: Patient, row, reason: str) -> None:
    before = writes.snapshot(row)
    type(row).objects.filter(pk=row.pk).update(retracted=True, change_reason=reason[:500])
    row.refresh_from_db()
    writes.audit(user, writes.Action.RETRACT, row, patient=patient, before=before,
                 after=writes.snapshot(row), reason=reason)


def record_panel(user, patient: Patient, data: Mapping[str, Any], *, token=None,
                 source: str = Source.CLINICIAN) -> UrinePanel:
    """Validate and store one panel with its analytes (all or nothing, once per token)."""
    writes.require(access.can_write_clinical(user, patient))
    clean = validate_panel(patient, data)

    panel, created = writes.once(user, token, "urine-panel",
                                 lambda: store_panel(user, patient, clean, source=source),
                                 model=UrinePanel, patient=patient)
    if created:
        writes.after_change(patient)
    return panel


def panel_for(patient: Patient, panel_id: Any) -> UrinePanel:
    """The panel ``panel_id`` of ``patient`` (any version); another patient's id gets the
    same answer as one that does not exist (:func:`~speciosa.clinic.writes.record_of`).

    Raises
    ------
    ValidationError
        Under ``panel``."""
    return writes.record_of(UrinePanel, patient, panel_id, field="panel", missing=_NOT_FOUND)


def panel_data(panel: UrinePanel) -> dict[str, Any]:
    """The panel's fields as :func:`validate_panel` reads them (a correction starts from
    these): every field of the panel and of each current analyte."""
    analytes: dict[str, Any] = {}
    for row in panel.analytes.filter(retracted=False).order_by("pk"):
        if row.value is not None:
            analytes[row.lab] = {"value": row.value, "cutoff": row.cutoff, "unit": row.unit}
        else:
            analytes[row.lab] = {"result": row.result}
    return {"collected_at": panel.collected_at, "panels": list(panel.panels),
            "method": panel.method, "method_detail": panel.method_detail,
            "creatinine_mg_dl": panel.creatinine_mg_dl, "ph": panel.ph,
            "specific_gravity": panel.specific_gravity,
            "temperature_in_range": panel.temperature_in_range, "observed": panel.observed,
            "note": panel.note, "analytes": analytes}


def _is_current(panel: UrinePanel) -> bool:
    """Whether ``panel`` is still the current version (read again: the caller's copy may be
    older than another clinician's correction)."""
    return UrinePanel.objects.filter(pk=panel.pk, superseded=False, retracted=False).exists()


def _reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": gettext("Say why the urine drug test is corrected.")
                               if what == "corrected" else
                               gettext("Say why the urine drug test is withdrawn.")})
    if len(reason) > 500:
        raise ValidationError({"reason": gettext("The reason can be at most 500 characters.")})
    return reason


def correct_panel(user, patient: Patient, panel: UrinePanel, data: Mapping[str, Any], *,
                  reason: str, token=None) -> UrinePanel:
    """Correct a panel as a whole: ``data`` is the whole corrected panel (as
    :func:`validate_panel` reads it); the panel and its analytes get their next versions
    (history kept, audited) and the rules run again. Returns the new version."""
    if panel.patient_id != patient.pk:
        raise ValidationError({"panel": _NOT_FOUND})
    writes.require(access.can_write_clinical(user, patient),
                   gettext("Only the care team corrects urine drug tests."))
    earlier = writes.replayed(user, token, model=UrinePanel, kind="urine-panel-correct",
                              patient=patient)
    if earlier is not None:
        return earlier
    if not _is_current(panel):
        raise ValidationError({"__all__": _CHANGED})
    reason = _reason(reason, "corrected")
    clean = validate_panel(patient, data)
    new, created = writes.once(
        user, token, "urine-panel-correct",
        lambda: store_panel(user, patient, clean, source=Source.CLINICIAN, replaces=panel,
                            reason=reason),
        model=UrinePanel, patient=patient)
    if created:
        writes.after_change(patient)
    return new


def withdraw_panel(user, patient: Patient, panel: UrinePanel, *, reason: str,
                   token=None) -> UrinePanel:
    """Withdraw a panel entered in error, with its analytes: kept (retracted, audited),
    no longer read by the rules, the chart or the exports."""
    if panel.patient_id != patient.pk:
        raise ValidationError({"panel": _NOT_FOUND})
    writes.require(access.can_write_clinical(user, patient),
                   gettext("Only the care team withdraws urine drug tests."))
    earlier = writes.replayed(user, token, model=UrinePanel, kind="urine-panel-withdraw",
                              patient=patient)
    if earlier is not None:
        return earlier
    if not _is_current(panel):
        raise ValidationError({"__all__": _CHANGED})
    reason = _reason(reason, "withdrawn")

    def withdraw() -> UrinePanel:
        locked = UrinePanel.objects.select_for_update().get(pk=panel.pk)
        if locked.superseded or locked.retracted:
            raise ValidationError({"__all__": _CHANGED})
        for row in LabResult.objects.select_for_update().filter(
                panel=locked, superseded=False, retracted=False):
            _retract(user, patient, row, f"entered in error: {reason}")
        _retract(user, patient, locked, f"entered in error: {reason}")
        return locked

    done, created = writes.once(user, token, "urine-panel-withdraw", withdraw,
                                model=UrinePanel, patient=patient)
    if created:
        writes.after_change(patient)
    return done


def expected_analytes(patient: Patient, at: dt.datetime) -> dict[str, str]:
    """Analytes expected at ``at`` (lab code -> why): current medications and treatment
    episodes, and kratom doses reported in the :data:`KRATOM_WINDOW_DAYS` before."""
    tz = site_zone(patient.site)
    day = at.astimezone(tz).date()
    since = at - dt.timedelta(days=KRATOM_WINDOW_DAYS)
    return expected_from(
        at, Medication.objects.current().filter(patient=patient, start__lte=day),
        TreatmentEpisode.objects.current().filter(patient=patient, start__lte=day),
        Dose.objects.current().filter(patient=patient, taken_at__gte=since, taken_at__lte=at)
        .values_list("taken_at", flat=True)[:1], tz=tz)


def expected_from(at: dt.datetime, medications, episodes, dose_times, *,
                  tz: dt.tzinfo) -> dict[str, str]:
    """:func:`expected_analytes` from rows already read (the charts read a patient's
    medications, episodes and dose times once for every panel): ``medications`` and
    ``episodes`` are current versions, ``dose_times`` when kratom doses were taken. A
    medication's days are the site's days (``tz``: :func:`~speciosa.clinic.integrity.site_zone`), as
    SAF-UDS-UNEXPECTED reads them: at 22:00 in New York it is already tomorrow in UTC."""
    day = at.astimezone(tz).date()
    out: dict[str, str] = {}
    # taken on the day: current, or stopped since (a stopped course up to its stop date),
    # as SAF-UDS-UNEXPECTED reads it
    meds = [m for m in medications if m.start <= day and (m.end is None or m.end >= day)
            and (m.is_current_status or (m.status == "stopped" and m.end is not None))]
    for code, name in drug_panels.expected_from_medications(m.drug or m.name for m in meds).items():
        out.setdefault(code, f"{name} (current medication)")
    for ep in episodes:
        if ep.start > day or (ep.end is not None and ep.end < day):
            continue
        for code in drug_panels.expected_for_drug(ep.drug):
            out.setdefault(code, f"{ep.drug} (treatment episode)")
    since = at - dt.timedelta(days=KRATOM_WINDOW_DAYS)
    if any(since <= t <= at for t in dose_times):
        out.setdefault("uds-mitragynine",
                       f"kratom doses reported in the {KRATOM_WINDOW_DAYS} days before")
    return out


def read(panel: UrinePanel) -> tuple[drug_panels.PanelReading, dict[str, str]]:
    """The panel's reading and the expected analytes with why."""
    expected = expected_analytes(panel.patient, panel.collected_at)
    results = {r.lab: r.result for r in panel.analytes.current().order_by("pk")}
    return drug_panels.read_panel(results, expected, specimen=panel.specimen_problems), expected
