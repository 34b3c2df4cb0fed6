"""The reporting laboratory's own range and assay, and values reported as bounds (``<5``).

Entered through the service layer (the web form, the API and the FHIR import all call it),
stored with the result in the canonical unit, used by the flag and by every rule, shown with
its source, and exported in the value's unit.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from speciosa.clinic import services
from speciosa.clinic.models import Alert, LabResult
from speciosa.interop import codes as c
from speciosa.interop.export import Exporter, validate
from speciosa.interop.importer import import_fhir

pytestmark = pytest.mark.django_db

RANGE = LabResult.RangeSource


def _lab(clinic, code, value, unit, *, days_ago=1, **extra):
    return services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": code, "collected_at": timezone.now() - dt.timedelta(days=days_ago),
        "value": Decimal(str(value)), "unit": unit, **extra})


def _firing(patient, topic):
    return Alert.objects.filter(patient=patient, topic=topic, status__in=Alert.ACTIVE,
                                stopped_firing_at__isnull=True).first()


def _observation(row):
    [obs] = [o for o in Exporter().labs(want=frozenset({"Observation"}))
             if o["id"] == f"lab{row.pk}"]
    validate(obs)
    return obs


# ------------------------------------------------------------------ the laboratory's range

def test_a_laboratory_range_narrower_than_the_catalogue_changes_the_flag(clinic):
    # patient_a is female: catalogue ALT 7-45 U/L, so 40 U/L is normal against it
    assert _lab(clinic, "alt", 40, "U/L").flag == "normal"
    row = _lab(clinic, "alt", 40, "U/L", reference_low="7", reference_high="33")
    assert row.flag == "high"
    assert (row.reference_low, row.reference_high, row.reference_source) == (7.0, 33.0,
                                                                              RANGE.LABORATORY)


def test_every_rule_reads_the_laboratory_range(clinic):
    # ALT 120 U/L: 2.7 x the catalogue's 45, 3.6 x the laboratory's 33 (threshold 3 x ULN)
    _lab(clinic, "alt", 120, "U/L", days_ago=3)
    assert _firing(clinic.patient_a, "liver-injury") is None
    _lab(clinic, "alt", 120, "U/L", reference_low="7", reference_high="33")
    alert = _firing(clinic.patient_a, "liver-injury")
    assert alert is not None and "3.6 x ULN" in alert.message
    assert alert.evidence["labs"]["alt"]["upper_reference_limit"] == 33.0


def test_a_range_in_another_unit_than_the_value_is_converted(clinic):
    # value in U/L, the laboratory's range in ukat/L: 0.1-0.5 ukat/L = 6-30 U/L
    row = _lab(clinic, "alt", 90, "U/L", reference_low="0.1", reference_high="0.5",
               reference_unit="µkat/L")
    assert (row.reference_low, row.reference_high) == pytest.approx((6.0, 30.0))
    assert row.flag == "high"
    rr = _observation(row)["referenceRange"][0]
    assert (rr["low"]["value"], rr["high"]["value"], rr["high"]["code"]) == (6.0, 30.0, "U/L")
    assert rr["text"] == "laboratory range"


def test_a_prolactin_assay_factor_and_a_range_in_ng_per_ml_for_a_value_in_miu(clinic):
    # 636 mIU/L at the laboratory's 30 mIU/L per ng/mL is 21.2 ng/mL, inside its 5-25 ng/mL;
    # at the catalogue's 21.2 it would be 30 ng/mL, high for the catalogue's 23.3
    row = _lab(clinic, "prolactin", 636, "mIU/L", iu_factor="30", reference_low="5",
               reference_high="25", reference_unit="ng/mL")
    assert row.canonical_value == pytest.approx(21.2)
    assert row.iu_factor == 30.0 and row.flag == "normal"
    assert _firing(clinic.patient_a, "prolactin-high") is None
    obs = _observation(row)
    assert obs["code"]["coding"][0]["code"] == "15081-3"
    rr = obs["referenceRange"][0]
    assert (rr["low"]["value"], rr["high"]["value"], rr["high"]["code"]) == (150.0, 750.0,
                                                                             "m[IU]/L")
    assert {"url": c.EXT_IU_FACTOR, "valueDecimal": 30.0} in obs["extension"]
    # the same value at the catalogue's factor is high and raises the finding
    _lab(clinic, "prolactin", 636, "mIU/L", days_ago=0)
    alert = _firing(clinic.patient_a, "prolactin-high")
    assert alert is not None and "Prolactin 30 ng/mL" in alert.message


def test_the_patient_page_labels_whose_range_it_is(clinic, login):
    _lab(clinic, "alt", 40, "U/L", reference_low="7", reference_high="33", days_ago=2)
    _lab(clinic, "ast", 20, "U/L")
    page = login(clinic.clinician_a).get(f"/patients/{clinic.patient_a.pk}/").content.decode()
    assert "laboratory range 7–33 U/L" in page
    assert "catalogue range (fallback) 8–43 U/L" in page


def test_a_correction_keeps_the_laboratory_range(clinic):
    row = _lab(clinic, "alt", 40, "U/L", reference_low="7", reference_high="33")
    new = services.correct_record(clinic.clinician_a, row, {"value": Decimal("30")}, "typo")
    assert (new.reference_high, new.reference_source, new.flag) == (33.0, RANGE.LABORATORY,
                                                                    "normal")


@pytest.mark.parametrize(("extra", "field", "words"), [
    ({"reference_low": "40", "reference_high": "7"}, "reference_high", "below the lower limit"),
    ({"reference_low": "-1", "reference_high": "7"}, "reference_low", "cannot be negative"),
    ({"reference_high": "lots"}, "reference_high", "as a number"),
    ({"reference_high": "33", "reference_unit": "mg/dL"}, "reference_unit", "not accepted"),
    ({"iu_factor": "21.2"}, "iu_factor", "Only a prolactin result"),
    ({"comparator": "~"}, "comparator", "Choose <, <=, >= or >"),
])
def test_a_bad_range_factor_or_comparator_is_refused_and_nothing_is_saved(clinic, extra, field,
                                                                          words):
    with pytest.raises(ValidationError) as exc:
        _lab(clinic, "alt", 40, "U/L", **extra)
    assert words in " ".join(exc.value.message_dict[field])
    assert LabResult.objects.count() == 0


def test_an_implausible_assay_factor_is_refused(clinic):
    with pytest.raises(ValidationError) as exc:
        _lab(clinic, "prolactin", 636, "mIU/L", iu_factor="2.12")
    assert "between 10 and 60" in exc.value.message_dict["iu_factor"][0]
    assert LabResult.objects.count() == 0


# ------------------------------------------------------------------ comparators

def test_a_value_below_the_detection_limit_is_stored_as_a_bound_and_flagged_by_it(clinic):
    row = _lab(clinic, "alt", 5, "U/L", comparator="<")
    assert (row.value, row.comparator, row.flag) == (5, "<", "low")  # female range from 7
    obs = _observation(row)
    assert obs["valueQuantity"]["comparator"] == "<" and obs["valueQuantity"]["value"] == 5
    # "<50" against 7-45 can be low, normal or high: no flag is claimed
    assert _lab(clinic, "alt", 50, "U/L", comparator="<").flag == ""


def test_an_upper_bound_never_raises_a_finding_and_a_lower_bound_does(clinic):
    _lab(clinic, "alt", 500, "U/L", comparator="<")
    assert _firing(clinic.patient_a, "liver-injury") is None
    _lab(clinic, "alt", 500, "U/L", comparator=">", days_ago=0)
    alert = _firing(clinic.patient_a, "liver-injury")
    assert alert is not None and "ALT >500 U/L" in alert.message


# ------------------------------------------------------------------ API and web form

def _api(user):
    from rest_framework.test import APIClient

    client = APIClient(HTTP_HOST="localhost")
    client.force_authenticate(user)
    return client


def key():
    import uuid

    return {"Idempotency-Key": str(uuid.uuid4())}


def test_the_api_takes_the_laboratory_range_factor_and_comparator(clinic):
    at = (timezone.now() - dt.timedelta(hours=2)).isoformat()
    response = _api(clinic.clinician_a).post(
        f"/api/v1/patients/{clinic.patient_a.pk}/labs/",
        {"lab": "prolactin", "value": 636, "unit": "m[IU]/L", "collected_at": at,
         "iu_factor": 30, "reference_low": 5, "reference_high": 25, "reference_unit": "ng/mL"},
        format="json", headers=key())
    body = response.json()
    assert response.status_code == 201, body
    assert body["canonical_value"] == pytest.approx(21.2) and body["flag"] == "normal"
    # the range comes back in the value's unit (25 ng/mL at 30 mIU/L per ng/mL = 750 mIU/L)
    # and, labelled, in the canonical unit (issue 13)
    assert (body["reference_high"], body["reference_unit"], body["reference_source"],
            body["iu_factor"]) == (750.0, "m[IU]/L", "laboratory", 30.0)
    assert body["reference_high_canonical"] == 25.0
    bad = _api(clinic.clinician_a).post(
        f"/api/v1/patients/{clinic.patient_a.pk}/labs/",
        {"lab": "alt", "value": 40, "unit": "U/L", "collected_at": at, "reference_low": 40,
         "reference_high": 7}, format="json", headers=key())
    assert bad.status_code == 400 and "reference_high" in bad.json()["errors"]
    assert LabResult.objects.count() == 1


def test_the_web_form_takes_the_laboratory_range(clinic, login):
    from tests.web.conftest import lab_post

    client = login(clinic.clinician_a)
    data = lab_post(lab="alt", value="40", unit="U/L", reference_low="7", reference_high="33",
                    comparator="")
    response = client.post(f"/patients/{clinic.patient_a.pk}/labs/new/", data)
    assert response.status_code == 302
    row = LabResult.objects.get()
    assert (row.reference_high, row.reference_source, row.flag) == (33.0, RANGE.LABORATORY, "high")
    bad = client.post(f"/patients/{clinic.patient_a.pk}/labs/new/",
                      lab_post(token="t-2", lab="alt", value="40", unit="U/L",
                               reference_low="40", reference_high="7"))
    assert bad.status_code == 200 and "below the lower limit" in bad.content.decode()
    assert LabResult.objects.count() == 1


# ------------------------------------------------------------------ FHIR import

def _observation_in(patient, **changes):
    res = {
        "resourceType": "Observation", "id": "x1",
        "identifier": [{"system": "urn:example:lab", "value": "L1"}],
        "status": "final",
        "category": [{"coding": [{"system": c.OBS_CATEGORY, "code": "laboratory"}]}],
        "code": {"coding": [{"system": c.LOINC, "code": "1742-6"}]},
        "subject": {"identifier": {"system": c.mrn_system(patient.site.name),
                                    "value": patient.identifier}},
        "effectiveDateTime": "2026-01-10T09:00:00+00:00",
        "valueQuantity": {"value": 5, "comparator": "<", "unit": "U/L", "system": c.UCUM,
                          "code": "U/L"},
        "referenceRange": [{"low": {"value": 10, "unit": "U/L", "system": c.UCUM, "code": "U/L"},
                            "high": {"value": 40, "unit": "U/L", "system": c.UCUM,
                                     "code": "U/L"}}],
        "interpretation": [{"coding": [{"system": c.OBS_INTERPRETATION, "code": "L",
                                        "display": "Low"}]}],
    }
    res.update(changes)
    return res


def test_import_keeps_the_comparator_the_laboratory_range_and_interpretation(clinic, tmp_path):
    path = tmp_path / "Observation.ndjson"
    path.write_text(json.dumps(_observation_in(clinic.patient_a)) + "\n")
    report = import_fhir(path)
    assert report.ok, report.problems
    row = LabResult.objects.get()
    assert (row.value, row.comparator, row.reference_low, row.reference_high) == (5, "<", 10, 40)
    assert row.reference_source == RANGE.LABORATORY and row.flag == "low"
    out = _observation(row)
    assert out["valueQuantity"]["comparator"] == "<"
    rr = out["referenceRange"][0]
    assert (rr["low"]["value"], rr["high"]["value"]) == (10, 40)
    assert out["interpretation"] == [{"coding": [{"system": c.OBS_INTERPRETATION, "code": "L",
                                                  "display": "Low"}]}]


def test_import_of_a_prolactin_in_miu_under_the_units_loinc(clinic, tmp_path):
    res = _observation_in(
        clinic.patient_a, code={"coding": [{"system": c.LOINC, "code": "15081-3"}]},
        valueQuantity={"value": 400, "unit": "mIU/L", "system": c.UCUM, "code": "m[IU]/L"},
        referenceRange=[{"high": {"value": 500, "unit": "mIU/L", "system": c.UCUM,
                                  "code": "m[IU]/L"}}])
    res.pop("interpretation")
    path = tmp_path / "Observation.ndjson"
    path.write_text(json.dumps(res) + "\n")
    assert import_fhir(path).ok
    row = LabResult.objects.get()
    assert (row.lab, row.loinc, row.unit) == ("prolactin", "15081-3", "m[IU]/L")
    assert row.reference_high == pytest.approx(500 / 21.2)
    assert _observation(row)["referenceRange"][0]["high"]["value"] == 500


def test_import_refuses_a_range_whose_limits_are_in_different_units(clinic, tmp_path):
    res = _observation_in(clinic.patient_a, referenceRange=[{
        "low": {"value": 0.1, "code": "ukat/L"}, "high": {"value": 40, "code": "U/L"}}])
    path = tmp_path / "Observation.ndjson"
    path.write_text(json.dumps(res) + "\n")
    report = import_fhir(path)
    assert not report.ok and "different units" in report.problems[0].message
    assert LabResult.objects.count() == 0
