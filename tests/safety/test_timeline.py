"""Reading a timeline from JSON: good input is built and sorted; bad input names the field."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from speciosa.safety import TimelineError, timeline_from_json

GOOD = {
    "tz": "Europe/Berlin",
    "patient": {"sex": "female", "birth_date": "1990-01-31", "pregnant": False},
    "doses": [
        {"taken_at": "2025-03-02T08:00:00", "amount": 2, "unit": "g", "mitragynine_percent": 1.5},
        {"taken_at": "2025-03-01T08:00:00+00:00", "amount": 1, "unit": "capsule",
         "grams_per_capsule": 0.5},
    ],
    "assessments": [
        {"instrument": "sows", "at": "2025-03-02T10:00:00", "total": 12},
        {"instrument": "audit-c", "at": "2025-03-01T10:00:00",
         "items": {"frequency": 2, "typical-quantity": 1, "heavy-episodes": 0}},
    ],
    "labs": [
        {"lab": "prolactin", "at": "2025-03-01T08:30:00", "value": 400, "unit": "mIU/L"},
        {"lab": "alt", "at": "2025-03-01T08:30:00", "value": 30, "unit": "U/L",
         "reference_low": 7, "reference_high": 40},
        {"lab": "uds-opioids", "at": "2025-03-01T08:30:00", "result": "Neg"},
        {"lab": "hcg", "at": "2025-03-01T08:30:00", "result": "negative"},
    ],
    "side_effects": [{"at": "2025-03-01T20:00:00", "code": "insomnia"}],
    "medications": [{"name": "sertraline 50 mg", "start": "2025-01-01", "end": None}],
    "substances": [{"name": "alcohol", "at": "2025-02-27T21:00:00"}],
    "diary_days": ["2025-03-02", "2025-03-01", "2025-03-02"],
}


def bad(path: list, value, *, delete: bool = False) -> str:
    """Set (or delete) one value of GOOD and return the field named by the error."""
    doc = copy.deepcopy(GOOD)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    with pytest.raises(TimelineError) as err:
        timeline_from_json(doc)
    return err.value.field


def test_a_good_timeline_is_read_and_every_list_is_sorted():
    tl = timeline_from_json(GOOD)
    assert tl.tz == ZoneInfo("Europe/Berlin")
    assert tl.patient.sex == "female" and tl.patient.birth_date == date(1990, 1, 31)
    assert [d.amount for d in tl.doses] == [1, 2]
    assert [a.instrument for a in tl.assessments] == ["audit-c", "sows"]
    assert tl.diary_days == (date(2025, 3, 1), date(2025, 3, 2))


def test_a_time_without_offset_is_read_in_the_timeline_zone():
    tl = timeline_from_json(GOOD)
    assert tl.doses[1].taken_at.utcoffset() == timedelta(hours=1)
    assert tl.doses[0].taken_at == datetime(2025, 3, 1, 8, tzinfo=ZoneInfo("UTC"))


def test_lab_units_and_results_are_normalised_by_the_lab_catalogue():
    tl = timeline_from_json(GOOD)
    by_lab = {r.lab: r for r in tl.labs}
    assert by_lab["prolactin"].unit == "m[IU]/L"
    assert by_lab["uds-opioids"].result == "negative"
    assert by_lab["alt"].reference_high == 40.0


def test_a_wrong_lab_unit_names_the_field():
    assert bad(["labs", 2 - 2, "unit"], "ng/dl") == "labs[0].unit"
    assert bad(["labs", 1, "unit"], "mmol/L") == "labs[1].unit"


def test_an_unknown_lab_names_the_field():
    assert bad(["labs", 1, "lab"], "prolaktin") == "labs[1].lab"


def test_a_missing_lab_value_names_the_field():
    assert bad(["labs", 0, "value"], None, delete=True) == "labs[0].value"


def test_a_qualitative_lab_without_a_result_names_the_field():
    assert bad(["labs", 2, "result"], None, delete=True) == "labs[2].result"
    assert bad(["labs", 2, "result"], "maybe") == "labs[2].result"


def test_a_reversed_reference_range_names_the_field():
    assert bad(["labs", 1, "reference_low"], 50) == "labs[1].reference_high"


def test_a_cows_item_value_the_scale_does_not_allow_names_the_item():
    doc = copy.deepcopy(GOOD)
    doc["assessments"][0] = {"instrument": "cows", "at": "2025-03-02T10:00:00",
                             "items": {"pupil": 3}}
    with pytest.raises(TimelineError) as err:
        timeline_from_json(doc)
    assert err.value.field == "assessments[0].items.pupil"
    assert "0, 1, 2, 5" in err.value.message


def test_a_total_out_of_range_names_the_field():
    assert bad(["assessments", 0, "total"], 65) == "assessments[0].total"


def test_an_unknown_instrument_names_the_field():
    assert bad(["assessments", 0, "instrument"], "cowz") == "assessments[0].instrument"


def test_an_assessment_without_items_or_total_names_items():
    assert bad(["assessments", 0, "total"], None, delete=True) == "assessments[0].items"


def test_a_dose_unit_the_converter_does_not_know_names_the_field():
    assert bad(["doses", 0, "unit"], "spoon") == "doses[0].unit"


def test_a_zero_dose_names_the_amount():
    assert bad(["doses", 1, "amount"], 0) == "doses[1].amount"


def test_a_dose_time_that_is_not_iso_names_the_field():
    assert bad(["doses", 0, "taken_at"], "yesterday") == "doses[0].taken_at"


def test_an_unknown_side_effect_code_names_the_field():
    assert bad(["side_effects", 0, "code"], "gynecomastia") == "side_effects[0].code"


def test_a_medication_ending_before_it_starts_names_the_end():
    assert bad(["medications", 0, "end"], "2024-12-31") == "medications[0].end"


def test_a_bad_diary_day_names_its_index():
    assert bad(["diary_days", 1], "2025-02-30") == "diary_days[1]"


def test_an_unknown_sex_names_the_field():
    assert bad(["patient", "sex"], "F") == "patient.sex"


def test_pregnant_must_be_a_boolean():
    assert bad(["patient", "pregnant"], "no") == "patient.pregnant"


def test_an_unknown_time_zone_names_tz():
    assert bad(["tz"], "Mars/Olympus") == "tz"


def test_a_misspelt_field_is_rejected_not_ignored():
    assert bad(["labs", 0, "units"], "ng/mL") == "labs[0].units"
    assert bad(["side_effect"], []) == "side_effect"


def test_a_missing_patient_names_the_field():
    assert bad(["patient"], None, delete=True) == "patient"


def test_a_list_that_is_not_a_list_names_the_field():
    assert bad(["labs"], {"lab": "alt"}) == "labs"


def test_a_timeline_must_be_an_object():
    with pytest.raises(TimelineError) as err:
        timeline_from_json([])
    assert err.value.field == "$"
