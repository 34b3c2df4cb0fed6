"""The API records a dose in mg of 7-OH (a 7-hydroxymitragynine product, issue 13); the
pharmacology, the diary form, the report and ``speciosa evaluate`` are in
tests/clinic/test_dose_7oh.py."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from speciosa.clinic.models import Alert, Dose

pytestmark = pytest.mark.django_db


def _firing(patient, topic):
    return Alert.objects.filter(patient=patient, topic=topic, status__in=Alert.ACTIVE).first()


def test_the_api_records_a_7oh_dose_and_the_rule_fires_without_a_product_name(clinic, api, key):
    at = timezone.now() - dt.timedelta(hours=1)
    response = api(clinic.patient_a.user).post(
        "/api/v1/me/diary/", {"doses": [{"taken_at": at.isoformat(), "amount": 7.5,
                                         "unit": "mg_7oh"}]}, format="json", headers=key())
    assert response.status_code == 201, response.json()
    dose = Dose.objects.get()
    assert (dose.unit, dose.mitragynine_mg) == ("mg_7oh", None)
    alert = _firing(clinic.patient_a, "potent-7oh-product")
    assert alert is not None and "7-OH product" in alert.message


def test_an_unknown_dose_unit_lists_mg_7oh_among_the_choices(clinic, api, key):
    response = api(clinic.patient_a.user).post(
        "/api/v1/me/diary/", {"doses": [{"taken_at": timezone.now().isoformat(), "amount": 2,
                                         "unit": "mg_7-oh"}]}, format="json", headers=key())
    assert response.status_code == 400
    assert "mg_7oh" in response.json()["errors"]["doses-0-unit"][0]
    assert Dose.objects.count() == 0
