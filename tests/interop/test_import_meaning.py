"""Import keeps meaning (issue 14): a status is kept or refused by the stated policy, never
silently made final; a comparator stays a comparator; the laboratory's reference range,
interpretation and codes, who reported it and when it was recorded survive the import and
the next export."""

from __future__ import annotations

import datetime as dt

import pytest

from speciosa.clinic import models as cmodels
from speciosa.interop import codes as icodes
from speciosa.interop.export import Exporter
from speciosa.interop.importer import import_fhir
from speciosa.interop.models import ImportedResource

from . import ehr
from .conftest import stored_counts
from .r4 import parse_r4

pytestmark = pytest.mark.django_db




def _exported(maya, rtype="Observation", prefix="lab"):
    out = [r for r in Exporter(cmodels.Patient.objects.filter(pk=maya.pk)).resources([rtype])
           if r["id"].startswith(prefix)]
    for r in out:
        parse_r4(r)
    return out


@pytest.mark.parametrize(("status", "why"), [
    ("preliminary", "stores only final results"),
    ("registered", "no result yet"),
    ("cancelled", "no result"),
    ("unknown", "unknown"),
])
def test_a_result_that_is_not_final_is_refused_never_made_final(maya, tmp_path, status, why):
    before = stored_counts()
    report = ehr.send(tmp_path, maya, ehr.prolactin({}, status=status))
    [problem] = report.problems
    assert problem.line == 2 and f"status {status!r}" in problem.message
    assert why in problem.message
    assert stored_counts() == before


@pytest.mark.parametrize("status", ["final", "amended", "corrected"])
def test_a_final_amended_or_corrected_status_is_kept_and_exported_again(maya, tmp_path, status):
    assert ehr.send(tmp_path, maya, ehr.prolactin({}, status=status)).ok
    [obs] = _exported(maya)
    assert obs["status"] == status
    assert ImportedResource.objects.get().source_status == status


def test_a_comparator_stays_a_comparator_through_import_and_export(maya, tmp_path):
    alt = ehr.prolactin({}, code={"coding": [{"system": ehr.LOINC, "code": "1742-6"}]},
                        valueQuantity={"comparator": "<", "value": 5, "unit": "U/L",
                                       "system": ehr.UCUM, "code": "U/L"},
                        referenceRange=[], interpretation=[])
    del alt["referenceRange"], alt["interpretation"]
    assert ehr.send(tmp_path, maya, alt).ok
    lab = cmodels.LabResult.objects.get()
    assert (lab.lab, lab.comparator, float(lab.value), lab.unit) == ("alt", "<", 5.0, "U/L")
    [obs] = _exported(maya)
    assert obs["valueQuantity"]["comparator"] == "<" and obs["valueQuantity"]["value"] == 5


def test_the_laboratorys_range_and_interpretation_survive_import_and_export(maya, tmp_path):
    sent = ehr.prolactin({}, value=38.0)
    assert ehr.send(tmp_path, maya, sent).ok
    lab = cmodels.LabResult.objects.get()
    assert lab.reference_source == "laboratory"
    assert (lab.reference_low, lab.reference_high) == pytest.approx((4.8, 23.3))
    assert lab.reported_interpretation == sent["interpretation"]
    [obs] = _exported(maya)
    rr = obs["referenceRange"][0]
    assert (rr["low"]["value"], rr["high"]["value"], rr["low"]["code"]) == (4.8, 23.3, "ng/mL")
    assert rr["text"] == icodes.LABORATORY_RANGE_TEXT
    assert obs["interpretation"] == sent["interpretation"]


def test_the_senders_codes_and_recorded_time_and_performer_are_kept(maya, tmp_path):
    local = {"system": "https://lab.hospital.example/fhir/CodeSystem/tests", "code": "PRL",
             "display": "Prolactin"}
    sent = ehr.prolactin({}, performer=[{"display": "Hospital Central Laboratory"}])
    sent["code"]["coding"].append(local)
    assert ehr.send(tmp_path, maya, sent).ok
    [obs] = _exported(maya)
    assert local in obs["code"]["coding"]
    assert {"system": icodes.LOINC, "code": "2842-3"}.items() <= obs["code"]["coding"][0].items()
    assert obs["issued"] == "2026-11-20T14:02:00+00:00"  # the laboratory's, not the import's
    assert obs["effectiveDateTime"] == "2026-11-20T08:15:00+00:00"
    assert obs["performer"] == [{"display": "Hospital Central Laboratory"}]


def test_a_patient_reported_substance_use_stays_patient_reported(maya, tmp_path):
    use = {"resourceType": "Observation", "status": "final",
           "identifier": [{"system": "https://ehr.hospital.example/sid/obs", "value": "S-1"}],
           "category": [{"coding": [{"system": ehr.OBS_CATEGORY, "code": "social-history"}]}],
           "code": {"coding": [{"system": icodes.CS_SUBSTANCE_USE, "code": "alcohol"}]},
           "effectiveDateTime": "2026-11-21T21:00:00+00:00", "issued": "2026-11-22T09:00:00Z",
           "valueBoolean": True}
    b = ehr.with_patient(ehr.patient(maya.identifier), use)
    use["performer"] = [use["subject"]]  # the patient said so
    report = import_fhir(ehr.write(tmp_path / "b.json", b))
    assert report.ok, report.problems
    imported = ImportedResource.objects.get()
    assert imported.reported_by == "patient"
    [obs] = _exported(maya, prefix="sub")
    assert obs["performer"] == [{"reference": f"Patient/{maya.pk}", "identifier": {
        "system": icodes.mrn_system(maya.site.name), "value": maya.identifier}}]
    assert obs["issued"] == "2026-11-22T09:00:00+00:00"


def test_a_questionnaire_response_keeps_its_author_kind(maya, tmp_path):
    qr = {"resourceType": "QuestionnaireResponse",
          "identifier": {"system": "https://ehr.hospital.example/sid/qr", "value": "Q-1"},
          "questionnaire": f"{icodes.QUESTIONNAIRE_BASE}/craving-nrs", "status": "completed",
          "authored": "2026-11-21T10:00:00+00:00",
          "item": [{"linkId": "craving", "answer": [{"valueCoding": {"code": "6"}}]}]}
    b = ehr.with_patient(ehr.patient(maya.identifier), qr)
    qr["author"] = {"display": "Dr Ines Moreau"}
    assert import_fhir(ehr.write(tmp_path / "b.json", b)).ok
    [out] = _exported(maya, "QuestionnaireResponse", "a")
    assert out["author"] == {"display": "Dr Ines Moreau"}  # never a reference to our server
    assert "source" not in out
    assert out["authored"] == "2026-11-21T10:00:00+00:00"


def test_an_entered_in_error_result_never_imported_is_skipped_and_said(maya, tmp_path):
    before = stored_counts()
    report = ehr.send(tmp_path, maya, ehr.prolactin({}, status="entered-in-error"))
    assert report.ok
    assert report.files[0].skipped["Observation entered-in-error (never imported)"] == 1
    assert stored_counts() == before


def test_dates_are_not_moved(maya, tmp_path):
    sent = ehr.prolactin({}, effectiveDateTime="2026-11-20T08:15:00-05:00")
    assert ehr.send(tmp_path, maya, sent).ok
    assert cmodels.LabResult.objects.get().collected_at == dt.datetime(2026, 11, 20, 13, 15,
                                                                  tzinfo=dt.UTC)


@pytest.mark.parametrize(("loinc", "unit", "value", "expected"), [
    ("2842-3", "m[IU]/L", 400, "15081-3"),  # prolactin: mass code, units value
    ("15081-3", "ng/mL", 18, "2842-3"),     # and the other way round
])
def test_a_loinc_code_that_disagrees_with_the_unit_is_refused_never_recoded(
        maya, tmp_path, loinc, unit, value, expected):
    res = ehr.prolactin({}, value=value)
    res["code"]["coding"][0]["code"] = loinc
    res["valueQuantity"].update(unit=unit, code=unit)
    res["referenceRange"] = []
    before = stored_counts()
    [problem] = ehr.send(tmp_path, maya, res).problems
    assert problem.line == 2
    assert f"LOINC {loinc} and the unit {unit!r} disagree" in problem.message
    assert f"is LOINC {expected}" in problem.message and "does not recode" in problem.message
    assert stored_counts() == before


def test_a_loinc_code_of_the_units_property_is_imported_and_exported_as_sent(maya, tmp_path):
    res = ehr.prolactin({}, value=400)
    res["code"]["coding"][0]["code"] = "15081-3"
    res["valueQuantity"].update(unit="mIU/L", code="m[IU]/L")
    res["referenceRange"] = []
    assert ehr.send(tmp_path, maya, res).ok
    [obs] = _exported(maya)
    assert obs["code"]["coding"][0]["code"] == "15081-3"


def test_what_a_result_or_a_dose_cannot_hold_is_named_never_dropped_silently(maya, tmp_path):
    lab = ehr.prolactin({}, note=[{"text": "haemolysed sample"}],
                        specimen={"reference": "Specimen/s1"})
    lab["referenceRange"].append({"low": {"value": 3, "unit": "ng/mL", "system": ehr.UCUM,
                                          "code": "ng/mL"},
                                  "appliesTo": [{"text": "pregnancy"}]})
    lab["extension"] = [{"url": "https://lab.example/ext/analyser", "valueString": "A-7"}]
    dose = {"resourceType": "MedicationStatement", "status": "completed",
            "identifier": [{"system": ehr.HOSPITAL_MEDS, "value": "K-9"}],
            "medicationCodeableConcept": {"text": "kratom powder"},
            "effectiveDateTime": (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat(),
            "reasonCode": [{"text": "back pain"}],
            "dosage": [{"doseAndRate": [{"doseQuantity": {"value": 3, "unit": "g",
                                                          "system": ehr.UCUM, "code": "g"}}]}]}
    report = ehr.send(tmp_path, maya, lab, dose)
    assert report.ok, report.problems
    assert sorted((w.line, w.message) for w in report.warnings) == [
        (2, "not kept: Observation.extension[https://lab.example/ext/analyser]"),
        (2, "not kept: Observation.note"),
        (2, "not kept: Observation.referenceRange[1] (only the laboratory's first range is "
            "kept)"),
        (2, "not kept: Observation.referenceRange[1].appliesTo"),
        (2, "not kept: Observation.specimen"),
        (3, "not kept: MedicationStatement.reasonCode"),
    ]
