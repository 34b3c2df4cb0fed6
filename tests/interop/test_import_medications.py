"""The medication list through FHIR (issue 14): a MedicationStatement's dosage (text and
doseAndRate), route, reason, RxNorm coding and effective date-times are stored on the
Medication and exported again; this clinic's prescriptions also go out as MedicationRequest
(intent order) and a MedicationRequest is imported; whatever the record cannot hold is
named in the report by its path, never dropped silently."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from speciosa.clinic import models as cmodels
from speciosa.interop import codes as icodes
from speciosa.interop.export import Exporter, validate
from speciosa.interop.models import ImportedResource

from . import ehr
from .r4 import parse_r4

pytestmark = pytest.mark.django_db

START = (timezone.now() - dt.timedelta(days=40)).replace(microsecond=0)


def _statement(**changes):
    res = {
        "resourceType": "MedicationStatement",
        "identifier": [{"system": ehr.HOSPITAL_MEDS, "value": "MS-7"}],
        "status": "active",
        "medicationCodeableConcept": {
            "coding": [{"system": ehr.RXNORM, "code": "1819", "display": "buprenorphine"},
                       {"system": ehr.RXNORM, "code": "351264",
                        "display": "buprenorphine 8 MG / naloxone 2 MG Sublingual Tablet"}],
            "text": "Suboxone 8 mg/2 mg sublingual tablet"},
        "effectivePeriod": {"start": START.isoformat()},
        "dateAsserted": "2026-11-01T10:00:00+00:00",
        "reasonCode": [{"text": "opioid use disorder"}],
        "dosage": [{"text": "1 tablet under the tongue each morning; do not swallow",
                    "timing": {"code": {"text": "once daily"}},
                    "route": {"coding": [{"system": ehr.SNOMED, "code": "37839007",
                                          "display": "Sublingual route"}]},
                    "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet",
                                                      "system": ehr.UCUM, "code": "{tablet}"}}]}],
    }
    res.update(changes)
    return res


def _exported(patient, rtype):
    out = [r for r in Exporter(cmodels.Patient.objects.filter(pk=patient.pk)).resources([rtype])
           if r["resourceType"] == rtype and not r["id"].startswith("dose")]
    for r in out:
        parse_r4(r)
        validate(r)
    return out


def test_dosage_route_reason_rxnorm_and_time_are_stored_and_exported_again(maya, tmp_path):
    report = ehr.send(tmp_path, maya, _statement())
    assert report.ok, report.problems
    med = cmodels.Medication.objects.get()
    assert (med.drug, med.rxnorm, med.name) == (
        "buprenorphine", "1819", "Suboxone 8 mg/2 mg sublingual tablet")
    assert (med.dose_amount, med.dose_unit, med.route, med.frequency) == (
        Decimal("1"), "tablet", "sublingual", "once daily")
    assert med.indication == "opioid use disorder"
    assert med.start_at == START and med.start == START.date()
    assert med.status == "active"
    # the dosage text said more than the structured fields: kept in the notes
    assert med.notes == "Dosage as sent: 1 tablet under the tongue each morning; do not swallow"
    assert report.warnings == []

    [ms] = _exported(maya, "MedicationStatement")
    concept = ms["medicationCodeableConcept"]
    assert {"system": icodes.RXNORM, "code": "1819"} in concept["coding"]
    # the clinical drug code the sender gave is kept as sent and exported again
    assert {"system": ehr.RXNORM, "code": "351264",
            "display": "buprenorphine 8 MG / naloxone 2 MG Sublingual Tablet"} in concept["coding"]
    assert ms["effectivePeriod"] == {"start": START.isoformat()}
    [dosage] = ms["dosage"]
    assert dosage["route"]["coding"][0] == {"system": icodes.SNOMED, "code": "37839007",
                                            "display": "Sublingual route"}
    assert dosage["timing"] == {"code": {"text": "once daily"}}
    assert dosage["doseAndRate"] == [{"doseQuantity": {"value": 1, "unit": "tablet",
                                                       "system": icodes.UCUM,
                                                       "code": "{tablet}"}}]
    assert ms["reasonCode"] == [{"text": "opioid use disorder"}]
    assert ms["status"] == "active" and ms["dateAsserted"] == "2026-11-01T10:00:00+00:00"


def test_what_the_medication_list_cannot_hold_is_named_in_the_report(maya, tmp_path):
    res = _statement()
    res["dosage"][0]["maxDosePerPeriod"] = {"numerator": {"value": 2}, "denominator": {"value": 1}}
    res["dosage"].append({"text": "a second dosage"})
    res["reasonReference"] = [{"reference": "Condition/abc", "display": "Opioid use disorder"}]
    res["reasonCode"] = [{"coding": [{"system": ehr.SNOMED, "code": "5602001"}],
                          "text": "opioid use disorder"}]
    res["note"] = [{"text": "from the discharge letter", "authorString": "Dr Lee"}]
    res["extension"] = [{"url": "https://ehr.example/ext/formulary", "valueBoolean": True}]
    res["derivedFrom"] = [{"reference": "MedicationDispense/9"}]
    report = ehr.send(tmp_path, maya, res)
    assert report.ok, report.problems
    messages = sorted(w.message for w in report.warnings)
    assert messages == sorted([
        "not kept: MedicationStatement.dosage[0].maxDosePerPeriod",
        "not kept: MedicationStatement.dosage[1] (only the first dosage is kept)",
        "not kept: MedicationStatement.reasonReference[0].reference",
        "not kept: MedicationStatement.reasonCode[0].coding (kept as text: "
        "'opioid use disorder')",
        "not kept: MedicationStatement.note[0].authorString",
        "not kept: MedicationStatement.extension[https://ehr.example/ext/formulary]",
        "not kept: MedicationStatement.derivedFrom",
    ])
    assert all(w.line == 2 and w.resource == f"MedicationStatement {ehr.HOSPITAL_MEDS}|MS-7"
               for w in report.warnings)
    med = cmodels.Medication.objects.get()
    assert med.indication == "opioid use disorder; Opioid use disorder"
    assert med.notes.endswith("from the discharge letter")


def test_a_stopped_medication_keeps_its_stop_time_status_and_reason(maya, tmp_path):
    stop = START + dt.timedelta(days=20, hours=3)
    res = _statement(status="stopped",
                     effectivePeriod={"start": START.isoformat(), "end": stop.isoformat()},
                     statusReason=[{"text": "nausea"}])
    assert ehr.send(tmp_path, maya, res).ok
    med = cmodels.Medication.objects.get()
    assert (med.status, med.end, med.end_at, med.stop_reason) == (
        "stopped", stop.date(), stop, "nausea")
    [ms] = _exported(maya, "MedicationStatement")
    assert ms["status"] == "stopped" and ms["statusReason"] == [{"text": "nausea"}]
    assert ms["effectivePeriod"] == {"start": START.isoformat(), "end": stop.isoformat()}


def _request(**changes):
    res = {
        "resourceType": "MedicationRequest",
        "identifier": [{"system": "https://ehr.hospital.example/fhir/sid/order", "value": "O-3"}],
        "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": ehr.RXNORM, "code": "7243"}],
                                      "text": "naltrexone 50 mg tablet"},
        "authoredOn": START.isoformat(),
        "requester": {"reference": "Practitioner/77", "display": "Dr Rosa Lee"},
        "reasonCode": [{"text": "alcohol use disorder"}],
        "dosageInstruction": [{"timing": {"code": {"text": "once daily"}},
                               "route": {"coding": [{"system": ehr.SNOMED, "code": "26643006"}]},
                               "doseAndRate": [{"doseQuantity": {"value": 50, "unit": "mg",
                                                                 "system": ehr.UCUM,
                                                                 "code": "mg"}}]}],
    }
    res.update(changes)
    return res


def test_a_medication_request_is_imported_as_a_prescription_of_another_prescriber(maya,
                                                                                  tmp_path):
    report = ehr.send(tmp_path, maya, _request())
    assert report.ok, report.problems
    assert report.created == {"Medication": 1}
    med = cmodels.Medication.objects.get()
    assert (med.drug, med.rxnorm, med.prescriber, med.prescriber_name) == (
        "naltrexone", "7243", "outside", "Dr Rosa Lee")
    assert (med.dose_amount, med.dose_unit, med.route, med.frequency, med.start_at) == (
        Decimal("50"), "mg", "oral", "once daily", START)
    assert med.notes == ""  # no dosage text: nothing added
    assert ImportedResource.objects.get().resource_type == "MedicationRequest"
    # an outside prescription is a statement on export, not this clinic's order
    assert _exported(maya, "MedicationRequest") == []
    assert len(_exported(maya, "MedicationStatement")) == 1


@pytest.mark.parametrize(("changes", "why"), [
    ({"intent": "proposal"}, "intent 'proposal'"),
    ({"intent": "plan"}, "intent 'plan'"),
    ({"status": "draft"}, "status 'draft'"),
    ({"status": "cancelled"}, "status 'cancelled'"),
])
def test_a_request_that_is_no_prescription_taken_is_refused(maya, tmp_path, changes, why):
    [problem] = ehr.send(tmp_path, maya, _request(**changes)).problems
    assert why in problem.message
    assert not cmodels.Medication.objects.exists()


def test_this_clinics_prescription_is_exported_as_an_order_and_imported_once(clinic, maya,
                                                                             tmp_path):
    from speciosa.clinic import medications

    medications.record_medication(clinic.clinician_a, maya, {
        "drug": "buprenorphine", "strength": "8", "strength_unit": "mg", "form": "film",
        "dose_amount": "2", "dose_unit": "film", "frequency": "once daily", "route": "sublingual",
        "start": START.isoformat(), "prescriber": "clinic", "prescriber_name": "Dr Ada Okafor",
        "indication": "opioid use disorder", "category": "prescription"})
    [mr] = _exported(maya, "MedicationRequest")
    [ms] = _exported(maya, "MedicationStatement")
    assert (mr["intent"], mr["status"], mr["requester"]) == (
        "order", "active", {"display": "Dr Ada Okafor"})
    assert mr["identifier"] == ms["identifier"]
    assert ms["basedOn"] == [{"reference": f"MedicationRequest/{mr['id']}"}]
    assert mr["dosageInstruction"][0]["timing"]["repeat"] == {
        "boundsPeriod": {"start": START.isoformat()}}
    assert {"url": icodes.EXT_STRENGTH, "valueQuantity": {
        "value": 8, "unit": "mg", "system": icodes.UCUM, "code": "mg"}} in mr["extension"]
    assert mr["medicationCodeableConcept"]["coding"][0] == {"system": icodes.RXNORM,
                                                            "code": "1819"}


def test_a_request_and_the_statement_based_on_it_are_one_medication(maya, tmp_path):
    request = _request(id="rx9")
    statement = _statement(basedOn=[{"reference": "MedicationRequest/rx9"}],
                           medicationCodeableConcept={"text": "naltrexone 50 mg tablet"},
                           reasonCode=[{"text": "alcohol use disorder"}])
    report = ehr.send(tmp_path, maya, request, statement)
    assert report.ok, report.problems
    assert report.created == {"Medication": 1}
    [skipped] = [f.skipped for f in report.files]
    assert skipped["MedicationRequest (the same medication as its MedicationStatement)"] == 1
    assert cmodels.Medication.objects.get().name == "naltrexone 50 mg tablet"
