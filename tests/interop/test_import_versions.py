"""A resource that arrives again (issue 14): the same content changes nothing; new content
under the same identifier is a new version with its provenance, as a correction is;
entered-in-error withdraws what was imported; a change Speciosa cannot apply is refused."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from speciosa.clinic import models as cmodels
from speciosa.clinic import services
from speciosa.interop.export import Exporter
from speciosa.interop.importer import import_fhir
from speciosa.interop.models import TrustedIdentifierSystem

from . import ehr
from .conftest import stored_counts
from .r4 import parse_r4

pytestmark = pytest.mark.django_db




def _statement(status="active", end=None, ident="MS-1", name="Alprazolam 0.5 mg tablet"):
    period = {"start": (timezone.localdate() - dt.timedelta(days=60)).isoformat()}
    if end:
        period["end"] = end.isoformat()
    return {"resourceType": "MedicationStatement",
            "identifier": [{"system": ehr.HOSPITAL_MEDS, "value": ident}], "status": status,
            "medicationCodeableConcept": {"text": name}, "effectivePeriod": period,
            "dateAsserted": "2026-11-01T10:00:00+00:00"}


def _kratom_yesterday():
    return {"resourceType": "MedicationStatement", "status": "completed",
            "identifier": [{"system": ehr.HOSPITAL_MEDS, "value": "K-1"}],
            "medicationCodeableConcept": {"text": "kratom powder"},
            "effectiveDateTime": (timezone.now() - dt.timedelta(days=1)).isoformat(),
            "dosage": [{"doseAndRate": [{"doseQuantity": {"value": 3, "unit": "g",
                                                          "system": ehr.UCUM, "code": "g"}}]}]}


def _open(patient, rule):
    return cmodels.Alert.objects.filter(patient=patient, rule=rule, status__in=("open",
                                                                          "acknowledged"))


def test_an_ehrs_update_with_a_new_end_date_is_a_new_version_and_the_co_use_rule_stops(
        maya, tmp_path):
    """The issue: an updated resource (same identifier, new end date) was refused."""
    dose = _kratom_yesterday()
    assert ehr.send(tmp_path, maya, dose, _statement()).ok
    first = cmodels.Medication.objects.get()
    assert _open(maya, "SAF-COUSE-SED").count() == 1  # alprazolam now, kratom yesterday
    stopped = timezone.localdate() - dt.timedelta(days=3)

    report = ehr.send(tmp_path, maya, dose, _statement("stopped", end=stopped))

    assert report.ok, report.problems
    assert report.created == {"Medication (updated)": 1} and report.unchanged == 1
    first.refresh_from_db()
    current = cmodels.Medication.objects.current().get()
    assert (first.superseded, first.end, current.replaces, current.end) == (
        True, None, first, stopped)
    # alerts stay open until a clinician resolves them; the rule says it stopped firing
    assert _open(maya, "SAF-COUSE-SED").get().stopped_firing_at is not None
    [ms] = [r for r in Exporter(cmodels.Patient.objects.filter(pk=maya.pk)).resources(
        ["MedicationStatement"]) if r["id"].startswith("med")]
    parse_r4(ms)
    assert (ms["status"], ms["meta"]["versionId"], ms["effectivePeriod"]["end"]) == (
        "stopped", "2", stopped.isoformat())
    prov = next(r for r in Exporter(cmodels.Patient.objects.filter(pk=maya.pk)).resources(
        ["Provenance"]) if r["id"] == f"med{first.pk}")
    assert prov["activity"]["coding"][0]["code"] == "UPDATE"
    assert {"role": "revision", "what": {"reference": f"MedicationStatement/med{first.pk}"
                                                      "/_history/1"}} in prov["entity"]


def test_a_stopped_medication_is_never_current_and_raises_no_co_use_alert(maya, tmp_path):
    ended = timezone.localdate() - dt.timedelta(days=10)
    assert ehr.send(tmp_path, maya, _kratom_yesterday(), _statement("stopped", end=ended)).ok
    assert cmodels.Medication.objects.get().end == ended
    assert not _open(maya, "SAF-COUSE-SED").exists()
    # the same alprazolam, active: the rule does fire (so the test above can fail)
    assert ehr.send(tmp_path, maya, _statement(ident="MS-2", name="Alprazolam 1 mg tablet"),
                 name="icodes.json").ok
    assert _open(maya, "SAF-COUSE-SED").count() == 1


@pytest.mark.parametrize("status", ["stopped", "completed"])
def test_a_stopped_medication_without_its_end_is_refused_not_stored_as_current(maya, tmp_path,
                                                                               status):
    before = stored_counts()
    report = ehr.send(tmp_path, maya, _statement(status))
    [problem] = report.problems
    assert f"status {status!r} without effectivePeriod.end" in problem.message
    assert stored_counts() == before


@pytest.mark.parametrize(("status", "read_as_taken"), [
    ("intended", False), ("not-taken", False), ("on-hold", False), ("unknown", True)])
def test_a_medication_keeps_its_status_and_the_rules_read_it(maya, tmp_path, status,
                                                             read_as_taken):
    """The medication list holds every status now (Medication.status): an EHR's on-hold or
    unknown medication is stored as such and exported again, not refused, and the co-use
    rule counts only what is taken (an unknown status counts: better ask than miss)."""
    report = ehr.send(tmp_path, maya, _kratom_yesterday(), _statement(status))
    assert report.ok, report.problems
    assert cmodels.Medication.objects.get().status == status
    [ms] = [r for r in Exporter(cmodels.Patient.objects.filter(pk=maya.pk)).resources(
        ["MedicationStatement"]) if r["id"].startswith("med")]
    parse_r4(ms)
    assert ms["status"] == status
    assert _open(maya, "SAF-COUSE-SED").exists() == read_as_taken


def test_the_same_resource_again_changes_nothing(maya, tmp_path):
    assert ehr.send(tmp_path, maya, ehr.prolactin({})).ok
    before = stored_counts()
    again = ehr.send(tmp_path, maya, ehr.prolactin({}))
    assert again.ok and not again.created and again.unchanged == 1
    assert stored_counts() == before


def test_entered_in_error_withdraws_what_was_imported(maya, tmp_path):
    assert ehr.send(tmp_path, maya, ehr.prolactin({})).ok
    lab = cmodels.LabResult.objects.get()

    report = ehr.send(tmp_path, maya, ehr.prolactin({}, status="entered-in-error"))

    assert report.ok and report.created == {"LabResult (withdrawn)": 1}
    lab.refresh_from_db()
    assert lab.retracted and "entered in error" in lab.change_reason
    assert not cmodels.LabResult.objects.current().exists()
    entry = cmodels.AuditEntry.objects.filter(model="LabResult", object_id=lab.pk,
                                         action="retract").get()
    assert entry.before["retracted"] is False and entry.after["retracted"] is True
    assert [r for r in Exporter().resources(["Observation"]) if r["id"].startswith("lab")] == []
    # a new version of a withdrawn result is refused, saying why
    [problem] = ehr.send(tmp_path, maya, ehr.prolactin({}, value=40.0)).problems
    assert "was withdrawn (entered-in-error)" in problem.message


def test_an_update_that_names_another_patient_is_refused(clinic, maya, tmp_path):
    assert ehr.send(tmp_path, maya, ehr.prolactin({})).ok
    omar = clinic.patient_b
    TrustedIdentifierSystem.objects.create(site=clinic.site_b, system=ehr.HOSPITAL_MRN)
    moved = ehr.with_patient(ehr.patient(omar.identifier, family="Reyes", given="Omar",
                                         gender="male"), ehr.prolactin({}, value=40.0))
    before = stored_counts()
    report = import_fhir(ehr.write(tmp_path / "m.json", moved), site=clinic.site_b)
    [problem] = report.problems
    assert problem.message.startswith("patient mismatch:")
    assert "never moves a record to another chart" in problem.message
    assert stored_counts() == before
    assert cmodels.LabResult.objects.get().patient == maya


def test_an_update_of_a_record_corrected_in_speciosa_is_refused(clinic, maya, tmp_path):
    assert ehr.send(tmp_path, maya, ehr.prolactin({})).ok
    lab = cmodels.LabResult.objects.get()
    services.correct_record(clinic.clinician_a, lab, {"value": "39"}, "typing error")
    before = stored_counts()
    [problem] = ehr.send(tmp_path, maya, ehr.prolactin({}, value=40.0)).problems
    assert "corrected or withdrawn in Speciosa since it was imported" in problem.message
    assert stored_counts() == before
