"""Import that cannot file into the wrong chart (issue 14): a patient is matched only on
identifier system and value, for systems the site trusts, with agreeing demographics;
anything else is a mismatch and nothing of the file is stored."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from speciosa.cli import main
from speciosa.clinic import models as cmodels
from speciosa.interop import codes as icodes
from speciosa.interop.export import Exporter
from speciosa.interop.importer import import_fhir
from speciosa.interop.models import TrustedIdentifierSystem

from . import ehr
from .conftest import stored_counts

pytestmark = pytest.mark.django_db




def _trust(site, system=ehr.HOSPITAL_MRN):
    return TrustedIdentifierSystem.objects.create(site=site, system=system, note="test")


def _only_problem(report):
    assert not report.ok
    assert len(report.problems) == 1, report.problems
    return report.problems[0]


def test_the_issue_attack_another_system_sex_and_birth_date_same_value_is_refused(clinic,
                                                                                   tmp_path):
    """A prolactin result for a different person (another identifier system, another sex and
    birth date, the same value as a demo patient's MRN) was filed into that patient's chart."""
    maya = clinic.patient_a
    stranger = ehr.patient(maya.identifier, system="urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.0",
                           family="Lindqvist", given="Erik", birth="1961-02-03", gender="male")
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(stranger, ehr.prolactin({})))
    before = stored_counts()

    problem = _only_problem(import_fhir(path))

    assert problem.line == 2 and problem.resource == f"Observation {ehr.HOSPITAL_LAB}|R-1"
    assert "patient not matched" in problem.message
    assert "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.0" in problem.message
    assert "not trusted" in problem.message
    assert stored_counts() == before
    assert not cmodels.LabResult.objects.filter(patient=maya).exists()


def test_the_attack_is_refused_even_when_the_other_system_is_trusted(clinic, tmp_path):
    maya = clinic.patient_a
    _trust(clinic.site_a)
    stranger = ehr.patient(maya.identifier, family="Lindqvist", given="Erik", birth="1961-02-03",
                           gender="male")
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(stranger, ehr.prolactin({})))
    before = stored_counts()

    report = import_fhir(path)

    assert [(p.line, p.resource.split(" ")[0]) for p in report.problems] == [
        (1, "Patient"), (2, "Observation")]
    problem = report.problems[1]
    assert problem.message.startswith("patient mismatch: subject:")
    for given in ("birth date 1961-02-03", "sex 'male'", "family name 'lindqvist'"):
        assert given in problem.message
    assert "1985" not in problem.message and "female" not in problem.message  # not the chart's
    assert stored_counts() == before


def test_same_system_and_value_with_another_birth_date_is_refused(clinic, tmp_path):
    maya = clinic.patient_a
    other = ehr.patient(maya.identifier, system=icodes.mrn_system(clinic.site_a.name),
                        birth="1985-06-16")
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(other, ehr.prolactin({})))
    before = stored_counts()

    report = import_fhir(path)

    assert [p.line for p in report.problems] == [1, 2]
    problem = report.problems[1]
    assert "patient mismatch" in problem.message and "birth date 1985-06-16" in problem.message
    assert "sex" not in problem.message and "family name" not in problem.message
    assert stored_counts() == before


def test_an_untrusted_system_is_refused_though_the_value_and_demographics_agree(clinic,
                                                                               tmp_path):
    maya = clinic.patient_a
    same_person = ehr.patient(maya.identifier)  # the hospital's MRN system, not trusted
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(same_person, ehr.prolactin({})))
    before = stored_counts()

    problem = _only_problem(import_fhir(path))

    assert f"identifier system '{ehr.HOSPITAL_MRN}' is not trusted at any site" in problem.message
    assert "admin: Trusted identifier systems" in problem.message
    assert stored_counts() == before
    # trusted at the other site only: still not a match at this patient's site
    _trust(clinic.site_b)
    problem = _only_problem(import_fhir(path, site=clinic.site_a))
    assert "is not trusted at Site A" in problem.message
    assert stored_counts() == before


def test_a_value_only_identifier_is_refused(clinic, tmp_path):
    maya = clinic.patient_a
    obs = ehr.prolactin({"identifier": {"value": maya.identifier}})
    path = ehr.write(tmp_path / "b.json", ehr.bundle(obs, kind="collection"))
    before = stored_counts()

    problem = _only_problem(import_fhir(path))

    assert f"identifier {maya.identifier!r} has no system" in problem.message
    assert "never on a value alone" in problem.message
    assert stored_counts() == before


def test_a_trusted_system_with_agreeing_demographics_files_into_the_right_chart(clinic,
                                                                                tmp_path):
    maya = clinic.patient_a
    _trust(clinic.site_a)
    # the EHR writes the name in capitals and without the accent the chart does not have
    same = ehr.patient(maya.identifier, family="QUINN")
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(same, ehr.prolactin({})))

    report = import_fhir(path)

    assert report.ok, report.problems
    lab = cmodels.LabResult.objects.get()
    assert (lab.patient, float(lab.value), lab.unit) == (maya, 38.0, "ng/mL")
    assert report.created == {"LabResult": 1}


def test_a_mismatch_stores_nothing_of_the_file_though_other_entries_are_good(clinic, tmp_path):
    maya = clinic.patient_a
    _trust(clinic.site_a)
    good = ehr.with_patient(ehr.patient(maya.identifier), ehr.prolactin({}, ident="R-1"))
    wrong = ehr.with_patient(ehr.patient(maya.identifier, birth="1990-01-01"),
                             ehr.prolactin({}, ident="R-2"))
    both = ehr.bundle(*[e["resource"] for e in good["entry"] + wrong["entry"]],
                      urls=[e["fullUrl"] for e in good["entry"] + wrong["entry"]])
    path = ehr.write(tmp_path / "b.json", both)
    before = stored_counts()

    report = import_fhir(path)

    assert [p.line for p in report.problems] == [3, 4]  # the Patient and its result
    assert all("patient mismatch" in p.message for p in report.problems)
    assert stored_counts() == before


def test_a_relative_patient_reference_resolves_within_the_bundle(clinic, tmp_path):
    maya = clinic.patient_a
    _trust(clinic.site_a)
    pat = ehr.patient(maya.identifier)
    pat["id"] = "pat-77"
    obs = ehr.prolactin({"reference": "Patient/pat-77"})
    path = ehr.write(tmp_path / "b.json", ehr.bundle(
        pat, obs, kind="collection",
        urls=["https://ehr.hospital.example/fhir/Patient/pat-77", ehr.urn()]))

    assert import_fhir(path).ok
    assert cmodels.LabResult.objects.get().patient == maya


def test_the_patient_entry_may_come_after_the_entries_that_refer_to_it(clinic, tmp_path):
    _trust(clinic.site_a)
    b = ehr.with_patient(ehr.patient(clinic.patient_a.identifier), ehr.prolactin({}))
    b["entry"].reverse()
    assert import_fhir(ehr.write(tmp_path / "b.json", b)).ok
    assert cmodels.LabResult.objects.get().patient == clinic.patient_a


def test_a_reference_to_a_patient_not_in_the_bundle_is_refused(clinic, tmp_path):
    path = ehr.write(tmp_path / "b.json", ehr.bundle(ehr.prolactin({"reference": ehr.urn()})))
    problem = _only_problem(import_fhir(path))
    assert "names no Patient resource in this import" in problem.message


def test_identifiers_of_two_different_patients_are_refused(clinic, tmp_path):
    """The Patient resource names one chart, subject.identifier another."""
    _trust(clinic.site_a)
    _trust(clinic.site_b)
    b = ehr.with_patient(ehr.patient(clinic.patient_a.identifier), ehr.prolactin({}))
    b["entry"][1]["resource"]["subject"]["identifier"] = {
        "system": icodes.mrn_system(clinic.site_b.name), "value": clinic.patient_b.identifier}
    problem = _only_problem(import_fhir(ehr.write(tmp_path / "b.json", b)))
    assert "are different patients in this clinic" in problem.message
    assert cmodels.LabResult.objects.count() == 0


def test_an_unknown_patient_is_never_created_by_default(clinic, tmp_path):
    _trust(clinic.site_a)
    b = ehr.with_patient(ehr.patient("H-404", family="Newman"), ehr.prolactin({}))
    path = ehr.write(tmp_path / "b.json", b)
    before = stored_counts()
    problem = _only_problem(import_fhir(path, site=clinic.site_a))
    assert f"no patient with identifier {ehr.HOSPITAL_MRN}|H-404" in problem.message
    assert "--create-patients" in problem.message
    assert stored_counts() == before


def test_create_patients_seeds_a_new_patient_once_with_its_demographics(clinic, tmp_path):
    _trust(clinic.site_a)
    pat = ehr.patient("H-405", family="Newman", given="Noor", birth="1979-04-30", gender="female")
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(pat, ehr.prolactin({})))

    report = import_fhir(path, site=clinic.site_a, create_patients=True)

    assert report.ok, report.problems
    assert report.created == {"Patient": 1, "LabResult": 1}
    new = cmodels.Patient.objects.get(identifier="H-405")
    assert (new.site, new.care_team, new.given_name, new.family_name, new.birth_date, new.sex) == (
        clinic.site_a, clinic.team_a, "Noor", "Newman", dt.date(1979, 4, 30), "female")
    assert cmodels.LabResult.objects.get().patient == new
    entry = cmodels.AuditEntry.objects.get(model="Patient", object_id=new.pk)
    assert entry.action == "create" and "patient created (--create-patients)" in entry.reason
    # again: the patient is matched now (no second one), the result is unchanged
    before = stored_counts()
    again = import_fhir(path, site=clinic.site_a, create_patients=True)
    assert again.ok and not again.created and stored_counts() == before


def test_a_created_patient_keeps_the_senders_entry_into_care_and_its_older_records(clinic,
                                                                                  tmp_path):
    """The day the patient came into care bounds the dates a chart accepts (a year before
    it): seeded without it, every record older than a year was refused (issue 14)."""
    from django.utils import timezone

    from speciosa.interop import codes as icodes

    _trust(clinic.site_a)
    since = timezone.localdate() - dt.timedelta(days=900)
    pat = ehr.patient("H-406", family="Older", given="Ola", birth="1970-02-02")
    pat["extension"] = [{"url": icodes.EXT_IN_CARE_SINCE, "valueDate": since.isoformat()}]
    old = ehr.prolactin({}, effectiveDateTime=f"{since + dt.timedelta(days=30)}T08:00:00+00:00",
                        issued=f"{since + dt.timedelta(days=31)}T08:00:00+00:00")
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(pat, old))
    report = import_fhir(path, site=clinic.site_a, create_patients=True)
    assert report.ok, report.problems
    new = cmodels.Patient.objects.get(identifier="H-406")
    assert new.in_care_since == since
    assert cmodels.LabResult.objects.get().patient == new
    [exported] = [p for p in Exporter(cmodels.Patient.objects.filter(pk=new.pk)).patients()]
    assert {"url": icodes.EXT_IN_CARE_SINCE, "valueDate": since.isoformat()} in exported[
        "extension"]


def test_create_patients_does_not_override_a_mismatch(clinic, tmp_path):
    _trust(clinic.site_a)
    wrong = ehr.patient(clinic.patient_a.identifier, birth="1990-01-01")
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(wrong, ehr.prolactin({})))
    before = stored_counts()
    report = import_fhir(path, site=clinic.site_a, create_patients=True)
    assert {p.line for p in report.problems} == {1, 2}
    assert all("patient mismatch" in p.message for p in report.problems)
    assert stored_counts() == before


def test_a_created_patient_is_kept_only_with_the_file_that_stored_it(clinic, tmp_path):
    """A failed file rolls its new patient back; the next file that needs it creates it."""
    _trust(clinic.site_a)
    pat = ehr.patient("H-406", family="Newman")
    pat["id"] = "x"
    bad = ehr.prolactin({}, ident="R-9", effectiveDateTime="2999-01-01T00:00:00Z")
    ehr.write(tmp_path / "a.json", ehr.with_patient(pat, bad))
    good = ehr.prolactin({"reference": "Patient/x"}, ident="R-10")
    (tmp_path / "b.ndjson").write_text(json.dumps(good) + "\n")

    report = import_fhir(tmp_path, site=clinic.site_a, create_patients=True)

    a, b = report.files
    assert (a.file, a.stored, "future" in a.problems[0].message) == ("a.json", False, True)
    assert (b.file, b.created) == ("b.ndjson", {"Patient": 1, "LabResult": 1})
    new = cmodels.Patient.objects.get(identifier="H-406")
    assert cmodels.LabResult.objects.get().patient == new
    assert cmodels.AuditEntry.objects.filter(model="Patient", object_id=new.pk).count() == 1


def test_the_command_needs_a_site_to_create_patients(clinic, tmp_path, capsys):
    # not Maya Quinn's name and birth date: that would be a likely duplicate of patient_a
    path = ehr.write(tmp_path / "b.json", ehr.bundle(ehr.patient("H-1", family="Newman")))
    assert main(["import", "fhir", str(path), "--create-patients"]) == 2
    assert "--create-patients needs --site" in capsys.readouterr().err
    _trust(clinic.site_a)
    assert main(["import", "fhir", str(path), "--create-patients", "--site", "Site A"]) == 0
    assert cmodels.Patient.objects.filter(identifier="H-1", site=clinic.site_a).exists()


def test_a_subject_identifier_of_another_system_with_the_charts_value_is_refused(clinic,
                                                                                  tmp_path):
    """The issue's attack in its barest form, no Patient entry: an Observation whose subject
    is only an identifier of another system with the value of Maya's MRN. Before issue 14 the
    import matched on the value alone and filed the result into Maya's chart (checked against
    471dac0)."""
    maya = clinic.patient_a
    subject = {"identifier": {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.0",
                              "value": maya.identifier}}
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                "entry": [{"resource": ehr.prolactin(subject)}]}))
    before = stored_counts()

    problem = _only_problem(import_fhir(path))

    assert "not trusted" in problem.message
    assert stored_counts() == before
    assert not cmodels.LabResult.objects.filter(patient=maya).exists()
