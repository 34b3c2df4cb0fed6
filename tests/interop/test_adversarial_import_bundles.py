"""Adversarial pass on FHIR import (issue 14): Bundles as an EHR or a FHIR server sends
them, with entries that ask for something other than 'store this' (a DELETE, a PATCH), and
Bundle types whose entries are not records to file."""

from __future__ import annotations

import copy

import pytest

from speciosa.interop.importer import import_fhir

from . import ehr
from .conftest import stored_counts

pytestmark = pytest.mark.django_db


def _maya_bundle(maya, *others, kind="transaction"):
    pat = ehr.patient(maya.identifier, family=maya.family_name, given=maya.given_name,
                      birth=maya.birth_date.isoformat(), gender=maya.sex)
    return ehr.with_patient(pat, *copy.deepcopy(others), kind=kind)


def _refused(path, *words):
    before = stored_counts()
    report = import_fhir(path)
    assert not report.ok, "imported, should have been refused"
    assert stored_counts() == before
    text = " ".join(str(p) for p in report.problems)
    for word in words:
        assert word in text, text
    return report


@pytest.mark.parametrize("method", ["DELETE", "PATCH", "GET", "HEAD"])
def test_an_entry_that_asks_for_something_other_than_storing_is_refused(maya, tmp_path, method):
    """A transaction entry whose request is DELETE (the EHR withdraws that result) carrying
    the resource was filed as a new result: the opposite of what was asked. It is refused,
    naming the entry and the method, and nothing of the file is stored."""
    b = _maya_bundle(maya, ehr.prolactin({}))
    b["entry"][1]["request"] = {"method": method,
                                "url": f"Observation?identifier={ehr.HOSPITAL_LAB}|R-1"}
    _refused(ehr.write(tmp_path / "b.json", b, check_r4=False), method)


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_post_and_put_entries_are_stored(maya, tmp_path, method):
    b = _maya_bundle(maya, ehr.prolactin({}))
    b["entry"][1]["request"] = {"method": method, "url": "Observation"}
    report = import_fhir(ehr.write(tmp_path / "b.json", b))
    assert report.ok, report.problems


@pytest.mark.parametrize("kind", ["transaction-response", "batch-response"])
def test_a_response_bundle_is_not_taken_for_records(maya, tmp_path, kind):
    """A transaction-response or batch-response says what a server did with a request; its
    entries are outcomes, not records to file."""
    b = _maya_bundle(maya, ehr.prolactin({}), kind="collection")
    b["type"] = kind
    for entry in b["entry"]:
        entry["response"] = {"status": "201 Created"}
    _refused(ehr.write(tmp_path / "b.json", b, check_r4=False), kind)


@pytest.mark.parametrize("second", [83.0, 38.0], ids=["other-value", "same-value"])
def test_one_identifier_twice_in_a_file_is_refused_naming_both_entries(maya, tmp_path, second):
    """Two entries with one identifier: with different results (38 and 83 ng/mL) which one
    the laboratory meant cannot be known from the file; the same result twice is refused as
    well (a sender's error to fix, not guessed). Nothing is stored, both entries named."""
    b = _maya_bundle(maya, ehr.prolactin({}, 38.0), ehr.prolactin({}, second))
    report = _refused(ehr.write(tmp_path / "b.json", b), "also on line 2")
    assert [p.line for p in report.problems] == [3]
