"""A refused import leaves a trace (issue 14): one audit entry saying who tried, which file
(its SHA-256) and why, and nothing else of that file is stored."""

from __future__ import annotations

import getpass
import hashlib

import pytest

from speciosa.cli import main
from speciosa.clinic import models as cmodels
from speciosa.interop.importer import import_fhir

from . import ehr
from .conftest import stored_counts

pytestmark = pytest.mark.django_db




def _refusals():
    return list(cmodels.AuditEntry.objects.filter(action="import-refused"))


def test_a_patient_mismatch_is_audited_with_who_the_file_hash_and_why(clinic, maya, tmp_path):
    wrong = ehr.patient(maya.identifier, birth="1990-01-01")  # another person, same number
    path = ehr.write(tmp_path / "wrong.json", ehr.with_patient(wrong, ehr.prolactin({})))
    before = stored_counts()

    report = import_fhir(path, user=clinic.clinician_a)

    assert not report.ok
    [entry] = _refusals()
    assert (entry.user, entry.model, entry.patient, entry.object_id) == (
        clinic.clinician_a, "fhir-import", None, None)
    assert entry.after["file"] == "wrong.json"
    assert entry.after["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert entry.after["stored"] == "nothing"
    problems = entry.after["problems"]
    assert problems and all(p["refuses_file"] and "patient mismatch" in p["message"]
                            for p in problems)
    assert "birth date 1990-01-01" in entry.reason and "wrong.json" in entry.reason
    # the chart's own birth date is not written into the trail
    assert maya.birth_date.isoformat() not in str(entry.after)
    assert stored_counts() == before  # nothing else stored


def test_a_validation_failure_from_the_command_line_names_the_os_account(maya, tmp_path,
                                                                         capsys):
    bad = ehr.prolactin({}, value=-4)
    path = ehr.write(tmp_path / "bad.json", ehr.with_patient(ehr.patient(maya.identifier), bad))
    before = stored_counts()
    assert main(["import", "fhir", str(path)]) == 2
    [entry] = _refusals()
    assert entry.user is None and entry.after["os_user"] == getpass.getuser()
    assert entry.after["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert entry.after["problems"][0]["line"] == 2
    assert stored_counts() == before


def test_a_stored_file_leaves_no_refusal(maya, tmp_path):
    path = ehr.write(tmp_path / "ok.json", ehr.with_patient(ehr.patient(maya.identifier),
                                                            ehr.prolactin({})))
    assert import_fhir(path).ok
    assert _refusals() == []
