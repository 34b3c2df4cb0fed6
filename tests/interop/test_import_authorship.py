"""Who reported a record (issue 14): the patient or a clinician, and when it was first
recorded, read from the record itself or from its Provenance (an EHR puts authorship
there), kept through the import and exported again, on the record and on its Provenance."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from speciosa.clinic import models as cmodels
from speciosa.clinic import services
from speciosa.interop import codes as icodes
from speciosa.interop.export import Exporter
from speciosa.interop.importer import import_fhir
from speciosa.interop.models import ImportedResource

from . import ehr
from .r4 import parse_r4

pytestmark = pytest.mark.django_db

FIRST = (timezone.now() - dt.timedelta(days=5)).replace(microsecond=0)


def _lab_with_provenance(agent: dict, *, occurred: dt.datetime = FIRST):
    """A Patient, a prolactin result without performer or issued time, and the Provenance
    that says who reported it, as an EHR sends them (targets by urn:uuid)."""
    pat_url, lab_url = ehr.urn(), ehr.urn()
    lab = ehr.prolactin({"reference": pat_url})
    del lab["issued"]
    lab["effectiveDateTime"] = (FIRST - dt.timedelta(hours=6)).isoformat()
    prov = {"resourceType": "Provenance", "target": [{"reference": lab_url}],
            "recorded": timezone.now().isoformat(), "occurredDateTime": occurred.isoformat(),
            "agent": [agent]}
    return ehr.bundle(ehr.patient("MRN-X"), lab, prov, kind="collection",
                      urls=[pat_url, lab_url, ehr.urn()])


def _export(patient, rtype):
    out = list(Exporter(cmodels.Patient.objects.filter(pk=patient.pk)).resources([rtype]))
    for r in out:
        parse_r4(r)
    return out


def _as_maya(bundle, maya):
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = maya.identifier
    return bundle


AUTHOR = {"coding": [{"system": icodes.PROVENANCE_AGENT, "code": "author"}]}


def test_a_result_the_provenance_says_the_patient_reported_stays_patient_reported(maya,
                                                                                  tmp_path):
    bundle = _as_maya(_lab_with_provenance({"type": AUTHOR, "who": {"reference": "x"}}), maya)
    bundle["entry"][2]["resource"]["agent"][0]["who"] = {
        "reference": bundle["entry"][0]["fullUrl"]}
    report = import_fhir(ehr.write(tmp_path / "b.json", bundle))
    assert report.ok, report.problems
    sent = ImportedResource.objects.get()
    assert (sent.reported_by, sent.recorded_at) == ("patient", FIRST)
    [obs] = [r for r in _export(maya, "Observation") if r["id"].startswith("lab")]
    assert obs["performer"] == [obs["subject"]]
    assert obs["issued"] == FIRST.isoformat()
    [prov] = [p for p in _export(maya, "Provenance") if p["id"] == obs["id"]]
    kinds = {a["type"]["coding"][0]["code"]: a["who"] for a in prov["agent"]}
    assert kinds["informant"] == obs["subject"] and kinds["author"] == obs["subject"]
    assert "assembler" in kinds  # and who imported it
    assert prov["occurredDateTime"] == FIRST.isoformat()


def test_a_result_a_clinician_entered_keeps_the_clinician_by_name(maya, tmp_path):
    bundle = _as_maya(_lab_with_provenance({
        "type": AUTHOR, "who": {"reference": "Practitioner/77", "display": "Dr Rosa Lee"}}), maya)
    assert import_fhir(ehr.write(tmp_path / "b.json", bundle)).ok
    sent = ImportedResource.objects.get()
    assert (sent.reported_by, sent.author) == ("practitioner", {"display": "Dr Rosa Lee"})
    [obs] = [r for r in _export(maya, "Observation") if r["id"].startswith("lab")]
    assert obs["performer"] == [{"display": "Dr Rosa Lee"}]
    [prov] = [p for p in _export(maya, "Provenance") if p["id"] == obs["id"]]
    assert {"type": icodes_author(), "who": {"display": "Dr Rosa Lee"}} in prov["agent"]


def icodes_author():
    return {"coding": [{"system": icodes.PROVENANCE_AGENT, "code": "author", "display": "Author"}]}


def test_the_records_own_performer_wins_over_its_provenance(maya, tmp_path):
    bundle = _as_maya(_lab_with_provenance({
        "type": AUTHOR, "who": {"reference": "Practitioner/77", "display": "Dr Rosa Lee"}}), maya)
    bundle["entry"][1]["resource"]["performer"] = [{"display": "City Laboratory"}]
    assert import_fhir(ehr.write(tmp_path / "b.json", bundle)).ok
    assert ImportedResource.objects.get().author == {"display": "City Laboratory"}


def test_a_lab_is_exported_with_who_reported_it(clinic):
    at = timezone.now() - dt.timedelta(days=1)
    services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "prolactin", "collected_at": at, "value": "12", "unit": "ng/mL"})
    [obs] = [r for r in _export(clinic.patient_a, "Observation") if r["id"].startswith("lab")]
    assert obs["performer"] == [{"reference": f"Practitioner/{clinic.clinician_a.pk}",
                                 "display": "Ada Okafor"}]
