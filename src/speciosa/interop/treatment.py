"""Treatment episodes and urine drug test panels in FHIR R4 (issue 19): the resources built
for export and the record read back on import.

A **treatment episode** (:class:`~speciosa.clinic.models.TreatmentEpisode`: buprenorphine,
methadone or naltrexone in one formulation at one dose) is a ``MedicationStatement``
``ep<pk>`` whose ``category`` carries Speciosa's ``record-kind`` code ``treatment-episode``
beside the HL7 ``community`` code: the drug with its RxNorm ingredient code from the drug
table (care.md §7) and Speciosa's drug code, ``status`` active or stopped, ``statusReason``
the reason it stopped, ``effectivePeriod`` its start and stop (date-times when the time was
given), the dose as ``dosage`` (mg a day, or mg each injection), and extensions for what
R4 has no element for: the formulation, each injection date of an extended-release
injection, methadone's dispensing clinic, a dose confirmed above the site's level, the
episode a dose change follows and why it changed. An episode records the treatment taken;
Speciosa does not hold who prescribes it, so no ``MedicationRequest`` is built for it.

A **urine drug test panel** (:class:`~speciosa.clinic.models.UrinePanel`) is a
``DiagnosticReport`` ``uds<pk>`` (category LAB; code: the catalogue panels it ran, in
Speciosa's code system, as the references give no LOINC code for a panel as a whole)
grouping an ``Observation`` per analyte (``lab<pk>``, as every lab result: LOINC where the
catalogue has the code for the method used, ``method`` screen or confirmation with the
laboratory's method in its text, the result as ``valueCodeableConcept`` or a value with
its cut-off as ``referenceRange.high``, the interpretation positive/negative and how it
reads against what was expected) and a ``Specimen`` ``uds<pk>`` (urine, collected at, the
collection observed or not); the specimen validity measures (creatinine, pH, specific
gravity, temperature in range) are Observations on that Specimen (``uvcr``, ``uvph``,
``uvsg``, ``uvtemp`` + pk) in Speciosa's code system: the catalogue holds no LOINC code
for them (its creatinine is the serum test).

On import the same checks as the forms apply (:func:`speciosa.clinic.treatment.validate_episode`,
:func:`speciosa.clinic.urine.validate_panel`); a LOINC code the catalogue does not have for
the analyte, a confirmation sent under a screen's code, a cut-off in another unit than its
value or a validity measure in another unit than the form's is refused, never recoded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.utils import translation

from speciosa.clinic import models as cmodels
from speciosa.knowledge import drug_panels
from speciosa.knowledge import labs as klabs

from . import codes as c

Resource = dict[str, Any]

EPISODE_KIND = "treatment-episode"

#: The Exporter's columns of a treatment episode.
EPISODE_COLUMNS = (
    "pk", "patient_id", "drug", "formulation", "dose_mg", "injection_dates",
    "dispensing_clinic", "start", "start_at", "end", "end_at", "status", "stop_reason", "notes",
    "confirmed_dose", "decision_id", "follows_id", "entered_by_id", "entered_at", "source",
    "replaces_id", "change_reason")

#: The Exporter's columns of a urine drug test panel.
PANEL_COLUMNS = (
    "pk", "patient_id", "collected_at", "panels", "method", "method_detail", "creatinine_mg_dl",
    "ph", "specific_gravity", "temperature_in_range", "observed", "specimen_problems", "note",
    "entered_by_id", "entered_at", "source", "replaces_id", "change_reason")

#: Formulation -> route (Speciosa's route code, ``medications.ROUTES``): the
#: extended-release buprenorphine injections are subcutaneous, naltrexone's intramuscular
#: (care.md §7 names Sublocade, Brixadi and Vivitrol). A film may be buccal or sublingual:
#: no route code.
_ROUTE = {
    ("buprenorphine", "sublingual"): "sublingual",
    ("buprenorphine", "xr-injection"): "subcutaneous",
    ("naltrexone", "xr-injection"): "intramuscular",
    ("naltrexone", "oral-tablet"): "oral",
    ("methadone", "oral-tablet"): "oral",
    ("methadone", "oral-liquid"): "oral",
}

#: The specimen validity measures: (panel field, id prefix, code, display, UCUM unit).
VALIDITY = (
    ("creatinine_mg_dl", "uvcr", "creatinine", "Creatinine, urine (specimen validity)", "mg/dL"),
    ("ph", "uvph", "ph", "pH, urine (specimen validity)", "[pH]"),
    ("specific_gravity", "uvsg", "specific-gravity", "Specific gravity, urine (specimen "
     "validity)", "1"),
    ("temperature_in_range", "uvtemp", "temperature-in-range",
     "Collection temperature within 32-38 °C (90-100 °F)", None),
)
VALIDITY_BY_CODE = {v[2]: v for v in VALIDITY}

_CAT_LAB = [{"coding": [{"system": c.OBS_CATEGORY, "code": "laboratory",
                         "display": "Laboratory"}]}]


def _num(value: Decimal | float | int) -> float | int:
    if isinstance(value, Decimal):
        value = value.normalize()
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _moment(day: dt.date | None, at: dt.datetime | None) -> str | None:
    if at is not None:
        return at.isoformat()
    return day.isoformat() if day is not None else None


# ---------------------------------------------------------------------- export: episodes

def episode_concept(drug: str, formulation: str) -> dict[str, Any]:
    """The drug of an episode: RxNorm ingredient (from the drug table, where it has the
    code), Speciosa's drug code, and the drug with its formulation as text."""
    from speciosa.knowledge import drugs as kdrugs

    coding = []
    entry = kdrugs.get(drug)
    if entry is not None and entry.rxnorm:
        coding.append({"system": c.RXNORM, "code": entry.rxnorm, "display": drug})
    coding.append({"system": c.CS_DRUG, "code": drug, "display": drug})
    return {"coding": coding, "text": f"{drug} {_formulation_label(formulation)}"}


def _formulation_label(formulation: str) -> str:
    """The formulation's name in English: a FHIR resource's text does not follow the
    language of the page that asked for it (the choices' labels are translated for pages)."""
    if formulation not in cmodels.TreatmentFormulation.values:
        return formulation
    with translation.override("en"):
        return str(cmodels.TreatmentFormulation(formulation).label)


def episode_dosage(row: Mapping[str, Any]) -> dict[str, Any]:
    """The dose: mg a day (timing once a day), or mg each injection of an extended-release
    injection (no fixed timing: the injection dates say when)."""
    from speciosa.clinic.medications import ROUTES

    injection = row["formulation"] == cmodels.TreatmentFormulation.XR_INJECTION
    label = _formulation_label(row["formulation"])
    dosage: dict[str, Any] = {}
    if row["dose_mg"] is not None:
        amount = _num(row["dose_mg"])
        dosage["text"] = (f"{amount} mg each injection ({label})" if injection
                          else f"{amount} mg a day ({label})")
        dosage["doseAndRate"] = [{"doseQuantity": {"value": amount, "unit": "mg",
                                                   "system": c.UCUM, "code": "mg"}}]
    else:
        dosage["text"] = label
    if not injection:
        dosage["timing"] = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
    route = _ROUTE.get((row["drug"], row["formulation"]))
    if route:
        coding = []
        if route in c.ROUTE_SNOMED:
            code, display = c.ROUTE_SNOMED[route]
            coding.append({"system": c.SNOMED, "code": code, "display": display})
        coding.append({"system": c.CS_ROUTE, "code": route})
        dosage["route"] = {"coding": coding, "text": ROUTES.get(route, route)}
    return dosage


def episode_statement(row: Mapping[str, Any], subject: dict[str, Any],
                      original: dict[str, str] | None, source: dict[str, Any] | None, *,
                      follows: int | None = None, change_reason: str = "",
                      decision: str | None = None) -> Resource:
    """A treatment episode as ``MedicationStatement`` (see the module docstring).
    ``follows`` is the logical id of the episode a dose change follows; ``decision`` how the
    shared decision it carries out is named, ``change_reason`` why the dose changed (its
    first version's reason)."""
    ext: list[dict[str, Any]] = [{"url": c.EXT_FORMULATION, "valueCode": row["formulation"]}]
    ext += [{"url": c.EXT_INJECTION_DATE, "valueDate": d} for d in row["injection_dates"] or ()]
    if row["dispensing_clinic"]:
        ext.append({"url": c.EXT_DISPENSING_CLINIC, "valueString": row["dispensing_clinic"]})
    if row["confirmed_dose"]:
        ext.append({"url": c.EXT_DOSE_CONFIRMED, "valueBoolean": True})
    if follows is not None:
        ext.append({"url": c.EXT_FOLLOWS, "valueReference": {
            "reference": f"MedicationStatement/ep{follows}",
            "identifier": {"system": c.sid("episode"), "value": str(follows)}}})
        if change_reason:
            ext.append({"url": c.EXT_CHANGE_REASON, "valueString": change_reason})
    if decision:
        ext.append({"url": c.EXT_DECISION, "valueReference": {"display": decision}})
    ids = [{"system": c.sid("episode"), "value": str(row["pk"])}]
    if original:
        ids.append(original)
    period: dict[str, str] = {"start": _moment(row["start"], row["start_at"]) or ""}
    end = _moment(row["end"], row["end_at"])
    if end:
        period["end"] = end
    ms: Resource = {
        "resourceType": "MedicationStatement", "id": f"ep{row['pk']}", "extension": ext,
        "identifier": ids, "status": row["status"],
        "category": {"coding": [
            {"system": c.MS_CATEGORY, "code": "community", "display": "Community"},
            {"system": c.CS_RECORD_KIND, "code": EPISODE_KIND,
             "display": "Treatment episode (medication for opioid use disorder)"}]},
        "medicationCodeableConcept": episode_concept(row["drug"], row["formulation"]),
        "subject": subject, "effectivePeriod": period,
        "dateAsserted": row["first_entered_at"].isoformat(),
        "dosage": [episode_dosage(row)]}
    if row["stop_reason"]:
        ms["statusReason"] = [{"text": row["stop_reason"]}]
    if source:
        ms["informationSource"] = source
    if row["notes"]:
        ms["note"] = [{"text": row["notes"]}]
    return ms


def is_episode(res: Mapping[str, Any]) -> bool:
    """Whether a MedicationStatement is a treatment episode (its category says so)."""
    cat = res.get("category")
    return isinstance(cat, dict) and any(
        isinstance(cd, dict) and cd.get("system") == c.CS_RECORD_KIND
        and cd.get("code") == EPISODE_KIND for cd in cat.get("coding") or ())


# ---------------------------------------------------------------------- export: panels

def panel_report(row: Mapping[str, Any], subject: dict[str, Any], original: dict[str, str] | None,
                 results: list[str], reading: drug_panels.PanelReading | None,
                 performer: dict[str, Any] | None) -> Resource:
    """The panel as ``DiagnosticReport``: the catalogue panels it ran, the analyte and
    validity Observations (``results``: their ids), the Specimen, and the reading as the
    conclusion."""
    pk = row["pk"]
    coding = []
    for pid in row["panels"]:
        try:
            coding.append({"system": c.CS_URINE_PANEL, "code": pid,
                           "display": drug_panels.get_panel(pid).name})
        except KeyError:
            coding.append({"system": c.CS_URINE_PANEL, "code": pid})
    ids = [{"system": c.sid("urine-panel"), "value": str(pk)}]
    if original:
        ids.append(original)
    report: Resource = {
        "resourceType": "DiagnosticReport", "id": f"uds{pk}", "identifier": ids,
        "status": "amended" if row["replaces_id"] else "final",
        "category": [{"coding": [{"system": c.V2_0074, "code": "LAB", "display": "Laboratory"}]}],
        "code": {"coding": coding, "text": "Urine drug test panel"},
        "subject": subject, "effectiveDateTime": row["collected_at"].isoformat(),
        "issued": row["entered_at"].isoformat(),
        "specimen": [{"reference": f"Specimen/uds{pk}"}],
        "result": [{"reference": f"Observation/{r}"} for r in results]}
    if performer:
        report["performer"] = [performer]
    if reading is not None:
        report["conclusion"] = conclusion(reading)
    if row["note"]:
        report["extension"] = [{"url": c.EXT_NOTE, "valueString": row["note"]}]
    return report


def conclusion(reading: drug_panels.PanelReading) -> str:
    """The reading in words: what is flagged and the caveats (not a medical device)."""
    parts = []
    for a in reading.analytes:
        name = klabs.get_lab(a.lab).name if a.lab.startswith("uds-") else a.lab
        parts.append(f"{name}: {a.result}, {a.flag}" + (f" ({a.message})" if a.message else ""))
    parts += list(reading.caveats)
    parts.append("Read against what is expected (prescribed treatment, reported kratom use); "
                 "Speciosa is not a medical device.")
    return " ".join(p if p.endswith(".") else p + "." for p in parts)


def panel_specimen(row: Mapping[str, Any], subject: dict[str, Any],
                   original: dict[str, str] | None) -> Resource:
    """The panel's urine specimen: collected at, observed or not, and why it is not valid
    as it stands (status ``unsatisfactory`` and a note) when a measure says so."""
    pk = row["pk"]
    ids = [{"system": c.sid("urine-panel"), "value": str(pk)}]
    if original:
        ids.append(original)
    spec: Resource = {
        "resourceType": "Specimen", "id": f"uds{pk}", "identifier": ids,
        "type": {"coding": [{"system": c.V2_0487, "code": "UR", "display": "Urine"}],
                 "text": "Urine"},
        "subject": subject,
        "collection": {"collectedDateTime": row["collected_at"].isoformat()}}
    if row["observed"] is not None:
        spec["extension"] = [{"url": c.EXT_OBSERVED_COLLECTION, "valueBoolean": row["observed"]}]
    if row["specimen_problems"]:
        spec["status"] = "unsatisfactory"
        spec["note"] = [{"text": "Not valid as it stands: " + "; ".join(row["specimen_problems"])}]
    return spec


def validity_observations(row: Mapping[str, Any], subject: dict[str, Any]) -> list[Resource]:
    """One Observation per validity measure recorded (none for a measure not taken)."""
    out = []
    pk = row["pk"]
    for field, prefix, code, display, unit in VALIDITY:
        value = row[field]
        if value is None:
            continue
        obs: Resource = {
            "resourceType": "Observation", "id": f"{prefix}{pk}",
            "status": "amended" if row["replaces_id"] else "final", "category": _CAT_LAB,
            "code": {"coding": [{"system": c.CS_URINE_VALIDITY, "code": code,
                                 "display": display}], "text": display},
            "subject": subject, "effectiveDateTime": row["collected_at"].isoformat(),
            "issued": row["entered_at"].isoformat(),
            "specimen": {"reference": f"Specimen/uds{pk}"}}
        if unit is None:
            obs["valueBoolean"] = bool(value)
        else:
            obs["valueQuantity"] = {"value": _num(value), "unit": unit, "system": c.UCUM,
                                    "code": unit}
        out.append(obs)
    return out


def analyte_parts(obs: Resource, row: Mapping[str, Any], lab: klabs.LabTest | None,
                  panel_root: int, method_detail: str, flag: str | None) -> Resource:
    """An analyte Observation of a panel (built by the lab export) with what a panel adds:
    the specimen, the code of the method used only, the value with its cut-off, the
    laboratory's method, the reading against what was expected."""
    obs["specimen"] = {"reference": f"Specimen/uds{panel_root}"}
    coding = [cd for cd in obs["code"]["coding"] if cd["system"] != c.LOINC]
    loinc = (lab.method_loinc or {}).get(row["method"]) if lab else None
    if loinc:
        coding.insert(0, {"system": c.LOINC, "code": loinc, "display": lab.name})
    obs["code"]["coding"] = coding
    if row["value"] is not None:
        obs.pop("valueCodeableConcept", None)
        unit = row["unit"]
        obs["valueQuantity"] = {"value": _num(row["value"]), "unit": unit, "system": c.UCUM,
                                "code": unit}
        if row["cutoff"] is not None:
            obs["referenceRange"] = [{"high": {"value": _num(row["cutoff"]), "unit": unit,
                                               "system": c.UCUM, "code": unit},
                                      "text": c.CUTOFF_RANGE_TEXT}]
    if method_detail and "method" in obs:
        obs["method"]["text"] = method_detail
    if flag:
        obs.setdefault("interpretation", []).append(
            {"coding": [{"system": c.CS_URINE_READING, "code": flag}],
             "text": f"{flag}: {drug_panels.DISCUSS}" if flag in ("unexpected",
                                                                  "missing-expected") else flag})
    return obs


# ---------------------------------------------------------------------- import

class Refused(ValueError):
    """A resource the import refuses; the message says what to fix."""


def _ext(res: Mapping[str, Any], url: str) -> list[Any]:
    out = []
    for e in res.get("extension") or ():
        if isinstance(e, dict) and e.get("url") == url:
            out += [v for k, v in e.items() if k.startswith("value")]
    return out


def _codes(concept: Any, system: str) -> list[str]:
    if not isinstance(concept, dict):
        return []
    return [str(cd.get("code")) for cd in concept.get("coding") or ()
            if isinstance(cd, dict) and cd.get("system") == system and cd.get("code")]


#: ``MedicationStatement.status`` of a treatment episode: active and stopped are kept;
#: entered-in-error withdraws; others are refused with the reason.
EPISODE_STATUS: dict[str, str | None] = {
    "active": None, "stopped": None,
    "completed": "a treatment episode is ongoing (active) or stopped with a reason",
    "intended": "a planned treatment is not an episode yet",
    "not-taken": "a treatment not taken is not an episode",
    "on-hold": "a treatment episode is ongoing (active) or stopped with a reason",
    "unknown": "the sender does not know whether the treatment is taken (unknown)",
}

_EPISODE_EXTENSIONS = {c.EXT_FORMULATION, c.EXT_INJECTION_DATE, c.EXT_DISPENSING_CLINIC,
                       c.EXT_DOSE_CONFIRMED, c.EXT_FOLLOWS, c.EXT_CHANGE_REASON}
_EPISODE_READ = {"resourceType", "id", "meta", "text", "identifier", "status", "statusReason",
                 "category", "medicationCodeableConcept", "subject", "effectivePeriod",
                 "effectiveDateTime", "dateAsserted", "informationSource", "note", "dosage",
                 "extension"}


def episode_data(res: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str] | None,
                                                  str, list[str]]:
    """What a treatment episode's MedicationStatement says, as
    :func:`speciosa.clinic.treatment.validate_episode` reads it; the identifier of the
    episode it follows (a dose change), the reason for the change, and the warnings (what
    is not kept).

    Raises
    ------
    Refused
        The drug or the dose cannot be read as the form reads them.
    """
    warnings = [f"not kept: MedicationStatement.{k}" for k in res if k not in _EPISODE_READ]
    warnings += [f"not kept: MedicationStatement.extension[{e.get('url')}]"
                 for e in res.get("extension") or () if isinstance(e, dict)
                 and e.get("url") not in _EPISODE_EXTENSIONS]
    concept = res.get("medicationCodeableConcept") or {}
    drugs = _codes(concept, c.CS_DRUG)
    if not drugs:
        from speciosa.knowledge import drugs as kdrugs

        by_rxcui = {d.rxnorm: d.name for d in kdrugs.all_drugs() if d.rxnorm}
        drugs = [by_rxcui[r] for r in _codes(concept, c.RXNORM) if r in by_rxcui]
    if not drugs:
        raise Refused("medicationCodeableConcept: a treatment episode names its drug "
                      f"(buprenorphine, methadone or naltrexone) with a {c.CS_DRUG} or RxNorm "
                      "code")
    formulations = [str(v) for v in _ext(res, c.EXT_FORMULATION)]
    dosages = res.get("dosage") or [{}]
    if len(dosages) > 1:
        warnings += [f"not kept: MedicationStatement.dosage[{i}] (one dose per episode)"
                     for i in range(1, len(dosages))]
    qty = ((dosages[0].get("doseAndRate") or [{}])[0]).get("doseQuantity") or {}
    unit = qty.get("code") or qty.get("unit") or "mg"
    if qty and qty.get("system") not in (None, c.UCUM):
        raise Refused(f"dosage.doseQuantity: the unit's system {qty.get('system')!r} is not UCUM")
    period = res.get("effectivePeriod") or {}
    start = period.get("start") or res.get("effectiveDateTime")
    data: dict[str, Any] = {
        "drug": drugs[0], "formulation": formulations[0] if formulations else "",
        "dose_mg": qty.get("value"), "dose_unit": unit,
        "injection_dates": [str(v) for v in _ext(res, c.EXT_INJECTION_DATE)],
        "dispensing_clinic": next(iter(_ext(res, c.EXT_DISPENSING_CLINIC)), ""),
        "start": start, "end": period.get("end"), "status": res.get("status"),
        "stop_reason": " ".join(str(r.get("text") or "") for r in res.get("statusReason") or ()
                                if isinstance(r, dict)).strip(),
        "notes": "\n".join(str(n.get("text") or "") for n in res.get("note") or ()
                           if isinstance(n, dict)).strip(),
        "confirmed_dose": bool(next(iter(_ext(res, c.EXT_DOSE_CONFIRMED)), False))}
    follows = None
    for ref in _ext(res, c.EXT_FOLLOWS):
        ident = ref.get("identifier") if isinstance(ref, dict) else None
        if isinstance(ident, dict) and ident.get("value"):
            follows = {"system": str(ident.get("system") or ""), "value": str(ident["value"])}
    reason = str(next(iter(_ext(res, c.EXT_CHANGE_REASON)), ""))[:500]
    if _ext(res, c.EXT_DECISION):
        warnings.append(f"not kept: MedicationStatement.extension[{c.EXT_DECISION}] (the shared "
                        "decision is a record of the sender's installation)")
    return data, follows, reason, warnings


def is_panel(res: Mapping[str, Any]) -> bool:
    """Whether a DiagnosticReport is a urine drug test panel (coded with the catalogue's
    panels)."""
    return bool(_codes(res.get("code"), c.CS_URINE_PANEL))


def _lab_of(obs: Mapping[str, Any], method: str) -> klabs.LabTest:
    """The ``uds-*`` test an analyte Observation is, checked against its LOINC codes."""
    code = obs.get("code") or {}
    own = [x for x in _codes(code, c.CS_LAB) if x.startswith("uds-")]
    loincs = _codes(code, c.LOINC)
    lab = None
    if own:
        try:
            lab = klabs.get_lab(own[0])
        except klabs.LabValueError as exc:
            raise Refused(str(exc)) from None
    uds = [t for t in klabs.all_labs() if t.code.startswith("uds-")]
    for loinc in loincs:
        found = [(t, m) for t in uds for m, x in (t.method_loinc or {}).items() if x == loinc]
        if not found:
            raise Refused(f"code: LOINC {loinc} is not a urine drug test in Speciosa's catalogue "
                          "(docs/urine-testing.md lists the codes it has); not imported, not "
                          "guessed")
        labs_ = {t.code for t, _m in found}
        if lab is not None and lab.code not in labs_:
            raise Refused(f"code: LOINC {loinc} is {found[0][0].name}, not {lab.name}: the codes "
                          "disagree")
        lab = lab or found[0][0]
        methods = {m for t, m in found if t.code == lab.code}
        if method and method not in methods:
            raise Refused(f"code: LOINC {loinc} is the {'/'.join(sorted(methods))} code of "
                          f"{lab.name}, but the method is {method}: send the code of the "
                          "method used")
    if lab is None:
        raise Refused("code: not a urine drug test Speciosa knows (give its LOINC code or a "
                      f"{c.CS_LAB} uds-* code)")
    return lab


def _unit(q: Mapping[str, Any]) -> str:
    return str(q.get("code") or q.get("unit") or "")


def panel_data(report: Mapping[str, Any], parts: Mapping[str, Resource | None],
               ) -> tuple[dict[str, Any], list[str]]:
    """What a urine panel's DiagnosticReport and its parts (the referenced Observations and
    Specimen, by reference) say, as :func:`speciosa.clinic.urine.validate_panel` reads it,
    with the warnings.

    Raises
    ------
    Refused
        A part is missing, or a code or unit cannot be read as the form reads it.
    """
    warnings: list[str] = []

    def part(ref: Any, what: str) -> Resource:
        key = ref.get("reference") if isinstance(ref, dict) else None
        found = parts.get(key) if isinstance(key, str) else None
        if found is None:
            raise Refused(f"{what}: {key!r} is not in the import (a panel is imported with its "
                          "Observations and Specimen)")
        return found

    specimens = [part(s, "specimen") for s in report.get("specimen") or ()]
    specimen = specimens[0] if specimens else {}
    if specimen:
        types = _codes(specimen.get("type"), c.V2_0487)
        if types and types != ["UR"]:
            raise Refused(f"specimen: type {types[0]!r} is not urine (v2-0487 UR)")
    collected = report.get("effectiveDateTime") or (specimen.get("collection") or {}).get(
        "collectedDateTime")
    observed = next(iter(_ext(specimen, c.EXT_OBSERVED_COLLECTION)), None)
    data: dict[str, Any] = {"collected_at": collected, "panels": _codes(report.get("code"),
                                                                         c.CS_URINE_PANEL),
                            "observed": observed,
                            "note": str(next(iter(_ext(report, c.EXT_NOTE)), ""))}
    analytes: dict[str, Any] = {}
    methods: set[str] = set()
    details: set[str] = set()
    observations = [part(r, "result") for r in report.get("result") or ()]
    for obs in observations:
        validity = _codes(obs.get("code"), c.CS_URINE_VALIDITY)
        if validity:
            field, _prefix, code, display, unit = VALIDITY_BY_CODE.get(validity[0], (None,) * 5)
            if field is None:
                raise Refused(f"result: {validity[0]!r} is not a specimen validity measure")
            if unit is None:
                data[field] = obs.get("valueBoolean")
                continue
            q = obs.get("valueQuantity") or {}
            given = _unit(q)
            if given and given != unit:
                raise Refused(f"{display}: the unit {given!r} is not {unit!r}; Speciosa does not "
                              "convert a validity measure (send it in the unit the criteria use)")
            data[field] = q.get("value")
            continue
        method = (_codes(obs.get("method"), c.CS_LAB_METHOD) or [""])[0]
        methods.add(method)
        text = str((obs.get("method") or {}).get("text") or "")
        if text and text != method:
            details.add(text)
        lab = _lab_of(obs, method)
        q = obs.get("valueQuantity")
        if isinstance(q, dict) and q.get("value") is not None:
            unit = _unit(q)
            cutoff = None
            for rr in obs.get("referenceRange") or ():
                high = rr.get("high") if isinstance(rr, dict) else None
                if isinstance(high, dict) and high.get("value") is not None:
                    if _unit(high) and unit and _unit(high) != unit:
                        raise Refused(f"{lab.name}: the value is in {unit!r} and the cut-off in "
                                      f"{_unit(high)!r}; Speciosa does not convert between them")
                    cutoff = high["value"]
                    break
            analytes[lab.code] = {"value": q["value"], "cutoff": cutoff, "unit": unit}
        else:
            concept = obs.get("valueCodeableConcept") or {}
            result = (_codes(concept, c.CS_LAB_RESULT) or [concept.get("text") or ""])[0]
            try:
                analytes[lab.code] = {"result": klabs.normalise_result(lab.code, str(result),
                                                                      method or None)}
            except klabs.LabValueError as exc:
                raise Refused(f"{lab.name}: {exc}") from None
    methods.discard("")
    if len(methods) > 1:
        raise Refused(f"result: a panel has one method; these analytes say {sorted(methods)}")
    data["method"] = methods.pop() if methods else ""
    data["method_detail"] = details.pop() if len(details) == 1 else ""
    data["analytes"] = analytes
    return data, warnings
