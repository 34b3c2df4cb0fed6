"""Lab numbers through the API (issue 13): the range comes back in the unit the value is
shown in (and, labelled, in the canonical unit); a decimal comma is refused with a message
that says to use a point, as the web form does; nothing is saved."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from speciosa.clinic.models import Dose, LabResult

pytestmark = pytest.mark.django_db


def _post(api, clinic, key, **body):
    at = (timezone.now() - dt.timedelta(hours=2)).isoformat()
    return api(clinic.clinician_a).post(f"/api/v1/patients/{clinic.patient_a.pk}/labs/",
                                        {"collected_at": at, **body}, format="json",
                                        headers=key())


def test_the_range_is_returned_in_the_values_unit_and_labelled_in_the_canonical_one(
        clinic, api, key):
    # bilirubin 34.2 umol/L = 2 mg/dL; catalogue range 0-1.2 mg/dL = 0-20.52 umol/L
    body = _post(api, clinic, key, lab="bilirubin", value=34.2, unit="umol/L").json()
    assert (body["value"], body["unit"], body["canonical_unit"]) == (34.2, "umol/L", "mg/dL")
    assert (body["reference_low"], body["reference_high"], body["reference_unit"]) == (
        0.0, 20.52, "umol/L")
    assert (body["reference_low_canonical"], body["reference_high_canonical"]) == (0.0, 1.2)
    assert body["flag"] == "high" and body["reference_source"] == "catalogue"
    row = LabResult.objects.get()
    got = api(clinic.clinician_a).get(
        f"/api/v1/patients/{clinic.patient_a.pk}/timeline/").json()["results"]
    lab = next(e for e in got if e["kind"] == "lab")
    assert lab["record_id"] == row.pk


def test_a_prolactin_range_in_miu_uses_the_laboratorys_assay_factor(clinic, api, key):
    # the laboratory's range 150-750 mIU/L at its 30 mIU/L per ng/mL: 5-25 ng/mL
    body = _post(api, clinic, key, lab="prolactin", value=636, unit="mIU/L", iu_factor=30,
                 reference_low=150, reference_high=750).json()
    assert (body["reference_low"], body["reference_high"], body["reference_unit"]) == (
        150.0, 750.0, "m[IU]/L")
    assert (body["reference_low_canonical"], body["reference_high_canonical"]) == (5.0, 25.0)
    assert body["canonical_value"] == pytest.approx(21.2) and body["flag"] == "normal"


def test_a_range_in_the_canonical_unit_stays_as_it_is(clinic, api, key):
    body = _post(api, clinic, key, lab="alt", value=40, unit="U/L").json()
    assert (body["reference_low"], body["reference_high"]) == (
        body["reference_low_canonical"], body["reference_high_canonical"]) == (7.0, 45.0)


@pytest.mark.parametrize("field", ["value", "reference_low", "iu_factor"])
def test_a_decimal_comma_is_refused_saying_use_a_point_and_nothing_is_saved(
        clinic, api, key, field):
    body = {"lab": "prolactin", "value": 18, "unit": "ng/mL", field: "1,5"}
    response = _post(api, clinic, key, **body)
    assert response.status_code == 400
    [message] = response.json()["errors"][field]
    assert message.startswith("Use a point for decimals: write 1.5, not 1,5")
    assert LabResult.objects.count() == 0


def test_a_dose_amount_with_a_decimal_comma_says_use_a_point(clinic, api, key):
    response = api(clinic.patient_a.user).post(
        "/api/v1/me/diary/", {"doses": [{"taken_at": timezone.now().isoformat(),
                                         "amount": "2,5", "unit": "g"}]},
        format="json", headers=key())
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert any(m.startswith("Use a point for decimals") for v in errors.values() for m in v), errors
    assert Dose.objects.count() == 0


def test_a_number_sent_as_text_is_refused_and_the_message_says_send_a_number(clinic, api, key):
    response = _post(api, clinic, key, lab="alt", value="40", unit="U/L")
    assert response.status_code == 400
    assert response.json()["errors"]["value"] == [
        "Send a number (not text), with a point for decimals, e.g. 1.5."]


def test_a_positive_pregnancy_test_and_the_prolactin_after_it_through_the_api(clinic, api, key):
    """A qualitative hCG (pregnancy test) is taken as positive or negative (issue 13); the
    prolactin after it comes back unflagged with its state at the sample and why."""
    hcg = _post(api, clinic, key, lab="hcg", result="positive")
    assert hcg.status_code == 201, hcg.content
    assert (hcg.json()["result"], hcg.json()["loinc"], hcg.json()["value"]) == ("positive", "2106-3", None)
    body = _post(api, clinic, key, lab="prolactin", value=300, unit="ng/mL").json()
    assert (body["flag"], body["sample_state"]) == ("", "hcg-positive")
    assert body["sample_state_note"].startswith("Taken after a positive hCG")
    bad = _post(api, clinic, key, lab="hcg", result="maybe")
    assert bad.status_code == 400
    assert "positive or negative" in bad.content.decode()
    assert LabResult.objects.filter(patient=clinic.patient_a, lab="hcg").count() == 1
