"""Instrument totals and LOINC-named questionnaires from an EHR (issue 14): a PHQ-9, GAD-7 or
AUDIT-C total sent as a LOINC-coded Observation is an assessment without items (a total-only
PHQ-9 then raises the info finding that item 9 is unknown); a QuestionnaireResponse naming
the LOINC panel is recognised and scored by the one scorer."""

from __future__ import annotations

import pytest

from speciosa.clinic import models as cmodels
from speciosa.interop import codes as icodes
from speciosa.interop.export import Exporter, write_ndjson
from speciosa.interop.importer import import_fhir

from . import ehr
from .r4 import parse_r4

pytestmark = pytest.mark.django_db


def _total(loinc: str, value, ident="T-1", **changes) -> dict:
    res = {"resourceType": "Observation", "status": "final",
           "identifier": [{"system": "https://ehr.hospital.example/sid/score", "value": ident}],
           "category": [{"coding": [{"system": ehr.OBS_CATEGORY, "code": "survey"}]}],
           "code": {"coding": [{"system": ehr.LOINC, "code": loinc}]},
           "effectiveDateTime": "2026-11-25T10:30:00+00:00",
           "valueQuantity": {"value": value, "unit": "{score}", "system": ehr.UCUM,
                             "code": "{score}"}}
    res.update(changes)
    return res


def test_a_total_only_phq9_is_an_assessment_without_items_and_asks_for_item_9(maya, tmp_path):
    report = ehr.send(tmp_path, maya, _total("44261-6", 12))

    assert report.ok, report.problems
    a = cmodels.Assessment.objects.get()
    assert (a.instrument, a.items, a.total, a.band, a.complete, a.source) == (
        "phq9", {}, 12, "moderate", False, "import")
    alert = cmodels.Alert.objects.get(patient=maya, rule="SAF-SUICIDE")
    assert alert.severity == "info"
    assert "has no answer to item 9" in alert.message and "(total 12)" in alert.message


def test_a_severe_total_only_phq9_raises_the_severe_depression_finding_too(maya, tmp_path):
    assert ehr.send(tmp_path, maya, _total("44261-6", 22)).ok
    rules = set(cmodels.Alert.objects.filter(patient=maya).values_list("rule", flat=True))
    assert "SAF-SUICIDE" in rules
    assert any("DEPRESS" in r for r in rules), rules


@pytest.mark.parametrize(("loinc", "value", "instrument", "band", "flags"), [
    ("70274-6", 16, "gad7", "severe", []),
    ("75626-2", 5, "audit-c", "", ["audit-c-positive"]),  # female cut-off 3 (Bradley 2003)
])
def test_gad7_and_audit_c_totals_import(maya, tmp_path, loinc, value, instrument, band, flags):
    assert ehr.send(tmp_path, maya, _total(loinc, value)).ok
    a = cmodels.Assessment.objects.get()
    assert (a.instrument, a.total, a.band, a.flags, a.items) == (instrument, value, band,
                                                                 flags, {})


def test_an_impossible_total_is_refused_with_the_range(maya, tmp_path):
    [problem] = ehr.send(tmp_path, maya, _total("44261-6", 28)).problems
    assert "from 0 to 27" in problem.message and problem.line == 2
    [problem] = ehr.send(tmp_path, maya, _total("44261-6", 7.5)).problems
    assert "whole number" in problem.message
    assert not cmodels.Assessment.objects.exists()


def test_a_total_derived_from_a_response_is_left_to_the_response(maya, tmp_path):
    report = ehr.send(tmp_path, maya, _total("44261-6", 12, derivedFrom=[
        {"reference": "QuestionnaireResponse/x"}]))
    assert report.ok and report.files[0].skipped["Observation (not imported)"] == 1
    assert not cmodels.Assessment.objects.exists()


def test_a_total_only_assessment_exports_as_its_total_and_round_trips(maya, tmp_path):
    assert ehr.send(tmp_path, maya, _total("44261-6", 12)).ok
    out = list(Exporter(cmodels.Patient.objects.filter(pk=maya.pk)).resources(
        ["Observation", "QuestionnaireResponse"]))
    assert [r["resourceType"] for r in out] == ["Observation"]  # no response without items
    [obs] = out
    parse_r4(obs)
    assert "derivedFrom" not in obs and obs["valueQuantity"]["value"] == 12
    assert obs["code"]["coding"][0]["code"] == "44261-6"
    write_ndjson(tmp_path / "again", Exporter(cmodels.Patient.objects.filter(pk=maya.pk)))
    before = cmodels.Assessment.objects.count()
    assert import_fhir(tmp_path / "again").ok
    assert cmodels.Assessment.objects.count() == before  # our own export: nothing new


def test_a_response_naming_the_loinc_phq9_panel_is_recognised_and_scored(maya, tmp_path):
    """As an EHR writes it: the LOINC panel as questionnaire, LOINC item codes as linkIds,
    LOINC answer codes, and the sender's own total item (recomputed, not trusted)."""
    answers = {"44250-9": "LA6569-3", "44255-8": "LA6570-1", "44259-0": "LA6568-5",
               "44254-1": "LA6569-3", "44251-7": "LA6568-5", "44258-2": "LA6568-5",
               "44252-5": "LA6569-3", "44253-3": "LA6568-5", "44260-8": "LA6569-3"}
    items = [{"linkId": link, "answer": [{"valueCoding": {"system": ehr.LOINC, "code": code}}]}
             for link, code in answers.items()]
    items.append({"linkId": "44261-6", "answer": [{"valueInteger": 27}]})  # wrong on purpose
    qr = {"resourceType": "QuestionnaireResponse",
          "identifier": {"system": "https://ehr.hospital.example/sid/qr", "value": "Q-9"},
          "questionnaire": "http://loinc.org/q/44249-1", "status": "completed",
          "authored": "2026-11-25T10:30:00+00:00", "item": items}

    report = ehr.send(tmp_path, maya, qr)

    assert report.ok, report.problems
    a = cmodels.Assessment.objects.get()
    assert (a.instrument, a.total, a.complete) == ("phq9", 6, True)  # 1+2+0+1+0+0+1+0+1
    assert a.items["self-harm"] == 1 and a.items["mood"] == 2
    assert "phq9-item9-positive" in a.flags
    alert = cmodels.Alert.objects.get(patient=maya, rule="SAF-SUICIDE")
    assert alert.severity == "urgent"


@pytest.mark.parametrize(("panel", "instrument"), [("69737-5", "gad7"), ("72109-2", "audit-c")])
def test_the_gad7_and_audit_c_panels_are_recognised(maya, tmp_path, panel, instrument):
    qr = {"resourceType": "QuestionnaireResponse",
          "identifier": {"system": "https://ehr.hospital.example/sid/qr", "value": "Q-1"},
          "questionnaire": f"http://loinc.org/q/{panel}", "status": "in-progress",
          "authored": "2026-11-25T10:30:00+00:00"}
    report = ehr.send(tmp_path, maya, qr)
    assert report.ok, report.problems
    a = cmodels.Assessment.objects.get()
    assert (a.instrument, a.complete) == (instrument, False)
    assert icodes.PANEL_LOINC[instrument][0] == panel
