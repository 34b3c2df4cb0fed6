"""Resources written the way an EHR sends them: a Bundle (``transaction`` or ``collection``)
whose entries have ``urn:uuid:`` fullUrls, references to the Patient entry by that fullUrl,
the hospital's own identifier systems, and no Speciosa extensions."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

from .r4 import parse_r4

HOSPITAL_MRN = "urn:oid:2.16.840.1.113883.19.5.99999.1"
HOSPITAL_LAB = "https://lab.hospital.example/fhir/sid/result"
HOSPITAL_MEDS = "https://ehr.hospital.example/fhir/sid/medication-statement"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def patient(mrn: str, *, system: str = HOSPITAL_MRN, family: str = "Quinn", given: str = "Maya",
            birth: str = "1985-06-15", gender: str = "female") -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"use": "usual", "type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
            "system": system, "value": mrn}],
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": gender, "birthDate": birth,
    }
    return res


def prolactin(subject: dict[str, Any], value: float = 38.0, *, ident: str = "R-1",
              status: str = "final", **changes) -> dict[str, Any]:
    """A prolactin result in ng/mL with the laboratory's range and interpretation."""
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": HOSPITAL_LAB, "value": ident}],
        "status": status,
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": "laboratory",
                                  "display": "Laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": "2842-3",
                             "display": "Prolactin [Mass/volume] in Serum or Plasma"}],
                 "text": "Prolactin"},
        "subject": subject,
        "effectiveDateTime": "2026-11-20T08:15:00+00:00",
        "issued": "2026-11-20T14:02:00+00:00",
        "valueQuantity": {"value": value, "unit": "ng/mL", "system": UCUM, "code": "ng/mL"},
        "interpretation": [{"coding": [{"system": V3_INTERPRETATION, "code": "H",
                                        "display": "High"}]}],
        "referenceRange": [{"low": {"value": 4.8, "unit": "ng/mL", "system": UCUM,
                                    "code": "ng/mL"},
                            "high": {"value": 23.3, "unit": "ng/mL", "system": UCUM,
                                     "code": "ng/mL"}}],
    }
    res.update(changes)
    return res


def bundle(*resources: dict[str, Any], kind: str = "transaction",
           urls: list[str] | None = None) -> dict[str, Any]:
    """A Bundle of ``resources``; each entry's fullUrl is ``urls[i]`` or a new urn:uuid."""
    entries = []
    for i, res in enumerate(resources):
        entry: dict[str, Any] = {"fullUrl": urls[i] if urls else urn(), "resource": res}
        if kind == "transaction":
            entry["request"] = {"method": "POST", "url": res["resourceType"]}
        entries.append(entry)
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def with_patient(pat: dict[str, Any], *others: dict[str, Any], kind: str = "transaction"):
    """A Bundle of a Patient and resources whose ``subject`` is the Patient's urn:uuid."""
    ref = urn()
    for res in others:
        res["subject"] = {"reference": ref}
    b = bundle(pat, *others, kind=kind)
    b["entry"][0]["fullUrl"] = ref
    return b


def write(path: Path, resource: dict[str, Any], *, check_r4: bool = True) -> Path:
    """Write ``resource`` (a Bundle) as JSON after checking it is strict FHIR R4 (fhirclient),
    as a real peer would send it."""
    if check_r4:
        parse_r4(resource)
    path.write_text(json.dumps(resource, indent=2))
    return path


def send(tmp_path: Path, chart, *resources: dict[str, Any], name: str = "b.json", **kw):
    """Import a Bundle of ``chart``'s Patient resource (the hospital's MRN = the chart's
    identifier) and copies of ``resources`` about it, as an EHR sends them; ``kw`` goes to
    :func:`~speciosa.interop.importer.import_fhir`."""
    from speciosa.interop.importer import import_fhir

    b = with_patient(patient(chart.identifier), *copy.deepcopy(resources))
    return import_fhir(write(tmp_path / name, b), **kw)
