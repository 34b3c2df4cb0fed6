"""Correcting a lab's unit attacked (issue 13, adversarial pass): a hurried clinician records
ALT 5 in U/L with the laboratory's range 0.1-0.5 (the report's range, typed in the value's
unit), then corrects the unit to ukat/L. The range was stored in the canonical unit as
0.1-0.5 U/L and was kept as it was: ALT 300 U/L against an upper limit of 0.5 U/L, "600 x
ULN", an urgent liver alert. A correction that changes the unit of a result with the
laboratory's range now asks for the range again, with the corrected unit (web form and API),
and reads it as given."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from tests.conftest import form_token

from speciosa.clinic import services
from speciosa.clinic.models import Alert, LabResult

pytestmark = pytest.mark.django_db


def _slip(clinic):
    return services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "alt", "collected_at": timezone.now() - dt.timedelta(days=1),
        "value": Decimal("5"), "unit": "U/L", "reference_low": "0.1", "reference_high": "0.5",
        "confirmed_unusual": True})  # the range is far from the usual one: confirmed in haste


def test_a_unit_correction_without_the_range_again_is_refused_and_nothing_changes(clinic):
    row = _slip(clinic)
    with pytest.raises(ValidationError) as exc:
        services.correct_record(clinic.clinician_a, row, {"unit": "ukat/L"}, "wrong unit")
    message = exc.value.message_dict["reference_high"][0]
    assert "laboratory's range" in message and "0.1–0.5 U/L" in message
    assert LabResult.objects.get().unit == "U/L"  # nothing stored half-way


def test_the_range_given_again_is_read_in_the_corrected_unit(clinic):
    row = _slip(clinic)
    new = services.correct_record(clinic.clinician_a, row, {
        "unit": "ukat/L", "reference_low": "0.1", "reference_high": "0.5"}, "wrong unit")
    assert (new.canonical_value, new.reference_low, new.reference_high) == (300.0, 6.0, 30.0)
    alert = Alert.objects.get(patient=clinic.patient_a, topic="liver-injury",
                              status__in=Alert.ACTIVE)
    assert "10.0 x ULN" in alert.message and alert.severity == "warning"
    assert "600" not in alert.message


def test_the_catalogue_range_follows_the_unit_without_asking(clinic):
    row = services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "alt", "collected_at": timezone.now() - dt.timedelta(days=1),
        "value": Decimal("5"), "unit": "U/L"})
    new = services.correct_record(clinic.clinician_a, row, {"unit": "ukat/L"}, "wrong unit")
    assert (new.reference_high, new.reference_source) == (45.0, "catalogue")


def test_a_value_correction_keeps_the_laboratory_range_as_before(clinic):
    row = _slip(clinic)
    new = services.correct_record(clinic.clinician_a, row, {"value": Decimal("6")}, "typo")
    assert (new.reference_low, new.reference_high, new.unit) == (0.1, 0.5, "U/L")
    # the same unit written another way is no change of unit
    again = services.correct_record(clinic.clinician_a, new, {"unit": "u/l", "value": 7}, "typo")
    assert again.reference_high == 0.5


def test_the_web_correction_form_asks_for_the_range_and_takes_it(clinic, login):
    row = _slip(clinic)
    client = login(clinic.clinician_a)
    url = reverse("record_correct", args=[clinic.patient_a.pk, "lab", row.pk])
    page = client.get(url).content.decode()
    assert "laboratory range 0.1–0.5 U/L" in page and 'name="reference_high"' in page
    r = client.post(url, {"token": form_token("t-corr"), "unit": "ukat/L", "reason": "unit"})
    assert r.status_code == 200 and "enter it again" in r.content.decode()
    r = client.post(url, {"token": form_token("t-corr2"), "unit": "ukat/L", "reason": "unit",
                          "reference_low": "0.1", "reference_high": "0.5"})
    assert r.status_code == 302
    assert LabResult.objects.current().get().reference_high == 30.0


def test_the_api_correction_takes_the_range(clinic):
    import uuid

    from rest_framework.test import APIClient

    def key():
        return {"Idempotency-Key": str(uuid.uuid4())}

    row = _slip(clinic)
    url = f"/api/v1/patients/{clinic.patient_a.pk}/records/lab/{row.pk}/corrections/"
    client = APIClient(HTTP_HOST="localhost")
    client.force_authenticate(clinic.clinician_a)
    r = client.post(url, {"reason": "unit", "unit": "ukat/L"}, format="json", headers=key())
    assert r.status_code == 400 and "reference_high" in r.json()["errors"]
    r = client.post(url, {"reason": "unit", "unit": "ukat/L", "reference_low": 0.1,
                          "reference_high": 0.5}, format="json", headers=key())
    assert r.status_code == 201, r.json()
    assert LabResult.objects.current().get().reference_high == 30.0
