"""Adversarial pass on FHIR import patient matching (issue 14, adversarial pass): variants of
identifiers, references and demographics that must never file a resource into the wrong chart,
and refusals that store nothing of the file."""

from __future__ import annotations

import copy

import pytest

from speciosa.clinic import models as cmodels
from speciosa.interop.importer import import_fhir
from speciosa.interop.models import TrustedIdentifierSystem

from . import ehr
from .conftest import stored_counts

pytestmark = pytest.mark.django_db




def _trust(site, system=ehr.HOSPITAL_MRN):
    return TrustedIdentifierSystem.objects.create(site=site, system=system, note="test")


def _refused(path, **kw):
    before = stored_counts()
    report = import_fhir(path, **kw)
    assert not report.ok, "imported, should have been refused"
    assert stored_counts() == before
    return report


def _maya(clinic, **changes):
    p = clinic.patient_a
    kw = {"family": p.family_name, "given": p.given_name, "birth": p.birth_date.isoformat(),
          "gender": p.sex}
    kw.update(changes)
    return ehr.patient(p.identifier, **kw)


@pytest.mark.parametrize("variant", [ehr.HOSPITAL_MRN.upper(), ehr.HOSPITAL_MRN + "/",
                                     " " + ehr.HOSPITAL_MRN, ehr.HOSPITAL_MRN + " "])
def test_a_variant_of_a_trusted_system_is_not_trusted(clinic, tmp_path, variant):
    _trust(clinic.site_a)
    pat = _maya(clinic)
    pat["identifier"][0]["system"] = variant
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(pat, ehr.prolactin({})),
                     check_r4=False)
    report = _refused(path)
    assert "not trusted" in report.problems[0].message


@pytest.mark.parametrize("birth", ["1985", "1985-06"])
def test_a_partial_birth_date_that_agrees_is_accepted(clinic, tmp_path, birth):
    _trust(clinic.site_a)
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(_maya(clinic, birth=birth),
                                                           ehr.prolactin({})))
    assert import_fhir(path).ok
    assert cmodels.LabResult.objects.get().patient == clinic.patient_a


@pytest.mark.parametrize("birth", ["1986", "1985-07", "1985-06-16"])
def test_a_partial_birth_date_that_disagrees_is_refused(clinic, tmp_path, birth):
    _trust(clinic.site_a)
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(_maya(clinic, birth=birth),
                                                           ehr.prolactin({})))
    report = _refused(path)
    assert any("patient mismatch" in p.message and birth in p.message for p in report.problems)


def test_gender_other_is_refused_for_a_female_chart(clinic, tmp_path):
    _trust(clinic.site_a)
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(_maya(clinic, gender="other"),
                                                           ehr.prolactin({})))
    assert "sex 'other'" in _refused(path).problems[0].message


@pytest.mark.parametrize("family", ["QUINN", "Quínn", " quinn "])
def test_a_family_name_differing_in_case_or_accents_agrees(clinic, tmp_path, family):
    _trust(clinic.site_a)
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(_maya(clinic, family=family),
                                                           ehr.prolactin({})))
    assert import_fhir(path).ok


@pytest.mark.parametrize("family", ["Quinn-Smith", "Quin", "Quinnn"])
def test_another_family_name_is_refused(clinic, tmp_path, family):
    _trust(clinic.site_a)
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(_maya(clinic, family=family),
                                                           ehr.prolactin({})))
    _refused(path)


def test_a_missing_urn_uuid_is_refused(clinic, tmp_path):
    _trust(clinic.site_a)
    b = ehr.with_patient(_maya(clinic), ehr.prolactin({}))
    b["entry"][1]["resource"]["subject"] = {"reference": ehr.urn()}
    path = ehr.write(tmp_path / "b.json", b)
    assert "names no Patient resource" in _refused(path).problems[0].message


def test_a_urn_uuid_used_by_two_patients_is_refused(clinic, tmp_path):
    _trust(clinic.site_a)
    b = ehr.with_patient(_maya(clinic), ehr.prolactin({}))
    other = ehr.patient("H-777", family="Other", given="Person", birth="1970-01-01",
                        gender="male")
    b["entry"].append({"fullUrl": b["entry"][0]["fullUrl"], "resource": other,
                       "request": {"method": "POST", "url": "Patient"}})
    path = ehr.write(tmp_path / "b.json", b, check_r4=False)
    report = _refused(path)
    assert any("two different Patient" in p.message for p in report.problems)


def test_a_reference_to_one_patient_and_an_identifier_of_another_are_refused(clinic, tmp_path):
    _trust(clinic.site_a)
    other = cmodels.Patient.objects.create(
        site=clinic.site_a, care_team=clinic.team_a, identifier="H-900", given_name="Ann",
        family_name="Other", birth_date=clinic.patient_a.birth_date, sex="female")
    b = ehr.with_patient(_maya(clinic), ehr.prolactin({}))
    b["entry"][1]["resource"]["subject"]["identifier"] = {"system": ehr.HOSPITAL_MRN,
                                                          "value": other.identifier}
    path = ehr.write(tmp_path / "b.json", b)
    assert "different patients" in _refused(path).problems[0].message


def test_two_patient_entries_with_one_identifier_and_other_demographics_are_refused(
        clinic, tmp_path):
    _trust(clinic.site_a)
    b = ehr.with_patient(_maya(clinic), ehr.prolactin({}))
    impostor = _maya(clinic, birth="1990-01-01")
    b["entry"].append({"fullUrl": ehr.urn(), "resource": impostor,
                       "request": {"method": "POST", "url": "Patient"}})
    b["entry"][1]["resource"]["subject"] = {"identifier": {"system": ehr.HOSPITAL_MRN,
                                                           "value": clinic.patient_a.identifier}}
    path = ehr.write(tmp_path / "b.json", b)
    _refused(path)


def test_a_contained_patient_that_disagrees_is_not_ignored(clinic, tmp_path):
    """The resource carries its own Patient (contained) with another birth date and sex:
    matching on subject.identifier alone would file it silently into the chart."""
    _trust(clinic.site_a)
    contained = _maya(clinic, birth="1961-02-03", gender="male", family="Lindqvist")
    contained["id"] = "p1"
    obs = ehr.prolactin({"reference": "#p1", "identifier": {
        "system": ehr.HOSPITAL_MRN, "value": clinic.patient_a.identifier}})
    obs["contained"] = [contained]
    path = ehr.write(tmp_path / "b.json", ehr.bundle(obs))
    report = _refused(path)
    assert "1961-02-03" in report.problems[0].message


def test_a_contained_patient_that_agrees_files_into_the_chart(clinic, tmp_path):
    _trust(clinic.site_a)
    contained = _maya(clinic)
    contained["id"] = "p1"
    obs = ehr.prolactin({"reference": "#p1"})
    obs["contained"] = [contained]
    path = ehr.write(tmp_path / "b.json", ehr.bundle(obs))
    assert import_fhir(path).ok
    assert cmodels.LabResult.objects.get().patient == clinic.patient_a


def test_a_contained_patient_with_an_untrusted_system_or_missing_is_refused(clinic, tmp_path):
    contained = _maya(clinic)  # the hospital system is not trusted here
    contained["id"] = "p1"
    obs = ehr.prolactin({"reference": "#p1"})
    obs["contained"] = [contained]
    path = ehr.write(tmp_path / "b.json", ehr.bundle(obs))
    assert "not trusted" in _refused(path).problems[0].message
    _trust(clinic.site_a)
    obs = ehr.prolactin({"reference": "#p2", "identifier": {
        "system": ehr.HOSPITAL_MRN, "value": clinic.patient_a.identifier}})
    obs["contained"] = [contained]
    path = ehr.write(tmp_path / "c.json", ehr.bundle(obs))
    assert "names no contained Patient" in _refused(path).problems[0].message


def test_create_patients_refuses_a_second_chart_for_the_same_name_and_birth_date(clinic,
                                                                                  tmp_path):
    _trust(clinic.site_a)
    pat = _maya(clinic)
    pat["identifier"][0]["value"] = "H-12345"  # the hospital's number, not the site's
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(pat, ehr.prolactin({})))
    report = _refused(path, site=clinic.site_a, create_patients=True)
    assert any("same name and birth date" in p.message for p in report.problems)


def test_a_local_database_id_of_another_patient_is_never_trusted(clinic, tmp_path):
    _trust(clinic.site_a)
    obs = ehr.prolactin({"reference": f"Patient/{clinic.patient_b.pk}"})
    path = ehr.write(tmp_path / "b.json", ehr.bundle(obs))
    _refused(path)
    obs = ehr.prolactin({"reference": f"Patient/{clinic.patient_a.pk}"})
    path = ehr.write(tmp_path / "c.json", ehr.bundle(obs))
    _refused(path)


def test_a_subject_identifier_only_files_into_the_right_chart(clinic, tmp_path):
    _trust(clinic.site_a)
    obs = ehr.prolactin({"identifier": {"system": ehr.HOSPITAL_MRN,
                                        "value": clinic.patient_a.identifier}})
    path = ehr.write(tmp_path / "b.json", ehr.bundle(obs))
    assert import_fhir(path).ok
    assert cmodels.LabResult.objects.get().patient == clinic.patient_a


def test_a_conditional_reference_is_refused_saying_so(clinic, tmp_path):
    _trust(clinic.site_a)
    obs = ehr.prolactin({"reference": f"Patient?identifier={ehr.HOSPITAL_MRN}|"
                                      f"{clinic.patient_a.identifier}"})
    path = ehr.write(tmp_path / "b.json", ehr.bundle(obs))
    report = _refused(path)
    assert "names no Patient resource" in report.problems[0].message


def test_one_bad_resource_among_good_ones_for_two_patients_stores_nothing(clinic, tmp_path):
    _trust(clinic.site_a)
    good = ehr.prolactin({"identifier": {"system": ehr.HOSPITAL_MRN,
                                         "value": clinic.patient_a.identifier}}, ident="R-1")
    bad = ehr.prolactin({"identifier": {"value": clinic.patient_a.identifier}}, ident="R-2")
    path = ehr.write(tmp_path / "b.json", ehr.bundle(good, copy.deepcopy(good) | {
        "identifier": [{"system": ehr.HOSPITAL_LAB, "value": "R-3"}]}, bad))
    report = _refused(path)
    assert [p.line for p in report.problems] == [3]


@pytest.mark.parametrize("variant", ["lower", "space", "zero"])
def test_create_patients_does_not_duplicate_a_patient_with_a_varied_identifier(clinic, tmp_path,
                                                                               variant):
    _trust(clinic.site_a)
    mrn = clinic.patient_a.identifier
    varied = {"lower": mrn.lower(), "space": mrn + " ", "zero": mrn.replace("-", "-0")}[variant]
    pat = _maya(clinic)
    pat["identifier"][0]["value"] = varied
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(pat, ehr.prolactin({})),
                     check_r4=False)
    report = _refused(path, site=clinic.site_a, create_patients=True)
    assert any("already" in p.message for p in report.problems), report.problems
