"""A resource Speciosa cannot take is reported with its position and reason (issue 14); by
default one bad resource stores nothing of its file, with ``per_resource`` the others are
stored; a patient mismatch always refuses the whole file; every file is one transaction."""

from __future__ import annotations

import json

import pytest

from speciosa.cli import main
from speciosa.clinic import models as cmodels
from speciosa.interop.importer import import_fhir

from . import ehr
from .conftest import stored_counts

pytestmark = pytest.mark.django_db




def _unknown_test(ident="R-2"):
    return ehr.prolactin({}, ident=ident, code={"coding": [
        {"system": ehr.LOINC, "code": "2143-6", "display": "Cortisol [Mass/volume] in Serum"}]})


def _file(tmp_path, maya, *results):
    b = ehr.with_patient(ehr.patient(maya.identifier), *results)
    return ehr.write(tmp_path / "b.json", b)


def test_one_unknown_test_refuses_the_file_by_default_and_says_which(maya, tmp_path):
    path = _file(tmp_path, maya, ehr.prolactin({}, ident="R-1"), _unknown_test(),
                 ehr.prolactin({}, ident="R-3", value=20.0))
    before = stored_counts()

    report = import_fhir(path)

    [problem] = report.problems
    assert (problem.line, problem.resource) == (3, f"Observation {ehr.HOSPITAL_LAB}|R-2")
    assert "not a laboratory test Speciosa knows" in problem.message
    assert not report.files[0].stored and stored_counts() == before


def test_per_resource_stores_the_rest_and_reports_the_unknown_test(maya, tmp_path):
    path = _file(tmp_path, maya, ehr.prolactin({}, ident="R-1"), _unknown_test(),
                 ehr.prolactin({}, ident="R-3", value=20.0))

    report = import_fhir(path, per_resource=True)

    assert not report.ok and report.files[0].stored
    assert [p.line for p in report.problems] == [3]
    assert report.created == {"LabResult": 2}
    assert sorted(float(v) for v in cmodels.LabResult.objects.values_list("value", flat=True)) \
        == [20.0, 38.0]
    # sending the file again after the laboratory fixed the code: only that one is new
    fixed = _file(tmp_path, maya, ehr.prolactin({}, ident="R-1"),
                  ehr.prolactin({}, ident="R-2", value=11.0),
                  ehr.prolactin({}, ident="R-3", value=20.0))
    again = import_fhir(fixed)
    assert again.ok and again.created == {"LabResult": 1} and again.unchanged == 2


def test_per_resource_still_refuses_the_whole_file_on_a_patient_mismatch(maya, tmp_path):
    good = ehr.with_patient(ehr.patient(maya.identifier), ehr.prolactin({}, ident="R-1"))
    wrong = ehr.with_patient(ehr.patient(maya.identifier, birth="1990-01-01"),
                             ehr.prolactin({}, ident="R-2"))
    entries = good["entry"] + wrong["entry"]
    path = ehr.write(tmp_path / "b.json", ehr.bundle(
        *[e["resource"] for e in entries], urls=[e["fullUrl"] for e in entries]))
    before = stored_counts()

    report = import_fhir(path, per_resource=True)

    assert not report.files[0].stored
    assert all(p.fatal for p in report.problems) and {p.line for p in report.problems} == {3, 4}
    assert stored_counts() == before


def test_ndjson_problems_name_the_line(maya, tmp_path):
    path = tmp_path / "Observation.ndjson"
    subject = {"identifier": {"system": ehr.HOSPITAL_MRN, "value": maya.identifier}}
    lines = [ehr.prolactin(subject, ident="R-1"), _unknown_test(), {"resourceType": "Nope"}]
    lines[1]["subject"] = subject
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    report = import_fhir(path, per_resource=True)
    assert [(p.line, "Nope" in p.message or "laboratory test" in p.message)
            for p in report.problems] == [(2, True)]
    assert report.files[0].skipped["Nope"] == 1  # not a type Speciosa imports: counted
    assert cmodels.LabResult.objects.count() == 1


def test_the_command_takes_per_resource_and_exits_2_naming_the_refused(maya, tmp_path, capsys):
    path = _file(tmp_path, maya, ehr.prolactin({}, ident="R-1"), _unknown_test())
    assert main(["import", "fhir", str(path), "--per-resource"]) == 2
    captured = capsys.readouterr()
    assert "b.json: stored 1 LabResult" in captured.out and "1 resource(s) refused" in captured.out
    assert "the resources below were refused" in captured.err
    assert f"b.json:3: Observation {ehr.HOSPITAL_LAB}|R-2: code: not a laboratory test" in \
        captured.err
    assert cmodels.LabResult.objects.count() == 1


def test_a_file_is_one_transaction(maya, tmp_path, monkeypatch):
    """A failure while storing (here: the audit trail refusing) leaves nothing of the file."""
    from speciosa.clinic import writes

    def broken(entries):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writes, "append_audit", broken)
    path = _file(tmp_path, maya, ehr.prolactin({}, ident="R-1"), ehr.prolactin({}, ident="R-3"))
    before = stored_counts()
    with pytest.raises(RuntimeError):
        import_fhir(path)
    assert stored_counts() == before
