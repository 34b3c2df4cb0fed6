"""Reading a sent or typed number in the clinic services (clinic.numbers.finite_decimal)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from speciosa.clinic.numbers import finite_decimal


@pytest.mark.parametrize(("raw", "expected"), [
    ("2.5", Decimal("2.5")), ("  2.5\n", Decimal("2.5")), ("-0.5", Decimal("-0.5")), ("+3", Decimal("3")),
    (".5", Decimal("0.5")), ("5.", Decimal("5")), (2.5, Decimal("2.5")), (7, Decimal("7")),
    (Decimal("1.25"), Decimal("1.25")), (1e-7, Decimal("1E-7")), ("๑๒.๕", Decimal("12.5")),
    ("１２", Decimal("12")),
])
def test_numbers_read_as_written(raw, expected):
    assert finite_decimal(raw) == expected


@pytest.mark.parametrize("raw", ["1_5", "1e3", "1E3", "0x10", "2 5", "1.2.3", "", " ", "abc", "NaN",
                                 "Infinity", "-inf", "1,5", float("nan"), float("inf"), True, None,
                                 [1], {"a": 1}])
def test_anything_else_is_not_a_number(raw):
    assert finite_decimal(raw) is None


@pytest.mark.parametrize("amount", ["1_5", "1e3", "0x10"])
def test_a_dose_given_to_the_service_as_loose_text_is_refused(amount):
    """The API takes numbers only as JSON numbers and the web forms read the text themselves;
    a script or an import calling the service with text must not get "1_5" read as 15."""
    from django.core.exceptions import ValidationError
    from django.utils import timezone

    from speciosa.clinic import services

    with pytest.raises(ValidationError) as exc:
        services.validate_dose({"amount": amount, "unit": "g", "taken_at": timezone.now()})
    assert "amount" in exc.value.message_dict
