"""A laboratory range typed wrong (issue 13, adversarial pass): the range the clinician or
the EHR gives is read by the flag and every rule, so an upper limit of 450 U/L typed for 45
made ALT 300 U/L 'normal' and silenced the liver alert, without a question. A laboratory
range whose upper limit is more than three times the catalogue's (or below a third of it),
or beyond the plausibility limit, is asked to be checked or confirmed, like an unusual value
(a check against typing errors, not a clinical range); confirmed, it is stored and read."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from tests.conftest import form_token

from speciosa.clinic import services
from speciosa.clinic.models import Alert, LabResult

pytestmark = pytest.mark.django_db


def _alt(clinic, high, **extra):
    return services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "alt", "collected_at": timezone.now() - dt.timedelta(days=1),
        "value": Decimal("300"), "unit": "U/L", "reference_low": "7", "reference_high": high,
        **extra})


@pytest.mark.parametrize("high", ["450", "4500", "10"])
def test_a_range_far_from_the_catalogues_is_asked_to_be_confirmed(clinic, high):
    with pytest.raises(services.NeedsConfirmation) as exc:
        _alt(clinic, high)
    message = exc.value.message_dict["reference_high"][0]
    assert f"7–{high} U/L" in message and "7–45 U/L" in message and "confirm" in message
    assert not LabResult.objects.exists()


def test_confirmed_it_is_stored_and_read(clinic):
    row = _alt(clinic, "450", confirmed_unusual=True)
    assert (row.reference_high, row.flag, row.confirmed_unusual) == (450.0, "normal", True)


def test_a_usual_laboratory_range_needs_no_confirmation(clinic):
    row = _alt(clinic, "33")
    assert row.flag == "high" and not row.confirmed_unusual
    assert Alert.objects.filter(topic="liver-injury", status__in=Alert.ACTIVE).exists()


def test_a_range_in_another_unit_is_compared_in_the_same_unit(clinic):
    # 0.1-0.75 ukat/L is 6-45 U/L: usual; 0.1-7.5 ukat/L is 6-450 U/L: asked
    assert _alt(clinic, "0.75", reference_low="0.1", reference_unit="ukat/L").reference_high == 45
    with pytest.raises(services.NeedsConfirmation):
        _alt(clinic, "7.5", reference_low="0.1", reference_unit="ukat/L")


def test_the_web_form_asks_beside_the_range_then_stores_it(clinic, login):
    client = login(clinic.clinician_a)
    url = reverse("lab_new", args=[clinic.patient_a.pk])
    at = timezone.localtime(timezone.now() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    data = {"token": form_token("t-range"), "lab": "alt", "collected_at": at, "value": "300",
            "unit": "U/L", "reference_low": "7", "reference_high": "450"}
    r = client.post(url, data)
    assert r.status_code == 200 and "7–450 U/L" in r.content.decode()
    assert "confirmed_unusual" in r.content.decode() and not LabResult.objects.exists()
    assert client.post(url, {**data, "confirmed_unusual": "on"}).status_code == 302
    assert LabResult.objects.get().reference_high == 450.0


def test_a_range_with_only_a_lower_limit_leaves_the_upper_to_the_catalogue(clinic):
    # the laboratory gave "7-" (no upper limit): ALT 300 U/L was flagged 'normal' while the
    # liver rule read it against the catalogue's 45 U/L; the flag reads the same upper limit
    row = services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "alt", "collected_at": timezone.now() - dt.timedelta(days=1),
        "value": Decimal("300"), "unit": "U/L", "reference_low": "7"})
    assert row.flag == "high"
    assert Alert.objects.filter(topic="liver-injury", status__in=Alert.ACTIVE).exists()


def test_the_upper_limit_typed_in_the_low_box_is_asked_about(clinic):
    with pytest.raises(services.NeedsConfirmation) as exc:
        services.record_lab(clinic.clinician_a, clinic.patient_a, {
            "lab": "alt", "collected_at": timezone.now() - dt.timedelta(days=1),
            "value": Decimal("300"), "unit": "U/L", "reference_low": "45"})
    assert "lower limit" in exc.value.message_dict["reference_low"][0]
